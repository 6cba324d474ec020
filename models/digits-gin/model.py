"""UCI handwritten digits as graphs: graph classification (10 classes) with GIN.

Data: ``sklearn.datasets.load_digits`` (1797 8×8 images, shipped with scikit-learn). Each
image is a graph of its 64 pixels (none dropped) with 4-neighbourhood grid edges (224
directed edges) and node features [intensity/16, column/7, row/7]
(``tinygnn.datasets.digits_graphs``). Seeded split: 80 % train / 20 % test (359 graphs);
the calibration subset is 64 training graphs.
"""
import torch
from torch_geometric.nn import GINConv, MLP, global_add_pool

from tinygnn.datasets import digits_graphs, digits_split

TASK = "graph"
SPLIT_SEED = 0
TEST_FRACTION = 0.2
NUM_CALIB = 64


class DigitsGIN(torch.nn.Module):
    """3 × [GINConv(MLP: Linear → BatchNorm → ReLU → Linear, trainable eps) → ReLU],
    global add pooling, then Linear(32→32) → ReLU → Dropout(0.5) → Linear(32→10)."""

    def __init__(self, in_channels: int = 3, hidden: int = 32, num_classes: int = 10,
                 num_layers: int = 3):
        super().__init__()
        self.convs = torch.nn.ModuleList()
        for i in range(num_layers):
            mlp = MLP([in_channels if i == 0 else hidden, hidden, hidden], norm="batch_norm")
            self.convs.append(GINConv(mlp, train_eps=True))
        self.lin1 = torch.nn.Linear(hidden, hidden)
        self.lin2 = torch.nn.Linear(hidden, num_classes)

    def forward(self, x, edge_index, batch):
        for conv in self.convs:
            x = conv(x, edge_index).relu()
        x = global_add_pool(x, batch)
        x = self.lin1(x).relu()
        x = torch.nn.functional.dropout(x, p=0.5, training=self.training)
        return self.lin2(x)


def build_model() -> torch.nn.Module:
    return DigitsGIN()


def split():
    """(train graphs, test graphs, calibration graphs): seeded and deterministic."""
    graphs = digits_graphs(neighbourhood=4)
    train_idx, test_idx = digits_split(len(graphs), TEST_FRACTION, seed=SPLIT_SEED)
    gen = torch.Generator().manual_seed(SPLIT_SEED + 1)
    pick = torch.randperm(len(train_idx), generator=gen)[:NUM_CALIB]
    calib_idx = sorted(train_idx[i] for i in pick.tolist())
    return ([graphs[i] for i in train_idx], [graphs[i] for i in test_idx],
            [graphs[i] for i in calib_idx])


def inputs():
    _, test, calib = split()
    return {"graphs.safetensors": test, "calib.safetensors": calib}
