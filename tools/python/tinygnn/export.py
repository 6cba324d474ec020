"""Export PyTorch Geometric models to ``MODEL.safetensors`` (see ``docs/interchange.md``).

The exporter turns a model into the *spec*, a flat list of ops in execution order, plus
the model's float ``state_dict``. Two strategies are used:

* PyG's ready-made models (``GCN``, ``GraphSAGE``, ``GIN``, ``GAT``, ``EdgeCNN``), an ``MLP``
  or a single supported layer are read from their attributes (``convs``, ``norms``, ``act``,
  ``jk``, ``lin``, ``lins``), mirroring their forward instead of tracing its Python loop.
* Any other module (including ``torch_geometric.nn.Sequential``) is traced with
  ``torch.fx``; PyG layers are kept as leaf modules and translated one by one. Its forward
  takes ``(x, edge_index, ...)`` matched by name, or a ``Data`` (``forward(self, data)``).

What is translated is the tables ``_MODULES`` and ``_FUNCTIONS`` below (public as
``SUPPORTED_MODULES`` / ``SUPPORTED_FUNCTIONS``, listed in ``tools/python/README.md``).
Everything else raises :class:`ExportError` naming the module or function and the nearest
supported form, so that a model is never exported with silently wrong semantics; so does an
example graph with wrong dtypes, shapes, indices or non-finite values.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import math
import operator
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.fx
import torch.nn.functional as F
from .graphs import load_graphs
from .tensors_io import check_not_input, save_tensors

import torch_geometric
import torch_geometric.nn as pyg_nn
import torch_geometric.nn.pool as pyg_pool
import torch_geometric.nn.pool.glob as pyg_glob
from torch_geometric.data import Batch as PygBatch, Data
from torch_geometric.data.data import BaseData
from torch_geometric.nn import (APPNP, ChebConv, DynamicEdgeConv, GATConv, GATv2Conv, GCN2Conv, GCNConv,
                                GINConv, GINEConv, GPSConv, HypergraphConv, SAGEConv, SGConv,
                                TAGConv, TransformerConv)
from torch_geometric.nn.aggr import Aggregation
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense.linear import Linear as PygLinear
from torch_geometric.nn.models import MLP
from torch_geometric.nn.models.basic_gnn import BasicGNN
from torch_geometric.nn.norm import BatchNorm as PygBatchNorm
from torch_geometric.nn.norm import LayerNorm as PygLayerNorm

__all__ = ["ExportError", "ExportResult", "SPEC_VERSION", "export", "build_spec", "call_with_data",
           "export_link", "build_link_spec", "LINK_DECODERS", "SPEC_OPS", "SUPPORTED_MODULES",
           "SUPPORTED_FUNCTIONS"]

SPEC_VERSION = 1
EXPORTER_VERSION = "0.1.0"

# ---- What the exporter understands. These tables are the source of truth: the exporter
# dispatches on them, and tests/test_docs.py checks that tools/python/README.md lists
# exactly these names and docs/interchange.md exactly SPEC_OPS.

# Every op a spec may contain (docs/interchange.md, "Ops").
SPEC_OPS = ("linear", "batch_norm", "relu", "leaky_relu", "elu", "dropout", "identity",
            "gcn_conv", "sage_conv", "gin_aggregate", "global_add_pool", "global_mean_pool",
            "global_max_pool", "add", "concat", "gat_conv", "gatv2_conv", "appnp", "sg_conv",
            "gcn2_conv", "tag_conv", "gine_conv", "edge_conv", "dynamic_edge_conv",
            "inner_product", "pair_hadamard", "pair_concat", "softmax", "log_softmax",
            "sigmoid", "tanh", "layer_norm", "transformer_conv", "global_attention",
            "attention_pool", "random_walk_pe", "hypergraph_conv", "mul", "rsub", "cheb_conv")

# Modules: public name -> (builder method, spec ops the module becomes). Matched by exact
# class, except Linear and BatchNorm1d (subclasses too). A GINConv/GINEConv's nn and a
# BasicGNN's layers add their own ops.
_MODULES: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "torch_geometric.nn.GCNConv": ("_gcn", ("gcn_conv",)),
    "torch_geometric.nn.SAGEConv": ("_sage", ("sage_conv",)),
    "torch_geometric.nn.GINConv": ("_gin", ("gin_aggregate",)),
    "torch_geometric.nn.GINEConv": ("_gine", ("gine_conv",)),
    "torch_geometric.nn.GATConv": ("_gat", ("gat_conv",)),
    "torch_geometric.nn.GATv2Conv": ("_gat", ("gatv2_conv",)),
    "torch_geometric.nn.TransformerConv": ("_transformer", ("transformer_conv",)),
    "torch_geometric.nn.HypergraphConv": ("_hypergraph", ("hypergraph_conv",)),
    "torch_geometric.nn.GPSConv": ("_needs_call", ("global_attention", "linear", "add",
                                                   "batch_norm", "layer_norm", "relu")),
    "torch_geometric.nn.APPNP": ("_propagate", ("appnp",)),
    "torch_geometric.nn.SGConv": ("_propagate", ("sg_conv",)),
    "torch_geometric.nn.GCN2Conv": ("_needs_call", ("gcn2_conv",)),
    "torch_geometric.nn.TAGConv": ("_tag", ("tag_conv",)),
    "torch_geometric.nn.ChebConv": ("_cheb", ("cheb_conv",)),
    "torch_geometric.nn.EdgeConv": ("_edge_conv", ("edge_conv",)),
    "torch_geometric.nn.DynamicEdgeConv": ("_edge_conv", ("dynamic_edge_conv",)),
    "torch_geometric.nn.models.GCN": ("_basic_gnn", ("gcn_conv",)),
    "torch_geometric.nn.models.GraphSAGE": ("_basic_gnn", ("sage_conv",)),
    "torch_geometric.nn.models.GIN": ("_basic_gnn", ("gin_aggregate",)),
    "torch_geometric.nn.models.GAT": ("_basic_gnn", ("gat_conv", "gatv2_conv")),
    "torch_geometric.nn.models.EdgeCNN": ("_basic_gnn", ("edge_conv",)),
    "torch_geometric.nn.MLP": ("_mlp", ("linear", "batch_norm", "layer_norm", "relu",
                                         "leaky_relu", "elu",
                                         "dropout")),
    "torch_geometric.nn.Sequential": ("", ()),  # traced through: its layers are the ops
    "torch_geometric.nn.Linear": ("_linear", ("linear",)),
    "torch_geometric.nn.BatchNorm": ("_batch_norm", ("batch_norm",)),
    "torch_geometric.nn.LayerNorm": ("_layer_norm", ("layer_norm",)),
    "torch_geometric.nn.aggr.SumAggregation": ("_needs_call", ("global_add_pool",)),
    "torch_geometric.nn.aggr.MeanAggregation": ("_needs_call", ("global_mean_pool",)),
    "torch_geometric.nn.aggr.MaxAggregation": ("_needs_call", ("global_max_pool",)),
    "torch_geometric.nn.aggr.AttentionalAggregation": ("_needs_call", ("attention_pool",)),
    "torch_geometric.nn.aggr.SoftmaxAggregation": ("_needs_call", ("attention_pool",)),
    "torch.nn.Sequential": ("_sequential", ()),
    "torch.nn.Linear": ("_linear", ("linear",)),
    "torch.nn.BatchNorm1d": ("_batch_norm", ("batch_norm",)),
    "torch.nn.LayerNorm": ("_layer_norm", ("layer_norm",)),
    "torch.nn.ReLU": ("_activation", ("relu",)),
    "torch.nn.LeakyReLU": ("_activation", ("leaky_relu",)),
    "torch.nn.ELU": ("_activation", ("elu",)),
    "torch.nn.Sigmoid": ("_activation", ("sigmoid",)),
    "torch.nn.Tanh": ("_activation", ("tanh",)),
    "torch.nn.Dropout": ("_dropout_module", ("dropout",)),
    "torch.nn.Identity": ("_identity", ()),
    "torch.nn.GRUCell": ("_needs_call", ("concat", "linear", "sigmoid", "tanh", "mul",
                                         "rsub", "add")),
    "torch.nn.LSTMCell": ("_needs_call", ("concat", "linear", "sigmoid", "tanh", "mul",
                                          "add")),
}
# Functions and Tensor methods called in a traced forward: public name -> spec op.
_FUNCTIONS: Dict[str, str] = {
    "torch.nn.functional.relu": "relu", "torch.nn.functional.relu_": "relu",
    "torch.relu": "relu", "torch.relu_": "relu",
    "torch.Tensor.relu": "relu", "torch.Tensor.relu_": "relu",
    "torch.nn.functional.leaky_relu": "leaky_relu",
    "torch.nn.functional.leaky_relu_": "leaky_relu",
    "torch.nn.functional.elu": "elu", "torch.nn.functional.elu_": "elu",
    "torch.sigmoid": "sigmoid", "torch.nn.functional.sigmoid": "sigmoid",
    "torch.Tensor.sigmoid": "sigmoid", "torch.Tensor.sigmoid_": "sigmoid",
    "torch.tanh": "tanh", "torch.nn.functional.tanh": "tanh",
    "torch.Tensor.tanh": "tanh", "torch.Tensor.tanh_": "tanh",
    "torch.nn.functional.softmax": "softmax", "torch.softmax": "softmax",
    "torch.Tensor.softmax": "softmax",
    "torch.nn.functional.log_softmax": "log_softmax", "torch.log_softmax": "log_softmax",
    "torch.Tensor.log_softmax": "log_softmax",
    "torch.nn.functional.dropout": "dropout", "torch.dropout": "dropout",
    "operator.add": "add", "operator.iadd": "add", "torch.add": "add",
    "torch.Tensor.add": "add", "torch.Tensor.add_": "add", "torch.Tensor.__add__": "add",
    "torch.cat": "concat", "torch.concat": "concat",
    "operator.mul": "mul", "operator.imul": "mul", "torch.mul": "mul",
    "torch.Tensor.mul": "mul", "torch.Tensor.mul_": "mul", "torch.Tensor.__mul__": "mul",
    "operator.sub": "rsub", "torch.sub": "rsub", "torch.rsub": "rsub",
    "torch.Tensor.sub": "rsub", "torch.Tensor.__rsub__": "rsub",
    "torch_geometric.nn.global_add_pool": "global_add_pool",
    "torch_geometric.nn.global_mean_pool": "global_mean_pool",
    "torch_geometric.nn.global_max_pool": "global_max_pool",
}


def _resolve(name: str) -> Any:
    """The object a dotted public name refers to (``torch.nn.functional.relu`` ...)."""
    import importlib
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


SUPPORTED_MODULES: Dict[str, Tuple[str, ...]] = {k: v[1] for k, v in _MODULES.items()}
SUPPORTED_FUNCTIONS: Dict[str, str] = dict(_FUNCTIONS)
_MODULE_HANDLERS: Dict[type, str] = {_resolve(k): v[0] for k, v in _MODULES.items() if v[0]}
_SUBCLASSES_OK = (torch.nn.Linear, PygLinear, torch.nn.BatchNorm1d, PygBatchNorm)
_FUNCTION_OPS: Dict[Any, str] = {_resolve(k): v for k, v in _FUNCTIONS.items()
                                 if not k.startswith("torch.Tensor.")}
_METHOD_OPS: Dict[str, str] = {k.rsplit(".", 1)[1]: v for k, v in _FUNCTIONS.items()
                               if k.startswith("torch.Tensor.")}
# Global pooling functions, by identity, and the spec op they become.
_POOLS = {fn: op for fn, op in _FUNCTION_OPS.items() if op.startswith("global_")}
_AGGREGATIONS = {_resolve(k): v[1][0] for k, v in _MODULES.items()
                 if ".aggr." in k and v[1][0].startswith("global_")}
_BASIC_GNNS = tuple(c for c, h in _MODULE_HANDLERS.items() if h == "_basic_gnn")


def _module_handler(mod: torch.nn.Module) -> Optional[str]:
    handler = _MODULE_HANDLERS.get(type(mod))
    if handler is None and isinstance(mod, _SUBCLASSES_OK):
        handler = next(h for c, h in _MODULE_HANDLERS.items()
                       if c in _SUBCLASSES_OK and isinstance(mod, c))
    return handler


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _names(handlers: Sequence[str]) -> str:
    return ", ".join(_short(k) for k, v in _MODULES.items() if v[0] in handlers)


_NORM_HINT = ("tinygnn supports batch normalization with running statistics "
              "(torch.nn.BatchNorm1d, torch_geometric.nn.BatchNorm, norm='batch_norm' in PyG "
              "models and MLP), folded into the linear map before it, and layer normalization "
              "over each node's channels (torch.nn.LayerNorm(C), torch_geometric.nn.LayerNorm "
              "with mode='node', norm='layer_norm' with norm_kwargs={'mode': 'node'})")
_ACT_HINT = ("supported activations: ReLU, LeakyReLU, ELU, Sigmoid, Tanh (torch.nn modules, "
             "F.relu, F.leaky_relu, F.elu, torch.sigmoid, torch.tanh and the Tensor methods, or "
             "act='relu' / 'leaky_relu' / 'elu' in PyG models and MLP)")
_POOL_HINT = ("supported graph pooling: global_add_pool, global_mean_pool, global_max_pool, "
              "or SumAggregation / MeanAggregation / MaxAggregation / SoftmaxAggregation / "
              "AttentionalAggregation called as aggr(x, batch)")


def _suggestion(mod: torch.nn.Module) -> str:
    """What to use instead of an unsupported module (the nearest supported form)."""
    t = type(mod)
    where = t.__module__
    if isinstance(mod, Aggregation):
        return _POOL_HINT
    if isinstance(mod, BasicGNN):
        return (f"supported PyG models: {_names(['_basic_gnn'])}; or build the model from "
                "the supported layers in a module of your own")
    if isinstance(mod, MessagePassing):
        convs = _names(["_gcn", "_sage", "_gin", "_gine", "_gat", "_propagate", "_tag",
                        "_edge_conv"])
        return (f"supported message-passing layers: {convs}, "
                "GCN2Conv; replace it by the nearest one (tools/python/README.md)")
    if "norm" in where.lower() or "Norm" in t.__name__:
        return _NORM_HINT
    if where.startswith("torch.nn.modules.activation"):
        return _ACT_HINT
    if where.startswith("torch.nn.modules.dropout"):
        return "use torch.nn.Dropout (identity in eval mode)"
    if where.startswith("torch_geometric.nn.pool"):
        return _POOL_HINT
    return ("tinygnn translates the modules listed in tools/python/README.md; a module of "
            "your own is understood when its forward is traced (called from a traced "
            "forward), not inside a Sequential or a GINConv/EdgeConv nn")


def _function_suggestion(fn: Any) -> str:
    name = (fn if isinstance(fn, str) else getattr(fn, "__name__", str(fn))).lower()
    if any(a in name for a in ("gelu", "silu", "selu", "softplus", "prelu",
                               "relu6", "hardtanh", "mish", "celu", "swish")):
        return _ACT_HINT
    if "pool" in name or "scatter" in name:
        return _POOL_HINT
    if "norm" in name:
        return _NORM_HINT
    if "dropout" in name:
        return "use F.dropout or torch.nn.Dropout (identity in eval mode)"
    if name in ("getitem", "__getitem__", "index_select", "narrow", "view", "reshape"):
        return ("indexing, slicing or reshaping tensors in forward is not supported; tinygnn "
                "values are whole [rows, channels] tensors")
    if name in ("stack", "hstack", "vstack", "concatenate"):
        return "use torch.cat([...], dim=-1) (concatenation along the channels)"
    if name in ("sub", "mul", "truediv", "div", "matmul", "mm", "sum", "mean", "max"):
        return ("element-wise arithmetic other than a + b (residual) is not supported; use "
                "modules (Linear, pooling) for the rest")
    return "see tools/python/README.md for the supported functions"


def _flow_error(qual: str, name: str, flow: str) -> ExportError:
    return ExportError(f"module '{qual}' ({name}) uses flow='{flow}'; use the default "
                       "flow='source_to_target'")


def _check_layer_norm(norm: torch.nn.Module, q: str) -> Tuple[int, float]:
    """A layer norm over each row's channels: its channels and eps."""
    if isinstance(norm, PygLayerNorm):
        if norm.mode != "node":
            raise ExportError(f"module '{q}' (torch_geometric.nn.LayerNorm) uses "
                              f"mode='{norm.mode}' (statistics over each whole graph); use "
                              "mode='node' (each node's channels, as torch.nn.LayerNorm), e.g. "
                              "norm_kwargs={'mode': 'node'} in PyG models and MLP")
        return int(norm.in_channels), float(norm.eps)
    shape = tuple(norm.normalized_shape)
    if len(shape) != 1:
        raise ExportError(f"module '{q}' (torch.nn.LayerNorm) normalizes over {shape}; use "
                          "torch.nn.LayerNorm(C) (the channels of each node)")
    return int(shape[0]), float(norm.eps)


