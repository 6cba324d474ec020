#!/usr/bin/env bash
# Kernel check and benchmark on emulated Cortex-M boards (dense, requantization, sparse input).
#
#   scripts/kernel-bench.sh [m4] [m0] [m33]     # default: m4 m0
#
# Builds boards/kernel-bench for each board and runs it under QEMU with
# -icount shift=10. The firmware first compares every dense kernel variant
# of that target (the DSP assembly kernels on the M4/M33, the portable and
# emulated-pair kernels everywhere) with the reference on seeded random
# shapes (and requantization and the sparse int8/int2 kernels against their
# references), then counts instructions per MAC (hardware timer under -icount:
# exact and repeatable). Prints `kernel-check BOARD ok: …` (or `MISMATCH`)
# and one line per measurement:
#   kernel-bench BOARD KERNEL rows=R cols=C macs=N instructions=M per_mac=X.XXX
# (rows = output channels, cols = input channels, macs = nodes·rows·cols).
# Exit status: 0 when every board ran and matched, 1 on a mismatch or a
# failed run, 2 when QEMU is missing.
#
# Boards: m4 = mps2-an386 (Cortex-M4F, thumbv7em-none-eabihf: DSP kernels),
# m0 = microbit (Cortex-M0, thumbv6m-none-eabi: portable kernels),
# m33 = mps2-an505 (Cortex-M33, thumbv8m.main-none-eabihf built with +dsp).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CRATE="$ROOT/boards/kernel-bench"
export CARGO_TARGET_DIR="${KERNEL_BENCH_TARGET_DIR:-$CRATE/target}"
QEMU_TIMEOUT="${QEMU_TIMEOUT:-300}"
command -v qemu-system-arm >/dev/null || { echo "kernel-bench: qemu-system-arm missing (scripts/boards-setup.sh installs it)" >&2; exit 2; }

boards=("$@")
[ ${#boards[@]} -gt 0 ] || boards=(m4 m0)
status=0
for board in "${boards[@]}"; do
    flags=""
    case "$board" in
        m4) triple=thumbv7em-none-eabihf; machine=(-machine mps2-an386 -cpu cortex-m4) ;;
        m0) triple=thumbv6m-none-eabi; machine=(-machine microbit) ;;
        m33) triple=thumbv8m.main-none-eabihf; machine=(-machine mps2-an505 -cpu cortex-m33)
             flags="-C target-feature=+dsp" ;;
        *) echo "kernel-bench: unknown board $board (m4, m0, m33)" >&2; status=1; continue ;;
    esac
    log="$CARGO_TARGET_DIR/kernel-bench-$board.log"
    mkdir -p "$CARGO_TARGET_DIR"
    if ! (cd "$CRATE" && RUSTFLAGS="$flags" cargo build --release -q --target "$triple" --features "$board") >"$log" 2>&1; then
        echo "kernel-bench $board: BUILD FAILED"; tail -20 "$log"; status=1; continue
    fi
    elf="$CARGO_TARGET_DIR/$triple/release/tinygnn-kernel-bench"
    set +e
    timeout "$QEMU_TIMEOUT" qemu-system-arm "${machine[@]}" -nographic \
        -semihosting-config enable=on,target=native -icount shift=10 -kernel "$elf" >"$log" 2>&1
    rc=$?
    set -e
    grep -E '^kernel-(bench|check) ' "$log" || true
    if [ $rc -ne 0 ] || ! grep -q "^kernel-check $board ok:" "$log"; then
        echo "kernel-bench $board: FAILED (exit $rc$([ $rc = 124 ] && echo ', timeout'); log $log)"
        grep -vE '^kernel-(bench|check) ' "$log" | head -5
        status=1
    fi
done
exit $status
