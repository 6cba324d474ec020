#!/usr/bin/env bash
# area: C API: cbindgen header up to date and C99/C11-clean, C example and link.c on the emulated M4 vs the host
# needs: rust qemu arm-gcc cbindgen cli
# The C API checks:
#   1. regenerates capi/include/tinygnn.h with cbindgen and fails if the
#      committed header differs (--regen: rewrite it instead);
#   2. compiles the header alone with the host gcc as C99 and C11, warnings as
#      errors, checking the handle sizes it declares;
#   3. builds the C example (examples/c-qemu-m4: plain C + libtinygnn.a for
#      thumbv7em-none-eabihf + the model emitted by `tinygnn convert --emit c`)
#      with the Arm GNU toolchain, runs it on QEMU mps2-an386 (Cortex-M4F) and
#      fails unless the output bytes it prints equal `tinygnn run --output-bytes`,
#      and unless the linked firmware is free of panic machinery (no panic
#      handler or core::panicking symbol survives --gc-sections);
#   4. node pairs (link prediction): the C program examples/c-qemu-m4/link.c,
#      built by build-link.sh for the emulated Cortex-M4 and for the host, scores
#      the pairs of the link conformance goldens tests/conformance/link_inner
#      (GCN + inner product) and link_mlp_hadamard (GCN + Hadamard + MLP) and,
#      with $TINYGNN_DATA, the bundled cora-link on its 1054 test pairs (sparse
#      features quantized by the C program); fails unless both print the bytes of
#      `tinygnn run --output-bytes` and reject missing, one-sided, out-of-range and
#      too many pairs with their codes.
# (The no_std staticlib's clippy for thumbv7em-none-eabihf is the lint area's.)
# Prints the firmware size and the bytes compared.
#
#   scripts/areas/capi.sh [--regen]     (or scripts/test.sh --area capi)
source "$(dirname "$0")/../lib.sh"
regen=""
[ "${1:-}" = "--regen" ] && regen=1
need rust qemu arm-gcc cbindgen cli
[ -z "${TINYGNN_DATA:-}" ] || need python
CBINDGEN_VERSION=$(cbindgen --version | awk '{print $2}')

OUT="${CARGO_TARGET_DIR:-$ROOT/target}/capi"
mkdir -p "$OUT"

# ---- 1. the generated header --------------------------------------------------
HEADER=capi/include/tinygnn.h
cbindgen -q --config capi/cbindgen.toml --crate tinygnn-capi --output "$OUT/tinygnn.h" capi
if [ -n "$regen" ]; then
    cp "$OUT/tinygnn.h" "$HEADER"
    echo "capi: wrote $HEADER"
elif ! diff -u "$HEADER" "$OUT/tinygnn.h"; then
    echo "capi: FAIL: $HEADER is not what cbindgen generates from capi/src (run scripts/areas/capi.sh --regen)" >&2
    exit 1
fi
echo "capi: $HEADER matches cbindgen $CBINDGEN_VERSION"

# ---- 2. the header compiles as C99 and C11 --------------------------------------
cat > "$OUT/header_check.c" <<'C'
#include "tinygnn.h"
_Static_assert(sizeof(tgnn_model) == TGNN_MODEL_STORAGE_BYTES, "model handle size");
_Static_assert(sizeof(tgnn_session) == TGNN_SESSION_STORAGE_BYTES, "session handle size");
_Static_assert(_Alignof(tgnn_model) == TGNN_HANDLE_ALIGN, "model handle alignment");
_Static_assert(_Alignof(tgnn_session) == TGNN_HANDLE_ALIGN, "session handle alignment");
int main(void) { return TGNN_OK; }
C
echo '#include "tinygnn.h"' > "$OUT/header_c99.c"
gcc -std=c99 -pedantic -Wall -Wextra -Werror -I capi/include -c "$OUT/header_c99.c" -o "$OUT/header_c99.o"
gcc -std=c11 -pedantic -Wall -Wextra -Werror -I capi/include -c "$OUT/header_check.c" -o "$OUT/header_check.o"
arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -std=c11 -Wall -Wextra -Werror \
    -I capi/include -c "$OUT/header_check.c" -o "$OUT/header_check_m4.o"
echo "capi: header compiles (gcc -std=c99/c11 -pedantic, arm-none-eabi-gcc c11; handle sizes and alignment checked)"

# ---- 3. the C example on the emulated Cortex-M4 ---------------------------------
CLI="$TINYGNN_BIN"
TINYGNN_CLI="$CLI" examples/c-qemu-m4/build.sh "$OUT/c-qemu-m4"
set +e
timeout 120 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -icount shift=10 \
    -semihosting-config enable=on,target=native -kernel "$OUT/c-qemu-m4/firmware.elf" \
    </dev/null >"$OUT/c-qemu-m4/qemu.log" 2>&1
rc=$?
set -e
cat "$OUT/c-qemu-m4/qemu.log" | grep -v '^bytes ' || true
if [ $rc -ne 0 ]; then
    echo "capi: FAIL: the C example exited with $rc$([ $rc = 124 ] && echo ' (timeout)')" >&2
    exit 1
fi
"$CLI" run models/karate-gcn/karate-gcn.tgnn models/karate-gcn/graphs.safetensors --output-bytes "$OUT/host.bin" >/dev/null
host=$(od -An -tx1 -v "$OUT/host.bin" | tr -d ' \n')
device=$(grep '^bytes ' "$OUT/c-qemu-m4/qemu.log" | cut -d' ' -f2 | tr -d '\n')
if [ -z "$host" ] || [ "$host" != "$device" ]; then
    echo "capi: FAIL: C example output bytes differ from tinygnn run" >&2
    echo "  host:   $host" >&2
    echo "  device: $device" >&2
    exit 1
