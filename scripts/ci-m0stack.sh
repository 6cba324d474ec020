#!/usr/bin/env bash
# CI steps of the Cortex-M0 stack fix (issue 4, helper `m0stack`; docs/point-clouds.md, docs/boards.md).
# The M0 firmware (QEMU microbit, 16 KiB RAM) keeps its stack BELOW .data/.bss
# (boards/qemu-m0/memory.x), so an overflow faults instead of corrupting statics. On karate-gcn:
#   1. the arena sizes that used to lock up (10,688 / 11,152 / 11,712 B, stack grown into .bss)
#      no longer link: a clean SKIP from scripts/qemu-run.sh ("will not fit in region 'RAM'");
#   2. the largest arena that links (16 KiB - stack reserve - the 12 B of other statics, rounded
#      to 16) and the model's own arena run bit-exact (PASS); prints the whole-run stack
#      high-water (summary stack_total=) and fails if it leaves less than 256 B of the reserve;
#   3. the same firmware linked with a 4,096 B stack (TINYGNN_M0_STACK_RESERVE, below the
#      ~5.8 KB it needs) must fault at once: qemu-run.sh reports FAIL(fault: Lockup...) within
#      seconds, never a timeout or a PASS.
# Installs nothing: QEMU and the thumbv6m target come from scripts/boards-setup.sh (run by
# scripts/boards-ci.sh earlier in scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# The firmware with the committed profile (LTO): its stack depth depends on it.
for v in $(compgen -e | grep '^CARGO_PROFILE_' || true); do unset "$v"; done
M=models/karate-gcn
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
run() { # ARENA|'' RESERVE|'' -> the results line of scripts/qemu-run.sh
    TINYGNN_ARENA_BYTES="$1" TINYGNN_M0_STACK_RESERVE="$2" QEMU_TIMEOUT=60 \
        scripts/qemu-run.sh --board m0 "$M" > "$LOG" 2>&1 || true
    grep -A1 '^== results' "$LOG" | tail -1
}
reserve=$(sed -nE 's/^STACK_RESERVE = .* : ([0-9]+);/\1/p' boards/qemu-m0/memory.x)
[ -n "$reserve" ] || { echo "no STACK_RESERVE default in boards/qemu-m0/memory.x" >&2; exit 1; }
largest=$(( (16384 - reserve - 12) / 16 * 16 ))
echo "M0 stack reserve $reserve B (boards/qemu-m0/memory.x); largest arena that links: $largest B"
for a in 10688 11152 11712; do
    r=$(run "$a" "")
    echo "arena $a B: $r"
    grep -qE '^karate-gcn m0 SKIP .*will_not_fit|^karate-gcn m0 SKIP .*overflowed' <<<"$r" ||
        { echo "arena $a B: expected a clean SKIP (does not fit)" >&2; cat "$LOG" >&2; exit 1; }
done
for a in "$largest" ""; do
    r=$(run "$a" "")
    echo "arena ${a:-default} B: $r"
    grep -qE '^karate-gcn m0 PASS ' <<<"$r" || { echo "arena ${a:-default}: expected PASS" >&2; cat "$LOG" >&2; exit 1; }
    total=$(grep -oE 'stack_total=[0-9]+' <<<"$r" | cut -d= -f2)
    [ -n "$total" ] || { echo "no stack_total in the M0 summary" >&2; exit 1; }
    echo "M0 whole-run stack high-water $total B of the $reserve B reserve (margin $((reserve - total)) B)"
    [ $((reserve - total)) -ge 256 ] || { echo "the M0 stack margin fell below 256 B: raise STACK_RESERVE" >&2; exit 1; }
done
t0=$(date +%s)
r=$(run "" 4096)
t1=$(date +%s)
echo "4,096 B stack: $r (run+build $((t1 - t0)) s)"
grep -qE '^karate-gcn m0 FAIL\(fault: ' <<<"$r" || { echo "a 4,096 B stack must fault, not '$r'" >&2; cat "$LOG" >&2; exit 1; }
echo "M0 stack checks passed"
