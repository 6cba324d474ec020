#!/usr/bin/env python3
"""Measure every calibration method on every bundled model and write the results into
docs/quantization.md (between `<!-- calibration:begin/end -->` and `<!-- degree:begin/end -->`)
plus the example debugger plot docs/quantization-digits-gin.svg.

    calibration-report.py write [NAME...]   measure and rewrite the blocks (and the plot)
    calibration-report.py check [NAME...]   measure again and require the committed rows
                                            of the models measured (and the plot) to match

Each model is converted with its own `goals.json` flags plus `--calibration METHOD`, then
measured with `tinygnn verify --json --by-degree` on its test graphs. Cora models need
$TINYGNN_DATA and are skipped (visibly) without it. Nothing in the blocks is typed by hand.
"""
from __future__ import annotations

import importlib.util
import json
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("models_py", ROOT / "scripts" / "models.py")
M = importlib.util.module_from_spec(spec)
spec.loader.exec_module(M)

DOC = ROOT / "docs" / "quantization.md"
PLOT = ROOT / "docs" / "quantization-digits-gin.svg"
METHODS = ["minmax", "percentile:99.99", "percentile:99.9", "mse"]
DEGREE_METHODS = ["minmax", "percentile:99.9", "mse"]
AGG_OPS = ("gcn_conv", "sage_conv", "gin_aggregate")


# Extra degree measurements: the output aggregation of cora-gcn with its full range
# (goals.json clips it with --output-range top2, which hides the degree effect there).
DEGREE_EXTRA = {"cora-gcn": ["--output-range", "full"]}


def goal_args(name: str, drop: tuple[str, ...] = ()) -> list[str]:
    args = json.loads((M.MODELS / name / "goals.json").read_text()).get("convert_args", [])
    out, skip = [], False
    for a in args:  # drop any --calibration of goals.json (the method is ours) and `drop`
        if skip:
            skip = False
        elif a in ("--calibration",) + drop:
            skip = True
        elif not a.startswith("--calibration="):
            out.append(a)
    return out


def measure(name: str, method: str, tmp: Path, extra: list[str] | None = None) -> dict:
    graphs, calib = M.inputs(name)
    tag = "-extra" if extra else ""
    tgnn = tmp / f"{name}-{method.replace(':', '_')}{tag}.tgnn"
    flags = goal_args(name, (extra[0],)) + extra if extra else goal_args(name)
    M.sh(M.cli() + ["convert", str(M.MODELS / name / "model.safetensors"), "--calib", str(calib),
                    "-o", str(tgnn), "--calibration", method] + flags)
    r = M.sh(M.cli() + ["verify", str(M.MODELS / name / "model.safetensors"), str(tgnn), str(graphs),
                        "--json", "--by-degree"])
    v = json.loads(r.stdout)
    v["bytes"] = tgnn.stat().st_size
    return v


def db(x) -> str:
    return "exact" if x is None else f"{x:.1f}"


def pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def method_row(name: str, method: str, v: dict) -> str:
    ops = v["per_op"]
    own = [o["own_sqnr_db"] for o in ops]
    finite = [x for x in own if x is not None]
    worst = min(ops, key=lambda o: math.inf if o["own_sqnr_db"] is None else o["own_sqnr_db"])
    hidden = [o for o in ops[:-1] if o["own_sqnr_db"] is not None]
    hid = min(hidden, key=lambda o: o["own_sqnr_db"]) if hidden else None
    return (f"| {name} | `{method}` | {pct(v.get('float_accuracy'))} | {pct(v.get('int8_accuracy'))} "
            f"| {pct(v['top1_agreement'])} | {db(ops[-1]['sqnr_db'])} "
            f"| {db(hid['own_sqnr_db']) + ' (op ' + str(hid['index']) + ')' if hid else 'n/a'} "
            f"| {db(sum(finite) / len(finite) if finite else None)} | {db(worst['own_sqnr_db'])} (op {worst['index']}) |")


def measure_all(names: list[str]) -> tuple[dict, list[str]]:
    res, skipped = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for n in names:
            if M.inputs(n) is None:
                print(f"SKIP {n}: TINYGNN_DATA is not set (Planetoid data needed)")
                skipped.append(n)
                continue
            jobs += [((n, m), (n, m, None)) for m in METHODS]
            if n in DEGREE_EXTRA:
                jobs += [((n, m, "extra"), (n, m, DEGREE_EXTRA[n])) for m in DEGREE_METHODS]
        done = M.pmap(lambda job: measure(job[1][0], job[1][1], Path(tmp), job[1][2]), jobs)
        for (key, _), v in zip(jobs, done):
            res[key] = v
            if len(key) == 2:
                print(f"{key[0]:11} {key[1]:17} top-1 {100 * v['top1_agreement']:.2f} %  int8 acc {v.get('int8_accuracy')}")
        if "digits-gin" in names and "digits-gin" not in skipped:
            graphs, _ = M.inputs("digits-gin")
            tgnn = M.MODELS / "digits-gin" / "digits-gin.tgnn"
            out = Path(tmp) / "plot.svg"
            M.sh(M.cli() + ["verify", str(M.MODELS / "digits-gin" / "model.safetensors"), str(tgnn),
                            str(graphs), "--per-layer", "--plot", str(out)])
            res["plot"] = out.read_text()
    return res, skipped


