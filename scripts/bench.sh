#!/usr/bin/env bash
# Benchmarks: one command that measures everything and writes docs/benchmarks.md.
#
#   scripts/bench.sh                 # full run: emulated M4/M0 (QEMU) + host (tinygnn vs TFLite Micro vs PyG)
#   scripts/bench.sh --smoke         # CI: karate-gcn (host comparison + one QEMU M4 run), document in .cache/bench/smoke.md
#   scripts/bench.sh --no-boards     # host part only (writes docs/benchmarks.md without the QEMU tables)
#   scripts/bench.sh --out FILE      # write the document elsewhere
#   scripts/bench.sh --setup-only    # install what the benchmarks need, nothing else
#
# Set TINYGNN_DATA=/path/to/planetoid to include the Cora models (skipped, visibly, without it).
# Installs (idempotent, scripts/setup.sh): valgrind (apt), QEMU + Rust targets (unless
# --no-boards), the project venv (scripts/venv.sh: torch + PyG; or $TINYGNN_PYTHON) and a separate
# venv .venv-bench (or $TINYGNN_BENCH_VENV) with the pinned packages below (~1.6 GB, most of it
# tensorflow-cpu, used only to convert the TFLite comparison model).
# The tinygnn CLI is built with the committed release profile (LTO; any CARGO_PROFILE_RELEASE_*
# overrides are removed), unless $TINYGNN_CLI names a binary.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

BENCH_REQS=(tensorflow-cpu==2.21.0 tflite-micro==0.dev20261023182759 numpy==2.4.6 safetensors==0.8.0)

smoke=0; boards=1; setup_only=0; out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) smoke=1 ;;
        --no-boards) boards=0 ;;
        --setup-only) setup_only=1 ;;
        --out) shift; out="$1" ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "usage: $0 [--smoke] [--no-boards] [--setup-only] [--out FILE]" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$out" ] || { [ $smoke = 1 ] && out=.cache/bench/smoke.md || out=docs/benchmarks.md; }

log() { echo "bench.sh: $*" >&2; }

# 1. valgrind (callgrind instruction counts on the host); 2. QEMU, Rust targets, llvm-tools
# (the emulated boards). Both through scripts/setup.sh (idempotent).
if [ $boards = 1 ]; then scripts/setup.sh valgrind rust qemu >&2; else scripts/setup.sh valgrind >&2; fi

# 3. The project venv (PyG float reference, Cora inputs).
export TINYGNN_PYTHON="${TINYGNN_PYTHON:-$(scripts/venv.sh)}"

# 4. The bench venv: TensorFlow (converter) and TFLite Micro (interpreter).
VENV="${TINYGNN_BENCH_VENV:-$ROOT/.venv-bench}"
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    log "$VENV has no working pip; recreating it"; rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || { log "creating $VENV"; python3 -m venv "$VENV"; }
want="$(printf '%s\n' "${BENCH_REQS[@]}" | sort)"
have="$("$VENV/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null \
        | grep -iE '^(tensorflow-cpu|tensorflow_cpu|tflite-micro|tflite_micro|numpy|safetensors)==' \
        | sed 's/^tensorflow_cpu/tensorflow-cpu/; s/^tflite_micro/tflite-micro/' | sort || true)"
if [ "$want" != "$have" ]; then
    log "installing ${BENCH_REQS[*]} into $VENV (a few minutes the first time)"
    pip_log="$(mktemp)"
    if ! { "$VENV/bin/python" -m pip install -q --no-cache-dir --disable-pip-version-check --upgrade pip &&
           "$VENV/bin/python" -m pip install -q --no-cache-dir --disable-pip-version-check "${BENCH_REQS[@]}"; } >"$pip_log" 2>&1; then
        cat "$pip_log" >&2; log "pip install failed"; exit 1
    fi
    rm -f "$pip_log"
else
    log "$VENV up to date"
fi
[ $setup_only = 1 ] && exit 0

# 5. The CLI, release profile as committed (scripts/test.sh and qemu-run.sh build it the same way).
if [ -z "${TINYGNN_CLI:-}" ]; then
    log "building the tinygnn CLI (release)"
    (unset RUSTFLAGS CARGO_PROFILE_RELEASE_LTO CARGO_PROFILE_RELEASE_CODEGEN_UNITS CARGO_PROFILE_RELEASE_DEBUG
     CARGO_TARGET_DIR="$ROOT/target" cargo build --release -q -p tinygnn-cli)
    export TINYGNN_CLI="$ROOT/target/release/tinygnn" TINYGNN_BENCH_CLI_BUILT=1
fi

"$VENV/bin/python" scripts/bench.py --self-test
args=(--out "$out")
[ $smoke = 1 ] && args+=(--smoke)
[ $boards = 0 ] && args+=(--no-boards)
exec "$VENV/bin/python" scripts/bench.py "${args[@]}"
