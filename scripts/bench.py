#!/usr/bin/env python3
"""Runs tinygnn's benchmarks and writes docs/benchmarks.md (called by scripts/bench.sh, which
sets up the Python environments and the tools; run that, not this).

    bench.py --out docs/benchmarks.md           # everything: emulated boards + host comparison
    bench.py --smoke --out FILE                 # CI: karate-gcn (host comparison, one QEMU M4 run)

Environment (set by bench.sh): TINYGNN_CLI (the tinygnn binary, release profile),
TINYGNN_PYTHON (the project venv: torch + PyG), TINYGNN_DATA (Planetoid; the Cora model is
skipped, visibly, without it). This script runs in the bench venv (tensorflow-cpu,
tflite-micro). Every number in the document is parsed from the output of a command that
this run executed; the document names each command.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
PY = sys.executable


def log(msg):
    print(f"bench: {msg}", flush=True)


def sh(cmd, env=None, check=True, quiet_stderr=False):
    """Runs `cmd` (a list) from the repository root and returns its stdout."""
    log("$ " + " ".join(shlex.quote(str(c)) for c in cmd))
    r = subprocess.run([str(c) for c in cmd], cwd=ROOT, env={**os.environ, **(env or {})},
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        raise SystemExit(f"bench: command failed (exit {r.returncode}): {' '.join(map(str, cmd))}")
    if not quiet_stderr and r.returncode != 0:
        sys.stderr.write(r.stderr[-2000:])
    return r.stdout if check else (r.returncode, r.stdout, r.stderr)


def rel(p):
    p = Path(p)
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit("bench: no JSON line in the output")


def fmt_int(v):
    return f"{int(v):,}" if v is not None else "–"


# ---------------------------------------------------------------- machine facts

def first_line(cmd):
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return r.stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "not available"


def machine_facts(cli):
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = first_line(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           stdout=subprocess.PIPE, text=True).stdout.strip()
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "cpu": cpu, "cores": os.cpu_count(), "load": f"{load:.1f}",
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "rustc": first_line(["rustc", "--version"]),
        "qemu": first_line(["qemu-system-arm", "--version"]),
        "valgrind": first_line(["valgrind", "--version"]),
        "python": platform.python_version(),
        "cli": rel(cli),
    }


# ---------------------------------------------------------------- emulated boards

BOARD_LINE = re.compile(r"^\s+(m4|m0): (\S+)")


def parse_qemu_run(text):
    """Rows from scripts/qemu-run.sh's per-board lines (see that script)."""
    rows, name = [], None
    for line in text.splitlines():
        m = re.match(r"^== (\S+): model (\d+) B, inputs (\d+) B", line)
        if m:
            name, model_b, inputs_b = m.group(1), int(m.group(2)), int(m.group(3))
            continue
        m = BOARD_LINE.match(line)
        if not m or name is None:
            continue
        row = {"model": name, "board": m.group(1), "verdict": m.group(2),
               "model_bytes": model_b, "inputs_bytes": inputs_b}
        if row["verdict"] == "SKIP":
            why = re.search(r"overflowed by (\d+) bytes", line)
            region = re.search(r"region '([A-Z0-9]+)'", line)
            row["skip"] = (f"{region.group(1) if region else '?'} overflowed by {int(why.group(1)):,} B"
                           if why else line.split("SKIP", 1)[1].strip())
        for key, pat in {"samples": "samples", "insn_max": "max", "insn_total": "total", "text": "text",
                         "rodata": "rodata", "data": "data", "bss": "bss", "ram2": "ram2", "arena": "arena",
                         "stack": "stack", "acc": "acc", "state": "state"}.items():
            # Whole words only: "data=" must not match inside "rodata=".
            mm = re.search(rf"(?<![\w/]){pat}=(\d+/\d+|\d+)", line)
            if mm:
                row[key] = mm.group(1) if key == "acc" else int(mm.group(1))
        rows.append(row)
    return rows


def boards(args, env):
    if args.smoke:  # one run, to check the parsing on real output
        runs, notes = [["--board", "m4", "models/karate-gcn"]], ["other models: not run (`--smoke`)"]
        return run_boards(runs, env) + (notes,)
    runs = [["--board", "all", "models/karate-gcn"],
            ["--board", "m4", "--split", "--i8", "models/digits-gin"],
            ["--board", "m0", "--split", "--i8", "--max", "45", "models/digits-gin"],
            ["--board", "m4", "--split", "--i8", "models/digits-gps"],
            # A recurrent cell: the 120 steps of its sequence, the state carried on the device.
            ["--board", "m4", "models/sensor-tgcn"]]
    # shapes-dgcnn: clouds of 64-256 points; the M4 runs 4 spread over the range, the M0 the
    # 4 largest of at most 92 points (the largest whose arena links: scripts/areas/boards.sh).
    d = ROOT / ".cache" / "bench" / "shapes"
    d.mkdir(parents=True, exist_ok=True)
    sel = [os.environ.get("TINYGNN_PYTHON", sys.executable), "models/shapes-dgcnn/select_clouds.py",
           "models/shapes-dgcnn/graphs.safetensors"]
    sh(sel + [str(d / "m4.safetensors"), "spread", "4"])
    sh(sel + [str(d / "m0.safetensors"), "upto", "4", "92"])
    runs += [["--board", "m4", "--split", f"models/shapes-dgcnn/shapes-dgcnn.tgnn:{rel(d / 'm4.safetensors')}"],
             ["--board", "m0", "--split", f"models/shapes-dgcnn/shapes-dgcnn.tgnn:{rel(d / 'm0.safetensors')}"]]
    notes = []
    cora = ("cora-gcn", "cora-sage", "cora-appnp", "cora-gat", "cora-link")
    if os.environ.get("TINYGNN_DATA"):
        for name in cora:
            graphs = cora_inputs(name)
            runs.append(["--board", "all", "--sparse", f"models/{name}/{name}.tgnn:{rel(graphs)}"])
    else:
        notes.append(", ".join(cora) + ": SKIP (TINYGNN_DATA not set)")
    return run_boards(runs, env) + (notes,)


