#!/usr/bin/env bash
# CI steps of the decoupled propagation ops (APPNP, SGConv, GCN2Conv, TAGConv: the `Propagate` op; issue 4):
#   1. every propagation conformance golden (tests/conformance/{appnp,sgconv,gcn2_,tag_}*) converted with
#      the CLI and verified against its float reference: prints the max error in output steps
#      and the top-1 agreement, fails above 4 steps + 3 % of the output range;
#   2. the runtime with only `op-propagate` (+ `op-linear`) compiled, for Cortex-M4 and M0
#      (the GCN normalisation it shares with `op-gcn` must build without it);
#   3. with $TINYGNN_DATA: models/cora-appnp/compare_int8_steps.py (accuracy with the i32
#      intermediate values against requantizing every step to int8), then cora-appnp on the
#      emulated Cortex-M4 (scripts/qemu-run.sh --sparse): the device's output bytes must equal
#      `tinygnn run`'s; prints instructions per inference, flash, arena and stack.
# Installs nothing of its own: the CLI comes from cargo, QEMU and the thumb targets from
# scripts/boards-setup.sh (run by scripts/boards-ci.sh before this step), the Python venv
# (torch + PyG) from scripts/venv.sh via test.sh ($TINYGNN_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${TINYGNN_PYTHON:-python3}"
T=target/release/tinygnn
[ -x "$T" ] || cargo build -q --release -p tinygnn-cli
scripts/verify-goldens.sh propagate 11 tests/conformance/appnp*/ tests/conformance/sgconv*/ tests/conformance/gcn2_*/ tests/conformance/tag_*/
for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
  echo "-- $target features=[op-propagate,op-linear]"
  RUSTFLAGS="-D warnings" cargo build -q -p tinygnn --release --target "$target" --no-default-features --features op-propagate,op-linear
done
if [ -z "${TINYGNN_DATA:-}" ]; then
  echo "SKIP cora-appnp int8-steps comparison and emulated M4 run: TINYGNN_DATA is not set"
  exit 0
fi
"$PY" models/cora-appnp/compare_int8_steps.py 2>&1 | grep -v -i "warn\|^Processing\|^Done"
[ -f .cache/inputs/cora-appnp/graphs.safetensors ] || "$PY" models/make_inputs.py cora-appnp .cache/inputs/cora-appnp
scripts/qemu-run.sh --board m4 --sparse models/cora-appnp/cora-appnp.tgnn:.cache/inputs/cora-appnp/graphs.safetensors
