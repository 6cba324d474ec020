#!/usr/bin/env bash
# area: clippy, warnings as errors (workspace, boards, C API); the op-by-op layout (no import circles, short functions, an op family in at most 5 files)
# needs: rust
source "$(dirname "$0")/../lib.sh"
need rust
say "clippy: workspace, all targets"
RUSTFLAGS="-D warnings" cargo clippy --workspace --all-targets -- -D warnings
say "clippy: tinygnn-capi for thumbv7em-none-eabihf (the no_std staticlib, with its panic handler)"
cargo clippy -q -p tinygnn-capi --target thumbv7em-none-eabihf -- -D warnings
# The board crates share boards/target (as the board builds of the boards and stream areas).
export CARGO_TARGET_DIR="$ROOT/boards/target" RUSTFLAGS="${RUSTFLAGS:--D warnings}"
say "clippy: boards/app (host, std)"
cargo clippy -q --manifest-path boards/app/Cargo.toml --features std -- -D warnings
say "clippy: boards/qemu-stream"
# Cargo reads a board's .cargo/config.toml (target, runner) only when run from its directory.
(cd boards/qemu-stream && cargo clippy -q --release -- -D warnings)
say "layout: no import circles, no long functions, an op family in at most 5 files"
python3 scripts/layout-check.py --strict
echo "lint: ok"
