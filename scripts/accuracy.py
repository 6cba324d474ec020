#!/usr/bin/env python3
"""The accuracy table: every bundled model as int8, int4, mixed precision and below four bits.

    accuracy.py          convert every model three ways, verify each, write docs/accuracy.md
    accuracy.py --check  do the same into memory and require docs/accuracy.md to be identical
    accuracy.py --check --quick
                         the same without the int4 rounding comparison (six conversions per model
                         fewer) and the per-layer/per-channel comparison (two average-bits
                         searches fewer; what CI runs), which are then left out of the comparison too

Per model (its own convert flags from goals.json are kept):
  * int8:  `tinygnn convert` as the model is bundled;
  * int4:  the same with `--weights int4` (default rounding `gpfq-seq`; for comparison also with
           `--int4-bias-correction on`, with `--int4-scale output`, with `--int4-recalibrate on`, with `--int4-rounding gpfq`, with `--int4-rounding nearest`,
           and with that and `--int4-scale max`); the rounding variants are also verified on the
           calibration graphs (top-1 agreement with float there: the measure a choice is made on);
  * mixed: the same with `--flash-budget B`, B the midpoint of the int8 and int4 file sizes
           (layers switched to int4, least sensitive first, until the file fits);
  * below four bits: `--weights int2` and `--avg-weight-bits 2`; and `--avg-weight-bits 3`
           with `--precision-grain layer` and with `--precision-grain channel`;
  * A4: int8 weights with int4 activations, `--activations int4` (accuracy and arena bytes);
  * A4/B: int4 activations per tensor, `--arena-budget B`, B the midpoint of the int8 and A4 arenas.
Each is measured with `tinygnn verify --json` on the model's evaluation graphs. Models whose
data is missing (Cora without $TINYGNN_DATA) are skipped visibly; the document is then neither
written nor checked (a SKIP line), so it always covers every model. Nothing is typed by hand.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models as M  # noqa: E402

if os.environ.get("TINYGNN_CLI"):  # a prebuilt CLI instead of target/release/tinygnn
    M.cli = lambda: [os.environ["TINYGNN_CLI"]]

DOC = M.ROOT / "docs" / "accuracy.md"
# `--check --quick` (CI) leaves out the int4 rounding comparison: these conversions, the
# calibration-graph verifications of the int4 ones, and the section between the two headings.
QUICK = False
VARIANTS = ("int4bc", "int4out", "int4rc", "int4gpfq", "int4near", "int4max")
VARIANTS_HEADING = "## int4 rounding and scales"
NEXT_HEADING = "## Below four bits"
# ... and the per-layer/per-channel comparison at 3 bits (two average-bits searches per model).
GRAIN_HEADING = "## Between two and four bits: per layer or per channel"
GRAIN_NEXT = "## int4 activations"
GRAIN_BITS = "3"
# The accuracy goals: (int8 max drop, int4 max drop) in percentage points.
GOALS = {"cora-gcn": (0.3, 1.5)}
# int8 weights with int4 activations (`--activations int4`): max drop in percentage points.
A4_GOALS = {"cora-gcn": 1.0}
DEFAULT_GOAL = (1.0, 3.0)
# At most 2 bits per weight on average (`--avg-weight-bits 2`): max drop in percentage points.
LOW_GOALS = {"cora-gcn": 1.5}


def convert(name: str, graphs: Path, calib: Path, out: Path, extra: list[str]) -> str:
    return M.sh(M.convert_args(name, graphs, calib, out) + extra).stdout


def precision_line(stdout: str) -> str:
    m = re.search(r"^weight precision: (.*)$", stdout, re.M)
    if not m:
        return "all int8"
    layers = [p.split("=") for p in m.group(1).split(", ")]
    int4 = [n for n, b in layers if b == "int4"]
    if len(int4) == len(layers):
        return "all int4"
    return "int4: " + ", ".join(f"`{n}`" for n in int4) if int4 else "all int8"


def plan_line(stdout: str) -> str:
    """Each layer's weight precision, as `convert` chose it ("all int2" when uniform)."""
    m = re.search(r"^weight precision: (.*)$", stdout, re.M)
    if not m:
        return "all int8"
    layers = [p.split("=") for p in m.group(1).split(", ")]
    kinds = {b for _, b in layers}
    if len(kinds) == 1:
        return f"all {kinds.pop()}"
    return ", ".join(f"`{n}` {b}" for n, b in layers)


