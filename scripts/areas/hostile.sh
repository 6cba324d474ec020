#!/usr/bin/env bash
# area: hostile input: cargo deny, the mutation suite (counts), Miri, bounded fuzzing of every cargo-fuzz target
# needs: rust
# scratch: target/miri target/miri-tests fuzz/target
# Hostile input (docs/guarantees.md, docs/fuzzing.md): installs what it needs through
# scripts/setup.sh (cargo-deny, nightly with miri, cargo-fuzz; idempotent), then
#   1. cargo deny: licences, bans, sources of the workspace, fuzz/ and every board crate;
#   2. the mutation suite (tests/mutation.rs: its mutate_* tests, skipped by the host area's
#      `cargo test --workspace`, run here once), printing its counts;
#   3. Miri over the runtime's unit tests and selected integration tests;
#   4. every cargo-fuzz target for a bounded time, on a corpus seeded from models/.
# (The stack per model, measured by the emulated-M4 runs, is checked by the areas that run them:
# boards and ops.) Environment:
#   TINYGNN_FUZZ_SECONDS   seconds per fuzz target (default 15; the default, bounded, CI mode)
#   TINYGNN_FUZZ_LONG=1    long mode: each target runs TINYGNN_FUZZ_RUNS executions (default
#                          10,000,000; libFuzzer's -runs) instead of a time; setting
#                          TINYGNN_FUZZ_RUNS alone selects it too
#   TINYGNN_FUZZ_MAX_SECONDS  long mode only: stop a target after this many seconds even if it
#                          has not done its runs (default 0: no limit); the summary says so
#   TINYGNN_FUZZ_TARGETS   the targets to fuzz, space separated (default: all five)
#   TINYGNN_FUZZ_SANITIZER cargo-fuzz's sanitizer: address (default) or none. On the host the
#                          runtime and proto have no unsafe code, so `none` catches the same
#                          panics, overflows and out-of-bounds indexing several times faster
#                          (for 10 M-execution runs of the slow targets, docs/fuzzing.md)
#   TINYGNN_HOSTILE_SKIP   steps to skip, space separated: deny mutation miri fuzz
# Long runs are for a developer's machine (docs/fuzzing.md records their figures), e.g.
#   TINYGNN_FUZZ_LONG=1 TINYGNN_HOSTILE_SKIP="deny mutation miri" nice scripts/areas/hostile.sh
source "$(dirname "$0")/../lib.sh"
FUZZ_SECONDS="${TINYGNN_FUZZ_SECONDS:-15}"
FUZZ_RUNS="${TINYGNN_FUZZ_RUNS:-}"
if [ "${TINYGNN_FUZZ_LONG:-0}" = 1 ] && [ -z "$FUZZ_RUNS" ]; then FUZZ_RUNS=10000000; fi
FUZZ_MAX_SECONDS="${TINYGNN_FUZZ_MAX_SECONDS:-0}"
FUZZ_SANITIZER="${TINYGNN_FUZZ_SANITIZER:-address}"
FUZZ_TARGETS="${TINYGNN_FUZZ_TARGETS:-model_parse graph_validate inference stream_reply proto_server}"
SKIP=" ${TINYGNN_HOSTILE_SKIP:-} "
want() { [[ "$SKIP" != *" $1 "* ]]; }
say() { printf -- '-- hostile: %s\n' "$*"; }
case "$FUZZ_SANITIZER" in address|none) ;; *) say "TINYGNN_FUZZ_SANITIZER must be address or none"; exit 2 ;; esac
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
    cargo test -q --profile test-release -p tinygnn --test mutation -- mutate_ --nocapture --test-threads 1 2>&1 |
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
    mkdir -p target
    cargo +nightly miri setup -q
    # Two processes, one per core (Miri interprets on one thread): the unit
    # tests, and the integration tests in a target dir of their own (cargo
    # locks a target dir for the whole run).
    rc=0 rc2=0
    PROPTEST_CASES=4 cargo +nightly miri test -p tinygnn --lib \
        >target/miri-hostile-lib.log 2>&1 &
    lib_pid=$!
    CARGO_TARGET_DIR=target/miri-tests PROPTEST_CASES=4 cargo +nightly miri test -p tinygnn \
        --test edge_cases --test bad_input --test arena --test sparse_features \
        --test ops_pool_elementwise --test mutation >target/miri-hostile-tests.log 2>&1 || rc2=$?
    wait "$lib_pid" || rc=$?
    for log in target/miri-hostile-lib.log target/miri-hostile-tests.log; do
        grep -E '^(     Running|test result)|FAILED|panicked|^error' "$log" | sed 's/^ */   /'
    done
    for r in "$rc:target/miri-hostile-lib.log" "$rc2:target/miri-hostile-tests.log"; do
        if [ "${r%%:*}" != 0 ]; then
            tail -40 "${r#*:}"
            say "Miri FAILED (log: ${r#*:})"
            exit 1
        fi
    done
    took "Miri"
