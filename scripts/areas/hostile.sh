#!/usr/bin/env bash
# area: hostile input: cargo deny, the mutation suite (counts), Miri, bounded fuzzing of every cargo-fuzz target
# needs: rust
# Hostile input (docs/guarantees.md, docs/fuzzing.md): installs what it needs through
# scripts/setup.sh (cargo-deny, nightly with miri, cargo-fuzz; idempotent), then
#   1. cargo deny: licences, bans, sources of the workspace, fuzz/ and every board crate;
#   2. the mutation suite (tests/mutation.rs: its mutate_* tests, skipped by the host area's
#      `cargo test --workspace`, run here once), printing its counts;
#   3. Miri over the runtime's unit tests and selected integration tests;
#   4. every cargo-fuzz target for a bounded time, on a corpus seeded from models/.
# (The stack per model, measured by the emulated-M4 runs, is checked by the areas that run them:
# boards and ops.) Environment:
#   TINYGNN_FUZZ_SECONDS   seconds per fuzz target (default 40)
#   TINYGNN_HOSTILE_SKIP   steps to skip, space separated: deny mutation miri fuzz
source "$(dirname "$0")/../lib.sh"
FUZZ_SECONDS="${TINYGNN_FUZZ_SECONDS:-40}"
SKIP=" ${TINYGNN_HOSTILE_SKIP:-} "
want() { [[ "$SKIP" != *" $1 "* ]]; }
say() { printf -- '-- hostile: %s\n' "$*"; }
t0=$SECONDS
took() { say "$1 took $((SECONDS - t0)) s"; t0=$SECONDS; }

# ---------------------------------------------------------------- installs
tools=(rust)
want deny && tools+=(deny)
want miri && tools+=(miri)
want fuzz && tools+=(fuzz)
need "${tools[@]}"
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
    # The mutants only (mutate_*); the host area skips them. --nocapture: their counts.
    cargo test -q --release -p tinygnn --test mutation -- mutate_ --nocapture --test-threads 1 2>&1 |
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
    for target in model_parse graph_validate inference stream_reply proto_server; do
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
say "all hostile-input checks passed"
