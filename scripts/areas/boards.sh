#!/usr/bin/env bash
# area: emulated boards (QEMU M4/M0): every bundled model's device bytes == host bytes, M0 stack, stack per model, real-board builds
# needs: rust qemu cli flip-link defmt-print python
# scratch: boards/target-bg
#
#   scripts/areas/boards.sh [TARGET...]   (or scripts/test.sh --area boards)
#
# TARGETs (model directories, see scripts/qemu-run.sh) run on the QEMU boards in addition to:
#  1. the board helpers' host tests (boards/app, std);
#  2. on the emulated boards (scripts/qemu-run.sh: device output bytes == the host runtime's and
#     `tinygnn run`'s; prints instructions per inference, arena, stack, flash): the firmware as a
#     fresh clone builds it (scripts/qemu-run.sh --default: no TINYGNN_* variable, no generated
#     file; `cargo build --release` and `cargo run --release` in boards/qemu-m4 and boards/qemu-m0,
#     which embed the bundled models/karate-gcn, the whole graph); models/digits-gin (all 359 test graphs
#     on the M4, the first 45 on the M0, int8 features); models/digits-gps (GPS + RWSE, the first 100
#     test graphs on the M4); models/sensor-tgcn (a TGCN cell: its 120-step sequence on the M4, the
#     state carried between steps, compared with `tinygnn run --sequence`); the LSTM goldens
#     gconvlstm_seq and lstm_cell_seq (two states, h and c) on the M4; incremental runs of
#     karate-gcn (and cora-gcn with $TINYGNN_DATA) on the M4, checked against full runs; karate-gcn and digits-gin converted with
#     int4 weights (M4), and digits-gin with int4 activations (M4, the first 60 test graphs); models/shapes-dgcnn on the M4 (4 clouds across 64-256 points) and the M0
#     (the 4 largest clouds of at most M0_MAX_POINTS points; must PASS); with $TINYGNN_DATA (Planetoid
#     data, see models/README.md) cora-gcn, cora-sage, cora-gat, cora-appnp and cora-link on the M4,
#     the whole 2708-node graph in one inference with sparse int8 features (--sparse; inputs made
#     into .cache/inputs/<name> by models/make_inputs.py when missing), else visible SKIP lines;
#     on the nRF52840 memory profile cora-gcn and cora-sage, and cora-gcn converted with
#     `--avg-weight-bits 3 --precision-grain channel` (a split layer);
#     the conformance goldens gps_rwse (M0), gps_gine_layer_norm, transformer_h4_mean,
#     layer_norm, attention_pool and hypergraph_weighted_pool (M4; its bundle carries the
#     hyperedges);
#     the demo model with the firmware's defmt report (--defmt: defmt frames decoded by
#     defmt-print, compared with the host's lines);
#  3. the Cortex-M0 stack (boards/qemu-m0/memory.x keeps it below .data/.bss), on karate-gcn: the
#     arena sizes that used to lock up (10,688 / 11,152 / 11,712 B) no longer link (a clean SKIP);
#     the largest arena that links and the model's own arena PASS with a whole-run stack
#     high-water leaving >= 256 B of the reserve; a 4,096 B stack faults at once (FAIL(fault: ...)),
#     never a timeout or a PASS;
#  4. the stack per model: every emulated-M4 log of this run within docs/guarantees.md's bound;
#  5. release builds of every real-board firmware (nrf52840-dk, rp-pico, nucleo-h743zi, esp32c3;
#     `cargo build --release` with the defaults, as on a fresh clone: the bundled karate-gcn; not
#     flashed) and of the nRF52840-DK streaming firmware (boards/nrf52840-stream, karate-gcn
#     embedded; docs/stream.md), with their flash and RAM sizes; the Cortex-M ones link with
#     flip-link (their .cargo/config.toml), checked on each ELF: the stack lies below .data/.bss
#     (_stack_end = the start of RAM, _stack_start = the start of .data).
# Warnings are errors (RUSTFLAGS). The firmware is built with the committed profile (LTO: the
# stack depths depend on it; CARGO_PROFILE_* overrides are dropped). Prints the time of every step.
source "$(dirname "$0")/../lib.sh"
# (--no-setup, an option of the former scripts/boards-ci.sh, is accepted and ignored: setup is
# idempotent and done once per run.)
[ "${1:-}" != "--no-setup" ] || shift
need rust qemu cli flip-link defmt-print python
for v in $(compgen -e | grep '^CARGO_PROFILE_' || true); do unset "$v"; done
export RUSTFLAGS="${RUSTFLAGS:--D warnings}"

