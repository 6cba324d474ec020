#!/usr/bin/env bash
# Where the instructions of one inference go on the emulated Cortex-M4: a per-stage profile.
#
#   scripts/m4-profile.sh [--least-arena] [--write FILE] MODEL.tgnn:GRAPHS.safetensors
#   scripts/m4-profile.sh models/cora-gcn/cora-gcn.tgnn:.cache/inputs/cora-gcn/graphs.safetensors
#
# 1. `scripts/qemu-run.sh --board m4 --sparse MODEL:GRAPHS` builds the M4 firmware with the model
#    and the graph's sparse int8 features embedded, runs it and checks its output bytes against
#    the host's (a failure stops here).
# 2. The same firmware runs again under QEMU with a TCG plugin (scripts/pcprof/pcprof.c, built
#    here with gcc) that counts the instructions executed at every address, in a window between
#    the firmware's two timer reads around `Session::run` (deterministic: the same counts every
#    run; their sum equals the firmware's own -icount figure to within a few instructions).
# 3. scripts/pcprof/stages.py sums the counts by stage through each address's inline chain
#    (addr2line) and prints a markdown table: instructions, share, instructions per MAC of the
#    inference and per unit of each stage's own work. The MACs are counted from the graph
#    (stored feature entries × layer 1's outputs, nodes × inputs × outputs of the dense layers,
#    (edges + nodes) × channels of the neighbour sums) for a stack of GCN layers.
#
# The firmware's arena is the wide one (`Model::wide_arena_bytes`: every GCN layer in one pass over
# its channels), as `qemu-run.sh --board m4` builds it; with --least-arena the least one
# (`Model::arena_bytes_sparse`, the nRF52840 profile's: passes over channel blocks).
#
# --write FILE replaces the section between `<!-- m4-profile:begin -->` and `<!-- m4-profile:end -->`
# (with --least-arena `<!-- m4-profile-least:begin -->` … `end -->`) of FILE with the table, the
# command and the commit. Needs qemu-system-arm (scripts/boards-setup.sh),
# gcc, addr2line (binutils), and TINYGNN_PYTHON with safetensors (scripts/venv.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
write=""; least=()
if [ "${1:-}" = --least-arena ]; then least=(--least-arena); shift; fi
if [ "${1:-}" = --write ]; then write="$2"; shift 2; fi
[ $# -eq 1 ] && [[ "$1" == *:* ]] || { echo "usage: $0 [--least-arena] [--write FILE] MODEL.tgnn:GRAPHS.safetensors" >&2; exit 2; }
target="$1"; model="${target%%:*}"; graphs="${target#*:}"
name="$(basename "${model%.tgnn}")"
PY="${TINYGNN_PYTHON:-python3}"
work="$ROOT/.cache/pcprof/$name"; mkdir -p "$work"

scripts/qemu-run.sh --board m4 --sparse "${least[@]}" "$target" | tee "$work/qemu-run.log"
grep -q "m4: PASS" "$work/qemu-run.log" || { echo "the M4 run did not pass" >&2; exit 1; }
elf="${CARGO_TARGET_DIR:-$ROOT/boards/qemu-m4/target}/thumbv7em-none-eabihf/release/tinygnn-qemu-m4"

plugin="$ROOT/.cache/pcprof/libpcprof.so"
if [ ! -f "$plugin" ] || [ "$ROOT/scripts/pcprof/pcprof.c" -nt "$plugin" ]; then
    gcc -shared -fPIC -O2 -o "$plugin" "$ROOT/scripts/pcprof/pcprof.c"
fi

# The window: from the entry of the board's clock `start` to the entry of its `elapsed` (both
# `#[inline(never)]` in boards/qemu-m4/src/main.rs), the two timer reads around `Session::run`.
NM="$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin/llvm-nm"
syms="$("$NM" -C "$elf")"
sym() { awk -v pat="$1" '$0 ~ pat {print $1; exit}' <<<"$syms"; }
start="$(sym 'IcountTimers.*Clock.*::start')"; stop="$(sym 'IcountTimers.*Clock.*::elapsed')"
[ -n "$start" ] && [ -n "$stop" ] || { echo "no IcountTimers start/elapsed symbols in $elf" >&2; exit 1; }
echo "== window: 0x$start (clock start) .. 0x$stop (clock elapsed)"

rm -f "$work"/prof.txt*
timeout "${QEMU_TIMEOUT:-900}" qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
    -semihosting-config enable=on,target=native -icount shift=10 \
    -plugin "$plugin,out=$work/prof.txt,start=0x$start,stop=0x$stop" -kernel "$elf" > "$work/run.log"
[ -f "$work/prof.txt.win0" ] || { echo "the window was never closed (see $work/run.log)" >&2; exit 1; }
awk '{print "0x" $1}' "$work/prof.txt.win0" | addr2line -f -i -C -a -e "$elf" > "$work/a2l.txt"

counts="$("$PY" - "$graphs" "$model" "$ROOT/target/release/tinygnn" <<'PYEOF'
import re, subprocess, sys
from safetensors.numpy import load_file
g = load_file(sys.argv[1])
x, ei = g["x"], g["edge_index"]
n, e = x.shape[0], ei.shape[1]
nnz = int((x != 0).sum())
ins = subprocess.run([sys.argv[3], "inspect", sys.argv[2]], capture_output=True, text=True, check=True).stdout
layers = [(int(a), int(b)) for a, b in re.findall(r"gcn_conv .*\[N, (\d+)\]→\[N, (\d+)\]", ins)]
sparse = nnz * layers[0][1]
dense = sum(n * i * o for i, o in layers[1:])
sums = sum((e + n) * o for _, o in layers)
values = sum(n * o for _, o in layers)
print(f"macs={sparse + dense + sums},sparse={sparse},dense={dense},sums={sums},values={values}")
PYEOF
)"
table="$(python3 "$ROOT/scripts/pcprof/stages.py" "$work/prof.txt.win0" "$work/a2l.txt" "$counts")"
timer="$(grep -oE 'cost_max=[0-9]+' "$work/run.log" | cut -d= -f2 || true)"
cmd="scripts/m4-profile.sh ${least[*]:+${least[*]} }$target"
arena="$(grep -oE 'm4: PASS .*arena=[0-9]+' "$work/qemu-run.log" | grep -oE 'arena=[0-9]+' | cut -d= -f2 || true)"
report="Produced by \`$cmd\` (commit $(git rev-parse --short=12 HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted changes'), $(date -u '+%Y-%m-%d %H:%M UTC')); the firmware's own -icount timer gave ${timer:-?} instructions for the inference, in an arena of ${arena:-?} bytes.

$table"
echo "$report"
if [ -n "$write" ]; then
    tag=m4-profile${least[*]:+-least}
    python3 - "$write" "$report" "$tag" <<'PYEOF'
import sys
path, body, tag = sys.argv[1], sys.argv[2], sys.argv[3]
s = open(path).read()
b, e = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
i, j = s.index(b) + len(b), s.index(e)
open(path, "w").write(s[:i] + "\n" + body + "\n" + s[j:])
PYEOF
    echo "== wrote the profile into $write"
fi
