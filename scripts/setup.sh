#!/usr/bin/env bash
# Idempotent machine setup for building and testing tinygnn: Rust components,
# MCU targets and QEMU. Safe to run repeatedly; does nothing already done.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup component add rustfmt clippy llvm-tools >/dev/null 2>&1 || rustup component add rustfmt clippy llvm-tools
installed=$(rustup target list --installed)
for t in thumbv6m-none-eabi thumbv7em-none-eabihf thumbv8m.main-none-eabihf riscv32imc-unknown-none-elf; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
if [ -x scripts/boards-setup.sh ]; then scripts/boards-setup.sh; fi