start=$(date +%s)
timings=()
step() { # name, command...
    local name="$1"; shift
    local t0; t0=$(date +%s)
    say "$name"
    "$@"
    timings+=("$name: $(( $(date +%s) - t0 ))s")
}
STAMP=$(mktemp)
OUT=$(mktemp -d)
bg_pid=""
trap 'rm -rf "$OUT" "$STAMP"; [ -z "$bg_pid" ] || kill "$bg_pid" 2>/dev/null || true' EXIT

# Cargo reads a board's .cargo/config.toml (target, runner) only when run from the board's directory.
# No TINYGNN_* variable: the defaults, as `cargo build --release` on a fresh clone.
build_board() {
    (cd "boards/$1" && env -u TINYGNN_MODEL -u TINYGNN_INPUTS -u TINYGNN_ARENA_BYTES \
        -u TINYGNN_ARENA_AT_CAPACITY -u TINYGNN_ARENA_WIDE cargo build -q --release)
}

# Two cores: the slowest real-board builds (big PACs/HALs, serial LTO links) run in a second,
# background stream while the host checks, the QEMU runs and the other boards build here. Each
# stream shares one target dir across its crates (host build-dependencies and common target crates
# are compiled once per stream; two streams, because cargo locks a target dir).
export CARGO_TARGET_DIR="$ROOT/boards/target"
step "tests: boards/app (host, std)" cargo test -q --lib --manifest-path boards/app/Cargo.toml --features std
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