def _check_norm(norm: torch.nn.Module, q: str, owner: str, use: str) -> None:
    """The norms of an MLP or BasicGNN: batch normalization, layer normalization over the
    channels, or none."""
    if isinstance(norm, (torch.nn.Identity, torch.nn.BatchNorm1d, PygBatchNorm)):
        return
    if isinstance(norm, (torch.nn.LayerNorm, PygLayerNorm)):
        _check_layer_norm(norm, q)
        return
    t = type(norm)
    raise ExportError(f"module '{q}' ({t.__module__}.{t.__name__}) in {owner} is not "
                      f"supported; {_NORM_HINT}: build {owner} with {use}")


def _check_batch_norm(bn: torch.nn.Module, q: str) -> None:
    if not isinstance(bn, torch.nn.BatchNorm1d):
        t = type(bn)
        raise ExportError(f"unsupported module '{q}' ({t.__module__}.{t.__name__}); {_NORM_HINT}")
    if bn.running_mean is None or bn.running_var is None:
        raise ExportError(f"module '{q}' (BatchNorm1d) has track_running_stats=False (it "
                          "normalizes with the statistics of each input); train it with "
                          "track_running_stats=True (the default)")
    if not bn.affine:
        raise ExportError(f"module '{q}' (BatchNorm1d) has affine=False; use affine=True "
                          "(the default)")


def _check_edge_nn(layers: List[dict], who: str) -> None:
    """The nn shape the runtime's EdgeConv runs (tools' parse_nn): ``linear [batch_norm]
    [act] [linear [batch_norm] [act]]``, dropout/identity anywhere."""
    form = ("linear [batch_norm] [relu|leaky_relu] [linear [batch_norm] [relu|leaky_relu]], "
            "e.g. MLP([2 * F, hidden, out]) or MLP([2 * F, out])")
    lins, state = 0, None
    for layer in layers:
        op = layer["op"]
        if op == "linear":
            if lins == 2:
                raise ExportError(f"{who}: its nn has more than two Linear layers; the "
                                  f"runtime's EdgeConv runs {form}")
            if lins == 1 and state != "act":
                raise ExportError(f"{who}: its nn has two Linear layers without an activation "
                                  f"between them; the runtime's EdgeConv runs {form}")
            lins, state = lins + 1, "lin"
        elif op == "batch_norm":
            if state != "lin":
                raise ExportError(f"{who}: a batch_norm in its nn must directly follow a "
                                  f"Linear (with an MLP: act_first=False); the runtime's "
                                  f"EdgeConv runs {form}")
            state = "bn"
        elif op in ("relu", "leaky_relu"):
            if state not in ("lin", "bn"):
                raise ExportError(f"{who}: an activation in its nn must follow a Linear (or "
                                  f"its batch_norm); the runtime's EdgeConv runs {form}")
            state = "act"
    if lins == 0:
        raise ExportError(f"{who}: its nn has no Linear layer; the runtime's EdgeConv runs "
                          f"{form}")


def _activation_op(mod: torch.nn.Module) -> Tuple[str, dict]:
    if type(mod) is torch.nn.ReLU:
        return "relu", {}
    if type(mod) is torch.nn.LeakyReLU:
        return "leaky_relu", {"negative_slope": float(mod.negative_slope)}
    if type(mod) is torch.nn.Sigmoid:
        return "sigmoid", {}
    if type(mod) is torch.nn.Tanh:
        return "tanh", {}
    return "elu", {"alpha": float(mod.alpha)}


_SAGE_AGGRS = {"mean": "mean", "max": "max", "sum": "sum", "add": "sum"}
_NODE_ONLY_OPS = {"gcn_conv", "sage_conv", "gin_aggregate", "gat_conv", "gatv2_conv",
                  "transformer_conv", "global_attention", "attention_pool",
                  "appnp", "sg_conv", "gcn2_conv", "tag_conv",
                  "gine_conv", "edge_conv", "dynamic_edge_conv"}  # need the graph's edges
EDGE_INPUT = "edge_attr"  # spec name of the edge-feature input (edgefeat)
# Graph inputs a forward may take (by parameter name) or read from a Data argument.
_GRAPH_INPUTS = ("edge_index", "edge_weight", "edge_attr", "batch", "hyperedge_index",
                 "hyperedge_weight")

# Forward arguments that carry a recurrent cell's state when the example graph has them
# (data.h, data.c, ...; an upper-case argument such as torch-geometric-temporal's H or C reads
# the lower-case attribute): h and c (an LSTM's), hx/cx, and numbered ones (h1, c_2, state0)
# for a stack of cells.
_STATE_NAME = re.compile(r"(h|c|hx|cx|h_?\d+|c_?\d+|state_?\d*)", re.IGNORECASE)


class ExportError(Exception):
    """The model uses a layer, function or configuration tinygnn cannot represent."""


@dataclass
class ExportResult:
    """What :func:`export` wrote: the spec (a JSON-able dict) and the model's float output
    on the example graph(s), computed by PyG in eval mode."""

    spec: Dict[str, Any]
    output: torch.Tensor
    # Tensors the spec reads besides the model's state_dict (a GRUCell's gate matrices).
    extra: Optional[Dict[str, torch.Tensor]] = None


# --------------------------------------------------------------------------------------
# Calling a model with a Data object
# --------------------------------------------------------------------------------------

def _forward_parameters(model: torch.nn.Module) -> List[inspect.Parameter]:
    params = list(inspect.signature(model.forward).parameters.values())
    for p in params:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise ExportError(f"{type(model).__name__}.forward uses *args/**kwargs; write it "
                              "as forward(self, x, edge_index[, edge_weight][, batch]) or "
                              "forward(self, data)")
    if not params:
        raise ExportError(f"{type(model).__name__}.forward takes no arguments; write it as "
                          "forward(self, x, edge_index[, edge_weight][, batch]) or "
                          "forward(self, data)")
    return params


def _is_data_parameter(p: inspect.Parameter) -> bool:
    """``forward(self, data)``: a first parameter named ``data`` or annotated as a PyG
    ``Data``/``Batch``."""
    ann = p.annotation
    if isinstance(ann, type) and ann is not inspect.Parameter.empty:
        return issubclass(ann, BaseData) or issubclass(ann, PygBatch)
    if isinstance(ann, str):
        return ann.rsplit(".", 1)[-1] in ("Data", "Batch", "BaseData")
    return p.name == "data"


def _bind(model: torch.nn.Module, data: Data) -> Dict[str, Any]:
    """Map ``model.forward``'s parameters to attributes of ``data``.

    The first parameter receives ``data`` itself if it is a ``Data`` parameter
    (``forward(self, data)``, see :func:`_is_data_parameter`), otherwise ``data.x``; the others
    receive the attribute of the same name (``edge_index``, ``edge_weight``, ``batch``, ...).
    Optional parameters for which ``data`` has no value are bound to ``None``.
    """
    bound: Dict[str, Any] = {}
    for i, p in enumerate(_forward_parameters(model)):
        if i == 0:
            value = data if _is_data_parameter(p) else data.x
        else:
            value = getattr(data, p.name, None)
        if value is None and i > 0 and _STATE_NAME.fullmatch(p.name):
            # a recurrent cell's state (see build_spec): H reads data.h, C data.c
            value = getattr(data, p.name.lower(), None)
        if value is None and p.default is inspect.Parameter.empty:
            raise ExportError(f"forward argument '{p.name}' is required but the example "
                              f"graph has no attribute '{p.name}'; give the example a "
                              f"'{p.name}' or make the argument optional ({p.name}=None)")
        bound[p.name] = value
    return bound


def call_with_data(model: torch.nn.Module, data: Data) -> torch.Tensor:
    """Run ``model`` on ``data`` the way the exporter does (arguments matched by name)."""
    bound = _bind(model, data)
    return model(**{k: v for k, v in bound.items() if v is not None})


# --------------------------------------------------------------------------------------
# Spec builder
# --------------------------------------------------------------------------------------

