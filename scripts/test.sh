#!/usr/bin/env bash
# Runs the tests of the project by area, on a fresh machine too: sets up once what the chosen
# areas need (scripts/setup.sh: Rust components and MCU targets, QEMU, valgrind, the Arm GNU
# toolchain, cargo tools; scripts/venv.sh: the Python venv with torch + PyG), builds the tinygnn
# CLI once (`cargo build --release -p tinygnn-cli`, exported as $TINYGNN_BIN and $TINYGNN_CLI),
# then runs each area's script, scripts/areas/NAME.sh, and prints each area's wall time.
#
#   scripts/test.sh                       # every area, in the order below
#   scripts/test.sh --area NAME           # one area (repeatable, or NAME,NAME,...)
#   scripts/test.sh --list                # the areas, with what each tests
#   scripts/test.sh --fail-fast           # stop at the first failed area (default: run them all)
#   scripts/test.sh --tidy | --keep       # delete each area's scratch build dirs after it, or keep
#                                         # them (default: --tidy for a whole run, --keep with --area)
#
# Areas (see --list; each script's header says in detail what it checks):
#   format lint host features kernels panic-free exporter ops models boards capi stream
#   hostile size bench-smoke
# An area script also runs alone (scripts/areas/NAME.sh): it then sets up and builds what it
# needs itself (scripts/lib.sh's `need`), never reusing a binary of an earlier build.
# Set TINYGNN_DATA to the Planetoid folder to include the Cora models; TINYGNN_VENV to use
# another venv (scripts/venv.sh).
# Disk: the summary gives the free space after each area. Cargo's incremental caches are off
# (CARGO_INCREMENTAL=0: every build here is a one-off). With --tidy, the directories an area's
# `# scratch:` line names (build dirs no later area reads) are deleted when it ends, so the peak
# stays near the largest area's, not the sum of all of them.
# Exit status: 0 when every area passed. The last line is `test.sh: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
ORDER="format lint host features kernels panic-free exporter ops models boards capi stream hostile size bench-smoke"

field() { sed -n "s/^# $2: //p" "scripts/areas/$1.sh" | head -1; }  # AREA KEY: its header line
list() {
    local a
    for a in $ORDER; do printf '  %-12s %s\n' "$a" "$(field "$a" area)"; done
}

areas=() fail_fast=0 tidy=
while [ $# -gt 0 ]; do
    case "$1" in
        --list) list; exit 0 ;;
        --area) shift; [ $# -gt 0 ] || { echo "test.sh: --area needs a name" >&2; exit 2; }
                IFS=, read -r -a more <<<"$1"; areas+=("${more[@]}") ;;
        --area=*) IFS=, read -r -a more <<<"${1#--area=}"; areas+=("${more[@]}") ;;
        --fail-fast) fail_fast=1 ;;
        --tidy) tidy=1 ;;
        --keep) tidy=0 ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "test.sh: unknown argument '$1' (--area NAME, --list, --fail-fast, --tidy, --keep)" >&2; exit 2 ;;
    esac
    shift
done
if [ ${#areas[@]} -eq 0 ]; then
    read -r -a areas <<<"$ORDER"
    tidy=${tidy:-1}
else
    tidy=${tidy:-0}
    # In the order of ORDER, each once.
    want=" ${areas[*]} "
    for a in "${areas[@]}"; do
        case " $ORDER " in *" $a "*) ;; *) echo "test.sh: unknown area '$a'; areas:" >&2; list >&2; exit 2 ;; esac
    done
    areas=()
    for a in $ORDER; do case "$want" in *" $a "*) areas+=("$a") ;; esac; done
fi

export CARGO_INCREMENTAL=0
free_gb() { df -Pk . | awk 'NR == 2 { printf "%.1f", $4 / 1048576 }'; }
names=() results=() secs=() free=()
t_all=$(date +%s)
echo "test.sh: $(free_gb) GB free on $(df -P . | awk 'NR == 2 { print $6 }')"
summary() {
    local i passed=0 failed=0 failed_names=""
    printf '\n==== summary (wall time per area, free disk after it) ====\n'
    printf '  %-12s %-7s %8s %8s\n' area result seconds "GB free"
    for i in "${!names[@]}"; do
        printf '  %-12s %-7s %8s %8s\n' "${names[$i]}" "${results[$i]}" "${secs[$i]}" "${free[$i]}"
        case "${names[$i]}:${results[$i]}" in
            setup:*) ;;
            *:ok) passed=$((passed + 1)) ;;
            *) failed=$((failed + 1)); failed_names="$failed_names ${names[$i]}" ;;
        esac
    done
    printf '  %-12s %-7s %8s\n' total "" "$(( $(date +%s) - t_all ))"
    local not_run=$(( ${#areas[@]} - passed - failed ))
    [ "$not_run" -eq 0 ] || echo "test.sh: $not_run area(s) not run"
    [ -z "$failed_names" ] || echo "test.sh: failed:$failed_names"
    echo "test.sh: $passed passed, $failed failed"
    [ "$failed" -eq 0 ] && [ "$not_run" -eq 0 ]
}

# ---- setup, once: the union of the chosen areas' needs (the `# needs:` line of each script).
needs=""
for a in "${areas[@]}"; do
    for n in $(field "$a" needs); do case " $needs " in *" $n "*) ;; *) needs="$needs $n" ;; esac; done
done
printf '\n==== setup:%s ====\n' "$needs"
t0=$(date +%s)
names+=(setup)
mkdir -p target
env_file=target/.test-sh-env
# In a process of its own (errors stop it), which writes its exports (what was set up, the venv's
# python, the CLI) to $env_file for every area.
# shellcheck disable=SC2016
if bash -c 'source scripts/lib.sh; need "${@:2}"
        for v in TINYGNN_SETUP_DONE TINYGNN_PYTHON TINYGNN_BIN TINYGNN_CLI; do
            [ -z "${!v:-}" ] || printf "export %s=%q\n" "$v" "${!v}"
        done > "$1"' _ "$env_file" $needs; then
    results+=(ok); secs+=($(( $(date +%s) - t0 ))); free+=("$(free_gb)")
else
    results+=(FAILED); secs+=($(( $(date +%s) - t0 ))); free+=("$(free_gb)")
    summary || true
    exit 1
fi
# shellcheck disable=SC1090
source "$env_file"
rm -f "$env_file"

# ---- the areas
for a in "${areas[@]}"; do
    printf '\n==== %s: %s ====\n' "$a" "$(field "$a" area)"
    t0=$(date +%s)
    names+=("$a")
    if bash "scripts/areas/$a.sh"; then
        results+=(ok)
    else
        results+=(FAILED)
    fi
    secs+=($(( $(date +%s) - t0 )))
    if [ $tidy = 1 ]; then
        for d in $(field "$a" scratch); do rm -rf "${d:?}"; done
    fi
    free+=("$(free_gb)")
    printf '==== %s: %s in %ss, %s GB free ====\n' "$a" "${results[-1]}" "${secs[-1]}" "${free[-1]}"
    if [ $fail_fast = 1 ] && [ "${results[-1]}" != ok ]; then break; fi
done
summary
