"""A plain-torch interpreter of the spec, written from the semantics table of
``docs/interchange.md`` without calling PyG layers.

It is the executable statement of what each op means: the tests check that it reproduces
PyG's output for every exported model, which validates the exporter (op order, attrs,
parameter names) and documents edge cases for the runtime (self-loops, duplicate edges,
isolated nodes, ``improved`` without edge weights).
"""
from __future__ import annotations

import json
from typing import Dict, Optional

import torch
from safetensors import safe_open
from safetensors.torch import load_file

__all__ = ["run_spec", "run_files", "read_model", "run_sequence"]


def read_model(path) -> (dict, Dict[str, torch.Tensor]):
    """Return (spec, tensors) of a MODEL.safetensors file."""
    with safe_open(str(path), framework="pt") as f:
        spec = json.loads(f.metadata()["tinygnn_spec"])
    return spec, load_file(str(path))


def _segment(values: torch.Tensor, index: torch.Tensor, size: int, reduce: str) -> torch.Tensor:
    """Reduce rows of ``values`` into ``size`` segments; empty segments give 0."""
    out = values.new_zeros((size,) + values.shape[1:])
    if reduce == "sum":
        return out.index_add_(0, index, values)
    idx = index.view(-1, *([1] * (values.dim() - 1))).expand_as(values)
    if reduce == "max":
        return out.scatter_reduce_(0, idx, values, "amax", include_self=False)
    if reduce == "mean":
        total = out.index_add_(0, index, values)
        count = torch.bincount(index, minlength=size).clamp(min=1).to(values.dtype)
        return total / count.view(-1, *([1] * (values.dim() - 1)))
    raise ValueError(reduce)


def _gcn_edges(edge_index, edge_weight, n, attrs):
    """Edge list and per-edge coefficients of GCNConv (PyG's gcn_norm, flow source→target)."""
    src, dst = edge_index
    given = edge_weight is not None and attrs["edge_weight"]
    w = edge_weight.clone() if given else torch.ones(src.numel())
    if not attrs["normalize"]:
        return src, dst, w
    if attrs["add_self_loops"]:
        # add_remaining_self_loops: existing loops are dropped and one loop per node is
        # appended. Its weight is the (last) existing loop's weight, else the fill value —
        # which is 2 for improved=True, but only when an edge weight is passed: without
        # one PyG (2.8) builds all-ones weights *after* adding the loops.
        loop = src == dst
        loop_w = torch.full((n,), 2.0 if (attrs["improved"] and given) else 1.0)
        if given:
            loop_w[src[loop]] = w[loop]
        keep = ~loop
        nodes = torch.arange(n)
        src, dst = torch.cat([src[keep], nodes]), torch.cat([dst[keep], nodes])
        w = torch.cat([w[keep], loop_w])
    deg = torch.zeros(n).index_add_(0, dst, w)
    dinv = deg.pow(-0.5)
    dinv[torch.isinf(dinv)] = 0.0
    return src, dst, dinv[src] * w * dinv[dst]


def _cheb_edges(edge_index, edge_weight, n, attrs):
    """Edges and coefficients of ChebConv's scaled Laplacian with lambda_max 2 (PyG's
    get_laplacian(normalization='sym'), then 2L/2 - I): -deg_j^-1/2 w_ji deg_i^-1/2 over
    the edges j -> i without self-loops, deg summed over the source index."""
    src, dst = edge_index
    given = edge_weight is not None and attrs.get("edge_weight", False)
    w = edge_weight.clone().float() if given else torch.ones(src.numel())
    keep = src != dst
    src, dst, w = src[keep], dst[keep], w[keep]
    deg = torch.zeros(n).index_add_(0, src, w)
    dinv = deg.pow(-0.5)
    dinv[torch.isinf(dinv)] = 0.0
    return src, dst, -dinv[src] * w * dinv[dst]


