#!/usr/bin/env bash
# area: code size: size features on every MCU target, GCN-only size configuration tests, GCN-only firmware .text guard
# needs: rust qemu
# scratch: boards/size-gcn/target
# docs/size.md:
#   1. the size features on every MCU target (warnings are errors): `op-gcn,op-linear,kernels-small`
#      (the size build: small kernels, no int4, the hand-written metadata reader) and
#      `all-ops,kernels-small`;
#   2. the GCN-only size configuration on the host (`--no-default-features --features
#      std,op-gcn,op-linear,kernels-small`: int4 weights rejected with OpNotCompiled, the small
#      metadata reader against postcard, other op families rejected);
#      (the whole runtime suite with kernels-small is the kernels area's)
#   3. scripts/size-check.sh: runtime .text of the GCN-only firmware (boards/size-gcn, built with
#      its size profile) with SIZE_LIMIT as the failure threshold; the firmware runs karate-gcn on
#      the emulated Cortex-M4 and must give the host runtime's output bytes.
source "$(dirname "$0")/../lib.sh"
need rust qemu
say "size features on every MCU target"
for t in thumbv6m-none-eabi thumbv7em-none-eabihf thumbv8m.main-none-eabihf riscv32imc-unknown-none-elf; do
    for f in "op-gcn,op-linear,kernels-small" "all-ops,kernels-small"; do
        echo "-- $t features=[$f]"
        RUSTFLAGS="-D warnings" cargo build -q -p tinygnn --release --target "$t" --no-default-features --features "$f"
    done
done

say "GCN-only size configuration (no int4, small metadata reader)"
# Integer results do not depend on LTO: the test-release profile (Cargo.toml) builds faster.
cargo test --profile test-release -q -p tinygnn --no-default-features \
    --features std,op-gcn,op-linear,kernels-small --lib --test size_features --test op_features

say "GCN-only firmware size (goal: runtime .text <= 12288 B)"
# SIZE_LIMIT: the goal, 12 KB (docs/size.md); size-check.sh prints the measured size.
scripts/size-check.sh --limit "${SIZE_LIMIT:-12288}"
