#!/usr/bin/env bash
# Runs tinygnn models on emulated Cortex-M boards and checks their outputs
# byte for byte against the host.
#
#   scripts/qemu-run.sh [options] TARGET...
#   scripts/qemu-run.sh --default         # the firmware as `cargo run --release` builds it (below)
#   scripts/qemu-run.sh --demo            # the generated demo model (no other input needed)
#
# TARGET is a directory holding one *.tgnn and either a graphs safetensors
# (interchange format; the first *graphs*.safetensors, e.g. models/karate-gcn)
# or, without one, inputs.tgib (a bundle, see
# boards/app/src/bundle.rs), or a pair
# MODEL.tgnn:GRAPHS.safetensors / MODEL.tgnn:INPUTS.tgib.
#
# --default runs the firmware every board crate embeds when no TINYGNN_* variable is set (the
# bundled models/karate-gcn/karate-gcn.tgnn and models/karate-gcn/inputs.tgib, the bundle
# `tinygnn pack inputs` makes of its graphs.safetensors): it is built and run exactly as a user
# does on a fresh clone, `cargo build --release` and `cargo run --release` in the board's
# directory (the .cargo/config.toml runner), with those variables unset; the logs and results
# are named karate-gcn, and the first report line must name the bundled files' sizes.
#
# Options:
#   --board m4|m0|nrf52840|all
#                       boards to run (default all = m4 m0): m4 = mps2-an386 Cortex-M4F, m0 = microbit
#                       Cortex-M0, nrf52840 = the M4 firmware (boards/qemu-m4, feature nrf52840) linked
#                       for the nRF52840's memory, 1 MiB flash and 256 KiB RAM (memory/nrf52840.x)
#   --split             one inference per graph of the batch (default: the whole file is one inference)
#   --i8                bundle int8 features quantized on the host (4x less flash, same outputs)
#   --sparse            bundle them as sparse int8 (CSR, only entries != the input zero point;
#                       implies --i8; for bag-of-words features such as Cora's)
#   --least-arena       the M4 too gets the least arena (Model::arena_bytes[_sparse]); by default
#                       it gets the wide one (Model::wide_arena_bytes: every GCN layer in one pass
#                       over its channels, the fastest), the nRF52840 profile and the M0 the least
#   --mask NAME         labels scored: test (default), val, train, all
#   --max N             at most N samples (with --split)
#   --incremental       the M4 only: the samples (implies --split) are one graph whose features change
#                       from sample to sample; sample 0 runs in full (Session::prepare_incremental),
#                       each later one as an update of the nodes whose features changed
#                       (Session::update) and then in full, the firmware checking both give the same
#                       bytes; prints per sample the changed nodes and both instruction counts
#   --defmt             the M4 only, built with its `defmt` feature: the report goes through
#                       DefmtReport (the real defmt boards' path) as defmt frames over semihosting,
#                       decoded by defmt-print (scripts/setup.sh defmt-print); the decoded out/hex
#                       lines are compared with the host's (the scale, a defmt f32, aside)
#
# For each target and board: packs the inputs (`tinygnn pack inputs`), computes the
# expected report on the host (`tinygnn pack expect`: same runtime crate and board code), builds the firmware with
# the model and inputs embedded, runs it under QEMU with -icount (timeout
# QEMU_TIMEOUT, default 600 s), compares the output bytes (every `out`/`hex`
# line), and — when the whole file is one inference — also against
# `tinygnn run --output-bytes` (a recurrent model, one with a state: the graphs
# are the steps of a sequence, packed one sample per step, and every step's
# bytes are compared with `tinygnn run --sequence --output-bytes`); then (with --mask test) the accuracy
# the firmware prints (correct/scored over the test mask) must also equal the
# CLI's. A firmware that does not fit the
# board's flash/RAM is reported as SKIP. Exit status: 0 if every run that
# fitted matched, 1 otherwise. Logs: boards/generated/<target>/<board>.log.
# The tinygnn CLI is $TINYGNN_CLI, or built from the repository's tools/ crate.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
B="$ROOT/boards"
GEN="$B/generated"
QEMU_TIMEOUT="${QEMU_TIMEOUT:-600}"
SYSROOT_BIN="$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin"
SIZE="$SYSROOT_BIN/llvm-size"