def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class _SpecBuilder:
    """Accumulates ops; translates modules into ops; keeps names unique and tracks whether
    each value is node-level (one row per node) or graph-level (one row per graph)."""

    def __init__(self, state_dict: Dict[str, torch.Tensor], input_name: str = "x"):
        self.state_dict = state_dict
        self.ops: List[Dict[str, Any]] = []
        self.level: Dict[str, str] = {input_name: "node", EDGE_INPUT: "edge"}
        self.input_name = input_name
        self.uses_edge_attr = False  # set by ops that read the edge features
        self.edge_attr_given = False  # the module being translated is called with edge_attr
        self.example_x: Optional[torch.Tensor] = None  # the example's node features
        self.derived: Dict[str, torch.Tensor] = {}  # tensors computed from the weights
        # The recurrent states: (value name "h", forward argument "h" or "H"), in the order
        # of the forward's arguments (= the order of the state buffer).
        self.states: List[Tuple[str, str]] = []

    def derive(self, key: str, t: torch.Tensor) -> str:
        """A tensor computed from the weights (e.g. a GRUCell's gate rows), saved under
        ``key`` next to the state_dict."""
        if key in self.state_dict:
            raise ExportError(f"derived tensor '{key}' collides with a state_dict key")
        t = t.detach().to(torch.float32).contiguous()
        self.state_dict[key] = t
        self.derived[key] = t
        return key

    def gru_cell(self, mod: torch.nn.GRUCell, qual: str, x: str, h: str, base: str) -> str:
        """torch.nn.GRUCell(x, h) as ops: r = σ(W_ir x + b_ir + W_hr h + b_hr),
        z = σ(W_iz x + b_iz + W_hz h + b_hz), n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),
        h' = (1 − z) ⊙ n + z ⊙ h (PyTorch's gate order r, z, n in weight_ih/weight_hh)."""
        H, F_in = mod.hidden_size, mod.input_size
        wi, wh = mod.weight_ih.detach(), mod.weight_hh.detach()
        zeros = torch.zeros(3 * H)
        bi = mod.bias_ih.detach() if mod.bias_ih is not None else zeros
        bh = mod.bias_hh.detach() if mod.bias_hh is not None else zeros
        xh = self.add(f"{base}.xh", "concat", [x, h])
        gates = {}
        for k, g in ((0, "r"), (1, "z")):
            rows = slice(k * H, (k + 1) * H)
            w = self.derive(_join(qual, f"tinygnn_{g}.weight"),
                            torch.cat([wi[rows], wh[rows]], dim=1))
            b = self.derive(_join(qual, f"tinygnn_{g}.bias"), bi[rows] + bh[rows])
            lin = self.add(f"{base}.{g}_lin", "linear", [xh],
                           {"in_channels": F_in + H, "out_channels": H},
                           {"weight": w, "bias": b})
            gates[g] = self.add(f"{base}.{g}", "sigmoid", [lin])
        rows = slice(2 * H, 3 * H)
        nx = self.add(f"{base}.n_x", "linear", [x], {"in_channels": F_in, "out_channels": H},
                      {"weight": self.derive(_join(qual, "tinygnn_n_x.weight"), wi[rows]),
                       "bias": self.derive(_join(qual, "tinygnn_n_x.bias"), bi[rows])})
        nh = self.add(f"{base}.n_h", "linear", [h], {"in_channels": H, "out_channels": H},
                      {"weight": self.derive(_join(qual, "tinygnn_n_h.weight"), wh[rows]),
                       "bias": self.derive(_join(qual, "tinygnn_n_h.bias"), bh[rows])})
        rn = self.add(f"{base}.r_nh", "mul", [gates["r"], nh])
        n = self.add(f"{base}.n", "tanh", [self.add(f"{base}.n_pre", "add", [nx, rn])])
        one_z = self.add(f"{base}.one_z", "rsub", [gates["z"]], {"value": 1.0})
        a = self.add(f"{base}.zn", "mul", [one_z, n])
        b = self.add(f"{base}.zh", "mul", [gates["z"], h])
        return self.add(base, "add", [a, b])

    def lstm_cell(self, mod: torch.nn.LSTMCell, qual: str, x: str, h: str, c: str,
                  base: str) -> Tuple[str, str]:
        """torch.nn.LSTMCell(x, (h, c)) as ops: i = σ(W_ii x + b_ii + W_hi h + b_hi), f, g
        (tanh) and o likewise (PyTorch's gate order i, f, g, o in weight_ih/weight_hh),
        c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c'). Returns (h', c')."""
        H = mod.hidden_size
        wi, wh = mod.weight_ih.detach(), mod.weight_hh.detach()
        zeros = torch.zeros(4 * H)
        bi = mod.bias_ih.detach() if mod.bias_ih is not None else zeros
        bh = mod.bias_hh.detach() if mod.bias_hh is not None else zeros
        xh = self.add(f"{base}.xh", "concat", [x, h])
        gates = {}
        for k, (g, act) in enumerate((("i", "sigmoid"), ("f", "sigmoid"), ("g", "tanh"),
                                      ("o", "sigmoid"))):
            rows = slice(k * H, (k + 1) * H)
            w = self.derive(_join(qual, f"tinygnn_{g}.weight"),
                            torch.cat([wi[rows], wh[rows]], dim=1))
            b = self.derive(_join(qual, f"tinygnn_{g}.bias"), bi[rows] + bh[rows])
            lin = self.add(f"{base}.{g}_lin", "linear", [xh],
                           {"in_channels": mod.input_size + H, "out_channels": H},
                           {"weight": w, "bias": b})
            gates[g] = self.add(f"{base}.{g}", act, [lin])
        fc = self.add(f"{base}.fc", "mul", [gates["f"], c])
        ig = self.add(f"{base}.ig", "mul", [gates["i"], gates["g"]])
        c_next = self.add(f"{base}.c", "add", [fc, ig])
        tc = self.add(f"{base}.tanh_c", "tanh", [c_next])
        return self.add(f"{base}.h", "mul", [gates["o"], tc]), c_next

    def channel_affine(self, base: str, x: str, key: str, scale: Optional[torch.Tensor],
                       bias: Optional[torch.Tensor]) -> str:
        """A learned per-channel product or sum with a tensor of the model (``w ⊙ x``, the
        peephole of torch-geometric-temporal's GConvLSTM, or ``x + b``, its gate bias) as a
        linear op with a diagonal weight: ``diag(scale) x + bias``."""
        n = int((scale if scale is not None else bias).numel())
        s = scale.reshape(n) if scale is not None else torch.ones(n)

        def once(k: str, t: torch.Tensor) -> str:  # the same tensor read twice: one copy
            return k if k in self.derived else self.derive(k, t)

        w = once(f"{key}.tinygnn_diag.weight", torch.diag(s.detach().to(torch.float32)))
        params = {"weight": w}
        if bias is not None:
            params["bias"] = once(f"{key}.tinygnn_diag.bias",
                                  bias.detach().reshape(n).to(torch.float32))
        return self.add(base, "linear", [x], {"in_channels": n, "out_channels": n}, params)

    # -- bookkeeping ------------------------------------------------------------------
    def _unique(self, base: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.]", "_", base) or "op"
        name, k = base, 1
        while name in self.level:
            name = f"{base}_{k}"
            k += 1
        return name

    def param(self, key: str) -> str:
        if key not in self.state_dict:
            raise ExportError(f"parameter '{key}' is not in the model's state_dict; keep "
                              "weights as registered parameters or buffers of the layer")
        return key

    def add(self, base: str, op: str, inputs: Sequence[str], attrs: Optional[dict] = None,
            params: Optional[dict] = None, level: Optional[str] = None) -> str:
        levels = {self.level[i] for i in inputs}
        if len(levels) != 1:
            raise ExportError(f"'{base}' ({op}) mixes node-level and graph-level inputs; "
                              "pool the node-level value first (global_*_pool)")
        in_level = levels.pop()
        if in_level != "node" and (op in _NODE_ONLY_OPS or op.startswith("global_")):
            raise ExportError(f"'{base}' ({op}) is applied to a graph-level value; message "
                              "passing and pooling read node-level values: apply them before "
                              "the global pooling")
        level = level or in_level
        name = self._unique(base)
        entry: Dict[str, Any] = {"name": name, "op": op, "inputs": list(inputs)}
        if attrs:
            entry["attrs"] = attrs
        if params:
            entry["params"] = params
        self.ops.append(entry)
        self.level[name] = level
        return name

    # -- modules ----------------------------------------------------------------------
    def module(self, mod: torch.nn.Module, qual: str, x: str, *, edge_weight: bool = False,
               base: Optional[str] = None) -> str:
        """Emit the ops of one module applied to value ``x``; return the result's name."""
        base = base or qual or type(mod).__name__.lower()
        handler = _module_handler(mod)
        if handler is None:
            raise self.unsupported(mod, qual)
        return getattr(self, handler)(mod, qual, x, edge_weight, base)

    @staticmethod
    def supports(mod: torch.nn.Module) -> bool:
        """Whether ``mod`` is in the exporter's module table."""
        return _module_handler(mod) is not None

    @staticmethod
    def unsupported(mod: torch.nn.Module, qual: str) -> ExportError:
        """The error for a module that is not in the table, with the nearest supported form."""
        t = type(mod)
        return ExportError(f"unsupported module '{qual or '<root>'}' ({t.__module__}."
                           f"{t.__name__}); {_suggestion(mod)}")

    def _sequential(self, mod, qual, x, edge_weight, base):
        for name, child in mod.named_children():
            x = self.module(child, _join(qual, name), x)
        return x

    def _identity(self, mod, qual, x, edge_weight, base):
        return x

    def _activation(self, mod, qual, x, edge_weight, base):
        op, attrs = _activation_op(mod)
        return self.add(base, op, [x], attrs)

    def _dropout_module(self, mod, qual, x, edge_weight, base):
        return self.add(base, "dropout", [x])

    def _needs_call(self, mod, qual, x, edge_weight, base):
        """Modules that need more than the node features (GCN2Conv's x_0, the batch vector of
        an aggregation): only understood as calls in a traced forward."""
        raise ExportError(f"module '{qual}' ({type(mod).__name__}) must be called in the "
                          f"model's forward as {_call_form(mod, qual)}, not inside a "
                          "Sequential or another module's nn")

    def _linear(self, mod, qual, x, edge_weight, base):
        if isinstance(mod.weight, torch.nn.parameter.UninitializedParameter):
            raise ExportError(f"module '{qual}' (Linear) is lazily initialised; run the model once "
                              "or give in_channels explicitly")
        out_c, in_c = mod.weight.shape
        params = {"weight": self.param(_join(qual, "weight"))}
        if mod.bias is not None:
            params["bias"] = self.param(_join(qual, "bias"))
        return self.add(base, "linear", [x], {"in_channels": int(in_c), "out_channels": int(out_c)},
                        params)

    def _batch_norm(self, mod, qual, x, edge_weight, base):
        if isinstance(mod, PygBatchNorm):
            mod, qual = mod.module, _join(qual, "module")
        _check_batch_norm(mod, qual)
        params = {role: self.param(_join(qual, role))
                  for role in ("weight", "bias", "running_mean", "running_var")}
        return self.add(base, "batch_norm", [x],
                        {"channels": int(mod.num_features), "eps": float(mod.eps)}, params)

    def _layer_norm(self, mod, qual, x, edge_weight, base):
        channels, eps = _check_layer_norm(mod, qual)
        params = {role: self.param(_join(qual, role)) for role in ("weight", "bias")
                  if getattr(mod, role, None) is not None}
        return self.add(base, "layer_norm", [x], {"channels": channels, "eps": eps},
                        params or None)

    def _dropout(self, base: str, x: str, p: float) -> str:
        return self.add(base, "dropout", [x]) if p > 0 else x

    def _gcn(self, mod: GCNConv, qual, x, edge_weight, base):
        if mod.flow != "source_to_target":
            raise _flow_error(qual, "GCNConv", mod.flow)
        # cached=True only memoises the normalisation of the first graph seen; for a
        # single graph it computes the same values, so it is exported as uncached.
        w = mod.lin.weight
        params = {"weight": self.param(_join(qual, "lin.weight"))}
        if mod.bias is not None:
            params["bias"] = self.param(_join(qual, "bias"))
        attrs = {"in_channels": int(w.shape[1]), "out_channels": int(w.shape[0]),
                 "improved": bool(mod.improved), "add_self_loops": bool(mod.add_self_loops),
                 "normalize": bool(mod.normalize), "edge_weight": bool(edge_weight)}
        return self.add(base, "gcn_conv", [x], attrs, params)

    def _sage(self, mod: SAGEConv, qual, x, edge_weight, base):
        if mod.project:
            raise ExportError(f"module '{qual}' (SAGEConv) uses project=True; use "
                              "project=False (the default)")
        if not isinstance(mod.aggr, str) or mod.aggr not in _SAGE_AGGRS:
            raise ExportError(f"module '{qual}' (SAGEConv) uses aggr={mod.aggr!r}; use "
                              "aggr='mean', 'max' or 'sum' (as a string)")
        if isinstance(mod.in_channels, (tuple, list)) or mod.flow != "source_to_target":
            raise ExportError(f"module '{qual}' (SAGEConv) is bipartite or uses another "
                              "flow; use one in_channels (not a tuple) and the default "
                              "flow='source_to_target'")
        params = {"weight_l": self.param(_join(qual, "lin_l.weight"))}
        if mod.lin_l.bias is not None:
            params["bias_l"] = self.param(_join(qual, "lin_l.bias"))
        if mod.root_weight:
            params["weight_r"] = self.param(_join(qual, "lin_r.weight"))
        attrs = {"in_channels": int(mod.in_channels), "out_channels": int(mod.out_channels),
                 "aggr": _SAGE_AGGRS[mod.aggr], "normalize": bool(mod.normalize),
                 "root_weight": bool(mod.root_weight)}
        return self.add(base, "sage_conv", [x], attrs, params)

    def _gps_norm(self, norm, qual: str, x: str, base: str) -> str:
        if norm is None:
            return x
        if isinstance(norm, (torch.nn.BatchNorm1d, PygBatchNorm)):
            return self._batch_norm(norm, qual, x, False, base)
        if isinstance(norm, (torch.nn.LayerNorm, PygLayerNorm)):
            return self._layer_norm(norm, qual, x, False, base)
        t = type(norm)
        raise ExportError(f"module '{qual}' ({t.__module__}.{t.__name__}) in a GPSConv is not "
                          "supported; build the GPSConv with norm='batch_norm' (the default), "
                          "norm='layer_norm' with norm_kwargs={'mode': 'node'}, or norm=None")

    def gps(self, mod: GPSConv, qual: str, x: str, base: str) -> str:
        """GPSConv (eval): ``h1 = norm1(conv(x) + x)``, ``h2 = norm2(attn(x) + x)`` with
        ``attn`` a ``torch.nn.MultiheadAttention`` over each graph's nodes (global_attention
        then out_proj), ``out = h1 + h2``, ``norm3(out + mlp(out))``."""
        name = f"module '{qual or '<root>'}' (GPSConv)"
        attn = mod.attn
        if mod.attn_type != "multihead" or not isinstance(attn, torch.nn.MultiheadAttention):
            raise ExportError(f"{name} uses attn_type='{mod.attn_type}'; use "
                              "attn_type='multihead' (the default)")
        if not attn._qkv_same_embed_dim or attn.bias_k is not None or attn.add_zero_attn:
            raise ExportError(f"{name}: its MultiheadAttention uses kdim/vdim, add_bias_kv or "
                              "add_zero_attn; build it with the defaults")
        c, heads = int(mod.channels), int(mod.heads)
        hs = []
        if mod.conv is not None:
            h = self.module(mod.conv, _join(qual, "conv"), x, base=f"{base}.conv")
            h = self.add(f"{base}.res1", "add", [h, x])
            hs.append(self._gps_norm(mod.norm1, _join(qual, "norm1"), h, f"{base}.norm1"))
        params = {"in_proj_weight": self.param(_join(qual, "attn.in_proj_weight"))}
        if attn.in_proj_bias is not None:
            params["in_proj_bias"] = self.param(_join(qual, "attn.in_proj_bias"))
        a = self.add(f"{base}.attn", "global_attention", [x], {"channels": c, "heads": heads},
                     params)
        a = self._linear(attn.out_proj, _join(qual, "attn.out_proj"), a, False,
                         f"{base}.attn.out_proj")
        h = self.add(f"{base}.res2", "add", [a, x])
        hs.append(self._gps_norm(mod.norm2, _join(qual, "norm2"), h, f"{base}.norm2"))
        out = hs[0] if len(hs) == 1 else self.add(f"{base}.sum", "add", hs)
        m = self.module(mod.mlp, _join(qual, "mlp"), out, base=f"{base}.mlp")
        out = self.add(f"{base}.res3", "add", [out, m])
        return self._gps_norm(mod.norm3, _join(qual, "norm3"), out, f"{base}.norm3")

    def _transformer(self, mod, qual, x, edge_weight, base):
        """TransformerConv: multi-head dot-product attention over the in-edges, heads
        concatenated or averaged, plus lin_skip (root_weight)."""
        name = type(mod).__name__
        if isinstance(mod.in_channels, (tuple, list)) or mod.flow != "source_to_target":
            raise ExportError(f"module '{qual}' ({name}) is bipartite or uses another flow; "
                              "use one in_channels (not a tuple) and the default "
                              "flow='source_to_target'")
        attrs = {"in_channels": int(mod.in_channels), "out_channels": int(mod.out_channels),
                 "heads": int(mod.heads), "concat": bool(mod.concat),
                 "root_weight": bool(mod.root_weight)}
        params = {}
        for lin in ("query", "key", "value") + (("skip",) if mod.root_weight else ()):
            params[f"{lin}_weight"] = self.param(_join(qual, f"lin_{lin}.weight"))
            if getattr(mod, f"lin_{lin}").bias is not None:
                params[f"{lin}_bias"] = self.param(_join(qual, f"lin_{lin}.bias"))
        if mod.beta and mod.root_weight:  # PyG uses lin_beta only with the root weight
            attrs["beta"] = True
            params["beta_weight"] = self.param(_join(qual, "lin_beta.weight"))
        if mod.edge_dim is not None:
            attrs["edge_dim"] = int(mod.edge_dim)
            params["edge_weight"] = self.param(_join(qual, "lin_edge.weight"))
            self.uses_edge_attr = True
        return self.add(base, "transformer_conv", [x], attrs, params)

    def _hypergraph(self, mod, qual, x, edge_weight, base):
        """HypergraphConv without attention: D^-1 H B^-1 H^T (x Θ^T) + bias over the graph's
        hyperedge_index (edge_weight here: called with hyperedge_weight)."""
        if mod.use_attention:
            raise ExportError(f"module '{qual}' (HypergraphConv) uses use_attention=True; "
                              "tinygnn supports HypergraphConv without attention "
                              "(use_attention=False, heads=1)")
        if mod.flow != "source_to_target":
            raise _flow_error(qual, "HypergraphConv", mod.flow)
        w = mod.lin.weight
        params = {"weight": self.param(_join(qual, "lin.weight"))}
        if mod.bias is not None:
            if mod.bias.numel() != w.shape[0]:
                raise ExportError(f"module '{qual}' (HypergraphConv) has a bias of "
                                  f"{mod.bias.numel()} values for {int(w.shape[0])} output "
                                  "channels (heads > 1 without attention); use heads=1")
            params["bias"] = self.param(_join(qual, "bias"))
        attrs = {"in_channels": int(w.shape[1]), "out_channels": int(w.shape[0]),
                 "hyperedge_weight": bool(edge_weight)}
        return self.add(base, "hypergraph_conv", [x], attrs, params)

    def _gat(self, mod, qual, x, edge_weight, base):
        name = type(mod).__name__
        v2 = type(mod) is GATv2Conv
        if isinstance(mod.in_channels, (tuple, list)) or mod.flow != "source_to_target":
            raise ExportError(f"module '{qual}' ({name}) is bipartite or uses another flow; "
                              "use one in_channels (not a tuple) and the default "
                              "flow='source_to_target'")
        if mod.edge_dim is not None and not self.edge_attr_given:
            raise ExportError(f"module '{qual}' ({name}) has edge_dim={mod.edge_dim} but is not "
                              "called with the graph's edge_attr; call it as "
                              f"{_call_form(mod, qual)} or build it without edge_dim")
        if mod.edge_dim is not None and mod.fill_value != "mean":
            raise ExportError(f"module '{qual}' ({name}) uses fill_value={mod.fill_value!r}; "
                              "use fill_value='mean' (the default)")
        if getattr(mod, "residual", False):
            raise ExportError(f"module '{qual}' ({name}) uses residual=True; build it with "
                              "residual=False and add the residual in forward "
                              "(conv(x, edge_index) + lin(x), lin a torch.nn.Linear)")
        attrs = {"in_channels": int(mod.in_channels), "out_channels": int(mod.out_channels),
                 "heads": int(mod.heads), "concat": bool(mod.concat),
                 "negative_slope": float(mod.negative_slope),
                 "add_self_loops": bool(mod.add_self_loops)}
        if v2:
            share = bool(mod.share_weights)
            attrs["share_weights"] = share
            params = {"weight_l": self.param(_join(qual, "lin_l.weight")),
                      "att": self.param(_join(qual, "att"))}
            if mod.lin_l.bias is not None:
                params["bias_l"] = self.param(_join(qual, "lin_l.bias"))
            if not share:
                params["weight_r"] = self.param(_join(qual, "lin_r.weight"))
                if mod.lin_r.bias is not None:
                    params["bias_r"] = self.param(_join(qual, "lin_r.bias"))
            if mod.edge_dim is not None:
                # GATv2: lin_edge(e) is added to x_i W_r + x_j W_l per channel (no att_edge).
                attrs["edge_dim"] = int(mod.edge_dim)
                attrs["fill_value"] = "mean"
                params["lin_edge_weight"] = self.param(_join(qual, "lin_edge.weight"))
                self.uses_edge_attr = True
        else:
            if mod.lin is None:
                raise ExportError(f"module '{qual}' ({name}) has separate source/target "
                                  "weights; use one in_channels (not a tuple)")
            params = {"weight": self.param(_join(qual, "lin.weight")),
                      "att_src": self.param(_join(qual, "att_src")),
                      "att_dst": self.param(_join(qual, "att_dst"))}
            if mod.edge_dim is not None:
                attrs["edge_dim"] = int(mod.edge_dim)
                attrs["fill_value"] = "mean"
                params["lin_edge_weight"] = self.param(_join(qual, "lin_edge.weight"))
                params["att_edge"] = self.param(_join(qual, "att_edge"))
                self.uses_edge_attr = True
        if mod.bias is not None:
            params["bias"] = self.param(_join(qual, "bias"))
        return self.add(base, "gatv2_conv" if v2 else "gat_conv", [x], attrs, params)

    def _propagate(self, mod, qual, x, edge_weight, base):
        """APPNP(K, alpha) and SGConv(K) (decoupled propagation over gcn_norm's matrix).
        ``cached`` only memoises the normalisation (same values for one graph); APPNP's
        dropout acts on the coefficients in training only."""
        name = type(mod).__name__
        if mod.flow != "source_to_target":
            raise _flow_error(qual, name, mod.flow)
        attrs = {"K": int(mod.K), "add_self_loops": bool(mod.add_self_loops),
                 "edge_weight": bool(edge_weight)}
        if type(mod) is APPNP:
            attrs["alpha"] = float(mod.alpha)
            attrs["normalize"] = bool(mod.normalize)
            return self.add(base, "appnp", [x], attrs)
        w = mod.lin.weight
        if isinstance(w, torch.nn.parameter.UninitializedParameter):
            raise ExportError(f"module '{qual}' (SGConv) is lazily initialised; give its "
                              "in_channels or run the model once before exporting")
        attrs.update({"in_channels": int(w.shape[1]), "out_channels": int(w.shape[0])})
        params = {"weight": self.param(_join(qual, "lin.weight"))}
        if mod.lin.bias is not None:
            params["bias"] = self.param(_join(qual, "lin.bias"))
        return self.add(base, "sg_conv", [x], attrs, params)

    def _tag(self, mod: TAGConv, qual, x, edge_weight, base):
        """TAGConv(K): ``Σ_k lins[k](Â^k x) + bias`` (gcn_norm without self-loops)."""
        if mod.flow != "source_to_target":
            raise _flow_error(qual, "TAGConv", mod.flow)
        params = {f"weight_{k}": self.param(_join(qual, f"lins.{k}.weight"))
                  for k in range(mod.K + 1)}
        if mod.bias is not None:
            params["bias"] = self.param(_join(qual, "bias"))
        attrs = {"in_channels": int(mod.in_channels), "out_channels": int(mod.out_channels),
                 "K": int(mod.K), "normalize": bool(mod.normalize),
                 "edge_weight": bool(edge_weight)}
        return self.add(base, "tag_conv", [x], attrs, params)

    def _cheb(self, mod: ChebConv, qual, x, edge_weight, base):
        """ChebConv(K, normalization='sym'): ``Σ_k lins[k](T_k(L̂) x) + bias`` with
        λmax = 2 (K ≤ 3)."""
        if mod.flow != "source_to_target":
            raise _flow_error(qual, "ChebConv", mod.flow)
        form = "ChebConv(in_channels, out_channels, K, normalization='sym') with K = 1, 2 or 3"
        if mod.normalization != "sym":
            raise ExportError(f"module '{qual}' (ChebConv): normalization "
                              f"{mod.normalization!r} is not supported; tinygnn supports "
                              f"{form} and lambda_max 2 (the default)")
        k = len(mod.lins)
        if not 1 <= k <= 3:
            raise ExportError(f"module '{qual}' (ChebConv): K = {k} is not supported; "
                              f"tinygnn supports {form}")
        w = mod.lins[0].weight
        if isinstance(w, torch.nn.parameter.UninitializedParameter):
            raise ExportError(f"module '{qual}' (ChebConv) is lazily initialised; give its "
                              "in_channels or run the model once before exporting")
        params = {f"weight_{i}": self.param(_join(qual, f"lins.{i}.weight")) for i in range(k)}
        if mod.bias is not None:
            params["bias"] = self.param(_join(qual, "bias"))
        attrs = {"in_channels": int(w.shape[1]), "out_channels": int(w.shape[0]), "K": k,
                 "normalization": "sym", "lambda_max": 2.0, "edge_weight": bool(edge_weight)}
        return self.add(base, "cheb_conv", [x], attrs, params)

    def gcn2(self, mod: GCN2Conv, qual, x, x0, edge_weight, base):
        """GCN2Conv(channels, alpha, theta, layer, shared_weights): ``x`` and the initial
        representation ``x0`` (two spec inputs); ``beta`` is exported as computed by PyG."""
        if mod.flow != "source_to_target":
            raise _flow_error(qual, "GCN2Conv", mod.flow)
        attrs = {"channels": int(mod.channels), "alpha": float(mod.alpha),
                 "beta": float(mod.beta), "shared_weights": mod.weight2 is None,
                 "add_self_loops": bool(mod.add_self_loops), "normalize": bool(mod.normalize),
                 "edge_weight": bool(edge_weight)}
        params = {"weight1": self.param(_join(qual, "weight1"))}
        if mod.weight2 is not None:
            params["weight2"] = self.param(_join(qual, "weight2"))
        return self.add(base, "gcn2_conv", [x, x0], attrs, params)

    def _edge_conv(self, mod, qual, x, edge_weight, base):
        """EdgeConv / DynamicEdgeConv: the ``nn`` (a Linear, a Sequential or a
        ``torch_geometric.nn.MLP`` of Linear, BatchNorm1d, ReLU, LeakyReLU, Dropout, Identity)
        goes into ``attrs.nn``, its parameters under the roles ``nn.<position>.<name>``
        (docs/interchange.md)."""
        name = type(mod).__name__
        who = f"module '{qual}' ({name})"
        dynamic = type(mod) is DynamicEdgeConv
        if mod.flow != "source_to_target":
            raise ExportError(f"{who} uses flow='{mod.flow}'; use the default "
                              "flow='source_to_target'")
        if not isinstance(mod.aggr, str) or mod.aggr not in ("max", "mean", "add", "sum"):
            raise ExportError(f"{who} uses aggr={mod.aggr!r}; supported: 'max', 'mean', 'add'")
        layers, params = [], {}
        for i, (q, c) in enumerate(self._nn_layers(mod.nn, _join(qual, "nn"))):
            role = f"nn.{i}"
            if isinstance(c, (torch.nn.Linear, PygLinear)):
                if isinstance(c.weight, torch.nn.parameter.UninitializedParameter):
                    raise ExportError(f"module '{q}' (Linear) is lazily initialised; give its "
                                      "in_channels or run the model once before exporting")
                o, n_in = c.weight.shape
                layers.append({"op": "linear", "in_channels": int(n_in), "out_channels": int(o)})
                params[f"{role}.weight"] = self.param(_join(q, "weight"))
                if c.bias is not None:
                    params[f"{role}.bias"] = self.param(_join(q, "bias"))
            elif isinstance(c, (torch.nn.BatchNorm1d, PygBatchNorm)):
                if isinstance(c, PygBatchNorm):
                    c, q = c.module, _join(q, "module")
                _check_batch_norm(c, q)
                layers.append({"op": "batch_norm", "eps": float(c.eps)})
                for r in ("weight", "bias", "running_mean", "running_var"):
                    params[f"{role}.{r}"] = self.param(_join(q, r))
            elif type(c) is torch.nn.ReLU:
                layers.append({"op": "relu"})
            elif type(c) is torch.nn.LeakyReLU:
                layers.append({"op": "leaky_relu", "negative_slope": float(c.negative_slope)})
            elif type(c) is torch.nn.Dropout:
                layers.append({"op": "dropout"})
            elif type(c) is torch.nn.Identity:
                layers.append({"op": "identity"})
            else:
                t = type(c)
                raise ExportError(
                    f"module '{q}' ({t.__module__}.{t.__name__}) in the nn of {who} is not "
                    "supported; the nn of an EdgeConv may hold Linear, BatchNorm1d, ReLU, "
                    "LeakyReLU, Dropout and Identity (a Linear, a torch.nn.Sequential or a "
                    "torch_geometric.nn.MLP with act='relu' or 'leaky_relu')")
        _check_edge_nn(layers, who)
        first = next(layer for layer in layers if layer["op"] == "linear")
        if first["in_channels"] % 2:
            raise ExportError(f"{who}: nn must start with a Linear on [x_i, x_j - x_i] "
                              f"(2 * F inputs), got in_channels={first['in_channels']}")
        attrs = {"in_channels": first["in_channels"] // 2,
                 "aggr": "sum" if mod.aggr == "add" else mod.aggr, "nn": layers}
        if dynamic:
            attrs["k"] = int(mod.k)
        return self.add(base, "dynamic_edge_conv" if dynamic else "edge_conv", [x], attrs, params)

    def _nn_layers(self, nn: torch.nn.Module, q: str) -> List[Tuple[str, torch.nn.Module]]:
        """A layer chain flattened: Sequentials (nested too) and MLPs opened up."""
        if isinstance(nn, MLP):
            return [(lq, layer) for lq, _, layer in self._mlp_layers(nn, q)]
        if type(nn) is torch.nn.Sequential:
            return [l for n, c in nn.named_children() for l in self._nn_layers(c, _join(q, n))]
        return [(q, nn)]

    def _gin(self, mod: GINConv, qual, x, edge_weight, base):
        if mod.aggr != "add" or mod.flow != "source_to_target":
            raise ExportError(f"module '{qual}' (GINConv) uses aggr={mod.aggr!r}/flow="
                              f"{mod.flow!r}; use the defaults aggr='add', "
                              "flow='source_to_target'")
        h = self.add(_join(base, "aggregate"), "gin_aggregate", [x], {"eps": float(mod.eps.item())})
        return self.module(mod.nn, _join(qual, "nn"), h)

    def _gine(self, mod: GINEConv, qual, x, edge_weight, base):
        if mod.aggr != "add" or mod.flow != "source_to_target":
            raise ExportError(f"module '{qual}' (GINEConv) uses aggr={mod.aggr!r}/flow="
                              f"{mod.flow!r}; use the defaults aggr='add', "
                              "flow='source_to_target'")
        attrs = {"eps": float(mod.eps.item())}
        params = {}
        if mod.lin is not None:
            attrs["edge_dim"] = int(mod.lin.in_channels)
            params["lin_weight"] = self.param(_join(qual, "lin.weight"))
            if mod.lin.bias is not None:
                params["lin_bias"] = self.param(_join(qual, "lin.bias"))
        self.uses_edge_attr = True
        h = self.add(_join(base, "aggregate"), "gine_conv", [x], attrs, params or None)
        return self.module(mod.nn, _join(qual, "nn"), h)

    def _act(self, act: Optional[torch.nn.Module], qual: str, x: str, base: str) -> str:
        return x if act is None else self.module(act, qual, x, base=base)

    def _mlp_layers(self, mod: MLP, qual: str) -> List[Tuple[str, str, torch.nn.Module]]:
        """The layers of ``torch_geometric.nn.MLP.forward`` in eval mode, in order, as
        (module path, op name, module): for each Linear ``lins.i``, its norm ``norms.i``
        (unless Identity) and ``act`` (before the norm with ``act_first``), and dropout
        ``p = dropout[i]`` when > 0 (a ``torch.nn.Dropout``); with ``plain_last`` the last
        Linear alone (and its dropout, if a list gave one)."""
        owner = f"'{qual or '<root>'}' (MLP)"
        for i, norm in enumerate(mod.norms):
            _check_norm(norm, _join(qual, f"norms.{i}"), owner,
                        "norm='batch_norm', norm='layer_norm' (mode 'node') or norm=None")
        act_q = _join(qual, "act")
        layers: List[Tuple[str, str, torch.nn.Module]] = []
        for i, (lin, norm) in enumerate(zip(mod.lins, mod.norms)):
            q = _join(qual, f"lins.{i}")
            layers.append((q, q, lin))
            if mod.act is not None and mod.act_first:
                layers.append((act_q, f"{act_q}.{i}", mod.act))
            if not isinstance(norm, torch.nn.Identity):
                q = _join(qual, f"norms.{i}")
                layers.append((q, q, norm))
            if mod.act is not None and not mod.act_first:
                layers.append((act_q, f"{act_q}.{i}", mod.act))
            if mod.dropout[i] > 0:
                q = _join(qual, f"dropout.{i}")
                layers.append((q, q, torch.nn.Dropout(mod.dropout[i])))
        if mod.plain_last:
            q = _join(qual, f"lins.{len(mod.lins) - 1}")
            layers.append((q, q, mod.lins[-1]))
            if mod.dropout[-1] > 0:
                q = _join(qual, "dropout.last")
                layers.append((q, q, torch.nn.Dropout(mod.dropout[-1])))
        return layers

    def _mlp(self, mod: MLP, qual, x, edge_weight=False, base=None):
        """Mirror ``torch_geometric.nn.models.MLP.forward`` (eval mode)."""
        for q, name, layer in self._mlp_layers(mod, qual):
            x = self.module(layer, q, x, base=name)
        return x

    def _basic_gnn(self, mod, qual, x, edge_weight, base):
        return self.basic_gnn(mod, qual, x, edge_weight=edge_weight)

    def basic_gnn(self, mod: BasicGNN, qual: str, x: str, *, edge_weight: bool) -> str:
        """Mirror ``BasicGNN.forward`` for GCN / GraphSAGE / GIN (eval mode)."""
        name = type(mod).__name__
        if mod.jk_mode not in (None, "last", "cat"):
            raise ExportError(f"module '{qual or '<root>'}' ({name}) uses jk='{mod.jk_mode}'; "
                              "use jk=None, 'last' or 'cat'")
        for i, norm in enumerate(mod.norms):
            _check_norm(norm, _join(qual, f"norms.{i}"), f"'{qual or '<root>'}' ({name})",
                        "norm='batch_norm', norm='layer_norm' (mode 'node') or norm=None")
        act_q = _join(qual, "act")
        xs: List[str] = []
        for i, (conv, norm) in enumerate(zip(mod.convs, mod.norms)):
            x = self.module(conv, _join(qual, f"convs.{i}"), x,
                            edge_weight=edge_weight and mod.supports_edge_weight)
            if i < mod.num_layers - 1 or mod.jk_mode is not None:
                if mod.act_first:
                    x = self._act(mod.act, act_q, x, f"{act_q}.{i}")
                x = self.module(norm, _join(qual, f"norms.{i}"), x)
                if not mod.act_first:
                    x = self._act(mod.act, act_q, x, f"{act_q}.{i}")
                x = self._dropout(_join(qual, f"dropout.{i}"), x, mod.dropout.p)
                if hasattr(mod, "jk"):
                    xs.append(x)
        if hasattr(mod, "jk"):
            x = self.add(_join(qual, "jk"), "concat", xs)
        if hasattr(mod, "lin"):
            x = self.module(mod.lin, _join(qual, "lin"), x)
        return x


