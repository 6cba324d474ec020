#!/usr/bin/env bash
# CI steps of the attention layers (GATConv / GATv2Conv, issue 4):
#   1. every GAT conformance golden (tests/conformance/gat*, GATv2 with edge_dim included) converted with the CLI and verified
#      against its float reference: prints max error in output steps and top-1 agreement, and
#      fails if the error exceeds 4 steps + 3 % of the output range;
#   2. gatv2_edge_dim (int8 and int4 weights) and gat_heads4_concat (int4) on the emulated
#      Cortex-M4: output bytes equal to the host's;
#   3. with $TINYGNN_DATA: models/cora-gat on the emulated Cortex-M4 (scripts/qemu-run.sh
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
scripts/verify-goldens.sh gat 10 tests/conformance/gat*/
# GATv2 with edge features, and int4 GAT / GATv2 weights, on the emulated Cortex-M4: the
# firmware's output bytes must equal the host's (qemu-run.sh); prints instructions and stack.
G=$(mktemp -d)
trap 'rm -rf "$G"' EXIT
C=tests/conformance
"$T" convert $C/gatv2_edge_dim/model.safetensors --calib $C/gatv2_edge_dim/graphs.safetensors -o "$G/gatv2_edge_dim.tgnn" >/dev/null
"$T" convert $C/gatv2_edge_dim/model.safetensors --calib $C/gatv2_edge_dim/graphs.safetensors --weights int4 -o "$G/gatv2_edge_dim_i4.tgnn" >/dev/null
"$T" convert $C/gat_heads4_concat/model.safetensors --calib $C/gat_heads4_concat/graphs.safetensors --weights int4 -o "$G/gat_heads4_concat_i4.tgnn" >/dev/null
scripts/qemu-run.sh --board m4 "$G/gatv2_edge_dim.tgnn:$C/gatv2_edge_dim/graphs.safetensors" \
  "$G/gatv2_edge_dim_i4.tgnn:$C/gatv2_edge_dim/graphs.safetensors" \
  "$G/gat_heads4_concat_i4.tgnn:$C/gat_heads4_concat/graphs.safetensors"
if [ -z "${TINYGNN_DATA:-}" ]; then
  echo "SKIP cora-gat on the emulated M4: TINYGNN_DATA is not set"
  exit 0
fi
[ -f .cache/inputs/cora-gat/graphs.safetensors ] || "$PY" models/make_inputs.py cora-gat .cache/inputs/cora-gat
scripts/qemu-run.sh --board m4 --sparse models/cora-gat/cora-gat.tgnn:.cache/inputs/cora-gat/graphs.safetensors