fi

# ---------------------------------------------------------------- 4. fuzzing
# Default cargo-fuzz build: optimised, with debug assertions, overflow checks
# and AddressSanitizer (TINYGNN_FUZZ_SANITIZER=none: without it).
if want fuzz; then
    python3 fuzz/seed_corpus.py
    (cd fuzz && cargo +nightly fuzz build -s "$FUZZ_SANITIZER" 2>&1 | tail -1)
    if [ -n "$FUZZ_RUNS" ]; then
        # Long mode: a number of executions (and an optional time cap), not a time.
        limit=(-runs="$FUZZ_RUNS" -max_total_time="$FUZZ_MAX_SECONDS")
        what="$FUZZ_RUNS executions"
        [ "$FUZZ_MAX_SECONDS" = 0 ] || what="$what (at most $FUZZ_MAX_SECONDS s)"
    else
        limit=(-max_total_time="$FUZZ_SECONDS")
        what="$FUZZ_SECONDS s"
    fi
    # Two targets at a time (libFuzzer runs on one thread; two cores), each with its own log
    # and a status file: its exit code and wall time.
    fuzz_one() {
        local target="$1" t=$SECONDS rc=0
        (cd fuzz && cargo +nightly fuzz run -s "$FUZZ_SANITIZER" "$target" -- "${limit[@]}" \
            -rss_limit_mb=2048 -print_final_stats=1 >"target/$target.log" 2>&1) || rc=$?
        echo "$rc $((SECONDS - t))" >"fuzz/target/$target.status"
    }
    for target in $FUZZ_TARGETS; do
        [ -f "fuzz/fuzz_targets/$target.rs" ] || { say "no fuzz target '$target'"; exit 2; }
    done
    for target in $FUZZ_TARGETS; do
        say "fuzzing $target for $what"
        rm -f "fuzz/target/$target.status"
        fuzz_one "$target" &
        while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n || true; done
    done
    wait
    summary=() failed=()
    for target in $FUZZ_TARGETS; do
        log="fuzz/target/$target.log"
        read -r rc secs <"fuzz/target/$target.status" || { rc=1; secs="?"; }
        if [ "$rc" != 0 ]; then
            tail -40 "$log"
            say "fuzz target $target FOUND A CRASH: see fuzz/artifacts/$target/ and docs/fuzzing.md"
            failed+=("$target")
        fi
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|cov:' "$log" |
            grep -vE '^#[0-9]+.*(NEW|REDUCE|pulse)' | tail -3 | sed "s/^/   $target: /"
        # One line per target: executions, wall time, coverage (cov: edges, ft: features), corpus.
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -1)
        cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
        ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
        corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' <<<"$last" | sed 's/corp: //' || true)
        crashes=$([ "$rc" = 0 ] && echo 0 || echo "1 (exit $rc)")
        summary+=("$(printf '%-15s execs=%s time=%ss exec/s=%s cov=%s ft=%s corpus=%s crashes=%s' \
            "$target" "${execs:-?}" "$secs" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes")")
        if [ -n "$FUZZ_RUNS" ] && [ -n "$execs" ] && [ "$execs" -lt "$FUZZ_RUNS" ]; then
            summary+=("                (stopped by the time cap after $execs of $FUZZ_RUNS executions)")
        fi
    done
    say "fuzzing summary ($what per target, sanitizer $FUZZ_SANITIZER)"
    printf '   %s\n' "${summary[@]}"
    took "fuzzing"
    if [ ${#failed[@]} -gt 0 ]; then
        say "fuzz targets with a crash: ${failed[*]}"
        exit 1
    fi
fi
say "all hostile-input checks passed"
