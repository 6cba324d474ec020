"""Small random graphs and model initialisation shared by the tests."""
import torch
from torch_geometric.data import Data
from torch_geometric.nn import GINConv


def random_graph(num_nodes=12, num_edges=30, channels=5, edge_weight=False, seed=0):
    """A graph with self-loops, duplicate edges and an isolated node (the last one)."""
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, num_nodes - 1, (2, num_edges), generator=g)
    ei = torch.cat([ei, torch.tensor([[0, 1, 2, 2], [0, 1, 3, 3]])], dim=1)  # loops, duplicate
    data = Data(x=torch.randn(num_nodes, channels, generator=g), edge_index=ei)
    if edge_weight:
        data.edge_weight = torch.rand(ei.size(1), generator=g) + 0.1
    return data


def random_batch(sizes=(7, 9, 5), channels=5, seed=0):
    """Several random graphs batched PyG-style (with a ``batch`` vector)."""
    from torch_geometric.data import Batch
    graphs = [random_graph(n, 2 * n, channels, seed=seed + i) for i, n in enumerate(sizes)]
    return Batch.from_data_list(graphs)


def perturb(model, seed=0):
    """Non-trivial biases, BatchNorm statistics and GIN eps, so that parameter mix-ups show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if isinstance(m, GINConv):
                m.eps.fill_(0.25)
    return model.eval()