fi
echo "capi: C example on QEMU mps2-an386: $(( ${#host} / 2 )) output bytes == tinygnn run --output-bytes"
PANIC_RE='rust_begin_unwind|panicking'
# (With the release profile's LTO the library itself is already free of them; without
# LTO it holds the panic handler and core::panicking, and --gc-sections must drop them.)
if arm-none-eabi-nm "$OUT/c-qemu-m4/firmware.elf" | grep -E "$PANIC_RE"; then
    echo "capi: FAIL: panic machinery is linked into the C example (symbols above)" >&2
    exit 1
fi
echo "capi: no panic handler or core::panicking symbol linked into the C example"

# ---- 4. node pairs (link prediction) on the emulated Cortex-M4 and the host -------
# link_case NAME MODEL CALIB GRAPHS [build-link.sh options]: build link.c for both,
# run both, compare their scores with `tinygnn run` of the converted model.
link_case() {
    local name="$1" model="$2" calib="$3" graphs="$4"
    shift 4
    local L="$OUT/c-link-$name" rc hrc
    TINYGNN_CLI="$CLI" examples/c-qemu-m4/build-link.sh "$model" "$calib" "$graphs" "$L" "$@" >"$L.build.log" 2>&1 \
        || { cat "$L.build.log" >&2; echo "capi: FAIL: build-link.sh $name" >&2; exit 1; }
    set +e
    timeout 300 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -icount shift=10 \
        -semihosting-config enable=on,target=native -kernel "$L/firmware.elf" </dev/null >"$L/qemu.log" 2>&1
    rc=$?
    "$L/link-host" >"$L/host.log" 2>&1
    hrc=$?
    set -e
    if [ $rc -ne 0 ] || [ $hrc -ne 0 ]; then
        cat "$L/qemu.log" "$L/host.log" >&2
        echo "capi: FAIL: $name: the link C example exited with $rc (M4) / $hrc (host)" >&2
        exit 1
    fi
    "$CLI" run "$L/link_model.tgnn" "$graphs" --output-bytes "$L/run.bin" >/dev/null
    LINK_WANT=$(od -An -tx1 -v "$L/run.bin" | tr -d ' \n')
    local m4 host
    m4=$(grep '^bytes ' "$L/qemu.log" | cut -d' ' -f2 | tr -d '\n')
    host=$(grep '^bytes ' "$L/host.log" | cut -d' ' -f2 | tr -d '\n')
    if [ -z "$LINK_WANT" ] || [ "$LINK_WANT" != "$m4" ] || [ "$LINK_WANT" != "$host" ]; then
        echo "capi: FAIL: $name: pair scores differ from tinygnn run" >&2
        printf '  run:  %s\n  M4:   %s\n  host: %s\n' "$LINK_WANT" "$m4" "$host" >&2
        exit 1
    fi
    local code log
    for code in MISSING_PAIRS PAIR_LIST_MISMATCH PAIR_INDEX_OUT_OF_RANGE TOO_MANY_PAIRS; do
        for log in "$L/qemu.log" "$L/host.log"; do
            grep -q "^TGNN_ERR_$code " "$log" || { echo "capi: FAIL: $name: no TGNN_ERR_$code line in $log" >&2; exit 1; }
        done
    done
    grep -v '^bytes ' "$L/qemu.log" | sed "s/^/capi: $name M4: /"
    echo "capi: $name: $(grep -c '^bytes ' "$L/qemu.log") pair scores ($(( ${#LINK_WANT} / 2 )) bytes) on QEMU mps2-an386 and the host == tinygnn run --output-bytes; $(arm-none-eabi-size "$L/firmware.elf" | tail -n 1 | awk '{print "firmware text " $1 " data " $2 " bss " $3}')"
    if arm-none-eabi-nm "$L/firmware.elf" | grep -E "$PANIC_RE"; then
        echo "capi: FAIL: panic machinery is linked into the link C example $name (symbols above)" >&2
        exit 1
    fi
}
for name in link_inner link_mlp_hadamard; do
    d=tests/conformance/$name
    link_case "$name" "$d/model.safetensors" "$d/graphs.safetensors" "$d/graphs.safetensors"
done
# The bundled cora-link (2708 nodes, 9502 edges, 1054 test pairs): its float features do
# not fit the flash, so link.c gets them as CSR and quantizes them (--sparse); the converted
# model must be the bundled one, and the scores its committed expected_int8.bin.
if [ -n "${TINYGNN_DATA:-}" ]; then
    IN=.cache/inputs/cora-link
    [ -f "$IN/graphs.safetensors" ] || "${TINYGNN_PYTHON:-python3}" models/make_inputs.py cora-link "$IN" >/dev/null
    M=models/cora-link
    # shellcheck disable=SC2046
    link_case cora-link "$M/model.safetensors" "$IN/calib.safetensors" "$IN/graphs.safetensors" \
        --sparse --same-as "$M/cora-link.tgnn" -- $("${TINYGNN_PYTHON:-python3}" -c \
        'import json,sys; print(" ".join(json.load(open(sys.argv[1])).get("convert_args", [])))' "$M/goals.json")
    if [ "$LINK_WANT" != "$(od -An -tx1 -v "$M/expected_int8.bin" | tr -d ' \n')" ]; then
        echo "capi: FAIL: cora-link scores differ from $M/expected_int8.bin" >&2
        exit 1
    fi
    echo "capi: cora-link: the scores equal $M/expected_int8.bin"
else
    echo "capi: SKIP cora-link through the C API: TINYGNN_DATA is not set"
fi
echo "capi: ok"
