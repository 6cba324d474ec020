"""Exporter tests: spec contents for every supported model kind, numerical agreement of
the spec (via the reference interpreter) with PyG, and rejection of unsupported layers."""
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch_geometric import nn as gnn
from torch_geometric.nn import GATConv, GCNConv, GINConv, SAGEConv, models

import tinygnn
from tinygnn.graphs import graphs_tensors
from tinygnn.reference import run_spec

from helpers import perturb, random_batch, random_graph


def export_and_check(model, data, tmp_path):
    """Export; check the file's metadata/tensors and that the spec reproduces PyG."""
    path = tmp_path / "model.safetensors"
    result = tinygnn.export(model, path, example=data)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    spec = json.loads(meta["tinygnn_spec"])
    assert spec == result.spec
    assert "torch_geometric" in meta["tinygnn_exporter"]
    assert all(t.dtype == torch.float32 for t in tensors.values())
    names = {spec["input"]["name"]}
    for op in spec["ops"]:
        assert all(i in names for i in op["inputs"]), op
        assert op["name"] not in names
        names.add(op["name"])
        for key in op.get("params", {}).values():
            assert key in tensors, key
    with torch.no_grad():
        pyg_out = tinygnn.call_with_data(model.eval(), data)
    torch.testing.assert_close(result.output, pyg_out)
    ref = run_spec(spec, tensors, graphs_tensors(data))[0]
    torch.testing.assert_close(ref, pyg_out, rtol=1e-4, atol=1e-5)
    return spec


def ops(spec):
    return [op["op"] for op in spec["ops"]]


class TwoGCN(torch.nn.Module):
    def __init__(self, improved=False):
        super().__init__()
        self.conv1 = GCNConv(5, 8, improved=improved)
        self.conv2 = GCNConv(8, 3, improved=improved)

    def forward(self, x, edge_index, edge_weight=None):
        x = F.relu(self.conv1(x, edge_index, edge_weight))
        x = F.dropout(x, p=0.5, training=self.training)
        return self.conv2(x, edge_index, edge_weight)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("improved", [False, True])
def test_gcn_module(tmp_path, weighted, improved):
    spec = export_and_check(perturb(TwoGCN(improved)), random_graph(edge_weight=weighted), tmp_path)
    assert ops(spec) == ["gcn_conv", "relu", "dropout", "gcn_conv"]
    conv1 = spec["ops"][0]
    assert conv1["name"] == "conv1"
    assert conv1["attrs"] == {"in_channels": 5, "out_channels": 8, "improved": improved,
                              "add_self_loops": True, "normalize": True, "edge_weight": weighted}
    assert conv1["params"] == {"weight": "conv1.lin.weight", "bias": "conv1.bias"}
    assert spec["task"] == "node" and spec["input"] == {"name": "x", "channels": 5}
    assert spec["outputs"] == ["conv2"]


