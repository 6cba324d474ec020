#!/usr/bin/env python3
"""Generate the conformance goldens: for every case, a small randomly initialised PyG model,
input graphs and PyG's float output.

    python tests/conformance/gen_golden.py            # (re)writes tests/conformance/<case>/
    python tests/conformance/gen_golden.py --check    # regenerate into a temp dir and compare

Each case folder holds ``model.safetensors`` (written by ``tinygnn.export``),
``graphs.safetensors`` (``tinygnn.save_graphs``) and ``expected.safetensors`` with tensor
``out`` = the model's float output on those graphs (PyG, eval mode, f32). The output is also
checked against ``tinygnn.reference`` (a plain-torch reading of the spec) before writing.

Everything is seeded (per case, from the case name) and deterministic for a given
torch/PyG version. Every input graph contains self-loops, duplicate edges and isolated nodes.
"""
from __future__ import annotations

import argparse
import inspect
import filecmp
import sys
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch
from safetensors.torch import load_file
import torch.nn.functional as F
from torch_geometric import nn as gnn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import (APPNP, ChebConv, GATConv, GATv2Conv, GCN2Conv, GCNConv, GINConv, GINEConv,
                                SAGEConv, SGConv, TAGConv, models)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tools" / "python"))
import tinygnn  # noqa: E402
from tinygnn.reference import run_sequence, run_spec, sequence_steps  # noqa: E402
from tinygnn.knn import install as install_knn  # noqa: E402

# PyG's DynamicEdgeConv calls torch.ops.pyg.knn from pyg-lib, which is not on PyPI: without
# it, register tinygnn's brute-force kNN under that name (docs/point-clouds.md) so that PyG's
# own DynamicEdgeConv code runs. With pyg-lib installed its knn is used unchanged.
install_knn()

warnings.filterwarnings("ignore", category=FutureWarning)

F_IN = 6  # input channels of every case


# ------------------------------------------------------------------------ inputs

def make_graph(num_nodes: int, num_edges: int, gen: torch.Generator, weighted: bool) -> Data:
    """A random directed graph whose last node is isolated, with two self-loops (nodes 0, 1)
    and two duplicated edges. Edge weights, if any, are in [0.2, 2.0)."""
    n_conn = num_nodes - 1
    src = torch.randint(0, n_conn, (num_edges,), generator=gen)
    dst = torch.randint(0, n_conn, (num_edges,), generator=gen)
    keep = src != dst  # self-loops are added explicitly below
    src, dst = src[keep], dst[keep]
    src = torch.cat([src, torch.tensor([0, 1]), src[:2]])
    dst = torch.cat([dst, torch.tensor([0, 1]), dst[:2]])
    data = Data(x=torch.randn(num_nodes, F_IN, generator=gen), edge_index=torch.stack([src, dst]))
    if weighted:
        data.edge_weight = 0.2 + 1.8 * torch.rand(src.numel(), generator=gen)
    return data


def one_graph(gen, weighted=False) -> Data:
    return make_graph(24, 60, gen, weighted)


def multi_graph(gen, weighted=False) -> Data:
    """Four graphs of different sizes batched PyG-style (40 nodes in total)."""
    sizes = (12, 9, 11, 8)
    return Batch.from_data_list([make_graph(n, 3 * n, gen, weighted) for n in sizes])


def large_graphs(gen) -> Data:
    """Two graphs of 200 and 150 nodes batched (an MCU's largest graphs)."""
    return Batch.from_data_list([make_graph(n, 3 * n, gen, False) for n in (200, 150)])


def perturb(model: torch.nn.Module, gen: torch.Generator) -> torch.nn.Module:
    """Non-trivial biases and BatchNorm statistics/affine parameters (a fresh model has
    zero biases and identity BatchNorm, which would hide parameter mix-ups)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or name.rsplit(".", 1)[-1] in ("b_i", "b_f", "b_c", "b_o"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(0.5 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.3 + torch.rand(m.num_features, generator=gen))
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
    return model.eval()


# ------------------------------------------------------------------------ models

class GCN2(torch.nn.Module):
    """Two GCNConv layers, ReLU between, optionally fed the graph's edge weights."""

    def __init__(self, improved=False, hidden=12, out=5, add_self_loops=True):
        super().__init__()
        self.conv1 = GCNConv(F_IN, hidden, improved=improved, add_self_loops=add_self_loops)
        self.conv2 = GCNConv(hidden, out, improved=improved, add_self_loops=add_self_loops)

    def forward(self, x, edge_index, edge_weight=None):
        x = F.relu(self.conv1(x, edge_index, edge_weight))
        x = F.dropout(x, p=0.5, training=self.training)
        return self.conv2(x, edge_index, edge_weight)


class Sage2(torch.nn.Module):
    """Two SAGEConv layers with the given aggregation/normalisation/root weight."""

    def __init__(self, aggr="mean", normalize=False, root_weight=True):
        super().__init__()
        kw = dict(aggr=aggr, normalize=normalize, root_weight=root_weight)
        self.conv1 = SAGEConv(F_IN, 10, **kw)
        self.conv2 = SAGEConv(10, 4, **kw)

    def forward(self, x, edge_index):
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


class Gin2(torch.nn.Module):
    """Two GINConv layers with trained (non-zero) eps, MLPs with BatchNorm."""

    def __init__(self):
        super().__init__()

        def mlp(i, o):
            return torch.nn.Sequential(torch.nn.Linear(i, 12), torch.nn.BatchNorm1d(12),
                                       torch.nn.ReLU(), torch.nn.Linear(12, o))

        self.conv1 = GINConv(mlp(F_IN, 12), train_eps=True)
        self.conv2 = GINConv(mlp(12, 4), train_eps=True)
        with torch.no_grad():
            self.conv1.eps.fill_(0.37)
            self.conv2.eps.fill_(-0.21)

    def forward(self, x, edge_index):
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


class Gine2(torch.nn.Module):
    """Two GINEConv layers (edgefeat) with non-zero eps. ``lin1``: the first layer has an edge
    ``lin`` (edge_dim given); without it the edge features must have the node channels."""

    def __init__(self, edge_dim: int, lin1: bool):
        super().__init__()

        def mlp(i, o):
            return torch.nn.Sequential(torch.nn.Linear(i, 10), torch.nn.ReLU(),
                                       torch.nn.Linear(10, o))

        self.conv1 = GINEConv(mlp(F_IN, 10), train_eps=True,
                              edge_dim=edge_dim if lin1 else None)
        self.conv2 = GINEConv(mlp(10, 4), train_eps=True, edge_dim=edge_dim)
        with torch.no_grad():
            self.conv1.eps.fill_(0.3)
            self.conv2.eps.fill_(-0.15)

    def forward(self, x, edge_index, edge_attr):
        return self.conv2(self.conv1(x, edge_index, edge_attr).relu(), edge_index, edge_attr)


class GatElu(torch.nn.Module):
    """GATConv(heads=4) → ELU → GATConv(heads=1) → F.elu(alpha=0.5), as in the GAT paper (edgefeat)."""

    def __init__(self):
        super().__init__()
        self.conv1 = GATConv(F_IN, 3, heads=4)
        self.act = torch.nn.ELU()
        self.conv2 = GATConv(12, 4, heads=1)

    def forward(self, x, edge_index):
        return F.elu(self.conv2(self.act(self.conv1(x, edge_index)), edge_index), alpha=0.5)


class GatEdge(torch.nn.Module):
    """GATConv(heads=3, edge_dim=4) → ELU → GATConv(heads=1, edge_dim=4) (edgefeat)."""

    def __init__(self):
        super().__init__()
        self.conv1 = GATConv(F_IN, 4, heads=3, edge_dim=4)
        self.conv2 = GATConv(12, 3, heads=1, edge_dim=4)

    def forward(self, x, edge_index, edge_attr):
        x = F.elu(self.conv1(x, edge_index, edge_attr))
        return self.conv2(x, edge_index, edge_attr)