# --------------------------------------------------------------------------------------
# torch.fx tracing of plain modules
# --------------------------------------------------------------------------------------

class _Tracer(torch.fx.Tracer):
    """fx tracer that keeps every PyG module (except ``torch_geometric.nn.Sequential``),
    and every message-passing layer or aggregation of the user's own, as a leaf, records
    the global pooling functions as single calls, and remembers which module was being
    traced when tracing fails (:attr:`failed_in`)."""

    def __init__(self):
        super().__init__()
        self.failed_in: Optional[Tuple[str, torch.nn.Module]] = None

    def is_leaf_module(self, m: torch.nn.Module, qualname: str) -> bool:
        if isinstance(m, pyg_nn.Sequential):
            return False
        if isinstance(m, (MessagePassing, Aggregation, BasicGNN)):
            return True
        if type(m).__module__.startswith("torch_geometric."):
            return True
        return super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):  # noqa: D102
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:  # the innermost module
                try:
                    qual = self.path_of_module(m)
                except NameError:
                    qual = "?"
                self.failed_in = (qual, m)
            raise

    @contextlib.contextmanager
    def _leaf_calls(self, root: torch.nn.Module):
        """Leaf modules whose class overrides ``__call__`` (PyG's ``Aggregation`` checks its
        arguments there, with control flow on tensors) are recorded like any leaf: their
        ``__call__`` goes straight to ``torch.nn.Module.__call__`` (which fx wraps) while
        tracing. The traced graph calls the real module later."""

        def plain_call(mod, *args, **kwargs):
            return torch.nn.Module.__call__(mod, *args, **kwargs)

        patched = {}
        for qual, m in root.named_modules():
            if m is root or not self.is_leaf_module(m, qual):
                continue
            for cls in type(m).__mro__:
                if cls is torch.nn.Module:
                    break
                if "__call__" in vars(cls) and cls not in patched:
                    patched[cls] = vars(cls)["__call__"]
                    cls.__call__ = plain_call
        try:
            yield
        finally:
            for cls, call in patched.items():
                cls.__call__ = call

    @contextlib.contextmanager
    def _wrapped_pools(self, root: torch.nn.Module):
        """Temporarily replace the pooling functions, wherever a forward can see them, by
        stubs that record a ``call_function`` node (they contain data-dependent control
        flow, so fx cannot trace through them)."""

        def stub(fn):
            def record(*args, **kwargs):
                return self.create_proxy("call_function", fn, args, kwargs)
            return record

        def is_pool(value):
            return any(value is fn for fn in _POOLS)

        # Module namespaces, forward globals, and module instance attributes (self.pool = ...).
        namespaces = [pyg_nn.__dict__, pyg_pool.__dict__, pyg_glob.__dict__]
        forwards = [getattr(type(m).forward, "__func__", type(m).forward) for m in root.modules()]
        namespaces += [f.__globals__ for f in forwards if hasattr(f, "__globals__")]
        namespaces += [m.__dict__ for m in root.modules()]
        cells = [c for f in forwards for c in (getattr(f, "__closure__", None) or ())]
        patched, patched_cells = [], []
        try:
            for ns in namespaces:
                for key, value in list(ns.items()):
                    if is_pool(value):
                        patched.append((ns, key, value))
                        ns[key] = stub(value)
            for cell in cells:  # pooling functions captured in a closure
                try:
                    value = cell.cell_contents
                except ValueError:  # empty cell
                    continue
                if is_pool(value):
                    patched_cells.append((cell, value))
                    cell.cell_contents = stub(value)
            yield
        finally:
            for ns, key, value in reversed(patched):
                ns[key] = value
            for cell, value in patched_cells:
                cell.cell_contents = value

    def trace(self, root, concrete_args=None):  # noqa: D102
        with self._wrapped_pools(root), self._leaf_calls(root):
            return super().trace(root, concrete_args)