def _gat(op, p, h, edge_index, n, attrs, edge_attr=None):
    """GATConv / GATv2Conv (eval, optional edge_dim): self-loops removed and one added per
    node (if add_self_loops), logits, softmax over each node's in-edges, weighted sum."""
    heads, c = attrs.get("heads", 1), attrs["out_channels"]
    slope = attrs.get("negative_slope", 0.2)
    src, dst = edge_index
    use_edge = attrs.get("edge_dim") is not None
    if use_edge:
        ea = edge_attr.to(torch.float32)
        ea = ea if ea.dim() == 2 else ea.reshape(-1, 1)
    if attrs.get("add_self_loops", True):
        keep = src != dst
        nodes = torch.arange(n)
        if use_edge:
            # fill_value='mean': a loop gets the mean attribute of the node's other in-edges.
            loop_attr = _segment(ea[keep], dst[keep], n, "mean")
            ea = torch.cat([ea[keep], loop_attr])
        src, dst = torch.cat([src[keep], nodes]), torch.cat([dst[keep], nodes])
    lrelu = lambda v: torch.where(v >= 0, v, v * slope)  # noqa: E731
    if op["op"] == "gatv2_conv":
        share = attrs.get("share_weights", False)
        xl = h @ p(op, "weight_l").T
        if p(op, "bias_l") is not None:
            xl = xl + p(op, "bias_l")
        if share:
            xr = xl
        else:
            xr = h @ p(op, "weight_r").T
            if p(op, "bias_r") is not None:
                xr = xr + p(op, "bias_r")
        xl, xr = xl.view(n, heads, c), xr.view(n, heads, c)
        att = p(op, "att").view(1, heads, c)
        z = xl[src] + xr[dst]
        if use_edge:
            # GATv2: lin_edge(e_ji) per channel, before the LeakyReLU.
            z = z + (ea @ p(op, "lin_edge_weight").T).view(-1, heads, c)
        e = (lrelu(z) * att).sum(-1)
        msg = xl
    else:
        msg = (h @ p(op, "weight").T).view(n, heads, c)
        a_s = (msg * p(op, "att_src").view(1, heads, c)).sum(-1)
        a_d = (msg * p(op, "att_dst").view(1, heads, c)).sum(-1)
        logits = a_s[src] + a_d[dst]
        if use_edge:
            le = (ea @ p(op, "lin_edge_weight").T).view(-1, heads, c)
            logits = logits + (le * p(op, "att_edge").view(1, heads, c)).sum(-1)
        e = lrelu(logits)
    m = _segment(e, dst, n, "max")
    w = torch.exp(e - m[dst])
    alpha = w / _segment(w, dst, n, "sum")[dst]
    out = _segment(msg[src] * alpha.unsqueeze(-1), dst, n, "sum")
    out = out.reshape(n, heads * c) if attrs.get("concat", True) else out.mean(dim=1)
    if p(op, "bias") is not None:
        out = out + p(op, "bias")
    return out


def _edge_conv(op, p, h, edge_index, batch, attrs):
    """EdgeConv / DynamicEdgeConv: message ``nn([x_i, x_j - x_i])`` over the edges (or the
    kNN graph of ``h``, see :mod:`tinygnn.knn`), aggregated by max/mean/sum (empty: 0)."""
    from .knn import knn_graph

    n = h.size(0)
    if op["op"] == "dynamic_edge_conv":
        src, dst = knn_graph(h, attrs["k"], batch)
    else:
        src, dst = edge_index
    m = torch.cat([h[dst], h[src] - h[dst]], dim=-1)
    for i, layer in enumerate(attrs["nn"]):
        kind, q = layer["op"], f"nn.{i}"
        if kind == "linear":
            m = m @ p(op, f"{q}.weight").T
            if p(op, f"{q}.bias") is not None:
                m = m + p(op, f"{q}.bias")
        elif kind == "batch_norm":
            m = (m - p(op, f"{q}.running_mean")) / torch.sqrt(p(op, f"{q}.running_var")
                                                               + layer.get("eps", 1e-5))
            m = m * p(op, f"{q}.weight") + p(op, f"{q}.bias")
        elif kind == "relu":
            m = m.clamp(min=0)
        elif kind == "leaky_relu":
            m = torch.where(m >= 0, m, m * layer.get("negative_slope", 0.01))
        elif kind not in ("dropout", "identity"):
            raise ValueError(f"unknown nn layer '{kind}'")
    return _segment(m, dst, n, {"sum": "sum", "mean": "mean", "max": "max"}[attrs["aggr"]])