boards="m4 m0"; split=""; i8=""; sparse=""; mask="test"; max=""; defmt=""; incremental=""; least_arena=""; targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --board) shift; [ "$1" = all ] && boards="m4 m0" || boards="$1" ;;
        --split) split="--split" ;;
        --i8) i8=1 ;;
        --defmt) defmt=1 ;;
        --incremental) incremental=1; split="--split"; boards=m4 ;;
        --sparse) i8=1; sparse=1 ;;
        --least-arena) least_arena=1 ;;
        --mask) shift; mask="$1" ;;
        --max) shift; max="$1" ;;
        --demo) targets+=("@demo") ;;
        --default) targets+=("@default") ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) targets+=("$1") ;;
    esac
    shift
done
[ ${#targets[@]} -gt 0 ] || { echo "usage: $0 [--board m4|m0|nrf52840|all] [--split] [--i8|--sparse] [--least-arena] [--mask M] [--max N] [--incremental] [--defmt] (--default | --demo | TARGET...)" >&2; exit 2; }
if [ -n "$defmt" ]; then
    boards=m4
    command -v defmt-print >/dev/null || { echo "--defmt needs defmt-print: scripts/setup.sh defmt-print" >&2; exit 2; }
fi
# defmt-print's lines as the text report's: no level prefix, `hex N [0a, 0b]` as `hex N 0a0b`.
undefmt() { sed -uE 's/^(TRACE|DEBUG|INFO|WARN|ERROR) +//; /^hex /{s/[][]//g; s/, //g}'; }
# The compared lines; with --defmt without the scale (text: 1.250000e-1, defmt: 0.125).
bytes_of() { grep -E '^(out|hex) ' "$1" | { if [ -n "$defmt" ]; then sed -E 's/ scale=[^ ]+//'; else cat; fi; }; }
command -v qemu-system-arm >/dev/null || { echo "qemu-system-arm missing: run scripts/boards-setup.sh" >&2; exit 2; }

# CARGO_TARGET_DIR, when set, is shared by all the board crates (scripts/areas/boards.sh does that).
tdir() { echo "${CARGO_TARGET_DIR:-$1/target}"; }
# The CLI: packs the inputs and computes the host report (`tinygnn pack`), and is an independent
# reference of the output bytes (`tinygnn run`).
CLI="${TINYGNN_CLI:-}"
if [ -z "$CLI" ]; then
    # Built like scripts/test.sh builds it (its own target dir, no extra RUSTFLAGS), so CI reuses that build.
    echo "== building the tinygnn CLI (host)"
    (unset RUSTFLAGS; CARGO_TARGET_DIR="$ROOT/target" cargo build --release -q --manifest-path "$ROOT/Cargo.toml" -p tinygnn-cli)
    CLI="$ROOT/target/release/tinygnn"
fi
echo "== CLI: $CLI"
PACK=("$CLI" pack)
# What the board build scripts read: unset for --default, so the build is a fresh clone's.
BUILD_VARS=(TINYGNN_MODEL TINYGNN_INPUTS TINYGNN_ARENA_BYTES TINYGNN_ARENA_AT_CAPACITY TINYGNN_M0_STACK_RESERVE TINYGNN_INCREMENTAL TINYGNN_ARENA_WIDE)
UNSET=(); for v in "${BUILD_VARS[@]}"; do UNSET+=(-u "$v"); done

# The sizes of the embedded model and bundle, from a report's first line.
embedded() { grep -m1 -oE 'model_bytes=[0-9]+ bundle_bytes=[0-9]+' "$1" | tr ' ' ',' || true; }

status=0
results=()
for t in "${targets[@]}"; do
    model=""; inputs=""; graphs=""; default=""
    if [ "$t" = "@demo" ]; then
        name=demo
        "${PACK[@]}" demo "$GEN/demo" 2>/dev/null
        model="$GEN/demo/model.tgnn"; graphs="$GEN/demo/graphs.safetensors"
    elif [ "$t" = "@default" ]; then
        # The bundle is the committed one (not packed here): graphs is for the CLI reference.
        name=karate-gcn; default=1
        model="$ROOT/models/karate-gcn/karate-gcn.tgnn"; inputs="$ROOT/models/karate-gcn/inputs.tgib"
        graphs="$ROOT/models/karate-gcn/graphs.safetensors"
    elif [[ "$t" == *:* ]]; then
        model="${t%%:*}"; other="${t#*:}"
        name="$(basename "${model%.tgnn}")"
        case "$other" in *.tgib) inputs="$other" ;; *) graphs="$other" ;; esac
    elif [ -d "$t" ]; then
        name="$(basename "$t")"
        model="$(find "$t" -maxdepth 1 -name '*.tgnn' | sort | head -1)"
        graphs="$(find "$t" -maxdepth 1 -name '*graphs*.safetensors' | sort | head -1)"
        if [ -z "$graphs" ] && [ -f "$t/inputs.tgib" ]; then inputs="$t/inputs.tgib"; fi
    else
        echo "$t: not a directory or MODEL:INPUTS pair" >&2; status=1; continue
    fi
    if [ -z "$model" ] || { [ -z "$inputs" ] && [ -z "$graphs" ]; }; then
        echo "$t: needs a *.tgnn and inputs.tgib or a graphs *.safetensors" >&2; status=1; continue
    fi
    work="$GEN/$name"; mkdir -p "$work"
    model="$(cd "$(dirname "$model")" && pwd)/$(basename "$model")"
    # A recurrent model (a state in `inspect --json`) runs a sequence: the graphs file's graphs
    # are the steps, one bundle sample each, the firmware carrying the state between them.
    recurrent=""
    if grep -qE '"state": \{' <<<"$("$CLI" inspect "$model" --json)"; then recurrent=1; fi
    if [ -n "$graphs" ] && [ -z "$inputs" ]; then
        opts=(--mask "$mask")
        if [ -n "$split" ] || [ -n "$recurrent" ]; then opts+=(--split); fi
        [ -n "$max" ] && opts+=(--max "$max")
        [ -n "$i8" ] && opts+=(--quantize "$model")
        [ -n "$sparse" ] && opts+=(--sparse)
        "${PACK[@]}" inputs "$graphs" "$work/inputs.tgib" "${opts[@]}"
        inputs="$work/inputs.tgib"
    fi
    inputs="$(cd "$(dirname "$inputs")" && pwd)/$(basename "$inputs")"
    echo "== $name: model $(stat -c %s "$model") B, inputs $(stat -c %s "$inputs") B"
    "${PACK[@]}" expect "$model" "$inputs" > "$work/host.log" || { echo "host reference failed:"; tail -2 "$work/host.log"; status=1; continue; }
    bytes_of "$work/host.log" > "$work/host.bytes" || true

    cli_hex=""; cli_acc=""
    if [ -n "$graphs" ] && [ -n "$recurrent" ]; then
        # Every step's output bytes in order, from the zero state (no accuracy: --json gives none).
        if "$CLI" run "$model" "$graphs" --sequence --output-bytes "$work/cli.bin" > "$work/cli.log" 2>&1; then
            cli_hex="$(od -An -v -tx1 "$work/cli.bin" | tr -d ' \n')"
        else
            echo "   CLI run --sequence failed (see $work/cli.log)"; status=1
        fi
    elif [ -n "$graphs" ] && [ -z "$split" ]; then
        if "$CLI" run "$model" "$graphs" --json --output-bytes "$work/cli.bin" > "$work/cli.log" 2>&1; then
            cli_hex="$(od -An -v -tx1 "$work/cli.bin" | tr -d ' \n')"
            # The CLI scores argmax over test_mask (or all rows): "correct/rows" as the firmware prints it.
            if [ "$mask" = test ]; then
                cli_acc="$(awk -F'[:,]' '
                    /"accuracy":/ {a=$2} /"accuracy_rows":/ {n=$2}
                    END {if (a != "" && a !~ /null/ && n !~ /null/) printf "%d/%d", a*n+0.5, n}' "$work/cli.log")"
            fi
        else
            echo "   CLI run failed (see $work/cli.log)"; status=1
        fi
    fi

    for board in $boards; do
        crate="$B/qemu-$board"; bin="tinygnn-qemu-$board"; features=()
        case "$board" in
            m4) triple=thumbv7em-none-eabihf; machine=(-machine mps2-an386 -cpu cortex-m4) ;;
            m0) triple=thumbv6m-none-eabi; machine=(-machine microbit) ;;
            # The M4 firmware crate, linked with the nRF52840's memory sizes (same machine).
            nrf52840) crate="$B/qemu-m4"; bin=tinygnn-qemu-m4; features=(--features nrf52840)
                      triple=thumbv7em-none-eabihf; machine=(-machine mps2-an386 -cpu cortex-m4) ;;
            *) echo "unknown board $board" >&2; status=1; continue ;;
        esac
        elf="$(tdir "$crate")/$triple/release/$bin"
        log="$work/$board.log"
        t0=$(date +%s)
        if [ -n "$default" ]; then
            build=(env "${UNSET[@]}" cargo build --release -q "${features[@]}")
        else
            # The M4 (mps2-an386, 4 MiB of RAM) gets the wide arena, every GCN layer in one
            # pass over its channels; the nRF52840 profile and the M0 the least one.
            wide=0; [ "$board" = m4 ] && [ -z "$least_arena" ] && wide=1
            build=(env TINYGNN_MODEL="$model" TINYGNN_INPUTS="$inputs" TINYGNN_INCREMENTAL="${incremental:-0}" TINYGNN_ARENA_WIDE="$wide" cargo build --release -q "${features[@]}")
        fi
        [ -z "$defmt" ] || build+=(--features defmt)
        if ! (cd "$crate" && "${build[@]}") > "$work/$board.build.log" 2>&1; then
            if grep -qE "will not fit in region|overflowed by|section .* overlaps" "$work/$board.build.log"; then
                why="$(grep -oE "region '[A-Z0-9]+': overflowed by [0-9]+ bytes" "$work/$board.build.log" | sort -k5,5n | tail -1 || true)"
                echo "   $board: SKIP (does not fit: ${why:-see $work/$board.build.log})"
                results+=("$name $board SKIP ${why// /_}")
                continue
            fi
            echo "   $board: BUILD FAILED"; tail -15 "$work/$board.build.log"; status=1; results+=("$name $board BUILD-FAILED"); continue
        fi
        t1=$(date +%s)
        # A fault ends the run at once: QEMU aborts on "Lockup" (a fault that cannot be stacked,
        # e.g. the M0's stack overflowing below RAM, boards/qemu-m0/memory.x), and the firmware's
        # HardFault handler prints "error hardfault" and exits; should either hang instead, the
        # watch below stops QEMU within a second rather than at QEMU_TIMEOUT.
        if [ -n "$defmt" ]; then
            (set -o pipefail; timeout "$QEMU_TIMEOUT" qemu-system-arm "${machine[@]}" -nographic \
                -semihosting-config enable=on,target=native -icount shift=10 -kernel "$elf" |
                defmt-print -e "$elf" | undefmt) > "$log" 2>&1 &
        elif [ -n "$default" ]; then
            # The board's runner (.cargo/config.toml), as `cargo run --release` gives it to a user.
            (cd "$crate" && exec timeout "$QEMU_TIMEOUT" env "${UNSET[@]}" cargo run --release -q "${features[@]}") > "$log" 2>&1 &
        else
            timeout "$QEMU_TIMEOUT" qemu-system-arm "${machine[@]}" -nographic \
                -semihosting-config enable=on,target=native -icount shift=10 -kernel "$elf" > "$log" 2>&1 &
        fi
        qpid=$!
        fault=""
        while kill -0 "$qpid" 2>/dev/null; do
            if grep -qsE 'Lockup|^error hardfault' "$log"; then
                fault=1; sleep 1; kill "$qpid" 2>/dev/null || true; break
            fi
            sleep 0.2
        done
        set +e
        wait "$qpid"
        rc=$?
        set -e
        t2=$(date +%s)
        bytes_of "$log" > "$work/$board.bytes" || true
        verdict=PASS
        if grep -qE 'Lockup|^error hardfault' "$log"; then
            verdict="FAIL(fault: $(grep -oE 'Lockup[^(]*|^error hardfault.*' "$log" | head -1 | tr ' ' '_' | tr -d "'"))"
            echo "   $board: the firmware faulted (QEMU exit $rc): a stack overflow (the M0's stack lies" \
                 "below RAM's statics, so an overflow faults) or a bad access; see $log:"
            grep -E 'Lockup|^error|^R1[345]=' "$log" | head -4 | sed 's/^/   /' || true
        elif [ $rc -ne 0 ]; then
            verdict="FAIL(exit $rc$([ $rc = 124 ] && echo ', timeout'))"
            grep -E '^error' "$log" | head -3 | sed 's/^/   /' || true
        elif ! cmp -s "$work/host.bytes" "$work/$board.bytes"; then
            verdict="FAIL(bytes differ from host)"
            diff "$work/host.bytes" "$work/$board.bytes" | head -5 | sed 's/^/   /'
        elif [ -n "$default" ] && [ "$(embedded "$log")" != "$(embedded "$work/host.log")" ]; then
            verdict="FAIL(the default firmware embeds $(embedded "$log"), not the bundled $(embedded "$work/host.log"))"
        elif [ -n "$cli_hex" ]; then
            # One inference: sample 0's bytes; a sequence: every step's, in order.
            fw_hex="$(grep -E "^hex $([ -n "$recurrent" ] && echo '[0-9]+' || echo 0) " "$log" | cut -d' ' -f3 | tr -d '\n')"
            [ "$fw_hex" = "$cli_hex" ] || verdict="FAIL(bytes differ from CLI)"
        fi
        [ "$verdict" = PASS ] || status=1
        # Sizes: flash = .text + .rodata (+ .data init, + vector table), RAM = .data + .bss (+ .uninit)
        # + .ram2 (the M4's arena, in its second RAM at 0x21000000).
        read -r text rodata data bss ram2 <<<"$("$SIZE" -A "$elf" | awk '
            $1==".text"{t=$2} $1==".rodata"{r=$2} $1==".data"{d=$2} $1==".bss"{b=$2} $1==".vector_table"{v=$2} $1==".ram2"{r2=$2}
            END{print t+v, r+0, d+0, b+0, r2+0}')"
        arena="$(grep -oE 'arena_bytes=[0-9]+' "$log" | head -1 | cut -d= -f2 || true)"
        # A recurrent model: the state (in front of the arena, counted in arena_bytes).
        state="$(grep -m1 -oE '^state bytes=[0-9]+' "$log" | cut -d= -f2 || true)"
        summary="$(grep -E '^summary' "$log" || true)"
        cost_max="$(grep -oE 'cost_max=[0-9]+' <<<"$summary" | cut -d= -f2 || true)"
        cost_total="$(grep -oE 'cost_total=[0-9]+' <<<"$summary" | cut -d= -f2 || true)"
        samples="$(grep -oE 'samples=[0-9]+' <<<"$summary" | cut -d= -f2 || true)"
        stack="$(grep -oE 'stack_max=[0-9]+' <<<"$summary" | cut -d= -f2 || true)"
        stack_total="$(grep -oE 'stack_total=[0-9]+' <<<"$summary" | cut -d= -f2 || true)"
        acc="$(grep -oE 'correct=[0-9]+ scored=[0-9]+' <<<"$summary" | sed 's/correct=//; s/ scored=/\//' || true)"
        if [ "$verdict" = PASS ] && [ -n "$cli_acc" ]; then
            if [ "$acc" = "$cli_acc" ]; then
                acc="$acc (= CLI)"
            else
                verdict="FAIL(accuracy $acc differs from CLI $cli_acc)"; status=1
            fi
        fi
        ram2_note=""; [ "${ram2:-0}" != 0 ] && ram2_note=" ram2=$ram2"
        echo "   $board: $verdict  samples=${samples:-?} insn/inference max=${cost_max:-?} total=${cost_total:-?}" \
              " flash: text=$text rodata=$rodata  RAM: data=$data bss=$bss$ram2_note (arena=${arena:-?}${state:+ incl. state=$state})  stack=${stack:-?} stack_total=${stack_total:-?}" \
             " acc=${acc:-n/a}  build=$((t1 - t0))s run=$((t2 - t1))s"
        if [ -n "$incremental" ]; then
            # Per sample: nodes changed, instructions of the update and of the full run.
            awk '/^sample /{n[$2]=substr($3, 7)} /^cost /{c[$2]=$3}
                 /^incremental /{k=substr($3, 9); f=substr($4, 6);
                   printf "   incremental sample %s: %s of %s nodes changed (%.2f%%), update %s insns, full %s insns, update/full %.4f\n",
                          $2, k, n[$2], 100*k/n[$2], c[$2], f, c[$2]/f}' "$log"
        fi
        results+=("$name $board $verdict insn_max=${cost_max:-?} text=$text rodata=$rodata data=$data bss=$bss$ram2_note arena=${arena:-?}${state:+ state=$state} stack=${stack:-?} stack_total=${stack_total:-?} acc=${acc// /_}")
    done
done
echo "== results"
printf '%s\n' "${results[@]}"
exit $status
