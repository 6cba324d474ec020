#!/usr/bin/env bash
# Builds the C example firmware (plain C + libtinygnn.a, Arm GNU toolchain):
#
#   examples/c-qemu-m4/build.sh [OUT_DIR]      (default: target/c-qemu-m4)
#
# 1. libtinygnn.a: cargo build --release -p tinygnn-capi --target thumbv7em-none-eabihf
# 2. OUT_DIR/karate-gcn.{tgnn,c,h}: tinygnn convert --emit c of the bundled
#    karate-gcn model (checked byte-identical to models/karate-gcn/karate-gcn.tgnn)
# 3. OUT_DIR/graph_data.h: graph2c.py of models/karate-gcn/graphs.safetensors
# 4. OUT_DIR/firmware.elf: arm-none-eabi-gcc main.c startup.c karate-gcn.c libtinygnn.a
#
# Run it: qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
#           -semihosting-config enable=on,target=native -kernel OUT_DIR/firmware.elf
# Environment: TINYGNN_CLI (the tinygnn binary; default: cargo build -p tinygnn-cli),
# CARGO_TARGET_DIR (honoured), PYTHON (default: $TINYGNN_PYTHON, else python3; standard library only).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${1:-$ROOT/target/c-qemu-m4}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
mkdir -p "$OUT"
cd "$ROOT"

cargo build -q --release -p tinygnn-capi --target thumbv7em-none-eabihf
LIB="$TARGET_DIR/thumbv7em-none-eabihf/release/libtinygnn.a"

CLI="${TINYGNN_CLI:-}"
if [ -z "$CLI" ]; then
    cargo build -q --release -p tinygnn-cli
    CLI="$TARGET_DIR/release/tinygnn"
fi
M=models/karate-gcn
"$CLI" convert "$M/model.safetensors" --calib "$M/graphs.safetensors" -o "$OUT/karate-gcn.tgnn" --emit c >"$OUT/convert.log"
cmp "$OUT/karate-gcn.tgnn" "$M/karate-gcn.tgnn" || { echo "build.sh: converted model differs from $M/karate-gcn.tgnn" >&2; exit 1; }
"${PYTHON:-${TINYGNN_PYTHON:-python3}}" "$HERE/graph2c.py" "$M/graphs.safetensors" "$OUT/graph_data.h"

CFLAGS=(-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -std=c11 -O2 -g
        -Wall -Wextra -Werror -ffreestanding -ffunction-sections -fdata-sections -Wa,--noexecstack)
arm-none-eabi-gcc "${CFLAGS[@]}" -I "$ROOT/capi/include" -I "$OUT" -I "$HERE" \
    "$HERE/main.c" "$HERE/startup.c" "$OUT/karate-gcn.c" "$LIB" \
    -nostartfiles --specs=nano.specs -T "$HERE/link.ld" -Wl,--gc-sections \
    -Wl,-Map="$OUT/firmware.map" -lc -lgcc -o "$OUT/firmware.elf"
arm-none-eabi-size "$OUT/firmware.elf"   # text includes .rodata (model, graph)
