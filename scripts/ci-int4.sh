#!/usr/bin/env bash
# int4 weights and mixed precision (issue 5), the checks scripts/test.sh runs after the others:
#   1. int4-converted karate-gcn and digits-gin on the emulated Cortex-M4 (QEMU): the device's
#      output bytes must equal `tinygnn run`'s on the host (scripts/qemu-run.sh checks that);
#   2. the accuracy table: scripts/accuracy.py --check re-measures float / int8 / int4 / mixed for
#      every bundled model and requires docs/accuracy.md to be unchanged (Cora needs
#      $TINYGNN_DATA; without it a visible SKIP line).
# The int4 unit, property and CLI tests (src/kernels/dense_i4.rs, tests/int4_weights.rs,
# tools/tests/int4.rs, tools/tests/int4acc.rs: feedback rounding, output scales, bias correction,
# the karate/digits int4 goals, verify's precision labels) run with `cargo test --workspace` in
# scripts/test.sh; int4acc.rs runs again below, before the table, so its result shows in this log.
# Installs: nothing beyond scripts/boards-setup.sh (QEMU, Rust targets; idempotent) and the
# Python venv of scripts/venv.sh (used as $TINYGNN_PYTHON when set).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
scripts/boards-setup.sh
PY="${TINYGNN_PYTHON:-$(scripts/venv.sh)}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== int4: building the CLI"
cargo build -q --release -p tinygnn-cli
T="$ROOT/target/release/tinygnn"
OUT="$ROOT/target/int4"
mkdir -p "$OUT"

echo "== int4: converting karate-gcn and digits-gin with --weights int4"
"$T" convert models/karate-gcn/model.safetensors --calib models/karate-gcn/graphs.safetensors \
    -o "$OUT/karate-gcn-int4.tgnn" --weights int4 | grep -E "^wrote|^weight precision"
"$T" convert models/digits-gin/model.safetensors --calib models/digits-gin/calib.safetensors \
    -o "$OUT/digits-gin-int4.tgnn" --output-range argmax --weight-scales auto --weights int4 \
    | grep -E "^wrote|^weight precision"
"$T" inspect "$OUT/digits-gin-int4.tgnn" | grep -E "^flash"

echo "== int4: emulated Cortex-M4, device bytes == host bytes"
# The board crates share one target dir, as in scripts/boards-ci.sh (reuses its builds).
# karate: the whole graph in one inference (also compared with `tinygnn run --output-bytes`);
# digits: graph by graph with int8 features, as scripts/boards-ci.sh runs the int8 model.
export CARGO_TARGET_DIR="$ROOT/boards/target" RUSTFLAGS="${RUSTFLAGS:--D warnings}"
scripts/qemu-run.sh --board m4 "$OUT/karate-gcn-int4.tgnn:models/karate-gcn/graphs.safetensors"
scripts/qemu-run.sh --board m4 --split --i8 "$OUT/digits-gin-int4.tgnn:models/digits-gin/graphs.safetensors"
unset CARGO_TARGET_DIR RUSTFLAGS

echo "== int4: accuracy tests (tools/tests/int4acc.rs)"
cargo test -q --release -p tinygnn-cli --test int4acc 2>&1 | grep -E "^test result|FAILED|panicked"

echo "== int4: accuracy table (docs/accuracy.md)"
"$PY" scripts/accuracy.py --check | tail -n 12
