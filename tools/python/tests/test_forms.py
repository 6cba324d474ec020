"""The forms PyG users write (issue 17, item 6): keyword calls, ``forward(self, data)``,
``torch_geometric.nn.MLP`` wherever a layer chain is accepted, ``torch_geometric.nn.aggr``
pooling modules. Each model is exported and the spec, run by ``tinygnn.reference``, must
match PyG on the example and on other random graphs (isolated nodes, batches of graphs)."""
import pytest
import torch
import torch.nn.functional as F
from torch_geometric import nn as gnn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GCNConv, GINEConv, SAGEConv

import tinygnn
from tinygnn.graphs import graphs_tensors
from tinygnn.reference import run_spec

from helpers import perturb, random_batch, random_graph
from test_export import export_and_check, ops, raises_naming


def graphs(edge_weight=False, edge_attr=None, channels=5):
    """Graphs to compare on: single graphs (last node isolated) and batches."""
    out = [random_graph(channels=channels, edge_weight=edge_weight, seed=s) for s in (1, 2)]
    out += [random_batch((4, 8, 6), channels=channels, seed=3),
            random_batch((4, 5, 9, 6), channels=channels, seed=7)]
    g = torch.Generator().manual_seed(11)
    for d in out:
        e = d.edge_index.size(1)
        if edge_weight and getattr(d, "edge_weight", None) is None:
            d.edge_weight = torch.rand(e, generator=g) + 0.1
        if edge_attr:
            d.edge_attr = torch.randn(e, edge_attr, generator=g)
    return out


def check(model, tmp_path, edge_weight=False, edge_attr=None, channels=5):
    """Export on the first graph; the spec must reproduce PyG on all of them."""
    model = perturb(model)
    data = graphs(edge_weight, edge_attr, channels)
    spec = export_and_check(model, data[2], tmp_path)
    tensors = {k: v.float() for k, v in model.state_dict().items() if v.is_floating_point()}
    for d in data:
        with torch.no_grad():
            want = tinygnn.call_with_data(model, d)
        got = run_spec(spec, tensors, graphs_tensors(d))[0]
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    return spec


# ------------------------------------------------------------------ keyword calls


class KeywordCalls(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = GCNConv(5, 8)
        self.conv2 = SAGEConv(8, 8)
        self.conv3 = gnn.GCN2Conv(8, alpha=0.2)
        self.lin = torch.nn.Linear(8, 3)

    def forward(self, x, edge_index, edge_weight=None, batch=None):
        h = F.leaky_relu(input=self.conv1(x=x, edge_index=edge_index, edge_weight=edge_weight),
                         negative_slope=0.2)
        h = self.conv2(h, edge_index=edge_index).relu()
        h = self.conv3(h, x_0=h, edge_index=edge_index)
        return self.lin(gnn.global_mean_pool(x=h, batch=batch))


def test_keyword_calls(tmp_path):
    spec = check(KeywordCalls(), tmp_path, edge_weight=True)
    assert ops(spec) == ["gcn_conv", "leaky_relu", "sage_conv", "relu", "gcn2_conv",
                         "global_mean_pool", "linear"]
    assert spec["ops"][0]["attrs"]["edge_weight"] is True
    assert spec["ops"][1]["attrs"]["negative_slope"] == 0.2


def test_basic_gnn_called_with_keywords(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gnn = gnn.models.GCN(5, 8, num_layers=2, out_channels=4)

        def forward(self, x, edge_index, batch=None):
            return gnn.global_add_pool(self.gnn(x=x, edge_index=edge_index, batch=batch), batch)

    assert ops(check(Net(), tmp_path))[-1] == "global_add_pool"


def test_keyword_call_errors_name_the_module():
    class Missing(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 4)

        def forward(self, x, edge_index):
            return self.conv(edge_index=edge_index, x=x, edge_weight=x)

    raises_naming(Missing(), random_graph(), "'conv'", "edge_weight")

    class Unknown(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 4)

        def forward(self, x, edge_index):
            return self.conv(x, edge_index, weights=None)

    raises_naming(Unknown(), random_graph(), "'conv'", "GCNConv", "self.conv(x, edge_index")


# ------------------------------------------------------------------ forward(self, data)


class DataNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = GCNConv(5, 8)
        self.conv2 = GINEConv(torch.nn.Linear(8, 8), edge_dim=3)
        self.lin = torch.nn.Linear(8, 2)

    def forward(self, data):
        x = self.conv1(data.x, data.edge_index, data.edge_weight).relu()
        x = self.conv2(x, data.edge_index, edge_attr=data.edge_attr)
        return self.lin(gnn.global_max_pool(x, data.batch))


def test_forward_data(tmp_path):
    spec = check(DataNet(), tmp_path, edge_weight=True, edge_attr=3)
    assert ops(spec) == ["gcn_conv", "relu", "gine_conv", "linear", "global_max_pool", "linear"]
    assert spec["ops"][0]["attrs"]["edge_weight"] is True
    assert spec["edge_input"]["channels"] == 3 and spec["task"] == "graph"


def test_forward_data_annotated_and_without_edge_weight(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 4)

        def forward(self, batch_of_graphs: Batch):
            return self.conv(batch_of_graphs.x, batch_of_graphs.edge_index,
                             batch_of_graphs.edge_weight)

    # The example has no edge_weight: PyG receives None, the spec says so.
    spec = check(Net(), tmp_path)
    assert spec["ops"][0]["attrs"]["edge_weight"] is False


def test_forward_data_refuses_other_attributes():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, data: Data):
            return self.lin(data.pos)

    data = random_graph()
    data.pos = torch.randn(data.num_nodes, 3)
    raises_naming(Net(), data, "data.pos", "data.x", "data.edge_index")
