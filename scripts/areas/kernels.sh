#!/usr/bin/env bash
# area: fast paths vs reference (20,000 proptest cases), kernels-small suite, DSP kernels on emulated M4/M0/M33
# needs: rust qemu
# scratch: boards/kernel-bench/target
# 1. the bit-exactness proptests of the fast paths with 20,000 cases each instead of proptest's
#    default 256: the fast requantization (quant::Rescale, requant::requantize_row[_prepared]
#    against their reference forms, the i64 requantization against requantize_row_ref), the
#    blocked dense kernels (dense::matmul_block4, matmul_skip against matmul_rows and matvec_ref),
#    the GCN fast paths (gcn::unit_coef against gcn::coef, gcn::unit_row against the general loop,
#    gcn::round_q24 against round_shift_i64_to_i32), the sparse input kernels (sparse::matvec_packed,
#    matvec_blocked against matvec_ref) and the 4-channel neighbour sum (aggregate::sum4_i64);
# 2. the runtime's whole test suite with kernels-small (the ops then run the reference kernels:
#    every model test must give the same bytes; the mutation suite, robustness and not kernel
#    results, runs with the defaults in the hostile area);
# 3. scripts/kernel-bench.sh on the emulated Cortex-M4 (mps2-an386), Cortex-M0 (microbit) and
#    Cortex-M33 (mps2-an505): every dense kernel variant of the target bit-exact against the
#    reference on seeded random shapes (fails on any mismatch), then instructions per MAC
#    (QEMU -icount); prints the goal (dense int8 <= 1.0 instruction per MAC on the M4).
source "$(dirname "$0")/../lib.sh"
need rust qemu
say "fast paths against their reference forms, 20,000 proptest cases each"
PROPTEST_CASES=20000 cargo test -q --profile test-release -p tinygnn --lib -- quant:: requant:: kernels::dense:: kernels::dense_i2:: ops::gcn:: kernels::sparse:: kernels::aggregate:: 2>&1 \
    | grep -E '^test result|FAILED|panicked' || { echo "kernels: proptests FAILED"; exit 1; }

say "runtime tests with kernels-small (reference kernels in every op)"
# Integer results do not depend on LTO: the test-release profile (Cargo.toml) builds faster.
cargo test --profile test-release -q -p tinygnn --features kernels-small -- --skip mutate_

say "dense kernels on emulated Cortex-M (bit-exact vs reference, instructions per MAC)"
log=$(mktemp)
status=0
scripts/kernel-bench.sh m4 m0 m33 | tee "$log" || status=$?
per_mac=$(awk '$1=="kernel-bench" && $2=="m4" && $3=="matmul-dsp" {sub("per_mac=", "", $8); print $8}' "$log")
rm -f "$log"
if [ -n "$per_mac" ] && awk -v v="$per_mac" 'BEGIN{exit !(v <= 1.0)}'; then
    echo "kernels: goal met: dense int8 on the emulated Cortex-M4: $per_mac instructions per MAC (goal ≤ 1.0)"
else
    echo "kernels: GOAL MISSED: dense int8 on the emulated Cortex-M4: ${per_mac:-?} instructions per MAC (goal ≤ 1.0)"
fi
exit $status
