#!/usr/bin/env bash
# area: bundled models: convert/run/accuracy goals, calibration report, quantization debugger, int4 accuracy table, sparse input
# needs: rust cli python
# 1. scripts/models.py check: every bundled model converted again (bytes equal the committed
#    .tgnn), run, and held to its goals (Cora models only with $TINYGNN_DATA);
# 2. the quantization debugger: `tinygnn verify --per-layer --by-degree --plot` on digits-gin, the
#    SVG it writes is well-formed XML with one bar per op; scripts/calibration-report.py check:
#    every calibration method measured again on every bundled model must give the rows committed
#    in docs/quantization.md, and the example plot docs/quantization-digits-gin.svg;
# 3. int4 weights: karate-gcn and digits-gin converted with --weights int4 (prints the weight
#    precision and flash); scripts/accuracy.py --check --quick re-measures float / int8 / int4 /
#    mixed / int2 / avg-2 / A4 for every bundled model and requires docs/accuracy.md to be
#    unchanged but for the int4 rounding comparison, which it leaves out (Cora: $TINYGNN_DATA);
# 4. `tinygnn run --sparse` gives the same output bytes as the dense input on the bundled models
#    whose graphs are at hand (karate-gcn, digits-gin; cora-gcn and cora-sage when their
#    .cache/inputs exist), and prints the arena of both;
# 5. with $TINYGNN_DATA: cora-link verified on its test pairs (float and int8 AUC), and
#    models/cora-appnp/compare_int8_steps.py (accuracy with the i32 intermediate values against
#    requantizing every step to int8).
# (The bundled models on the emulated boards are the boards area's.)
source "$(dirname "$0")/../lib.sh"
need rust cli python
T="$TINYGNN_BIN"
PY="$TINYGNN_PYTHON"
OUT=$(mktemp -d)
acc_pid=""
trap '[ -z "$acc_pid" ] || kill "$acc_pid" 2>/dev/null || true; rm -rf "$OUT"' EXIT

# The accuracy check (3. below) runs beside steps 1-2 (each keeps both cores busy only part of
# the time); the models' inputs are made first, so that the two only read them.
"$PY" - <<'PYEOF'
import sys
sys.path.insert(0, "scripts")
import models as M
for p in sorted(M.MODELS.glob("*/goals.json")):
    M.inputs(p.parent.name)
PYEOF
"$PY" scripts/accuracy.py --check --quick >"$OUT/accuracy.log" 2>&1 &
acc_pid=$!

say "bundled models (scripts/models.py check)"
"$PY" scripts/models.py check

say "quantization debugger: verify --per-layer --by-degree --plot (digits-gin)"
D=models/digits-gin
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
say "calibration methods (scripts/calibration-report.py check)"
"$PY" scripts/calibration-report.py check

say "int4: converting karate-gcn and digits-gin with --weights int4"
"$T" convert models/karate-gcn/model.safetensors --calib models/karate-gcn/graphs.safetensors \
    -o "$OUT/karate-gcn-int4.tgnn" --weights int4 | grep -E "^wrote|^weight precision"
"$T" convert models/digits-gin/model.safetensors --calib models/digits-gin/calib.safetensors \
    -o "$OUT/digits-gin-int4.tgnn" --output-range argmax --weight-scales auto --weights int4 \
    | grep -E "^wrote|^weight precision"
"$T" inspect "$OUT/digits-gin-int4.tgnn" | grep -E "^flash"
say "int4: accuracy table (scripts/accuracy.py --check --quick, docs/accuracy.md; started above)"
acc_rc=0
wait "$acc_pid" || acc_rc=$?
acc_pid=""
if [ "$acc_rc" != 0 ]; then
    cat "$OUT/accuracy.log"
    echo "FAIL accuracy.py --check --quick (exit $acc_rc)"
    exit 1
fi
tail -n 12 "$OUT/accuracy.log"

say "tinygnn run --sparse: same output bytes as dense input"
for m in karate-gcn digits-gin cora-gcn cora-sage; do
    graphs=models/$m/graphs.safetensors
    [ -f "$graphs" ] || graphs=.cache/inputs/$m/graphs.safetensors
    if [ ! -f "$graphs" ]; then
        echo "SKIP $m: no graphs file (Cora: set TINYGNN_DATA; models/make_inputs.py makes it)"
        continue
    fi
    "$T" run "models/$m/$m.tgnn" "$graphs" --output-bytes "$OUT/dense.bin" > "$OUT/dense.log"
    "$T" run "models/$m/$m.tgnn" "$graphs" --sparse --output-bytes "$OUT/sparse.bin" > "$OUT/sparse.log"
    cmp -s "$OUT/dense.bin" "$OUT/sparse.bin" || { echo "FAIL $m: sparse output bytes differ from dense"; exit 1; }
    echo "$m: same $(stat -c %s "$OUT/dense.bin") output bytes; dense $(grep '^arena' "$OUT/dense.log"); sparse $(grep '^arena' "$OUT/sparse.log")"
done

if [ -z "${TINYGNN_DATA:-}" ]; then
    echo "SKIP cora-link verification and the cora-appnp int8-steps comparison: TINYGNN_DATA is not set"
else
    say "cora-link on its test pairs (float and int8 AUC)"
    IN=.cache/inputs/cora-link
    [ -f "$IN/graphs.safetensors" ] || "$PY" models/make_inputs.py cora-link "$IN"
    "$T" verify models/cora-link/model.safetensors models/cora-link/cora-link.tgnn "$IN/graphs.safetensors" | tail -n 2
    say "cora-appnp: i32 intermediate values against requantizing every step to int8"
    "$PY" models/cora-appnp/compare_int8_steps.py 2>&1 | grep -v -i "warn\|^Processing\|^Done"
fi
echo "models: ok"
