#!/usr/bin/env python3
"""Build or check the bundled models (models/<name>/) with the `tinygnn` CLI.

    models.py build [NAME...]   convert every model, write <name>.tgnn, expected_int8.bin,
                                verify.json and the measured table in its README
    models.py check [NAME...]   convert again and require the same .tgnn bytes, run it and
                                require the committed int8 output bytes, verify it and
                                require the accuracy goals in goals.json

A recurrent model (goals.json "sequence": true, models/sensor-tgcn) runs and verifies its
graphs as a sequence (`--sequence`); its goal is the top-1 agreement at every step.

Inputs: models whose data ships with the project (karate, digits) use their committed
graphs; the Cora models rebuild theirs from $TINYGNN_DATA with models/make_inputs.py into
.cache/inputs/<name>/ and are skipped, visibly, when $TINYGNN_DATA is not set.

Every number written here comes from `tinygnn verify --json`; nothing is typed by hand.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
CACHE = ROOT / ".cache" / "inputs"
BEGIN, END = "<!-- measured:begin -->", "<!-- measured:end -->"


def cli() -> list[str]:
    """The tinygnn CLI: $TINYGNN_BIN (or $TINYGNN_CLI) as scripts/test.sh built it; otherwise
    `cargo build` now (a no-op when up to date), never a binary left from an earlier build."""
    given = os.environ.get("TINYGNN_BIN") or os.environ.get("TINYGNN_CLI")
    if given:
        return [given]
    if not getattr(cli, "built", False):
        subprocess.run(["cargo", "build", "-q", "--release", "-p", "tinygnn-cli"], cwd=ROOT, check=True)
        cli.built = True
    return [str(ROOT / "target" / "release" / "tinygnn")]


def sh(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, check=True, text=True, capture_output=True, **kw)


def pmap(fn, items) -> list:
    """`fn` over `items` on every core, results in order. Each call mostly waits for the
    single-threaded CLI, so threads are enough. The CLI is built and each model's inputs made
    first, one at a time: the calls then only read them."""
    items = list(items)
    cli()
    with ThreadPoolExecutor(max(1, min(len(items), os.cpu_count() or 1))) as ex:
        return list(ex.map(fn, items))


def inputs(name: str) -> tuple[Path, Path] | None:
    """(graphs, calib) for a model, or None when its data is unavailable."""
    d = MODELS / name
    if (d / "graphs.safetensors").exists():
        graphs = d / "graphs.safetensors"
    else:
        if not os.environ.get("TINYGNN_DATA"):
            return None
        out = CACHE / name
        if not (out / "graphs.safetensors").exists():
            sh([sys.executable, str(MODELS / "make_inputs.py"), name, str(out)])
        graphs = out / "graphs.safetensors"
    # A calibration set sits beside the graphs: committed (digits-gin, shapes-dgcnn) or
    # generated with them (cora-link's validation pairs). Without one, the evaluation
    # graphs calibrate (transductive Cora/karate: all nodes, no labels used).
    calib = graphs.parent / "calib.safetensors"
    return graphs, (calib if calib.exists() else graphs)


def convert_args(name: str, graphs: Path, calib: Path, out: Path) -> list[str]:
    goals = json.loads((MODELS / name / "goals.json").read_text())
    extra = goals.get("convert_args", [])
    return cli() + ["convert", str(MODELS / name / "model.safetensors"), "--calib", str(calib), "-o", str(out)] + extra


def verify(name: str, tgnn: Path, graphs: Path) -> dict:
    r = sh(cli() + ["verify", str(MODELS / name / "model.safetensors"), str(tgnn), str(graphs), "--json"])
    return json.loads(r.stdout)


def is_sequence(name: str) -> bool:
    """A recurrent model (goals.json `"sequence": true`): its graphs file is a sequence, one
    graph per step, run from the zero state (`--sequence`)."""
    return bool(json.loads((MODELS / name / "goals.json").read_text()).get("sequence"))


def run_args(name: str, tgnn: Path, graphs: Path, out: Path) -> list[str]:
    seq = ["--sequence"] if is_sequence(name) else []
    return cli() + ["run", str(tgnn), str(graphs), *seq, "--output-bytes", str(out)]


def verify_sequence(name: str, tgnn: Path, graphs: Path) -> dict:
    """`verify --sequence --json` (per-step agreement) without the per-step rows, plus the
    float and int8 accuracy over every step's rows (labels `y` of the graphs file; float from
    float_metrics.json, int8 from the argmax of `run --sequence --json`) and the state and
    arena bytes of `run --sequence`."""
    from safetensors.numpy import load_file

    r = sh(cli() + ["verify", str(MODELS / name / "model.safetensors"), str(tgnn), str(graphs),
                    "--sequence", "--json"])
    v = json.loads(r.stdout)
    per_step = v.pop("per_step")
    v["state_max_abs_err"] = max(s["state_max_abs_err"] for s in per_step)
    v["rows_per_step"] = per_step[0]["rows"] if per_step else 0
    run = json.loads(sh(cli() + ["run", str(tgnn), str(graphs), "--sequence", "--json"]).stdout)
    y = load_file(str(graphs))["y"].reshape(-1).tolist()
    pred = [c for step in run["per_step"] for c in step["argmax"]]
    v["int8_accuracy"] = sum(int(p == t) for p, t in zip(pred, y)) / max(1, len(y))
    v["accuracy_rows"] = len(y)
    v["float_accuracy"] = json.loads((MODELS / name / "float_metrics.json").read_text())["float_test_accuracy"]
    v["state_bytes"], v["arena_bytes"], v["nodes"] = run["state_bytes"], run["arena_bytes"], run["nodes"]
    return v


def sequence_table(name: str, v: dict, tgnn: Path) -> str:
    pct = lambda x: f"{100 * x:.2f} %"
    rows = [
        "| measure | value |",
        "|---|---|",
        f"| test sequence | {v['steps']} steps of {v['nodes']} sensors from the zero state |",
        f"| float accuracy (PyG, `{v['accuracy_rows']}` rows, all steps) | {pct(v['float_accuracy'])} |",
        f"| int8 accuracy (tinygnn runtime, all steps) | {pct(v['int8_accuracy'])} |",
        f"| top-1 agreement int8 vs float per step ({v['rows_per_step']} rows each) | min {pct(v['min_top1_agreement'])} (step {v['worst_step']}), mean {pct(v['mean_top1_agreement'])} |",
        f"| largest state error (dequantized, any step) | {v['state_max_abs_err']:.4f} (state step {v['state_scale']:.4f}) |",
        f"| RAM per step | state {v['state_bytes']} bytes + arena {v['arena_bytes']} bytes |",
        f"| model file | {tgnn.stat().st_size} bytes |",
    ]
    cmd = f"scripts/models.py build {name}"
    return "\n".join([BEGIN, f"Measured by `tinygnn verify --sequence` and `tinygnn run --sequence` (regenerate with `{cmd}`):", "", *rows, END])


def table(name: str, v: dict, tgnn: Path) -> str:
    pct = lambda x: f"{100 * x:.2f} %" if x is not None else "n/a"
    rows = [
        "| measure | value |",
        "|---|---|",
        f"| float accuracy (PyG semantics, `{v['accuracy_rows']}` rows) | {pct(v.get('float_accuracy'))} |",
        f"| int8 accuracy (tinygnn runtime) | {pct(v.get('int8_accuracy'))} |",
        f"| top-1 agreement int8 vs float ({v['rows']} rows) | {pct(v['top1_agreement'])} |",
        f"| max abs error of the dequantized output | {v['max_abs_err']:.4f} (output step {v['output_step']:.4f}) |",
        f"| model file | {tgnn.stat().st_size} bytes |",
    ]
    if v.get("float_auc") is not None:  # link prediction (one logit per node pair)
        rows[2:5] = [
            f"| float AUC (PyG semantics, `{v['auc_pairs']}` test pairs) | {pct(v['float_auc'])} |",
            f"| int8 AUC (tinygnn runtime) | {pct(v['int8_auc'])} |",
        ]
    extra = json.loads((MODELS / name / "goals.json").read_text()).get("convert_args", [])
    if extra and v.get("float_auc") is not None:
        rows.append(f"| convert flags | `{' '.join(extra)}` (capacity of the test graph and its pairs) |")
    elif extra:
        rows.append(f"| convert flags | `{' '.join(extra)}` (see docs/quantization.md: only the argmax of the output is meaningful) |")
    cmd = f"scripts/models.py build {name}"
    return "\n".join([BEGIN, f"Measured by `tinygnn verify` (regenerate with `{cmd}`):", "", *rows, END])


def classifiers() -> list[str]:
    """Bundled models judged by accuracy on one inference (every model but the link-prediction
    ones, whose goal is an AUC: `max_auc_drop_pp`, and the recurrent ones, judged per step of
    a sequence: `sequence`), for the accuracy and calibration reports."""
    return sorted(p.parent.name for p in MODELS.glob("*/goals.json")
                  if not {"max_auc_drop_pp", "sequence"} & json.loads(p.read_text()).keys())


def build(name: str) -> None:
    got = inputs(name)
    if got is None:
        print(f"SKIP {name}: TINYGNN_DATA is not set (Planetoid data needed)")
        return
    graphs, calib = got
    d = MODELS / name
    tgnn = d / f"{name}.tgnn"
    sh(convert_args(name, graphs, calib, tgnn))
    sh(run_args(name, tgnn, graphs, d / "expected_int8.bin"))
    v = verify_sequence(name, tgnn, graphs) if is_sequence(name) else verify(name, tgnn, graphs)
    v.pop("per_op", None)
    (d / "verify.json").write_text(json.dumps(v, indent=2, sort_keys=True) + "\n")
    readme = d / "README.md"
    text = readme.read_text()
    block = sequence_table(name, v, tgnn) if is_sequence(name) else table(name, v, tgnn)
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## int8 on the tinygnn runtime\n\n" + block + "\n"
    readme.write_text(text)
    if is_sequence(name):
        print(f"built {name}: per-step top-1 agreement min {v['min_top1_agreement']:.4f} "
              f"mean {v['mean_top1_agreement']:.4f}, int8 acc {v['int8_accuracy']:.4f}")
        return
    print(f"built {name}: top-1 agreement {v['top1_agreement']:.4f}, int8 acc {v.get('int8_accuracy')}"
          + (f", AUC float {v['float_auc']:.4f} int8 {v['int8_auc']:.4f}" if v.get("float_auc") is not None else ""))


def check(name: str) -> bool | None:
    """True/False for pass/fail, None when skipped (no data)."""
    got = inputs(name)
    if got is None:
        print(f"SKIP {name}: TINYGNN_DATA is not set (Planetoid data needed)")
        return None
    graphs, calib = got
    d = MODELS / name
    goals = json.loads((d / "goals.json").read_text())
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        tgnn = Path(tmp) / "m.tgnn"
        sh(convert_args(name, graphs, calib, tgnn))
        if tgnn.read_bytes() != (d / f"{name}.tgnn").read_bytes():
            print(f"FAIL {name}: convert no longer gives the committed {name}.tgnn")
            ok = False
        out = Path(tmp) / "out.bin"
        sh(run_args(name, d / f"{name}.tgnn", graphs, out))
        if out.read_bytes() != (d / "expected_int8.bin").read_bytes():
            print(f"FAIL {name}: runtime output bytes differ from expected_int8.bin")
            ok = False
        if is_sequence(name):
            return check_sequence(name, verify_sequence(name, d / f"{name}.tgnn", graphs), goals, ok)
        v = verify(name, d / f"{name}.tgnn", graphs)
    agree = v["top1_agreement"]
    drop = 100 * (v["float_accuracy"] - v["int8_accuracy"]) if v.get("int8_accuracy") is not None else None
    msg = f"{name}: top-1 agreement {100 * agree:.2f} %"
    if drop is not None:
        msg += f", float {100 * v['float_accuracy']:.2f} % → int8 {100 * v['int8_accuracy']:.2f} % ({drop:+.2f} pp drop)"
    if "min_top1_agreement" in goals and agree < goals["min_top1_agreement"]:
        print(f"FAIL {msg}; goal ≥ {100 * goals['min_top1_agreement']:.1f} %")
        ok = False
    if "max_accuracy_drop_pp" in goals and (drop is None or drop > goals["max_accuracy_drop_pp"]):
        print(f"FAIL {msg}; goal drop ≤ {goals['max_accuracy_drop_pp']} pp")
        ok = False
    if "max_auc_drop_pp" in goals:  # link prediction
        fa, qa = v.get("float_auc"), v.get("int8_auc")
        auc_drop = None if fa is None or qa is None else 100 * (fa - qa)
        if auc_drop is None:
            msg += ", no AUC (edge_label missing)"
        else:
            msg += f", AUC float {100 * fa:.2f} % → int8 {100 * qa:.2f} % ({auc_drop:+.2f} pp drop)"
        if auc_drop is None or auc_drop > goals["max_auc_drop_pp"]:
            print(f"FAIL {msg}; goal AUC drop ≤ {goals['max_auc_drop_pp']} pp")
            ok = False
    if ok:
        print(f"ok   {msg}")
    return ok


def check_sequence(name: str, v: dict, goals: dict, ok: bool) -> bool:
    """The goals of a recurrent model: top-1 agreement at every step of the sequence
    (`min_step_top1_agreement`) and the accuracy drop over all steps."""
    drop = 100 * (v["float_accuracy"] - v["int8_accuracy"])
    msg = (f"{name}: per-step top-1 agreement min {100 * v['min_top1_agreement']:.2f} % "
           f"(step {v['worst_step']}) mean {100 * v['mean_top1_agreement']:.2f} % over "
           f"{v['steps']} steps, float {100 * v['float_accuracy']:.2f} % → int8 "
           f"{100 * v['int8_accuracy']:.2f} % ({drop:+.2f} pp drop)")
    if v["min_top1_agreement"] < goals["min_step_top1_agreement"]:
        print(f"FAIL {msg}; goal ≥ {100 * goals['min_step_top1_agreement']:.1f} % at every step")
        ok = False
    if drop > goals["max_accuracy_drop_pp"]:
        print(f"FAIL {msg}; goal drop ≤ {goals['max_accuracy_drop_pp']} pp")
        ok = False
    if v["steps"] < goals.get("min_steps", 0):
        print(f"FAIL {msg}; goal ≥ {goals['min_steps']} steps")
        ok = False
    if ok:
        print(f"ok   {msg}")
    return ok


TASKS = {
    "karate-gcn": "KarateClub nodes (4 classes), GCN 34→8→8 + linear",
    "cora-gcn": "Cora nodes (7 classes), GCN 1433→16→7",
    "cora-sage": "Cora nodes (7 classes), GraphSAGE mean 1433→16→7",
    "cora-gat": "Cora nodes (7 classes), GAT 1433→8×8 heads→7",
    "cora-appnp": "Cora nodes (7 classes), MLP 1433→64→7 + APPNP (K=10, α=0.1)",
    "digits-gin": "8×8 digit images as grid graphs (10 classes), 3×GIN + add pool",
    "digits-gps": "8×8 digits as stroke graphs (10 classes), RWSE + 2×GPS (GIN, 4 heads) + add pool",
    "shapes-dgcnn": "3D point clouds of 6 shapes (64–256 points), 2×DynamicEdgeConv k=10 + max pool",
    "cora-link": "Cora link prediction (AUC), GAE: GCN 1433→32→16 + inner product",
    "sensor-tgcn": "sensor network (100 sensors, diffusion + sources), 3-band one-step forecast, TGCN cell (hidden 8) + linear, 120-step sequence",
}


def readme_table() -> None:
    """Rewrites the bundled-models table of the top-level README from the verify.json files."""
    pct = lambda x: f"{100 * x:.1f} %" if x is not None else "n/a"
    rows = ["| model | task | float acc. | int8 acc. | top-1 agreement | `.tgnn` bytes |", "|---|---|---|---|---|---|"]
    for d in sorted(p.parent for p in MODELS.glob("*/verify.json")):
        v = json.loads((d / "verify.json").read_text())
        size = (d / f"{d.name}.tgnn").stat().st_size
        # A sequence: the agreement of its worst step.
        agree = pct(v["top1_agreement"]) if "top1_agreement" in v else f"{pct(v['min_top1_agreement'])} (worst step)"
        rows.append(
            f"| [{d.name}](models/{d.name}) | {TASKS.get(d.name, '')} | {pct(v.get('float_accuracy'))} "
            f"| {pct(v.get('int8_accuracy'))} | {agree} | {size} |"
        )
    readme = ROOT / "README.md"
    text = readme.read_text()
    b, e = "<!-- models:begin -->", "<!-- models:end -->"
    head, rest = text.split(b, 1)
    readme.write_text(head + b + "\n" + "\n".join(rows) + "\n" + e + rest.split(e, 1)[1])


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("build", "check"):
        print(__doc__)
        return 2
    names = sys.argv[2:] or sorted(p.parent.name for p in MODELS.glob("*/goals.json"))
    if sys.argv[1] == "build":
        for n in names:
            build(n)
        readme_table()
        return 0
    for n in names:
        inputs(n)
    results = pmap(check, names)
    passed, failed = results.count(True), results.count(False)
    print(f"models: {passed} passed, {failed} failed, {results.count(None)} skipped")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