def run_spec(spec: dict, tensors: Dict[str, torch.Tensor], graph: Dict[str, torch.Tensor],
             state=None):
    """Evaluate ``spec`` with weights ``tensors`` on ``graph`` (GRAPHS tensors); return
    the list of output tensors. A recurrent spec (``state``) reads ``state`` [N, H] (zeros
    when None; a list of them, in the spec's order, for several states) as its state
    inputs."""
    x = graph["x"].to(torch.float32)
    n = x.size(0)
    edge_index = graph.get("edge_index")
    edge_index = torch.zeros(2, 0, dtype=torch.long) if edge_index is None else edge_index.long()
    src, dst = edge_index
    edge_weight: Optional[torch.Tensor] = graph.get("edge_weight")
    batch = graph.get("batch")
    batch = torch.zeros(n, dtype=torch.long) if batch is None else batch.long()
    num_graphs = int(batch.max()) + 1 if n else 0

    def p(op, role):
        key = op.get("params", {}).get(role)
        return None if key is None else tensors[key].to(torch.float32)

    values = {spec["input"]["name"]: x}
    given = [] if state is None else [state] if isinstance(state, torch.Tensor) else list(state)
    for k, st in enumerate(spec_states(spec)):
        values[st["name"]] = (given[k].to(torch.float32) if k < len(given)
                              else torch.zeros(n, st["channels"]))
    for op in spec["ops"]:
        kind, attrs = op["op"], op.get("attrs", {})
        ins = [values[i] for i in op["inputs"]]
        h = ins[0]
        if kind == "linear":
            out = h @ p(op, "weight").T
            if p(op, "bias") is not None:
                out = out + p(op, "bias")
        elif kind == "batch_norm":
            out = (h - p(op, "running_mean")) / torch.sqrt(p(op, "running_var") + attrs["eps"])
            out = out * p(op, "weight") + p(op, "bias")
        elif kind == "relu":
            out = h.clamp(min=0)
        elif kind == "leaky_relu":
            out = torch.where(h >= 0, h, h * attrs["negative_slope"])
        elif kind == "elu":
            out = torch.where(h > 0, h, attrs.get("alpha", 1.0) * torch.expm1(h))
        elif kind == "layer_norm":
            out = torch.nn.functional.layer_norm(h, (h.size(-1),), p(op, "weight"),
                                                 p(op, "bias"), attrs.get("eps", 1e-5))
        elif kind == "sigmoid":
            out = torch.sigmoid(h)
        elif kind == "tanh":
            out = torch.tanh(h)
        elif kind in ("dropout", "identity"):
            out = h
        elif kind == "softmax":
            out = torch.softmax(h, dim=-1)
        elif kind == "log_softmax":
            out = torch.log_softmax(h, dim=-1)
        elif kind == "transformer_conv":
            out = _transformer(h, src, dst, n, attrs, lambda r: p(op, r),
                               graph.get("edge_attr"))
        elif kind == "random_walk_pe":
            from torch_geometric.data import Data as _Data
            from torch_geometric.transforms import AddRandomWalkPE
            g = _Data(edge_index=edge_index, num_nodes=n)
            out = AddRandomWalkPE(int(attrs["walk_length"]))(g).random_walk_pe.to(x.dtype)
        elif kind == "attention_pool":
            gate, val = ins
            gate = gate * float(attrs.get("t", 1.0))
            m = torch.full((num_graphs, gate.size(1)), float("-inf"), dtype=gate.dtype)
            m = m.scatter_reduce(0, batch.view(-1, 1).expand(-1, gate.size(1)), gate, "amax")
            w = torch.exp(gate - m[batch])
            s = torch.zeros(num_graphs, gate.size(1), dtype=gate.dtype).index_add_(0, batch, w)
            a = w / s[batch]
            out = torch.zeros(num_graphs, val.size(1), dtype=val.dtype).index_add_(0, batch, a * val)
        elif kind == "global_attention":
            out = _global_attention(h, batch, attrs, lambda r: p(op, r))
        elif kind == "hypergraph_conv":
            out = _hypergraph(h @ p(op, "weight").T, graph, n,
                              bool(attrs.get("hyperedge_weight", False)))
            if p(op, "bias") is not None:
                out = out + p(op, "bias")
        elif kind == "gcn_conv":
            hw = h @ p(op, "weight").T
            s, d, coef = _gcn_edges(edge_index, edge_weight, n, attrs)
            out = _segment(hw[s] * coef.view(-1, 1), d, n, "sum")
            if p(op, "bias") is not None:
                out = out + p(op, "bias")
        elif kind == "sage_conv":
            agg = _segment(h[src], dst, n, attrs["aggr"])
            out = agg @ p(op, "weight_l").T
            if p(op, "bias_l") is not None:
                out = out + p(op, "bias_l")
            if attrs["root_weight"]:
                out = out + h @ p(op, "weight_r").T
            if attrs["normalize"]:
                out = out / out.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        elif kind in ("gat_conv", "gatv2_conv"):
            out = _gat(op, p, h, edge_index, n, attrs, graph.get("edge_attr"))
        elif kind in ("appnp", "sg_conv"):
            # h0 = x (APPNP) or x W^T (SGConv: lin(A^K x) = A^K (x W^T) + b); K times
            # h = (1 - alpha) A h + alpha h0, A as GCNConv's (improved is never set).
            norm = {"improved": False, "add_self_loops": attrs.get("add_self_loops", True),
                    "normalize": attrs.get("normalize", True),
                    "edge_weight": attrs.get("edge_weight", False)}
            h0 = h @ p(op, "weight").T if kind == "sg_conv" else h
            alpha = attrs.get("alpha", 0.0) if kind == "appnp" else 0.0
            s, d, coef = _gcn_edges(edge_index, edge_weight, n, norm)
            out = h0
            for _ in range(attrs["K"]):
                out = (1.0 - alpha) * _segment(out[s] * coef.view(-1, 1), d, n, "sum") + alpha * h0
            if p(op, "bias") is not None:
                out = out + p(op, "bias")
        elif kind == "tag_conv":
            # sum_k lins[k](A^k x) + bias, A from gcn_norm WITHOUT self-loops (PyG TAGConv).
            norm = {"improved": False, "add_self_loops": False,
                    "normalize": attrs.get("normalize", True),
                    "edge_weight": attrs.get("edge_weight", False)}
            s, d, coef = _gcn_edges(edge_index, edge_weight, n, norm)
            xk, out = h, h @ p(op, "weight_0").T
            for k in range(1, attrs["K"] + 1):
                xk = _segment(xk[s] * coef.view(-1, 1), d, n, "sum")
                out = out + xk @ p(op, f"weight_{k}").T
            if p(op, "bias") is not None:
                out = out + p(op, "bias")
        elif kind == "cheb_conv":
            # ChebConv(K, normalization='sym'), lambda_max 2: T_0 = x, T_1 = L x,
            # T_k = 2 L T_{k-1} - T_{k-2}, out = sum_k lins[k](T_k) + bias, with
            # L = -D^-1/2 A D^-1/2 (self-loops removed, degree over the source index).
            s, d, coef = _cheb_edges(edge_index, edge_weight, n, attrs)
            t0, out = h, h @ p(op, "weight_0").T
            t1 = h
            for k in range(1, attrs["K"]):
                t2 = _segment(t1[s] * coef.view(-1, 1), d, n, "sum")
                if k >= 2:
                    t2 = 2.0 * t2 - t0
                    t0 = t1
                out = out + t2 @ p(op, f"weight_{k}").T
                t1 = t2
            if p(op, "bias") is not None:
                out = out + p(op, "bias")
        elif kind == "gcn2_conv":
            # z = (1 - alpha) A x + alpha x0; out = (1 - beta) z + beta z W1 (shared), or the
            # two halves with W1 and W2 (PyG's torch.addmm forms).
            norm = {"improved": False, "add_self_loops": attrs.get("add_self_loops", True),
                    "normalize": attrs.get("normalize", True),
                    "edge_weight": attrs.get("edge_weight", False)}
            s, d, coef = _gcn_edges(edge_index, edge_weight, n, norm)
            a, b = attrs["alpha"], attrs["beta"]
            xs = (1.0 - a) * _segment(h[s] * coef.view(-1, 1), d, n, "sum")
            x0 = a * ins[1]
            w1, w2 = p(op, "weight1"), p(op, "weight2")
            if w2 is None:
                z = xs + x0
                out = (1.0 - b) * z + b * (z @ w1)
            else:
                out = (1.0 - b) * xs + b * (xs @ w1) + (1.0 - b) * x0 + b * (x0 @ w2)
        elif kind == "gine_conv":
            ea = graph["edge_attr"].to(torch.float32)
            ea = ea if ea.dim() == 2 else ea.reshape(-1, 1)
            if p(op, "lin_weight") is not None:
                ea = ea @ p(op, "lin_weight").T
                if p(op, "lin_bias") is not None:
                    ea = ea + p(op, "lin_bias")
            msg = (h[src] + ea).clamp(min=0)
            out = (1.0 + attrs.get("eps", 0.0)) * h + _segment(msg, dst, n, "sum")
        elif kind in ("edge_conv", "dynamic_edge_conv"):
            out = _edge_conv(op, p, h, edge_index, batch, attrs)
        elif kind == "gin_aggregate":
            out = (1.0 + attrs["eps"]) * h + _segment(h[src], dst, n, "sum")
        elif kind in ("global_add_pool", "global_mean_pool", "global_max_pool"):
            reduce = {"global_add_pool": "sum", "global_mean_pool": "mean",
                      "global_max_pool": "max"}[kind]
            out = _segment(h, batch, num_graphs, reduce)
        elif kind == "add":
            out = ins[0] + ins[1]
        elif kind == "mul":
            out = ins[0] * ins[1]
        elif kind == "rsub":
            out = attrs.get("value", 1.0) - h
        elif kind == "concat":
            out = torch.cat(ins, dim=-1)
        elif kind in ("inner_product", "pair_hadamard", "pair_concat"):
            ps, pt = graph["edge_label_index"].long()
            if kind == "inner_product":
                out = (h[ps] * h[pt]).sum(dim=-1, keepdim=True)
            elif kind == "pair_hadamard":
                out = h[ps] * h[pt]
            else:
                out = torch.cat([h[ps], h[pt]], dim=-1)
        else:
            raise ValueError(f"unknown op '{kind}'")
        values[op["name"]] = out
    return [values[o] for o in spec["outputs"]]


