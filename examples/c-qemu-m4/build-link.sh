#!/usr/bin/env bash
# Builds the link-prediction C example (link.c) for the emulated Cortex-M4 and
# for the host, from a pair model and its GRAPHS file:
#
#   examples/c-qemu-m4/build-link.sh MODEL.safetensors CALIB.safetensors GRAPHS.safetensors OUT_DIR
#       [--sparse] [--same-as MODEL.tgnn] [-- CONVERT_ARGS…]
#
# 1. libtinygnn.a for thumbv7em-none-eabihf and for the host
#    (cargo build --release -p tinygnn-capi [--target thumbv7em-none-eabihf])
# 2. OUT_DIR/link_model.{tgnn,c,h}: tinygnn convert --emit c, calibrated on
#    CALIB (the pair capacity is its pair count unless CONVERT_ARGS say
#    --max-pairs); --same-as: fail unless the result is byte-identical to MODEL.tgnn
# 3. OUT_DIR/graph_data.h: graph2c.py of GRAPHS (features, edges, edge_label_index;
#    --sparse: the features as CSR, quantized by link.c, and the arena sized by
#    `tinygnn inspect`'s need at capacity with sparse input)
# 4. OUT_DIR/firmware.elf (arm-none-eabi-gcc link.c startup.c ...) and
#    OUT_DIR/link-host (gcc link.c host_io.c ... with the host libtinygnn.a)
#
# Run: qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -icount shift=10 \
#        -semihosting-config enable=on,target=native -kernel OUT_DIR/firmware.elf
#      OUT_DIR/link-host
# Environment as for build.sh (TINYGNN_CLI, CARGO_TARGET_DIR, PYTHON).
set -euo pipefail
usage() { echo "usage: $0 MODEL.safetensors CALIB.safetensors GRAPHS.safetensors OUT_DIR [--sparse] [--same-as MODEL.tgnn] [-- CONVERT_ARGS...]" >&2; exit 2; }
[ $# -ge 4 ] || usage
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
MODEL="$1" CALIB="$2" GRAPHS="$3" OUT="$4"
shift 4
sparse="" same_as=""
while [ $# -gt 0 ]; do
    case "$1" in
        --sparse) sparse=1; shift ;;
        --same-as) [ $# -ge 2 ] || usage; same_as="$2"; shift 2 ;;
        --) shift; break ;;
        *) usage ;;
    esac
done
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
mkdir -p "$OUT"

(cd "$ROOT" && cargo build -q --release -p tinygnn-capi --target thumbv7em-none-eabihf \
    && cargo build -q --release -p tinygnn-capi)
LIB_M4="$TARGET_DIR/thumbv7em-none-eabihf/release/libtinygnn.a"
LIB_HOST="$TARGET_DIR/release/libtinygnn.a"

CLI="${TINYGNN_CLI:-}"
if [ -z "$CLI" ]; then
    (cd "$ROOT" && cargo build -q --release -p tinygnn-cli)
    CLI="$TARGET_DIR/release/tinygnn"
fi
"$CLI" convert "$MODEL" --calib "$CALIB" -o "$OUT/link_model.tgnn" --emit c "$@" >"$OUT/convert.log"
if [ -n "$same_as" ]; then
    cmp "$OUT/link_model.tgnn" "$same_as" || { echo "build-link.sh: converted model differs from $same_as" >&2; exit 1; }
fi
"${PYTHON:-${TINYGNN_PYTHON:-python3}}" "$HERE/graph2c.py" "$GRAPHS" "$OUT/graph_data.h" ${sparse:+--sparse}
DEFS=()
if [ -n "$sparse" ]; then
    arena=$("$CLI" inspect "$OUT/link_model.tgnn" | sed -n 's/^arena at capacity with sparse input: \([0-9]*\) bytes.*/\1/p')
    [ -n "$arena" ] || { echo "build-link.sh: the model does not read sparse features in place" >&2; exit 1; }
    DEFS=(-DLINK_ARENA_BYTES="${arena}u")
fi

WARN=(-std=c11 -O2 -Wall -Wextra -Werror)
arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 "${WARN[@]}" -g \
    -ffreestanding -ffunction-sections -fdata-sections -Wa,--noexecstack \
    "${DEFS[@]}" -I "$ROOT/capi/include" -I "$OUT" -I "$HERE" \
    "$HERE/link.c" "$HERE/startup.c" "$OUT/link_model.c" "$LIB_M4" \
    -nostartfiles --specs=nano.specs -T "$HERE/link.ld" -Wl,--gc-sections \
    -Wl,-Map="$OUT/firmware.map" -lm -lc -lgcc -o "$OUT/firmware.elf"
# The host staticlib needs the system libraries Rust's std links (-lpthread -ldl -lm).
gcc "${WARN[@]}" "${DEFS[@]}" -I "$ROOT/capi/include" -I "$OUT" -I "$HERE" \
    "$HERE/link.c" "$HERE/host_io.c" "$OUT/link_model.c" "$LIB_HOST" \
    -lpthread -ldl -lm -o "$OUT/link-host"
arm-none-eabi-size "$OUT/firmware.elf"
