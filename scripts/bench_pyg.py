#!/usr/bin/env python3
"""The PyG side of scripts/bench.sh: a bundled model in float, PyTorch Geometric, one CPU thread.

    bench_pyg.py NAME GRAPHS --reps R     # prints one JSON line

Rebuilds models/NAME/model.py's model with the committed weights (models/_common.py), runs
it in eval mode under torch.no_grad() on GRAPHS (the same file tinygnn runs), R times after
3 warm-up calls, and prints the median and minimum wall-clock time per forward call, the
argmax and the accuracy over test_mask. Every forward call recomputes gcn_norm (PyG's
default, cached=False), as tinygnn rebuilds its CSR and degrees in every inference.
Runs in the project's venv (scripts/venv.sh: torch + torch_geometric).
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "models"))

import torch  # noqa: E402
import torch_geometric  # noqa: E402
from _common import load_model_def, load_weights  # noqa: E402
from tinygnn.export import call_with_data  # noqa: E402
from tinygnn.graphs import load_graphs  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("graphs")
    ap.add_argument("--reps", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    mdef = load_model_def(args.name)
    model = load_weights(mdef.build_model(), ROOT / "models" / args.name / "model.safetensors")
    data = load_graphs(args.graphs)
    with torch.no_grad():
        for _ in range(3):
            out = call_with_data(model, data)
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter_ns()
            out = call_with_data(model, data)
            times.append(time.perf_counter_ns() - t0)
    pred = out.argmax(dim=-1)
    y = getattr(data, "y", None)
    mask = getattr(data, "test_mask", None)
    acc = None
    rows = 0
    if y is not None and y.numel() == pred.numel():
        sel = mask.bool() if mask is not None and mask.numel() == pred.numel() else torch.ones_like(pred, dtype=torch.bool)
        acc = float((pred[sel] == y.view(-1)[sel]).float().mean())
        rows = int(sel.sum())
    print(json.dumps({"torch": torch.__version__.split("+")[0], "torch_geometric": torch_geometric.__version__,
                      "threads": torch.get_num_threads(), "reps": args.reps,
                      "median_ns": statistics.median(times), "min_ns": min(times),
                      "argmax": pred.tolist(), "accuracy": acc, "accuracy_rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
