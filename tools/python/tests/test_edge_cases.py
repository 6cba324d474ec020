"""Graph edge cases against PyG itself: small PyG models are exported, converted with
the `tinygnn` CLI (calibrated on ordinary random graphs) and run by the runtime
(`tinygnn run`) on edge-case graphs: one node, a node with self-loops, isolated nodes,
duplicate edges and repeated self-loops with different weights, an empty graph, a batch
with an empty graph. The dequantized output must match PyG's float output within the
conformance tolerance (4 output steps + 3 % of the output range); node-level outputs of
an empty graph must have zero rows. The exact integer behaviour of the same cases is in
tests/edge_cases.rs; docs/guarantees.md lists them.

The CLI is $TINYGNN_CLI, else target/release/tinygnn (built if missing)."""
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GCNConv, GINConv, SAGEConv, global_add_pool, global_max_pool, global_mean_pool

import tinygnn
from helpers import perturb, random_graph

ROOT = Path(__file__).resolve().parents[3]
F = 4


def cli() -> str:
    exe = os.environ.get("TINYGNN_CLI") or str(ROOT / "target" / "release" / "tinygnn")
    if not Path(exe).exists():
        subprocess.run(["cargo", "build", "-q", "--release", "-p", "tinygnn-cli"], cwd=ROOT, check=True)
    return exe


class Gcn(torch.nn.Module):
    def __init__(self, improved=False):
        super().__init__()
        self.conv = GCNConv(F, 3, improved=improved)

    def forward(self, x, edge_index, edge_weight=None):
        return self.conv(x, edge_index, edge_weight)


class Sage(torch.nn.Module):
    def __init__(self, aggr):
        super().__init__()
        self.conv = SAGEConv(F, 3, aggr=aggr)

    def forward(self, x, edge_index):
        return self.conv(x, edge_index)


