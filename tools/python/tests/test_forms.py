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


def graphs(edge_weight=False, edge_attr=None, channels=5, batch=False):
    """Graphs to compare on: single graphs (last node isolated) and batches; with ``batch``
    the single graphs get a batch vector too."""
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
        if batch and getattr(d, "batch", None) is None:
            d.batch = torch.zeros(d.num_nodes, dtype=torch.long)
    return out


def check(model, tmp_path, edge_weight=False, edge_attr=None, channels=5, batch=False):
    """Export on a batch of graphs; the spec must reproduce PyG on all of graphs()."""
    model = perturb(model)
    data = graphs(edge_weight, edge_attr, channels, batch)
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


class Squash(torch.nn.Module):
    """Sigmoid and tanh in every form a forward writes them."""

    def __init__(self):
        super().__init__()
        self.conv = GCNConv(5, 8)
        self.head = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.Tanh())
        self.gate = torch.nn.Sigmoid()
        self.lin = torch.nn.Linear(6, 3)

    def forward(self, x, edge_index):
        h = torch.sigmoid(self.conv(x, edge_index))
        h = self.head(h).sigmoid()
        h = torch.tanh(self.lin(self.gate(h)))
        return F.sigmoid(h) + h.tanh()


def test_sigmoid_and_tanh(tmp_path):
    spec = check(Squash(), tmp_path)
    assert ops(spec) == ["gcn_conv", "sigmoid", "linear", "tanh", "sigmoid", "sigmoid",
                         "linear", "tanh", "sigmoid", "tanh", "add"]


class Normed(torch.nn.Module):
    """A transformer-style block: conv, LayerNorm, ReLU, PyG LayerNorm(mode='node')."""

    def __init__(self, affine=True):
        super().__init__()
        self.conv = GCNConv(5, 8)
        self.ln = torch.nn.LayerNorm(8, elementwise_affine=affine, eps=1e-3)
        self.seq = torch.nn.Sequential(torch.nn.Linear(8, 6),
                                       gnn.LayerNorm(6, affine=affine, mode="node"))
        self.lin = torch.nn.Linear(6, 3)

    def forward(self, x, edge_index):
        h = self.ln(self.conv(x, edge_index)).relu()
        return self.lin(self.seq(h))


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(tmp_path, affine):
    spec = check(Normed(affine), tmp_path)
    assert ops(spec) == ["gcn_conv", "layer_norm", "relu", "linear", "layer_norm", "linear"]
    assert spec["ops"][1]["attrs"] == {"channels": 8, "eps": 1e-3}
    assert ("params" in spec["ops"][1]) == affine


def test_layer_norm_in_pyg_models(tmp_path):
    kw = {"norm": "layer_norm", "norm_kwargs": {"mode": "node"}}
    spec = check(gnn.GCN(5, 8, num_layers=2, out_channels=3, **kw), tmp_path)
    assert "layer_norm" in ops(spec)
    spec = check(gnn.MLP([5, 8, 3], **kw), tmp_path)
    assert ops(spec) == ["linear", "layer_norm", "relu", "linear"]


class Transformer(torch.nn.Module):
    def __init__(self, heads, concat, root_weight, bias):
        super().__init__()
        self.conv1 = gnn.TransformerConv(5, 4, heads=heads, concat=concat,
                                         root_weight=root_weight, bias=bias)
        width = 4 * heads if concat else 4
        self.norm = torch.nn.LayerNorm(width)
        self.conv2 = gnn.TransformerConv(width, 3, heads=2, concat=False)

    def forward(self, x, edge_index):
        return self.conv2(self.norm(self.conv1(x, edge_index)).relu(), edge_index)


@pytest.mark.parametrize("heads,concat,root_weight,bias", [
    (1, True, True, True), (2, True, False, True), (4, False, True, False),
    (2, False, False, True)])
def test_transformer_conv(tmp_path, heads, concat, root_weight, bias):
    spec = check(Transformer(heads, concat, root_weight, bias), tmp_path)
    assert ops(spec) == ["transformer_conv", "layer_norm", "relu", "transformer_conv"]
    a = spec["ops"][0]["attrs"]
    assert (a["heads"], a["concat"], a["root_weight"]) == (heads, concat, root_weight)
    assert ("skip_weight" in spec["ops"][0]["params"]) == root_weight
    assert ("query_bias" in spec["ops"][0]["params"]) == bias


