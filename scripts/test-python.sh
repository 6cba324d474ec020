#!/usr/bin/env bash
# Set up the Python environment (scripts/venv.sh) and run the Python test suite:
# exporter, GRAPHS files, datasets, conformance goldens (--check) and example models.
# Cora tests run when $TINYGNN_DATA points to a folder holding Cora/raw/, else they skip.
# (scripts/test.sh --area exporter runs the same.)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$("$ROOT/scripts/venv.sh")"
cd "$ROOT/tools/python"
exec "$PY" -m pytest -q "$@"
