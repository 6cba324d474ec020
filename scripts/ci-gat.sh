#!/usr/bin/env bash
# CI steps of the attention layers (GATConv / GATv2Conv, issue 4):
#   1. every GAT conformance golden (tests/conformance/gat*) converted with the CLI and verified
#      against its float reference: prints max error in output steps and top-1 agreement, and
#      fails if the error exceeds 4 steps + 3 % of the output range;
#   2. with $TINYGNN_DATA: models/cora-gat on the emulated Cortex-M4 (scripts/qemu-run.sh
#      --sparse): the device's output bytes must equal `tinygnn run`'s; prints the instruction
#      count per inference, arena and stack.
# Installs nothing of its own: the CLI comes from cargo (built by scripts/test.sh's host tests),
# QEMU and the thumbv7em target from scripts/boards-setup.sh (called by scripts/boards-ci.sh,
# which test.sh runs before this), Python 3 stdlib only.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${TINYGNN_PYTHON:-python3}"
T=target/release/tinygnn
[ -x "$T" ] || cargo build -q --release -p tinygnn-cli
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
n=0
for d in tests/conformance/gat*/; do
  name=$(basename "$d")
  "$T" convert "$d/model.safetensors" --calib "$d/graphs.safetensors" -o "$OUT/$name.tgnn" >/dev/null
  "$T" verify "$d/model.safetensors" "$OUT/$name.tgnn" "$d/graphs.safetensors" --json >"$OUT/$name.json"
  "$PY" - "$name" "$OUT/$name.json" <<'PYEOF'
import json, sys
v = json.load(open(sys.argv[2]))
steps = v["max_abs_err"] / v["output_step"]
tol = 4 * v["output_step"] + 0.03 * v["float_output_range"]
print(f"gat {sys.argv[1]}: int8 max abs err {v['max_abs_err']:.4f} = {steps:.2f} output steps, "
      f"top-1 agreement {100 * v['top1_agreement']:.1f} %")
assert v["max_abs_err"] <= tol, f"error above tolerance {tol:.4f}"
PYEOF
  n=$((n + 1))
done
[ "$n" -ge 6 ] || { echo "expected at least 6 GAT goldens, found $n" >&2; exit 1; }
if [ -z "${TINYGNN_DATA:-}" ]; then
  echo "SKIP cora-gat on the emulated M4: TINYGNN_DATA is not set"
  exit 0
fi
[ -f .cache/inputs/cora-gat/graphs.safetensors ] || "$PY" models/make_inputs.py cora-gat .cache/inputs/cora-gat
scripts/qemu-run.sh --board m4 --sparse models/cora-gat/cora-gat.tgnn:.cache/inputs/cora-gat/graphs.safetensors
