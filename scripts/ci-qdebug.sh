#!/usr/bin/env bash
# CI steps of the calibration methods and the quantization debugger (issue 5):
#   1. the debugger on a bundled model: `tinygnn verify --per-layer --by-degree --plot`,
#      and the SVG it writes is well-formed XML with one bar per op;
#   2. scripts/calibration-report.py check: every calibration method measured again on every
#      bundled model (Cora ones only with $TINYGNN_DATA) must give the rows committed in
#      docs/quantization.md, and the example plot docs/quantization-digits-gin.svg.
# Installs nothing: the CLI comes from cargo (as in scripts/test.sh), Python 3 stdlib only
# (the Cora inputs come from scripts/models.py's cache, or $TINYGNN_PYTHON with torch).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${TINYGNN_PYTHON:-python3}"
T=target/release/tinygnn
# Built by `cargo test --workspace --release` in scripts/test.sh; build it only when missing
# (as scripts/models.py does), so that a feature-unification difference never rebuilds it.
[ -x "$T" ] || cargo build -q --release -p tinygnn-cli
D=models/digits-gin
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$T" verify "$D/model.safetensors" "$D/digits-gin.tgnn" "$D/graphs.safetensors" \
  --per-layer --by-degree --plot "$OUT/plot.svg" | tee "$OUT/table.txt"
ops=$("$T" inspect "$D/digits-gin.tgnn" --json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["ops"]))')
"$PY" - "$OUT/plot.svg" "$ops" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
bars = [e for e in root.iter("{http://www.w3.org/2000/svg}rect") if "bar" in e.get("class", "").split()]
worst = [e for e in bars if "worst" in e.get("class", "")]
assert len(bars) == int(sys.argv[2]), f"{len(bars)} bars for {sys.argv[2]} ops"
assert len(worst) == 1, worst
print(f"plot: well-formed SVG, {len(bars)} bars for {sys.argv[2]} ops, worst op {worst[0].get('data-op')}")
PYEOF
"$PY" scripts/calibration-report.py check
