#!/usr/bin/env bash
# The main job, end to end on a fresh machine:
#   1. convert the bundled karate-gcn model (PyG weights → int8 .tgnn),
#   2. inspect it and run it on the host with the runtime crate,
#   3. verify it against the float reference,
#   4. build the Cortex-M4 firmware with the model and graph embedded, run it
#      under QEMU (mps2-an386), and compare its output bytes with the host's;
#      prints instructions per inference, flash, RAM and stack.
# MODEL=<name> picks another bundled model (e.g. digits-gin).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${MODEL:-karate-gcn}"
D="models/$MODEL"
step() { printf '\n==== %s ====\n' "$*"; }

step "setup (Rust targets, QEMU)"
scripts/setup.sh >/dev/null

step "build the tinygnn CLI"
cargo build -q --release -p tinygnn-cli
T=target/release/tinygnn
CALIB="$D/calib.safetensors"; [ -f "$CALIB" ] || CALIB="$D/graphs.safetensors"
OUT=target/demo; mkdir -p "$OUT"

step "convert $D/model.safetensors → $OUT/$MODEL.tgnn"
# The model's own convert flags (e.g. --output-range), as scripts/models.py uses them.
read -r -a EXTRA <<<"$(python3 -c "import json,sys; print(' '.join(json.load(open(sys.argv[1])).get('convert_args', [])))" "$D/goals.json")"
"$T" convert "$D/model.safetensors" --calib "$CALIB" -o "$OUT/$MODEL.tgnn" "${EXTRA[@]}"
cmp "$OUT/$MODEL.tgnn" "$D/$MODEL.tgnn" && echo "(identical to the committed $D/$MODEL.tgnn)"

step "inspect"
"$T" inspect "$OUT/$MODEL.tgnn"

step "run on the host"
"$T" run "$OUT/$MODEL.tgnn" "$D/graphs.safetensors" --output-bytes "$OUT/$MODEL.host.bin" | tail -n 8

step "verify against the float reference"
"$T" verify "$D/model.safetensors" "$OUT/$MODEL.tgnn" "$D/graphs.safetensors"

step "run on the emulated Cortex-M4 (QEMU mps2-an386) and compare bytes with the host"
scripts/qemu-run.sh --board m4 "$OUT/$MODEL.tgnn:$D/graphs.safetensors"
