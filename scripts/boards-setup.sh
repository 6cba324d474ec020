#!/usr/bin/env bash
# Installs what the board builds and QEMU runs need on a fresh Debian machine.
# Idempotent: every step checks first. Usage: scripts/boards-setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

if ! command -v qemu-system-arm >/dev/null; then
    echo "boards-setup: installing qemu-system-arm"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-system-arm >/dev/null
fi

# The insncount plugin is self-contained C (declares the QEMU plugin API itself): gcc only.
if ! command -v gcc >/dev/null; then
    echo "boards-setup: installing gcc"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gcc >/dev/null
fi

targets="thumbv7em-none-eabihf thumbv6m-none-eabi thumbv8m.main-none-eabihf riscv32imc-unknown-none-elf"
installed=$(rustup target list --installed)
missing=""
for t in $targets; do
    grep -qx "$t" <<<"$installed" || missing="$missing $t"
done
if [ -n "$missing" ]; then
    echo "boards-setup: rustup target add$missing"
    # shellcheck disable=SC2086
    rustup target add $missing
fi
if ! rustup component list --installed | grep -q '^llvm-tools'; then
    rustup component add llvm-tools
fi

# QEMU TCG plugin counting executed instructions in an address range (used for the micro:bit).
plugin_src=""
for d in boards/qemu-insncount ../shared/tools/qemu-insncount; do
    if [ -f "$d/insncount.c" ]; then plugin_src="$d/insncount.c"; break; fi
done
out=boards/.tools/libinsncount.so
if [ -n "$plugin_src" ] && { [ ! -f "$out" ] || [ "$plugin_src" -nt "$out" ]; }; then
    mkdir -p boards/.tools
    gcc -shared -fPIC -O2 -o "$out" "$plugin_src"
    echo "boards-setup: built $out"
fi
echo "boards-setup: ok"
