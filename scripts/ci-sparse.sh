#!/usr/bin/env bash
# CI steps of the sparse input layer and the GCN-only firmware size (issue 6).
# Idempotent installs (rustup target thumbv7em-none-eabihf, llvm-tools,
# qemu-system-arm), then:
#   1. the op features: a GCN-only runtime build rejects models with other ops
#      (tests/op_features.rs with --no-default-features --features std,op-gcn,op-linear),
#      and the runtime builds for Cortex-M4 with single op families;
#   2. `tinygnn run --sparse` gives the same output bytes as the dense input on
#      the bundled models whose graphs are at hand (karate-gcn, digits-gin; the
#      Cora models too when .cache/inputs/<name>/graphs.safetensors exists),
#      and prints the arena of both;
#   (the GCN-only firmware size, scripts/size-check.sh, is checked by
#   scripts/ci-size.sh).
# The sparse kernels' property tests and tests/sparse_input.rs run with the
# workspace tests (cargo test --workspace).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

installed=$(rustup target list --installed)
grep -qx thumbv7em-none-eabihf <<<"$installed" || rustup target add thumbv7em-none-eabihf
rustup component list --installed | grep -q '^llvm-tools' || rustup component add llvm-tools
if ! command -v qemu-system-arm >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-arm >/dev/null
fi

echo "== op features: GCN-only runtime rejects other ops (Error::OpNotCompiled)"
cargo test --release -q -p tinygnn --no-default-features --features std,op-gcn,op-linear --test op_features
for f in "op-gcn,op-linear" "op-sage" "op-gin,op-pool,op-elementwise"; do
    echo "-- thumbv7em-none-eabihf features=[$f]"
    RUSTFLAGS="-D warnings" cargo build -q -p tinygnn --release --target thumbv7em-none-eabihf --no-default-features --features "$f"
done

echo "== tinygnn run --sparse: same output bytes as dense input"
cargo build --release -q -p tinygnn-cli
CLI=target/release/tinygnn
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for m in karate-gcn digits-gin cora-gcn cora-sage; do
    graphs=models/$m/graphs.safetensors
    [ -f "$graphs" ] || graphs=.cache/inputs/$m/graphs.safetensors
    if [ ! -f "$graphs" ]; then
        echo "SKIP $m: no graphs file (Cora: set TINYGNN_DATA and run scripts/boards-ci.sh or models/make_inputs.py)"
        continue
    fi
    "$CLI" run "models/$m/$m.tgnn" "$graphs" --output-bytes "$tmp/dense.bin" > "$tmp/dense.log"
    "$CLI" run "models/$m/$m.tgnn" "$graphs" --sparse --output-bytes "$tmp/sparse.bin" > "$tmp/sparse.log"
    cmp -s "$tmp/dense.bin" "$tmp/sparse.bin" || { echo "FAIL $m: sparse output bytes differ from dense"; exit 1; }
    echo "$m: same $(stat -c %s "$tmp/dense.bin") output bytes; dense $(grep '^arena' "$tmp/dense.log"); sparse $(grep '^arena' "$tmp/sparse.log")"
done

# The GCN-only firmware size guard (scripts/size-check.sh, SIZE_LIMIT) runs
# in scripts/ci-size.sh with the size features (docs/size.md).