def arena_line(stdout: str) -> int:
    """The arena bytes at capacity that `convert` prints."""
    m = re.search(r"^arena at capacity: (\d+) bytes", stdout, re.M)
    return int(m.group(1)) if m else -1


def measure(name: str) -> dict | None:
    got = M.inputs(name)
    if got is None:
        print(f"SKIP {name}: TINYGNN_DATA is not set (Planetoid data needed)")
        return None
    graphs, calib = got
    row: dict = {"name": name}
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {}
        files: dict[bytes, str] = {}
        for kind, extra in [
            ("int8", []),
            ("int4", ["--weights", "int4"]),
            ("int4bc", ["--weights", "int4", "--int4-bias-correction", "on"]),
            ("int4out", ["--weights", "int4", "--int4-scale", "output"]),
            ("int4rc", ["--weights", "int4", "--int4-recalibrate", "on"]),
            ("int4gpfq", ["--weights", "int4", "--int4-rounding", "gpfq"]),
            ("int4near", ["--weights", "int4", "--int4-rounding", "nearest"]),
            ("int4max", ["--weights", "int4", "--int4-rounding", "nearest", "--int4-scale", "max"]),
            ("int2", ["--weights", "int2"]),
            ("avg2", ["--avg-weight-bits", "2"]),
            ("a4", ["--activations", "int4"]),
        ]:
            if QUICK and kind in VARIANTS:
                continue
            out = Path(tmp) / f"{kind}.tgnn"
            stdout = convert(name, graphs, calib, out, extra)
            sizes[kind] = out.stat().st_size
            # A conversion that gives the same bytes as an earlier one (e.g. a
            # 2-bit average that chose int2 everywhere) has its measurements.
            same = files.setdefault(out.read_bytes(), kind)
            if kind in ("int8", "a4"):
                row[f"{kind}_arena"] = arena_line(stdout)
            if kind == "a4":
                m = re.search(r"^activations: int4 for (\d+) tensor", stdout, re.M)
                row["a4_tensors"] = int(m.group(1)) if m else 0
            if kind == "avg2":
                m = re.search(r"^average weight bits: target \S+, chosen plan ([0-9.]+)", stdout, re.M)
                row["avg2_bits"] = m.group(1) if m else "?"
                row["avg2_layers"] = plan_line(stdout)
            row[kind] = dict(row[same]) if same != kind else M.verify(name, out, graphs)
            if kind.startswith("int4") and "calib_top1" not in row[kind] and not QUICK:
                row[kind]["calib_top1"] = M.verify(name, out, calib)["top1_agreement"]
        budget = (sizes["int8"] + sizes["int4"]) // 2
        out = Path(tmp) / "mixed.tgnn"
        stdout = convert(name, graphs, calib, out, ["--flash-budget", str(budget)])
        sizes["mixed"] = out.stat().st_size
        row["mixed"] = M.verify(name, out, graphs)
        row["mixed_layers"] = precision_line(stdout)
        row["budget"] = budget
        # Per tensor: int4 activations to the arena midway between int8's and A4's.
        arena_budget = (row["int8_arena"] + row["a4_arena"]) // 2
        out = Path(tmp) / "a4b.tgnn"
        stdout = convert(name, graphs, calib, out, ["--arena-budget", str(arena_budget)])
        same = files.setdefault(out.read_bytes(), "a4b")
        row["a4b"] = dict(row[same]) if same != "a4b" else M.verify(name, out, graphs)
        row["a4b_arena"] = arena_line(stdout)
        m = re.search(r"^activations: int4 for (\d+) tensor", stdout, re.M)
        row["a4b_tensors"] = int(m.group(1)) if m else 0
        row["arena_budget"] = arena_budget
        row["sizes"] = sizes
        if name in A4_GOALS:
            # The goal's harder reading: int4 activations with 2-bit average weights too.
            out = Path(tmp) / "a4w2.tgnn"
            convert(name, graphs, calib, out, ["--avg-weight-bits", "2", "--activations", "int4"])
            row["a4w2"] = M.verify(name, out, graphs)
        if not QUICK:
            measure_grains(name, graphs, calib, Path(tmp), row)
    row["float"] = row["int8"]["float_accuracy"]
    row["rows"] = row["int8"]["accuracy_rows"]
    return row