# Cora (2708 nodes, 1433 bag-of-words features): M4 only (~4.2 MB arena in its 16 MiB RAM2).
cora_input() { # NAME: makes .cache/inputs/NAME when missing
    local inputs=".cache/inputs/$1"
    if [ ! -f "$inputs/graphs.safetensors" ]; then
        say "making $inputs (models/make_inputs.py)"
        "$TINYGNN_PYTHON" models/make_inputs.py "$1" "$inputs"
    fi
}
cora_runs() {
    local name
    for name in cora-gcn cora-sage cora-gat cora-appnp cora-link; do
        [ -f "models/$name/$name.tgnn" ] || { echo "SKIP $name: models/$name/$name.tgnn is not built"; continue; }
        if [ -z "${TINYGNN_DATA:-}" ]; then
            echo "SKIP $name on the emulated M4: TINYGNN_DATA not set"
            continue
        fi
        cora_input "$name"
        scripts/qemu-run.sh --board m4 --sparse "models/$name/$name.tgnn:.cache/inputs/$name/graphs.safetensors"
    done
    # The nRF52840's memory (1 MiB flash, 256 KiB RAM: boards/qemu-m4/memory/nrf52840.x): cora-gcn
    # and cora-sage with the sparse features in flash, in their least arenas (their GCN and SAGE
    # layers in passes over channel blocks). They must fit: qemu-run.sh reports a linker overflow
    # as a SKIP, which fails here.
    local r
    for name in cora-gcn cora-sage; do
        [ -f "models/$name/$name.tgnn" ] || { echo "SKIP $name on nrf52840: models/$name/$name.tgnn is not built"; continue; }
        if [ -z "${TINYGNN_DATA:-}" ]; then
            echo "SKIP $name on the emulated nRF52840 profile: TINYGNN_DATA not set"
            continue
        fi
        cora_input "$name"
        r="$(scripts/qemu-run.sh --board nrf52840 --sparse "models/$name/$name.tgnn:.cache/inputs/$name/graphs.safetensors")" || true
        echo "$r"
        grep -q "^$name nrf52840 PASS" <<<"$r" || { echo "FAIL: $name does not run on the nRF52840 profile"; return 1; }
    done
    # Per-channel weight precision (3 bits on average, conv1 split into int4 and int2 parts and
    # a concat) on the same profile: the split layer's narrower i32 products fit its RAM.
    if [ -n "${TINYGNN_DATA:-}" ] && [ -f models/cora-gcn/cora-gcn.tgnn ]; then
        "$TINYGNN_BIN" convert models/cora-gcn/model.safetensors --calib .cache/inputs/cora-gcn/graphs.safetensors \
            -o "$OUT/cora-gcn-ch3.tgnn" --output-range top2 --avg-weight-bits 3 --precision-grain channel >/dev/null
        scripts/qemu-run.sh --board nrf52840 --sparse "$OUT/cora-gcn-ch3.tgnn:.cache/inputs/cora-gcn/graphs.safetensors"
    fi
}
qemu_runs() {
    # The defaults (the whole karate graph) on both boards, built and run as on a fresh clone.
    scripts/qemu-run.sh --default "$@"
    # digits-gin graph by graph (int8 features so that 45 graphs fit the micro:bit's flash).
    # All 359 test graphs on the M4; the first 45 on the micro:bit (256 KB flash: the all-ops
    # firmware with the int4-activation and sub-byte kernels no longer leaves room for 50).
    if [ -d models/digits-gin ]; then
        scripts/qemu-run.sh --board m4 --split --i8 models/digits-gin
        scripts/qemu-run.sh --board m0 --split --i8 --max 45 models/digits-gin
    fi
    # The graph transformer (GPS + RWSE computed on the device): the first 100 test graphs on the
    # M4 (its arena and stack overflow the micro:bit's 16 KiB of RAM).
    if [ -d models/digits-gps ]; then
        scripts/qemu-run.sh --board m4 --split --i8 --max 100 models/digits-gps
    fi
    # A recurrent cell: the 120 steps of the sensor-tgcn test sequence, one sample per step, the
    # state carried by the firmware; every step's bytes == `tinygnn run --sequence`'s. M4 only:
    # on the micro:bit the 120-step bundle overflows the flash, and state + arena (13,696 B) the
    # 9,968 B its RAM leaves for them even with 10 steps (docs/boards.md, "What fits").
    if [ -d models/sensor-tgcn ]; then
        scripts/qemu-run.sh --board m4 models/sensor-tgcn
    fi
    # Two states (h and c, each in its own quantization, in one buffer): the LSTM goldens' 12 steps
    # (GConvLSTM's form with ChebConv gates and peepholes; torch.nn.LSTMCell over GCNConv).
    local c=tests/conformance g
    for g in gconvlstm_seq lstm_cell_seq; do
        "$TINYGNN_BIN" convert "$c/$g/model.safetensors" --calib "$c/$g/graphs.safetensors" \
            -o "$OUT/$g.tgnn" >/dev/null
    done
    scripts/qemu-run.sh --board m4 "$OUT/gconvlstm_seq.tgnn:$c/gconvlstm_seq/graphs.safetensors" \
        "$OUT/lstm_cell_seq.tgnn:$c/lstm_cell_seq/graphs.safetensors"
    cora_runs
    # Incremental runs (Session::update) on the M4: each sample of one graph with some nodes'
    # features changed runs as an update and then in full, the firmware checking both give the
    # same bytes (and qemu-run.sh that they are the host's); karate-gcn always, cora-gcn with
    # $TINYGNN_DATA (scripts/incremental-bench.py; the Cora table is docs/incremental.md).
    "$TINYGNN_PYTHON" scripts/incremental-bench.py --model karate-gcn
    if [ -n "${TINYGNN_DATA:-}" ]; then
        cora_input cora-gcn
        "$TINYGNN_PYTHON" scripts/incremental-bench.py --model cora-gcn
    fi
}
step "QEMU runs (m4, m0): bundled models" qemu_runs "$@"

