#!/usr/bin/env bash
# Link-time proof that the tinygnn inference path cannot panic, and its stack bound.
#
#   scripts/panic-check.sh          # panic check: build boards/panic-check for
#                                   # thumbv7em-none-eabihf and thumbv6m-none-eabi,
#                                   # at opt-level 3 and "s" (PANIC_CHECK_OPT_LEVELS),
#                                   # and the GCN-only size firmware (boards/size-gcn)
#                                   # at its opt-level "z" (PANIC_CHECK_SIZE_Z=0: skip)
#   scripts/panic-check.sh --stack  # also: static stack bound of the inference call
#                                   # tree, checked against the bound documented in
#                                   # docs/guarantees.md and against the high-water
#                                   # mark measured under QEMU (if installed)
#
# The firmware's #[panic_handler] calls a symbol that is defined nowhere, so it
# links only if no panic path survives optimisation (see
# boards/panic-check/src/main.rs). On failure this script rebuilds with the
# `diagnose` feature (a handler that links) and lists the functions that still
# call core::panicking::*. Exit status: 0 ok, 1 panic path or bound exceeded,
# 2 tooling error.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BOARD=$ROOT/boards/panic-check
TARGETS=(thumbv7em-none-eabihf thumbv6m-none-eabi)
export CARGO_TARGET_DIR="${PANIC_CHECK_TARGET_DIR:-$BOARD/target}"
export CARGO_TERM_COLOR=never
STACK=0
[ "${1:-}" = "--stack" ] && STACK=1