class Gatv2Edge(torch.nn.Module):
    """GATv2Conv(heads=2, edge_dim=3, concat) → ELU → GATv2Conv(heads=2, edge_dim=3,
    concat=False): lin_edge(e_ji) added per channel before the LeakyReLU (gat)."""

    def __init__(self):
        super().__init__()
        self.conv1 = GATv2Conv(F_IN, 4, heads=2, edge_dim=3)
        self.conv2 = GATv2Conv(8, 3, heads=2, edge_dim=3, concat=False, negative_slope=0.1)

    def forward(self, x, edge_index, edge_attr):
        x = F.elu(self.conv1(x, edge_index, edge_attr))
        return self.conv2(x, edge_index, edge_attr)


class Gatv2EdgeMean(torch.nn.Module):
    """One GATv2Conv(heads=3, edge_dim=2, concat=False, share_weights=True) (gat)."""

    def __init__(self):
        super().__init__()
        self.conv = GATv2Conv(F_IN, 4, heads=3, edge_dim=2, concat=False, share_weights=True)

    def forward(self, x, edge_index, edge_attr):
        return self.conv(x, edge_index, edge_attr)


class GinePooled(torch.nn.Module):
    """GINEConv(edge_dim) → global_add_pool → Linear on a batch (edgefeat)."""

    def __init__(self, edge_dim: int):
        super().__init__()
        self.conv = GINEConv(torch.nn.Sequential(torch.nn.Linear(F_IN, 8), torch.nn.ReLU()),
                             eps=0.5, edge_dim=edge_dim)
        self.lin = torch.nn.Linear(8, 3)

    def forward(self, x, edge_index, edge_attr, batch):
        return self.lin(gnn.global_add_pool(self.conv(x, edge_index, edge_attr), batch))


def with_edge_attr(make: Callable, dim: int) -> Callable:
    """``make``'s graph(s) with random edge features ``edge_attr`` of ``dim`` channels."""

    def build(gen):
        data = make(gen)
        data.edge_attr = torch.randn(data.edge_index.size(1), dim, generator=gen)
        return data
    return build


class Pooled(torch.nn.Module):
    """GCN → ReLU → GCN → global pooling → Linear (graph classification)."""

    def __init__(self, pool: Callable):
        super().__init__()
        self.conv1 = GCNConv(F_IN, 12)
        self.conv2 = GCNConv(12, 8)
        self.lin = torch.nn.Linear(8, 3)
        self.pool = pool

    def forward(self, x, edge_index, batch):
        x = F.relu(self.conv1(x, edge_index))
        x = self.conv2(x, edge_index)  # no ReLU: max pooling must handle negative values
        return self.lin(self.pool(x, batch))


class Residual(torch.nn.Module):
    """Residual connections around a GCN and a SAGE layer."""

    def __init__(self):
        super().__init__()
        self.lin_in = torch.nn.Linear(F_IN, 10)
        self.conv1 = GCNConv(10, 10)
        self.conv2 = SAGEConv(10, 10)
        self.lin_out = torch.nn.Linear(10, 4)

    def forward(self, x, edge_index):
        h = self.lin_in(x).relu()
        h = F.relu(self.conv1(h, edge_index)) + h
        h = h + self.conv2(h, edge_index)
        return self.lin_out(h)


class Leaky(torch.nn.Module):
    """LeakyReLU as a module and as a function, with different slopes."""

    def __init__(self):
        super().__init__()
        self.conv1 = GCNConv(F_IN, 10)
        self.act = torch.nn.LeakyReLU(0.1)
        self.conv2 = SAGEConv(10, 4)

    def forward(self, x, edge_index):
        h = self.act(self.conv1(x, edge_index))
        return F.leaky_relu(self.conv2(h, edge_index), negative_slope=0.3)


class GcnLogSoftmax(torch.nn.Module):
    """PyG's examples/gcn.py: GCN, ReLU, dropout, GCN, F.log_softmax(dim=1)."""

    def __init__(self):
        super().__init__()
        self.conv1 = GCNConv(F_IN, 12)
        self.conv2 = GCNConv(12, 5)

    def forward(self, x, edge_index):
        x = F.relu(self.conv1(x, edge_index))
        x = F.dropout(x, p=0.5, training=self.training)
        return F.log_softmax(self.conv2(x, edge_index), dim=1)


class PooledSoftmax(torch.nn.Module):
    """Graph classifier ending with Tensor.softmax(dim=-1) on the graph rows."""

    def __init__(self):
        super().__init__()
        self.conv = SAGEConv(F_IN, 10)
        self.lin = torch.nn.Linear(10, 4)

    def forward(self, x, edge_index, batch):
        h = gnn.global_mean_pool(self.conv(x, edge_index).relu(), batch)
        return self.lin(h).softmax(dim=-1)


class NormedBlocks(torch.nn.Module):
    """Transformer-style blocks: GCN, LayerNorm, ReLU, residual Linear with PyG's
    LayerNorm(mode='node'), Tanh and sigmoid heads, mean pooling."""

    def __init__(self):
        super().__init__()
        self.conv = GCNConv(F_IN, 10)
        self.ln1 = torch.nn.LayerNorm(10)
        self.lin = torch.nn.Linear(10, 10)
        self.ln2 = gnn.LayerNorm(10, mode="node")
        self.head = torch.nn.Linear(10, 3)

    def forward(self, x, edge_index, batch):
        h = F.relu(self.ln1(self.conv(x, edge_index)))
        h = self.ln2(h + torch.tanh(self.lin(h)))
        return torch.sigmoid(self.head(gnn.global_mean_pool(h, batch)))


class Transformer(torch.nn.Module):
    """TransformerConv, LayerNorm, ReLU, TransformerConv (heads averaged)."""

    def __init__(self, heads, concat, root_weight, bias=True):
        super().__init__()
        self.conv1 = gnn.TransformerConv(F_IN, 4, heads=heads, concat=concat,
                                         root_weight=root_weight, bias=bias)
        width = 4 * heads if concat else 4
        self.norm = torch.nn.LayerNorm(width)
        self.conv2 = gnn.TransformerConv(width, 3, heads=2, concat=False)

    def forward(self, x, edge_index):
        return self.conv2(self.norm(self.conv1(x, edge_index)).relu(), edge_index)


class TransformerEdge(torch.nn.Module):
    """TransformerConv with edge features and the beta gate, ReLU fused after it, then
    TransformerConv with edge features (heads averaged, beta per `beta2`)."""

    def __init__(self, beta2):
        super().__init__()
        self.conv1 = gnn.TransformerConv(F_IN, 4, heads=2, edge_dim=3, beta=True)
        self.conv2 = gnn.TransformerConv(8, 3, heads=2, concat=False, edge_dim=3, beta=beta2)

    def forward(self, x, edge_index, edge_attr):
        h = F.relu(self.conv1(x, edge_index, edge_attr))
        return self.conv2(h, edge_index, edge_attr)


class GpsTransformer(torch.nn.Module):
    """GPS with TransformerConv (edge features, beta gate) as the local conv: Linear,
    2 GPSConv (4 heads, batch_norm), mean pool, Linear; for graphs of a few hundred nodes."""

    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Linear(F_IN, 16)

        def conv():
            return gnn.TransformerConv(16, 4, heads=4, edge_dim=3, beta=True)
        self.gps1 = gnn.GPSConv(16, conv(), heads=4)
        self.gps2 = gnn.GPSConv(16, conv(), heads=4)
        self.head = torch.nn.Linear(16, 3)

    def forward(self, x, edge_index, batch, edge_attr):
        h = self.gps1(self.enc(x), edge_index, batch, edge_attr=edge_attr)
        h = self.gps2(h, edge_index, batch, edge_attr=edge_attr)
        return self.head(gnn.global_mean_pool(h, batch))


class Gps(torch.nn.Module):
    """GPS: Linear encoder, two GPSConv (local GCN or GINE + global multi-head attention
    over each graph's nodes, norms, MLP), mean pooling, Linear."""

    def __init__(self, local, norm, heads):
        super().__init__()
        self.enc = torch.nn.Linear(F_IN, 8)
        kw = {"norm_kwargs": {"mode": "node"}} if norm == "layer_norm" else {}

        def conv():
            return GINEConv(gnn.MLP([8, 8, 8]), edge_dim=3) if local == "gine" else GCNConv(8, 8)

        self.gps1 = gnn.GPSConv(8, conv(), heads=heads, norm=norm, **kw)
        self.gps2 = gnn.GPSConv(8, conv(), heads=heads, norm=norm, **kw)
        self.head = torch.nn.Linear(8, 3)
        self.local = local

    def forward(self, x, edge_index, batch, edge_attr=None):
        h = self.enc(x)
        if self.local == "gine":
            h = self.gps1(h, edge_index, batch, edge_attr=edge_attr)
            h = self.gps2(h, edge_index, batch, edge_attr=edge_attr)
        else:
            h = self.gps2(self.gps1(h, edge_index, batch), edge_index, batch)
        return self.head(gnn.global_mean_pool(h, batch))


