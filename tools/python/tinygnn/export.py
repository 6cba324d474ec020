"""Export PyTorch Geometric models to ``MODEL.safetensors`` (see ``docs/interchange.md``).

The exporter turns a model into the *spec*, a flat list of ops in execution order, plus
the model's float ``state_dict``. Two strategies are used:

* PyG's ready-made models (``torch_geometric.nn.models.GCN``, ``GraphSAGE``, ``GIN``) are
  read from their attributes (``convs``, ``norms``, ``act``, ``jk``, ``lin``), mirroring
  ``BasicGNN.forward`` instead of tracing its Python loop.
* Any other module (including ``torch_geometric.nn.Sequential``) is traced with
  ``torch.fx``; PyG layers are kept as leaf modules and translated one by one.

Everything that is not explicitly understood raises :class:`ExportError` naming the
module or function, so that a model is never exported with silently wrong semantics.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import operator
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.fx
import torch.nn.functional as F
from .graphs import load_graphs
from .tensors_io import check_not_input, save_tensors

import torch_geometric
import torch_geometric.nn as pyg_nn
import torch_geometric.nn.pool as pyg_pool
import torch_geometric.nn.pool.glob as pyg_glob
from torch_geometric.data import Data
from torch_geometric.nn import (APPNP, DynamicEdgeConv, EdgeConv, GATConv, GATv2Conv, GCN2Conv,
                                GCNConv, GINConv, GINEConv, SAGEConv, SGConv, TAGConv)
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense.linear import Linear as PygLinear
from torch_geometric.nn.models import GAT, GCN, GIN, MLP, GraphSAGE
from torch_geometric.nn.models.basic_gnn import BasicGNN
from torch_geometric.nn.norm import BatchNorm as PygBatchNorm

__all__ = ["ExportError", "ExportResult", "SPEC_VERSION", "export", "build_spec", "call_with_data",
           "export_link", "build_link_spec", "LINK_DECODERS"]

SPEC_VERSION = 1
EXPORTER_VERSION = "0.1.0"

# Global pooling functions, by identity, and the spec op they become.
_POOLS = {
    pyg_glob.global_add_pool: "global_add_pool",
    pyg_glob.global_mean_pool: "global_mean_pool",
    pyg_glob.global_max_pool: "global_max_pool",
}
_RELU_FUNCTIONS = {F.relu, torch.relu, torch.relu_, F.relu_}
_LEAKY_RELU_FUNCTIONS = {F.leaky_relu, F.leaky_relu_}
_ELU_FUNCTIONS = {F.elu, F.elu_}
# Softmax heads over the channels, by identity, and the spec op they become.
_SOFTMAX_FUNCTIONS = {F.softmax: "softmax", torch.softmax: "softmax",
                      F.log_softmax: "log_softmax", torch.log_softmax: "log_softmax"}
_DROPOUT_FUNCTIONS = {F.dropout, torch.dropout}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}
_CAT_FUNCTIONS = {torch.cat, torch.concat}
_SAGE_AGGRS = {"mean": "mean", "max": "max", "sum": "sum", "add": "sum"}
_BASIC_GNNS = (GCN, GraphSAGE, GIN, GAT)
_NODE_ONLY_OPS = {"gcn_conv", "sage_conv", "gin_aggregate", "gat_conv", "gatv2_conv",
                  "appnp", "sg_conv", "gcn2_conv", "tag_conv",
                  "gine_conv", "edge_conv", "dynamic_edge_conv"}  # need the graph's edges
EDGE_INPUT = "edge_attr"  # spec name of the edge-feature input (edgefeat)


class ExportError(Exception):
    """The model uses a layer, function or configuration tinygnn cannot represent."""


@dataclass
class ExportResult:
    """What :func:`export` wrote: the spec (a JSON-able dict) and the model's float output
    on the example graph(s), computed by PyG in eval mode."""

    spec: Dict[str, Any]
    output: torch.Tensor


# --------------------------------------------------------------------------------------
# Calling a model with a Data object
# --------------------------------------------------------------------------------------

def _forward_parameters(model: torch.nn.Module) -> List[inspect.Parameter]:
    params = list(inspect.signature(model.forward).parameters.values())
    for p in params:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise ExportError(f"{type(model).__name__}.forward uses *args/**kwargs; "
                              "write it as forward(self, x, edge_index[, edge_weight][, batch])")
    if not params:
        raise ExportError(f"{type(model).__name__}.forward takes no arguments")
    return params


def _bind(model: torch.nn.Module, data: Data) -> Dict[str, Optional[torch.Tensor]]:
    """Map ``model.forward``'s parameters to attributes of ``data``.

    The first parameter always receives ``data.x``; the others receive the attribute of the
    same name (``edge_index``, ``edge_weight``, ``batch``, ...). Optional parameters for which
    ``data`` has no value are bound to ``None``.
    """
    bound: Dict[str, Optional[torch.Tensor]] = {}
    for i, p in enumerate(_forward_parameters(model)):
        value = data.x if i == 0 else getattr(data, p.name, None)
        if value is None and p.default is inspect.Parameter.empty:
            raise ExportError(f"forward argument '{p.name}' is required but the example "
                              f"graph has no attribute '{p.name}'")
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
            raise ExportError(f"parameter '{key}' is not in the model's state_dict")
        return key

    def add(self, base: str, op: str, inputs: Sequence[str], attrs: Optional[dict] = None,
            params: Optional[dict] = None, level: Optional[str] = None) -> str:
        levels = {self.level[i] for i in inputs}
        if len(levels) != 1:
            raise ExportError(f"'{base}' ({op}) mixes node-level and graph-level inputs")
        in_level = levels.pop()
        if in_level != "node" and (op in _NODE_ONLY_OPS or op.startswith("global_")):
            raise ExportError(f"'{base}' ({op}) is applied to a graph-level value")
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
        t = type(mod)
        if t is GCNConv:
            return self._gcn(mod, qual, x, edge_weight, base)
        if t is SAGEConv:
            return self._sage(mod, qual, x, base)
        if t is GINConv:
            return self._gin(mod, qual, x, base)
        if t is GINEConv:
            return self._gine(mod, qual, x, base)
        if t in (GATConv, GATv2Conv):
            return self._gat(mod, qual, x, base)
        if t in (APPNP, SGConv):
            return self._propagate(mod, qual, x, edge_weight, base)
        if t is TAGConv:
            return self._tag(mod, qual, x, edge_weight, base)
        if t in (EdgeConv, DynamicEdgeConv):
            return self._edge_conv(mod, qual, x, base)
        if t in _BASIC_GNNS:
            return self.basic_gnn(mod, qual, x, edge_weight=edge_weight)
        if t is MLP:
            return self._mlp(mod, qual, x)
        if t is torch.nn.Sequential:
            for name, child in mod.named_children():
                x = self.module(child, _join(qual, name), x)
            return x
        if isinstance(mod, (torch.nn.Linear, PygLinear)):
            return self._linear(mod, qual, x, base)
        if isinstance(mod, (torch.nn.BatchNorm1d, PygBatchNorm)):
            return self._batch_norm(mod, qual, x, base)
        if t is torch.nn.ReLU:
            return self.add(base, "relu", [x])
        if t is torch.nn.LeakyReLU:
            return self.add(base, "leaky_relu", [x], {"negative_slope": float(mod.negative_slope)})
        if t is torch.nn.ELU:
            return self.add(base, "elu", [x], {"alpha": float(mod.alpha)})
        if t is torch.nn.Dropout:
            return self.add(base, "dropout", [x])
        if t is torch.nn.Identity:
            return x
        raise ExportError(f"unsupported module '{qual or '<root>'}' ({t.__module__}.{t.__name__})")

    def _linear(self, mod, qual, x, base):
        if isinstance(mod.weight, torch.nn.parameter.UninitializedParameter):
            raise ExportError(f"module '{qual}' (Linear) is lazily initialised; run the model once "
                              "or give in_channels explicitly")
        out_c, in_c = mod.weight.shape
        params = {"weight": self.param(_join(qual, "weight"))}
        if mod.bias is not None:
            params["bias"] = self.param(_join(qual, "bias"))
        return self.add(base, "linear", [x], {"in_channels": int(in_c), "out_channels": int(out_c)},
                        params)

    def _batch_norm(self, mod, qual, x, base):
        if isinstance(mod, PygBatchNorm):
            mod, qual = mod.module, _join(qual, "module")
        if not isinstance(mod, torch.nn.BatchNorm1d):
            raise ExportError(f"unsupported module '{qual}' ({type(mod).__name__})")
        if mod.running_mean is None or mod.running_var is None:
            raise ExportError(f"module '{qual}' (BatchNorm1d) has track_running_stats=False")
        if not mod.affine:
            raise ExportError(f"module '{qual}' (BatchNorm1d) has affine=False")
        params = {role: self.param(_join(qual, role))
                  for role in ("weight", "bias", "running_mean", "running_var")}
        return self.add(base, "batch_norm", [x],
                        {"channels": int(mod.num_features), "eps": float(mod.eps)}, params)

    def _dropout(self, base: str, x: str, p: float) -> str:
        return self.add(base, "dropout", [x]) if p > 0 else x

    def _gcn(self, mod: GCNConv, qual, x, edge_weight, base):
        if mod.flow != "source_to_target":
            raise ExportError(f"module '{qual}' (GCNConv) uses flow='{mod.flow}'")
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

    def _sage(self, mod: SAGEConv, qual, x, base):
        if mod.project:
            raise ExportError(f"module '{qual}' (SAGEConv) uses project=True")
        if not isinstance(mod.aggr, str) or mod.aggr not in _SAGE_AGGRS:
            raise ExportError(f"module '{qual}' (SAGEConv) uses aggr={mod.aggr!r}; "
                              "supported: mean, max, sum")
        if isinstance(mod.in_channels, (tuple, list)) or mod.flow != "source_to_target":
            raise ExportError(f"module '{qual}' (SAGEConv) is bipartite or uses another flow")
        params = {"weight_l": self.param(_join(qual, "lin_l.weight"))}
        if mod.lin_l.bias is not None:
            params["bias_l"] = self.param(_join(qual, "lin_l.bias"))
        if mod.root_weight:
            params["weight_r"] = self.param(_join(qual, "lin_r.weight"))
        attrs = {"in_channels": int(mod.in_channels), "out_channels": int(mod.out_channels),
                 "aggr": _SAGE_AGGRS[mod.aggr], "normalize": bool(mod.normalize),
                 "root_weight": bool(mod.root_weight)}
        return self.add(base, "sage_conv", [x], attrs, params)

    def _gat(self, mod, qual, x, base):
        name = type(mod).__name__
        v2 = type(mod) is GATv2Conv
        if isinstance(mod.in_channels, (tuple, list)) or mod.flow != "source_to_target":
            raise ExportError(f"module '{qual}' ({name}) is bipartite or uses another flow")
        if mod.edge_dim is not None and not self.edge_attr_given:
            raise ExportError(f"module '{qual}' ({name}) has edge_dim={mod.edge_dim} but is not "
                              "called with the graph's edge_attr; not supported")
        if mod.edge_dim is not None and mod.fill_value != "mean":
            raise ExportError(f"module '{qual}' ({name}) uses fill_value={mod.fill_value!r}; "
                              "only 'mean' is supported with edge features")
        if getattr(mod, "residual", False):
            raise ExportError(f"module '{qual}' ({name}) uses residual=True; not supported yet")
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
                raise ExportError(f"module '{qual}' ({name}) has separate source/target weights")
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
            raise ExportError(f"module '{qual}' ({name}) uses flow='{mod.flow}'")
        attrs = {"K": int(mod.K), "add_self_loops": bool(mod.add_self_loops),
                 "edge_weight": bool(edge_weight)}
        if type(mod) is APPNP:
            attrs["alpha"] = float(mod.alpha)
            attrs["normalize"] = bool(mod.normalize)
            return self.add(base, "appnp", [x], attrs)
        w = mod.lin.weight
        if isinstance(w, torch.nn.parameter.UninitializedParameter):
            raise ExportError(f"module '{qual}' (SGConv) is lazily initialised")
        attrs.update({"in_channels": int(w.shape[1]), "out_channels": int(w.shape[0])})
        params = {"weight": self.param(_join(qual, "lin.weight"))}
        if mod.lin.bias is not None:
            params["bias"] = self.param(_join(qual, "lin.bias"))
        return self.add(base, "sg_conv", [x], attrs, params)

    def _tag(self, mod: TAGConv, qual, x, edge_weight, base):
        """TAGConv(K): ``Σ_k lins[k](Â^k x) + bias`` (gcn_norm without self-loops)."""
        if mod.flow != "source_to_target":
            raise ExportError(f"module '{qual}' (TAGConv) uses flow='{mod.flow}'")
        params = {f"weight_{k}": self.param(_join(qual, f"lins.{k}.weight"))
                  for k in range(mod.K + 1)}
        if mod.bias is not None:
            params["bias"] = self.param(_join(qual, "bias"))
        attrs = {"in_channels": int(mod.in_channels), "out_channels": int(mod.out_channels),
                 "K": int(mod.K), "normalize": bool(mod.normalize),
                 "edge_weight": bool(edge_weight)}
        return self.add(base, "tag_conv", [x], attrs, params)

    def gcn2(self, mod: GCN2Conv, qual, x, x0, edge_weight, base):
        """GCN2Conv(channels, alpha, theta, layer, shared_weights): ``x`` and the initial
        representation ``x0`` (two spec inputs); ``beta`` is exported as computed by PyG."""
        if mod.flow != "source_to_target":
            raise ExportError(f"module '{qual}' (GCN2Conv) uses flow='{mod.flow}'")
        attrs = {"channels": int(mod.channels), "alpha": float(mod.alpha),
                 "beta": float(mod.beta), "shared_weights": mod.weight2 is None,
                 "add_self_loops": bool(mod.add_self_loops), "normalize": bool(mod.normalize),
                 "edge_weight": bool(edge_weight)}
        params = {"weight1": self.param(_join(qual, "weight1"))}
        if mod.weight2 is not None:
            params["weight2"] = self.param(_join(qual, "weight2"))
        return self.add(base, "gcn2_conv", [x, x0], attrs, params)

    def _edge_conv(self, mod, qual, x, base):
        """EdgeConv / DynamicEdgeConv: the ``nn`` (a Linear, or a Sequential of Linear,
        BatchNorm1d, ReLU, LeakyReLU, Dropout, Identity) goes into ``attrs.nn``, its
        parameters under the roles ``nn.<position>.<name>`` (docs/interchange.md)."""
        name = type(mod).__name__
        dynamic = type(mod) is DynamicEdgeConv
        if mod.flow != "source_to_target":
            raise ExportError(f"module '{qual}' ({name}) uses flow='{mod.flow}'")
        if not isinstance(mod.aggr, str) or mod.aggr not in ("max", "mean", "add", "sum"):
            raise ExportError(f"module '{qual}' ({name}) uses aggr={mod.aggr!r}; "
                              "supported: max, mean, sum")
        nn_q = _join(qual, "nn")
        if isinstance(mod.nn, torch.nn.Sequential):
            children = [(_join(nn_q, n), c) for n, c in mod.nn.named_children()]
        else:
            children = [(nn_q, mod.nn)]
        layers, params = [], {}
        for i, (q, c) in enumerate(children):
            role = f"nn.{i}"
            if isinstance(c, (torch.nn.Linear, PygLinear)):
                if isinstance(c.weight, torch.nn.parameter.UninitializedParameter):
                    raise ExportError(f"module '{q}' (Linear) is lazily initialised")
                o, n_in = c.weight.shape
                layers.append({"op": "linear", "in_channels": int(n_in), "out_channels": int(o)})
                params[f"{role}.weight"] = self.param(_join(q, "weight"))
                if c.bias is not None:
                    params[f"{role}.bias"] = self.param(_join(q, "bias"))
            elif isinstance(c, (torch.nn.BatchNorm1d, PygBatchNorm)):
                if isinstance(c, PygBatchNorm):
                    c, q = c.module, _join(q, "module")
                if c.running_mean is None or not c.affine:
                    raise ExportError(f"module '{q}' (BatchNorm1d) needs running stats and affine")
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
                raise ExportError(f"module '{q}' ({type(c).__name__}) in the nn of '{qual}' "
                                  f"({name}) is not supported")
        first = next((l for l in layers if l["op"] == "linear"), None)
        if first is None or first["in_channels"] % 2:
            raise ExportError(f"module '{qual}' ({name}): nn must start with a Linear on "
                              "[x_i, x_j - x_i] (even in_features)")
        attrs = {"in_channels": first["in_channels"] // 2,
                 "aggr": "sum" if mod.aggr == "add" else mod.aggr, "nn": layers}
        if dynamic:
            attrs["k"] = int(mod.k)
        return self.add(base, "dynamic_edge_conv" if dynamic else "edge_conv", [x], attrs, params)

    def _gin(self, mod: GINConv, qual, x, base):
        if mod.aggr != "add" or mod.flow != "source_to_target":
            raise ExportError(f"module '{qual}' (GINConv) uses aggr={mod.aggr!r}/flow={mod.flow!r}")
        h = self.add(_join(base, "aggregate"), "gin_aggregate", [x], {"eps": float(mod.eps.item())})
        return self.module(mod.nn, _join(qual, "nn"), h)

    def _gine(self, mod: GINEConv, qual, x, base):
        if mod.aggr != "add" or mod.flow != "source_to_target":
            raise ExportError(f"module '{qual}' (GINEConv) uses aggr={mod.aggr!r}/flow={mod.flow!r}")
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

    def _mlp(self, mod: MLP, qual, x):
        """Mirror ``torch_geometric.nn.models.MLP.forward`` (eval mode)."""
        act_q = _join(qual, "act")
        for i, (lin, norm) in enumerate(zip(mod.lins, mod.norms)):
            x = self.module(lin, _join(qual, f"lins.{i}"), x)
            if mod.act_first:
                x = self._act(mod.act, act_q, x, f"{act_q}.{i}")
            if getattr(mod, "supports_norm_batch", False):
                raise ExportError(f"module '{qual}.norms.{i}' ({type(norm).__name__}) needs the "
                                  "batch vector; not supported")
            x = self.module(norm, _join(qual, f"norms.{i}"), x)
            if not mod.act_first:
                x = self._act(mod.act, act_q, x, f"{act_q}.{i}")
            x = self._dropout(_join(qual, f"dropout.{i}"), x, mod.dropout[i])
        if mod.plain_last:
            x = self.module(mod.lins[-1], _join(qual, f"lins.{len(mod.lins) - 1}"), x)
            x = self._dropout(_join(qual, "dropout.last"), x, mod.dropout[-1])
        return x

    def basic_gnn(self, mod: BasicGNN, qual: str, x: str, *, edge_weight: bool) -> str:
        """Mirror ``BasicGNN.forward`` for GCN / GraphSAGE / GIN (eval mode)."""
        name = type(mod).__name__
        if mod.jk_mode not in (None, "last", "cat"):
            raise ExportError(f"module '{qual or '<root>'}' ({name}) uses jk='{mod.jk_mode}'; "
                              "supported: None, 'last', 'cat'")
        if getattr(mod, "supports_norm_batch", False):
            raise ExportError(f"module '{_join(qual, 'norms.0')}' ({type(mod.norms[0]).__name__}) "
                              "needs the batch vector; not supported")
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
    """fx tracer that keeps every PyG module (except ``torch_geometric.nn.Sequential``)
    as a leaf and records the global pooling functions as single calls."""

    def is_leaf_module(self, m: torch.nn.Module, qualname: str) -> bool:
        if isinstance(m, pyg_nn.Sequential):
            return False
        if type(m).__module__.startswith("torch_geometric."):
            return True
        return super().is_leaf_module(m, qualname)

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
        with self._wrapped_pools(root):
            return super().trace(root, concrete_args)


def _fn_name(target: Any) -> str:
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", None) or str(target)
    return f"{mod}.{name}" if mod else name


class _Translator:
    """Translate an fx graph of a plain module into spec ops."""

    def __init__(self, model: torch.nn.Module, graph: torch.fx.Graph,
                 bound: Dict[str, Optional[torch.Tensor]], builder: _SpecBuilder):
        self.model = model
        self.graph = graph
        self.b = builder
        self.params = list(bound)
        self.env: Dict[torch.fx.Node, Any] = {}

    # Values in env: ("value", name) for spec values, ("graph", role) for graph inputs.
    def _value(self, arg: Any, what: str) -> str:
        v = self.env.get(arg) if isinstance(arg, torch.fx.Node) else None
        if v is None or v[0] != "value":
            raise ExportError(f"{what}: expected node features, got {arg!r}")
        return v[1]

    def _graph_input(self, arg: Any, role: str, what: str, optional: bool) -> bool:
        """Check ``arg`` is the model's ``role`` input (or None if optional); return whether
        it is present."""
        if arg is None and optional:
            return False
        v = self.env.get(arg) if isinstance(arg, torch.fx.Node) else None
        if v != ("graph", role):
            raise ExportError(f"{what}: argument must be the forward's '{role}' input, got {arg!r}")
        return True

    def run(self) -> List[str]:
        placeholders = [n for n in self.graph.nodes if n.op == "placeholder"]
        for i, (node, pname) in enumerate(zip(placeholders, self.params)):
            if i == 0:
                self.env[node] = ("value", self.b.input_name)
            elif pname in ("edge_index", "edge_weight", "batch", "edge_attr"):
                self.env[node] = ("graph", pname)
            else:
                self.env[node] = ("graph", f"unsupported:{pname}")
        outputs: List[str] = []
        for node in self.graph.nodes:
            if node.op == "placeholder":
                continue
            if node.op == "output":
                res = node.args[0]
                res = list(res) if isinstance(res, (tuple, list)) else [res]
                outputs = [self._value(r, "model output") for r in res]
                continue
            if node.op == "call_module":
                self.env[node] = ("value", self._call_module(node))
            elif node.op == "call_function":
                if getattr(node.target, "__name__", "") == "_assert_is_none":
                    continue  # inserted by fx for arguments bound to None
                self.env[node] = ("value", self._call_function(node))
            elif node.op == "call_method":
                self.env[node] = ("value", self._call_method(node))
            else:  # get_attr
                raise ExportError(f"unsupported use of tensor attribute '{node.target}' in forward")
        return outputs

    def _call_module(self, node: torch.fx.Node) -> str:
        qual = str(node.target)
        mod = self.model.get_submodule(qual)
        what = f"module '{qual}' ({type(mod).__name__})"
        args, kwargs = list(node.args), dict(node.kwargs)
        if not args:
            raise ExportError(f"{what}: called without node features")
        x = self._value(args[0], what)
        edge_weight = False
        if type(mod) is GCN2Conv:
            # forward(x, x_0, edge_index, edge_weight=None)
            names = ["x_0", "edge_index", "edge_weight"]
            bound = {**dict(zip(names, args[1:])), **kwargs}
            if set(bound) - set(names) or "x_0" not in bound:
                raise ExportError(f"{what}: expected (x, x_0, edge_index[, edge_weight])")
            x0 = self._value(bound["x_0"], what + " (x_0)")
            self._graph_input(bound.get("edge_index"), "edge_index", what, optional=False)
            edge_weight = self._graph_input(bound.get("edge_weight"), "edge_weight", what,
                                            optional=True)
            return self.b.gcn2(mod, qual, x, x0, edge_weight, node.name)
        edge_attr_given = False
        if isinstance(mod, DynamicEdgeConv):
            # forward(x, batch=None): the graph is built from x itself.
            b = args[1] if len(args) > 1 else kwargs.pop("batch", None)
            self._graph_input(b, "batch", what, optional=True)
            if len(args) > 2 or kwargs:
                raise ExportError(f"{what}: called with extra arguments")
        elif isinstance(mod, (MessagePassing, BasicGNN)):
            if type(mod) not in (GCNConv, SAGEConv, GINConv, GINEConv, GATConv, GATv2Conv,
                                 APPNP, SGConv, TAGConv, EdgeConv) + _BASIC_GNNS:
                raise ExportError(f"unsupported module '{qual}' ({type(mod).__module__}."
                                  f"{type(mod).__name__})")
            ei = args[1] if len(args) > 1 else kwargs.pop("edge_index", None)
            self._graph_input(ei, "edge_index", what, optional=False)
            rest = {**{k: a for k, a in zip(self._extra_arg_names(mod), args[2:])}, **kwargs}
            accepts_weight = isinstance(mod, (GCNConv, APPNP, SGConv, TAGConv)) or (
                isinstance(mod, BasicGNN) and mod.supports_edge_weight)
            for key, val in rest.items():
                if key == "edge_weight" and accepts_weight:
                    edge_weight = self._graph_input(val, "edge_weight", what, optional=True)
                elif key == "batch" and isinstance(mod, BasicGNN):
                    self._graph_input(val, "batch", what, optional=True)
                elif key == "edge_attr" and (isinstance(mod, GINEConv) or (
                        isinstance(mod, (GATConv, GATv2Conv)) and mod.edge_dim is not None)):
                    edge_attr_given = self._graph_input(
                        val, "edge_attr", what, optional=isinstance(mod, (GATConv, GATv2Conv)))
                elif val is not None:
                    raise ExportError(f"{what}: unsupported argument '{key}'")
        elif len(args) > 1 or kwargs:
            raise ExportError(f"{what}: called with extra arguments")
        self.b.edge_attr_given = edge_attr_given
        try:
            return self.b.module(mod, qual, x, edge_weight=edge_weight, base=node.name)
        finally:
            self.b.edge_attr_given = False

    @staticmethod
    def _extra_arg_names(mod: torch.nn.Module) -> List[str]:
        """Names of forward's parameters after (x, edge_index)."""
        return list(inspect.signature(mod.forward).parameters)[2:]

    def _call_function(self, node: torch.fx.Node) -> str:
        fn, args, kwargs = node.target, list(node.args), dict(node.kwargs)
        what = f"function {_fn_name(fn)}"
        if fn in _RELU_FUNCTIONS:
            return self.b.add(node.name, "relu", [self._value(args[0], what)])
        if fn in _LEAKY_RELU_FUNCTIONS:
            slope = args[1] if len(args) > 1 else kwargs.get("negative_slope", 0.01)
            return self.b.add(node.name, "leaky_relu", [self._value(args[0], what)],
                              {"negative_slope": float(slope)})
        if fn in _ELU_FUNCTIONS:
            alpha = args[1] if len(args) > 1 else kwargs.get("alpha", 1.0)
            return self.b.add(node.name, "elu", [self._value(args[0], what)],
                              {"alpha": float(alpha)})
        if fn in _SOFTMAX_FUNCTIONS:
            dim = args[1] if len(args) > 1 else kwargs.get("dim")
            return self._softmax(node, _SOFTMAX_FUNCTIONS[fn], args[0], dim, what)
        if fn in _DROPOUT_FUNCTIONS:
            return self.b.add(node.name, "dropout", [self._value(args[0], what)])
        if fn in _ADD_FUNCTIONS:
            if len(args) != 2 or kwargs.get("alpha", 1) != 1:
                raise ExportError(f"{what}: only the sum of two tensors is supported")
            return self.b.add(node.name, "add", [self._value(a, what + " (operand)") for a in args])
        if fn in _CAT_FUNCTIONS:
            tensors = args[0]
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            if dim not in (-1, 1):
                raise ExportError(f"{what}: only concatenation along channels (dim=-1 or 1) "
                                  f"is supported, got dim={dim}")
            return self.b.add(node.name, "concat", [self._value(t, what) for t in tensors])
        if fn in _POOLS:
            x = self._value(args[0], what)
            batch = args[1] if len(args) > 1 else kwargs.get("batch")
            size = args[2] if len(args) > 2 else kwargs.get("size")
            self._graph_input(batch, "batch", what, optional=True)
            if size is not None:
                raise ExportError(f"{what}: the 'size' argument is not supported")
            return self.b.add(node.name, _POOLS[fn], [x], level="graph")
        raise ExportError(f"unsupported function '{_fn_name(fn)}' in forward")

    def _call_method(self, node: torch.fx.Node) -> str:
        what = f"method Tensor.{node.target}"
        if node.target in ("relu", "relu_") and len(node.args) == 1:
            return self.b.add(node.name, "relu", [self._value(node.args[0], what)])
        if node.target in ("add", "add_", "__add__") and len(node.args) == 2 and not node.kwargs:
            return self.b.add(node.name, "add", [self._value(a, what) for a in node.args])
        if node.target in ("softmax", "log_softmax") and node.args:
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
            return self._softmax(node, node.target, node.args[0], dim, what)
        raise ExportError(f"unsupported method 'Tensor.{node.target}' in forward")

    def _softmax(self, node: torch.fx.Node, kind: str, x: Any, dim: Any, what: str) -> str:
        """softmax / log_softmax over the channels (dim=-1 or 1), as PyG's examples end."""
        if dim not in (-1, 1):
            raise ExportError(f"{what}: only {kind} over the channels (dim=-1 or dim=1) is "
                              f"supported, got dim={dim}")
        extra = {k: v for k, v in node.kwargs.items() if k not in ("dim", "dtype", "_stacklevel")}
        if extra or node.kwargs.get("dtype") not in (None, torch.float32):
            raise ExportError(f"{what}: unsupported arguments {sorted(node.kwargs)}")
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


