#!/usr/bin/env bash
# CI part of the benchmarks (called by scripts/test.sh): a smoke run of the harness.
#
# Installs (idempotent, via scripts/bench.sh): valgrind (apt), the bench venv .venv-bench
# (tensorflow-cpu, tflite-micro, numpy, safetensors; pinned in bench.sh), the project venv
# (scripts/venv.sh) unless $TINYGNN_PYTHON is set. Then checks the harness's output parsers
# (bench.py --self-test), runs karate-gcn once on the emulated M4 (scripts/qemu-run.sh, reusing
# boards-ci.sh's build dir) and on the host: tinygnn
# against the real TFLite Micro interpreter (the GCN as a dense-adjacency int8 .tflite made by
# TensorFlow's converter) and PyG float; fails if either int8 model's argmax agrees with PyG on
# fewer than 90 % of the nodes, or if any step of the harness fails. Prints the measured
# ratio line and the generated tables (.cache/bench/smoke.md). The goals (≥ 3×, smaller arena)
# are reported, not enforced. The full run is `scripts/bench.sh` (writes docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
out=.cache/bench/smoke.md
log="$(mktemp)"
if ! scripts/bench.sh --smoke --out "$out" >"$log" 2>&1; then
    tail -40 "$log"; rm -f "$log"
    echo "ci-bench: FAILED"; exit 1
fi
grep -E '^bench-ratio ' "$log" || { tail -40 "$log"; echo "ci-bench: no ratio line"; exit 1; }
rm -f "$log"
sed -n '/^| model | board/,/^$/p; /^### Working models/,/^Produced by/p' "$out"
echo "ci-bench: ok ($(( $(date +%s) - t0 ))s)"