class AttnPool(torch.nn.Module):
    """GCN, ReLU, AttentionalAggregation(gate_nn, nn), Linear (graph classification)."""

    def __init__(self, gate_ch, with_nn):
        super().__init__()
        self.conv = GCNConv(F_IN, 8)
        gate = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(),
                                   torch.nn.Linear(6, gate_ch))
        self.pool = gnn.aggr.AttentionalAggregation(gate, torch.nn.Linear(8, 8) if with_nn else None)
        self.lin = torch.nn.Linear(8, 3)

    def forward(self, x, edge_index, batch):
        return self.lin(self.pool(F.relu(self.conv(x, edge_index)), batch))


class SoftmaxPool(torch.nn.Module):
    """GCN, ReLU, SoftmaxAggregation (t fixed, or learned with channels=1), Linear."""

    def __init__(self, t, learn):
        super().__init__()
        self.conv = GCNConv(F_IN, 8)
        self.pool = gnn.aggr.SoftmaxAggregation(t=t, learn=learn)
        if learn:
            with torch.no_grad():
                self.pool.t.fill_(t)
        self.lin = torch.nn.Linear(8, 3)

    def forward(self, x, edge_index, batch):
        return self.lin(self.pool(F.relu(self.conv(x, edge_index)), batch))


class GpsRwse(torch.nn.Module):
    """PyG's GPS example in small: x and a linear map of the normalised RWSE concatenated,
    a GPSConv (GINE-free: GCN local), mean pooling, Linear."""

    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Linear(F_IN, 6)
        self.pe_norm = torch.nn.BatchNorm1d(8)
        self.pe_lin = torch.nn.Linear(8, 2)
        self.gps = gnn.GPSConv(8, GCNConv(8, 8), heads=2)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x, edge_index, batch, random_walk_pe):
        h = torch.cat([self.enc(x), self.pe_lin(self.pe_norm(random_walk_pe))], dim=-1)
        return self.head(gnn.global_mean_pool(self.gps(h, edge_index, batch), batch))


class Hyper(torch.nn.Module):
    """HypergraphConv → BatchNorm → ReLU → HypergraphConv (→ mean pool → Linear when
    pooled); hyperedge weights passed when ``weighted``."""

    def __init__(self, weighted: bool, pooled: bool):
        super().__init__()
        self.weighted, self.pooled = weighted, pooled
        self.conv1 = gnn.HypergraphConv(F_IN, 12)
        self.bn = torch.nn.BatchNorm1d(12)
        self.conv2 = gnn.HypergraphConv(12, 8 if pooled else 4)
        self.head = torch.nn.Linear(8, 3) if pooled else None

    def forward(self, x, hyperedge_index, hyperedge_weight=None, batch=None):
        w = hyperedge_weight if self.weighted else None
        h = F.relu(self.bn(self.conv1(x, hyperedge_index, w)))
        h = self.conv2(h, hyperedge_index, w)
        if self.pooled:
            h = self.head(gnn.global_mean_pool(h, batch))
        return h


