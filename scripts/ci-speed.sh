#!/usr/bin/env bash
# CI part of the host-speed work (issue 6; called by scripts/test.sh).
#
# Installs (idempotent): valgrind (apt), if missing. Then:
#  1. runs the bit-exactness proptests of the fast requantization (quant::Rescale,
#     requant::requantize_row / requantize_row_prepared against their reference forms) with
#     20,000 cases each instead of proptest's default 256;
#  2. counts, with callgrind, the instructions of one karate-gcn inference on the host
#     (`tinygnn bench`, the `infer` function only) with dense int8 and with sparse int8 features,
#     checks that both give the same output bytes, and prints both counts.
# The full comparison with TFLite Micro is scripts/bench.sh (docs/benchmarks.md); the CI smoke of it
# is scripts/ci-bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
if ! command -v valgrind >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq valgrind >/dev/null
fi

PROPTEST_CASES=20000 cargo test -q --release -p tinygnn --lib -- quant:: requant:: 2>&1 | grep -E '^test result|FAILED|panicked' \
    || { echo "ci-speed: proptests FAILED"; exit 1; }

cargo build -q --release -p tinygnn-cli
cli=target/release/tinygnn
m=models/karate-gcn/karate-gcn.tgnn g=models/karate-gcn/graphs.safetensors
declare -A insn crc
for f in i8 sparse-i8; do
    out="$(mktemp)"
    log="$(valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
           --toggle-collect=tinygnn_cli::cmd::bench::infer "$cli" bench "$m" "$g" --iters 10 --warmup 0 \
           --features "$f" 2>&1 | tee "$out")"
    n="$(grep -oE 'Collected : [0-9]+' <<<"$log" | grep -oE '[0-9]+$')"
    insn[$f]=$(( n / 10 ))
    crc[$f]="$(grep -oE 'crc32 [0-9a-f]+' "$out")"
    rm -f "$out"
done
[ "${crc[i8]}" = "${crc[sparse-i8]}" ] || { echo "ci-speed: dense and sparse outputs differ (${crc[i8]} vs ${crc[sparse-i8]})"; exit 1; }
echo "ci-speed: karate-gcn instructions per inference (callgrind, host): dense int8 ${insn[i8]}, sparse int8 ${insn[sparse-i8]} (same output, ${crc[i8]})"
echo "ci-speed: ok ($(( $(date +%s) - t0 ))s)"