class Gps(torch.nn.Module):
    """PyG's GPS recipe: a linear encoder, GPSConv layers (local conv + global multi-head
    attention over each graph's nodes), mean pooling and a head."""

    def __init__(self, local, norm="batch_norm", heads=2, layers=2):
        super().__init__()
        self.enc = torch.nn.Linear(5, 8)
        kw = {"norm_kwargs": {"mode": "node"}} if norm == "layer_norm" else {}

        def conv():
            if local == "gine":
                return GINEConv(gnn.MLP([8, 8, 8]), edge_dim=3)
            return GCNConv(8, 8) if local == "gcn" else None

        self.layers = torch.nn.ModuleList(
            gnn.GPSConv(8, conv(), heads=heads, norm=norm, **kw) for _ in range(layers))
        self.head = torch.nn.Linear(8, 3)
        self.local = local

    def forward(self, x, edge_index, batch, edge_attr=None):
        h = self.enc(x)
        for layer in self.layers:
            if self.local == "gine":
                h = layer(h, edge_index, batch, edge_attr=edge_attr)
            else:
                h = layer(h, edge_index, batch)
        return self.head(gnn.global_mean_pool(h, batch))


@pytest.mark.parametrize("local,norm,heads", [
    ("gcn", "batch_norm", 2), ("gine", "layer_norm", 4), (None, "batch_norm", 1),
    ("gcn", None, 2)])
def test_gps(tmp_path, local, norm, heads):
    spec = check(Gps(local, norm, heads), tmp_path, batch=True,
                 edge_attr=3 if local == "gine" else None)
    names = ops(spec)
    assert names.count("global_attention") == 2
    a = next(o for o in spec["ops"] if o["op"] == "global_attention")
    assert a["attrs"] == {"channels": 8, "heads": heads}


class GpsRwse(torch.nn.Module):
    """PyG's GPS example: x and a linear map of the RWSE concatenated, GPSConv layers."""

    def __init__(self, k=6, data_form=False):
        super().__init__()
        self.enc = torch.nn.Linear(5, 6)
        self.pe_norm = torch.nn.BatchNorm1d(k)
        self.pe_lin = torch.nn.Linear(k, 2)
        self.gps = gnn.GPSConv(8, GCNConv(8, 8), heads=2)
        self.head = torch.nn.Linear(8, 3)
        self.data_form = data_form

    def forward(self, x, edge_index, batch, random_walk_pe):
        pe = self.pe_lin(self.pe_norm(random_walk_pe))
        h = torch.cat([self.enc(x), pe], dim=-1)
        return self.head(gnn.global_mean_pool(self.gps(h, edge_index, batch), batch))


def test_random_walk_pe(tmp_path):
    from torch_geometric.transforms import AddRandomWalkPE
    model = perturb(GpsRwse())
    data = [AddRandomWalkPE(6)(d) for d in graphs(batch=True)]
    spec = export_and_check(model, data[2], tmp_path)
    assert ops(spec)[0] == "random_walk_pe"
    assert spec["ops"][0]["attrs"] == {"walk_length": 6}
    tensors = {k: v.float() for k, v in model.state_dict().items() if v.is_floating_point()}
    for d in data:
        with torch.no_grad():
            want = tinygnn.call_with_data(model, d)
        got = run_spec(spec, tensors, graphs_tensors(d))[0]
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # Another encoding of the same shape is not computed on the device: named.
    bad = data[2].clone()
    bad.random_walk_pe = torch.rand_like(bad.random_walk_pe)
    with pytest.raises(tinygnn.ExportError, match="random_walk_pe"):
        tinygnn.build_spec(model, bad)


def test_gps_refusals():
    m = Gps("gcn")
    m.layers[0] = gnn.GPSConv(8, GCNConv(8, 8), norm="layer_norm")
    raises_naming(m, random_batch((4, 6), channels=5, seed=2), "layers.0.norm1", "mode='node'")


def test_graph_mode_layer_norm_is_refused_with_the_fix():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 4)
            self.norm = torch.nn.Sequential(gnn.LayerNorm(4))

        def forward(self, x, edge_index):
            return self.norm(self.conv(x, edge_index))

    raises_naming(Net(), random_graph(), "norm.0", "mode='graph'", "mode='node'")
    raises_naming(gnn.GCN(5, 8, num_layers=2, norm="layer_norm"), random_graph(),
                  "mode='node'")


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


# ------------------------------------------------------------------ torch_geometric.nn.MLP

from tinygnn.knn import install  # noqa: E402  (pyg-lib's knn stand-in, for DynamicEdgeConv)

install()

MLP_OPTIONS = [
    dict(),  # batch_norm, relu, plain_last, bias, no dropout
    dict(norm=None, act="leaky_relu", act_kwargs={"negative_slope": 0.2}, dropout=0.3),
    dict(act="elu", act_kwargs={"alpha": 0.7}, plain_last=False, bias=[True, False, True]),
    dict(act_first=True, dropout=[0.1, 0.0, 0.2], plain_last=False),
    dict(norm="batch_norm", norm_kwargs={"eps": 1e-3}, bias=False, act="relu"),
]


