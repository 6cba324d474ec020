#!/usr/bin/env bash
# CI steps of link prediction (pair decoders, issue 4, helper `link`):
#   1. the runtime's pair-decoder tests (tests/ops_link.rs) and the host tool's
#      (tools/tests/link.rs: GRAPHS pairs, spec ops, conversion, AUC);
#   2. every link conformance golden (tests/conformance/link_*) converted with the CLI and
#      verified against its PyG float output: prints the max error in output steps and the
#      float / int8 AUC against edge_label, fails above 4 steps + 3 % of the output range;
#   3. with $TINYGNN_DATA: models/cora-link verified on its test pairs (float and int8 AUC;
#      `scripts/models.py check` holds it to its goal), then run on the emulated Cortex-M4
#      (scripts/qemu-run.sh --sparse; the bundle carries the 1054 node pairs): the device's
#      output bytes must equal `tinygnn run`'s; prints instructions per inference, arena, stack.
# Installs nothing of its own: cargo and the CLI as scripts/test.sh has them, QEMU and the
# thumbv7em target from scripts/boards-setup.sh (run by scripts/boards-ci.sh before this in
# scripts/test.sh), Python 3 stdlib.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${TINYGNN_PYTHON:-python3}"
cargo test -q --release -p tinygnn --test ops_link
cargo test -q --release -p tinygnn-cli --test link
T=target/release/tinygnn
[ -x "$T" ] || cargo build -q --release -p tinygnn-cli
scripts/verify-goldens.sh --auc link 3 tests/conformance/link_*/
if [ -z "${TINYGNN_DATA:-}" ]; then
  echo "SKIP cora-link: TINYGNN_DATA is not set"
  exit 0
fi
IN=.cache/inputs/cora-link
[ -f "$IN/graphs.safetensors" ] || "$PY" models/make_inputs.py cora-link "$IN"
"$T" verify models/cora-link/model.safetensors models/cora-link/cora-link.tgnn "$IN/graphs.safetensors" | tail -n 2
scripts/qemu-run.sh --board m4 --sparse models/cora-link/cora-link.tgnn:"$IN/graphs.safetensors"