def build_spec(model: torch.nn.Module, example: Data) -> ExportResult:
    """Translate ``model`` into a spec; ``example`` is run through PyG (eval mode) to check
    the translation and to produce the expected output. Raises :class:`ExportError`."""
    if getattr(example, "x", None) is None or example.x.dim() != 2:
        raise ExportError("the example graph needs node features x of shape [N, F]")
    state = _float_state_dict(model)
    builder = _SpecBuilder(state)
    with _eval_mode(model), torch.no_grad():
        bound = _bind(model, example)
        inputs = {k: v for k, v in bound.items() if v is not None}
        # Translate first, so that unsupported layers are reported before anything runs.
        traced: Optional[torch.fx.GraphModule] = None
        if type(model) in _BASIC_GNNS:
            outputs = [builder.basic_gnn(model, "", builder.input_name,
                                         edge_weight=bound.get("edge_weight") is not None)]
        else:
            concrete = {k: None for k, v in bound.items() if v is None}
            try:
                graph = _Tracer().trace(model, concrete_args=concrete or None)
            except ExportError:
                raise
            except Exception as e:  # fx raises many kinds of errors on dynamic code
                raise ExportError(f"cannot trace {type(model).__name__}.forward with torch.fx: "
                                  f"{e}") from e
            outputs = _Translator(model, graph, bound, builder).run()
            traced = torch.fx.GraphModule(model, graph)
        expected = model(**inputs)
        if not isinstance(expected, torch.Tensor) or len(outputs) != 1:
            raise ExportError("the model must return a single tensor")
        if traced is not None and not torch.allclose(traced(**inputs), expected,
                                                     rtol=1e-5, atol=1e-6):
            raise ExportError("the traced graph does not reproduce the model's output; "
                              "the forward probably depends on Python control flow")
    levels = {builder.level[o] for o in outputs}
    if len(levels) != 1:
        raise ExportError("model outputs mix node-level and graph-level values")
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
            raise ExportError("the model reads edge features but the example graph has no edge_attr")
        spec["edge_input"] = {"name": EDGE_INPUT, "channels": int(ea.size(1)) if ea.dim() == 2 else 1}
    return ExportResult(spec=spec, output=expected.detach().to(torch.float32))


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
            raise ExportError("GAE/VGAE models export with their InnerProductDecoder only")
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
        raise ExportError("the example graph needs edge_label_index [2, P] (the pairs to score)")
    enc = build_spec(encoder, example)
    if enc.spec["task"] != "node":
        raise ExportError("the encoder must produce node embeddings (a node-level output)")
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
    with torch.no_grad():
        if decoder == "inner_product":
            out = builder.add("decoder", "inner_product", [z_name], level="pair")
            expected = pyg_nn.InnerProductDecoder()(z, eli.long(), sigmoid=False).view(-1, 1)
        else:
            pair = builder.add("pair", LINK_DECODERS[decoder], [z_name], level="pair")
            out = builder.module(mlp, "decoder", pair)
            with _eval_mode(mlp):
                rep = z[s] * z[t] if decoder == "hadamard" else torch.cat([z[s], z[t]], dim=-1)
                expected = mlp(rep)
    spec = {
        "tinygnn_spec": SPEC_VERSION,
        "task": "link",
        "input": enc.spec["input"],
        "ops": builder.ops,
        "outputs": [out],
    }
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
    save_tensors(path, _float_state_dict(model), metadata=metadata, inputs=inputs)
    return result
