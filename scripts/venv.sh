#!/usr/bin/env bash
# Create (or complete) the Python environment used by tinygnn's exporter, example models
# and conformance goldens, then print the path of its python.
#
#   scripts/venv.sh                 # venv at <repo>/.venv
#   TINYGNN_VENV=/path scripts/venv.sh   # elsewhere
#   PYTHON=python3.11 scripts/venv.sh    # interpreter used to create it
#
# Idempotent: when everything imports already (and `tinygnn` is this checkout's
# tools/python, the distribution `tinygnn-export`), nothing is installed. Only PyPI is used (its torch wheel is the CUDA
# build, which also runs on CPU).
# Disk: pip runs without its cache (it would keep a second copy of the ~4 GB of wheels), and
# triton, which torch pulls in for GPU compilation only (torch.compile; nothing here uses it,
# and torch imports it lazily), is uninstalled again: about 1 GB.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TINYGNN_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
PKG="$ROOT/tools/python"
REQS=(torch torch-geometric safetensors scipy scikit-learn numpy pytest)

log() { echo "venv.sh: $*" >&2; }

# 1. The venv itself (recreated if its python or pip is broken).
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    log "$VENV has no working pip; recreating it"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    if ! "$PYTHON" -m venv "$VENV"; then
        log "'$PYTHON -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
        exit 1
    fi
fi
PY="$VENV/bin/python"

# 2. Packages, unless they are all there already.
check='
import importlib, pathlib, sys
for m in ("torch", "torch_geometric", "safetensors", "scipy", "sklearn", "numpy", "pytest"):
    importlib.import_module(m)
import tinygnn
want = pathlib.Path(sys.argv[1]).resolve()
sys.exit(0 if want in pathlib.Path(tinygnn.__file__).resolve().parents else 1)
'
if "$PY" -W ignore -c "$check" "$PKG" >/dev/null 2>&1; then
    log "up to date"
else
    log "installing ${REQS[*]} and tools/python (editable); this can take a few minutes"
    LOG="$(mktemp -t tinygnn-pip.XXXXXX)"
    pip_quiet() {  # pip's output is shown only when it fails
        "$PY" -m pip install -q --no-cache-dir --disable-pip-version-check "$@" >>"$LOG" 2>&1 \
            || { cat "$LOG" >&2; log "pip install $* failed"; exit 1; }
    }
    pip_quiet --upgrade pip
    pip_quiet "${REQS[@]}"
    pip_quiet -e "$PKG"
    "$PY" -m pip uninstall -q -y triton >>"$LOG" 2>&1 || true
    rm -f "$LOG"
    "$PY" -W ignore -c "$check" "$PKG" || { log "installation incomplete"; exit 1; }
fi

echo "$PY"