def _fn_name(target: Any) -> str:
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", None) or str(target)
    return f"{mod}.{name}" if mod else name


def _describe(arg: Any) -> str:
    """How an fx argument is named in messages."""
    if isinstance(arg, torch.fx.Node):
        return f"the value '{arg.name}'" if arg.op != "placeholder" else f"argument '{arg.name}'"
    return repr(arg)


def _fn_args(node: torch.fx.Node, names: List[str], what: str) -> Dict[str, Any]:
    """A call_function/call_method node's arguments by parameter name (``names`` in
    positional order; for a method the first is the tensor itself)."""
    if len(node.args) > len(names):
        raise ExportError(f"{what}: too many arguments ({len(node.args)}); expected "
                          f"({', '.join(names)})")
    out = dict(zip(names, node.args))
    for key, value in node.kwargs.items():
        if key not in names or key in out:
            raise ExportError(f"{what}: unsupported argument '{key}'; expected "
                              f"({', '.join(names)})")
        out[key] = value
    return out


def _bind_call(mod: torch.nn.Module, node: torch.fx.Node, what: str):
    """Match a ``call_module`` node's arguments to ``mod.forward``'s parameters, as Python
    does (positional or keyword). Returns (arguments by parameter name, first parameter)."""
    sig = inspect.signature(mod.forward)
    try:
        bound = sig.bind(*node.args, **node.kwargs)
    except TypeError as e:
        raise ExportError(f"{what}: its arguments do not match {type(mod).__name__}.forward"
                          f"{sig} ({e}); call it as {_call_form(mod, str(node.target))}") from e
    args = dict(bound.arguments)
    for p in sig.parameters.values():  # *args / **kwargs are not graph inputs tinygnn knows
        if isinstance(mod, GPSConv) and p.kind == p.VAR_KEYWORD:
            args.update(args.pop(p.name, None) or {})  # passed on to its local conv
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and args.get(p.name):
            raise ExportError(f"{what}: extra arguments {args[p.name]!r} are not supported; "
                              f"call it as {_call_form(mod, str(node.target))}")
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            args.pop(p.name, None)
    return args, next(iter(sig.parameters))


def _call_form(mod: torch.nn.Module, qual: str) -> str:
    """The call tinygnn understands for ``mod`` (for messages)."""
    name = f"self.{qual}" if qual else "model"
    if type(mod) is GCN2Conv:
        return f"{name}(x, x_0, edge_index[, edge_weight])"
    if isinstance(mod, DynamicEdgeConv):
        return f"{name}(x[, batch])"
    if isinstance(mod, BasicGNN):
        return f"{name}(x, edge_index{'[, edge_weight]' if mod.supports_edge_weight else ''}" \
               "[, batch=batch])"
    if isinstance(mod, (GCNConv, APPNP, SGConv, TAGConv)):
        return f"{name}(x, edge_index[, edge_weight])"
    if isinstance(mod, ChebConv):
        return f"{name}(x, edge_index[, edge_weight][, batch]) (lambda_max None or 2)"
    if isinstance(mod, HypergraphConv):
        return f"{name}(x, hyperedge_index[, hyperedge_weight])"
    if isinstance(mod, GINEConv) or (isinstance(mod, (GATConv, GATv2Conv, TransformerConv))
                                     and mod.edge_dim is not None):
        return f"{name}(x, edge_index, edge_attr)"
    if isinstance(mod, MessagePassing):
        return f"{name}(x, edge_index)"
    if isinstance(mod, MLP):
        return f"{name}(x[, batch])"
    if isinstance(mod, Aggregation):
        return f"{name}(x, batch) or {name}(x, index=batch)"
    return f"{name}(x)"