int4_runs() {
    # karate: the whole graph in one inference (also compared with `tinygnn run --output-bytes`);
    # digits: graph by graph with int8 features, as the int8 model runs above.
    "$TINYGNN_BIN" convert models/karate-gcn/model.safetensors --calib models/karate-gcn/graphs.safetensors \
        -o "$OUT/karate-gcn-int4.tgnn" --weights int4 >/dev/null
    "$TINYGNN_BIN" convert models/digits-gin/model.safetensors --calib models/digits-gin/calib.safetensors \
        -o "$OUT/digits-gin-int4.tgnn" --output-range argmax --weight-scales auto --weights int4 >/dev/null
    scripts/qemu-run.sh --board m4 "$OUT/karate-gcn-int4.tgnn:models/karate-gcn/graphs.safetensors"
    scripts/qemu-run.sh --board m4 --split --i8 "$OUT/digits-gin-int4.tgnn:models/digits-gin/graphs.safetensors"
    # int4 activations (int8 weights): digits-gin's GIN aggregations, MLP layers and their input
    # int4 (GinAggregate, Linear), the first 60 test graphs with f32 features (quantized into int4
    # by the session).
    "$TINYGNN_BIN" convert models/digits-gin/model.safetensors --calib models/digits-gin/calib.safetensors \
        -o "$OUT/digits-gin-a4.tgnn" --output-range argmax --weight-scales auto --activations int4 >/dev/null
    scripts/qemu-run.sh --board m4 --split --max 60 "$OUT/digits-gin-a4.tgnn:models/digits-gin/graphs.safetensors"
}
step "QEMU runs (m4): int4 weights, int4 activations" int4_runs

# The defmt report path of the real boards (DefmtReport: values as defmt types, frames over
# semihosting here, RTT on the boards), decoded by defmt-print and compared with the host's.
step "QEMU run (m4, defmt): the decoded report" scripts/qemu-run.sh --board m4 --defmt --demo

