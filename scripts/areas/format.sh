#!/usr/bin/env bash
# area: rustfmt --check of the workspace and of every board crate
# needs: rust
source "$(dirname "$0")/../lib.sh"
need rust
say "cargo fmt --check (workspace)"
cargo fmt --all -- --check
say "cargo fmt --check (boards)"
for c in app qemu-m4 qemu-m0 nrf52840-dk rp-pico nucleo-h743zi esp32c3 qemu-stream nrf52840-stream; do
    cargo fmt --manifest-path "boards/$c/Cargo.toml" --check
done
echo "format: ok"