class _Translator:
    """Translate an fx graph of a plain module into spec ops."""

    def __init__(self, model: torch.nn.Module, graph: torch.fx.Graph,
                 bound: Dict[str, Optional[torch.Tensor]], builder: _SpecBuilder):
        self.model = model
        self.graph = graph
        self.b = builder
        self.params = list(bound)
        self.bound = bound
        self.env: Dict[torch.fx.Node, Any] = {}

    def _getattr(self, node: torch.fx.Node):
        """``data.x``, ``data.edge_index``, ... on a ``Data`` argument of forward."""
        obj, attr = node.args[0], node.args[1]
        v = self.env.get(obj) if isinstance(obj, torch.fx.Node) else None
        if v is None or v[0] != "data":
            raise ExportError(f"forward reads the attribute '.{attr}' of {_describe(obj)}; not "
                              "supported (tinygnn values are [rows, channels] tensors with "
                              "shapes fixed by the graph): compute it outside the model")
        if attr == "x":
            return ("value", self.b.input_name)
        if attr in _GRAPH_INPUTS:
            present = getattr(self.bound[v[1]], attr, None) is not None
            return ("graph", attr) if present else ("none", attr)
        pe = self._random_walk_pe(getattr(self.bound[v[1]], attr, None), attr,
                                  self.bound[v[1]].edge_index)
        if pe is not None:
            return ("value", pe)
        raise ExportError(f"forward reads {v[1]}.{attr}; tinygnn models read only "
                          f"{', '.join(f'{v[1]}.{a}' for a in ('x',) + _GRAPH_INPUTS)}, and a "
                          "positional encoding equal to AddRandomWalkPE's (computed on the "
                          "device); compute other encodings into x before export")

    def _random_walk_pe(self, t: Any, name: str, edge_index: Any) -> Optional[str]:
        """A positional encoding the example carries (a forward argument or a Data
        attribute): the device computes it (spec op random_walk_pe) when it is exactly
        ``AddRandomWalkPE(walk_length=K)``'s on the example graph; None otherwise."""
        x = self.b.example_x
        if not (isinstance(t, torch.Tensor) and t.dim() == 2 and x is not None
                and t.size(0) == x.size(0) and isinstance(edge_index, torch.Tensor)):
            return None
        from torch_geometric.transforms import AddRandomWalkPE
        k = int(t.size(1))
        ref = AddRandomWalkPE(k)(Data(edge_index=edge_index, num_nodes=x.size(0))).random_walk_pe
        if not torch.allclose(t.float(), ref.float(), atol=1e-5):
            return None
        return self.b.add(name, "random_walk_pe", [self.b.input_name], {"walk_length": k})

    # Values in env: ("value", name) for spec values, ("graph", role) for graph inputs.
    def _value(self, arg: Any, what: str) -> str:
        v = self.env.get(arg) if isinstance(arg, torch.fx.Node) else None
        if v is not None and v[0] == "graph" and v[1].startswith("unsupported:"):
            pname = v[1].split(":", 1)[1]
            raise ExportError(f"{what}: reads the forward argument '{pname}', a second node "
                              "input; tinygnn models read one node-feature input, x. For an "
                              "encoding computed on the host (e.g. AddLaplacianEigenvectorPE), "
                              f"concatenate it into x on the host (data.x = torch.cat([data.x, "
                              f"data.{pname}], dim=-1)) and let the model read it from x; "
                              "AddRandomWalkPE's random_walk_pe is recomputed on the device "
                              "and may stay a separate argument")
        if v is not None and v[0] == "param":
            raise ExportError(f"unsupported use of tensor attribute '{v[1]}' in forward; a "
                              "model's tensors may only be the weights of supported layers "
                              "(e.g. a learned bias as torch.nn.Linear), or a per-channel "
                              "[C] / [1, C] factor or term of a product or sum (w * x, x + b)")
        if v is not None and v[0] == "tuple":
            raise ExportError(f"{what}: a cell's (h, c) pair where one tensor is expected; "
                              "unpack it (h, c = cell(x, (h, c)))")
        if v is None or v[0] != "value":
            raise ExportError(f"{what}: expected a tensor computed from the node features, "
                              f"got {_describe(arg)}; tinygnn values are x and the results of "
                              "supported layers and functions")
        return v[1]

    def _graph_input(self, arg: Any, role: str, what: str, optional: bool,
                     form: Optional[str] = None) -> bool:
        """Check ``arg`` is the model's ``role`` input (or None if optional); return whether
        it is present."""
        v = self.env.get(arg) if isinstance(arg, torch.fx.Node) else None
        if arg is None or v == ("none", role):
            if optional:
                return False
            raise ExportError(f"{what}: called without the graph's {role}"
                              + (f"; call it as {form}" if form else ""))
        if v != ("graph", role):
            raise ExportError(f"{what}: the {role} argument must be the forward's '{role}' "
                              f"argument (or data.{role}) as given, got {_describe(arg)}; "
                              f"tinygnn reads {role} from the graph, it cannot be computed "
                              "in forward")
        return True

    def run(self) -> List[str]:
        placeholders = [n for n in self.graph.nodes if n.op == "placeholder"]
        for i, (node, pname) in enumerate(zip(placeholders, self.params)):
            if isinstance(self.bound[pname], BaseData):
                self.env[node] = ("data", pname)
            elif i == 0:
                self.env[node] = ("value", self.b.input_name)
            elif any(pname == sp for _, sp in self.b.states):
                self.env[node] = ("value", next(n for n, sp in self.b.states if sp == pname))
            elif pname in _GRAPH_INPUTS:
                self.env[node] = ("graph", pname)
            elif (pe := self._random_walk_pe(self.bound[pname], pname,
                                             self.bound.get("edge_index"))) is not None:
                self.env[node] = ("value", pe)
            else:
                self.env[node] = ("graph", f"unsupported:{pname}")
        outputs: List[str] = []
        for node in self.graph.nodes:
            if node.op == "placeholder":
                continue
            if node.op == "output":
                res = node.args[0]
                res = list(res) if isinstance(res, (tuple, list)) else [res]
                if len(res) == 1 and isinstance(res[0], torch.fx.Node) \
                        and self.env.get(res[0], ("",))[0] == "tuple":
                    outputs = list(self.env[res[0]][1])  # return cell(x, (h, c))
                else:
                    outputs = [self._value(r, "model output") for r in res]
                continue
            if node.op == "call_function" and node.target is operator.getitem \
                    and isinstance(node.args[0], torch.fx.Node) \
                    and self.env.get(node.args[0], ("",))[0] == "tuple":
                names, k = self.env[node.args[0]][1], node.args[1]
                if not isinstance(k, int) or not -len(names) <= k < len(names):
                    raise ExportError(f"'{node.name}': index {k!r} of a cell's (h, c) result")
                self.env[node] = ("value", names[k])
                continue
            if node.op == "get_attr":
                # A tensor of the model read in forward: only as the per-channel operand of
                # a product or sum (a GConvLSTM's peephole w_c ⊙ C and gate bias b).
                self.env[node] = ("param", str(node.target))
                continue
            if node.op == "call_function" and node.target is getattr:
                self.env[node] = self._getattr(node)
                continue
            if node.op == "call_module":
                r = self._call_module(node)
                self.env[node] = ("tuple", r) if isinstance(r, tuple) else ("value", r)
            elif node.op == "call_function":
                if getattr(node.target, "__name__", "") == "_assert_is_none":
                    continue  # inserted by fx for arguments bound to None
                self.env[node] = ("value", self._call_function(node))
            elif node.op == "call_method":
                self.env[node] = ("value", self._call_method(node))
            else:  # get_attr
                raise ExportError(f"unsupported use of tensor attribute '{node.target}' in "
                                  "forward; a model's tensors may only be the weights of "
                                  "supported layers (e.g. a learned bias as torch.nn.Linear)")
        return outputs

    def _softmax_aggregation(self, mod, qual, what, bound, first, name) -> str:
        """SoftmaxAggregation(t)(x, index=batch): the softmax of t·x over each graph's nodes,
        per channel, weighs x: attention pooling with x as its own gate."""
        if bound.get("ptr") is not None or bound.get("dim", -2) not in (-2, 0):
            raise ExportError(f"{what}: call it as {_call_form(mod, qual)} (no ptr, dim)")
        if bound.get("dim_size") is not None:
            raise ExportError(f"{what}: the 'dim_size' argument is not supported; leave it "
                              "out (the number of graphs is taken from batch)")
        x = self._value(bound.get(first), what)
        self._graph_input(bound.get("index"), "batch", what, optional=True)
        t = mod.t
        if isinstance(t, torch.Tensor):
            if t.numel() != 1:
                raise ExportError(f"{what}: one learned t per channel (channels="
                                  f"{mod.channels}) is not supported; use channels=1 (one t "
                                  "for every channel)")
            t = t.detach().reshape(()).item()
        t = float(t)
        if not (t > 0 and math.isfinite(t)):
            raise ExportError(f"{what}: t = {t}; tinygnn needs a positive, finite t (the "
                              "softmax of t·x with t ≤ 0 is not supported)")
        return self.b.add(name, "attention_pool", [x, x], {"t": t}, level="graph")

    def _call_module(self, node: torch.fx.Node):  # a value name, or (h, c) of an LSTMCell
        qual = str(node.target)
        mod = self.model.get_submodule(qual)
        what = f"module '{qual}' ({type(mod).__name__})"
        if isinstance(mod, (MessagePassing, BasicGNN, Aggregation)) and not self.b.supports(mod):
            raise self.b.unsupported(mod, qual)
        bound, first = _bind_call(mod, node, what)
        if type(mod) is torch.nn.LSTMCell:
            hc = bound.get("hx")
            if not (isinstance(hc, (tuple, list)) and len(hc) == 2):
                raise ExportError(f"{what}: call it with the state, as {qual}(x, (h, c))")
            x = self._value(bound.get(first), what)
            h = self._value(hc[0], what + " (state h)")
            c = self._value(hc[1], what + " (state c)")
            return self.b.lstm_cell(mod, qual, x, h, c, node.name)
        if type(mod) is torch.nn.GRUCell:
            if bound.get("hx") is None:
                raise ExportError(f"{what}: call it with the state, as {qual}(x, h)")
            x = self._value(bound.get(first), what)
            h = self._value(bound.get("hx"), what + " (state)")
            return self.b.gru_cell(mod, qual, x, h, node.name)
        if type(mod) is pyg_nn.aggr.AttentionalAggregation:
            # AttentionalAggregation(gate_nn, nn)(x, index=batch): softmax of gate_nn(x) over
            # each graph's nodes weighs nn(x) (or x).
            if bound.get("ptr") is not None or bound.get("dim", -2) not in (-2, 0):
                raise ExportError(f"{what}: call it as {_call_form(mod, qual)} (no ptr, dim)")
            if bound.get("dim_size") is not None:
                raise ExportError(f"{what}: the 'dim_size' argument is not supported; leave it "
                                  "out (the number of graphs is taken from batch)")
            x = self._value(bound.get(first), what)
            self._graph_input(bound.get("index"), "batch", what, optional=True)
            gate = self.b.module(mod.gate_nn, _join(qual, "gate_nn"), x,
                                 base=f"{node.name}.gate")
            val = x if mod.nn is None else self.b.module(mod.nn, _join(qual, "nn"), x,
                                                         base=f"{node.name}.nn")
            return self.b.add(node.name, "attention_pool", [gate, val], level="graph")
        if type(mod) is pyg_nn.aggr.SoftmaxAggregation:
            return self._softmax_aggregation(mod, qual, what, bound, first, node.name)
        if type(mod) in _AGGREGATIONS:
            # aggr(x, index=None, ptr=None, dim_size=None, dim=-2): x's rows grouped by
            # index = the batch vector, i.e. global_{add,mean,max}_pool(x, batch).
            if bound.get("ptr") is not None:
                raise ExportError(f"{what}: the 'ptr' argument is not supported; call it as "
                                  f"{_call_form(mod, qual)}")
            if bound.get("dim", -2) not in (-2, 0):
                raise ExportError(f"{what}: only aggregation over the nodes (dim=-2 or 0) is "
                                  f"supported, got dim={bound['dim']}")
            return self._pool(node, _AGGREGATIONS[type(mod)], bound.get(first),
                              bound.get("index"), bound.get("dim_size"), "dim_size", what)
        if first not in bound or bound[first] is None:
            raise ExportError(f"{what}: called without node features; call it as "
                              f"{_call_form(mod, qual)}")
        x = self._value(bound.pop(first), what)
        edge_weight = edge_attr_given = False
        # The other arguments, by the name of forward's parameter: graph inputs, a second
        # value (GCN2Conv's x_0), or arguments that must keep their default.
        graph_args: Dict[str, bool] = {}  # name -> optional
        if type(mod) is GCN2Conv:
            if bound.get("x_0") is None:
                raise ExportError(f"{what}: called without x_0; call it as "
                                  f"{_call_form(mod, qual)}")
            x0 = self._value(bound.pop("x_0"), what + " (x_0)")
            graph_args = {"edge_index": False, "edge_weight": True}
        elif isinstance(mod, DynamicEdgeConv):
            graph_args = {"batch": True}  # forward(x, batch=None): kNN graph built from x
        elif isinstance(mod, HypergraphConv):
            graph_args = {"hyperedge_index": False, "hyperedge_weight": True}
        elif isinstance(mod, (MessagePassing, BasicGNN)):
            graph_args = {"edge_index": False}
            if isinstance(mod, ChebConv):
                # lambda_max: None (PyG then uses 2·max of the Laplacian's weights, 2 for
                # non-negative edge weights) or 2; batch only matters with a per-graph
                # lambda_max.
                lam = bound.pop("lambda_max", None)
                if lam is not None and not (isinstance(lam, (int, float)) and lam == 2):
                    raise ExportError(f"{what}: lambda_max = {_describe(lam)} is not "
                                      "supported; tinygnn supports ChebConv with "
                                      "normalization='sym' and lambda_max 2 (or None)")
                graph_args["batch"] = True
            if isinstance(mod, (GCNConv, APPNP, SGConv, TAGConv, ChebConv)) or (
                    isinstance(mod, BasicGNN) and mod.supports_edge_weight):
                graph_args["edge_weight"] = True
            if isinstance(mod, BasicGNN):
                graph_args["batch"] = True
            if isinstance(mod, GINEConv) or (isinstance(mod, TransformerConv)
                                             and mod.edge_dim is not None):
                graph_args["edge_attr"] = False
            elif isinstance(mod, (GATConv, GATv2Conv)) and mod.edge_dim is not None:
                graph_args["edge_attr"] = True
        elif isinstance(mod, MLP):
            graph_args = {"batch": True}  # only read by norms tinygnn does not support
        elif isinstance(mod, GPSConv):
            # The global attention needs the graph of every node (batch; one graph without).
            graph_args = {"edge_index": False, "batch": True}
            if isinstance(mod.conv, GINEConv) or (
                    isinstance(mod.conv, (GATConv, GATv2Conv, TransformerConv))
                    and mod.conv.edge_dim is not None):
                graph_args["edge_attr"] = False
        for key, optional in graph_args.items():
            present = self._graph_input(bound.pop(key, None), key, what, optional=optional,
                                        form=_call_form(mod, qual))
            edge_weight |= key in ("edge_weight", "hyperedge_weight") and present
            edge_attr_given |= key == "edge_attr" and present
        for key, val in bound.items():
            if val is not None:
                raise ExportError(f"{what}: argument '{key}' is not supported; call it as "
                                  f"{_call_form(mod, qual)}")
        if type(mod) is GCN2Conv:
            return self.b.gcn2(mod, qual, x, x0, edge_weight, node.name)
        if isinstance(mod, GPSConv):
            self.b.edge_attr_given = edge_attr_given
            try:
                return self.b.gps(mod, qual, x, node.name)
            finally:
                self.b.edge_attr_given = False
        self.b.edge_attr_given = edge_attr_given
        try:
            return self.b.module(mod, qual, x, edge_weight=edge_weight, base=node.name)
        finally:
            self.b.edge_attr_given = False

    def _call_function(self, node: torch.fx.Node) -> str:
        fn = node.target
        if fn is getattr:
            return self._getattr(node)
        op = _FUNCTION_OPS.get(fn)
        if op is None:
            raise ExportError(f"unsupported function '{_fn_name(fn)}' in forward; "
                              f"{_function_suggestion(fn)}")
        return self._apply(node, op, f"function {_fn_name(fn)}", fn)

    def _param_operand(self, node: torch.fx.Node, a: dict, op: str, what: str) -> Optional[str]:
        """``w * x`` or ``x + b`` with ``w``/``b`` a [C] or [1, C] tensor of the model (its
        state_dict): a per-channel affine map of x ([`_SpecBuilder.channel_affine`]); None
        when neither operand is such a tensor."""
        kinds = [self.env.get(a.get(k), ("",))[0] for k in ("input", "other")]
        if "param" not in kinds:
            return None
        if kinds.count("param") == 2:
            raise ExportError(f"{what}: both operands are tensors of the model; compute "
                              "their product or sum when building the model")
        pk, vk = ("input", "other") if kinds[0] == "param" else ("other", "input")
        key = self.env[a[pk]][1]
        t = self.b.state_dict.get(key)
        x = self._value(a.get(vk), what + " (operand)")
        # Its channels against x's are checked with every op's (_check_channels).
        if t is None or t.dim() not in (1, 2) or (t.dim() == 2 and t.size(0) != 1):
            shape = None if t is None else tuple(t.shape)
            raise ExportError(f"{what}: the tensor '{key}' {shape} must be a per-channel "
                              "[C] or [1, C] factor or term of a [N, C] value (a learned "
                              "peephole or bias); other broadcasts are not supported")
        return self.b.channel_affine(node.name, x, key, t if op == "mul" else None,
                                     t if op == "add" else None)

    def _call_method(self, node: torch.fx.Node) -> str:
        op = _METHOD_OPS.get(node.target)
        if op is None:
            raise ExportError(f"unsupported method 'Tensor.{node.target}' in forward; "
                              f"{_function_suggestion(node.target)}")
        return self._apply(node, op, f"method Tensor.{node.target}", None)

    def _apply(self, node: torch.fx.Node, op: str, what: str, fn: Any) -> str:
        """A supported function or Tensor method: its arguments by name, then the op."""
        method = fn is None
        if op in ("relu", "leaky_relu", "elu"):
            extra = {"leaky_relu": ["negative_slope"], "elu": ["alpha"]}.get(op, [])
            a = _fn_args(node, ["input"] + extra + ([] if method else ["inplace"]), what)
            attrs = None
            if op == "leaky_relu":
                attrs = {"negative_slope": float(a.get("negative_slope", 0.01))}
            elif op == "elu":
                attrs = {"alpha": float(a.get("alpha", 1.0))}
            return self.b.add(node.name, op, [self._value(a.get("input"), what)], attrs)
        if op in ("sigmoid", "tanh"):
            a = _fn_args(node, ["input"], what)
            return self.b.add(node.name, op, [self._value(a.get("input"), what)])
        if op in ("softmax", "log_softmax"):
            names = ["input", "dim", "_stacklevel", "dtype"] if fn in (F.softmax, F.log_softmax) \
                else ["input", "dim", "dtype"]
            a = _fn_args(node, names, what)
            if a.get("dtype") not in (None, torch.float32):
                raise ExportError(f"{what}: dtype={a['dtype']} is not supported; leave dtype "
                                  "unset (float32)")
            return self._softmax(node, op, a.get("input"), a.get("dim"), what)
        if op == "dropout":
            names = ["input", "p", "train"] if fn is torch.dropout else \
                ["input", "p", "training", "inplace"]
            a = _fn_args(node, names, what)
            return self.b.add(node.name, "dropout", [self._value(a.get("input"), what)])
        if op == "add":
            names = ["input", "other"] + ([] if fn in (operator.add, operator.iadd) else ["alpha"])
            a = _fn_args(node, names, what)
            if a.get("alpha", 1) != 1 or "other" not in a:
                raise ExportError(f"{what}: only the sum of two tensors (a + b) is supported")
            if (r := self._param_operand(node, a, "add", what)) is not None:
                return r
            return self.b.add(node.name, "add", [self._value(a.get(k), what + " (operand)")
                                                 for k in ("input", "other")])
        if op == "mul":
            a = _fn_args(node, ["input", "other"], what)
            if "other" not in a or not all(isinstance(a.get(k), torch.fx.Node)
                                           for k in ("input", "other")):
                raise ExportError(f"{what}: only the element-wise product of two tensors "
                                  "(a * b) is supported")
            if (r := self._param_operand(node, a, "mul", what)) is not None:
                return r
            return self.b.add(node.name, "mul", [self._value(a.get(k), what + " (operand)")
                                                 for k in ("input", "other")])
        if op == "rsub":
            # c - t: operator.sub(c, t), torch.sub(c, t); torch.rsub(t, c), t.__rsub__(c).
            names = ["input", "other"] + ([] if fn is operator.sub else ["alpha"])
            a = _fn_args(node, names, what)
            if a.get("alpha", 1) != 1:
                raise ExportError(f"{what}: alpha is not supported")
            reverse = fn is torch.rsub or (method and node.target == "__rsub__")
            c, t = (a.get("other"), a.get("input")) if reverse else \
                (a.get("input"), a.get("other"))
            if isinstance(c, (int, float)) and not isinstance(c, bool) \
                    and isinstance(t, torch.fx.Node):
                return self.b.add(node.name, "rsub", [self._value(t, what)],
                                  {"value": float(c)})
            raise ExportError(f"{what}: only a constant minus a tensor (1 - z, as in a GRU "
                              "gate) is supported")
        if op == "concat":
            a = _fn_args(node, ["tensors", "dim", "axis"], what)
            dim = a.get("dim", a.get("axis", 0))
            if dim not in (-1, 1):
                raise ExportError(f"{what}: only concatenation along channels (dim=-1 or 1) "
                                  f"is supported, got dim={dim}")
            return self.b.add(node.name, "concat", [self._value(t, what) for t in a["tensors"]])
        # global pooling: (x, batch=None, size=None)
        a = _fn_args(node, ["x", "batch", "size"], what)
        return self._pool(node, op, a.get("x"), a.get("batch"), a.get("size"), "size", what)

    def _pool(self, node, op, x, batch, size, size_name, what) -> str:
        x = self._value(x, what)
        self._graph_input(batch, "batch", what, optional=True)
        if size is not None:
            raise ExportError(f"{what}: the '{size_name}' argument is not supported; leave it "
                              "out (the number of graphs is taken from batch)")
        return self.b.add(node.name, op, [x], level="graph")

    def _softmax(self, node: torch.fx.Node, kind: str, x: Any, dim: Any, what: str) -> str:
        """softmax / log_softmax over the channels (dim=-1 or 1), as PyG's examples end."""
        if dim not in (-1, 1):
            raise ExportError(f"{what}: only {kind} over the channels (dim=-1 or dim=1) is "
                              f"supported, got dim={dim}")
        return self.b.add(node.name, kind, [self._value(x, what)])


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------