def spec_states(spec: dict):
    """A spec's carried states, in the order of the state buffer: its ``state`` object, or
    each of its ``state`` list (an LSTM's h and c); [] for a model without state."""
    st = spec.get("state")
    return [] if st is None else [st] if isinstance(st, dict) else list(st)


def run_sequence(spec: dict, tensors: Dict[str, torch.Tensor], steps):
    """Run a recurrent spec over ``steps`` (GRAPHS tensor dicts, one per step) from the zero
    state, each step reading the states the previous one computed; return every step's
    outputs (lists of tensors)."""
    ks = [spec["outputs"].index(st["next"]) for st in spec_states(spec)]
    h, out = None, []
    for g in steps:
        outs = run_spec(spec, tensors, g, state=h)
        h = [outs[k] for k in ks]
        out.append(outs)
    return out


def sequence_steps(graph: Dict[str, torch.Tensor]):
    """A GRAPHS file read as a sequence: its graphs (``batch``, in order) are the steps, each
    with node indices from 0 (the CLI's ``--sequence``)."""
    batch = graph.get("batch")
    if batch is None:
        return [graph]
    batch = batch.long()
    src, dst = graph["edge_index"].long()
    steps = []
    for t in range(int(batch.max()) + 1):
        nodes = (batch == t).nonzero().view(-1)
        first = int(nodes[0])
        keep = batch[src] == t
        g = {"x": graph["x"][nodes],
             "edge_index": torch.stack([src[keep], dst[keep]]) - first}
        if graph.get("edge_weight") is not None:
            g["edge_weight"] = graph["edge_weight"][keep]
        steps.append(g)
    return steps


