#!/usr/bin/env python3
"""Measure what keeping APPNP's intermediate values in i32 buys over requantizing them to
int8 after every step (the design question of docs/propagation.md).

    python models/cora-appnp/compare_int8_steps.py     # needs $TINYGNN_DATA and the CLI

Builds, from the committed cora-appnp weights, the same network with the ten propagation
steps unrolled into existing int8 ops — per step `GCNConv(7→7, weight (1−α)·I, no bias)` +
`Linear(7→7, weight α·I)` on h⁰ + `add` — so that every h^k is an int8 tensor with its own
calibrated range; checks that it computes the same float function as PyG's APPNP; converts
both with the `tinygnn` CLI (default options, the Cora graph as calibration, as
scripts/models.py does) and prints `tinygnn verify`'s accuracy and agreement for each.
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch_geometric.nn import GCNConv

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "models"))
import _common  # noqa: E402
import tinygnn  # noqa: E402

NAME = "cora-appnp"


class Unrolled(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.lin1, self.lin2 = m.lin1, m.lin2
        k, a, c = m.prop.K, m.prop.alpha, m.lin2.out_features
        self.convs = torch.nn.ModuleList(GCNConv(c, c, bias=False) for _ in range(k))
        self.tele = torch.nn.ModuleList(torch.nn.Linear(c, c, bias=False) for _ in range(k))
        with torch.no_grad():
            for conv, tele in zip(self.convs, self.tele):
                conv.lin.weight.copy_((1 - a) * torch.eye(c))
                tele.weight.copy_(a * torch.eye(c))

    def forward(self, x, edge_index):
        h0 = self.lin2(torch.relu(self.lin1(x)))
        h = h0
        for conv, tele in zip(self.convs, self.tele):
            h = conv(h, edge_index) + tele(h0)
        return h


def main() -> int:
    mdef = _common.load_model_def(NAME)
    data = mdef.load_data()
    model = _common.load_weights(mdef.build_model(), ROOT / "models" / NAME / "model.safetensors")
    unrolled = Unrolled(model).eval()
    with torch.no_grad():
        torch.testing.assert_close(unrolled(data.x, data.edge_index),
                                   model(data.x, data.edge_index), rtol=1e-4, atol=1e-4)
    cli = ROOT / "target" / "release" / "tinygnn"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        graphs = tmp / "graphs.safetensors"
        tinygnn.save_graphs(graphs, data)
        for label, path, m in (("i32 between steps (Propagate op)", ROOT / "models" / NAME / "model.safetensors", None),
                               ("int8 after every step (unrolled)", tmp / "unrolled.safetensors", unrolled)):
            if m is not None:
                tinygnn.export(m, path, example=data)
            tgnn = tmp / "m.tgnn"
            subprocess.run([str(cli), "convert", str(path), "--calib", str(graphs), "-o", str(tgnn)],
                           check=True, capture_output=True)
            v = json.loads(subprocess.run([str(cli), "verify", str(path), str(tgnn), str(graphs), "--json"],
                                          check=True, capture_output=True, text=True).stdout)
            print(f"{label}: float {100 * v['float_accuracy']:.1f} %, int8 {100 * v['int8_accuracy']:.1f} %, "
                  f"top-1 agreement {100 * v['top1_agreement']:.2f} %, max abs err {v['max_abs_err']:.4f} "
                  f"({v['max_abs_err'] / v['output_step']:.1f} output steps), {tgnn.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