def _float_state_dict(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """The floating-point entries of the state_dict as contiguous f32 copies (integer
    buffers such as BatchNorm's ``num_batches_tracked`` are dropped)."""
    return {k: v.detach().to(torch.float32).contiguous().clone()
            for k, v in model.state_dict().items() if v.is_floating_point()}


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _untraced_root(model: torch.nn.Module) -> bool:
    """Models translated from their attributes rather than traced: the BasicGNNs, an MLP,
    a single message-passing layer (forward(x, edge_index[, ...]) bound by name)."""
    if not isinstance(model, (BasicGNN, MessagePassing, MLP)):
        return False
    return _module_handler(model) not in (None, "_needs_call")


def _trace_error(model: torch.nn.Module, failed_in, e: Exception) -> ExportError:
    """The error for a forward torch.fx cannot trace, naming the module being traced."""
    if failed_in is None:
        where = f"{type(model).__name__}.forward"
    else:
        qual, m = failed_in
        where = f"module '{qual}' ({type(m).__module__}.{type(m).__name__})"
    return ExportError(
        f"cannot trace {where} with torch.fx ({type(e).__name__}: {e}); tinygnn needs a "
        "forward whose operations do not depend on the values of the tensors: remove Python "
        "control flow on tensors (if/while on a tensor, .item(), .tolist(), sizes used as "
        "numbers) or move it out of the model, and build the model from the layers listed in "
        "tools/python/README.md")


def _example_tensor(example: Data, key: str) -> Optional[torch.Tensor]:
    value = getattr(example, key, None)
    if value is not None and not isinstance(value, torch.Tensor):
        raise ExportError(f"example graph: {key} must be a torch.Tensor, got "
                          f"{type(value).__name__}")
    return value


def _check_finite(key: str, t: torch.Tensor) -> None:
    if t.is_floating_point() and not torch.isfinite(t).all():
        bad = ~torch.isfinite(t)
        kinds = " and ".join(k for k, m in (("NaN", torch.isnan(t)), ("Inf", torch.isinf(t)))
                             if m.any())
        raise ExportError(f"example graph: {key} contains {kinds} ({int(bad.sum())} of "
                          f"{t.numel()} values); give finite example data")


def _check_example(example: Data) -> None:
    """The example graph's tensors have the dtypes, shapes and ranges PyG and the GRAPHS
    file expect (docs/interchange.md); each problem is reported naming the tensor."""
    if not isinstance(example, BaseData):
        raise ExportError(f"the example must be a torch_geometric.data.Data or Batch, got "
                          f"{type(example).__name__}")
    x = _example_tensor(example, "x")
    if x is None or x.dim() != 2:
        raise ExportError("example graph: needs node features x of shape [N, F], got "
                          + ("none" if x is None else f"shape {list(x.shape)}"))
    if not x.is_floating_point():
        raise ExportError(f"example graph: x has dtype {x.dtype}; node features must be "
                          "floating point (x.float())")
    _check_finite("x", x)
    n = x.size(0)
    ei = _example_tensor(example, "edge_index")
    e = None
    if ei is not None:
        if ei.dtype != torch.long:
            raise ExportError(f"example graph: edge_index has dtype {ei.dtype}; it must be "
                              "torch.long (edge_index.long())")
        if ei.dim() != 2 or ei.size(0) != 2:
            raise ExportError(f"example graph: edge_index must have shape [2, E], got "
                              f"{list(ei.shape)} (transpose an [E, 2] list with .t())")
        e = ei.size(1)
        if e and (int(ei.min()) < 0 or int(ei.max()) >= n):
            raise ExportError(f"example graph: edge_index has node indices from {int(ei.min())} "
                              f"to {int(ei.max())}, outside [0, {n}) for the {n} rows of x")
    ew = _example_tensor(example, "edge_weight")
    if ew is not None:
        if not ew.is_floating_point():
            raise ExportError(f"example graph: edge_weight has dtype {ew.dtype}; it must be "
                              "floating point (edge_weight.float())")
        if ew.dim() != 1 or (e is not None and ew.numel() != e):
            raise ExportError(f"example graph: edge_weight must have shape [E] = [{e}] (one "
                              f"value per edge of edge_index), got {list(ew.shape)}")
        _check_finite("edge_weight", ew)
    ea = _example_tensor(example, "edge_attr")
    if ea is not None:
        if not ea.is_floating_point():
            raise ExportError(f"example graph: edge_attr has dtype {ea.dtype}; edge features "
                              "must be floating point (embed categorical edge types before "
                              "the model, or edge_attr.float())")
        if ea.dim() not in (1, 2) or (e is not None and ea.size(0) != e):
            raise ExportError(f"example graph: edge_attr must have shape [E, D] or [E] with "
                              f"E = {e} (one row per edge of edge_index), got {list(ea.shape)}")
        _check_finite("edge_attr", ea)
    hi = _example_tensor(example, "hyperedge_index")
    if hi is not None:
        if hi.dtype != torch.long:
            raise ExportError(f"example graph: hyperedge_index has dtype {hi.dtype}; it must be "
                              "torch.long (hyperedge_index.long())")
        if hi.dim() != 2 or hi.size(0) != 2:
            raise ExportError(f"example graph: hyperedge_index must have shape [2, nnz] (row 0 "
                              f"nodes, row 1 hyperedges), got {list(hi.shape)}")
        if hi.size(1) and (int(hi[0].min()) < 0 or int(hi[0].max()) >= n):
            raise ExportError(f"example graph: hyperedge_index has node indices from "
                              f"{int(hi[0].min())} to {int(hi[0].max())}, outside [0, {n}) for "
                              f"the {n} rows of x")
        if hi.size(1) and (int(hi[1].min()) < 0 or int(hi[1].max()) > 65535):
            raise ExportError("example graph: hyperedge_index has hyperedge ids outside "
                              "[0, 65535] (tinygnn hyperedge ids are u16)")
    hw = _example_tensor(example, "hyperedge_weight")
    if hw is not None:
        m = int(hi[1].max()) + 1 if hi is not None and hi.size(1) else 0
        if hi is None:
            raise ExportError("example graph: hyperedge_weight is given without hyperedge_index")
        if not hw.is_floating_point() or hw.dim() != 1 or hw.numel() < m:
            raise ExportError(f"example graph: hyperedge_weight must be a floating-point [M] "
                              f"tensor with M >= {m} (one weight per hyperedge), got "
                              f"{hw.dtype} {list(hw.shape)}")
        _check_finite("hyperedge_weight", hw)
        if hw.numel() and float(hw.min()) < 0:
            raise ExportError("example graph: hyperedge_weight has negative weights; tinygnn "
                              "reads hyperedge weights as non-negative Q16 values (like edge "
                              "weights)")
    batch = _example_tensor(example, "batch")
    if batch is not None:
        if batch.dtype != torch.long:
            raise ExportError(f"example graph: batch has dtype {batch.dtype}; it must be "
                              "torch.long (batch.long())")
        if batch.dim() != 1 or batch.numel() != n:
            raise ExportError(f"example graph: batch must have shape [N] = [{n}] (the graph "
                              f"of each row of x), got {list(batch.shape)}")
        if n and int(batch.min()) < 0:
            raise ExportError("example graph: batch has negative graph indices")


def _check_weights(state: Dict[str, torch.Tensor]) -> None:
    for key, t in state.items():
        if not torch.isfinite(t).all():
            raise ExportError(f"the model's parameter '{key}' contains NaN or Inf; export a "
                              "trained model with finite weights")


def _out_channels(op: dict, ins: List[Optional[int]]) -> Optional[int]:
    kind, a = op["op"], op.get("attrs", {})
    if kind in ("linear", "gcn_conv", "sage_conv", "sg_conv", "tag_conv", "hypergraph_conv",
                "cheb_conv"):
        return a.get("out_channels")
    if kind == "global_attention":
        return a["channels"]
    if kind == "attention_pool":
        return ins[1] if len(ins) > 1 else None
    if kind == "random_walk_pe":
        return a["walk_length"]
    if kind in ("gat_conv", "gatv2_conv", "transformer_conv"):
        return a["out_channels"] * (a.get("heads", 1) if a.get("concat", True) else 1)
    if kind in ("edge_conv", "dynamic_edge_conv"):
        return [l for l in a["nn"] if l["op"] == "linear"][-1]["out_channels"]
    if kind in ("concat", "pair_concat"):
        ins = ins if kind == "concat" else ins * 2
        return None if None in ins else sum(ins)
    if kind == "inner_product":
        return 1
    return ins[0] if ins else None


def _check_channels(spec: dict) -> None:
    """Each op's declared input channels against what flows into it; a mismatch on the
    model input means the example's x (or edge_attr) has the wrong width."""
    inp = spec["input"]["name"]
    channels: Dict[str, Optional[int]] = {inp: spec["input"]["channels"]}
    edge = spec.get("edge_input", {}).get("channels")
    for op in spec["ops"]:
        ins = [channels.get(i) for i in op["inputs"]]
        a = op.get("attrs", {})
        want = a.get("channels") if op["op"] in ("batch_norm", "gcn2_conv") else \
            a.get("in_channels")
        if want is not None and want > 0 and ins[0] is not None and want != ins[0]:
            if op["inputs"][0] == inp:
                raise ExportError(f"example graph: x has {ins[0]} channels but '{op['name']}' "
                                  f"({op['op']}) expects {want}: x must be [N, {want}]")
            raise ExportError(f"'{op['name']}' ({op['op']}) expects {want} input channels but "
                              f"'{op['inputs'][0]}' has {ins[0]}")
        if edge is not None and op["op"] in ("gine_conv", "gat_conv", "gatv2_conv",
                                             "transformer_conv"):
            want_e = a.get("edge_dim", ins[0] if op["op"] == "gine_conv" else None)
            if want_e is not None and want_e != edge:
                raise ExportError(f"example graph: edge_attr has {edge} channels but "
                                  f"'{op['name']}' ({op['op']}) expects {want_e}: edge_attr "
                                  f"must be [E, {want_e}]")
        channels[op["name"]] = _out_channels(op, ins)


def _run_model(model: torch.nn.Module, *args, _outputs: int = 1, **kwargs):
    """Run (eval mode, no grad) PyG's model; errors and non-finite outputs as ExportError.
    With ``_outputs > 1`` (a recurrent cell returning ``(y, h_next)``, ``(h_next, c_next)``,
    ...) returns the tuple."""
    try:
        out = model(*args, **kwargs)
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"running {type(model).__name__} on the example graph failed "
                          f"({type(e).__name__}: {e}); check that the example matches the "
                          "model (x [N, F] float, edge_index [2, E] long in [0, N), "
                          "edge_weight [E], edge_attr [E, D], batch [N] long)") from e
    if _outputs > 1 and isinstance(out, (tuple, list)) and len(out) == _outputs \
            and all(isinstance(o, torch.Tensor) for o in out):
        for o in out:
            _run_check_finite(o)
        return tuple(out)
    if not isinstance(out, torch.Tensor):
        raise ExportError(f"{type(model).__name__}.forward must return a single tensor, got "
                          f"{type(out).__name__}")
    _run_check_finite(out)
    return out