def expected_mlp_ops(opts, layers=3):
    """The spec ops of MLP([.., .., .., ..], **opts): Linear -> norm -> act -> dropout."""
    act = {"relu": "relu", "leaky_relu": "leaky_relu", "elu": "elu"}[opts.get("act", "relu")]
    norm = ["batch_norm"] if opts.get("norm", "batch_norm") else []
    plain_last = opts.get("plain_last", True)
    dropout = opts.get("dropout", 0.0)
    dropout = dropout if isinstance(dropout, list) else \
        [dropout] * (layers - 1) + [0.0 if plain_last else dropout]
    out = []
    for i in range(layers):
        out.append("linear")
        if i == layers - 1 and plain_last:
            break
        out += [act] + norm if opts.get("act_first") else norm + [act]
        out += ["dropout"] if dropout[i] > 0 else []
    return out + (["dropout"] if plain_last and dropout[-1] > 0 else [])


class MlpHead(torch.nn.Module):
    """MLP before and after message passing, called with and without the batch vector."""

    def __init__(self, **opts):
        super().__init__()
        self.pre = gnn.MLP([5, 6, 6, 8], **opts)
        self.conv = GCNConv(8, 8)
        self.post = gnn.MLP(in_channels=8, hidden_channels=7, out_channels=3, num_layers=3,
                            **opts)

    def forward(self, x, edge_index, batch=None):
        h = self.conv(self.pre(x), edge_index).relu()
        return self.post(gnn.global_add_pool(h, batch), batch=None)


@pytest.mark.parametrize("opts", MLP_OPTIONS, ids=range(len(MLP_OPTIONS)))
def test_mlp_options(tmp_path, opts):
    spec = check(MlpHead(**opts), tmp_path)
    mlp = expected_mlp_ops(opts)
    assert ops(spec) == mlp + ["gcn_conv", "relu", "global_add_pool"] + mlp