def make_hypergraph(num_nodes: int, gen: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor,
                                                                   torch.Tensor]:
    """A random hypergraph on ``num_nodes`` nodes: hyperedges of 1 to 5 distinct nodes
    (none holds the last node, which is isolated), one incidence listed twice, one
    hyperedge id without incidences (empty). Returns x, hyperedge_index and weights in
    [0.2, 2.0) for every id (the empty one too)."""
    conn = num_nodes - 1
    m = max(3, num_nodes // 2)
    empty = m // 2
    nodes, edges = [], []
    for e in range(m + 1):
        if e == empty:
            continue
        k = int(torch.randint(1, 6, (1,), generator=gen))
        members = torch.randperm(conn, generator=gen)[:k]
        nodes.append(members)
        edges.append(torch.full((members.numel(),), e))
    nodes, edges = torch.cat(nodes), torch.cat(edges)
    nodes, edges = torch.cat([nodes, nodes[:1]]), torch.cat([edges, edges[:1]])
    x = torch.randn(num_nodes, F_IN, generator=gen)
    w = 0.2 + 1.8 * torch.rand(m + 1, generator=gen)
    return x, torch.stack([nodes, edges]), w


def one_hypergraph(gen) -> Data:
    x, hi, w = make_hypergraph(24, gen)
    return Data(x=x, edge_index=torch.zeros(2, 0, dtype=torch.long), hyperedge_index=hi,
                hyperedge_weight=w)


def multi_hypergraph(gen) -> Data:
    """Four hypergraphs batched by hand (PyG's batching would offset the hyperedge row of
    hyperedge_index by the node count): node ids by nodes, hyperedge ids by hyperedges."""
    xs, his, ws, batch = [], [], [], []
    n0 = m0 = 0
    for g, n in enumerate((12, 9, 11, 8)):
        x, hi, w = make_hypergraph(n, gen)
        xs.append(x)
        his.append(hi + torch.tensor([[n0], [m0]]))
        ws.append(w)
        batch.append(torch.full((n,), g))
        n0 += n
        m0 += w.numel()
    return Data(x=torch.cat(xs), edge_index=torch.zeros(2, 0, dtype=torch.long),
                hyperedge_index=torch.cat(his, dim=1), hyperedge_weight=torch.cat(ws),
                batch=torch.cat(batch))


def with_rwse(make: Callable, k: int) -> Callable:
    """``make``'s graph(s) with PyG's ``AddRandomWalkPE(k)`` attribute ``random_walk_pe``."""

    def build(gen):
        from torch_geometric.transforms import AddRandomWalkPE
        return AddRandomWalkPE(k)(make(gen))
    return build


class GinGraph(torch.nn.Module):
    """Graph classifier: GIN layers, concatenated (JK cat), mean+max pooled, classifier."""

    def __init__(self):
        super().__init__()
        self.conv1 = GINConv(gnn.MLP([F_IN, 10, 10], norm="batch_norm"), train_eps=True)
        self.conv2 = GINConv(gnn.MLP([10, 10, 10], norm="batch_norm"), train_eps=True)
        self.lin = torch.nn.Linear(40, 3)
        with torch.no_grad():
            self.conv1.eps.fill_(0.15)
            self.conv2.eps.fill_(0.4)

    def forward(self, x, edge_index, batch):
        h1 = self.conv1(x, edge_index).relu()
        h2 = self.conv2(h1, edge_index).relu()
        h = torch.cat([h1, h2], dim=-1)
        pooled = torch.cat([gnn.global_mean_pool(h, batch), gnn.global_max_pool(h, batch)], dim=1)
        return self.lin(pooled)


class GcnBn(torch.nn.Module):
    """GCN → BatchNorm → LeakyReLU → GCN, improved, fed edge weights (BN folds into a conv)."""

    def __init__(self):
        super().__init__()
        self.conv1 = GCNConv(F_IN, 12, improved=True)
        self.bn = torch.nn.BatchNorm1d(12)
        self.conv2 = GCNConv(12, 4, improved=True)

    def forward(self, x, edge_index, edge_weight):
        h = F.leaky_relu(self.bn(self.conv1(x, edge_index, edge_weight)), 0.2)
        return self.conv2(h, edge_index, edge_weight)


class SageChain(torch.nn.Module):
    """Four SAGE variants in one model: mean + BatchNorm, max, sum normalized, mean without root."""

    def __init__(self):
        super().__init__()
        self.c1 = SAGEConv(F_IN, 10, aggr="mean")
        self.bn = torch.nn.BatchNorm1d(10)
        self.c2 = SAGEConv(10, 10, aggr="max")
        self.c3 = SAGEConv(10, 10, aggr="sum", normalize=True)
        self.c4 = SAGEConv(10, 4, aggr="mean", root_weight=False)

    def forward(self, x, edge_index):
        h = F.relu(self.bn(self.c1(x, edge_index)))
        h = F.relu(self.c2(h, edge_index))
        h = F.relu(self.c3(h, edge_index))
        return self.c4(h, edge_index)


class GinPools(torch.nn.Module):
    """GIN with a residual, JK cat, and all three pools concatenated into the classifier."""

    def __init__(self):
        super().__init__()
        mlp = lambda i, o: torch.nn.Sequential(torch.nn.Linear(i, o), torch.nn.BatchNorm1d(o),
                                               torch.nn.ReLU(), torch.nn.Linear(o, o))
        self.g1 = GINConv(mlp(F_IN, 10), train_eps=True)
        self.g2 = GINConv(mlp(10, 10), eps=0.3)
        self.lin = torch.nn.Linear(40, 3)
        with torch.no_grad():
            self.g1.eps.fill_(0.15)

    def forward(self, x, edge_index, batch):
        h1 = F.relu(self.g1(x, edge_index))
        h2 = F.relu(self.g2(h1, edge_index) + h1)
        jk = torch.cat([h1, h2], dim=-1)
        pooled = torch.cat([gnn.global_mean_pool(jk, batch), gnn.global_max_pool(h2, batch),
                            gnn.global_add_pool(h1, batch)], dim=-1)
        return self.lin(pooled)


# ------------------------------------------------------------------------ cases

# improved=True in PyG 2.8.1: gcn_norm calls add_remaining_self_loops(edge_index, edge_weight,
# fill_value=2.0) but, when edge_weight is None, the fill value is never used: the loops are
# appended without attributes and all weights (loops included) are then set to 1. So
# `improved` only changes the result when the forward passes an edge weight (then added
# self-loops get weight 2; an existing self-loop keeps its own weight). Both cases are here.
# (name, description, model factory, input factory)
CASES: List[Tuple[str, str, Callable[[], torch.nn.Module], Callable[[torch.Generator], Data]]] = [
    ("gcn_plain", "2×GCNConv, ReLU; no edge weights",
     lambda: GCN2(), one_graph),
    ("gcn_edge_weight", "2×GCNConv called with the graph's edge_weight",
     lambda: GCN2(), lambda g: one_graph(g, weighted=True)),
    ("gcn_improved", "2×GCNConv improved=True WITHOUT edge weights: same as improved=False "
     "in PyG 2.8.1 (self-loops weight 1)", lambda: GCN2(improved=True), one_graph),
    ("gcn_improved_edge_weight", "2×GCNConv improved=True with edge weights: added "
     "self-loops weight 2, existing self-loops keep their weight",
     lambda: GCN2(improved=True), lambda g: one_graph(g, weighted=True)),
    ("sage_mean", "2×SAGEConv aggr=mean", lambda: Sage2("mean"), one_graph),
    ("sage_mean_normalize", "2×SAGEConv aggr=mean, normalize=True",
     lambda: Sage2("mean", True), one_graph),
    ("sage_max", "2×SAGEConv aggr=max", lambda: Sage2("max"), one_graph),
    ("sage_max_normalize", "2×SAGEConv aggr=max, normalize=True",
     lambda: Sage2("max", True), one_graph),
    ("sage_sum", "2×SAGEConv aggr=sum", lambda: Sage2("sum"), one_graph),
    ("sage_sum_normalize", "2×SAGEConv aggr=sum, normalize=True",
     lambda: Sage2("sum", True), one_graph),
    ("sage_no_root", "2×SAGEConv root_weight=False", lambda: Sage2(root_weight=False), one_graph),
    ("gin_bn", "2×GINConv, eps 0.37/−0.21, nn = Linear-BatchNorm-ReLU-Linear",
     lambda: Gin2(), one_graph),
    ("pool_add", "GCN, GCN, global_add_pool, Linear on a 4-graph batch",
     lambda: Pooled(gnn.global_add_pool), multi_graph),
    ("pool_mean", "GCN, GCN, global_mean_pool, Linear on a 4-graph batch",
     lambda: Pooled(gnn.global_mean_pool), multi_graph),
    ("pool_max", "GCN, GCN, global_max_pool (negative inputs), Linear on a 4-graph batch",
     lambda: Pooled(gnn.global_max_pool), multi_graph),
    ("residual", "Linear, GCN + skip, SAGE + skip (add), Linear", lambda: Residual(), one_graph),
    ("jk_cat", "models.GCN(num_layers=3, jk='cat', norm='batch_norm') + final lin",
     lambda: models.GCN(F_IN, 8, num_layers=3, out_channels=4, jk="cat", norm="batch_norm"),
     one_graph),
    ("leaky_relu", "GCN, LeakyReLU(0.1) module, SAGE, F.leaky_relu(0.3)",
     lambda: Leaky(), one_graph),
    ("multi_graph", "node-level 2×GCNConv with edge weights on a 4-graph batch",
     lambda: GCN2(), lambda g: multi_graph(g, weighted=True)),
    ("sage_model", "models.GraphSAGE(num_layers=3, norm='batch_norm', leaky_relu)",
     lambda: models.GraphSAGE(F_IN, 10, num_layers=3, out_channels=4, norm="batch_norm",
                              act="leaky_relu"), one_graph),
    ("gin_graph", "GIN (nn.MLP with BatchNorm) ×2, concat, mean‖max pooling, Linear",
     lambda: GinGraph(), multi_graph),
    ("gcn_no_self_loops", "2×GCNConv add_self_loops=False", lambda: GCN2(add_self_loops=False),
     one_graph),
    ("gcn_bn_weighted_improved", "GCN improved + BatchNorm + LeakyReLU(0.2), GCN; edge weights",
     lambda: GcnBn(), lambda g: one_graph(g, weighted=True)),
    ("sage_chain", "SAGE mean+BatchNorm, max, sum normalize, mean without root, chained",
     lambda: SageChain(), one_graph),
    ("gin_pools", "GIN ×2 with a residual add, JK cat, mean‖max‖add pools, Linear",
     lambda: GinPools(), multi_graph),
    ("gat_heads1", "GATConv(heads=1) + ReLU, GATConv(heads=1)",
     lambda: gnn.Sequential("x, edge_index", [
         (GATConv(F_IN, 8), "x, edge_index -> x"), torch.nn.ReLU(),
         (GATConv(8, 3), "x, edge_index -> x")]), one_graph),
    ("gat_heads4_concat", "GATConv(heads=4, concat) + ReLU, GATConv(heads=1), slope 0.1",
     lambda: gnn.Sequential("x, edge_index", [
         (GATConv(F_IN, 3, heads=4, negative_slope=0.1), "x, edge_index -> x"), torch.nn.ReLU(),
         (GATConv(12, 4), "x, edge_index -> x")]), one_graph),
    ("gat_heads8_mean", "models.GAT(heads=8) with a mean-of-heads output layer (concat=False)",
     lambda: GatMean(), multi_graph),
    ("gat_no_self_loops", "GATConv(heads=2, add_self_loops=False) (isolated nodes get the bias)",
     lambda: gnn.Sequential("x, edge_index", [
         (GATConv(F_IN, 4, heads=2, add_self_loops=False), "x, edge_index -> x")]), one_graph),
    ("gatv2", "models.GAT(v2=True, heads=4): GATv2Conv concat + ReLU, GATv2Conv",
     lambda: models.GAT(F_IN, 8, num_layers=2, out_channels=3, v2=True, heads=4), one_graph),
    ("gatv2_shared_mean", "GATv2Conv(heads=3, concat=False, share_weights=True, slope 0.3)",
     lambda: gnn.Sequential("x, edge_index", [
         (GATv2Conv(F_IN, 5, heads=3, concat=False, share_weights=True, negative_slope=0.3),
          "x, edge_index -> x")]), one_graph),
    # ---- edgefeat
    ("gine_edge_lin", "2×GINEConv(edge_dim=3), eps 0.3/−0.15, nn = Linear-ReLU-Linear",
     lambda: Gine2(3, lin1=True), with_edge_attr(one_graph, 3)),
    ("gine_no_lin", "GINEConv without edge lin (edge dim 6 = node channels), then GINEConv(edge_dim=6)",
     lambda: Gine2(F_IN, lin1=False), with_edge_attr(one_graph, F_IN)),
    ("gine_graph", "GINEConv(edge_dim=2, eps 0.5), global_add_pool, Linear on a 4-graph batch",
     lambda: GinePooled(2), with_edge_attr(multi_graph, 2)),
    ("gat_edge_dim", "GATConv(heads=3, edge_dim=4) → ELU → GATConv(edge_dim=4); loops get the mean edge attribute",
     GatEdge, with_edge_attr(one_graph, 4)),
    ("gat_elu", "GATConv(heads=4) → nn.ELU → GATConv → F.elu(alpha=0.5) (ELU as an int8 table)",
     GatElu, one_graph),
    # ---- gat
    ("gatv2_edge_dim", "GATv2Conv(heads=2, edge_dim=3, concat) → ELU → GATv2Conv(heads=2, "
     "edge_dim=3, concat=False, slope 0.1); loops get the mean edge attribute",
     Gatv2Edge, with_edge_attr(one_graph, 3)),
    ("gatv2_edge_mean", "GATv2Conv(heads=3, edge_dim=2, concat=False, share_weights=True)",
     Gatv2EdgeMean, with_edge_attr(one_graph, 2)),
]


def two_graphs(gen) -> Data:
    """Two graphs (14 and 10 nodes) batched PyG-style."""
    return Batch.from_data_list([make_graph(n, 3 * n, gen, False) for n in (14, 10)])


def _seq(*mods):
    return torch.nn.Sequential(*mods)


class EdgeConvNet(torch.nn.Module):
    """EdgeConv with the given nn and aggregation, then ReLU and a Linear."""

    def __init__(self, nn, aggr, out):
        super().__init__()
        self.conv = gnn.EdgeConv(nn, aggr=aggr)
        self.lin = torch.nn.Linear(out, 3)

    def forward(self, x, edge_index):
        return self.lin(F.relu(self.conv(x, edge_index)))


class DynEdgeNet(torch.nn.Module):
    """DGCNN-style: DynamicEdgeConv (k), DynamicEdgeConv (k, mean), global max pool, Linear."""

    def __init__(self, k):
        super().__init__()
        self.c1 = gnn.DynamicEdgeConv(_seq(torch.nn.Linear(2 * F_IN, 8), torch.nn.BatchNorm1d(8),
                                           torch.nn.ReLU(), torch.nn.Linear(8, 8),
                                           torch.nn.ReLU()), k=k)
        self.c2 = gnn.DynamicEdgeConv(_seq(torch.nn.Linear(16, 8), torch.nn.ReLU()), k=k,
                                      aggr="mean")
        self.lin = torch.nn.Linear(8, 3)

    def forward(self, x, batch):
        h = self.c2(self.c1(x, batch), batch)
        return self.lin(gnn.global_max_pool(h, batch))


CASES += [
    ("edgeconv_max", "EdgeConv(nn = Linear-BatchNorm-ReLU-Linear, max), ReLU, Linear; 2 graphs",
     lambda: EdgeConvNet(_seq(torch.nn.Linear(2 * F_IN, 8), torch.nn.BatchNorm1d(8),
                              torch.nn.ReLU(), torch.nn.Linear(8, 5)), "max", 5), two_graphs),
    ("edgeconv_mean", "EdgeConv(nn = Linear-ReLU-Linear-ReLU, mean), ReLU, Linear; 2 graphs",
     lambda: EdgeConvNet(_seq(torch.nn.Linear(2 * F_IN, 8), torch.nn.ReLU(),
                              torch.nn.Linear(8, 6), torch.nn.ReLU()), "mean", 6), two_graphs),
    ("edgeconv_sum", "EdgeConv(nn = Linear-LeakyReLU(0.1), sum), ReLU, Linear; 2 graphs",
     lambda: EdgeConvNet(_seq(torch.nn.Linear(2 * F_IN, 6), torch.nn.LeakyReLU(0.1)), "sum", 6),
     two_graphs),
    ("dynedge_k4", "DynamicEdgeConv k=4 (2-layer nn, max), DynamicEdgeConv k=4 (mean), "
     "global max pool, Linear; 2 graphs", lambda: DynEdgeNet(4), two_graphs),
    ("dynedge_k8", "DynamicEdgeConv k=8 (2-layer nn, max), DynamicEdgeConv k=8 (mean), "
     "global max pool, Linear; 2 graphs", lambda: DynEdgeNet(8), two_graphs),
]


class GatMean(torch.nn.Module):
    """8 heads concatenated, then 8 heads averaged (the GAT paper's PubMed output layer)."""

    def __init__(self):
        super().__init__()
        self.conv1 = GATConv(F_IN, 2, heads=8)
        self.conv2 = GATConv(16, 3, heads=8, concat=False)

    def forward(self, x, edge_index):
        return self.conv2(F.relu(self.conv1(x, edge_index)), edge_index)


# ---- decoupled propagation (helper `propagate`): APPNP, SGConv

class MlpAppnp(torch.nn.Module):
    """Linear → ReLU → Linear → APPNP(K, alpha), the APPNP paper's predict-then-propagate."""

    def __init__(self, K, alpha):
        super().__init__()
        self.lin1 = torch.nn.Linear(F_IN, 10)
        self.lin2 = torch.nn.Linear(10, 4)
        self.prop = APPNP(K, alpha)

    def forward(self, x, edge_index):
        return self.prop(self.lin2(F.relu(self.lin1(x))), edge_index)


class SgcWeighted(torch.nn.Module):
    """SGConv(K=2) with the graph's edge weights, ReLU, APPNP(K=3, 0.2) with them too."""

    def __init__(self):
        super().__init__()
        self.conv = SGConv(F_IN, 5, K=2)
        self.prop = APPNP(3, 0.2)

    def forward(self, x, edge_index, edge_weight=None):
        return self.prop(F.relu(self.conv(x, edge_index, edge_weight)), edge_index, edge_weight)


class Gcn2(torch.nn.Module):
    """GCNII: Linear → ReLU gives x⁰; two GCN2Conv layers (α 0.1, θ 0.5, layers 1 and 2) with
    ReLU; Linear. ``shared`` chooses shared_weights."""

    def __init__(self, shared, edge_weight=False):
        super().__init__()
        self.lin0 = torch.nn.Linear(F_IN, 8)
        self.conv1 = GCN2Conv(8, alpha=0.1, theta=0.5, layer=1, shared_weights=shared)
        self.conv2 = GCN2Conv(8, alpha=0.1, theta=0.5, layer=2, shared_weights=shared)
        self.lin1 = torch.nn.Linear(8, 3)

    def forward(self, x, edge_index, edge_weight=None):
        x0 = F.relu(self.lin0(x))
        x = F.relu(self.conv1(x0, x0, edge_index, edge_weight))
        x = F.relu(self.conv2(x, x0, edge_index, edge_weight))
        return self.lin1(x)


PROPAGATE_CASES = [
    (f"appnp_K{k}_alpha{a}", f"Linear, ReLU, Linear, APPNP(K={k}, alpha={a})",
     (lambda k=k, a=a: MlpAppnp(k, a)), one_graph)
    for k in (2, 10) for a in (0.1, 0.5)
] + [
    ("sgconv_K1", "SGConv(K=1), ReLU, SGConv(K=1)",
     lambda: gnn.Sequential("x, edge_index", [
         (SGConv(F_IN, 8, K=1), "x, edge_index -> x"), torch.nn.ReLU(),
         (SGConv(8, 4, K=1), "x, edge_index -> x")]), one_graph),
    ("sgconv_K3", "SGConv(K=3) on a 4-graph batch", lambda: gnn.Sequential("x, edge_index", [
        (SGConv(F_IN, 4, K=3), "x, edge_index -> x")]), multi_graph),
    ("appnp_sgconv_edge_weight", "SGConv(K=2), ReLU, APPNP(K=3, alpha=0.2); edge weights",
     lambda: SgcWeighted(), lambda g: one_graph(g, weighted=True)),
    ("appnp_no_self_loops", "Linear, APPNP(K=4, alpha=0.3, add_self_loops=False)",
     lambda: gnn.Sequential("x, edge_index", [
         (torch.nn.Linear(F_IN, 4), "x -> x"),
         (APPNP(4, 0.3, add_self_loops=False), "x, edge_index -> x")]), one_graph),
]
PROPAGATE_CASES += [
    ("gcn2_shared", "GCNII: Linear+ReLU (x0), 2×GCN2Conv(α 0.1, θ 0.5, shared weights)+ReLU, Linear",
     lambda: Gcn2(True), one_graph),
    ("gcn2_separate", "GCNII as gcn2_shared with shared_weights=False; edge weights",
     lambda: Gcn2(False), lambda g: one_graph(g, weighted=True)),
]
PROPAGATE_CASES += [
    ("tag_K3", "TAGConv(K=3), ReLU, TAGConv(K=3); edge weights",
     lambda: gnn.Sequential("x, edge_index, edge_weight", [
         (TAGConv(F_IN, 8, K=3), "x, edge_index, edge_weight -> x"), torch.nn.ReLU(),
         (TAGConv(8, 4, K=3), "x, edge_index, edge_weight -> x")]),
     lambda g: one_graph(g, weighted=True)),
]
CASES += PROPAGATE_CASES


class ChebBn(torch.nn.Module):
    """ChebConv(K=2) + BatchNorm + ReLU, ChebConv(K=2), without edge weights."""

    def __init__(self):
        super().__init__()
        self.c1 = ChebConv(F_IN, 8, K=2)
        self.bn = torch.nn.BatchNorm1d(8)
        self.c2 = ChebConv(8, 4, K=2)

    def forward(self, x, edge_index):
        return self.c2(F.relu(self.bn(self.c1(x, edge_index))), edge_index)


CHEB_CASES = [
    ("cheb_K3_edge_weight", "ChebConv(K=3, sym), ReLU, ChebConv(K=3); edge weights (degree over "
     "the source index, self-loops removed, lambda_max 2)",
     lambda: gnn.Sequential("x, edge_index, edge_weight", [
         (ChebConv(F_IN, 8, K=3), "x, edge_index, edge_weight -> x"), torch.nn.ReLU(),
         (ChebConv(8, 4, K=3), "x, edge_index, edge_weight -> x")]),
     lambda g: one_graph(g, weighted=True)),
    ("cheb_K2_bn", "ChebConv(K=2) + BatchNorm + ReLU, ChebConv(K=2); no edge weights",
     ChebBn, one_graph),
]
CASES += CHEB_CASES


class GConvGRU(torch.nn.Module):
    """torch_geometric_temporal.nn.recurrent.GConvGRU (gconv_gru.py) in plain PyG (that
    package is not in the venv): each gate ChebConv(X) + ChebConv(H), the candidate's second
    one over H ⊙ R; sigmoid, tanh, H' = Z ⊙ H + (1 − Z) ⊙ H̃. Same attribute names and
    forward signature."""

    def __init__(self, in_channels, out_channels, K):
        super().__init__()
        self.out_channels = out_channels
        self.conv_x_z = ChebConv(in_channels, out_channels, K=K)
        self.conv_h_z = ChebConv(out_channels, out_channels, K=K)
        self.conv_x_r = ChebConv(in_channels, out_channels, K=K)
        self.conv_h_r = ChebConv(out_channels, out_channels, K=K)
        self.conv_x_h = ChebConv(in_channels, out_channels, K=K)
        self.conv_h_h = ChebConv(out_channels, out_channels, K=K)

    def forward(self, X, edge_index, edge_weight=None, H=None, lambda_max=None):
        if H is None:
            H = torch.zeros(X.shape[0], self.out_channels).to(X.device)
        Z = self.conv_x_z(X, edge_index, edge_weight, lambda_max=lambda_max)
        Z = torch.sigmoid(Z + self.conv_h_z(H, edge_index, edge_weight, lambda_max=lambda_max))
        R = self.conv_x_r(X, edge_index, edge_weight, lambda_max=lambda_max)
        R = torch.sigmoid(R + self.conv_h_r(H, edge_index, edge_weight, lambda_max=lambda_max))
        H_tilde = self.conv_x_h(X, edge_index, edge_weight, lambda_max=lambda_max)
        H_tilde = torch.tanh(H_tilde + self.conv_h_h(H * R, edge_index, edge_weight,
                                                     lambda_max=lambda_max))
        return Z * H + (1 - Z) * H_tilde


class GConvGRUHead(torch.nn.Module):
    """A GConvGRU cell (K=3, 8 hidden) and a per-node Linear head: returns (y, h_next)."""

    def __init__(self):
        super().__init__()
        self.cell = GConvGRU(F_IN, 8, K=3)
        self.out = torch.nn.Linear(8, 4)

    def forward(self, x, edge_index, edge_weight, h):
        h = self.cell(x, edge_index, edge_weight, h)
        return self.out(torch.relu(h)), h


class GConvLSTM(torch.nn.Module):
    """torch_geometric_temporal.nn.recurrent.GConvLSTM (gconv_lstm.py) in plain PyG: every
    gate ChebConv(X) + ChebConv(H) + a learned bias b [1, H], the input, forget and output
    gates also a peephole w_c ⊙ C (w_c [1, H], glorot; the output gate's on the new C);
    C' = F ⊙ C + I ⊙ tanh(…), H' = O ⊙ tanh(C'). Same attribute names and forward
    signature (returns (H, C))."""

    def __init__(self, in_channels, out_channels, K):
        super().__init__()
        self.out_channels = out_channels
        bound = (6.0 / (1 + out_channels)) ** 0.5
        for g in ("i", "f", "c", "o"):
            setattr(self, f"conv_x_{g}", ChebConv(in_channels, out_channels, K=K))
            setattr(self, f"conv_h_{g}", ChebConv(out_channels, out_channels, K=K))
            setattr(self, f"b_{g}", torch.nn.Parameter(torch.zeros(1, out_channels)))
        for g in ("i", "f", "o"):
            setattr(self, f"w_c_{g}", torch.nn.Parameter(
                torch.empty(1, out_channels).uniform_(-bound, bound)))

    def _conv(self, g, X, H, edge_index, edge_weight, lambda_max):
        G = getattr(self, f"conv_x_{g}")(X, edge_index, edge_weight, lambda_max=lambda_max)
        return G + getattr(self, f"conv_h_{g}")(H, edge_index, edge_weight, lambda_max=lambda_max)

    def forward(self, X, edge_index, edge_weight=None, H=None, C=None, lambda_max=None):
        if H is None:
            H = torch.zeros(X.shape[0], self.out_channels).to(X.device)
        if C is None:
            C = torch.zeros(X.shape[0], self.out_channels).to(X.device)
        I = torch.sigmoid(self._conv("i", X, H, edge_index, edge_weight, lambda_max)
                          + (self.w_c_i * C) + self.b_i)
        F_ = torch.sigmoid(self._conv("f", X, H, edge_index, edge_weight, lambda_max)
                           + (self.w_c_f * C) + self.b_f)
        T = torch.tanh(self._conv("c", X, H, edge_index, edge_weight, lambda_max) + self.b_c)
        C = F_ * C + I * T
        O = torch.sigmoid(self._conv("o", X, H, edge_index, edge_weight, lambda_max)
                          + (self.w_c_o * C) + self.b_o)
        H = O * torch.tanh(C)
        return H, C


class GConvLSTMHead(torch.nn.Module):
    """A GConvLSTM cell (K=2, 8 hidden) and a per-node Linear head: returns (y, h, c)."""

    def __init__(self):
        super().__init__()
        self.cell = GConvLSTM(F_IN, 8, K=2)
        self.out = torch.nn.Linear(8, 4)

    def forward(self, x, edge_index, edge_weight, h, c):
        h, c = self.cell(x, edge_index, edge_weight, h, c)
        return self.out(torch.relu(h)), h, c


class LSTMCellHead(torch.nn.Module):
    """torch.nn.LSTMCell over GCNConv features, and a Linear head: returns (y, h, c)."""

    def __init__(self):
        super().__init__()
        self.conv = GCNConv(F_IN, 6)
        self.cell = torch.nn.LSTMCell(6, 8)
        self.out = torch.nn.Linear(8, 4)

    def forward(self, x, edge_index, edge_weight, h, c):
        h, c = self.cell(torch.relu(self.conv(x, edge_index, edge_weight)), (h, c))
        return self.out(h), h, c


def drifting_sequence(steps: int) -> Callable[[torch.Generator], List[Data]]:
    """One weighted graph (24 nodes) over ``steps`` steps, its features drifting: x_t =
    x_0 + 0.25·t·d + noise."""

    def make(gen: torch.Generator) -> List[Data]:
        g = make_graph(24, 60, gen, True)
        drift = torch.randn(g.x.shape, generator=gen)
        return [Data(x=g.x + 0.25 * t * drift + 0.3 * torch.randn(g.x.shape, generator=gen),
                     edge_index=g.edge_index, edge_weight=g.edge_weight)
                for t in range(steps)]
    return make


# Recurrent cases: exported with the example state data.h (zeros; an LSTM's data.h and data.c,
# the model's forward(x, edge_index, edge_weight, *states) returning (y, *next states));
# graphs.safetensors is the
# sequence (one graph per step, batched); expected 'out' is the first output of every step from
# the zero state, stacked. (tgcn_seq24 was generated outside this script.)
RECURRENT_CASES = [
    ("gconvgru_seq", "GConvGRU cell (ChebConv K=3 in the GRU gates, torch-geometric-temporal's "
     "GConvGRU in plain PyG) + Linear head, returns (y, h_next); 12 steps of one weighted graph "
     "from the zero state; out = y of every step, in step order",
     GConvGRUHead, drifting_sequence(12)),
    ("gconvlstm_seq", "GConvLSTM cell (ChebConv K=2 in the LSTM gates with peepholes, "
     "torch-geometric-temporal's GConvLSTM in plain PyG) + Linear head, returns (y, h, c): two "
     "states; 12 steps of one weighted graph from the zero state; out = y of every step",
     GConvLSTMHead, drifting_sequence(12)),
    ("lstm_cell_seq", "torch.nn.LSTMCell over ReLU(GCNConv) features + Linear head, returns "
     "(y, h, c): two states; 12 steps of one weighted graph from the zero state; out = y of "
     "every step", LSTMCellHead, drifting_sequence(12)),
]


class LinkCase:
    """A link-prediction case (helper `link`): a node encoder and a pair decoder, exported
    with ``tinygnn.export_link``."""

    def __init__(self, decoder: str, mlp_in: int = 0):
        self.decoder = decoder
        self.encoder = gnn.Sequential("x, edge_index", [
            (GCNConv(F_IN, 10), "x, edge_index -> x"), torch.nn.ReLU(),
            (GCNConv(10, 8), "x, edge_index -> x")])
        self.mlp = None if decoder == "inner_product" else torch.nn.Sequential(
            torch.nn.Linear(mlp_in, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1))


def link_graph(gen) -> Data:
    """``one_graph`` plus 24 node pairs to score (a self-pair, a duplicate, pairs on the
    isolated node) with alternating labels."""
    data = one_graph(gen)
    n = data.num_nodes
    s = torch.randint(0, n, (20,), generator=gen)
    t = torch.randint(0, n, (20,), generator=gen)
    s = torch.cat([s, torch.tensor([2, s[0], n - 1, 0])])
    t = torch.cat([t, torch.tensor([2, t[0], 0, n - 1])])
    data.edge_label_index = torch.stack([s, t])
    data.edge_label = (torch.arange(s.numel()) % 2).float()
    return data


LINK_CASES = [
    ("link_inner", "GCN encoder + inner-product decoder (GAE), 24 pairs",
     lambda: LinkCase("inner_product"), link_graph),
    ("link_mlp_hadamard", "GCN encoder + z_s ⊙ z_t → Linear+ReLU → Linear, 24 pairs",
     lambda: LinkCase("hadamard", 8), link_graph),
    ("link_mlp_concat", "GCN encoder + [z_s, z_t] → Linear+ReLU → Linear, 24 pairs",
     lambda: LinkCase("concat", 16), link_graph),
]
CASES = CASES + LINK_CASES
CASES += [
    ("gcn_log_softmax", "GCN, ReLU, dropout, GCN, F.log_softmax(dim=1) (PyG's examples/gcn.py)",
     lambda: GcnLogSoftmax(), one_graph),
    ("pool_softmax", "SAGE, ReLU, global_mean_pool, Linear, Tensor.softmax(dim=-1), 4 graphs",
     lambda: PooledSoftmax(), multi_graph),
    ("layer_norm", "GCN, LayerNorm, ReLU, residual tanh(Linear), PyG LayerNorm(mode='node'), "
     "mean pool, Linear, sigmoid, 4 graphs", lambda: NormedBlocks(), multi_graph),
    ("transformer_h1", "TransformerConv(heads=1), LayerNorm, ReLU, TransformerConv(heads=2, mean)",
     lambda: Transformer(1, True, True), one_graph),
    ("transformer_h4_mean", "TransformerConv(heads=4, concat=False, bias=False), LayerNorm, ReLU, "
     "TransformerConv(heads=2, mean), 4 graphs", lambda: Transformer(4, False, True, False),
     multi_graph),
    ("transformer_h2_no_root", "TransformerConv(heads=2, root_weight=False), LayerNorm, ReLU, "
     "TransformerConv(heads=2, mean), 4 graphs", lambda: Transformer(2, True, False), multi_graph),
    ("gps_gcn", "GPS: Linear, 2 GPSConv (GCN local, 2 heads, batch_norm), mean pool, Linear, "
     "4 graphs", lambda: Gps("gcn", "batch_norm", 2), multi_graph),
    ("gps_gine_layer_norm", "GPS: Linear, 2 GPSConv (GINE local with edge_attr, 4 heads, "
     "LayerNorm(mode='node')), mean pool, Linear, 4 graphs", lambda: Gps("gine", "layer_norm", 4),
     with_edge_attr(multi_graph, 3)),
    ("attention_pool", "GCN, ReLU, AttentionalAggregation(gate_nn → 1 channel, nn = Linear), "
     "Linear, 4 graphs", lambda: AttnPool(1, True), multi_graph),
    ("attention_pool_per_channel", "GCN, ReLU, AttentionalAggregation(gate_nn → 8 channels), "
     "Linear, 4 graphs", lambda: AttnPool(8, False), multi_graph),
    ("transformer_edge_beta", "TransformerConv(heads=2, edge_dim=3, beta=True), ReLU, "
     "TransformerConv(heads=2, mean, edge_dim=3, beta=True)", lambda: TransformerEdge(True),
     with_edge_attr(one_graph, 3)),
    ("transformer_edge_mean", "TransformerConv(heads=2, edge_dim=3, beta=True), ReLU, "
     "TransformerConv(heads=2, mean, edge_dim=3), 4 graphs", lambda: TransformerEdge(False),
     with_edge_attr(multi_graph, 3)),
    ("gps_transformer_large", "GPS: Linear, 2 GPSConv (TransformerConv local with edge_dim=3 "
     "and beta, 4 heads), mean pool, Linear; graphs of 200 and 150 nodes",
     lambda: GpsTransformer(), with_edge_attr(large_graphs, 3)),
    ("softmax_aggregation", "GCN, ReLU, SoftmaxAggregation(t=2), Linear, 4 graphs",
     lambda: SoftmaxPool(2.0, False), multi_graph),
    ("softmax_aggregation_learn", "GCN, ReLU, SoftmaxAggregation(learn=True, t = 0.4), "
     "Linear, 4 graphs", lambda: SoftmaxPool(0.4, True), multi_graph),
    ("gps_rwse", "GPS with RWSE (AddRandomWalkPE(8), computed on the device): BatchNorm + "
     "Linear on the PE, cat with Linear(x), GPSConv (GCN, 2 heads), mean pool, Linear, 4 graphs",
     lambda: GpsRwse(), with_rwse(multi_graph, 8)),
    ("hypergraph", "HypergraphConv, BatchNorm, ReLU, HypergraphConv; hyperedges of 1-5 nodes, "
     "an empty hyperedge id, a duplicated incidence, a node in no hyperedge",
     lambda: Hyper(False, False), one_hypergraph),
    ("hypergraph_weighted_pool", "HypergraphConv with hyperedge_weight, BatchNorm, ReLU, "
     "HypergraphConv with hyperedge_weight, mean pool, Linear, 4 hypergraphs",
     lambda: Hyper(True, True), multi_hypergraph),
]


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


def generate(out_dir: Path, only: Optional[List[str]] = None
             ) -> List[Tuple[str, str, Dict[str, int]]]:
    """Write every case (or the cases named in ``only``) into ``out_dir/<case>/``; return
    (name, description, stats)."""
    rows = []
    for name, description, make_model, make_data in CASES:
        if only is not None and name not in only:
            continue
        torch.manual_seed(seed_of(name))
        gen = torch.Generator().manual_seed(seed_of(name))
        model = make_model()
        link = isinstance(model, LinkCase)
        if link:
            perturb(model.encoder, gen)
            if model.mlp is not None:
                perturb(model.mlp, gen)
        else:
            model = perturb(model, gen)
        data = make_data(gen)
        case_dir = out_dir / name
        case_dir.mkdir(parents=True, exist_ok=True)
        if link:
            result = tinygnn.export_link(model.encoder, case_dir / "model.safetensors",
                                         example=data, decoder=model.decoder, mlp=model.mlp)
            state = {k: v.float() for k, v in model.encoder.state_dict().items()
                     if v.is_floating_point()}
            if model.mlp is not None:
                state.update({f"decoder.{k}": v.float() for k, v in model.mlp.state_dict().items()
                              if v.is_floating_point()})
        else:
            result = tinygnn.export(model, case_dir / "model.safetensors", example=data)
            state = {k: v.float() for k, v in model.state_dict().items() if v.is_floating_point()}
        tensors = tinygnn.save_graphs(case_dir / "graphs.safetensors", data)
        ref = run_spec(result.spec, state, tensors)[0]
        torch.testing.assert_close(ref, result.output, rtol=1e-4, atol=1e-5)
        tinygnn.save_tensors(case_dir / "expected.safetensors", {"out": result.output},
                             metadata={"case": name, "description": description})
        stats = {"nodes": data.num_nodes, "edges": data.edge_index.size(1),
                 "graphs": int(tensors["batch"].max()) + 1 if "batch" in tensors else 1,
                 "ops": len(result.spec["ops"]), "out": list(result.output.shape)}
        rows.append((name, description, stats))
    for name, description, make_model, make_steps in RECURRENT_CASES:
        if only is not None and name not in only:
            continue
        torch.manual_seed(seed_of(name))
        gen = torch.Generator().manual_seed(seed_of(name))
        model = perturb(make_model(), gen)
        steps = make_steps(gen)
        hidden = getattr(model.cell, "out_channels", None) or model.cell.hidden_size
        names = [p for p in inspect.signature(model.forward).parameters][3:]
        example = steps[0].clone()
        for n in names:
            setattr(example, n, torch.zeros(example.num_nodes, hidden))
        case_dir = out_dir / name
        case_dir.mkdir(parents=True, exist_ok=True)
        result = tinygnn.export(model, case_dir / "model.safetensors", example=example)
        state = {k: v.float() for k, v in model.state_dict().items() if v.is_floating_point()}
        state.update(result.extra)  # tensors the export derives (an LSTMCell's gate rows)
        tensors = tinygnn.save_graphs(case_dir / "graphs.safetensors", steps)
        ys, states = [], [torch.zeros(example.num_nodes, hidden) for _ in names]
        with torch.no_grad():
            for d in steps:
                y, *states = model(d.x, d.edge_index, d.edge_weight, *states)
                ys.append(y)
        ref = run_sequence(result.spec, state, sequence_steps(tensors))
        for r, y in zip(ref, ys):
            torch.testing.assert_close(r[0], y, rtol=1e-4, atol=1e-5)
        out = torch.cat(ys).to(torch.float32)
        tinygnn.save_tensors(case_dir / "expected.safetensors", {"out": out},
                             metadata={"case": name, "description": description})
        stats = {"nodes": int(tensors["x"].size(0)), "edges": int(tensors["edge_index"].size(1)),
                 "graphs": len(steps), "ops": len(result.spec["ops"]), "out": list(out.shape)}
        rows.append((name, description, stats))
    return rows


def write_readme(path: Path, rows) -> None:
    lines = [
        "# Conformance goldens",
        "",
        "Generated by `gen_golden.py` (seeded, deterministic; rerun it with the project venv,",
        "`--check` verifies the committed files are up to date). Each folder holds",
        "`model.safetensors` (spec + f32 weights, written by `tinygnn.export`),",
        "`graphs.safetensors` (input graphs, `tinygnn.save_graphs`) and `expected.safetensors`",
        "(tensor `out`: PyG's float output, eval mode, f32). The runtime should reproduce `out`",
        "in float to ~1e-5, and approximately after int8 quantization.",
        "",
        "Every input graph has 6 input channels, two self-loops (nodes 0 and 1), two duplicated",
        "edges and an isolated node (the last node of each graph). Weights are random with",
        "non-zero biases and non-trivial BatchNorm statistics.",
        "",
        "Note on `improved=True` (PyG 2.8.1 `gcn_norm`): without an edge weight it has no",
        "effect (self-loops get weight 1); with an edge weight, added self-loops get weight 2",
        "and existing self-loops keep their own weight.",
        "",
        "Note on `dynedge_*`: PyG's `DynamicEdgeConv` calls `torch.ops.pyg.knn` from pyg-lib,",
        "which is not on PyPI; without pyg-lib, `tinygnn.knn.install()` registers a brute-force",
        "kNN under that name (squared distance, the point itself included, ties to the smaller",
        "index, per graph), and PyG's own `DynamicEdgeConv` code runs on it.",
        "",
        "Note on `hypergraph*`: the inputs are hypergraphs (`hyperedge_index`, `hyperedge_weight`,",
        "no ordinary edges); the 4-graph batch is batched by hand (node ids offset by nodes,",
        "hyperedge ids by hyperedges), as PyG's own batching would offset both rows by nodes.",
        "",
        "| case | model | nodes | edges | graphs | ops | out |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, description, s in rows:
        lines.append(f"| `{name}` | {description} | {s['nodes']} | {s['edges']} | {s['graphs']} "
                     f"| {s['ops']} | {s['out']} |")
    path.write_text("\n".join(lines) + "\n")


def same_outputs(a: Path, b: Path) -> bool:
    """Whether two files of PyG float outputs agree: the same tensors (names, shapes, dtypes),
    integer tensors equal, float tensors within float32 rounding of each other. PyTorch's CPU
    kernels sum in an order that depends on the machine's vector width, so the last bits of a
    regenerated output may differ from the committed file's on another CPU; the model and graphs
    files, which the int8 goldens are made from, are compared byte for byte."""
    x, y = load_file(str(a)), load_file(str(b))
    if x.keys() != y.keys():
        return False
    for k in x:
        if x[k].dtype != y[k].dtype or x[k].shape != y[k].shape:
            return False
        if x[k].is_floating_point():
            if not torch.allclose(x[k], y[k], rtol=1e-5, atol=1e-5):
                return False
        elif not torch.equal(x[k], y[k]):
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temporary folder and compare with the "
                             "committed files")
    parser.add_argument("--only", nargs="+", metavar="CASE",
                        help="write only these cases (new goldens: the other cases' files "
                             "and README.md are left as they are; add the README rows by hand)")
    args = parser.parse_args()
    if args.only:
        unknown = sorted(set(args.only) - {name for name, *_ in CASES + RECURRENT_CASES})
        if unknown:
            print("unknown cases: " + ", ".join(unknown))
            return 1
        for name, description, s in generate(HERE, args.only):
            print(f"| `{name}` | {description} | {s['nodes']} | {s['edges']} | {s['graphs']} "
                  f"| {s['ops']} | {s['out']} |")
        return 0
    if not args.check:
        rows = generate(HERE)
        write_readme(HERE / "README.md", rows)
        print(f"wrote {len(rows)} cases to {HERE}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        bad = [f"{name}/{f}" for name, *_ in CASES + RECURRENT_CASES
               for f in ("model.safetensors", "graphs.safetensors")
               if not filecmp.cmp(Path(tmp) / name / f, HERE / name / f, shallow=False)]
        bad += [f"{name}/expected.safetensors" for name, *_ in CASES + RECURRENT_CASES
                if not same_outputs(Path(tmp) / name / "expected.safetensors",
                                    HERE / name / "expected.safetensors")]
    if bad:
        print("out of date: " + ", ".join(bad))
        return 1
    print(f"all {len(CASES) + len(RECURRENT_CASES)} cases up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
