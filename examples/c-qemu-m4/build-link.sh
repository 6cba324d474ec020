#!/usr/bin/env bash
# Builds the link-prediction C example (link.c) for the emulated Cortex-M4 and
# for the host, from a pair model and its GRAPHS file:
#
#   examples/c-qemu-m4/build-link.sh MODEL.safetensors GRAPHS.safetensors OUT_DIR
#
# 1. libtinygnn.a for thumbv7em-none-eabihf and for the host
#    (cargo build --release -p tinygnn-capi [--target thumbv7em-none-eabihf])
# 2. OUT_DIR/link_model.{tgnn,c,h}: tinygnn convert --emit c, calibrated on
#    GRAPHS (so the pair capacity is its pair count)
# 3. OUT_DIR/graph_data.h: graph2c.py of GRAPHS (features, edges, edge_label_index)
# 4. OUT_DIR/firmware.elf (arm-none-eabi-gcc link.c startup.c ...) and
#    OUT_DIR/link-host (gcc link.c host_io.c ... with the host libtinygnn.a)
#
# Run: qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -icount shift=10 \
#        -semihosting-config enable=on,target=native -kernel OUT_DIR/firmware.elf
#      OUT_DIR/link-host
# Environment as for build.sh (TINYGNN_CLI, CARGO_TARGET_DIR, PYTHON).
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 MODEL.safetensors GRAPHS.safetensors OUT_DIR" >&2; exit 2; }
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
MODEL="$1" GRAPHS="$2" OUT="$3"
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
"$CLI" convert "$MODEL" --calib "$GRAPHS" -o "$OUT/link_model.tgnn" --emit c >"$OUT/convert.log"
"${PYTHON:-${TINYGNN_PYTHON:-python3}}" "$HERE/graph2c.py" "$GRAPHS" "$OUT/graph_data.h"

WARN=(-std=c11 -O2 -Wall -Wextra -Werror)
arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 "${WARN[@]}" -g \
    -ffreestanding -ffunction-sections -fdata-sections -Wa,--noexecstack \
    -I "$ROOT/capi/include" -I "$OUT" -I "$HERE" \
    "$HERE/link.c" "$HERE/startup.c" "$OUT/link_model.c" "$LIB_M4" \
    -nostartfiles --specs=nano.specs -T "$HERE/link.ld" -Wl,--gc-sections \
    -Wl,-Map="$OUT/firmware.map" -lc -lgcc -o "$OUT/firmware.elf"
# The host staticlib needs the system libraries Rust's std links (-lpthread -ldl -lm).
gcc "${WARN[@]}" -I "$ROOT/capi/include" -I "$OUT" -I "$HERE" \
    "$HERE/link.c" "$HERE/host_io.c" "$OUT/link_model.c" "$LIB_HOST" \
    -lpthread -ldl -lm -o "$OUT/link-host"
arm-none-eabi-size "$OUT/firmware.elf"