def test_gcn_without_self_loops_or_normalisation(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = GCNConv(5, 4, add_self_loops=False)
            self.b = GCNConv(4, 4, normalize=False, bias=False)

        def forward(self, x, edge_index, edge_weight):
            return self.b(self.a(x, edge_index, edge_weight), edge_index, edge_weight)

    spec = export_and_check(perturb(Net()), random_graph(edge_weight=True), tmp_path)
    a, b = spec["ops"]
    assert a["attrs"]["add_self_loops"] is False and a["attrs"]["normalize"] is True
    assert b["attrs"]["normalize"] is False and "bias" not in b["params"]


@pytest.mark.parametrize("aggr", ["mean", "max", "sum", "add"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("root_weight", [True, False])
def test_sage_module(tmp_path, aggr, normalize, root_weight):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.sage = SAGEConv(5, 6, aggr=aggr, normalize=normalize, root_weight=root_weight)
            self.act = torch.nn.LeakyReLU(0.2)

        def forward(self, x, edge_index):
            return self.act(self.sage(x, edge_index))

    spec = export_and_check(perturb(Net()), random_graph(), tmp_path)
    sage = spec["ops"][0]
    assert ops(spec) == ["sage_conv", "leaky_relu"]
    assert sage["attrs"] == {"in_channels": 5, "out_channels": 6,
                             "aggr": "sum" if aggr == "add" else aggr,
                             "normalize": normalize, "root_weight": root_weight}
    expected = {"weight_l": "sage.lin_l.weight", "bias_l": "sage.lin_l.bias"}
    if root_weight:
        expected["weight_r"] = "sage.lin_r.weight"
    assert sage["params"] == expected
    assert spec["ops"][1]["attrs"] == {"negative_slope": 0.2}


class GinNet(torch.nn.Module):
    """GIN with BatchNorm in its MLPs, residual add, concat, pooling and a classifier."""

    def __init__(self, pool=gnn.global_add_pool):
        super().__init__()
        mlp = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8),
                                  torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(8, 8))
        self.gin1 = GINConv(mlp, train_eps=True)
        self.gin2 = GINConv(gnn.MLP([8, 8, 8], norm="batch_norm"), train_eps=True)
        self.lin = torch.nn.Linear(16, 3)
        self.pool = pool

    def forward(self, x, edge_index, batch):
        h1 = self.gin1(x, edge_index).relu()
        h2 = self.gin2(h1, edge_index) + h1
        h = torch.cat([h1, F.leaky_relu(h2, negative_slope=0.1)], dim=1)
        return self.lin(self.pool(h, batch))


@pytest.mark.parametrize("pool", ["add", "mean", "max"])
def test_gin_graph_classifier(tmp_path, pool):
    fn = getattr(gnn, f"global_{pool}_pool")

    class Net(GinNet):
        def forward(self, x, edge_index, batch):
            h1 = self.gin1(x, edge_index).relu()
            h2 = self.gin2(h1, edge_index) + h1
            h = torch.cat([h1, F.leaky_relu(h2, negative_slope=0.1)], dim=1)
            return self.lin(fn(h, batch))

    data = random_batch()
    spec = export_and_check(perturb(Net()), data, tmp_path)
    assert spec["task"] == "graph"
    assert ops(spec) == ["gin_aggregate", "linear", "batch_norm", "relu", "dropout", "linear",
                         "relu",
                         "gin_aggregate", "linear", "batch_norm", "relu", "linear", "add",
                         "leaky_relu", "concat", f"global_{pool}_pool", "linear"]
    agg = spec["ops"][0]
    assert agg["attrs"] == {"eps": 0.25}
    assert spec["ops"][1]["params"]["weight"] == "gin1.nn.0.weight"
    assert spec["ops"][2]["params"]["running_var"] == "gin1.nn.1.running_var"
    assert spec["ops"][9]["params"]["running_mean"] == "gin2.nn.norms.0.module.running_mean"
    assert spec["ops"][-1]["inputs"] == [spec["ops"][-2]["name"]]


def test_pool_without_batch_is_one_graph(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 4)

        def forward(self, x, edge_index, batch=None):
            return gnn.global_max_pool(self.conv(x, edge_index), batch)

    spec = export_and_check(perturb(Net()), random_graph(), tmp_path)
    assert spec["task"] == "graph" and ops(spec) == ["gcn_conv", "global_max_pool"]


@pytest.mark.parametrize("jk", [None, "last", "cat"])
@pytest.mark.parametrize("weighted", [False, True])
def test_basic_gcn(tmp_path, jk, weighted):
    model = models.GCN(5, 8, num_layers=3, out_channels=3, jk=jk, norm="batch_norm", dropout=0.5)
    spec = export_and_check(perturb(model), random_graph(edge_weight=weighted), tmp_path)
    layer = ["gcn_conv", "batch_norm", "relu", "dropout"]
    if jk is None:
        assert ops(spec) == layer * 2 + ["gcn_conv"]
    else:
        assert ops(spec) == layer * 3 + (["concat"] if jk == "cat" else []) + ["linear"]
        assert spec["ops"][-1]["params"]["weight"] == "lin.weight"
        assert spec["ops"][-1]["attrs"]["in_channels"] == (24 if jk == "cat" else 8)
    convs = [op for op in spec["ops"] if op["op"] == "gcn_conv"]
    assert all(op["attrs"]["edge_weight"] == weighted for op in convs)
    assert convs[0]["params"] == {"weight": "convs.0.lin.weight", "bias": "convs.0.bias"}
    assert spec["ops"][1]["params"]["weight"] == "norms.0.module.weight"


def test_basic_sage_and_gin(tmp_path):
    sage = models.GraphSAGE(5, 8, num_layers=2, out_channels=4, aggr="max", act="leaky_relu",
                            act_kwargs={"negative_slope": 0.05})
    spec = export_and_check(perturb(sage), random_graph(), tmp_path)
    assert ops(spec) == ["sage_conv", "leaky_relu", "sage_conv"]
    assert spec["ops"][0]["attrs"]["aggr"] == "max"
    assert spec["ops"][1]["attrs"]["negative_slope"] == 0.05

    gin = models.GIN(5, 8, num_layers=2, out_channels=3, norm="batch_norm", train_eps=True)
    spec = export_and_check(perturb(gin), random_graph(), tmp_path)
    mlp = ["linear", "batch_norm", "relu", "linear"]
    assert ops(spec) == ["gin_aggregate"] + mlp + ["batch_norm", "relu", "gin_aggregate"] + mlp
    assert spec["ops"][0]["attrs"]["eps"] == 0.25
    assert spec["ops"][1]["params"]["weight"] == "convs.0.nn.lins.0.weight"


def test_act_first(tmp_path):
    model = models.GCN(5, 8, num_layers=2, out_channels=3, norm="batch_norm", act_first=True)
    spec = export_and_check(perturb(model), random_graph(), tmp_path)
    assert ops(spec) == ["gcn_conv", "relu", "batch_norm", "gcn_conv"]


def test_pyg_sequential(tmp_path):
    model = gnn.Sequential("x, edge_index, batch", [
        (GCNConv(5, 8), "x, edge_index -> x"),
        torch.nn.ReLU(inplace=True),
        (SAGEConv(8, 8), "x, edge_index -> x"),
        (gnn.global_mean_pool, "x, batch -> x"),
        torch.nn.Linear(8, 2),
    ])
    spec = export_and_check(perturb(model), random_batch(), tmp_path)
    assert ops(spec) == ["gcn_conv", "relu", "sage_conv", "global_mean_pool", "linear"]
    assert spec["task"] == "graph"


def test_residual_on_input_and_tensor_methods(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 5)

        def forward(self, x, edge_index):
            return torch.relu(self.conv(x, edge_index)) + x

    spec = export_and_check(perturb(Net()), random_graph(), tmp_path)
    assert ops(spec) == ["gcn_conv", "relu", "add"]
    assert spec["ops"][2]["inputs"] == ["relu", "x"]


# ---------------------------------------------------------------- unsupported models

def raises_naming(model, data, *words):
    with pytest.raises(tinygnn.ExportError) as info:
        tinygnn.build_spec(model, data)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_rejects_unsupported_conv():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = GCNConv(5, 4)
            self.att = gnn.ResGatedGraphConv(4, 4)

        def forward(self, x, edge_index):
            return self.att(self.conv1(x, edge_index), edge_index)

    raises_naming(Net(), random_graph(), "'att'", "ResGatedGraphConv")


def test_rejects_unsupported_sage_configs():
    for kwargs, word in [({"project": True}, "project"), ({"aggr": "lstm"}, "lstm")]:
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.sage = SAGEConv(5, 4, **kwargs)

            def forward(self, x, edge_index):
                return self.sage(x, edge_index)

        raises_naming(Net(), random_graph(), "'sage'", word)


def test_rejects_unsupported_function_and_module():
    class Fn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 4)

        def forward(self, x, edge_index):
            return F.gelu(self.conv(x, edge_index))  # (F.elu is supported since edgefeat)

    raises_naming(Fn(), random_graph(), "gelu")

    class InMlp(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gin = GINConv(torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.GELU()))

        def forward(self, x, edge_index):
            return self.gin(x, edge_index)

    raises_naming(InMlp(), random_graph(), "gin.nn.1", "GELU")


