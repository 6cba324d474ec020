#!/usr/bin/env bash
# Code size of the runtime in a minimal GCN-only firmware (boards/size-gcn:
# karate-gcn on sparse int8 features, Cortex-M4F, runtime features op-gcn +
# op-linear + kernels-small, opt-level "z", LTO, panic = abort, no reporting
# code; docs/size.md).
#
#   scripts/size-check.sh [--limit BYTES]     (default limit: 12288, the goal)
#
# Builds the firmware twice: as is, and with the feature `baseline` (the same
# firmware without the Model::from_bytes + Session::run call; it still
# compares two byte slices, as the firmware checks its output). Definition:
#   runtime .text = .text(firmware) − .text(baseline)
# i.e. every byte of code that the inference call brings in: tinygnn itself,
# postcard/serde decoding, and the compiler_builtins it needs (memcpy, memset,
# 64-bit division). Model, inputs and CRC table are .rodata, not counted.
# Then runs the firmware under QEMU (it exits 0 only if its output bytes equal
# the host runtime's, computed by its build.rs), prints the largest symbols
# and fails if the runtime .text is above the limit.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
limit=12288
while [ $# -gt 0 ]; do
    case "$1" in
        --limit) shift; limit="$1" ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "usage: $0 [--limit BYTES]" >&2; exit 2 ;;
    esac
    shift
done
SB="$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin"
# The firmware's own release profile (opt-level "z", LTO, one codegen unit)
# is what is measured: drop any profile overrides from the environment.
for v in $(compgen -e | grep '^CARGO_PROFILE_' || true); do unset "$v"; done
crate="$ROOT/boards/size-gcn"
tdir="${CARGO_TARGET_DIR:-$crate/target}"
elf="$tdir/thumbv7em-none-eabihf/release/tinygnn-size-gcn"
base_elf="$tdir/baseline/thumbv7em-none-eabihf/release/tinygnn-size-gcn"
(cd "$crate" && unset RUSTFLAGS && cargo build --release -q --target-dir "$tdir" \
    && cargo build --release -q --features baseline --target-dir "$tdir/baseline")
text() { "$SB/llvm-size" -A "$1" | awk '$1==".text"{print $2}'; }
full=$(text "$elf"); base=$(text "$base_elf"); runtime=$((full - base))
rodata=$("$SB/llvm-size" -A "$elf" | awk '$1==".rodata"{print $2}')

set +e
timeout 60 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
    -semihosting-config enable=on,target=native -kernel "$elf"
rc=$?
set -e

echo "== largest symbols of the firmware (.text, bytes; LTO inlines most of the runtime into infer)"
"$SB/llvm-nm" --size-sort -S -C --radix=d "$elf" | awk '$3 ~ /^[tT]$/ {printf "%6d  %s\n", $2, $4}' | tail -12 | cut -c1-110
echo "== by origin (symbol sizes; code inlined into the firmware's infer counts there)"
"$SB/llvm-nm" -S -C --radix=d "$elf" | awk '$3 ~ /^[tT]$/ {
    n=$4; s=$2+0
    if (n ~ /tinygnn_size_gcn/) k="firmware (incl. inlined runtime)";
    else if (n ~ /^(_\$LT\$)?tinygnn/) k="tinygnn";
    else if (n ~ /postcard|serde|heapless/) k="postcard/serde (op decoding)";
    else if (n ~ /compiler_builtins|__aeabi|__udiv|memcpy|memset|memcmp/) k="compiler_builtins (mem*, u64 div)";
    else k="other (core, cortex-m-rt)";
    t[k]+=s } END { for (k in t) printf "%6d  %s\n", t[k], k }' | sort -rn
echo "size-gcn: firmware .text=$full baseline .text=$base runtime .text=$runtime (limit $limit) .rodata=$rodata qemu_exit=$rc"
[ "$rc" = 0 ] || { echo "FAIL: the firmware's output bytes differ from the host's (or it crashed): exit $rc"; exit 1; }
if [ "$runtime" -gt "$limit" ]; then
    echo "FAIL: runtime .text $runtime B > limit $limit B"
    exit 1
fi
echo "OK: runtime .text $runtime B <= $limit B"