def measure_grains(name: str, graphs: Path, calib: Path, tmp: Path, row: dict) -> None:
    """`--avg-weight-bits GRAIN_BITS` per layer and per channel: bits, evaluation accuracy,
    and the per-channel search's report (calibration agreement of both, layers split)."""
    for kind, grain in (("g_layer", "layer"), ("g_channel", "channel")):
        out = tmp / f"{kind}.tgnn"
        j = json.loads(convert(name, graphs, calib, out,
                               ["--avg-weight-bits", GRAIN_BITS, "--precision-grain", grain, "--json"]))
        row[kind] = M.verify(name, out, graphs)
        row[kind]["bits"] = j["avg_weight_bits"]["chosen"]
        row[kind]["report"] = j["avg_weight_bits"]["per_channel"]


def grain_lines(rows: list[dict]) -> list[str]:
    pct = lambda x: f"{100 * x:.2f} %"
    lines = [
        "",
        GRAIN_HEADING,
        "",
        f"`--avg-weight-bits {GRAIN_BITS}` with `--precision-grain layer` (8, 4 or 2 bits per layer) and",
        "`--precision-grain channel` (per group of output channels, at most four groups a layer; a",
        "split layer becomes one op per precision and a concat, see",
        "[quantization.md §13](quantization.md#13-below-four-bits-int2-ternary-and-an-average-bits-target)).",
        "*calib agreement* is the top-1 agreement with float on the calibration graphs, which the default",
        "`--precision-grain best` compares to keep one of the two (ties: the lower output error);",
        "accuracy is on the evaluation rows as above. *split* lists the layers the per-channel plan",
        "splits, with the channels at each precision.",
        "",
        "| model | per layer: bits, accuracy (Δ pp) | per channel: bits, accuracy (Δ pp) | calib agreement per layer / per channel | `best` keeps | split |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if QUICK:  # not measured (and cut before the comparison)
            continue
        rep = r["g_channel"]["report"]
        if rep is None:
            keeps, split = "per layer (every layer int2)", "–"
            agree = "–"
        else:
            keeps = "per channel" if rep["better"] else "per layer"
            agree = f"{pct(rep['per_layer_top1_agreement'])} / {pct(rep['top1_agreement'])}"
            parts = []
            for layer in rep["groups"]:
                if len(layer["groups"]) > 1:
                    g = ", ".join(f"{x['weights']} {len(x['channels'])}" for x in layer["groups"])
                    parts.append(f"`{layer['layer']}` ({g})")
            split = "; ".join(parts) or "none"
        lines.append(
            f"| {r['name']} "
            + "".join(f"| {r[k]['bits']:.3f}, {pct(r[k]['int8_accuracy'])} ({drop(r, k):+.2f}) "
                      for k in ("g_layer", "g_channel"))
            + f"| {agree} | {keeps} | {split} |"
        )
    return lines


def link_models() -> list[str]:
    """Bundled models judged by AUC (link prediction: `max_auc_drop_pp` in goals.json)."""
    return sorted(p.parent.name for p in M.MODELS.glob("*/goals.json")
                  if "max_auc_drop_pp" in json.loads(p.read_text()))


def measure_link(name: str) -> dict | None:
    """int8, int4 (default rounding) and mixed for a link model: the AUC of each against its
    `edge_label` pairs, from `tinygnn verify --json`."""
    got = M.inputs(name)
    if got is None:
        print(f"SKIP {name}: TINYGNN_DATA is not set (Planetoid data needed)")
        return None
    graphs, calib = got
    row: dict = {"name": name, "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, extra in [("int8", []), ("int4", ["--weights", "int4"])]:
            out = Path(tmp) / f"{kind}.tgnn"
            convert(name, graphs, calib, out, extra)
            row["sizes"][kind] = out.stat().st_size
            row[kind] = M.verify(name, out, graphs)
        budget = (row["sizes"]["int8"] + row["sizes"]["int4"]) // 2
        out = Path(tmp) / "mixed.tgnn"
        stdout = convert(name, graphs, calib, out, ["--flash-budget", str(budget)])
        row["sizes"]["mixed"] = out.stat().st_size
        row["mixed"] = M.verify(name, out, graphs)
        row["mixed_layers"] = precision_line(stdout)
        row["budget"] = budget
    row["float"] = row["int8"]["float_auc"]
    return row


def render_link(rows: list[dict]) -> list[str]:
    pct = lambda x: f"{100 * x:.2f} %"
    auc_drop = lambda r, k: 100 * (r["float"] - r[k]["int8_auc"])
    lines = [
        "",
        "## Link prediction (AUC)",
        "",
        "Models whose output scores node pairs are judged by the ROC AUC of the scores against the",
        "graphs' `edge_label` (the held-out positive and negative pairs), with the same conversions as",
        "above; Δ is the AUC drop from float in percentage points, the goal the one of every model",
        "(int8 within 1 pp, int4 within 3 pp).",
        "",
        "| model | float AUC | int8 AUC (Δ pp) | int4 AUC (Δ pp) | mixed AUC (Δ pp) | bytes int8 / int4 / mixed (budget) | mixed: layers int4 | pairs | goals |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = r["sizes"]
        g8, g4 = DEFAULT_GOAL
        ok = all(auc_drop(r, k) <= g + 1e-9 for k, g in (("int8", g8), ("int4", g4), ("mixed", g4)))
        lines.append(
            f"| {r['name']} | {pct(r['float'])} "
            + "".join(f"| {pct(r[k]['int8_auc'])} ({auc_drop(r, k):+.2f}) " for k in ("int8", "int4", "mixed"))
            + f"| {s['int8']} / {s['int4']} / {s['mixed']} ({r['budget']}) | {r['mixed_layers']} "
            + f"| {r['int8']['auc_pairs']} | {'met' if ok else 'MISSED'} |"
        )
    return lines


def drop(row: dict, kind: str) -> float:
    return 100 * (row["float"] - row[kind]["int8_accuracy"])


def render(rows: list[dict], links: list[dict]) -> str:
    pct = lambda x: f"{100 * x:.2f} %"
    lines = [
        "# Accuracy of int8, int4 and mixed-precision weights",
        "",
        "Generated by `scripts/accuracy.py` (checked by `scripts/accuracy.py --check`); no number here is",
        "typed by hand. Every model keeps its own convert flags (`models/<name>/goals.json`); *int4* adds",
        "`--weights int4`, *mixed* adds `--flash-budget B` with `B` the midpoint of the int8 and int4 file",
        "sizes (layers switched to int4 least sensitive first, sensitivity measured on the calibration",
        "graphs; see [quantization.md](quantization.md#int4-weights-and-mixed-precision)). Accuracy is",
        "`tinygnn verify` on the model's evaluation rows (Cora: the 1000 test nodes; karate: the 30 test",
        "nodes, one node = 3.33 pp; digits: all 359 test graphs); Δ is the drop from float in percentage points.",
        "",
        "| model | float | int8 (Δ pp) | int4 (Δ pp) | mixed (Δ pp) | bytes int8 / int4 / mixed (budget) | mixed: layers int4 | top-1 agreement int8 / int4 / mixed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = r["sizes"]
        lines.append(
            f"| {r['name']} | {pct(r['float'])} "
            + "".join(f"| {pct(r[k]['int8_accuracy'])} ({drop(r, k):+.2f}) " for k in ("int8", "int4", "mixed"))
            + f"| {s['int8']} / {s['int4']} / {s['mixed']} ({r['budget']}) | {r['mixed_layers']} "
            + f"| {' / '.join(pct(r[k]['top1_agreement']) for k in ('int8', 'int4', 'mixed'))} |"
        )
    lines += [
        "",
        "## int4 rounding and scales",
        "",
        "All-int4 weights seven ways: the defaults (`--int4-rounding gpfq-seq --int4-scale mse`: layer by",
        "layer, GPFQ with error feedback on the aggregated input the int4 model itself gives each layer on",
        "the calibration graphs; scales clipped to the least squared rounding error), the same with",
        "`--int4-bias-correction on` (each channel's bias shifted by the mean output error left), with",
        "`--int4-scale output` (each channel's clipping chosen by the layer's output error instead), with",
        "`--int4-recalibrate on` (hidden int4 layers' output ranges re-measured on the int4 model's output),",
        "plain GPFQ on the float input (`--int4-rounding gpfq`, the default before), round to nearest with",
        "the same scales (`--int4-rounding nearest`), and round to nearest with plain `max|W| / 7` scales",
        "(`--int4-rounding nearest --int4-scale max`). *calib agreement* is the top-1 agreement with float",
        "on the calibration graphs (all nodes for Cora and karate, `calib.safetensors` for digits): the",
        "default was chosen on it, the test accuracy only measures: `gpfq-seq` is at least the previous",
        "default `gpfq` on every model there; bias correction, output scales, recalibration and `nearest + max` each win",
        "somewhere and",
        "lose elsewhere (see docs/quantization.md §12).",
        "",
        "| model | gpfq-seq (Δ pp) | gpfq-seq + bias corr. (Δ pp) | gpfq-seq + output scales (Δ pp) | gpfq-seq + recalibrated ranges (Δ pp) | gpfq (Δ pp) | nearest + mse (Δ pp) | nearest + max (Δ pp) | calib agreement gpfq-seq / +bias corr. / +output scales / +recalibrated / gpfq / nearest+mse / nearest+max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    kinds = ("int4", "int4bc", "int4out", "int4rc", "int4gpfq", "int4near", "int4max")
    for r in rows:
        if QUICK:  # not measured (and cut before the comparison)
            continue
        lines.append(
            f"| {r['name']} "
            + "".join(f"| {pct(r[k]['int8_accuracy'])} ({drop(r, k):+.2f}) " for k in kinds)
            + f"| {' / '.join(pct(r[k]['calib_top1']) for k in kinds)} |"
        )
    lines += [
        "",
        "## Below four bits",
        "",
        "All-int2 weights (`--weights int2`: levels −2..=1 × a per-channel scale, each channel also trying",
        "the ternary levels and keeping whichever gives the smaller output error) and a budget of two",
        "bits per weight on average (`--avg-weight-bits 2`: 8, 4 or 2 bits per layer, least sensitive",
        "layers lowest; *bits* is the average of the chosen plan, weighted by weight count). Same",
        "evaluation rows as above.",
        "",
        "| model | int2 (Δ pp) | avg 2 bits (Δ pp) | bytes int8 / int2 / avg 2 | avg 2: bits, layers | top-1 agreement int2 / avg 2 |",
        "|---|---|---|---|---|---|",
    ]
    low = ("int2", "avg2")
    for r in rows:
        s = r["sizes"]
        lines.append(
            f"| {r['name']} "
            + "".join(f"| {pct(r[k]['int8_accuracy'])} ({drop(r, k):+.2f}) " for k in low)
            + f"| {s['int8']} / {s['int2']} / {s['avg2']} "
            + f"| {r['avg2_bits']}: {r['avg2_layers']} "
            + f"| {' / '.join(pct(r[k]['top1_agreement']) for k in low)} |"
        )
    lines += grain_lines(rows)
    lines += [
        "",
        "## int4 activations",
        "",
        "int8 weights with int4 activations (`--activations int4`, column A4): every tensor whose producer",
        "and readers take int4 tensors (`Linear`, `GcnConv`, `SageConv`, `GinAggregate`, `Add`, `Concat`, `Act`; the model input included) is stored with 16",
        "levels, two values per byte in the arena; model outputs and the tensors around other ops stay int8",
        "(see [quantization.md §14](quantization.md#14-int4-activations)). *int4 tensors* counts them (0:",
        "the model is unchanged); the arena is `Model::arena_bytes` at the model's capacity, as `convert`",
        "prints it. Same evaluation rows as above.",
        "",
        "| model | float | int8 (Δ pp) | A4 (Δ pp) | int4 tensors | arena bytes int8 / A4 | top-1 agreement int8 / A4 | goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        g = A4_GOALS.get(r["name"])
        d = drop(r, "a4")
        goal = f"≤ {g} pp: {'met' if d <= g + 1e-9 else 'MISSED'}" if g is not None else "–"
        lines.append(
            f"| {r['name']} | {pct(r['float'])} "
            + "".join(f"| {pct(r[k]['int8_accuracy'])} ({drop(r, k):+.2f}) " for k in ("int8", "a4"))
            + f"| {r['a4_tensors']} | {r['int8_arena']} / {r['a4_arena']} "
            + f"| {' / '.join(pct(r[k]['top1_agreement']) for k in ('int8', 'a4'))} | {goal} |"
        )
    combined = [
        f"{r['name']} {pct(r['a4w2']['int8_accuracy'])} ({drop(r, 'a4w2'):+.2f} pp: "
        + f"{'met' if drop(r, 'a4w2') <= A4_GOALS[r['name']] + 1e-9 else 'MISSED'})"
        for r in rows if "a4w2" in r
    ]
    lines += [
        "",
        "Goal: Cora GCN A4 within 1.0 pp of float. The same with at most 2 bits per weight on average",
        f"as well (`--avg-weight-bits 2 --activations int4`): {', '.join(combined) or '–'}.",
        "",
        "Per tensor (`--arena-budget B`, column A4/B): the same candidates made int4 one at a time, least",
        "harmful on the calibration graphs first, until the arena fits B, here the midpoint of the int8 and",
        "A4 arenas; the tensors the arena then does not need stay int8.",
        "",
        "| model | float | A4 (Δ pp) | A4/B (Δ pp) | int4 tensors A4 / A4/B | arena bytes B / A4/B | top-1 agreement A4 / A4/B |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {pct(r['float'])} "
            + "".join(f"| {pct(r[k]['int8_accuracy'])} ({drop(r, k):+.2f}) " for k in ("a4", "a4b"))
            + f"| {r['a4_tensors']} / {r['a4b_tensors']} | {r['arena_budget']} / {r['a4b_arena']} "
            + f"| {' / '.join(pct(r[k]['top1_agreement']) for k in ('a4', 'a4b'))} |"
        )
    lines += [
        "",
        "## Goals",
        "",
        "Cora GCN: int8 within 0.3 pp of float, int4 within 1.5 pp, at most 2 bits per weight on average",
        "within 1.5 pp; every other model: int8 within 1 pp, int4 within 3 pp. A negative drop (quantized",
        "better than float) meets any goal.",
        "",
        "| model | int8 goal | int8 | int4 goal | int4 | mixed (int4 goal) | avg 2 bits |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        g8, g4 = GOALS.get(r["name"], DEFAULT_GOAL)
        verdict = lambda d, g: f"{d:+.2f} pp: {'met' if d <= g + 1e-9 else 'MISSED'}"
        if r["sizes"]["int4"] == r["sizes"]["int8"]:
            # No layer of this model takes int4 weights (e.g. GATConv): nothing to judge.
            na = "n/a: no layer takes int4 weights"
            lines.append(f"| {r['name']} | ≤ {g8} pp | {verdict(drop(r, 'int8'), g8)} | ≤ {g4} pp | {na} | {na} | {na} |")
            continue
        g2 = LOW_GOALS.get(r["name"])
        low = f"{verdict(drop(r, 'avg2'), g2)} (goal ≤ {g2} pp)" if g2 is not None else "–"
        lines.append(
            f"| {r['name']} | ≤ {g8} pp | {verdict(drop(r, 'int8'), g8)} | ≤ {g4} pp "
            f"| {verdict(drop(r, 'int4'), g4)} | {verdict(drop(r, 'mixed'), g4)} | {low} |"
        )
    lines += render_link(links)
    return "\n".join(lines) + "\n"


def without_variants(text: str) -> str:
    """The document without its int4 rounding comparison and its per-layer/per-channel
    comparison (what `--quick` does not measure)."""
    for start, end in ((VARIANTS_HEADING, NEXT_HEADING), (GRAIN_HEADING, GRAIN_NEXT)):
        a, b = text.find(start), text.find(end)
        text = text[:a] + text[b:] if 0 <= a < b else text
    return text


def main() -> int:
    global QUICK
    check = "--check" in sys.argv[1:]
    QUICK = "--quick" in sys.argv[1:]
    if QUICK and not check:
        print("accuracy.py: --quick only with --check (the document needs every table)")
        return 2
    names = M.classifiers()
    for n in names + link_models():
        M.inputs(n)
    rows = M.pmap(measure, names)
    links = M.pmap(measure_link, link_models())
    if any(r is None for r in rows + links):
        print("SKIP accuracy: some models were skipped; docs/accuracy.md is not " + ("checked" if check else "written"))
        return 0
    text = render(rows, links)
    committed = DOC.read_text()
    if QUICK:
        text, committed = without_variants(text), without_variants(committed)
    print(text)
    if check:
        if committed != text:
            print("FAIL docs/accuracy.md differs from what scripts/accuracy.py measures now (run it and commit)")
            return 1
        print("ok   docs/accuracy.md matches the measurements"
              + (" (every table but the int4 rounding and per-channel comparisons: --quick)" if QUICK else ""))
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(M.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
