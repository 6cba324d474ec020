"""EdgeConv / DynamicEdgeConv export: the spec reproduces PyG through tinygnn.reference,
the kNN stand-in has the documented semantics, and unsupported nns are named."""
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import DynamicEdgeConv, EdgeConv

import tinygnn
from tinygnn.knn import install, knn_graph
from tinygnn.reference import run_spec

install()


class Net(torch.nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self, x, edge_index):
        return self.conv(x, edge_index)


class DynNet(torch.nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self, x, batch):
        return self.conv(x, batch)


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    parts = []
    for n in (9, 6):
        ei = torch.randint(0, n, (2, 3 * n), generator=g)
        parts.append(Data(x=torch.randn(n, 3, generator=g), edge_index=ei))
    return Batch.from_data_list(parts)


def _nn(bn=True):
    mods = [torch.nn.Linear(6, 5)]
    if bn:
        mods.append(torch.nn.BatchNorm1d(5))
    mods += [torch.nn.ReLU(), torch.nn.Linear(5, 4)]
    m = torch.nn.Sequential(*mods)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3)
    return m


def _check(model, data, tmp_path):
    model.eval()
    res = tinygnn.export(model, tmp_path / "m.safetensors", example=data)
    tensors = tinygnn.save_graphs(tmp_path / "g.safetensors", data)
    state = {k: v.float() for k, v in model.state_dict().items() if v.is_floating_point()}
    ref = run_spec(res.spec, state, tensors)[0]
    torch.testing.assert_close(ref, res.output, rtol=1e-4, atol=1e-5)
    return res.spec


@pytest.mark.parametrize("aggr", ["max", "mean", "add"])
def test_edge_conv_export_matches_pyg(aggr, tmp_path):
    spec = _check(Net(EdgeConv(_nn(), aggr=aggr)), _data(), tmp_path)
    op = spec["ops"][0]
    assert op["op"] == "edge_conv"
    assert op["attrs"]["aggr"] == ("sum" if aggr == "add" else aggr)
    assert [l["op"] for l in op["attrs"]["nn"]] == ["linear", "batch_norm", "relu", "linear"]
    assert op["params"]["nn.1.running_var"] == "conv.nn.1.running_var"


@pytest.mark.parametrize("k", [1, 4, 20])
def test_dynamic_edge_conv_export_matches_pyg(k, tmp_path):
    spec = _check(DynNet(DynamicEdgeConv(_nn(bn=False), k=k)), _data(1), tmp_path)
    assert spec["ops"][0]["op"] == "dynamic_edge_conv"
    assert spec["ops"][0]["attrs"]["k"] == k


def test_knn_includes_self_breaks_ties_by_index_and_keeps_graphs_apart():
    x = torch.tensor([[0.0], [2.0], [4.0], [2.0], [100.0]])
    ei = knn_graph(x, 3, torch.tensor([0, 0, 0, 0, 1]))
    nbrs = {i: ei[0][ei[1] == i].tolist() for i in range(5)}
    assert nbrs[0] == [0, 1, 3]
    assert nbrs[1] == [1, 3, 0]
    assert nbrs[4] == [4]  # a graph of one point: only itself


def test_unsupported_nn_layer_is_named(tmp_path):
    conv = EdgeConv(torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh()))
    with pytest.raises(tinygnn.ExportError, match="Tanh"):
        tinygnn.export(Net(conv).eval(), tmp_path / "m.safetensors", example=_data())