def test_rejects_unsupported_basic_gnns():
    # (models.EdgeCNN is supported since the EdgeConv nn may be an MLP: test_forms.py.)
    pna = models.PNA(5, 8, 2, aggregators=["mean"], scalers=["identity"],
                     deg=torch.tensor([1, 2, 3]))
    raises_naming(pna, random_graph(), "convs.0", "PNAConv", "GCNConv")
    raises_naming(models.GCN(5, 8, 2, jk="max"), random_graph(), "jk='max'")
    with pytest.raises(tinygnn.ExportError) as info:
        tinygnn.build_spec(models.GCN(5, 8, 2, norm="layer_norm"), random_graph())
    msg = str(info.value)
    assert "norms.0" in msg and "LayerNorm" in msg and "mode='node'" in msg, msg
    assert "batch vector" not in msg, msg


def test_rejects_concat_along_nodes_and_data_dependent_code():
    class Cat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 4)

        def forward(self, x, edge_index):
            h = self.conv(x, edge_index)
            return torch.cat([h, h], dim=0)

    raises_naming(Cat(), random_graph(), "dim=0")

    class Dyn(torch.nn.Module):
        def forward(self, x, edge_index):
            return x if x.sum() > 0 else -x

    raises_naming(Dyn(), random_graph(), "trace")