def blocks(res: dict, names: list[str], complete: bool) -> tuple[list[str], list[str]]:
    cal = ["| model | calibration | float acc. | int8 acc. | top-1 agreement | output SQNR dB | lowest hidden own SQNR dB | mean own SQNR dB | lowest own SQNR dB |",
           "|---|---|---|---|---|---|---|---|---|"]
    deg = ["| model | calibration | top-1 agreement | aggregation op | SQNR dB (int8 / own) | by in-degree (nodes): int8 / own SQNR dB |",
           "|---|---|---|---|---|---|"]
    for n in names:
        for m in METHODS:
            if (n, m) in res:
                cal.append(method_row(n, m, res[(n, m)]))
        for m in DEGREE_METHODS:
            if (n, m) in res:
                deg.extend(degree_rows(n, m, res[(n, m)]))
        for m in DEGREE_METHODS:
            if (n, m, "extra") in res:
                deg.extend(degree_rows(n, f"{m}` `{' '.join(DEGREE_EXTRA[n])}", res[(n, m, "extra")]))
    if complete and names:
        mean = {m: sum(res[(n, m)]["top1_agreement"] for n in names) / len(names) for m in METHODS}
        own = {}
        for m in METHODS:
            xs = [o["own_sqnr_db"] for n in names for o in res[(n, m)]["per_op"] if o["own_sqnr_db"] is not None]
            own[m] = sum(xs) / len(xs)
        best = max(METHODS, key=lambda m: (round(mean[m], 6), round(own[m], 3)))
        cal.append("")
        cal.append(f"Mean over the {len(names)} models: top-1 agreement "
                   + ", ".join(f"`{m}` {100 * mean[m]:.2f} %" for m in METHODS)
                   + "; own SQNR of all ops " + ", ".join(f"`{m}` {own[m]:.2f} dB" for m in METHODS)
                   + f". Highest agreement (ties: higher own SQNR): **`{best}`**.")
    return cal, deg


def degree_rows(name: str, method: str, v: dict) -> list[str]:
    rows = []
    for o in v["per_op"]:
        if o["op"] not in AGG_OPS or "by_degree" not in o:
            continue
        ch = sum(b["values"] for b in o["by_degree"]) // max(1, o["rows"])
        cells = " · ".join(f"{b['in_degree']} ({b['values'] // max(1, ch)}): {db(b['sqnr_db'])} / {db(b['own_sqnr_db'])}"
                           for b in o["by_degree"])
        rows.append(f"| {name} | `{method}` | {pct(v['top1_agreement'])} | {o['index']} `{o['spec']}` | {db(o['sqnr_db'])} / {db(o['own_sqnr_db'])} | {cells} |")
    return rows


def replace(text: str, tag: str, lines: list[str]) -> str:
    b, e = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    head, rest = text.split(b, 1)
    return head + b + "\n" + "\n".join(lines) + "\n" + e + rest.split(e, 1)[1]


def current(text: str, tag: str) -> list[str]:
    b, e = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    return text.split(b, 1)[1].split(e, 1)[0].strip("\n").splitlines()


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("write", "check"):
        print(__doc__)
        return 2
    names = sys.argv[2:] or M.classifiers()
    res, skipped = measure_all(names)
    measured = [n for n in names if n not in skipped]
    cal, deg = blocks(res, measured, not skipped)
    text = DOC.read_text()
    if sys.argv[1] == "write":
        if skipped:
            # Keep the committed rows of models that could not be measured here.
            for tag, new in (("calibration", cal), ("degree", deg)):
                cur = current(text, tag)
                old = [r for r in cur[2:] if r.startswith("| ") and r.split("|")[1].strip() in skipped]
                order = M.classifiers()
                new[2:] = sorted(new[2:] + old, key=lambda r: order.index(r.split("|")[1].strip()))
                new += [r for r in cur[2:] if not r.startswith("| ")]
        text = replace(replace(text, "calibration", cal), "degree", deg)
        DOC.write_text(text)
        if "plot" in res:
            PLOT.write_text(res["plot"])
        print(f"wrote {DOC.relative_to(ROOT)}" + (f" and {PLOT.relative_to(ROOT)}" if "plot" in res else ""))
        return 0
    ok = True
    for tag, new in (("calibration", cal), ("degree", deg)):
        rows = lambda ls: [r for r in ls if r.startswith("| ")]
        have = [r for r in rows(current(text, tag)[2:]) if r.split("|")[1].strip() in measured]
        want = rows(new[2:])
        if not skipped:
            have, want = current(text, tag)[2:], new[2:]
        if have != want:
            ok = False
            print(f"FAIL docs/quantization.md {tag} block differs from the measurement:")
            for r in sorted(set(have) ^ set(want)):
                print(("  committed: " if r in have else "  measured:  ") + r)
    if "plot" in res and PLOT.read_text() != res["plot"]:
        ok = False
        print(f"FAIL {PLOT.relative_to(ROOT)} differs from `tinygnn verify --plot` on digits-gin")
    print(f"calibration report: {'ok' if ok else 'FAILED'} ({', '.join(measured)} measured"
          + (f"; {', '.join(skipped)} skipped" if skipped else "") + ")")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