objdump() {
  local d
  for d in "$(rustc --print sysroot)"/lib/rustlib/*/bin; do
    [ -x "$d/llvm-objdump" ] && { "$d/llvm-objdump" "$@"; return; }
  done
  command -v llvm-objdump >/dev/null || { echo "panic-check: llvm-objdump not found (rustup component add llvm-tools)" >&2; exit 2; }
  llvm-objdump "$@"
}

installed=$(rustup target list --installed)
for t in "${TARGETS[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

# Optimisation levels checked: the board's profile (3) and "s". (At opt-level
# "z" and 1 core's own iterator helpers are not inlined and keep their
# asserts; see docs/guarantees.md.)
OPT_LEVELS=(${PANIC_CHECK_OPT_LEVELS:-3 s})

fail=0
cd "$BOARD"
for opt in "${OPT_LEVELS[@]}"; do
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=$opt
  for t in "${TARGETS[@]}"; do
    log=$(mktemp)
    if cargo build --release --target "$t" >"$log" 2>&1; then
      echo "panic-check: $t opt-level=$opt: OK — the inference path links without a panic handler"
    elif grep -q tinygnn_panic_path_survived_link_error "$log"; then
      fail=1
      echo "panic-check: $t opt-level=$opt: FAILED — a panic path survives in the inference path." >&2
      echo "panic-check: callers of core::panicking::* (from a 'diagnose' build):" >&2
      cargo build -q --release --target "$t" --features diagnose >&2
      objdump -d --no-show-raw-insn -C "$CARGO_TARGET_DIR/$t/release/tinygnn-panic-check" |
        python3 "$BOARD/panic-callers.py" | sed 's/^/    /' >&2
    else
      cat "$log" >&2
      echo "panic-check: $t opt-level=$opt: build error (not a panic path)" >&2
      exit 2
    fi
    rm -f "$log"
  done
done
unset CARGO_PROFILE_RELEASE_OPT_LEVEL

# Opt-level "z": the all-ops firmware above does not pass there (core's
# chunks_exact/Zip helpers stay out of line, docs/guarantees.md), so the
# configuration that is built at "z" is checked instead: the GCN-only size
# firmware (boards/size-gcn: op-gcn + op-linear + kernels-small, its own
# profile: opt-level "z", fat LTO, panic = abort). Its panic handler links,
# so the check is on the symbols: no panic handler (`rust_begin_unwind`) and
# no core panicking function may be left in the ELF.
if [ "${PANIC_CHECK_SIZE_Z:-1}" = 1 ]; then
  size_dir=$ROOT/boards/size-gcn
  size_target=${CARGO_TARGET_DIR}/size-gcn
  size_elf=$size_target/thumbv7em-none-eabihf/release/tinygnn-size-gcn
  (cd "$size_dir" && env -u RUSTFLAGS $(compgen -e | grep "^CARGO_PROFILE_" | sed "s/^/-u /") \
    cargo build -q --release --target-dir "$size_target")
  if objdump -t "$size_elf" | grep -qE 'rust_begin_unwind|panicking|unwrap_failed|expect_failed|slice_(start|end)_index|slice_index_order|panic_bounds_check'; then
    fail=1
    echo "panic-check: size-gcn (GCN-only) opt-level=z: FAILED — a panic path survives." >&2
    objdump -d --no-show-raw-insn -C "$size_elf" | python3 "$BOARD/panic-callers.py" | sed 's/^/    /' >&2
  else
    echo "panic-check: size-gcn (GCN-only, thumbv7em-none-eabihf) opt-level=z: OK — no panic path in the firmware"
  fi
fi
[ "$fail" = 0 ] || exit 1
[ "$STACK" = 1 ] || exit 0

# ---- stack bound -------------------------------------------------------------
# At the board's profile (opt-level 3, fat LTO, codegen-units 1). Root: `inference` of the firmware, which makes every public inference call
# (from_bytes, arena_bytes, Session::new, run, run_inspect, output, Output::*).
# The documented bound per target is the line `stack-bound <target>: <bytes>`
# in docs/guarantees.md.
ROOT_FN=tinygnn_panic_check::inference
for t in "${TARGETS[@]}"; do
  doc=$(sed -n "s/^.*stack-bound $t: \([0-9]*\).*$/\1/p" "$ROOT/docs/guarantees.md" | head -1)
  [ -n "$doc" ] || { echo "panic-check: no 'stack-bound $t:' line in docs/guarantees.md" >&2; exit 2; }
  # 1. The QEMU build (same inference code, plus stack painting), stable
  #    toolchain: frames from the prologues.
  cargo build -q --release --target "$t" --features qemu
  elf=$CARGO_TARGET_DIR/$t/release/tinygnn-panic-check
  echo "== $t: static stack bound (frames from prologues, $(rustc -V))"
  python3 "$BOARD/stack.py" "$elf" "$ROOT_FN" --prologue | tee "$CARGO_TARGET_DIR/stack-$t.txt" | tail -n 12
  bound=$(sed -n 's/^BOUND \([0-9]*\)$/\1/p' "$CARGO_TARGET_DIR/stack-$t.txt")
  # 2. The compiler's own frame sizes (nightly -Z emit-stack-sizes), if available.
  if rustup +nightly target list --installed 2>/dev/null | grep -qx "$t"; then
    CARGO_TARGET_DIR=$CARGO_TARGET_DIR/nightly \
      RUSTFLAGS="-C link-arg=-Tlink.x -C link-arg=--nmagic -Z emit-stack-sizes" \
      cargo +nightly build -q --release --target "$t" --features qemu
    nb=$(python3 "$BOARD/stack.py" "$CARGO_TARGET_DIR/nightly/$t/release/tinygnn-panic-check" "$ROOT_FN" | sed -n 's/^BOUND \([0-9]*\)$/\1/p')
    echo "   .stack_sizes bound ($(rustc +nightly -V)): $nb bytes"
    [ "$nb" -gt "$bound" ] && bound=$nb
  else
    echo "   (nightly with $t not installed: skipping the -Z emit-stack-sizes cross-check)"
  fi
  echo "   static bound: $bound bytes; documented bound: $doc bytes"
  if [ "$bound" -gt "$doc" ]; then
    echo "panic-check: $t: static stack bound $bound exceeds the documented $doc bytes" >&2
    fail=1
  fi
  # 3. Measured high-water mark under QEMU.
  case $t in
    thumbv7em-none-eabihf) machine=mps2-an386 ;;
    thumbv6m-none-eabi) machine=mps2-an385 ;; # Cortex-M3 runs ARMv6-M code
  esac
  if command -v qemu-system-arm >/dev/null; then
    out=$(timeout 120 qemu-system-arm -M "$machine" -nographic -monitor none -serial none \
      -semihosting-config enable=on,target=native -kernel "$elf" 2>&1) || {
      echo "panic-check: $t: QEMU run failed: $out" >&2; fail=1; continue; }
    echo "   QEMU $machine: $out"
    hw=$(sed -n 's/^stack high-water: \([0-9]*\) bytes.*$/\1/p' <<<"$out")
    if [ -z "$hw" ] || [ "$hw" -gt "$bound" ]; then
      echo "panic-check: $t: measured high-water ${hw:-?} exceeds the static bound $bound" >&2
      fail=1
    fi
  else
    echo "   (qemu-system-arm not installed: no measurement)"
  fi
done
exit "$fail"
