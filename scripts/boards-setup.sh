#!/usr/bin/env bash
# Installs what the board builds and QEMU runs need (QEMU, gcc, the Rust targets,
# llvm-tools, the insncount plugin, flip-link: the real Cortex-M boards' linker).
# Kept for existing instructions: the installs themselves live in scripts/setup.sh.
exec "$(dirname "$0")/setup.sh" rust qemu flip-link
