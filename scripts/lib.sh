# Shared helpers of scripts/test.sh and its areas (scripts/areas/*.sh). Source it:
#   source "$(dirname "$0")/../lib.sh"
# It cds to the repository root and defines:
#   need THING...   makes THING available, once per test run: a scripts/setup.sh component
#                   (rust, qemu, valgrind, arm-gcc, cbindgen, deny, nightly, msrv, miri, fuzz), `python`
#                   (scripts/venv.sh; exports TINYGNN_PYTHON) or `cli` (builds the tinygnn CLI
#                   with `cargo build --release -p tinygnn-cli`, copies it to
#                   target/test-runner/tinygnn and exports TINYGNN_BIN and TINYGNN_CLI to it).
#                   What scripts/test.sh already did (listed in $TINYGNN_SETUP_DONE) is skipped,
#                   so an area run alone sets up and builds what it needs itself, and never
#                   uses a binary left over from an earlier build.
#   say TEXT        a section line.
#   check_m4_stack STAMP   the stack per model (hostile input, docs/guarantees.md) of every
#                   emulated-M4 log (boards/generated/*/m4.log) written after the file STAMP.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

say() { printf -- '== %s\n' "$*"; }

need() {
    local thing setup=()
    for thing in "$@"; do
        case " ${TINYGNN_SETUP_DONE:-} " in *" $thing "*) continue ;; esac
        case "$thing" in
            python|cli) ;;
            *) setup+=("$thing") ;;
        esac
    done
    if [ ${#setup[@]} -gt 0 ]; then
        "$ROOT/scripts/setup.sh" "${setup[@]}"
        TINYGNN_SETUP_DONE="${TINYGNN_SETUP_DONE:-} ${setup[*]}"
    fi
    for thing in "$@"; do
        case " ${TINYGNN_SETUP_DONE:-} " in *" $thing "*) continue ;; esac
        case "$thing" in
            python)
                TINYGNN_PYTHON="$("$ROOT/scripts/venv.sh")"
                export TINYGNN_PYTHON ;;
            cli)
                say "build the tinygnn CLI (cargo build --release -p tinygnn-cli)"
                cargo build -q --release -p tinygnn-cli
                local tdir="${CARGO_TARGET_DIR:-$ROOT/target}"
                mkdir -p "$ROOT/target/test-runner"
                # A copy: later cargo runs (cargo test --workspace, other feature sets) may
                # replace target/release/tinygnn; this one is the binary of this run.
                cp -f "$tdir/release/tinygnn" "$ROOT/target/test-runner/tinygnn"
                TINYGNN_BIN="$ROOT/target/test-runner/tinygnn"
                TINYGNN_CLI="$TINYGNN_BIN"
                export TINYGNN_BIN TINYGNN_CLI ;;
            *) continue ;;
        esac
        TINYGNN_SETUP_DONE="${TINYGNN_SETUP_DONE:-} $thing"
    done
    export TINYGNN_SETUP_DONE
}

# The stack per model: measured by the emulated-M4 runs of scripts/qemu-run.sh (stack
# painting, boards/app/src/stack.rs): deepest stack use during Session::run below the
# application's frames at the call (`base`), against the bound documented in
# docs/guarantees.md, which counts from the caller's stack pointer (the panic-check
# firmware's own frames included; a firmware adds its own, as that document says: the
# QEMU firmware's are larger than the panic-check firmware's). Only logs written after
# STAMP: never a log of an earlier run.
check_m4_stack() {
    local stamp="$1" bound log name line used base total n=0
    bound=$(grep -oE 'stack-bound thumbv7em-none-eabihf: [0-9]+' docs/guarantees.md | grep -oE '[0-9]+$')
    for log in boards/generated/*/m4.log; do
        [ -f "$log" ] && [ "$log" -nt "$stamp" ] || continue
        name=$(basename "$(dirname "$log")")
        case "$name" in demo*|@*) continue ;; esac
        line=$(grep -E '^stack ' "$log" | sort -k3 -n | tail -1 || true)
        [ -n "$line" ] || continue
        used=$(awk '{print $3}' <<<"$line"); base=$(grep -oE 'base=[0-9]+' <<<"$line" | cut -d= -f2)
        say "stack $name (M4, mps2-an386): $used bytes from the stack top during Session::run" \
            "(application frames at the call: $base, run: $((used - base))); documented bound $bound"
        if [ "$((used - base))" -gt "$bound" ]; then say "stack of $name exceeds the documented bound"; return 1; fi
        total=$(grep -oE 'stack_total=[0-9]+' "$log" | cut -d= -f2 || true)
        [ -z "$total" ] || say "stack $name (M4): $total bytes over the whole run (model validation, reporting)"
        n=$((n + 1))
    done
    say "stack per model: $n emulated-M4 logs of this run within the documented bound $bound B"
}