def test_mlp_called_with_batch_and_in_sequential(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = gnn.MLP([5, 8, 8], dropout=0.5)
            self.seq = torch.nn.Sequential(gnn.MLP([8, 4, 4], norm=None), torch.nn.ReLU())

        def forward(self, x, edge_index, batch=None):
            return self.seq(self.mlp(x, batch))

    spec = check(Net(), tmp_path)
    assert ops(spec) == ["linear", "batch_norm", "relu", "dropout", "linear",
                         "linear", "relu", "linear", "relu"]
    assert spec["ops"][1]["params"]["running_var"] == "mlp.norms.0.module.running_var"


class Gin(torch.nn.Module):
    def __init__(self, nn, edge=False):
        super().__init__()
        self.conv = GINEConv(nn, edge_dim=3, train_eps=True) if edge else gnn.GINConv(nn)

    def forward(self, x, edge_index, edge_attr=None):
        if edge_attr is None:
            return self.conv(x, edge_index)
        return self.conv(x, edge_index, edge_attr)


@pytest.mark.parametrize("edge", [False, True])
def test_mlp_as_gin_nn(tmp_path, edge):
    nn = gnn.MLP([5, 8, 4], act="leaky_relu", act_kwargs={"negative_slope": 0.1}, dropout=0.2)
    spec = check(Gin(nn, edge), tmp_path, edge_attr=3 if edge else None)
    assert ops(spec)[1:] == ["linear", "batch_norm", "leaky_relu", "dropout", "linear"]


class EdgeNet(torch.nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        self.lin = torch.nn.Linear(conv.nn.channel_list[-1], 2)

    def forward(self, x, edge_index, batch=None):
        h = self.conv(x, batch) if isinstance(self.conv, gnn.DynamicEdgeConv) \
            else self.conv(x, edge_index)
        return self.lin(gnn.global_max_pool(h, batch))


@pytest.mark.parametrize("aggr", ["max", "mean", "add"])
@pytest.mark.parametrize("opts", [dict(), dict(norm=None, act="leaky_relu",
                                               act_kwargs={"negative_slope": 0.2}, dropout=0.5)])
def test_mlp_as_edge_conv_nn(tmp_path, aggr, opts):
    spec = check(EdgeNet(gnn.EdgeConv(gnn.MLP([2 * 3, 8, 4], **opts), aggr=aggr)), tmp_path,
                 channels=3)
    op = spec["ops"][0]
    assert op["op"] == "edge_conv" and op["attrs"]["in_channels"] == 3
    assert [layer["op"] for layer in op["attrs"]["nn"]] == expected_mlp_ops(opts, 2)
    assert op["params"]["nn.0.weight"] == "conv.nn.lins.0.weight"


@pytest.mark.parametrize("k", [3, 20])
def test_dgcnn_dynamic_edge_conv_mlp(tmp_path, k):
    # PyG's DGCNN example: DynamicEdgeConv(MLP([2 * 3, 64, 64]), k, aggr).
    spec = check(EdgeNet(gnn.DynamicEdgeConv(gnn.MLP([2 * 3, 64, 64]), k, "max")), tmp_path,
                 channels=3)
    op = spec["ops"][0]
    assert op["op"] == "dynamic_edge_conv" and op["attrs"]["k"] == k
    assert [layer["op"] for layer in op["attrs"]["nn"]] == ["linear", "batch_norm", "relu",
                                                            "linear"]
    assert op["params"]["nn.1.running_mean"] == "conv.nn.norms.0.module.running_mean"


@pytest.mark.parametrize("norm", [None, "batch_norm"])
def test_edge_cnn_model(tmp_path, norm):
    model = gnn.models.EdgeCNN(5, 8, num_layers=2, out_channels=3, norm=norm, aggr="max")
    spec = check(model, tmp_path)
    bn = ["batch_norm"] if norm else []
    assert ops(spec) == ["edge_conv"] + bn + ["relu", "edge_conv"]
    nn = [layer["op"] for layer in spec["ops"][0]["attrs"]["nn"]]
    assert nn == ["linear"] + bn + ["relu", "linear"]
    assert spec["ops"][0]["attrs"]["aggr"] == "max"


def test_mlp_refusals_name_the_module_and_the_fix():
    # PyG's LayerNorm in its default graph mode: no advice to pass the batch vector, the
    # node mode instead.
    with pytest.raises(tinygnn.ExportError) as info:
        tinygnn.build_spec(Gin(gnn.MLP([5, 8, 4], norm="layer_norm")), random_graph())
    msg = str(info.value)
    assert "conv.nn.norms.0" in msg and "LayerNorm" in msg and "mode='node'" in msg, msg
    assert "batch vector" not in msg, msg
    raises_naming(Gin(gnn.MLP([5, 8, 4], norm="graph_norm")), random_graph(),
                  "conv.nn.norms.0", "GraphNorm", "norm='batch_norm'")
    raises_naming(Gin(gnn.MLP([5, 8, 4], act="gelu")), random_graph(),
                  "conv.nn.act", "GELU", "act='relu'")
    raises_naming(MlpHead(norm="instance_norm"), random_graph(), "pre.norms.0", "InstanceNorm")
    edge = [(gnn.MLP([6, 8, 8, 4]), "more than two Linear"),
            (gnn.MLP([6, 8, 4], act_first=True), "act_first=False"),
            (gnn.MLP([6, 8, 4], act="elu"), "ELU")]
    for nn, words in edge:
        raises_naming(EdgeNet(gnn.EdgeConv(nn)), random_graph(channels=3), "'conv'", words)


# ------------------------------------------------------------------ torch_geometric.nn.aggr

AGGRS = {"sum": ("SumAggregation", "global_add_pool"),
         "mean": ("MeanAggregation", "global_mean_pool"),
         "max": ("MaxAggregation", "global_max_pool")}


class AggrNet(torch.nn.Module):
    def __init__(self, kind, keyword):
        super().__init__()
        self.conv = GCNConv(5, 6)
        self.pool = getattr(gnn.aggr, AGGRS[kind][0])()
        self.lin = torch.nn.Linear(6, 2)
        self.keyword = keyword

    def forward(self, x, edge_index, batch=None):
        h = self.conv(x, edge_index).relu()
        h = self.pool(h, index=batch) if self.keyword else self.pool(h, batch)
        return self.lin(h)


@pytest.mark.parametrize("keyword", [False, True])
@pytest.mark.parametrize("kind", list(AGGRS))
def test_aggregation_modules(tmp_path, kind, keyword):
    spec = check(AggrNet(kind, keyword), tmp_path)
    assert ops(spec) == ["gcn_conv", "relu", AGGRS[kind][1], "linear"]
    assert spec["task"] == "graph"


def test_aggregation_in_pyg_sequential_and_data_forward(tmp_path):
    seq = gnn.Sequential("x, edge_index, batch", [
        (SAGEConv(5, 8), "x, edge_index -> x"),
        torch.nn.ReLU(),
        (gnn.aggr.MaxAggregation(), "x, batch -> x"),
        torch.nn.Linear(8, 3),
    ])
    assert ops(check(seq, tmp_path, batch=True))[2] == "global_max_pool"

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = gnn.MLP([5, 8, 8])
            self.readout = gnn.aggr.MeanAggregation()

        def forward(self, data):
            return self.readout(self.mlp(data.x), data.batch)

    assert ops(check(Net(), tmp_path))[-1] == "global_mean_pool"


@pytest.mark.parametrize("gate_ch,with_nn", [(1, False), (1, True), (8, True)])
def test_attentional_aggregation(tmp_path, gate_ch, with_nn):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 8)
            gate = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(),
                                       torch.nn.Linear(4, gate_ch))
            self.pool = gnn.aggr.AttentionalAggregation(
                gate, torch.nn.Linear(8, 8) if with_nn else None)
            self.head = torch.nn.Linear(8, 3)

        def forward(self, x, edge_index, batch):
            return self.head(self.pool(self.conv(x, edge_index).relu(), batch))

    spec = check(Net(), tmp_path, batch=True)
    assert "attention_pool" in ops(spec)