def run_files(model_path, graphs_path) -> torch.Tensor:
    """Run a MODEL file on a GRAPHS file; return the (first) output. A recurrent model runs
    the file as a sequence from the zero state: the first output of every step, stacked."""
    spec, tensors = read_model(model_path)
    graph = load_file(str(graphs_path))
    if spec.get("state") is not None:
        outs = run_sequence(spec, tensors, sequence_steps(graph))
        return torch.cat([o[0] for o in outs])
    return run_spec(spec, tensors, graph)[0]


def _hypergraph(h, graph, n, weighted):
    """HypergraphConv without attention: D^-1 H B^-1 H^T h, with B_e the incidences of
    hyperedge e, D_v the sum of the weights of v's incidences (1 each unless weighted and
    the graph has hyperedge_weight), and 1/0 = 0. The hyperedges are 0..max id."""
    hi = graph.get("hyperedge_index")
    if hi is None:
        raise ValueError("the graph has no hyperedge_index (HypergraphConv reads it)")
    nodes, edges = hi.long()
    m = int(edges.max()) + 1 if edges.numel() else 0
    w = graph.get("hyperedge_weight") if weighted else None
    w = torch.ones(m) if w is None else w.to(torch.float32)
    d = torch.zeros(n).index_add_(0, nodes, w[edges])
    b = torch.zeros(m).index_add_(0, edges, torch.ones(edges.numel()))
    dinv = torch.where(d == 0, torch.zeros_like(d), 1.0 / d)
    binv = torch.where(b == 0, torch.zeros_like(b), 1.0 / b)
    per_edge = _segment(h[nodes], edges, m, "sum") * binv.view(-1, 1)
    return _segment(per_edge[edges], nodes, n, "sum") * dinv.view(-1, 1)