golden_runs() {
    # Ops and forms the bundled models leave out, from their conformance goldens: GPS with the
    # random-walk encoding on the M0 (digits-gps runs it on the M4), GPS with GINE and LayerNorm,
    # TransformerConv and LayerNorm with the sigmoid and tanh tables, attention pooling, on the M4.
    local name c board
    for name in gps_rwse:m0 gps_gine_layer_norm:m4 transformer_h4_mean:m4 layer_norm:m4 attention_pool:m4 softmax_aggregation:m4 hypergraph_weighted_pool:m4; do
        board=${name#*:}
        name=${name%%:*}
        c=tests/conformance/$name
        "$TINYGNN_BIN" convert $c/model.safetensors --calib $c/graphs.safetensors \
            -o "$OUT/$name.tgnn" >/dev/null
        scripts/qemu-run.sh --board "$board" "$OUT/$name.tgnn:$c/graphs.safetensors"
    done
}
step "QEMU runs: GPS, TransformerConv and LayerNorm goldens" golden_runs

# shapes-dgcnn clouds have 64-256 points; the arena grows with the cloud (kNN lists, int8 rows).
# M4: 4 clouds spread over the whole range (the smallest and the largest test cloud among them).
# M0 (16 KiB RAM; the stack, 6,400 B, lies below .data/.bss: boards/qemu-m0/memory.x): the 4
# largest test clouds of at most M0_MAX_POINTS points must PASS. 92 points (arena 9,936 B) is the
# largest cloud whose arena links (93 points overflows RAM by 60 B: SKIP); measured with
# scripts/qemu-run.sh, docs/point-clouds.md. (Before the stack was moved, clouds of 97-111 points
# linked but overflowed the stack into .bss; the M0 stack step below guards that.)
M0_MAX_POINTS=92
dgcnn_runs() {
    local D=models/shapes-dgcnn PY="${TINYGNN_PYTHON:-python3}" QLOG="$OUT/dgcnn.log" SEL
    if [ ! -f $D/shapes-dgcnn.tgnn ]; then
        echo "SKIP shapes-dgcnn on the emulated boards: models/shapes-dgcnn/shapes-dgcnn.tgnn is not built"
        return 0
    fi
    SEL="$PY $D/select_clouds.py $D/graphs.safetensors"
    $SEL "$OUT/m4.safetensors" spread 4 | sed 's/^/M4 /'
    $SEL "$OUT/m0.safetensors" upto 4 "$M0_MAX_POINTS" | sed 's/^/M0 /'
    scripts/qemu-run.sh --board m4 --split "$D/shapes-dgcnn.tgnn:$OUT/m4.safetensors" | tee "$QLOG"
    grep -qE '^shapes-dgcnn m4 PASS' "$QLOG" || { echo "shapes-dgcnn did not PASS on the M4" >&2; return 1; }
    scripts/qemu-run.sh --board m0 --split "$D/shapes-dgcnn.tgnn:$OUT/m0.safetensors" | tee "$QLOG"
    grep -qE '^shapes-dgcnn m0 PASS' "$QLOG" || { echo "shapes-dgcnn did not PASS on the M0" >&2; return 1; }
}
step "QEMU runs (m4, m0): shapes-dgcnn point clouds" dgcnn_runs

m0_run() { # ARENA|'' RESERVE|'' -> the results line of scripts/qemu-run.sh
    TINYGNN_ARENA_BYTES="$1" TINYGNN_M0_STACK_RESERVE="$2" QEMU_TIMEOUT=60 \
        scripts/qemu-run.sh --board m0 models/karate-gcn > "$OUT/m0.log" 2>&1 || true
    grep -A1 '^== results' "$OUT/m0.log" | tail -1
}
m0_stack() {
    local reserve largest a r total t0 t1
    reserve=$(sed -nE 's/^STACK_RESERVE = .* : ([0-9]+);/\1/p' boards/qemu-m0/memory.x)
    [ -n "$reserve" ] || { echo "no STACK_RESERVE default in boards/qemu-m0/memory.x" >&2; return 1; }
    largest=$(( (16384 - reserve - 12) / 16 * 16 ))
    echo "M0 stack reserve $reserve B (boards/qemu-m0/memory.x); largest arena that links: $largest B"
    for a in 10688 11152 11712; do
        r=$(m0_run "$a" "")
        echo "arena $a B: $r"
        grep -qE '^karate-gcn m0 SKIP .*will_not_fit|^karate-gcn m0 SKIP .*overflowed' <<<"$r" ||
            { echo "arena $a B: expected a clean SKIP (does not fit)" >&2; cat "$OUT/m0.log" >&2; return 1; }
    done
    for a in "$largest" ""; do
        r=$(m0_run "$a" "")
        echo "arena ${a:-default} B: $r"
        grep -qE '^karate-gcn m0 PASS ' <<<"$r" || { echo "arena ${a:-default}: expected PASS" >&2; cat "$OUT/m0.log" >&2; return 1; }
        total=$(grep -oE 'stack_total=[0-9]+' <<<"$r" | cut -d= -f2 || true)
        [ -n "$total" ] || { echo "no stack_total in the M0 summary" >&2; return 1; }
        echo "M0 whole-run stack high-water $total B of the $reserve B reserve (margin $((reserve - total)) B)"
        [ $((reserve - total)) -ge 256 ] || { echo "the M0 stack margin fell below 256 B: raise STACK_RESERVE" >&2; return 1; }
    done
    t0=$(date +%s)
    r=$(m0_run "" 4096)
    t1=$(date +%s)
    echo "4,096 B stack: $r (run+build $((t1 - t0)) s)"
    grep -qE '^karate-gcn m0 FAIL\(fault: ' <<<"$r" || { echo "a 4,096 B stack must fault, not '$r'" >&2; cat "$OUT/m0.log" >&2; return 1; }
    echo "M0 stack checks passed"
}
step "M0 stack: overflow faults instead of corrupting statics (karate-gcn)" m0_stack
step "stack per model (emulated M4 logs of this run)" check_m4_stack "$STAMP"

step "build boards/nrf52840-dk" build_board nrf52840-dk
# The streaming firmware shares the HAL and runtime builds above (same target dir and profile).
step "build boards/nrf52840-stream" build_board nrf52840-stream
say "waiting for the background stream (rp-pico, esp32c3, nucleo-h743zi)"
bg_status=0
wait "$bg_pid" || bg_status=$?
bg_pid=""
cat "$bg_log"
while read -r line; do
    case "$line" in "build boards/"*) timings+=("$line") ;; esac