@pytest.mark.parametrize("t,learn", [(1.0, False), (3.0, False), (0.5, True)])
def test_softmax_aggregation(tmp_path, t, learn):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 8)
            self.pool = gnn.aggr.SoftmaxAggregation(t=t, learn=learn)
            self.head = torch.nn.Linear(8, 3)

        def forward(self, x, edge_index, batch):
            return self.head(self.pool(self.conv(x, edge_index).relu(), index=batch))

    spec = check(Net(), tmp_path, batch=True)
    pool = [op for op in spec["ops"] if op["op"] == "attention_pool"]
    assert len(pool) == 1 and pool[0]["attrs"]["t"] == pytest.approx(t)
    assert pool[0]["inputs"][0] == pool[0]["inputs"][1]


def test_aggregation_refusals():
    class Net(torch.nn.Module):
        def __init__(self, pool, call):
            super().__init__()
            self.pool = pool
            self.call = call

        def forward(self, x, edge_index, batch):
            return self.call(self.pool, x, batch)

    data = random_batch()
    raises_naming(Net(gnn.aggr.PowerMeanAggregation(), lambda p, x, b: p(x, b)), data,
                  "'pool'", "PowerMeanAggregation", "MeanAggregation")
    per_channel = gnn.aggr.SoftmaxAggregation(learn=True, channels=5)
    raises_naming(Net(per_channel, lambda p, x, b: p(x, b)), data, "'pool'", "channels=5",
                  "channels=1")
    raises_naming(Net(gnn.aggr.SoftmaxAggregation(t=-1.0), lambda p, x, b: p(x, b)), data,
                  "'pool'", "t = -1.0", "positive")
    raises_naming(Net(gnn.aggr.SumAggregation(), lambda p, x, b: p(x, b, dim_size=3)), data,
                  "'pool'", "dim_size")
    raises_naming(Net(gnn.aggr.MaxAggregation(), lambda p, x, b: p(x, b, dim=1)), data,
                  "'pool'", "dim=1")


class Gate(torch.nn.Module):
    """A block with Python control flow on tensor values (not traceable)."""

    def forward(self, x):
        return x if float(x.sum()) > 0 else -x


def test_untraceable_module_is_named():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 4)
            self.block = torch.nn.Sequential(torch.nn.Identity(), Gate())

        def forward(self, x, edge_index):
            return self.block(self.conv(x, edge_index))

    raises_naming(Net(), random_graph(), "module 'block.1'", "Gate", "control flow")


# ------------------------------------------------------------------ wrong example data


def _bad(key, value):
    d = random_graph(edge_weight=True)
    d.edge_attr = torch.randn(d.edge_index.size(1), 3)
    d.batch = torch.zeros(d.num_nodes, dtype=torch.long)
    if callable(value):
        value = value(d)
    setattr(d, key, value)
    return d


