#!/usr/bin/env bash
# Converts conformance goldens with the CLI and verifies each against its float reference.
# Usage: scripts/verify-goldens.sh LABEL MIN_COUNT DIR...
# Prints the max error in output steps and the top-1 agreement of each; fails if an error
# exceeds 4 output steps + 3 % of the float output range, or if fewer than MIN_COUNT goldens ran.
set -euo pipefail
cd "$(dirname "$0")/.."
label=$1 min=$2
shift 2
PY="${TINYGNN_PYTHON:-python3}"
T=target/release/tinygnn
[ -x "$T" ] || cargo build -q --release -p tinygnn-cli
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
n=0
for d in "$@"; do
  name=$(basename "$d")
  "$T" convert "$d/model.safetensors" --calib "$d/graphs.safetensors" -o "$OUT/$name.tgnn" >/dev/null
  "$T" verify "$d/model.safetensors" "$OUT/$name.tgnn" "$d/graphs.safetensors" --json >"$OUT/$name.json"
  "$PY" - "$label" "$name" "$OUT/$name.json" <<'PYEOF'
import json, sys
v = json.load(open(sys.argv[3]))
steps = v["max_abs_err"] / v["output_step"]
tol = 4 * v["output_step"] + 0.03 * v["float_output_range"]
print(f"{sys.argv[1]} {sys.argv[2]}: int8 max abs err {v['max_abs_err']:.4f} = {steps:.2f} output steps, "
      f"top-1 agreement {100 * v['top1_agreement']:.1f} %")
assert v["max_abs_err"] <= tol, f"error above tolerance {tol:.4f}"
PYEOF
  n=$((n + 1))
done
[ "$n" -ge "$min" ] || { echo "expected at least $min $label goldens, found $n" >&2; exit 1; }
