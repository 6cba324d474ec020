#!/usr/bin/env bash
# Idempotent machine setup for building and testing tinygnn: the one place that
# installs tools (apt packages, rustup components and targets, cargo tools).
# Safe to run repeatedly; every step checks first and does nothing already done.
#
#   scripts/setup.sh [COMPONENT...]      (default: rust qemu)
#
# Components:
#   rust      rustfmt, clippy, llvm-tools; the MCU targets thumbv6m-none-eabi,
#             thumbv7em-none-eabihf, thumbv8m.main-none-eabihf, riscv32imc-unknown-none-elf
#   qemu      qemu-system-arm and gcc (apt); the QEMU insncount plugin (boards/.tools)
#   valgrind  valgrind (apt; callgrind instruction counts on the host)
#   arm-gcc   gcc-arm-none-eabi and libnewlib-arm-none-eabi (apt; the C API example)
#   cbindgen  cbindgen (cargo install, pinned; the C header)
#   deny      cargo-deny (cargo install)
#   flip-link flip-link (cargo install; the linker of the real Cortex-M boards: stack below .data/.bss)
#   defmt-print  defmt-print (cargo install; decodes defmt frames: scripts/qemu-run.sh --defmt)
#   nightly   the nightly toolchain (minimal: the docs.rs-like rustdoc build)
#   msrv      the toolchain of the runtime's rust-version (Cargo.toml), minimal, with
#             thumbv7em-none-eabihf (the MSRV check of the features area)
#   miri      the nightly toolchain with miri and rust-src
#   fuzz      the nightly toolchain, cargo-fuzz (cargo install) and g++ (apt; libFuzzer)
# The Python environment is scripts/venv.sh's; scripts/test.sh calls both.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -gt 0 ] || set -- rust qemu
TARGETS="thumbv6m-none-eabi thumbv7em-none-eabihf thumbv8m.main-none-eabihf riscv32imc-unknown-none-elf"
CBINDGEN_VERSION=0.29.2
log() { echo "setup: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
apt_pkgs=()
apt_want() { # PACKAGE CHECK-COMMAND...: queue PACKAGE unless CHECK-COMMAND succeeds
    local pkg="$1"; shift
    "$@" >/dev/null 2>&1 || apt_pkgs+=("$pkg")
}
# Tools, not shipped code: built with a light profile to save CI minutes.
light_install() {
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=0 \
        cargo install --locked "$@"
}
nightly() {
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
}

# 1. apt packages, all in one apt-get call; without their recommends (qemu-system-arm's would
#    bring a GUI, firmware images and block drivers) and with the downloaded .deb files removed.
for c in "$@"; do
    case "$c" in
        qemu) apt_want qemu-system-arm command -v qemu-system-arm
              # The insncount plugin is self-contained C (declares the QEMU plugin API itself): gcc only.
              apt_want gcc command -v gcc ;;
        valgrind) apt_want valgrind command -v valgrind ;;
        arm-gcc) apt_want gcc-arm-none-eabi command -v arm-none-eabi-gcc
                 apt_want libnewlib-arm-none-eabi test -f /usr/lib/arm-none-eabi/newlib/libc.a ;;
        fuzz) apt_want g++ command -v c++ ;;
        rust|cbindgen|deny|miri|flip-link|defmt-print|nightly|msrv) ;;
        *) log "unknown component '$c'"; exit 2 ;;
    esac
done
if [ ${#apt_pkgs[@]} -gt 0 ]; then
    log "apt-get install ${apt_pkgs[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${apt_pkgs[@]}" >/dev/null
    $SUDO apt-get clean
fi

# 2. Rust components, targets and tools.
for c in "$@"; do
    case "$c" in
        rust)
            components=$(rustup component list --installed)
            for comp in rustfmt clippy llvm-tools; do
                grep -q "^$comp" <<<"$components" || rustup component add "$comp"
            done
            installed=$(rustup target list --installed)
            missing=""
            for t in $TARGETS; do grep -qx "$t" <<<"$installed" || missing="$missing $t"; done
            # shellcheck disable=SC2086
            [ -z "$missing" ] || { log "rustup target add$missing"; rustup target add $missing; }
            ;;
        qemu)
            # QEMU TCG plugin counting executed instructions in an address range (the micro:bit).
            plugin_src=""
            for d in boards/qemu-insncount ../shared/tools/qemu-insncount; do
                if [ -f "$d/insncount.c" ]; then plugin_src="$d/insncount.c"; break; fi
            done
            out=boards/.tools/libinsncount.so
            if [ -n "$plugin_src" ] && { [ ! -f "$out" ] || [ "$plugin_src" -nt "$out" ]; }; then
                mkdir -p boards/.tools
                gcc -shared -fPIC -O2 -o "$out" "$plugin_src"
                log "built $out"
            fi
            ;;
        cbindgen)
            if ! cbindgen --version 2>/dev/null | grep -qx "cbindgen $CBINDGEN_VERSION"; then
                log "cargo install cbindgen $CBINDGEN_VERSION"
                cargo install -q cbindgen --version "$CBINDGEN_VERSION" --locked
            fi
            ;;
        deny)
            cargo deny --version >/dev/null 2>&1 || { log "installing cargo-deny"; light_install cargo-deny; }
            ;;
        flip-link)
            # A linker wrapper (no --version): present once it is on PATH.
            command -v flip-link >/dev/null || { log "installing flip-link"; light_install flip-link; }
            ;;
        defmt-print)
            defmt-print --version >/dev/null 2>&1 || { log "installing defmt-print"; light_install defmt-print; }
            ;;
        nightly) nightly ;;
        msrv)
            msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
            # The toolchain named as rust-version says ("1.84": the latest 1.84.x), as
            # `cargo +1.84` (the features area) names it.
            grep -q "^$msrv-" <<<"$(rustup toolchain list)" || {
                log "rustup toolchain install $msrv"; rustup toolchain install "$msrv" --profile minimal; }
            rustup target list --installed --toolchain "$msrv" | grep -qx thumbv7em-none-eabihf \
                || rustup target add --toolchain "$msrv" thumbv7em-none-eabihf
            ;;
        miri)
            nightly
            installed=$(rustup component list --toolchain nightly --installed)
            for comp in miri rust-src; do
                grep -q "^$comp" <<<"$installed" || rustup component add "$comp" --toolchain nightly
            done
            ;;
        fuzz)
            nightly
            cargo fuzz --version >/dev/null 2>&1 || { log "installing cargo-fuzz"; light_install cargo-fuzz; }
            ;;
    esac
done
log "ok ($*)"
