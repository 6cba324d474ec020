"""Recurrent cells (issue 18): a TGCN cell written in plain PyG as torch-geometric-temporal
defines it, and a torch.nn.GRUCell over node features; exported with the example state
``data.h``, their spec (``state``) reproduces PyG step by step from the zero state."""
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv

import tinygnn
from tinygnn.export import ExportError, build_spec
from tinygnn.reference import read_model, run_sequence, run_spec


class TGCN(torch.nn.Module):
    """torch_geometric_temporal.nn.recurrent.TGCN: GRU gates over cat[GCNConv(X), H]."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv_z = GCNConv(in_channels, out_channels)
        self.linear_z = torch.nn.Linear(2 * out_channels, out_channels)
        self.conv_r = GCNConv(in_channels, out_channels)
        self.linear_r = torch.nn.Linear(2 * out_channels, out_channels)
        self.conv_h = GCNConv(in_channels, out_channels)
        self.linear_h = torch.nn.Linear(2 * out_channels, out_channels)

    def forward(self, x, edge_index, edge_weight, h):
        z = torch.sigmoid(self.linear_z(torch.cat([self.conv_z(x, edge_index, edge_weight), h],
                                                  axis=1)))
        r = torch.sigmoid(self.linear_r(torch.cat([self.conv_r(x, edge_index, edge_weight), h],
                                                  dim=-1)))
        h_tilde = torch.tanh(self.linear_h(
            torch.cat([self.conv_h(x, edge_index, edge_weight), h * r], dim=-1)))
        return z * h + (1 - z) * h_tilde


class TGCNHead(torch.nn.Module):
    """A TGCN cell with a per-node classifier: returns (y, h_next)."""

    def __init__(self, f, hidden, classes):
        super().__init__()
        self.cell = TGCN(f, hidden)
        self.out = torch.nn.Linear(hidden, classes)

    def forward(self, x, edge_index, edge_weight, h):
        h = self.cell(x, edge_index, edge_weight, h)
        return self.out(torch.relu(h)), h


class GRU(torch.nn.Module):
    def __init__(self, f, hidden):
        super().__init__()
        self.gru = torch.nn.GRUCell(f, hidden)

    def forward(self, x, edge_index, h):
        return self.gru(x, h)


def sequence(steps=6, n=9, f=3, hidden=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, 24), generator=g)
    w = torch.rand(ei.size(1), generator=g) + 0.2
    return [Data(x=torch.randn(n, f, generator=g), edge_index=ei, edge_weight=w,
                 h=torch.zeros(n, hidden)) for _ in range(steps)]


def pyg_steps(model, seq, tuple_out=False, edge_weight=True):
    h, outs = None, []
    with torch.no_grad():
        for d in seq:
            h = torch.zeros_like(d.h) if h is None else h
            args = (d.x, d.edge_index, d.edge_weight, h) if edge_weight else \
                (d.x, d.edge_index, h)
            o = model(*args)
            y, h = (o[0], o[1]) if tuple_out else (o, o)
            outs.append(y)
    return outs


def graphs(d):
    out = {"x": d.x, "edge_index": d.edge_index}
    if getattr(d, "edge_weight", None) is not None:
        out["edge_weight"] = d.edge_weight
    return out


def test_tgcn_spec_reproduces_pyg_over_steps(tmp_path):
    torch.manual_seed(1)
    cell = TGCN(3, 4).eval()
    seq = sequence()
    res = tinygnn.export(cell, tmp_path / "m.safetensors", example=seq[0])
    spec = res.spec
    assert spec["state"] == {"name": "h", "channels": 4, "next": spec["outputs"][-1]}
    kinds = [o["op"] for o in spec["ops"]]
    for k in ("gcn_conv", "concat", "linear", "sigmoid", "tanh", "mul", "rsub", "add"):
        assert k in kinds, kinds
    spec2, tensors = read_model(tmp_path / "m.safetensors")
    got = run_sequence(spec2, tensors, [graphs(d) for d in seq])
    want = pyg_steps(cell, seq)
    for t, (g, w) in enumerate(zip(got, want)):
        torch.testing.assert_close(g[0], w, rtol=1e-5, atol=1e-5, msg=f"step {t}")
    # The state matters: a step run from a zero state differs from the carried one.
    assert not torch.allclose(run_spec(spec2, tensors, graphs(seq[3]))[0], want[3])


def test_tgcn_with_head_returns_y_and_next_state(tmp_path):
    torch.manual_seed(2)
    model = TGCNHead(3, 4, 3).eval()
    seq = sequence(seed=5)
    res = tinygnn.export(model, tmp_path / "m.safetensors", example=seq[0])
    spec, tensors = read_model(tmp_path / "m.safetensors")
    assert len(spec["outputs"]) == 2 and spec["state"]["next"] == spec["outputs"][1]
    got = run_sequence(spec, tensors, [graphs(d) for d in seq])
    want = pyg_steps(model, seq, tuple_out=True)
    for g, w in zip(got, want):
        torch.testing.assert_close(g[0], w, rtol=1e-5, atol=1e-5)
    assert res.output.shape == (9, 3)


def test_gru_cell_lowered_to_gates(tmp_path):
    torch.manual_seed(3)
    model = GRU(3, 4).eval()
    seq = sequence(seed=7)
    for d in seq:
        d.edge_weight = None
    tinygnn.export(model, tmp_path / "g.safetensors", example=seq[0])
    spec, tensors = read_model(tmp_path / "g.safetensors")
    assert "gru.tinygnn_r.weight" in tensors and tensors["gru.tinygnn_r.weight"].shape == (4, 7)
    got = run_sequence(spec, tensors, [graphs(d) for d in seq])
    want = pyg_steps(model, seq, edge_weight=False)
    for g, w in zip(got, want):
        torch.testing.assert_close(g[0], w, rtol=1e-5, atol=1e-5)


def test_state_shape_errors():
    cell = TGCN(3, 4).eval()
    d = sequence()[0]
    d.h = torch.zeros(9, 5)  # the cell computes 4 channels
    with pytest.raises(ExportError):
        build_spec(cell, d)
    d.h = torch.zeros(8, 4)  # not one row per node
    with pytest.raises(ExportError, match="data.h"):
        build_spec(cell, d)


def test_sub_of_two_tensors_is_refused():
    class Sub(torch.nn.Module):
        def forward(self, x, edge_index, h):
            return x - h

    d = Data(x=torch.randn(4, 2), edge_index=torch.tensor([[0], [1]]), h=torch.zeros(4, 2))
    with pytest.raises(ExportError, match="constant minus a tensor"):
        build_spec(Sub(), d)
