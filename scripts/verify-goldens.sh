#!/usr/bin/env bash
# Converts conformance goldens with the CLI and verifies each against its float reference.
# Usage: scripts/verify-goldens.sh [--auc] [--out DIR] LABEL MIN_COUNT DIR...
# Prints the max error in output steps and the top-1 agreement of each (with --auc: the number
# of pairs and the float / int8 AUC against edge_label instead, for link goldens); fails if an
# error exceeds 4 output steps + 3 % of the float output range, or if fewer than MIN_COUNT
# goldens ran. With --out the converted models stay in DIR as NAME.tgnn (NAME: the golden's
# directory name); otherwise they go to a temporary directory removed at exit.
set -euo pipefail
auc=0 keep=
while [ $# -gt 0 ]; do
  case $1 in
    --auc) auc=1; shift ;;
    --out) keep=$2; shift 2 ;;
    *) break ;;
  esac
done
# Relative --out paths are taken from the caller's directory.
[ -z "$keep" ] || { mkdir -p "$keep"; keep=$(cd "$keep" && pwd); }
cd "$(dirname "$0")/.."
label=$1 min=$2
shift 2
PY="${TINYGNN_PYTHON:-python3}"
# The CLI: $TINYGNN_BIN as scripts/test.sh built it; otherwise built now (a no-op when up to
# date), never a binary left from an earlier build.
T="${TINYGNN_BIN:-}"
if [ -z "$T" ]; then
  cargo build -q --release -p tinygnn-cli
  T="${CARGO_TARGET_DIR:-target}/release/tinygnn"
fi
if [ -n "$keep" ]; then
  OUT=$keep
else
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi
n=0
for d in "$@"; do
  name=$(basename "$d")
  "$T" convert "$d/model.safetensors" --calib "$d/graphs.safetensors" -o "$OUT/$name.tgnn" >/dev/null
  "$T" verify "$d/model.safetensors" "$OUT/$name.tgnn" "$d/graphs.safetensors" --json >"$OUT/$name.json"
  "$PY" - "$label" "$name" "$OUT/$name.json" "$auc" <<'PYEOF'
import json, sys
v = json.load(open(sys.argv[3]))
steps = v["max_abs_err"] / v["output_step"]
tol = 4 * v["output_step"] + 0.03 * v["float_output_range"]
if sys.argv[4] == "1":
    print(f"{sys.argv[1]} {sys.argv[2]}: {v['rows']} pairs, int8 max abs err {v['max_abs_err']:.4f} = {steps:.2f} "
          f"output steps, AUC float {100 * v['float_auc']:.2f} % / int8 {100 * v['int8_auc']:.2f} %")
else:
    print(f"{sys.argv[1]} {sys.argv[2]}: int8 max abs err {v['max_abs_err']:.4f} = {steps:.2f} output steps, "
          f"top-1 agreement {100 * v['top1_agreement']:.1f} %")
assert v["max_abs_err"] <= tol, f"error above tolerance {tol:.4f}"
PYEOF
  n=$((n + 1))
done
[ "$n" -ge "$min" ] || { echo "expected at least $min $label goldens, found $n" >&2; exit 1; }