def test_missing_required_input():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 4)

        def forward(self, x, edge_index, edge_weight):
            return self.conv(x, edge_index, edge_weight)

    raises_naming(Net(), random_graph(edge_weight=False), "edge_weight")


def test_export_restores_training_mode(tmp_path):
    model = TwoGCN().train()
    tinygnn.export(model, tmp_path / "m.safetensors", example=random_graph())
    assert model.training


def test_nested_basic_gnn_with_mlp_head(tmp_path):
    """The pattern of PyG's graph classification examples: a GIN model, pooling, an MLP."""

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gnn = models.GIN(5, 8, num_layers=2, norm="batch_norm", train_eps=True)
            self.head = gnn.MLP([8, 8, 3], norm=None, dropout=0.5)

        def forward(self, x, edge_index, batch):
            return self.head(gnn.global_add_pool(self.gnn(x, edge_index), batch))

    spec = export_and_check(perturb(Net()), random_batch(), tmp_path)
    assert ops(spec)[-5:] == ["global_add_pool", "linear", "relu", "dropout", "linear"]
    assert spec["ops"][1]["params"]["weight"] == "gnn.convs.0.nn.lins.0.weight"
    assert spec["ops"][-1]["params"]["weight"] == "head.lins.1.weight"


def test_cached_gcn_is_exported_uncached(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 4, cached=True)

        def forward(self, x, edge_index):
            return self.conv(x, edge_index)

    spec = export_and_check(perturb(Net()), random_graph(), tmp_path)
    assert ops(spec) == ["gcn_conv"]


def test_rejects_message_passing_after_pooling():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(5, 5)

        def forward(self, x, edge_index, batch):
            return self.conv(gnn.global_mean_pool(x, batch), edge_index)

    with pytest.raises(tinygnn.ExportError, match="graph-level"):
        tinygnn.build_spec(Net(), random_batch())


# ---------------------------------------------------------------- attention


