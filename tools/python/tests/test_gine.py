"""GINEConv and edge features (edgefeat): export, spec reference, graphs files."""
import pytest
import torch
from torch_geometric.nn import GINEConv

import tinygnn
from tinygnn.export import ExportError
from tinygnn.graphs import graphs_tensors

from helpers import perturb, random_graph
from test_export import export_and_check, ops


def mlp(i, o):
    return torch.nn.Sequential(torch.nn.Linear(i, 8), torch.nn.ReLU(), torch.nn.Linear(8, o))


class Gine(torch.nn.Module):
    def __init__(self, edge_dim):
        super().__init__()
        self.conv1 = GINEConv(mlp(5, 8), eps=0.4, edge_dim=edge_dim)
        self.conv2 = GINEConv(mlp(8, 3), train_eps=True, edge_dim=edge_dim or 5)

    def forward(self, x, edge_index, edge_attr):
        return self.conv2(self.conv1(x, edge_index, edge_attr).relu(), edge_index, edge_attr)


def with_edge_attr(data, dim, seed=1):
    g = torch.Generator().manual_seed(seed)
    data.edge_attr = torch.randn(data.edge_index.size(1), dim, generator=g)
    return data


@pytest.mark.parametrize("edge_dim", [None, 3])
def test_gine_export(tmp_path, edge_dim):
    model = perturb(Gine(edge_dim))
    with torch.no_grad():
        model.conv2.eps.fill_(-0.2)
    data = with_edge_attr(random_graph(), edge_dim or 5)
    spec = export_and_check(model, data, tmp_path)
    assert spec["edge_input"] == {"name": "edge_attr", "channels": edge_dim or 5}
    assert ops(spec).count("gine_conv") == 2
    first, second = [op for op in spec["ops"] if op["op"] == "gine_conv"]
    assert first["attrs"]["eps"] == pytest.approx(0.4)
    assert second["attrs"]["eps"] == pytest.approx(-0.2)
    assert ("edge_dim" in first["attrs"]) == (edge_dim is not None)
    assert "lin_weight" in second["params"]


def test_gine_needs_edge_attr_in_the_example():
    model = Gine(3)
    with pytest.raises(ExportError, match="edge_attr"):
        tinygnn.export(model, "/nonexistent/never-written", example=random_graph())


def test_graphs_file_carries_edge_attr():
    data = with_edge_attr(random_graph(), 4)
    t = graphs_tensors(data)
    assert t["edge_attr"].shape == (data.edge_index.size(1), 4)
    assert t["edge_attr"].dtype == torch.float32
    data.edge_attr = data.edge_attr[:-1]
    with pytest.raises(ValueError, match="edge_attr"):
        graphs_tensors(data)


class EluNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(5, 6)
        self.act = torch.nn.ELU(alpha=0.7)
        self.out = torch.nn.Linear(6, 3)

    def forward(self, x, edge_index):
        return torch.nn.functional.elu(self.out(self.act(self.lin(x))), alpha=1.3)


def test_elu_module_and_function(tmp_path):
    spec = export_and_check(perturb(EluNet()), random_graph(), tmp_path)
    elus = [op for op in spec["ops"] if op["op"] == "elu"]
    assert [op["attrs"]["alpha"] for op in elus] == [pytest.approx(0.7), pytest.approx(1.3)]


class GatEdge(torch.nn.Module):
    def __init__(self):
        super().__init__()
        from torch_geometric.nn import GATConv
        self.conv = GATConv(5, 3, heads=2, edge_dim=4)

    def forward(self, x, edge_index, edge_attr):
        return self.conv(x, edge_index, edge_attr)


def test_gat_edge_dim_export(tmp_path):
    data = with_edge_attr(random_graph(), 4)
    spec = export_and_check(perturb(GatEdge()), data, tmp_path)
    assert spec["edge_input"] == {"name": "edge_attr", "channels": 4}
    attrs, params = spec["ops"][0]["attrs"], spec["ops"][0]["params"]
    assert attrs["edge_dim"] == 4 and attrs["fill_value"] == "mean"
    assert {"lin_edge_weight", "att_edge"} <= set(params)