done < "$bg_log"
rm -f "$bg_log"
[ "$bg_status" = 0 ] || { echo "background board builds failed"; exit 1; }

bin="$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin"
size="$bin/llvm-size"
say "real-board firmware sizes (default model karate-gcn; flash = text+rodata, RAM = data+bss)"
for elf in boards/target/thumbv7em-none-eabihf/release/tinygnn-nrf52840-dk \
           boards/target/thumbv7em-none-eabihf/release/tinygnn-nrf52840-stream \
           boards/target-bg/thumbv6m-none-eabi/release/tinygnn-rp-pico \
           boards/target-bg/thumbv7em-none-eabihf/release/tinygnn-nucleo-h743zi \
           boards/target-bg/riscv32imc-unknown-none-elf/release/tinygnn-esp32c3; do
    "$size" -A "$elf" | awk -v n="$(basename "$elf")" '
        $1 ~ /^\.(text|vector_table|boot2|trap|rwtext)$/ {t+=$2} $1==".rodata"{r=$2} $1==".data"{d=$2} $1==".bss"{b=$2}
        END {printf "   %-24s text=%d rodata=%d data=%d bss=%d\n", n, t, r, d, b}'
done
flipped() { # ELF RAM-ORIGIN: flip-link's layout, the stack from the start of RAM up to .data
    local s e d
    s=$("$bin/llvm-nm" "$1" | awk '$3=="_stack_start"{print $1}')
    e=$("$bin/llvm-nm" "$1" | awk '$3=="_stack_end"{print $1}')
    d=$("$bin/llvm-nm" "$1" | awk '$3=="__sdata"{print $1}')
    printf '   %-24s stack 0x%s..0x%s (%d B), .data at 0x%s\n' "$(basename "$1")" "$e" "$s" $((16#$s - 16#$e)) "$d"
    [ "$((16#$e))" = "$(($2))" ] && [ "$((16#$s))" -le "$((16#$d))" ] ||
        { echo "$(basename "$1"): not linked by flip-link (stack not below .data/.bss)" >&2; return 1; }
}
say "flip-link: the real Cortex-M boards' stack lies below .data/.bss"
flipped boards/target/thumbv7em-none-eabihf/release/tinygnn-nrf52840-dk 0x20000000
flipped boards/target/thumbv7em-none-eabihf/release/tinygnn-nrf52840-stream 0x20000000
flipped boards/target-bg/thumbv6m-none-eabi/release/tinygnn-rp-pico 0x20000000
flipped boards/target-bg/thumbv7em-none-eabihf/release/tinygnn-nucleo-h743zi 0x24000000
say "timings"
printf '   %s\n' "${timings[@]}"
echo "   total: $(( $(date +%s) - start ))s"
echo "boards: ok"