BAD_EXAMPLES = [
    ("x", lambda d: d.x.long(), ["x", "dtype", "floating point"]),
    ("x", lambda d: d.x[:, 0], ["x", "[N, F]"]),
    ("x", lambda d: d.x[:, :4], ["x has 4 channels", "'conv1' (gcn_conv) expects 5"]),
    ("x", lambda d: d.x.index_fill(0, torch.tensor([2]), float("nan")), ["x contains NaN"]),
    ("edge_index", lambda d: d.edge_index.float(), ["edge_index", "torch.long"]),
    ("edge_index", lambda d: d.edge_index.t().contiguous(), ["edge_index", "[2, E]"]),
    ("edge_index", lambda d: d.edge_index + 5, ["edge_index", "outside [0, 12)"]),
    ("edge_index", lambda d: d.edge_index - 1, ["edge_index", "from -1"]),
    ("edge_weight", lambda d: d.edge_weight[:-2], ["edge_weight", "[E] = [34]"]),
    ("edge_weight", lambda d: d.edge_weight.long(), ["edge_weight", "dtype"]),
    ("edge_weight", lambda d: d.edge_weight.index_fill(0, torch.tensor([0]), float("inf")),
     ["edge_weight contains Inf"]),
    ("edge_attr", lambda d: torch.randn(d.edge_index.size(1), 4), ["edge_attr has 4 channels",
                                                                   "expects 3"]),
    ("edge_attr", lambda d: d.edge_attr.long(), ["edge_attr", "dtype"]),
    ("edge_attr", lambda d: d.edge_attr[:3], ["edge_attr", "one row per edge"]),
    ("batch", lambda d: d.batch[:5], ["batch", "[N] = [12]"]),
    ("batch", lambda d: d.batch.float(), ["batch", "torch.long"]),
]


@pytest.mark.parametrize("key,value,words", BAD_EXAMPLES,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(BAD_EXAMPLES)])
def test_wrong_example_data_names_the_tensor(key, value, words):
    raises_naming(DataNet(), _bad(key, value), *words)


def test_nan_weights_and_outputs_are_reported_as_such():
    model = DataNet().eval()
    with torch.no_grad():
        model.lin.weight[0, 0] = float("nan")
    raises_naming(model, _bad("y", None), "parameter 'lin.weight'", "NaN")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 4)
            self.bn = torch.nn.BatchNorm1d(4)

        def forward(self, x, edge_index):
            return self.bn(self.conv(x, edge_index))

    model = Net().eval()
    with torch.no_grad():
        model.bn.running_var.fill_(-1.0)  # finite, but sqrt of a negative number
    with pytest.raises(tinygnn.ExportError) as info:
        tinygnn.build_spec(model, random_graph())
    msg = str(info.value)
    assert "output" in msg and "NaN" in msg and "control flow" not in msg, msg


def test_wrong_channels_inside_the_model_are_named():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 4)
            self.lin = torch.nn.Linear(7, 2)

        def forward(self, x, edge_index):
            return self.lin(self.conv(x, edge_index))

    raises_naming(Net(), random_graph(), "'lin' (linear) expects 7", "'conv' has 4")


# ------------------------------------------------------------------ link prediction


def _link_graph(seed=3):
    d = random_graph(seed=seed)
    d.edge_label_index = torch.tensor([[0, 3, 11, 5, 2], [1, 3, 0, 5, 9]])
    return d


def test_mlp_link_decoder(tmp_path):
    enc = perturb(gnn.models.GCN(5, 8, num_layers=2, out_channels=4))
    mlp = perturb(gnn.MLP([8, 6, 1], act="leaky_relu", act_kwargs={"negative_slope": 0.1}))
    data = _link_graph()
    res = tinygnn.export_link(enc, tmp_path / "m.safetensors", example=data, decoder="concat",
                              mlp=mlp)
    assert ops(res.spec)[-5:] == ["pair_concat", "linear", "batch_norm", "leaky_relu", "linear"]
    tensors = {k: v.float() for k, v in enc.state_dict().items() if v.is_floating_point()}
    tensors.update({f"decoder.{k}": v.float() for k, v in mlp.state_dict().items()
                    if v.is_floating_point()})
    for d in (data, _link_graph(5)):
        with torch.no_grad():
            z = enc(d.x, d.edge_index)
            s, t = d.edge_label_index
            want = mlp(torch.cat([z[s], z[t]], dim=-1))
        torch.testing.assert_close(run_spec(res.spec, tensors, graphs_tensors(d))[0], want,
                                   rtol=1e-4, atol=1e-5)


def test_wrong_link_example_and_decoder_are_named(tmp_path):
    enc = gnn.models.GCN(5, 8, num_layers=2, out_channels=4)
    bad = _link_graph()
    bad.edge_label_index = bad.edge_label_index + 10
    with pytest.raises(tinygnn.ExportError, match="edge_label_index.*outside"):
        tinygnn.build_link_spec(enc, bad)
    with pytest.raises(tinygnn.ExportError, match="'decoder.lins.0' .linear. expects 6"):
        tinygnn.build_link_spec(enc, _link_graph(), "hadamard", gnn.MLP([6, 4, 1]))


# ------------------------------------------------------------------ every refusal says what to do


class One(torch.nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, edge_index):
        return self.layer(x, edge_index)


