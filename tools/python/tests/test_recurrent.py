"""Recurrent cells (issue 18): a TGCN cell written in plain PyG as torch-geometric-temporal
defines it, and a torch.nn.GRUCell over node features; exported with the example state
``data.h``, their spec (``state``) reproduces PyG step by step from the zero state."""
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import ChebConv, GCNConv

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


class GConvGRU(torch.nn.Module):
    """torch_geometric_temporal.nn.recurrent.GConvGRU (gconv_gru.py) in plain PyG: each gate is
    ChebConv(X) + ChebConv(H) (the candidate's second one over H ⊙ R); the same attribute
    names and forward signature, forward(X, edge_index, edge_weight=None, H=None,
    lambda_max=None)."""

    def __init__(self, in_channels, out_channels, K, normalization="sym", bias=True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels

        def cheb(i):
            return ChebConv(i, out_channels, K=K, normalization=normalization, bias=bias)

        self.conv_x_z, self.conv_h_z = cheb(in_channels), cheb(out_channels)
        self.conv_x_r, self.conv_h_r = cheb(in_channels), cheb(out_channels)
        self.conv_x_h, self.conv_h_h = cheb(in_channels), cheb(out_channels)

    def _set_hidden_state(self, X, H):
        if H is None:
            H = torch.zeros(X.shape[0], self.out_channels).to(X.device)
        return H

    def _calculate_update_gate(self, X, edge_index, edge_weight, H, lambda_max):
        Z = self.conv_x_z(X, edge_index, edge_weight, lambda_max=lambda_max)
        Z = Z + self.conv_h_z(H, edge_index, edge_weight, lambda_max=lambda_max)
        return torch.sigmoid(Z)

    def _calculate_reset_gate(self, X, edge_index, edge_weight, H, lambda_max):
        R = self.conv_x_r(X, edge_index, edge_weight, lambda_max=lambda_max)
        R = R + self.conv_h_r(H, edge_index, edge_weight, lambda_max=lambda_max)
        return torch.sigmoid(R)

    def _calculate_candidate_state(self, X, edge_index, edge_weight, H, R, lambda_max):
        H_tilde = self.conv_x_h(X, edge_index, edge_weight, lambda_max=lambda_max)
        H_tilde = H_tilde + self.conv_h_h(H * R, edge_index, edge_weight, lambda_max=lambda_max)
        return torch.tanh(H_tilde)

    def _calculate_hidden_state(self, Z, H, H_tilde):
        return Z * H + (1 - Z) * H_tilde

    def forward(self, X, edge_index, edge_weight=None, H=None, lambda_max=None):
        H = self._set_hidden_state(X, H)
        Z = self._calculate_update_gate(X, edge_index, edge_weight, H, lambda_max)
        R = self._calculate_reset_gate(X, edge_index, edge_weight, H, lambda_max)
        H_tilde = self._calculate_candidate_state(X, edge_index, edge_weight, H, R, lambda_max)
        return self._calculate_hidden_state(Z, H, H_tilde)


def _perturb_biases(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("weighted", [True, False])
def test_gconv_gru_spec_reproduces_pyg_over_steps(tmp_path, k, weighted):
    torch.manual_seed(10 + k)
    cell = _perturb_biases(GConvGRU(3, 4, K=k), k)
    seq = sequence(seed=k)
    if not weighted:
        for d in seq:
            d.edge_weight = None
    res = tinygnn.export(cell, tmp_path / "m.safetensors", example=seq[0])
    spec = res.spec
    assert spec["state"] == {"name": "h", "channels": 4, "next": spec["outputs"][-1]}
    kinds = [o["op"] for o in spec["ops"]]
    assert kinds.count("cheb_conv") == 6, kinds
    for kind in ("sigmoid", "tanh", "mul", "rsub", "add"):
        assert kind in kinds, kinds
    assert all(o["attrs"]["K"] == k and o["attrs"]["edge_weight"] == weighted
               for o in spec["ops"] if o["op"] == "cheb_conv")
    spec2, tensors = read_model(tmp_path / "m.safetensors")
    got = run_sequence(spec2, tensors, [graphs(d) for d in seq])
    want = pyg_steps(cell, seq, edge_weight=weighted) if weighted else None
    if not weighted:
        h, want = None, []
        with torch.no_grad():
            for d in seq:
                h = cell(d.x, d.edge_index, H=h)
                want.append(h)
    for t, (g, w) in enumerate(zip(got, want)):
        torch.testing.assert_close(g[0], w, rtol=1e-5, atol=1e-5, msg=f"step {t}")
    assert not torch.allclose(run_spec(spec2, tensors, graphs(seq[3]))[0], want[3])


def test_gconv_gru_refusals(tmp_path):
    d = sequence()[0]
    with pytest.raises(ExportError, match="K = 4 is not supported"):
        build_spec(GConvGRU(3, 4, K=4).eval(), d)
    with pytest.raises(ExportError, match="normalization 'rw' is not supported"):
        build_spec(GConvGRU(3, 4, K=2, normalization="rw").eval(), d)


# ---- cells with several states: LSTM (h, c), GConvLSTM, a stack of GRU cells ---------------


class LSTM(torch.nn.Module):
    """torch.nn.LSTMCell over node features with a classifier: returns (y, h_next, c_next)."""

    def __init__(self, f, hidden, classes):
        super().__init__()
        self.cell = torch.nn.LSTMCell(f, hidden)
        self.out = torch.nn.Linear(hidden, classes)

    def forward(self, x, edge_index, h, c):
        h, c = self.cell(x, (h, c))
        return self.out(h), h, c


class LSTMOnly(torch.nn.Module):
    """The cell's own result returned as is: (h_next, c_next)."""

    def __init__(self, f, hidden):
        super().__init__()
        self.cell = torch.nn.LSTMCell(f, hidden)

    def forward(self, x, edge_index, h, c):
        return self.cell(x, (h, c))


class GConvLSTM(torch.nn.Module):
    """torch_geometric_temporal.nn.recurrent.GConvLSTM (gconv_lstm.py) in plain PyG: every gate
    is ChebConv(X) + ChebConv(H) + a learned peephole w_c ⊙ C (not for the cell candidate)
    + a learned bias; the same attribute names and forward signature, forward(X, edge_index,
    edge_weight=None, H=None, C=None, lambda_max=None) returning (H, C)."""

    def __init__(self, in_channels, out_channels, K, normalization="sym", bias=True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels

        def cheb(i):
            return ChebConv(i, out_channels, K=K, normalization=normalization, bias=bias)

        for g in ("i", "f", "c", "o"):
            setattr(self, f"conv_x_{g}", cheb(in_channels))
            setattr(self, f"conv_h_{g}", cheb(out_channels))
            setattr(self, f"b_{g}", torch.nn.Parameter(torch.randn(1, out_channels) * 0.2))
        for g in ("i", "f", "o"):
            setattr(self, f"w_c_{g}", torch.nn.Parameter(torch.randn(1, out_channels) * 0.5))

    def _gate(self, g, X, edge_index, edge_weight, H, C, lambda_max, act):
        G = getattr(self, f"conv_x_{g}")(X, edge_index, edge_weight, lambda_max=lambda_max)
        G = G + getattr(self, f"conv_h_{g}")(H, edge_index, edge_weight, lambda_max=lambda_max)
        if C is not None:
            G = G + (getattr(self, f"w_c_{g}") * C)
        G = G + getattr(self, f"b_{g}")
        return act(G)

    def forward(self, X, edge_index, edge_weight=None, H=None, C=None, lambda_max=None):
        I = self._gate("i", X, edge_index, edge_weight, H, C, lambda_max, torch.sigmoid)
        F_ = self._gate("f", X, edge_index, edge_weight, H, C, lambda_max, torch.sigmoid)
        T = self._gate("c", X, edge_index, edge_weight, H, None, lambda_max, torch.tanh)
        C = F_ * C + I * T
        O = self._gate("o", X, edge_index, edge_weight, H, C, lambda_max, torch.sigmoid)
        H = O * torch.tanh(C)
        return H, C


class StackedGRU(torch.nn.Module):
    """Two GRU cells stacked, each with its own state: returns (y, h1_next, h2_next)."""

    def __init__(self, f, hidden):
        super().__init__()
        self.gru1 = torch.nn.GRUCell(f, hidden)
        self.gru2 = torch.nn.GRUCell(hidden, hidden)
        self.out = torch.nn.Linear(hidden, 2)

    def forward(self, x, edge_index, h1, h2):
        h1 = self.gru1(x, h1)
        h2 = self.gru2(h1, h2)
        return self.out(h2), h1, h2


def sequence_states(names, hidden=4, **kw):
    seq = sequence(hidden=hidden, **kw)
    for d in seq:
        del d.h
        for n in names:
            setattr(d, n, torch.zeros(d.num_nodes, hidden))
    return seq


def pyg_multi(model, seq, call, k):
    """PyG's run from zero states: call(model, d, states) returns a tuple whose last k
    entries are the next states."""
    states, outs = None, []
    with torch.no_grad():
        for d in seq:
            states = [torch.zeros(d.num_nodes, 4) for _ in range(k)] if states is None else states
            o = call(model, d, states)
            states = list(o[-k:])
            outs.append(list(o))
    return outs


def check_multi(tmp_path, model, seq, call, k, n_out):
    res = tinygnn.export(model, tmp_path / "m.safetensors", example=seq[0])
    spec, tensors = read_model(tmp_path / "m.safetensors")
    st = spec["state"]
    assert isinstance(st, list) and len(st) == k, st
    assert [s["next"] for s in st] == spec["outputs"][-k:]
    assert len(spec["outputs"]) == n_out
    got = run_sequence(spec, tensors, [graphs(d) for d in seq])
    want = pyg_multi(model, seq, call, k)
    for t, (g, w) in enumerate(zip(got, want)):
        assert len(g) == len(w)
        for a, b in zip(g, w):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=f"step {t}")
    # Every state is carried: zeroing any one of them at a later step changes the result.
    g3 = graphs(seq[3])
    carried = [want[2][-k + j] for j in range(k)]
    for j in range(k):
        wrong = [torch.zeros_like(s) if i == j else s for i, s in enumerate(carried)]
        assert not torch.allclose(run_spec(spec, tensors, g3, state=wrong)[0], want[3][0])
    return res, spec


def test_lstm_cell_carries_h_and_c(tmp_path):
    torch.manual_seed(21)
    model = LSTM(3, 4, 3).eval()
    seq = sequence_states(["h", "c"], seed=11)
    _, spec = check_multi(tmp_path, model, seq,
                          lambda m, d, s: m(d.x, d.edge_index, s[0], s[1]), 2, 3)
    assert [s["name"] for s in spec["state"]] == ["h", "c"]
    kinds = [o["op"] for o in spec["ops"]]
    assert kinds.count("sigmoid") == 3 and kinds.count("tanh") == 2, kinds


def test_lstm_cell_result_returned_as_is(tmp_path):
    torch.manual_seed(22)
    seq = sequence_states(["h", "c"], seed=12)
    check_multi(tmp_path, LSTMOnly(3, 4).eval(), seq,
                lambda m, d, s: m(d.x, d.edge_index, s[0], s[1]), 2, 2)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_gconv_lstm_spec_reproduces_pyg_over_steps(tmp_path, k):
    torch.manual_seed(30 + k)
    cell = _perturb_biases(GConvLSTM(3, 4, K=k), k)
    seq = sequence_states(["h", "c"], seed=20 + k)
    _, spec = check_multi(tmp_path, cell, seq,
                          lambda m, d, s: m(d.x, d.edge_index, d.edge_weight, H=s[0], C=s[1]),
                          2, 2)
    kinds = [o["op"] for o in spec["ops"]]
    assert kinds.count("cheb_conv") == 8, kinds


def test_stacked_cells_carry_one_state_each(tmp_path):
    torch.manual_seed(23)
    seq = sequence_states(["h1", "h2"], seed=13)
    check_multi(tmp_path, StackedGRU(3, 4).eval(), seq,
                lambda m, d, s: m(d.x, d.edge_index, s[0], s[1]), 2, 3)


def test_multi_state_refusals():
    seq = sequence_states(["h", "c"])
    d = seq[0]

    class DropsC(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = torch.nn.LSTMCell(3, 4)

        def forward(self, x, edge_index, h, c):
            h, c = self.cell(x, (h, c))
            return h  # c_next not returned

    with pytest.raises(ExportError, match=r"\(h_next, c_next\)"):
        build_spec(DropsC().eval(), d)

    class NoState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = torch.nn.LSTMCell(3, 4)

        def forward(self, x, edge_index, h, c):
            return self.cell(x)[0], h, c

    with pytest.raises(ExportError, match=r"\(x, \(h, c\)\)"):
        build_spec(NoState().eval(), d)

    class Broadcast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(9, 4))

        def forward(self, x, edge_index, h):
            return self.w * h

    with pytest.raises(ExportError, match="per-channel"):
        build_spec(Broadcast().eval(), sequence()[0])
    d.c = torch.zeros(8, 4)
    with pytest.raises(ExportError, match="data.c"):
        build_spec(LSTMOnly(3, 4).eval(), d)
