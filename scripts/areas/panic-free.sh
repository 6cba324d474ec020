#!/usr/bin/env bash
# area: link-time panic freedom of the inference path, static stack bound and its QEMU high-water
# needs: rust qemu
# scratch: boards/panic-check/target
# scripts/panic-check.sh --stack: boards/panic-check for thumbv7em-none-eabihf and thumbv6m-none-eabi
# at opt-level 3 and "s" links only without a panic path; the GCN-only size firmware at "z" has no
# panic symbol; the static stack bound of the inference call tree is within docs/guarantees.md's
# and above the high-water mark measured under QEMU.
source "$(dirname "$0")/../lib.sh"
need rust qemu
scripts/panic-check.sh --stack
