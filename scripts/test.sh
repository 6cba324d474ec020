#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what it needs
# (Rust targets, QEMU, the Python venv with torch + PyG), then
#   1. formatting and clippy (warnings are errors),
#   2. host unit, property, conformance and CLI tests (Rust),
#   3. the runtime built for every MCU target and feature set; the link-time
#      panic-freedom check and the stack bound,
#   4. the Python exporter tests,
#   5. the bundled models: convert → run → bytes and accuracy checks,
#   6. the emulated boards (QEMU): device bytes == host bytes.
# Set TINYGNN_DATA to the Planetoid folder to include the Cora models.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
step() { printf '\n==== %s ====\n' "$*"; }

step "setup: toolchain, targets, QEMU"
scripts/setup.sh

step "setup: python venv (torch, torch_geometric)"
PY=$(scripts/venv.sh)
export TINYGNN_PYTHON="$PY"

step "format and lints"
cargo fmt --all -- --check
RUSTFLAGS="-D warnings" cargo clippy --workspace --all-targets -- -D warnings

step "host tests (runtime, CLI, conformance, models)"
cargo test --workspace --release

step "runtime on every MCU target and feature set"
for target in thumbv6m-none-eabi thumbv7em-none-eabihf thumbv8m.main-none-eabihf riscv32imc-unknown-none-elf; do
  # every op family, with and without defmt; and no op at all (a build must still be warning-free)
  for features in "all-ops" "all-ops,defmt" ""; do
    echo "-- $target features=[$features]"
    RUSTFLAGS="-D warnings" cargo build -q -p tinygnn --release --target "$target" --no-default-features ${features:+--features $features}
  done
done

step "panic-freedom of the inference path (link time) and the stack bound"
scripts/panic-check.sh --stack

step "python: exporter, graphs files, conformance goldens (regenerated from PyG and compared)"
scripts/test-python.sh

step "bundled models"
"$PY" scripts/models.py check
step "calibration methods and the quantization debugger" && scripts/ci-qdebug.sh

step "emulated boards (QEMU)"
scripts/boards-ci.sh

step "C API: generated header, C example on the emulated Cortex-M4 vs the host"; scripts/ci-capi.sh
step "graphs streamed over the emulated UART (tinygnn stream, boards/qemu-stream)"
scripts/ci-stream.sh --no-setup
step "benchmark harness (smoke: karate-gcn, tinygnn vs TFLite Micro vs PyG)"; scripts/ci-bench.sh
step "int4 weights: int4 models on the emulated M4, the accuracy table"; scripts/ci-int4.sh
step "sparse input layer and GCN-only firmware size"
scripts/ci-sparse.sh
step "attention layers: GAT goldens through the CLI, cora-gat on the emulated M4" && scripts/ci-gat.sh
step "decoupled propagation (APPNP, SGConv, GCN2Conv, TAGConv): goldens through the CLI, cora-appnp on the emulated M4" && scripts/ci-propagate.sh
step "host speed: fast requantization proptests (20,000 cases), karate-gcn dense vs sparse instructions"; scripts/ci-speed.sh
step "host speed 2: blocked host matmul and GCN fast paths (20,000 cases), karate-gcn instruction guard"; scripts/ci-speed2.sh
step "edge features: GINE goldens through the CLI, GINE models on the emulated M4" && scripts/ci-edgefeat.sh
step "point clouds: EdgeConv/DynamicEdgeConv tests and goldens, shapes-dgcnn on the emulated M4 and M0" && scripts/ci-dgcnn.sh
step "link prediction: pair decoders, link goldens through the CLI, cora-link AUC" && scripts/ci-link.sh
step "DSP/portable dense kernels on emulated Cortex-M4/M0/M33: bit-exact and instructions per MAC"; scripts/ci-dsp.sh
step "hostile input: cargo deny, mutation suite counts, Miri, fuzzing, stack per model"; scripts/ci-hostile.sh
step "code size: size features on every target, kernels-small tests, GCN-only firmware .text guard"; scripts/ci-size.sh
step "M0 stack: stack below .data/.bss, the old lock-up arenas SKIP, a too-small stack faults at once, whole-run stack high-water"; scripts/ci-m0stack.sh