class Gin(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = GINConv(torch.nn.Linear(F, 3))

    def forward(self, x, edge_index):
        return self.conv(x, edge_index)


class Pooled(torch.nn.Module):
    def __init__(self, pool):
        super().__init__()
        self.conv = GCNConv(F, 5)
        self.pool = pool
        self.lin = torch.nn.Linear(5, 3)

    def forward(self, x, edge_index, batch):
        return self.lin(self.pool(self.conv(x, edge_index).relu(), batch))


def graph(n, edges, weights=None, seed=0, batch=None):
    g = torch.Generator().manual_seed(seed)
    ei = torch.tensor(edges, dtype=torch.long).reshape(-1, 2).t().contiguous() if edges else torch.zeros(2, 0, dtype=torch.long)
    d = Data(x=torch.randn(n, F, generator=g), edge_index=ei)
    if weights is not None:
        d.edge_weight = torch.tensor(weights, dtype=torch.float32)
    if batch is not None:
        d.batch = torch.tensor(batch, dtype=torch.long)
    return d


# (name, edges as (source, target) pairs, weights) on n nodes.
NODE_CASES = [
    ("one_node", 1, [], []),
    ("one_node_self_loop", 1, [(0, 0)], [0.7]),
    # nodes 3, 4 isolated; 0 → 1 twice; node 2: two loops (weights 0.5 then 1.5) and 1 → 2
    ("isolated_duplicates_loops", 5, [(0, 1), (0, 1), (2, 2), (1, 2), (2, 2)], [0.6, 1.3, 0.5, 0.9, 1.5]),
    ("all_isolated", 4, [], []),
]

NODE_MODELS = {
    "gcn": (lambda: Gcn(), False),
    "gcn_weighted": (lambda: Gcn(), True),
    "gcn_improved_weighted": (lambda: Gcn(improved=True), True),
    "sage_mean": (lambda: Sage("mean"), False),
    "sage_max": (lambda: Sage("max"), False),
    "sage_sum": (lambda: Sage("sum"), False),
    "gin": (lambda: Gin(), False),
}

POOLS = {"add": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}


def pyg_out(model, data):
    with torch.no_grad():
        return tinygnn.call_with_data(model, data).float()


def convert(tmp: Path, model, calib) -> Path:
    tinygnn.export(model, tmp / "m.safetensors", example=calib)
    tinygnn.save_graphs(tmp / "calib.safetensors", calib)
    out = tmp / "m.tgnn"
    subprocess.run([cli(), "convert", str(tmp / "m.safetensors"), "--calib", str(tmp / "calib.safetensors"),
                    "-o", str(out)], check=True, capture_output=True, text=True)
    return out


def run_cli(tmp: Path, tgnn: Path, data) -> torch.Tensor:
    tinygnn.save_graphs(tmp / "g.safetensors", data)
    raw = tmp / "out.bin"
    r = subprocess.run([cli(), "run", str(tgnn), str(tmp / "g.safetensors"), "--json", "--output-bytes", str(raw)],
                       check=True, capture_output=True, text=True)
    meta = json.loads(r.stdout)
    q = torch.frombuffer(bytearray(raw.read_bytes()), dtype=torch.int8).to(torch.float32) if meta["rows"] else torch.zeros(0)
    return (meta["scale"] * (q - meta["zero_point"])).reshape(meta["rows"], meta["channels"]), meta["scale"]


def check(case, got, step, want, out_range):
    assert got.shape == want.shape, f"{case}: shape {tuple(got.shape)} vs PyG {tuple(want.shape)}"
    if want.numel() == 0:
        return
    tol = 4 * step + 0.03 * out_range
    err = (got - want).abs().max().item()
    assert err <= tol, f"{case}: max |tinygnn − PyG| = {err:.4f} > {tol:.4f}\n{got}\n{want}"


@pytest.mark.parametrize("name", sorted(NODE_MODELS))
def test_node_level_edge_cases_match_pyg(tmp_path, name):
    make, weighted = NODE_MODELS[name]
    torch.manual_seed(1)
    model = perturb(make(), seed=2)
    cases = [(case, graph(n, edges, weights if weighted else None, seed=n)) for case, n, edges, weights in NODE_CASES]
    # Calibrated on an ordinary graph and the cases, so that no output is clipped by
    # the int8 range: what is compared is the semantics, not the calibration.
    calib = Batch.from_data_list([random_graph(num_nodes=12, num_edges=30, channels=F, edge_weight=weighted, seed=3)]
                                 + [d for _, d in cases])
    tgnn = convert(tmp_path, model, calib)
    ref = pyg_out(model, calib)
    out_range = (ref.max() - ref.min()).item()
    for case, data in cases:
        got, step = run_cli(tmp_path, tgnn, data)
        check(f"{name}/{case}", got, step, pyg_out(model, data), out_range)
    # The empty graph: zero rows, as PyG gives.
    empty = graph(0, [], [] if weighted else None)
    got, _ = run_cli(tmp_path, tgnn, empty)
    assert got.shape == pyg_out(model, empty).shape == (0, 3)


@pytest.mark.parametrize("pool", sorted(POOLS))
def test_pooling_edge_cases_match_pyg(tmp_path, pool):
    torch.manual_seed(4)
    model = perturb(Pooled(POOLS[pool]), seed=5)
    # A batch whose graph 1 has no node (batch = [0, 0, 0, 2, 2]): PyG pools it to 0
    # (add, mean and max). Graph 0 has a self-loop, graph 2 a duplicate edge.
    g0 = graph(3, [(0, 1), (1, 0), (1, 1)], seed=7)
    g2 = graph(2, [(0, 1), (0, 1)], seed=9)
    holes = Batch.from_data_list([g0, graph(0, []), g2])
    assert holes.batch.tolist() == [0, 0, 0, 2, 2]
    one = graph(1, [], batch=[0], seed=8)
    # Calibrated on ordinary graphs and the cases' graphs (no clipping, see above).
    calib = Batch.from_data_list([random_graph(n, 2 * n, F, seed=6 + i) for i, n in enumerate((7, 9, 5))]
                                 + [g0, g2, graph(1, [], seed=8)])
    tgnn = convert(tmp_path, model, calib)
    ref = pyg_out(model, calib)
    out_range = (ref.max() - ref.min()).item()
    got, step = run_cli(tmp_path, tgnn, holes)
    check(f"{pool}/empty_graph_in_batch", got, step, pyg_out(model, holes), out_range)
    # One graph of one node.
    got, step = run_cli(tmp_path, tgnn, one)
    check(f"{pool}/one_node", got, step, pyg_out(model, one), out_range)
    # Zero nodes, no batch vector: one (empty) graph. PyG defines add (0); its mean is
    # NaN and its max raises, where tinygnn defines 0 (docs/guarantees.md).
    empty = graph(0, [])
    got, step = run_cli(tmp_path, tgnn, empty)
    assert got.shape == (1, 3)
    if pool == "add":
        with torch.no_grad():
            want = model(empty.x, empty.edge_index, None)  # global_add_pool without batch: x.sum(0)
        check("add/zero_nodes", got, step, want, out_range)
    else:
        # Same value as an all-zero pooled row: the Linear head's bias.
        want = model.lin.bias.detach().reshape(1, 3)
        check(f"{pool}/zero_nodes", got, step, want, out_range)