REFUSALS = [
    (One(SAGEConv(5, 4, project=True)), ["'layer'", "project=True", "use project=False"]),
    (One(SAGEConv(5, 4, aggr="lstm")), ["'layer'", "lstm", "use aggr='mean'"]),
    (One(gnn.GATConv(5, 4, residual=True)), ["'layer'", "residual=True", "residual=False"]),
    (One(GCNConv(5, 4, flow="target_to_source")), ["'layer'", "flow=", "default flow"]),
    (One(gnn.GATConv(5, 4, edge_dim=2)), ["'layer'", "edge_dim", "self.layer(x, edge_index, "
                                                                 "edge_attr)"]),
    (One(gnn.ResGatedGraphConv(5, 4)), ["'layer'", "ResGatedGraphConv", "GCNConv", "nearest"]),
    (One(gnn.TransformerConv(5, 4, edge_dim=2)), ["'layer'", "edge_attr",
                                                   "self.layer(x, edge_index, edge_attr)"]),
    (gnn.models.GCN(5, 8, 2, jk="max"), ["jk='max'", "use jk=None"]),
    (One(gnn.GINConv(torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.GELU()))),
     ["layer.nn.1", "GELU", "ReLU, LeakyReLU, ELU"]),
    (One(gnn.GINConv(torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.InstanceNorm1d(4)))),
     ["layer.nn.1", "InstanceNorm1d", "BatchNorm1d"]),
]


@pytest.mark.parametrize("model,words", REFUSALS, ids=range(len(REFUSALS)))
def test_refusals_name_the_module_and_the_nearest_form(model, words):
    raises_naming(model, random_graph(), *words)


