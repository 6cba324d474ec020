#!/usr/bin/env bash
# Hostile input (docs/guarantees.md, docs/fuzzing.md): installs what it needs
# (idempotent), then
#   1. cargo deny: licences, bans, sources of the workspace, fuzz/ and every board crate;
#   2. the mutation suite (tests/mutation.rs), printing its counts;
#   3. Miri over the runtime's unit tests and selected integration tests;
#   4. every cargo-fuzz target for a bounded time, on a corpus seeded from models/.
# Called by scripts/test.sh. Environment:
#   TINYGNN_FUZZ_SECONDS   seconds per fuzz target (default 40)
#   TINYGNN_HOSTILE_SKIP   steps to skip, space separated: deny mutation miri fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
FUZZ_SECONDS="${TINYGNN_FUZZ_SECONDS:-40}"
SKIP=" ${TINYGNN_HOSTILE_SKIP:-} "
want() { [[ "$SKIP" != *" $1 "* ]]; }
say() { printf -- '-- hostile: %s\n' "$*"; }
t0=$SECONDS
took() { say "$1 took $((SECONDS - t0)) s"; t0=$SECONDS; }

# ---------------------------------------------------------------- installs
# Tools, not shipped code: built with a light profile to save CI minutes.
light_install() {
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=0 \
        cargo install --locked "$@"
}
if want deny && ! cargo deny --version >/dev/null 2>&1; then
    say "installing cargo-deny"
    light_install cargo-deny
fi
if want miri || want fuzz; then
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
fi
if want miri; then
    installed=$(rustup component list --toolchain nightly --installed)
    for c in miri rust-src; do
        grep -q "^$c" <<<"$installed" || rustup component add "$c" --toolchain nightly
    done
fi
if want fuzz; then
    if ! cargo fuzz --version >/dev/null 2>&1; then
        say "installing cargo-fuzz"
        light_install cargo-fuzz
    fi
    # libfuzzer-sys compiles libFuzzer (C++).
    if ! command -v c++ >/dev/null; then
        apt-get update -qq && apt-get install -y -qq g++ >/dev/null
    fi
fi
took "installs"

# ---------------------------------------------------------------- 1. cargo deny
if want deny; then
    # Advisories are not checked: the RustSec database lives on GitHub, which CI cannot reach.
    for m in Cargo.toml fuzz/Cargo.toml boards/*/Cargo.toml; do
        [ -f "$m" ] || continue
        if ! out=$(cargo deny --locked --manifest-path "$m" --config "$ROOT/deny.toml" \
            check licenses bans sources 2>&1); then
            echo "$out"
            say "cargo deny FAILED for $m"
            exit 1
        fi
        say "cargo deny $m: $(grep -E 'ok|FAILED' <<<"$out" | tail -1 | sed 's/^ *//')"
    done
    took "cargo deny"
fi

# ---------------------------------------------------------------- 2. mutation suite
if want mutation; then
    # Also part of `cargo test --release`; run here to print its counts.
    cargo test -q --release -p tinygnn --test mutation -- --nocapture --test-threads 1 2>&1 |
        sed -E 's/^[.i]+//' | grep -E '^(==|  |test result)'
    took "mutation suite"
fi

# ---------------------------------------------------------------- 3. Miri
if want miri; then
    # The runtime has no unsafe code of its own; Miri checks the safe code's
    # use of its dependencies (bytemuck casts, postcard, heapless) and every
    # out-of-bounds or overflow (debug build) on these paths. Fewer proptest
    # cases and mutants under cfg(miri) (see the tests). Isolation is off:
    # proptest and the mutation suite read files.
    export MIRIFLAGS="-Zmiri-disable-isolation"
    log=target/miri-hostile.log
    mkdir -p target
    rc=0
    PROPTEST_CASES=4 cargo +nightly miri test -p tinygnn --lib \
        --test edge_cases --test bad_input --test arena --test sparse_features \
        --test ops_pool_elementwise --test mutation >"$log" 2>&1 || rc=$?
    grep -E '^(     Running|test result)|FAILED|panicked|^error' "$log" | sed 's/^ */   /'
    if [ "$rc" != 0 ]; then
        tail -40 "$log"
        say "Miri FAILED (log: $log)"
        exit 1
    fi
    took "Miri"
fi

# ---------------------------------------------------------------- 4. fuzzing
# Default cargo-fuzz build: optimised, with debug assertions, overflow checks
# and AddressSanitizer.
if want fuzz; then
    python3 fuzz/seed_corpus.py
    (cd fuzz && cargo +nightly fuzz build 2>&1 | tail -1)
    for target in model_parse graph_validate inference; do
        say "fuzzing $target for $FUZZ_SECONDS s"
        if ! (cd fuzz && cargo +nightly fuzz run "$target" -- \
            -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1 \
            >"target/$target.log" 2>&1); then
            tail -40 "fuzz/target/$target.log"
            say "fuzz target $target FOUND A CRASH: see fuzz/artifacts/$target/ and docs/fuzzing.md"
            exit 1
        fi
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|cov:' "fuzz/target/$target.log" |
            grep -vE '^#[0-9]+.*(NEW|REDUCE|pulse)' | tail -3 | sed "s/^/   $target: /"
    done
    took "fuzzing"
fi
# ---------------------------------------------------------------- 5. stack per model
# Measured by the emulated-M4 runs of scripts/boards-ci.sh (stack painting,
# boards/app/src/stack.rs): deepest stack use during Session::run, from the
# top of the stack (the application's frames at the call included).
bound=$(grep -oE 'stack-bound thumbv7em-none-eabihf: [0-9]+' docs/guarantees.md | grep -oE '[0-9]+$')
for log in boards/generated/*/m4.log; do
    [ -f "$log" ] || { say "stack per model: SKIP (no QEMU logs: run scripts/boards-ci.sh first)"; break; }
    name=$(basename "$(dirname "$log")")
    case "$name" in demo*|@*) continue ;; esac
    line=$(grep -E '^stack ' "$log" | sort -k3 -n | tail -1)
    [ -n "$line" ] || continue
    used=$(awk '{print $3}' <<<"$line"); base=$(grep -oE 'base=[0-9]+' <<<"$line" | cut -d= -f2)
    say "stack $name (M4, mps2-an386): $used bytes from the stack top during Session::run" \
        "(application frames at the call: $base, run: $((used - base))); documented bound $bound"
    if [ "$used" -gt "$bound" ]; then say "stack of $name exceeds the documented bound"; exit 1; fi
    total=$(grep -oE 'stack_total=[0-9]+' "$log" | cut -d= -f2 || true)
    [ -z "$total" ] || say "stack $name (M4): $total bytes over the whole run (model validation, reporting)"
done
say "all hostile-input checks passed"
