#!/usr/bin/env bash
# What the publishable crates ship: `cargo package --list` of tinygnn and tinygnn-proto holds
# their sources, build script, README, CHANGELOG and both license files, and nothing of the
# repository around them (models, tests, tools, boards, docs, scripts, ...). Fails on a missing
# file, a forbidden path or more files than the limit.
#
#   scripts/package-check.sh               # check both crates (the lint area runs this)
#   scripts/package-check.sh --self-test   # the checker rejects bad lists (run by the above too)
set -euo pipefail
cd "$(dirname "$0")/.."

# Directories of the repository that no package may contain.
FORBIDDEN="models tests boards tools docs scripts examples fuzz capi testkit proto proptest-regressions target .ci"

# check NAME LIMIT REQUIRED... < LIST: the package file list on stdin.
check() {
    local name="$1" limit="$2" list n bad=0 f d
    shift 2
    list=$(cat)
    n=$(grep -c . <<<"$list" || true)
    if [ "$n" -gt "$limit" ]; then
        echo "package-check: $name ships $n files, more than $limit" >&2
        bad=1
    fi
    for f in "$@"; do
        grep -qxF "$f" <<<"$list" || { echo "package-check: $name does not ship $f" >&2; bad=1; }
    done
    for d in $FORBIDDEN; do
        if grep -q "^$d/" <<<"$list"; then
            echo "package-check: $name ships $d/: $(grep "^$d/" <<<"$list" | head -3 | tr '\n' ' ')" >&2
            bad=1
        fi
    done
    # Nothing but Rust sources under src/ and the files above at the top.
    local extra
    extra=$(grep -v '^src/.*\.rs$' <<<"$list" | grep -vxF -e Cargo.toml -e Cargo.toml.orig \
        -e Cargo.lock -e .cargo_vcs_info.json -e README.md -e CHANGELOG.md -e LICENSE-MIT \
        -e LICENSE-APACHE -e build.rs || true)
    if [ -n "$extra" ]; then
        echo "package-check: $name ships unexpected files: $(head -5 <<<"$extra" | tr '\n' ' ')" >&2
        bad=1
    fi
    [ "$bad" = 0 ] && echo "package-check: $name ok ($n files)"
    return "$bad"
}

COMMON="Cargo.toml README.md CHANGELOG.md LICENSE-MIT LICENSE-APACHE src/lib.rs"

self_test() {
    local good="Cargo.toml
README.md
CHANGELOG.md
LICENSE-MIT
LICENSE-APACHE
src/lib.rs"
    # shellcheck disable=SC2086
    check good 10 $COMMON <<<"$good" >/dev/null || { echo "package-check: self-test: a good list fails" >&2; return 1; }
    local name list
    for name in models tests no-license too-many docs-file; do
        case "$name" in
            models) list="$good"$'\nmodels/karate-gcn/karate-gcn.tgnn' ;;
            tests) list="$good"$'\ntests/bad_input.rs' ;;
            no-license) list=$(grep -v LICENSE-MIT <<<"$good") ;;
            too-many) list="$good"$'\nsrc/a.rs\nsrc/b.rs\nsrc/c.rs\nsrc/d.rs\nsrc/e.rs' ;;
            docs-file) list="$good"$'\ndeny.toml' ;;
        esac
        # shellcheck disable=SC2086
        if check "bad-$name" 10 $COMMON <<<"$list" 2>/dev/null; then
            echo "package-check: self-test: a list with $name passes" >&2
            return 1
        fi
    done
    echo "package-check: self-test ok (the checker rejects models/, tests/, a missing license, too many files, stray files)"
}

[ "${1:-}" = --self-test ] && { self_test; exit; }
self_test
status=0
# shellcheck disable=SC2086
cargo package -q -p tinygnn --list --allow-dirty | check tinygnn 150 $COMMON build.rs || status=1
# shellcheck disable=SC2086
cargo package -q -p tinygnn-proto --list --allow-dirty | check tinygnn-proto 30 $COMMON || status=1
exit "$status"