@pytest.mark.parametrize("v2", [False, True])
@pytest.mark.parametrize("concat", [True, False])
def test_gat_modules_traced(tmp_path, v2, concat):
    Conv = gnn.GATv2Conv if v2 else GATConv

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = Conv(5, 3, heads=4, concat=concat, negative_slope=0.1)
            self.conv2 = Conv(12 if concat else 3, 2, heads=2, add_self_loops=False)

        def forward(self, x, edge_index):
            return self.conv2(F.relu(self.conv1(x, edge_index)), edge_index)

    spec = export_and_check(perturb(Net()), random_graph(), tmp_path)
    name = "gatv2_conv" if v2 else "gat_conv"
    assert ops(spec) == [name, "relu", name]
    a = spec["ops"][0]["attrs"]
    assert (a["heads"], a["concat"], a["negative_slope"], a["out_channels"]) == (4, concat, 0.1, 3)
    assert spec["ops"][2]["attrs"]["add_self_loops"] is False
    roles = set(spec["ops"][0]["params"])
    if v2:
        assert roles == {"weight_l", "bias_l", "weight_r", "bias_r", "att", "bias"}
    else:
        assert roles == {"weight", "att_src", "att_dst", "bias"}


def test_gat_basic_model_and_shared_weights(tmp_path):
    model = models.GAT(5, 8, num_layers=2, out_channels=3, heads=4)
    spec = export_and_check(perturb(model), random_graph(), tmp_path)
    assert ops(spec) == ["gat_conv", "relu", "gat_conv"]
    assert spec["ops"][0]["params"]["weight"] == "convs.0.lin.weight"
    assert spec["ops"][2]["attrs"]["concat"] is False  # PyG's output layer averages
    seq = gnn.Sequential("x, edge_index", [
        (gnn.GATv2Conv(5, 4, heads=2, share_weights=True), "x, edge_index -> x")])
    spec = export_and_check(perturb(seq), random_graph(), tmp_path)
    assert spec["ops"][0]["attrs"]["share_weights"] is True
    assert "weight_r" not in spec["ops"][0]["params"]


def test_gat_rejects_edge_features_and_residual():
    # edge_dim without the graph's edge_attr in the call (GATConv and GATv2Conv), residual.
    for conv, kwargs, word in [(GATConv, {"edge_dim": 3}, "edge_dim"),
                               (gnn.GATv2Conv, {"edge_dim": 3}, "edge_dim"),
                               (GATConv, {"residual": True}, "residual")]:
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.att = conv(5, 4, **kwargs)

            def forward(self, x, edge_index):
                return self.att(x, edge_index)

        raises_naming(Net(), random_graph(), "'att'", word)


class SoftmaxHead(torch.nn.Module):
    """TwoGCN ending the way PyG's examples end: a (log-)softmax over the channels."""

    def __init__(self, how):
        super().__init__()
        self.gcn = TwoGCN()
        self.how = how

    def forward(self, x, edge_index):
        h = self.gcn(x, edge_index)
        if self.how == "F.log_softmax":
            return F.log_softmax(h, dim=1)
        if self.how == "torch.softmax":
            return torch.softmax(h, -1)
        if self.how == "Tensor.log_softmax":
            return h.log_softmax(dim=-1)
        return F.softmax(h, dim=0)  # over the nodes: refused


@pytest.mark.parametrize("how,op", [("F.log_softmax", "log_softmax"),
                                    ("torch.softmax", "softmax"),
                                    ("Tensor.log_softmax", "log_softmax")])
def test_softmax_heads(tmp_path, how, op):
    spec = export_and_check(perturb(SoftmaxHead(how)), random_graph(), tmp_path)
    assert ops(spec)[-1] == op


def test_rejects_softmax_over_nodes():
    raises_naming(SoftmaxHead("F.softmax over nodes"), random_graph(), "softmax", "dim=0")
