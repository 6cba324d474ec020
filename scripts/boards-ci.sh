#!/usr/bin/env bash
# Board CI: format check, host clippy of the board helpers, QEMU runs (byte-exact against the host)
# and release builds of every real-board firmware.
#
#   scripts/boards-ci.sh [--no-setup] [TARGET...]
#
# TARGETs (model directories, see scripts/qemu-run.sh) are run on the QEMU boards in addition to
# the generated demo model, models/karate-gcn and models/digits-gin (all test graphs on the M4, the first 50 on the M0). Real boards are built (not flashed: no probe here) with the demo model.
# With $TINYGNN_DATA set (Planetoid data, see models/README.md), cora-gcn and cora-sage also run on
# the M4, the whole 2708-node graph in one inference with sparse int8 features (--sparse); their
# inputs are made into .cache/inputs/<name> by models/make_inputs.py when missing (python:
# $TINYGNN_PYTHON, else scripts/venv.sh). Without it: a visible SKIP line.
# Warnings are errors (RUSTFLAGS). Prints the build time of every crate; exits non-zero on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
setup=1
if [ "${1:-}" = "--no-setup" ]; then setup=0; shift; fi
[ $setup = 1 ] && scripts/boards-setup.sh
export RUSTFLAGS="${RUSTFLAGS:--D warnings}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

start=$(date +%s)
timings=()
step() { # name, command...
    local name="$1"; shift
    local t0; t0=$(date +%s)
    echo "== $name"
    "$@"
    timings+=("$name: $(( $(date +%s) - t0 ))s")
}

crates="app pack qemu-m4 qemu-m0 nrf52840-dk rp-pico nucleo-h743zi esp32c3"
fmt_check() {
    for c in $crates; do cargo fmt --manifest-path "boards/$c/Cargo.toml" --check; done
}
step "cargo fmt --check (boards)" fmt_check

# Cargo reads a board's .cargo/config.toml (target, runner) only when run from the board's directory.
build_board() { (cd "boards/$1" && cargo build -q --release); }

# Two cores: the slowest real-board builds (big PACs/HALs, serial LTO links) run in a second,
# background stream while the host checks, the QEMU runs and the other boards build here. Each
# stream shares one target dir across its crates (host build-dependencies and common target crates
# are compiled once per stream; two streams, because cargo locks a target dir).
export CARGO_TARGET_DIR="$ROOT/boards/target"
# The real-board firmware embeds the demo model and inputs (boards/generated/demo/, git-ignored):
# make them before any board build starts, so a fresh clone builds without leftovers.
demo_inputs() {
    cargo run -q --release --manifest-path boards/pack/Cargo.toml -- demo boards/generated/demo
    cargo run -q --release --manifest-path boards/pack/Cargo.toml -- \
        inputs boards/generated/demo/graphs.safetensors boards/generated/demo/inputs.tgib
}
step "demo model and inputs for the board builds" demo_inputs
bg_log="$(mktemp)"
(
    export CARGO_TARGET_DIR="$ROOT/boards/target-bg"
    for b in rp-pico esp32c3 nucleo-h743zi; do
        t0=$(date +%s)
        build_board "$b" || { echo "FAILED build boards/$b"; exit 1; }
        echo "build boards/$b: $(( $(date +%s) - t0 ))s (background stream)"
    done
) > "$bg_log" 2>&1 &
bg_pid=$!

step "clippy + tests: boards/app (host, std)" bash -c \
    'cargo clippy -q --manifest-path boards/app/Cargo.toml --features std -- -D warnings && cargo test -q --lib --manifest-path boards/app/Cargo.toml --features std'
step "clippy: boards/pack" cargo clippy -q --release --manifest-path boards/pack/Cargo.toml -- -D warnings
qemu_runs() {
    scripts/qemu-run.sh --demo "$@"
    # The project's own models, when present (main's models/): the whole karate graph on both
    # boards; digits-gin graph by graph (int8 features so that 50 graphs fit the micro:bit's flash).
    if [ -d models/karate-gcn ]; then scripts/qemu-run.sh models/karate-gcn; fi
    # All 359 test graphs on the M4; the first 50 on the micro:bit (256 KB flash).
    if [ -d models/digits-gin ]; then
        scripts/qemu-run.sh --board m4 --split --i8 models/digits-gin
        scripts/qemu-run.sh --board m0 --split --i8 --max 50 models/digits-gin
    fi
    cora_runs
}
# Cora (2708 nodes, 1433 bag-of-words features): M4 only (~4.2 MB arena in its 16 MiB RAM2).
cora_runs() {
    local name py="" inputs
    for name in cora-gcn cora-sage; do
        [ -f "models/$name/$name.tgnn" ] || continue
        if [ -z "${TINYGNN_DATA:-}" ]; then
            echo "SKIP $name: TINYGNN_DATA not set"
            continue
        fi
        inputs=".cache/inputs/$name"
        if [ ! -f "$inputs/graphs.safetensors" ]; then
            [ -n "$py" ] || py="${TINYGNN_PYTHON:-$(scripts/venv.sh)}"
            echo "== making $inputs (models/make_inputs.py)"
            "$py" models/make_inputs.py "$name" "$inputs"
        fi
        scripts/qemu-run.sh --board m4 --sparse "models/$name/$name.tgnn:$inputs/graphs.safetensors"
    done
}
step "QEMU runs (m4, m0)" qemu_runs "$@"
step "build boards/nrf52840-dk" build_board nrf52840-dk
echo "== waiting for the background stream (rp-pico, esp32c3, nucleo-h743zi)"
bg_status=0
wait "$bg_pid" || bg_status=$?
cat "$bg_log"
while read -r line; do
    case "$line" in "build boards/"*) timings+=("$line") ;; esac
done < "$bg_log"
rm -f "$bg_log"
[ "$bg_status" = 0 ] || { echo "background board builds failed"; exit 1; }

size="$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin/llvm-size"
echo "== real-board firmware sizes (demo model; flash = text+rodata, RAM = data+bss)"
for elf in boards/target/thumbv7em-none-eabihf/release/tinygnn-nrf52840-dk \
           boards/target-bg/thumbv6m-none-eabi/release/tinygnn-rp-pico \
           boards/target-bg/thumbv7em-none-eabihf/release/tinygnn-nucleo-h743zi \
           boards/target-bg/riscv32imc-unknown-none-elf/release/tinygnn-esp32c3; do
    "$size" -A "$elf" | awk -v n="$(basename "$elf")" '
        $1 ~ /^\.(text|vector_table|boot2|trap|rwtext)$/ {t+=$2} $1==".rodata"{r=$2} $1==".data"{d=$2} $1==".bss"{b=$2}
        END {printf "   %-24s text=%d rodata=%d data=%d bss=%d\n", n, t, r, d, b}'
done
echo "== timings"
printf '   %s\n' "${timings[@]}"
echo "   total: $(( $(date +%s) - start ))s"
