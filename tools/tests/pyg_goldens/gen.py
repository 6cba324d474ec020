"""Regenerates the PyG golden cases next to this file (model, graphs, expected output).

    .venv/bin/python tools/tests/pyg_goldens/gen.py

Needs torch, torch_geometric and the tinygnn exporter (tools/python, on the python branch).
Each case: model.safetensors (tinygnn.export), graphs.safetensors (tinygnn.save_graphs),
expected.safetensors ('out' = the PyG module's eval-mode output on those graphs).
"""
import sys, torch
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
import tinygnn
from safetensors.torch import save_file
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv, SAGEConv, GINConv, global_add_pool, global_mean_pool, global_max_pool
import torch.nn as nn, torch.nn.functional as F
torch.manual_seed(0)
OUT = Path(__file__).resolve().parent

def rand_graph(n, e, f, loops=3, weights=False, isolated=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n - isolated, (e,), generator=g)
    dst = torch.randint(0, n - isolated, (e,), generator=g)
    # a few explicit self-loops (some duplicated)
    lp = torch.randint(0, n - isolated, (loops,), generator=g)
    src = torch.cat([src, lp, lp[:1]]); dst = torch.cat([dst, lp, lp[:1]])
    d = Data(x=torch.randn(n, f, generator=g), edge_index=torch.stack([src, dst]))
    if weights:
        d.edge_weight = torch.rand(src.numel(), generator=g) * 2 + 0.1
    d.y = torch.randint(0, 3, (n,), generator=g)
    return d

def save(name, model, data):
    p = OUT / name; p.mkdir(parents=True, exist_ok=True)
    model.eval()
    r = tinygnn.export(model, p / "model.safetensors", data)
    tinygnn.save_graphs(p / "graphs.safetensors", data)
    save_file({"out": r.output.contiguous()}, str(p / "expected.safetensors"))
    print(name, tuple(r.output.shape), [o["op"] for o in r.spec["ops"]])

class GCN(nn.Module):
    def __init__(s, f, h, c, **kw):
        super().__init__(); s.c1 = GCNConv(f, h, **kw); s.c2 = GCNConv(h, c, **kw)
    def forward(s, x, edge_index):
        x = F.relu(s.c1(x, edge_index)); x = F.dropout(x, 0.5, s.training); return s.c2(x, edge_index)

class GCNW(nn.Module):
    def __init__(s, f, h, c, **kw):
        super().__init__(); s.c1 = GCNConv(f, h, **kw); s.bn = nn.BatchNorm1d(h); s.c2 = GCNConv(h, c, **kw)
    def forward(s, x, edge_index, edge_weight):
        x = F.leaky_relu(s.bn(s.c1(x, edge_index, edge_weight)), 0.2); return s.c2(x, edge_index, edge_weight)

class SAGE(nn.Module):
    def __init__(s, f, h, c):
        super().__init__()
        s.c1 = SAGEConv(f, h, aggr="mean"); s.bn = nn.BatchNorm1d(h)
        s.c2 = SAGEConv(h, h, aggr="max"); s.c3 = SAGEConv(h, h, aggr="sum", normalize=True)
        s.c4 = SAGEConv(h, c, aggr="mean", root_weight=False)
    def forward(s, x, edge_index):
        x = F.relu(s.bn(s.c1(x, edge_index)))
        x = F.relu(s.c2(x, edge_index))
        x = F.relu(s.c3(x, edge_index))
        return s.c4(x, edge_index)

class GIN(nn.Module):
    def __init__(s, f, h, c):
        super().__init__()
        s.g1 = GINConv(nn.Sequential(nn.Linear(f, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Linear(h, h)), train_eps=True)
        s.g2 = GINConv(nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h)), eps=0.3)
        s.lin = nn.Linear(3 * h + h, c)
    def forward(s, x, edge_index, batch):
        h1 = F.relu(s.g1(x, edge_index))
        h2 = F.relu(s.g2(h1, edge_index) + h1)
        jk = torch.cat([h1, h2], dim=-1)
        p = torch.cat([global_mean_pool(jk, batch), global_max_pool(h2, batch), global_add_pool(h1, batch)], dim=-1)
        return s.lin(p)

def randomize_bn(m):
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm1d):
            with torch.no_grad():
                mod.running_mean.uniform_(-0.5, 0.5); mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5); mod.bias.uniform_(-0.3, 0.3)
        if isinstance(mod, GINConv) and isinstance(mod.eps, nn.Parameter):
            with torch.no_grad(): mod.eps.fill_(0.15)

d = rand_graph(60, 240, 12, seed=1)
save("gcn_basic", GCN(12, 16, 3), d)
save("gcn_no_self_loops", GCN(12, 16, 3, add_self_loops=False), d)
dw = rand_graph(60, 240, 12, weights=True, seed=2)
m = GCNW(12, 16, 3, improved=True); randomize_bn(m); save("gcn_weighted_improved_bn", m, dw)
m = SAGE(12, 16, 3); randomize_bn(m); save("sage_variants", m, d)
from torch_geometric.data import Batch
gs = [rand_graph(int(n), int(n) * 3, 7, isolated=1, seed=10 + i) for i, n in enumerate([8, 12, 5, 20, 9, 15])]
for i, g in enumerate(gs): g.y = torch.tensor([i % 2])
b = Batch.from_data_list(gs)
m = GIN(7, 16, 2); randomize_bn(m); save("gin_graph_pools", m, b)
