#!/usr/bin/env bash
# area: runtime built for every MCU target and op-feature set (warnings are errors); GCN-only host tests; the published crates with their MSRV
# needs: rust msrv
# scratch: target/msrv
# 1. every MCU target: every op family with and without defmt, and no op at all;
# 2. single op families for Cortex-M4 (op-gcn+op-linear, op-sage, op-gin+op-pool+op-elementwise),
#    op-propagate+op-linear for Cortex-M4 and M0 (the GCN normalisation it shares with op-gcn must
#    build without it), and the Cortex-M33 build with +dsp (its selection of the assembly kernels);
# 3. a GCN-only runtime on the host rejects models with other ops (tests/op_features.rs,
#    Error::OpNotCompiled);
# 4. tinygnn and tinygnn-proto build with the Rust of their rust-version (the MSRV, Cargo.toml)
#    and the locked dependencies: default and all features on the host, no_std for Cortex-M4.
# (The size features, kernels-small, are the size area's.)
source "$(dirname "$0")/../lib.sh"
need rust
build() { # TARGET FEATURES
    echo "-- $1 features=[$2]"
    RUSTFLAGS="-D warnings" cargo build -q -p tinygnn --release --target "$1" --no-default-features ${2:+--features $2}
}
say "every MCU target: all ops (with and without defmt), no op"
for target in thumbv6m-none-eabi thumbv7em-none-eabihf thumbv8m.main-none-eabihf riscv32imc-unknown-none-elf; do
    for features in "all-ops" "all-ops,defmt" ""; do build "$target" "$features"; done
done
say "single op families (Cortex-M4), op-propagate alone (Cortex-M4, M0)"
for f in "op-gcn,op-linear" "op-sage" "op-gin,op-pool,op-elementwise" "op-propagate,op-linear"; do
    build thumbv7em-none-eabihf "$f"
done
build thumbv6m-none-eabi "op-propagate,op-linear"
say "runtime for thumbv8m.main-none-eabihf with +dsp (Cortex-M33 DSP kernels)"
# (rustc warns that `dsp` is an unstable target feature name; the build must still succeed.)
# (Before, under pipefail, `cargo build | grep -v … || true` hid a failed build: the status is kept now.)
log=$(mktemp)
status=0
RUSTFLAGS="-C target-feature=+dsp" cargo build -q -p tinygnn --release --target thumbv8m.main-none-eabihf >"$log" 2>&1 || status=$?
grep -v -e "unstable feature specified" -e "this feature is not stably supported" -e "^ *|" -e "^ *= note" \
    -e "warning: 1 warning emitted" -e '^$' "$log" || true
rm -f "$log"
[ "$status" = 0 ] || { echo "features: the +dsp build for thumbv8m.main-none-eabihf FAILED"; exit 1; }
say "op features: GCN-only runtime rejects other ops (Error::OpNotCompiled)"
cargo test --profile test-release -q -p tinygnn --no-default-features --features std,op-gcn,op-linear --test op_features
msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
say "MSRV: tinygnn and tinygnn-proto with Rust $msrv, --locked (host: default, all features; thumbv7em: no_std, server)"
grep -qx "rust-version = \"$msrv\"" proto/Cargo.toml \
    || { echo "features: proto/Cargo.toml's rust-version is not the runtime's $msrv"; exit 1; }
# A target directory of its own, apart from the stable builds.
export CARGO_TARGET_DIR="$ROOT/target/msrv"
cargo +"$msrv" check -q --locked -p tinygnn -p tinygnn-proto
cargo +"$msrv" check -q --locked -p tinygnn -p tinygnn-proto --all-features
cargo +"$msrv" check -q --locked -p tinygnn -p tinygnn-proto --target thumbv7em-none-eabihf --features tinygnn-proto/server
echo "features: ok"
