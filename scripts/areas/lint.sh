#!/usr/bin/env bash
# area: clippy, warnings as errors (workspace, boards, C API); the op-by-op layout (no import circles, short functions, an op family in at most 5 files); the published crates: package contents, rustdoc and docs.rs builds, publish dry run
# needs: rust nightly
# scratch: target/docsrs target/package
source "$(dirname "$0")/../lib.sh"
need rust nightly
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
# The crates published to crates.io: tinygnn and tinygnn-proto.
say "packages: tinygnn and tinygnn-proto ship their sources, README, CHANGELOG and licenses only"
scripts/package-check.sh
say "rustdoc, warnings as errors: tinygnn and tinygnn-proto, default and all features"
RUSTDOCFLAGS="-D warnings" cargo doc -q -p tinygnn -p tinygnn-proto --no-deps
RUSTDOCFLAGS="-D warnings" cargo doc -q -p tinygnn -p tinygnn-proto --no-deps --all-features
say "docs.rs build: nightly, --cfg docsrs, all features (doc_cfg names each item's feature)"
# A target directory of its own, apart from the stable builds.
RUSTDOCFLAGS="-D warnings --cfg docsrs" CARGO_TARGET_DIR="$ROOT/target/docsrs" \
    cargo +nightly doc -q -p tinygnn -p tinygnn-proto --no-deps --all-features
say "cargo publish --dry-run: tinygnn and tinygnn-proto, packaged and built together"
# tinygnn-proto depends on tinygnn 0.1.0, which is not on crates.io before its first release:
# one `cargo publish` of both packages resolves proto's dependency against the tinygnn being
# packaged (a local registry overlay, cargo >= 1.90). --allow-dirty: the contents are checked
# above, a local run need not be committed.
cargo publish -q --dry-run --allow-dirty -p tinygnn -p tinygnn-proto
echo "lint: ok"
