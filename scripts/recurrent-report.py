#!/usr/bin/env python3
"""Per-step int8 agreement of a TGCN cell on a synthetic diffusion-over-a-sensor-graph
sequence (issue 18): builds the sequence, trains a small TGCN cell with a per-node
classifier in PyTorch (plain PyG, as torch-geometric-temporal defines TGCN), exports it
with tinygnn.export (example state data.h), converts it with `tinygnn convert --calib`
on a calibration sequence, and runs `tinygnn verify --sequence --json` on a separate
test sequence. Prints the per-step top-1 agreement and the state's drift; exits 1 if any
step is below --min (default 0.95).

    scripts/recurrent-report.py [--steps 120] [--min 0.95] [--out DIR] [--json]

The CLI is $TINYGNN_BIN, else target/release/tinygnn (build it first)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "python"))

import torch  # noqa: E402
from torch_geometric.data import Data  # noqa: E402
from torch_geometric.nn import GCNConv  # noqa: E402

import tinygnn  # noqa: E402


class TGCN(torch.nn.Module):
    """torch_geometric_temporal.nn.recurrent.TGCN in plain PyG."""

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
                                                  dim=-1)))
        r = torch.sigmoid(self.linear_r(torch.cat([self.conv_r(x, edge_index, edge_weight), h],
                                                  dim=-1)))
        h_tilde = torch.tanh(self.linear_h(
            torch.cat([self.conv_h(x, edge_index, edge_weight), h * r], dim=-1)))
        return z * h + (1 - z) * h_tilde


class Forecaster(torch.nn.Module):
    """TGCN cell + per-node classifier: returns (logits, h_next)."""

    def __init__(self, f, hidden, classes):
        super().__init__()
        self.cell = TGCN(f, hidden)
        self.out = torch.nn.Linear(hidden, classes)

    def forward(self, x, edge_index, edge_weight, h):
        h = self.cell(x, edge_index, edge_weight, h)
        return self.out(h), h


def sensor_graph(n, k, g):
    """Sensors at random points of the unit square, each linked to its k nearest (both
    directions), weights exp(-d²/σ²) as in traffic-sensor graphs (METR-LA style)."""
    pos = torch.rand(n, 2, generator=g)
    d = torch.cdist(pos, pos)
    nn = d.topk(k + 1, largest=False).indices[:, 1:]
    src = torch.arange(n).repeat_interleave(k)
    dst = nn.reshape(-1)
    ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)
    ei = torch.unique(ei, dim=1)
    w = torch.exp(-(d[ei[0], ei[1]] ** 2) / 0.05)
    return ei, w


def diffusion(ei, w, n, steps, g, alpha=0.35, classes=3):
    """u_{t+1} = (1−α)u_t + α·P u_t + sources: a quantity spreading over the sensors with
    random injections; x_t = [u_t, sin, cos of the daily phase]; the label of node i at
    step t is the level (low / mid / high) of u_{t+1}[i] (a one-step forecast). u is
    standardized (mean 0, std 1 over the whole run) in x."""
    deg = torch.zeros(n).index_add_(0, ei[1], w)
    P = torch.zeros(n, n)
    P[ei[1], ei[0]] = w / deg[ei[1]].clamp(min=1e-6)
    u = torch.rand(n, generator=g)
    us = []
    for t in range(steps + 1):
        us.append(u)
        inj = (torch.rand(n, generator=g) < 0.05).float() * torch.rand(n, generator=g) * 2
        u = (1 - alpha) * u + alpha * (P @ u) + inj - 0.05 * u
    us = torch.stack(us)
    lo, hi = torch.quantile(us, 1 / 3), torch.quantile(us, 2 / 3)
    # Standardized, like the other channels in [-1, 1]: the input is quantized per tensor.
    mu, sd = us.mean(), us.std()
    seq = []
    for t in range(steps):
        phase = 2 * torch.pi * t / 48
        x = torch.stack([(us[t] - mu) / sd, torch.full((n,), float(torch.sin(torch.tensor(phase)))),
                         torch.full((n,), float(torch.cos(torch.tensor(phase))))], dim=1)
        y = (us[t + 1] > lo).long() + (us[t + 1] > hi).long()
        seq.append(Data(x=x, edge_index=ei, edge_weight=w, y=y))
    return seq


def train(model, seq, hidden, epochs=60, lr=0.02):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        h = torch.zeros(seq[0].num_nodes, hidden)
        loss = 0
        for t, d in enumerate(seq):
            logits, h = model(d.x, d.edge_index, d.edge_weight, h)
            loss = loss + torch.nn.functional.cross_entropy(logits, d.y)
            if (t + 1) % 20 == 0:  # truncated backpropagation through time
                opt.zero_grad()
                loss.backward()
                opt.step()
                h = h.detach()
                loss = 0
    return model.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=8)
    ap.add_argument("--min", type=float, default=0.95)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(18)
    ei, w = sensor_graph(a.nodes, 3, g)
    seq = diffusion(ei, w, a.nodes, 3 * a.steps, g)
    train_seq, calib_seq, test_seq = seq[:a.steps], seq[a.steps:2 * a.steps], seq[2 * a.steps:]
    model = train(Forecaster(3, a.hidden, 3), train_seq, a.hidden)
    out = a.out or Path(tempfile.mkdtemp(prefix="tinygnn-recurrent-"))
    out.mkdir(parents=True, exist_ok=True)
    example = train_seq[0].clone()
    example.h = torch.zeros(a.nodes, a.hidden)
    tinygnn.export(model, out / "tgcn.safetensors", example=example)
    tinygnn.save_graphs(out / "calib.safetensors", calib_seq)
    tinygnn.save_graphs(out / "test.safetensors", test_seq)
    cli = os.environ.get("TINYGNN_BIN") or str(ROOT / "target" / "release" / "tinygnn")
    subprocess.run([cli, "convert", str(out / "tgcn.safetensors"), "--calib",
                    str(out / "calib.safetensors"), "-o", str(out / "tgcn.tgnn")],
                   check=True, stdout=subprocess.DEVNULL)
    r = subprocess.run([cli, "verify", str(out / "tgcn.safetensors"), str(out / "tgcn.tgnn"),
                        str(out / "test.safetensors"), "--sequence", "--json"],
                       check=True, capture_output=True, text=True)
    v = json.loads(r.stdout)
    # Float accuracy of the forecast, for context.
    with torch.no_grad():
        h = torch.zeros(a.nodes, a.hidden)
        correct = 0
        for d in test_seq:
            logits, h = model(d.x, d.edge_index, d.edge_weight, h)
            correct += int((logits.argmax(-1) == d.y).sum())
    facc = correct / (len(test_seq) * a.nodes)
    if a.json:
        print(json.dumps({"float_accuracy": facc, **v}, indent=2))
    else:
        print(f"TGCN cell (hidden {a.hidden}) on a {a.nodes}-sensor diffusion sequence; "
              f"{v['steps']} test steps from the zero state; files in {out}")
        print(f"float forecast accuracy: {facc:.2%}")
        print("step  agreement  state max err")
        for s in v["per_step"]:
            print(f"{s['step']:>4}  {s['top1_agreement']:>9.2%}  {s['state_max_abs_err']:.4f}")
        print(f"top-1 agreement per step: min {v['min_top1_agreement']:.2%} "
              f"(step {v['worst_step']}), mean {v['mean_top1_agreement']:.2%}")
    return 0 if v["min_top1_agreement"] >= a.min else 1


if __name__ == "__main__":
    sys.exit(main())