def run_boards(runs, env):
    rows, cmds = [], []
    for r in runs:
        cmd = ["scripts/qemu-run.sh"] + r
        cmds.append(" ".join(cmd))
        rc, out, err = sh(cmd, env=env, check=False)
        got = parse_qemu_run(out)
        if rc != 0 or any(x["verdict"] not in ("PASS", "SKIP") for x in got) or not got:
            sys.stderr.write(out[-3000:] + err[-3000:])
            raise SystemExit(f"bench: {' '.join(cmd)} failed: device bytes must equal host bytes")
        for x in got:
            if x["verdict"] == "PASS" and any(k not in x for k in ("insn_max", "text", "rodata", "bss", "arena")):
                raise SystemExit(f"bench: could not parse scripts/qemu-run.sh's line for {x['model']} {x['board']}: {x}")
        rows += got
    return rows, cmds


def kernel_bench(env):
    script = ROOT / "scripts" / "kernel-bench.sh"
    if not script.exists():
        return None, []
    rows = parse_kernel_bench(sh([script], env=env))
    if not rows:
        raise SystemExit("bench: scripts/kernel-bench.sh printed no 'kernel-bench …' line")
    return rows, ["scripts/kernel-bench.sh"]


def parse_kernel_bench(text):
    """Rows from the lines `kernel-bench BOARD KERNEL rows=R cols=C macs=N instructions=M per_mac=X.XXX`."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"^kernel-bench (\S+) (\S+) rows=(\d+) cols=(\d+) macs=(\d+) instructions=(\d+) per_mac=([\d.]+)",
                     line.strip())
        if m:
            rows.append({"board": m.group(1), "kernel": m.group(2), "rows": int(m.group(3)),
                         "cols": int(m.group(4)), "macs": int(m.group(5)), "insn": int(m.group(6)),
                         "per_mac": m.group(7)})
    return rows


# ---------------------------------------------------------------- host comparison

def cora_inputs(name):
    d = ROOT / ".cache" / "inputs" / name
    g = d / "graphs.safetensors"
    if not g.exists():
        sh([os.environ["TINYGNN_PYTHON"], "models/make_inputs.py", name, d])
    return g


def callgrind(cmd, toggle, reps):
    """Instructions inside `toggle` (and its callees) per call, over `reps` calls."""
    out_file = CACHE / "callgrind.out"
    full = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", "--collect-atstart=no",
            f"--toggle-collect={toggle}"] + cmd
    rc, out, err = sh(full, check=False, quiet_stderr=True)
    m = re.search(r"Collected : (\d+)", err)
    if rc != 0 or not m:
        sys.stderr.write(err[-3000:])
        raise SystemExit(f"bench: callgrind run failed: {' '.join(map(str, full))}")
    total = int(m.group(1))
    if total == 0:
        raise SystemExit(f"bench: callgrind counted nothing inside {toggle}")
    return total / reps, " ".join(shlex.quote(str(c)) if " " in str(c) or "(" in str(c) else str(c)
                                  for c in full[:2] + full[3:]).replace(str(ROOT) + "/", "")


def agreement(a, b):
    a, b = list(a), list(b)
    if len(a) != len(b) or not a:
        return None
    return sum(x == y for x, y in zip(a, b)) / len(a)


def host_model(name, graphs, args, cli):
    log(f"host comparison: {name}")
    work = CACHE / name
    work.mkdir(parents=True, exist_ok=True)
    tgnn = ROOT / "models" / name / f"{name}.tgnn"
    reps = args.reps if args.reps else (30 if name.startswith("cora") else 300)
    res = {"name": name, "graphs": rel(graphs), "reps": reps, "cg_reps": args.cg_reps(name)}
    # tinygnn, wall clock (both feature forms) and callgrind (int8 features, as TFLM gets them).
    # Unprepared (`--unprepared`: the graph validated and built inside every inference) and
    # prepared (the default: `Session::prepare` once, `run_prepared` per inference; "_p" keys).
    k = res["cg_reps"]
    for key, extra in (("", ["--unprepared"]), ("_p", [])):
        for feat in ("i8", "f32"):
            res[f"tg{key}_{feat}"] = json.loads(sh([cli, "bench", tgnn, graphs, "--iters", reps, "--features", feat,
                                                    "--json"] + extra))
        res[f"tg_insn{key}"], res[f"tg_cg_cmd{key}"] = callgrind(
            [cli, "bench", tgnn, graphs, "--iters", k, "--warmup", 0, "--features", "i8"] + extra,
            "tinygnn_cli::cmd::bench::infer", k)
        res[f"tg_insn{key}_f32"], _ = callgrind(
            [cli, "bench", tgnn, graphs, "--iters", k, "--warmup", 0, "--features", "f32"] + extra,
            "tinygnn_cli::cmd::bench::infer", k)
        # The same int8 features stored sparse (the runtime's sparse input layer, `Features::SparseI8`).
        res[f"tg{key}_sparse"] = json.loads(sh([cli, "bench", tgnn, graphs, "--iters", reps, "--features",
                                                "sparse-i8", "--json"] + extra))
        res[f"tg_insn{key}_sparse"], res[f"tg_cg_cmd{key}_sparse"] = callgrind(
            [cli, "bench", tgnn, graphs, "--iters", k, "--warmup", 0, "--features", "sparse-i8"] + extra,
            "tinygnn_cli::cmd::bench::infer", k)
    res["tg_cmd"] = (f"tinygnn bench {rel(tgnn)} {rel(graphs)} --iters {reps} --features i8|f32|sparse-i8 "
                     f"[--unprepared]")
    # TFLite Micro: convert (TensorFlow), then run with the real interpreter.
    tfl = ROOT / "scripts" / "bench_tflm.py"
    # Main form: Â as a run-time input (the graph is given at run time, as to tinygnn); variant
    # "c": Â baked into the .tflite as a constant (graph fixed at conversion time).
    forms = [("tf", work, [])] + ([] if args.smoke else [("tfc", CACHE / f"{name}-const-adj", ["--const-adj"])])
    for key, wdir, extra in forms:
        res[f"{key}_convert"] = last_json(sh([PY, tfl, "convert", f"models/{name}", graphs, wdir] + extra,
                                             quiet_stderr=True))
        res[key] = last_json(sh([PY, tfl, "run", wdir, "--reps", reps], quiet_stderr=True))
        res[f"{key}_cmd"] = (f"scripts/bench_tflm.py convert models/{name} {rel(graphs)} {rel(wdir)}"
                             f"{' ' + ' '.join(extra) if extra else ''}; "
                             f"scripts/bench_tflm.py run {rel(wdir)} --reps {reps}")
        res[f"{key}_insn"], cmd = callgrind(
            [PY, tfl, "invoke", wdir, "--reps", k, "--arena", res[key]["arena_bytes_min"]],
            "tflite::micro::MicroInterpreter::Invoke()", k)
        res[f"{key}_cg_cmd"] = cmd.replace(PY, ".venv-bench/bin/python")
    # PyG float, one thread (project venv).
    res["pyg"] = last_json(sh([os.environ["TINYGNN_PYTHON"], "scripts/bench_pyg.py", name, graphs,
                               "--reps", reps], env={"PYTHONPATH": str(ROOT / "tools" / "python")},
                              quiet_stderr=True))
    res["pyg_cmd"] = f"$TINYGNN_PYTHON scripts/bench_pyg.py {name} {rel(graphs)} --reps {reps}"
    # Working models: the TFLite model's accuracy and argmax agreement.
    ref = res["pyg"]["argmax"] if "pyg" in res else res["tf"]["float_tf_argmax"]
    res["ref_name"] = "PyG float" if "pyg" in res else "TF float (same graph, same weights)"
    res["tf_agree"] = agreement(res["tf"]["argmax"], ref)
    res["tfc_agree"] = agreement(res["tfc"]["argmax"], ref) if "tfc" in res else 1.0
    res["tg_agree"] = agreement(res["tg_i8"]["argmax"], ref)
    res["tf_vs_tg_agree"] = agreement(res["tf"]["argmax"], res["tg_i8"]["argmax"])
    if res["tg_i8"]["output_crc32"] != res["tg_f32"]["output_crc32"]:
        raise SystemExit(f"bench: {name}: tinygnn's output differs between f32 and i8 features")
    if res["tg_i8"]["output_crc32"] != res["tg_sparse"]["output_crc32"]:
        raise SystemExit(f"bench: {name}: tinygnn's output differs between dense and sparse int8 features")
    for feat in ("i8", "f32", "sparse"):
        if res[f"tg_p_{feat}"]["output_crc32"] != res[f"tg_{feat}"]["output_crc32"]:
            raise SystemExit(f"bench: {name}: tinygnn's output differs between prepared and unprepared runs")
    for who, agr in (("TFLite Micro", res["tf_agree"]), ("TFLite Micro (constant Â)", res["tfc_agree"]),
                     ("tinygnn", res["tg_agree"])):
        if agr is None or agr < args.min_agreement:
            raise SystemExit(f"bench: {name}: {who}'s argmax agrees with {res['ref_name']} on only "
                             f"{agr} of the rows (< {args.min_agreement}): not a working model")
    res["ratio_insn"] = res["tf_insn"] / res["tg_insn"]
    res["ratio_wall_tf"] = res["tf"]["median_ns"] / res["tg_i8"]["median_ns"]
    res["ratio_insn_sparse"] = res["tf_insn"] / res["tg_insn_sparse"]
    res["ratio_wall_tf_sparse"] = res["tf"]["median_ns"] / res["tg_sparse"]["median_ns"]
    res["ratio_insn_p"] = res["tf_insn"] / res["tg_insn_p"]
    res["ratio_insn_p_sparse"] = res["tf_insn"] / res["tg_insn_p_sparse"]
    res["ratio_wall_tf_p_sparse"] = res["tf"]["median_ns"] / res["tg_p_sparse"]["median_ns"]
    if "pyg" in res:
        res["ratio_wall_pyg"] = res["pyg"]["median_ns"] / res["tg_f32"]["median_ns"]
        res["ratio_wall_pyg_p"] = res["pyg"]["median_ns"] / res["tg_p_sparse"]["median_ns"]
    log(f"{name}: tinygnn {res['tg_insn']:,.0f} insn/inference, TFLite Micro {res['tf_insn']:,.0f} "
        f"(ratio {res['ratio_insn']:.2f}x); wall-clock ratio {res['ratio_wall_tf']:.2f}x; arena "
        f"{res['tg_i8']['arena_bytes']} vs {res['tf']['arena_bytes_min']} B")
    return res


# ---------------------------------------------------------------- document

def pct(v):
    return "–" if v is None else f"{100 * v:.1f} %"


def us(ns):
    return f"{ns / 1e3:,.1f} µs" if ns < 1e7 else f"{ns / 1e6:,.1f} ms"


def document(facts, board_rows, board_cmds, board_notes, kernels, kernel_cmds, host, args, env_versions,
             smoke=False):
    L = []
    a = L.append
    a("# Benchmarks")
    a("")
    a("**Generated file: do not edit by hand.** Every number below was printed by a command of one run of")
    a("`scripts/bench.sh` (which writes this file; see [How to regenerate](#how-to-regenerate)). Each table names")
    a("the command its numbers come from.")
    a("")
    a("## How to regenerate")
    a("")
    a("```sh")
    a("TINYGNN_DATA=/path/to/planetoid scripts/bench.sh     # everything (~10-20 min on 2 cores); writes docs/benchmarks.md")
    a("scripts/bench.sh --smoke                            # CI: karate-gcn only (.cache/bench/smoke.md)")
    a("```")
    a("")
    a("`bench.sh` installs what it needs (idempotent): the project venv (`scripts/venv.sh`: torch + PyG), a")
    a("separate `.venv-bench` (tensorflow-cpu + tflite-micro, pinned in the script), valgrind, QEMU")
    a("(`scripts/boards-setup.sh`); it builds the `tinygnn` CLI with the committed release profile (LTO).")
    a("Without `TINYGNN_DATA` the Cora models are skipped, visibly.")
    a("")
    a("## This run")
    a("")
    a("| fact | value |")
    a("|---|---|")
    for k, label in (("date", "date"), ("commit", "commit"), ("cpu", "host CPU"), ("cores", "cores"),
                     ("load", "load average (1 min) at start"), ("os", "OS"), ("rustc", "rustc"),
                     ("qemu", "QEMU"), ("valgrind", "valgrind"), ("python", "Python")):
        a(f"| {label} | {facts[k]} |")
    for k, v in env_versions.items():
        a(f"| {k} | {v} |")
    a("")
    if board_rows is not None:
        a("## Emulated Cortex-M4 and Cortex-M0 (QEMU)")
        a("")
        a("Instructions per inference are exact and repeatable: QEMU `-icount shift=10` and the boards' hardware")
        a("timers around `Session::run` ([boards.md](boards.md#cost-deterministic-instruction-counts-under-qemu)).")
        a("Every run below passed: the device's output bytes equal the host runtime's (and `tinygnn run`'s for")
        a("whole-file runs). Flash = `.text` (+ vector table) and `.rodata` (model and input bundle included);")
        a("RAM = `.data` + `.bss` (+ the M4's `.ram2`, where the arena lives); the arena is `Model::arena_bytes`")
        a("for the bundled graphs; stack is the measured high-water mark. M4 = `mps2-an386` (Cortex-M4F),")
        a("M0 = `microbit` (nRF51, Cortex-M0, 256 KB flash, 16 KB RAM).")
        a("")
        a(f"Produced by ({facts['date']}):")
        a("")
        a("```sh")
        for c in board_cmds:
            a(c)
        a("```")
        a("")
        a("| model | board | inputs | inferences | instructions per inference | flash .text | flash .rodata | RAM .data + .bss (+ .ram2) | arena | stack | accuracy on the board |")
        a("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in board_rows:
            if r["verdict"] == "SKIP":
                a(f"| {r['model']} | {r['board'].upper()} | {fmt_int(r['inputs_bytes'])} B | – | does not fit: {r['skip']} | | | | | | |")
                continue
            n = r.get("samples", 1)
            insn = fmt_int(r.get("insn_max"))
            if n and n > 1:
                insn = f"{r['insn_total'] / n:,.0f} mean, {r['insn_max']:,} max"
            ram = f"{r.get('data', 0) + r.get('bss', 0):,}" + (f" + {r['ram2']:,}" if r.get("ram2") else "")
            arena = fmt_int(r.get("arena"))
            if r.get("state"):  # a recurrent model: state + the session's arena, per step
                arena = f"{arena} (state {r['state']:,} + arena {r['arena'] - -(-r['state'] // 16) * 16:,})"
            a(f"| {r['model']} | {r['board'].upper()} | {fmt_int(r['inputs_bytes'])} B | {n} | {insn} | "
              f"{fmt_int(r.get('text'))} | {fmt_int(r.get('rodata'))} | {ram} | {arena} | "
              f"{fmt_int(r.get('stack'))} | {r.get('acc', '–')} |")
        for note in board_notes:
            a(f"| {note} | | | | | | | | | | |")
        a("")
        a("Inputs: karate-gcn with f32 features, one inference over the whole graph; digits-gin one inference per")
        a("64-node graph (`--split`) with int8 features (`--i8`; on the M0 the first 45 graphs: all 359 do not fit")
        a("its flash); digits-gps (graph transformer: GPS + RWSE computed on the device) one inference per stroke")
        a("graph of 15-36 nodes with int8 features, on the M4 only (its arena and stack exceed the M0's 16 KiB of")
        a("RAM); shapes-dgcnn one inference per cloud (`--split`): on the M4 4 test clouds spread over")
        a("64-256 points (`select_clouds.py spread 4`), on the M0 the 4 largest of at most 92 points (`upto 4 92`);")
        a("sensor-tgcn (a TGCN cell) runs its 120-step test sequence, one inference per step with the state")
        a("carried in RAM in front of the arena (`Session::run_step`): instructions are per step, the arena")
        a("column is state + the session's arena (the state rounded up to 16 bytes);")
        a("Cora models")
        a("one inference over the 2,708-node graph with sparse int8 features (`--sparse`; cora-link scores its")
        a("1,054 labelled node pairs in the same inference).")
        a("")
        a("### Dense int8 kernel: instructions per multiply-accumulate")
        a("")
        if kernels is None and smoke:
            a("Not run by `--smoke`.")
        elif kernels is None:
            a("`scripts/kernel-bench.sh` is absent on this commit, so this run measured no per-MAC number of the")
            a("dense kernel alone (`bench.sh` runs it when present).")
        else:
            a(f"Produced by `{' ; '.join(kernel_cmds)}` ({facts['date']}); the script checks the optimized kernel")
            a("against the reference on every shape before counting.")
            a("")
            a("| board | kernel | rows | cols | MACs | instructions | per MAC |")
            a("|---|---|---:|---:|---:|---:|---:|")
            for k in kernels:
                a(f"| {k['board']} | {k['kernel']} | {k['rows']} | {k['cols']} | {k['macs']:,} | {k['insn']:,} | {k['per_mac']} |")
        a("")
    a("## Host: tinygnn against TFLite Micro and PyG")
    a("")
    a("The same trained model (`models/<name>/model.safetensors`) three ways, on the same graph file:")
    a("")
    a("* **tinygnn**: the bundled int8 `.tgnn`, run by `tinygnn bench` (one `Session` and arena, K inferences in")
    a("  one process). Each inference validates the graph, builds the CSR and degrees from the edge list and")
    a("  runs every op. Features: int8 (quantized once beforehand, as TFLite Micro gets them) or f32 (quantized")
    a("  inside every inference).")
    a("* **TFLite Micro**: the real interpreter (`pip install tflite-micro`) running the model expressed with")
    a("  TFLite ops and quantized to full int8 by TensorFlow's converter with the graph as representative data")
    a("  ([scripts/bench_tflm.py](../scripts/bench_tflm.py)): per GCN layer `Â·(X·W) + b`, where `Â` is the")
    a("  dense normalised adjacency (PyG's gcn_norm, N×N) given as a second int8 input and computed beforehand")
    a("  in numpy; TFLite has no scatter/segment ops, so this is the only way it can express the model (the")
    a("  TFLite ops the converter produced are listed per model below). Not timed on TFLite Micro's side:")
    a("  building and quantizing Â, quantizing the features.")
    a("* **PyG**: the float PyTorch Geometric model (eval, `torch.no_grad()`, `torch.set_num_threads(1)`).")
    a("")
    a("**Instructions** are callgrind counts of the inference function alone, which are exact and repeatable:")
    a("`tinygnn_cli::cmd::bench::infer` (wraps `Session::run`) and TFLite Micro's `MicroInterpreter::Invoke()`,")
    a("both with their callees, divided by the number of calls. **Wall-clock** times are medians over many")
    a("repetitions measured in this run (noisy on a shared machine: read them as ratios); TFLite Micro's are")
    a("taken around `interpreter.invoke()` from Python (a fixed ~1 µs of call overhead). PyG cannot be isolated")
    a("by callgrind, so its ratio is wall-clock only. **Arena**: tinygnn's `Model::arena_bytes` for the graph")
    a("(exact: one byte less is `ArenaTooSmall`); TFLite Micro's is the smallest arena (to 16 bytes) with which")
    a("the interpreter allocates and invokes, found by bisection (it includes TFLite Micro's own persistent")
    a("structures, which a device also keeps in the arena, and the N×N `Â` input); in parentheses, the total")
    a("the interpreter itself reports for that arena (`RecordingMicroAllocator`, via `print_allocations()`).")
    a("")
    a("### Working models")
    a("")
    ref_name = host[0]["ref_name"] if host else "PyG float"
    a(f"Accuracy over `test_mask` and top-1 agreement with {ref_name}.")
    a("")
    a("| model | nodes | PyG float acc. | tinygnn acc. | tinygnn agreement | TFLite Micro acc. | TFLite Micro agreement | tinygnn = TFLM argmax | `.tgnn` / `.tflite` bytes |")
    a("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for h in host:
        pyg_acc = pct(h["pyg"]["accuracy"]) if "pyg" in h else "–"
        a(f"| {h['name']} | {h['tg_i8']['nodes']:,} | {pyg_acc} | {pct(h['tg_i8']['accuracy'])} | {pct(h['tg_agree'])} | "
          f"{pct(h['tf']['accuracy'])} | {pct(h['tf_agree'])} | {pct(h['tf_vs_tg_agree'])} | "
          f"{h['tg_i8']['model_bytes']:,} / {h['tf_convert']['tflite_bytes']:,} |")
    a("")
    for h in host:
        c = h["tf_convert"]
        n = c["nodes"]
        a(f"* {h['name']}: Â has {n:,}×{n:,} = {n * n:,} entries, {c['adj_nonzero']:,} non-zero; "
          f"{c['adj_int8_nonzero']:,} stay non-zero after int8 quantization. TFLite ops: {', '.join(c['ops'])}.")
    a("")
    a("### Speed and memory")
    a("")
    a("| model | tinygnn instructions / inference (int8 / f32 features) | TFLite Micro instructions / invoke | **TFLM ÷ tinygnn (instructions)** | tinygnn wall (int8 / f32) | TFLite Micro wall | TFLM ÷ tinygnn (wall) | PyG float wall | **PyG ÷ tinygnn f32 (wall)** | tinygnn arena | TFLite Micro arena | arena ratio |")
    a("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for h in host:
        pyg_w = us(h["pyg"]["median_ns"]) if "pyg" in h else "–"
        pyg_r = (f"{h['ratio_wall_pyg']:.1f}×" if h["ratio_wall_pyg"] >= 1 else f"{h['ratio_wall_pyg']:.2f}×") \
            if "pyg" in h else "–"
        got = h["tf"].get("arena_bytes_reported")
        rep = "" if got is None else f" (reports {got:,})"
        a(f"| {h['name']} | {h['tg_insn']:,.0f} / {h['tg_insn_f32']:,.0f} | {h['tf_insn']:,.0f} | **{h['ratio_insn']:.2f}×** | "
          f"{us(h['tg_i8']['median_ns'])} / {us(h['tg_f32']['median_ns'])} | {us(h['tf']['median_ns'])} | {h['ratio_wall_tf']:.2f}× | "
          f"{pyg_w} | **{pyg_r}** | {h['tg_i8']['arena_bytes']:,} B | {h['tf']['arena_bytes_min']:,} B{rep} | "
          f"{h['tf']['arena_bytes_min'] / h['tg_i8']['arena_bytes']:.2f}× |")
    a("")
    a("### Sparse input features")
    a("")
    a("The same int8 features given to tinygnn as sparse rows (`tinygnn bench --features sparse-i8`:")
    a("`Features::SparseI8`, the CSR of the entries that differ from the input zero point, built once before")
    a("the loop as the int8 features are): the first GCN layer sums the weight columns of the stored entries")
    a("instead of multiplying zeros, and the dense input takes no arena (`Model::arena_bytes_sparse`). Same")
    a("output bytes as the dense int8 run (checked). karate-gcn's features are the identity (one-hot per node),")
    a("Cora's a bag of words. TFLite Micro has no sparse input: it gets the same int8 features as a dense")
    a("tensor (its numbers are the ones above).")
    a("")
    a("| model | stored entries (density) | tinygnn instructions / inference, sparse | TFLite Micro instructions / invoke | **TFLM ÷ tinygnn (instructions)** | tinygnn wall, sparse | TFLM ÷ tinygnn (wall) | tinygnn arena, sparse | TFLite Micro arena | arena ratio |")
    a("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for h in host:
        sp = h["tg_sparse"]
        n, f = h["tf_convert"]["nodes"], h["tf_convert"]["features"]
        nnz = sp.get("sparse_entries") or 0
        a(f"| {h['name']} | {nnz:,} of {n * f:,} ({100 * nnz / max(n * f, 1):.2f} %) | {h['tg_insn_sparse']:,.0f} | "
          f"{h['tf_insn']:,.0f} | **{h['ratio_insn_sparse']:.2f}×** | {us(sp['median_ns'])} | "
          f"{h['ratio_wall_tf_sparse']:.2f}× | {sp['arena_bytes']:,} B | {h['tf']['arena_bytes_min']:,} B | "
          f"{h['tf']['arena_bytes_min'] / sp['arena_bytes']:.2f}× |")
    a("")
    if all("tg_insn_p" in h for h in host):
        a("### Prepared graphs")
        a("")
        a("The graph prepared once before the loop (`Session::prepare`: validation, CSR, degrees and GCN")
        a("normalisation, kept in the front of the arena), then one `Session::run_prepared` with the features per")
        a("inference (`tinygnn bench`'s default; the tables above are `--unprepared`). This is the pairing that")
        a("matches TFLite Micro, whose dense Â is built before its invokes. Same output bytes as the unprepared")
        a("runs (checked); the arena is the same `Model::arena_bytes` (`Model::prepared_bytes` of it hold the")
        a("prepared graph).")
        a("")
        a("| model | prepared graph bytes | tinygnn instructions / inference, prepared (int8 / f32 / sparse) | TFLite Micro instructions / invoke | **TFLM ÷ tinygnn (instructions, int8 / sparse)** | tinygnn wall, prepared sparse | TFLM ÷ tinygnn (wall, sparse) | PyG float wall | **PyG ÷ tinygnn prepared sparse (wall)** |")
        a("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for h in host:
            p = h["tg_p_sparse"]
            pyg_w = us(h["pyg"]["median_ns"]) if "pyg" in h else "–"
            pyg_r = f"{h['ratio_wall_pyg_p']:.1f}×" if "ratio_wall_pyg_p" in h else "–"
            a(f"| {h['name']} | {p.get('prepared_bytes', 0):,} B | {h['tg_insn_p']:,.0f} / {h['tg_insn_p_f32']:,.0f} / "
              f"{h['tg_insn_p_sparse']:,.0f} | {h['tf_insn']:,.0f} | **{h['ratio_insn_p']:.2f}× / "
              f"{h['ratio_insn_p_sparse']:.2f}×** | {us(p['median_ns'])} | {h['ratio_wall_tf_p_sparse']:.2f}× | "
              f"{pyg_w} | **{pyg_r}** |")
        a("")
        a("Goals with prepared graphs: karate-gcn ≥ 10× fewer instructions than TFLite Micro, cora-gcn ≥ 200×,")
        a("cora-gcn ≤ 0.5 ms wall (best tinygnn input form).")
        a("")
        a("| model | ≥ goal × fewer instructions | ≤ 0.5 ms wall |")
        a("|---|---|---|")
        for h in host:
            goal = {"karate-gcn": 10, "cora-gcn": 200}.get(h["name"])
            if goal is None:
                continue
            best = max(h["ratio_insn_p"], h["ratio_insn_p_sparse"])
            ok = "met" if best >= goal else "**not met**"
            wall = min(h["tg_p_i8"]["median_ns"], h["tg_p_sparse"]["median_ns"])
            wtxt = ("met" if wall <= 5e5 else "**not met**") + f" ({us(wall)})" if h["name"] == "cora-gcn" else "–"
            a(f"| {h['name']} | {ok} ({best:.2f}×, goal {goal}×) | {wtxt} |")
        a("")
    a("Goals: karate-gcn and cora-gcn at least 3× faster than TFLite Micro on the host, with a smaller arena.")
    a("Each tinygnn input configuration is judged separately against the same TFLite Micro run (dense Â input).")
    a("")
    a("| model | tinygnn input | ≥ 3× fewer instructions than TFLite Micro | ≥ 3× faster wall-clock | smaller arena | smaller arena than the constant-Â variant (below) |")
    a("|---|---|---|---|---|---|")
    for h in host:
        def yn(ok, v):
            return ("met" if ok else "**not met**") + f" ({v})"
        fa = h["tf"]["arena_bytes_min"]
        for label, ta, ri, rw in (
                ("dense int8", h["tg_i8"]["arena_bytes"], h["ratio_insn"], h["ratio_wall_tf"]),
                ("sparse int8", h["tg_sparse"]["arena_bytes"], h["ratio_insn_sparse"], h["ratio_wall_tf_sparse"])):
            arena_txt = f"{ta:,} < {fa:,} B" if ta < fa else f"{ta:,} ≥ {fa:,} B"
            if "tfc" in h:
                fc = h["tfc"]["arena_bytes_min"]
                const_txt = yn(ta < fc, f"{ta:,} < {fc:,} B" if ta < fc else f"{ta:,} ≥ {fc:,} B")
            else:
                const_txt = "not run (`--smoke`)"
            a(f"| {h['name']} | {label} | {yn(ri >= 3, f'{ri:.2f}×')} | {yn(rw >= 3, f'{rw:.2f}×')} | "
              f"{yn(ta < fa, arena_txt)} | {const_txt} |")
    if not any(h["name"] == "cora-gcn" for h in host):
        a("| cora-gcn | – | SKIP (TINYGNN_DATA not set or `--smoke`) | | | |")
    a("")
    built = ("built by bench.sh with the committed release profile" if os.environ.get("TINYGNN_BENCH_CLI_BUILT")
             else "given as $TINYGNN_CLI")
    if host and all("tfc" in h for h in host):
        a("### Variant: Â baked into the `.tflite` as a constant")
        a("")
        a("When the graph never changes (one fixed graph, transductive node classification), a TFLite user can")
        a("also make Â a constant of the model (`bench_tflm.py convert --const-adj`): then it lives in flash,")
        a("not in the arena, and the model only works for that one graph (tinygnn's `.tgnn` takes any graph up")
        a("to its capacity at run time). Same measurements as above:")
        a("")
        a("| model | `.tflite` bytes | TFLite Micro acc. / agreement | TFLite Micro instructions / invoke | TFLM ÷ tinygnn (instructions) | TFLite Micro wall | TFLM ÷ tinygnn (wall) | TFLite Micro arena | tinygnn arena | arena ratio |")
        a("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for h in host:
            c, ta = h["tfc"], h["tg_i8"]["arena_bytes"]
            a(f"| {h['name']} | {h['tfc_convert']['tflite_bytes']:,} | {pct(c['accuracy'])} / {pct(h['tfc_agree'])} | "
              f"{h['tfc_insn']:,.0f} | {h['tfc_insn'] / h['tg_insn']:.2f}× | {us(c['median_ns'])} | "
              f"{c['median_ns'] / h['tg_i8']['median_ns']:.2f}× | {c['arena_bytes_min']:,} B | {ta:,} B | "
              f"{c['arena_bytes_min'] / ta:.2f}× |")
        a("")
    a("Derived from the numbers above (computed by the generator, not typed):")
    a("")
    for h in host:
        n, f = h["tf_convert"]["nodes"], h["tf_convert"]["features"]
        dq = h["tg_insn_f32"] - h["tg_insn"]
        a(f"* {h['name']}: quantizing the {n * f:,} f32 feature values inside the runtime costs "
          f"{dq:,.0f} instructions per inference ({dq / (n * f):.1f} per value), "
          f"{100 * dq / h['tg_insn_f32']:.0f} % of the f32-feature inference.")
        if "tg_insn_p" in h:
            dp = h["tg_insn"] - h["tg_insn_p"]
            a(f"* {h['name']}: preparing the graph once saves {dp:,.0f} instructions per inference "
              f"({100 * dp / h['tg_insn']:.0f} % of the unprepared int8 inference).")
    a("")
    a(f"Produced by ({facts['date']}; CLI `{facts['cli']}`, {built}):")
    a("")
    a("```sh")
    for h in host:
        a(f"# {h['name']}: {h['reps']} timed repetitions each, {h['cg_reps']} under callgrind")
        a(h["tg_cmd"])
        a(h["tg_cg_cmd"])
        if h.get("tg_cg_cmd_sparse"):
            a(h["tg_cg_cmd_sparse"])
        for key in ("tg_cg_cmd_p", "tg_cg_cmd_p_sparse"):
            if h.get(key):
                a(h[key])
        a(h["tf_cmd"])
        a(h["tf_cg_cmd"])
        if "tfc_cmd" in h:
            a(h["tfc_cmd"])
            a(h["tfc_cg_cmd"])
        if "pyg_cmd" in h:
            a(h["pyg_cmd"])
    a("```")
    a("")
    return "\n".join(L) + "\n"


def self_test():
    """The parsers on lines in the formats of scripts/qemu-run.sh and scripts/kernel-bench.sh."""
    q = parse_qemu_run(
        "== karate-gcn: model 720 B, inputs 5348 B\n"
        "   m4: PASS  samples=1 insn/inference max=326546 total=326546  flash: text=56096 rodata=9792  "
        "RAM: data=0 bss=12 ram2=3664 (arena=3664)  stack=2848  acc=22/30 (= CLI)  build=5s run=1s\n"
        "== cora-gcn: model 23428 B, inputs 206160 B\n"
        "   m0: SKIP (does not fit: region 'FLASH': overflowed by 27680 bytes)\n")
    assert q[0] == {"model": "karate-gcn", "board": "m4", "verdict": "PASS", "model_bytes": 720, "inputs_bytes": 5348,
                    "samples": 1, "insn_max": 326546, "insn_total": 326546, "text": 56096, "rodata": 9792,
                    "data": 0, "bss": 12, "ram2": 3664, "arena": 3664, "stack": 2848, "acc": "22/30"}, q[0]
    assert q[1]["verdict"] == "SKIP" and q[1]["skip"] == "FLASH overflowed by 27,680 B", q[1]
    k = parse_kernel_bench("kernel-bench m4 bit-exact: 2100 kernel runs match\n"
                           "kernel-bench m4 matmul-dsp rows=64 cols=128 macs=131072 instructions=129630 per_mac=0.989\n")
    assert k == [{"board": "m4", "kernel": "matmul-dsp", "rows": 64, "cols": 128, "macs": 131072, "insn": 129630,
                  "per_mac": "0.989"}], k
    log("self-test ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--no-boards", action="store_true", help="skip the QEMU part")
    ap.add_argument("--reps", type=int, default=None, help="timed repetitions per host measurement (default: 300, 30 for the Cora models)")
    ap.add_argument("--min-agreement", type=float, default=0.9)
    ap.add_argument("--render", metavar="RESULTS.json", help="only write the document from a run's raw results")
    ap.add_argument("--self-test", action="store_true", help="check the output parsers and exit")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if args.render:
        render(json.loads(Path(args.render).read_text()), args)
        return
    if not args.out:
        ap.error("--out is required")
    cli = os.environ.get("TINYGNN_CLI") or str(ROOT / "target" / "release" / "tinygnn")
    args.cg_reps = lambda name: 1 if name.startswith("cora") else 10
    CACHE.mkdir(parents=True, exist_ok=True)
    facts = machine_facts(cli)
    env_versions = {}
    import numpy
    import tflite_micro
    env_versions["tflite-micro"] = tflite_micro.__version__
    env_versions["numpy (bench venv)"] = numpy.__version__
    tfv = sh([PY, "-c", "import tensorflow as tf; print(tf.__version__)"], quiet_stderr=True).strip().splitlines()[-1]
    env_versions["tensorflow-cpu"] = tfv

    board_rows = kernels = None
    board_cmds, board_notes, kernel_cmds = [], [], []
    benv = {"CARGO_TARGET_DIR": str(ROOT / "boards" / "target"), "RUSTFLAGS": "-D warnings",
            "TINYGNN_CLI": cli}
    if not args.no_boards:
        board_rows, board_cmds, board_notes = boards(args, benv)
        if not args.smoke:
            kernels, kernel_cmds = kernel_bench(benv)

    host = []
    names = [("karate-gcn", ROOT / "models" / "karate-gcn" / "graphs.safetensors")]
    if not args.smoke:
        if os.environ.get("TINYGNN_DATA"):
            names.append(("cora-gcn", cora_inputs("cora-gcn")))
        else:
            log("SKIP cora-gcn on the host: TINYGNN_DATA not set")
    for name, graphs in names:
        host.append(host_model(name, graphs, args, cli))
    if host:
        pyg = host[0]["pyg"]
        env_versions["torch / torch_geometric (project venv)"] = f"{pyg['torch']} / {pyg['torch_geometric']}"
    results = {"facts": facts, "board_rows": board_rows, "board_cmds": board_cmds, "board_notes": board_notes,
               "kernels": kernels, "kernel_cmds": kernel_cmds, "host": host, "env_versions": env_versions,
               "cli_built": bool(os.environ.get("TINYGNN_BENCH_CLI_BUILT")), "smoke": args.smoke}
    raw = Path(args.out).with_suffix(".json") if args.smoke else CACHE / "results.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(results, indent=1))
    log(f"raw results: {rel(raw)}")
    render(results, args)


def render(results, args):
    """Writes the document from the results of a run (`--render RESULTS.json` redoes only this)."""
    r = results
    if r.get("cli_built"):
        os.environ["TINYGNN_BENCH_CLI_BUILT"] = "1"
    facts, host = r["facts"], r["host"]
    doc = document(facts, r["board_rows"], r["board_cmds"], r["board_notes"], r["kernels"], r["kernel_cmds"],
                   host, args, r["env_versions"], smoke=r.get("smoke", False))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(doc)
    for h in host:
        print(f"bench-ratio {h['name']} tinygnn_insn={h['tg_insn']:.0f} tflm_insn={h['tf_insn']:.0f} "
              f"insn_ratio={h['ratio_insn']:.2f} wall_ratio={h['ratio_wall_tf']:.2f} "
              f"tinygnn_arena={h['tg_i8']['arena_bytes']} tflm_arena={h['tf']['arena_bytes_min']} "
              f"tflm_agreement={h['tf_agree']:.3f} tinygnn_agreement={h['tg_agree']:.3f} "
              f"tinygnn_sparse_insn={h['tg_insn_sparse']:.0f} sparse_insn_ratio={h['ratio_insn_sparse']:.2f} "
              f"tinygnn_sparse_arena={h['tg_sparse']['arena_bytes']}"
              + (f" tinygnn_prepared_insn={h['tg_insn_p']:.0f} prepared_insn_ratio={h['ratio_insn_p']:.2f} "
                 f"tinygnn_prepared_sparse_insn={h['tg_insn_p_sparse']:.0f} "
                 f"prepared_sparse_insn_ratio={h['ratio_insn_p_sparse']:.2f} "
                 f"tinygnn_prepared_sparse_wall_ns={h['tg_p_sparse']['median_ns']:.0f}" if "tg_insn_p" in h else ""))
    log(f"wrote {rel(args.out)}")


if __name__ == "__main__":
    main()
