#!/usr/bin/env python3
"""Per-step int8 agreement of a TGCN cell on a synthetic diffusion-over-a-sensor-graph
sequence (issue 18) at other sizes than the bundled models/sensor-tgcn (whose process
and model it imports): builds the sequence, trains a small TGCN cell with a per-node
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

import importlib.util  # noqa: E402

import torch  # noqa: E402

import tinygnn  # noqa: E402

# The process and the model are the bundled models/sensor-tgcn's.
_spec = importlib.util.spec_from_file_location("sensor_tgcn", ROOT / "models" / "sensor-tgcn" / "model.py")
sensor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sensor)
Forecaster, sensor_graph, diffusion, train = (sensor.Forecaster, sensor.sensor_graph,
                                              sensor.diffusion, sensor.train)


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