def _transformer(x, src, dst, n, attrs, p, edge_attr=None):
    """TransformerConv (eval): per head, softmax over the in-edges of (q_i . k_j) / sqrt(C)
    weighs v_j (with edge_dim, lin_edge(e_ji) added to k_j and v_j); heads concatenated or
    averaged; + lin_skip(x), or with beta the gate sigmoid(lin_beta([out, r, out - r]))
    between r = lin_skip(x) and out."""
    heads, c = int(attrs.get("heads", 1)), int(attrs["out_channels"])

    def lin(role):
        out = x @ p(f"{role}_weight").T
        b = p(f"{role}_bias")
        return out if b is None else out + b

    q, k, v = (lin(r).view(-1, heads, c) for r in ("query", "key", "value"))
    k, v = k[src], v[src]  # per edge
    if attrs.get("edge_dim") is not None:
        ea = edge_attr.to(x.dtype)
        ea = ea if ea.dim() == 2 else ea.reshape(-1, 1)
        e = (ea @ p("edge_weight").T).view(-1, heads, c)
        k, v = k + e, v + e
    logit = (q[dst] * k).sum(-1) / c ** 0.5  # [E, H]
    out = torch.zeros(n, heads, c, dtype=x.dtype)
    if src.numel():
        m = torch.full((n, heads), float("-inf"), dtype=x.dtype)
        m = m.scatter_reduce(0, dst.view(-1, 1).expand(-1, heads), logit, "amax")
        w = torch.exp(logit - m[dst])
        s = torch.zeros(n, heads, dtype=x.dtype).index_add_(0, dst, w)
        alpha = w / s[dst]
        out = out.index_add_(0, dst, alpha.unsqueeze(-1) * v)
    out = out.reshape(n, heads * c) if attrs.get("concat", True) else out.mean(1)
    if attrs.get("root_weight", True):
        r = lin("skip")
        if attrs.get("beta", False):
            b = torch.sigmoid(torch.cat([out, r, out - r], dim=-1) @ p("beta_weight").T)
            out = b * r + (1 - b) * out
        else:
            out = out + r
    return out


def _global_attention(x, batch, attrs, p):
    """torch.nn.MultiheadAttention over each graph's nodes (in_proj, heads concatenated;
    its out_proj is the linear op after it): a TransformerConv on the complete graph of
    each graph of the batch (loops included), without root weight."""
    c, heads = int(attrs["channels"]), int(attrs.get("heads", 1))
    w, b = p("in_proj_weight"), p("in_proj_bias")
    parts = {}
    for k, role in enumerate(("query", "key", "value")):
        parts[f"{role}_weight"] = w[k * c:(k + 1) * c]
        parts[f"{role}_bias"] = None if b is None else b[k * c:(k + 1) * c]
    same = batch.view(-1, 1) == batch.view(1, -1)
    dst, src = same.nonzero(as_tuple=True)
    a = {"heads": heads, "out_channels": c // heads, "concat": True, "root_weight": False}
    return _transformer(x, src, dst, x.size(0), a, parts.get)