def _run_check_finite(out: torch.Tensor) -> None:
    if not torch.isfinite(out).all():
        bad = int((~torch.isfinite(out)).sum())
        raise ExportError(f"the model's output on the example graph contains NaN or Inf "
                          f"({bad} of {out.numel()} values) although the example and the "
                          "weights are finite; check the model (e.g. BatchNorm running_var "
                          "< 0, overflow) before exporting")


def build_spec(model: torch.nn.Module, example: Data) -> ExportResult:
    """Translate ``model`` into a spec; ``example`` is run through PyG (eval mode) to check
    the translation and to produce the expected output. Raises :class:`ExportError`."""
    _check_example(example)
    state = _float_state_dict(model)
    _check_weights(state)
    builder = _SpecBuilder(state)
    builder.example_x = getattr(example, "x", None)
    # A recurrent cell: forward(x, edge_index[, edge_weight], h) with the example's state
    # data.h [N, H]; it returns h_next or (y, h_next). The argument may also be named H
    # (torch-geometric-temporal's cells: forward(X, edge_index, edge_weight, H, ...)). Several
    # states (an LSTM's h and c: forward(x, edge_index, h, c) returning (h, c) or (y, h, c);
    # a stack of cells: h1, h2) are the arguments named as _STATE_NAME for which the example
    # has a tensor; their next values are the forward's last results, in the same order.
    states: List[Tuple[str, str, torch.Tensor]] = []
    for p in _forward_parameters(model)[1:]:
        if p.name in _GRAPH_INPUTS or not _STATE_NAME.fullmatch(p.name):
            continue
        attr = p.name if getattr(example, p.name, None) is not None else p.name.lower()
        value = getattr(example, attr, None)
        if value is None:
            continue
        if not (isinstance(value, torch.Tensor) and value.dim() == 2
                and value.size(0) == example.x.size(0)):
            raise ExportError(f"the example's state data.{attr} must be a [N, H] float tensor "
                              "(one row per node)")
        _check_finite(attr, value)
        if any(a == attr for a, _, _ in states):
            raise ExportError(f"forward arguments '{p.name}' and another read the same state "
                              f"data.{attr}")
        states.append((attr, p.name, value))
    if len(states) > 4:
        raise ExportError(f"{len(states)} states; a recurrent model carries at most 4")
    for attr, pname, _ in states:
        builder.states.append((attr, pname))
        builder.level[attr] = "node"
    with _eval_mode(model), torch.no_grad():
        bound = _bind(model, example)
        inputs = {k: v for k, v in bound.items() if v is not None}
        # Translate first, so that unsupported layers are reported before anything runs.
        traced: Optional[torch.fx.GraphModule] = None
        if _untraced_root(model):
            # A PyG model, layer or MLP exported on its own: read from its attributes, as
            # when it is called from a traced forward (its own forward is not traced).
            builder.edge_attr_given = bound.get("edge_attr") is not None
            weight_key = "hyperedge_weight" if isinstance(model, HypergraphConv) \
                else "edge_weight"
            outputs = [builder.module(model, "", builder.input_name,
                                      edge_weight=bound.get(weight_key) is not None)]
        else:
            concrete = {k: None for k, v in bound.items() if v is None}
            tracer = _Tracer()
            try:
                graph = tracer.trace(model, concrete_args=concrete or None)
            except ExportError:
                raise
            except Exception as e:  # fx raises many kinds of errors on dynamic code
                raise _trace_error(model, tracer.failed_in, e) from e
            outputs = _Translator(model, graph, bound, builder).run()
            traced = torch.fx.GraphModule(model, graph)
        n_out, k = 1, len(states)
        if k:
            if traced is None or len(outputs) not in (k, k + 1):
                want = " or ".join(["h_next", "(y, h_next)"] if k == 1 else
                                   [f"({', '.join(n + '_next' for n, _, _ in states)})",
                                    f"(y, {', '.join(n + '_next' for n, _, _ in states)})"])
                raise ExportError(f"{type(model).__name__}: a recurrent cell's forward must "
                                  f"return {want} (the next states last, in the order of the "
                                  "state arguments)")
            n_out = len(outputs)
        elif len(outputs) != 1:
            raise ExportError(f"{type(model).__name__}.forward must return a single tensor, "
                              f"got {len(outputs)}; return only the model's output")
        levels = {builder.level[o] for o in outputs}
        spec = {
            "tinygnn_spec": SPEC_VERSION,
            "task": levels.pop(),
            "input": {"name": builder.input_name, "channels": int(example.x.size(1))},
            "ops": builder.ops,
            "outputs": outputs,
        }
        if builder.uses_edge_attr:
            ea = getattr(example, "edge_attr", None)
            if ea is None:
                raise ExportError("the model reads edge features but the example graph has no "
                                  "edge_attr; give the example its edge_attr [E, D]")
            spec["edge_input"] = {"name": EDGE_INPUT,
                                  "channels": int(ea.size(1)) if ea.dim() == 2 else 1}
        if k:
            st = [{"name": n, "channels": int(v.size(1)), "next": nxt}
                  for (n, _, v), nxt in zip(states, outputs[-k:])]
            spec["state"] = st[0] if k == 1 else st
        _check_channels(spec)
        expected = _run_model(model, _outputs=n_out, **inputs)
        got = _run_model(traced, _outputs=n_out, **inputs) if traced is not None else None
        pairs = list(zip(got, expected)) if n_out > 1 and got is not None else \
            [(got, expected)] if got is not None else []
        if k:
            nexts = list(expected[-k:]) if n_out > 1 else [expected]
            for (n, _, v), nxt in zip(states, nexts):
                if tuple(nxt.shape) != tuple(v.shape):
                    raise ExportError(f"the cell's next state {n} has shape {tuple(nxt.shape)}, "
                                      f"the example state data.{n} {tuple(v.shape)}; they must "
                                      "match (the state is carried from step to step)")
            expected = expected[0] if n_out > 1 else expected
        if any(not torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in pairs):
            raise ExportError("the traced graph does not reproduce the model's output; "
                              "the forward probably depends on Python control flow (or on "
                              "random numbers in eval mode); make it a fixed sequence of "
                              "layer calls")
    return ExportResult(spec=spec, output=expected.detach().to(torch.float32),
                        extra=dict(builder.derived))


# Link prediction (helper `link`): decoder name → spec op of the pair representation.
LINK_DECODERS = {"inner_product": "inner_product", "hadamard": "pair_hadamard",
                 "concat": "pair_concat"}


def _link_parts(encoder: torch.nn.Module, decoder: str, mlp: Optional[torch.nn.Module]):
    if decoder not in LINK_DECODERS:
        raise ExportError(f"decoder must be one of {sorted(LINK_DECODERS)}, not {decoder!r}")
    if decoder == "inner_product" and mlp is not None:
        raise ExportError("the inner_product decoder takes no mlp")
    if decoder != "inner_product" and mlp is None:
        raise ExportError(f"the {decoder} decoder needs the pair MLP (mlp=...)")
    if isinstance(encoder, (pyg_nn.GAE, pyg_nn.VGAE)):
        # GAE/VGAE: the encoder module; VGAE's mu at inference (its encoder returns
        # (mu, logstd): export an encoder that returns mu only).
        if not isinstance(encoder.decoder, pyg_nn.models.autoencoder.InnerProductDecoder) \
                or decoder != "inner_product":
            raise ExportError("GAE/VGAE models export with their InnerProductDecoder only "
                              "(decoder='inner_product'); for another decoder pass the "
                              "encoder and decoder='hadamard' or 'concat' with mlp=...")
        encoder = encoder.encoder
    return encoder


def build_link_spec(encoder: torch.nn.Module, example: Data, decoder: str = "inner_product",
                    mlp: Optional[torch.nn.Module] = None) -> ExportResult:
    """See :func:`_build_link`; returns the spec and the float pair scores."""
    return _build_link(encoder, example, decoder, mlp)[0]


def _build_link(encoder: torch.nn.Module, example: Data, decoder: str = "inner_product",
                mlp: Optional[torch.nn.Module] = None):
    """The spec of a link-prediction model: ``encoder`` (a node-level model, exported as by
    :func:`build_spec`, or a PyG ``GAE``) gives node embeddings ``z``; the decoder scores
    the node pairs ``example.edge_label_index``: ``"inner_product"`` (``z_s · z_t``, the
    logit of PyG's ``InnerProductDecoder``, no sigmoid), or ``"hadamard"`` / ``"concat"``
    (``z_s ⊙ z_t`` / ``[z_s, z_t]``) followed by ``mlp`` (Linear/ReLU/BatchNorm/Dropout
    modules, e.g. ``torch.nn.Sequential``; its state_dict keys get the prefix
    ``decoder.``). The output has one row per pair."""
    encoder = _link_parts(encoder, decoder, mlp)
    eli = getattr(example, "edge_label_index", None)
    if eli is None or eli.dim() != 2 or eli.size(0) != 2:
        raise ExportError("the example graph needs edge_label_index [2, P] (the pairs to score)"
                          + ("" if eli is None else f", got shape {list(eli.shape)}"))
    if eli.dtype != torch.long:
        raise ExportError(f"example graph: edge_label_index has dtype {eli.dtype}; it must be "
                          "torch.long (edge_label_index.long())")
    n = example.x.size(0) if getattr(example, "x", None) is not None else 0
    if eli.numel() and (int(eli.min()) < 0 or int(eli.max()) >= n):
        raise ExportError(f"example graph: edge_label_index has node indices from "
                          f"{int(eli.min())} to {int(eli.max())}, outside [0, {n})")
    enc = build_spec(encoder, example)
    if enc.spec["task"] != "node":
        raise ExportError("the encoder must produce node embeddings (a node-level output); "
                          "remove its global pooling")
    state = _float_state_dict(encoder)
    if mlp is not None:
        state.update({f"decoder.{k}": v for k, v in _float_state_dict(mlp).items()})
    builder = _SpecBuilder(state, enc.spec["input"]["name"])
    builder.ops = list(enc.spec["ops"])
    for op in builder.ops:
        builder.level[op["name"]] = "node"
    z_name = enc.spec["outputs"][0]
    z = enc.output
    s, t = eli.long()
    if decoder == "inner_product":
        out = builder.add("decoder", "inner_product", [z_name], level="pair")
    else:
        pair = builder.add("pair", LINK_DECODERS[decoder], [z_name], level="pair")
        out = builder.module(mlp, "decoder", pair)
    spec = {
        "tinygnn_spec": SPEC_VERSION,
        "task": "link",
        "input": enc.spec["input"],
        "ops": builder.ops,
        "outputs": [out],
    }
    if "edge_input" in enc.spec:
        spec["edge_input"] = enc.spec["edge_input"]
    _check_channels(spec)
    with torch.no_grad():
        if decoder == "inner_product":
            expected = pyg_nn.InnerProductDecoder()(z, eli.long(), sigmoid=False).view(-1, 1)
        else:
            with _eval_mode(mlp):
                rep = z[s] * z[t] if decoder == "hadamard" else torch.cat([z[s], z[t]], dim=-1)
                expected = _run_model(mlp, rep)
    return ExportResult(spec=spec, output=expected.detach().to(torch.float32)), state


def _example(path, example) -> tuple:
    """The example graph (a ``Data``, or the path of a GRAPHS file, loaded) and the input
    files ``path`` must not be."""
    if isinstance(example, (str, os.PathLike)):
        check_not_input(path, (example,))
        return load_graphs(example), (example,)
    return example, ()


def export_link(encoder: torch.nn.Module, path, example, decoder: str = "inner_product",
                mlp: Optional[torch.nn.Module] = None) -> ExportResult:
    """Export a link-prediction model (see :func:`build_link_spec`) to ``path``. ``example``
    is a ``Data`` or the path of a GRAPHS file (which ``path`` may not be)."""
    example, inputs = _example(path, example)
    result, state = _build_link(encoder, example, decoder, mlp)
    metadata = {
        "tinygnn_spec": json.dumps(result.spec),
        "tinygnn_exporter": (f"tinygnn {EXPORTER_VERSION}; torch {torch.__version__}; "
                             f"torch_geometric {torch_geometric.__version__}"),
    }
    save_tensors(path, state, metadata=metadata, inputs=inputs)
    return result


def export(model: torch.nn.Module, path, example) -> ExportResult:
    """Export ``model`` to ``path`` (``MODEL.safetensors``).

    The file holds the f32 ``state_dict`` tensors and, as metadata, the JSON spec
    (``tinygnn_spec``) and the exporter/PyG versions (``tinygnn_exporter``).
    ``example`` (a ``Data``/``Batch`` with at least ``x`` and ``edge_index``, or the path of a
    GRAPHS file holding one) is used to check that the translation reproduces the model and to
    compute its float output, returned in the :class:`ExportResult`. The file is written
    safely (temporary file + ``os.replace``: a failed export leaves the previous file); a
    ``path`` that is the example's file is refused with ``ValueError`` before anything runs.
    """
    example, inputs = _example(path, example)
    result = build_spec(model, example)
    metadata = {
        "tinygnn_spec": json.dumps(result.spec),
        "tinygnn_exporter": (f"tinygnn {EXPORTER_VERSION}; torch {torch.__version__}; "
                             f"torch_geometric {torch_geometric.__version__}"),
    }
    tensors = dict(_float_state_dict(model))
    tensors.update(result.extra or {})
    save_tensors(path, tensors, metadata=metadata, inputs=inputs)
    return result