def test_refused_functions_suggest_the_supported_ones():
    class Net(torch.nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.conv = GCNConv(5, 4)
            self.fn = fn

        def forward(self, x, edge_index):
            return self.fn(self.conv(x, edge_index))

    raises_naming(Net(F.gelu), random_graph(), "gelu", "F.relu")
    raises_naming(Net(lambda h: torch.stack([h, h], dim=-1)), random_graph(), "stack",
                  "torch.cat")
    raises_naming(Net(lambda h: h * 2), random_graph(), "mul", "a * b")


# ------------------------------------------------------------------ a PyG layer or MLP alone


@pytest.mark.parametrize("make,kw", [
    (lambda: gnn.MLP([5, 8, 3], dropout=0.2), {}),
    (lambda: GCNConv(5, 4), {"edge_weight": True}),
    (lambda: gnn.GATv2Conv(5, 3, heads=2, edge_dim=3), {"edge_attr": 3}),
    (lambda: gnn.EdgeConv(gnn.MLP([10, 8, 4])), {}),
    (lambda: gnn.TransformerConv(5, 3, heads=2, edge_dim=3, beta=True), {"edge_attr": 3}),
], ids=["mlp", "gcn", "gatv2", "edgeconv", "transformer-edge-beta"])
def test_layer_or_mlp_as_the_whole_model(tmp_path, make, kw):
    spec = check(make(), tmp_path, **kw)
    assert spec["task"] == "node"


# ------------------------------------------------------------------ positional encodings


class LapGps(torch.nn.Module):
    """GPS over x and a Laplacian PE: read from x's last K channels (``x_pe``) or as a second
    forward argument (refused, with the form to use)."""

    def __init__(self, separate):
        super().__init__()
        self.enc = torch.nn.Linear(5 + (0 if separate else 4), 6)
        self.pe = torch.nn.Linear(4, 2)
        self.gps = gnn.GPSConv(8 if separate else 6, GCNConv(8 if separate else 6,
                                                             8 if separate else 6), heads=2)
        self.head = torch.nn.Linear(8 if separate else 6, 3)
        self.separate = separate

    def forward(self, x, edge_index, batch, laplacian_eigenvector_pe=None):
        if self.separate:
            h = torch.cat([self.enc(x), self.pe(laplacian_eigenvector_pe)], dim=-1)
        else:
            h = self.enc(x)
        return self.head(gnn.global_mean_pool(self.gps(h, edge_index, batch), batch))


def lap_batch():
    from torch_geometric.transforms import AddLaplacianEigenvectorPE
    from torch_geometric.utils import to_undirected
    graphs = []
    for i, n in enumerate((8, 10, 7)):
        g = random_graph(n, 2 * n, 5, seed=i)
        g.edge_index = to_undirected(g.edge_index, num_nodes=n)
        graphs.append(AddLaplacianEigenvectorPE(4, is_undirected=True)(g))
    from torch_geometric.data import Batch
    return Batch.from_data_list(graphs)


def test_laplacian_pe_as_input_features(tmp_path):
    """A Laplacian PE computed on the host is part of x: exported and reproduced."""
    data = lap_batch()
    data.x = torch.cat([data.x, data.laplacian_eigenvector_pe], dim=-1)
    spec = export_and_check(perturb(LapGps(separate=False)).eval(), data, tmp_path)
    assert spec["input"]["channels"] == 9


def test_laplacian_pe_as_second_argument_says_to_concatenate():
    raises_naming(perturb(LapGps(separate=True)).eval(), lap_batch(),
                  "'laplacian_eigenvector_pe'", "torch.cat([data.x, "
                  "data.laplacian_eigenvector_pe], dim=-1)", "random_walk_pe")


# ------------------------------------------------------------------ HypergraphConv


def hypergraph(seed, n=9, m=5, weighted=True):
    """A random hypergraph: hyperedges of 1-4 nodes (the last node in none), hyperedge id
    m // 2 empty, one incidence listed twice; weights for every id."""
    g = torch.Generator().manual_seed(seed)
    nodes, edges = [], []
    for e in range(m):
        if e == m // 2:
            continue
        k = int(torch.randint(1, 5, (1,), generator=g))
        members = torch.randperm(n - 1, generator=g)[:k]
        nodes.append(members)
        edges.append(torch.full((members.numel(),), e))
    nodes, edges = torch.cat(nodes), torch.cat(edges)
    hi = torch.stack([torch.cat([nodes, nodes[:1]]), torch.cat([edges, edges[:1]])])
    d = Data(x=torch.randn(n, 5, generator=g), hyperedge_index=hi)
    if weighted:
        d.hyperedge_weight = 0.2 + 1.8 * torch.rand(m, generator=g)
    return d


class Hyper(torch.nn.Module):
    def __init__(self, weighted):
        super().__init__()
        self.weighted = weighted
        self.conv1 = gnn.HypergraphConv(5, 8)
        self.conv2 = gnn.HypergraphConv(8, 3, bias=False)

    def forward(self, x, hyperedge_index, hyperedge_weight=None):
        w = hyperedge_weight if self.weighted else None
        return self.conv2(self.conv1(x, hyperedge_index, w).relu(), hyperedge_index, w)


@pytest.mark.parametrize("weighted", [False, True])
def test_hypergraph_conv(tmp_path, weighted):
    model = perturb(Hyper(weighted))
    data = [hypergraph(s) for s in (1, 2, 3)]
    spec = export_and_check(model, data[0], tmp_path)
    assert ops(spec) == ["hypergraph_conv", "relu", "hypergraph_conv"]
    assert spec["ops"][0]["attrs"]["hyperedge_weight"] is weighted
    tensors = {k: v.float() for k, v in model.state_dict().items() if v.is_floating_point()}
    for d in data:
        with torch.no_grad():
            want = tinygnn.call_with_data(model, d)
        got = run_spec(spec, tensors, graphs_tensors(d))[0]
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_hypergraph_conv_alone_and_refusals(tmp_path):
    spec = export_and_check(perturb(gnn.HypergraphConv(5, 4)), hypergraph(4), tmp_path)
    assert ops(spec) == ["hypergraph_conv"] and spec["ops"][0]["attrs"]["hyperedge_weight"]
    raises_naming(gnn.HypergraphConv(5, 4, use_attention=True), hypergraph(4),
                  "use_attention=True", "use_attention=False")
    bad = hypergraph(4)
    bad.hyperedge_weight = bad.hyperedge_weight[:2]
    raises_naming(gnn.HypergraphConv(5, 4), bad, "hyperedge_weight", "one weight per hyperedge")
    bad = hypergraph(4)
    bad.hyperedge_index = bad.hyperedge_index.clone()
    bad.hyperedge_index[0, 0] = 9
    raises_naming(gnn.HypergraphConv(5, 4), bad, "hyperedge_index", "outside")


def test_save_graphs_batches_hypergraphs():
    """A list of hypergraphs: node ids offset by nodes, hyperedge ids by hyperedges (the
    weights' length), weights concatenated; an unweighted graph gets ones."""
    a, b = hypergraph(5, n=6, m=4), hypergraph(6, n=7, m=3, weighted=False)
    t = graphs_tensors([a, b])
    want = torch.cat([a.hyperedge_index, b.hyperedge_index + torch.tensor([[6], [4]])], dim=1)
    assert torch.equal(t["hyperedge_index"], want)
    assert torch.equal(t["hyperedge_weight"], torch.cat([a.hyperedge_weight, torch.ones(3)]))
    assert t["edge_index"].shape == (2, 0) and t["batch"].tolist() == [0] * 6 + [1] * 7
