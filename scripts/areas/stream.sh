#!/usr/bin/env bash
# area: graphs streamed over the emulated UART (tinygnn stream, boards/qemu-stream): bytes, panic check, fault replies
# needs: rust qemu cli
# Graphs streamed over a UART, end to end (docs/stream.md):
# (The host tests of the protocol and of `tinygnn stream`, tinygnn-proto's and
# tools/tests/stream.rs, are part of `cargo test --workspace`, the host area; the fmt and
# clippy checks of boards/qemu-stream are the format and lint areas'.)
#   1. build of the streaming firmware boards/qemu-stream (QEMU mps2-an386, Cortex-M4),
#      once with models/karate-gcn and once with models/digits-gin embedded,
#   2. QEMU with UART0 on a free loopback TCP port; `tinygnn stream` sends the karate graph and
#      the first $DIGITS digits-gin test graphs; their output bytes must equal
#      `tinygnn run --output-bytes` for the same model and graphs,
#   3. a link-time panic check of the whole firmware (feature panic-check, opt-level 3),
#   4. `tinygnn stream --fault-test`: corrupt COBS, a flipped byte (CRC), a truncated frame,
#      undecodable messages with a valid CRC, an oversized frame, a graph beyond capacity and an
#      unexpected message each get their error reply, and a valid request afterwards gets the
#      same answer as before;
#   5. the serial path: QEMU with UART0 on a pty (`-serial pty`), `tinygnn stream --port PTY`
#      (the serialport crate, as for a board's /dev/ttyACM0): karate-gcn's bytes again.
# Prints firmware sizes, instructions per inference (icount) and wall times. Exit status non-zero
# on any failure.
source "$(dirname "$0")/../lib.sh"
need rust qemu cli
DIGITS="${DIGITS:-24}"
OUT="$ROOT/boards/generated/stream"
mkdir -p "$OUT"
start=$(date +%s)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

T="$TINYGNN_BIN"

# The board crates share boards/target with the boards area (same dependencies).
export CARGO_TARGET_DIR="$ROOT/boards/target"
ELF="$CARGO_TARGET_DIR/thumbv7em-none-eabihf/release/tinygnn-qemu-stream"
size="$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin/llvm-size"
build() { # name model
    local t0; t0=$(date +%s)
    (cd boards/qemu-stream && TINYGNN_MODEL="$ROOT/$2" RUSTFLAGS="${RUSTFLAGS:--D warnings}" cargo build -q --release)
    cp "$ELF" "$OUT/$1.elf"
    "$size" -A "$OUT/$1.elf" | awk -v n="$1" -v s="$(( $(date +%s) - t0 ))" '
        $1==".text"{t=$2} $1==".rodata"{r=$2} $1==".data"{d=$2} $1==".bss"{b=$2} $1==".ram2"{a=$2}
        END {printf "   firmware %-12s text=%d rodata=%d data=%d bss=%d ram2(arena)=%d  (built in %ss)\n", n, t, r, d, b, a, s}'
}
echo "== panic check: boards/qemu-stream links with a panic handler that is defined nowhere (opt-level 3)"
(cd boards/qemu-stream && RUSTFLAGS="${RUSTFLAGS:--D warnings}" cargo build -q --release --features panic-check)
echo "   OK: no panic path in the whole streaming firmware (frames, decoding, inference, encoding, UART)"
echo "== build boards/qemu-stream"
build karate-gcn models/karate-gcn/karate-gcn.tgnn
build digits-gin models/digits-gin/digits-gin.tgnn

# Starts QEMU with $1 (an ELF) on a free loopback port; sets PORT and QPID.
qemu() {
    local elf="$1" try
    for try in 1 2 3 4 5; do
        PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        timeout "${QEMU_TIMEOUT:-600}" qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -display none \
            -monitor none -semihosting-config enable=on,target=native -icount shift=10 \
            -serial "tcp:127.0.0.1:$PORT,server=on,wait=off" -kernel "$elf" \
            >"$OUT/qemu-$(basename "$elf" .elf).log" 2>&1 &
        QPID=$!
        pids+=("$QPID")
        sleep 1
        if kill -0 "$QPID" 2>/dev/null; then return 0; fi
        echo "   (QEMU did not start on port $PORT, retrying)"
    done
    cat "$OUT/qemu-$(basename "$elf" .elf).log"
    return 1
}

cost() { # json file → "min–max unit per request over N request(s), R output rows, B bytes sent"
    python3 - "$1" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
c, unit, rows, sent = v["cost"], v["cost_unit"], v["rows"], v["bytes_sent"]
print(f"{min(c):,}–{max(c):,} {unit} per request over {len(c)} request(s), {rows} output rows, {sent:,} bytes sent")
PY
}

echo "== karate-gcn over the emulated UART"
qemu "$OUT/karate-gcn.elf"
M=models/karate-gcn/karate-gcn.tgnn G=models/karate-gcn/graphs.safetensors
t0=$(date +%s)
"$T" stream "$G" --tcp "127.0.0.1:$PORT" --model "$M" --timeout 120 --json --output-bytes "$OUT/karate.stream.bin" >"$OUT/karate.json"
"$T" run "$M" "$G" --output-bytes "$OUT/karate.run.bin" >/dev/null
cmp "$OUT/karate.stream.bin" "$OUT/karate.run.bin"
echo "   PASS karate-gcn: $(stat -c %s "$OUT/karate.stream.bin") output bytes == tinygnn run ($(( $(date +%s) - t0 ))s); $(cost "$OUT/karate.json")"
echo "== karate-gcn: link fault test"
t0=$(date +%s)
"$T" stream "$G" --tcp "127.0.0.1:$PORT" --timeout 120 --fault-test | sed 's/^/   /'
echo "   ($(( $(date +%s) - t0 ))s)"
kill "$QPID" 2>/dev/null || true

echo "== karate-gcn over a serial port: QEMU's UART0 on a pty, tinygnn stream --port"
qlog="$OUT/qemu-karate-pty.log"
timeout "${QEMU_TIMEOUT:-600}" qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -display none \
    -monitor none -semihosting-config enable=on,target=native -icount shift=10 \
    -serial pty -kernel "$OUT/karate-gcn.elf" >"$qlog" 2>&1 &
QPID=$!
pids+=("$QPID")
PTY=""
for _ in $(seq 50); do
    PTY=$(sed -n 's|.*char device redirected to \(/dev/[^ ]*\).*|\1|p' "$qlog" | head -1)
    [ -z "$PTY" ] || break
    sleep 0.2
done
[ -n "$PTY" ] || { cat "$qlog"; echo "FAIL: QEMU did not report its pty"; exit 1; }
t0=$(date +%s)
M=models/karate-gcn/karate-gcn.tgnn G=models/karate-gcn/graphs.safetensors
"$T" stream "$G" --port "$PTY" --baud 115200 --model "$M" --timeout 120 \
    --output-bytes "$OUT/karate.pty.bin" >/dev/null
cmp "$OUT/karate.pty.bin" "$OUT/karate.run.bin"
echo "   PASS karate-gcn over $PTY: $(stat -c %s "$OUT/karate.pty.bin") output bytes == tinygnn run ($(( $(date +%s) - t0 ))s)"
kill "$QPID" 2>/dev/null || true

echo "== digits-gin over the emulated UART (first $DIGITS test graphs, as many per request as fit)"
qemu "$OUT/digits-gin.elf"
M=models/digits-gin/digits-gin.tgnn G=models/digits-gin/graphs.safetensors
t0=$(date +%s)
"$T" stream "$G" --tcp "127.0.0.1:$PORT" --model "$M" --max-graphs "$DIGITS" --timeout 300 --json \
    --output-bytes "$OUT/digits.stream.bin" >"$OUT/digits.json"
"$T" run "$M" "$G" --output-bytes "$OUT/digits.run.bin" >/dev/null
n=$(stat -c %s "$OUT/digits.stream.bin")
[ "$n" = $(( DIGITS * 10 )) ] || { echo "FAIL digits-gin: $n output bytes, expected $(( DIGITS * 10 ))"; exit 1; }
head -c "$n" "$OUT/digits.run.bin" | cmp - "$OUT/digits.stream.bin"
echo "   PASS digits-gin batch: $n output bytes == the first $DIGITS rows of tinygnn run ($(( $(date +%s) - t0 ))s); $(cost "$OUT/digits.json")"
t0=$(date +%s)
"$T" stream "$G" --tcp "127.0.0.1:$PORT" --model "$M" --max-graphs 4 --per-graph --timeout 300 --json \
    --output-bytes "$OUT/digits1.stream.bin" >"$OUT/digits1.json"
head -c 40 "$OUT/digits.run.bin" | cmp - "$OUT/digits1.stream.bin"
echo "   PASS digits-gin one graph per request: 40 output bytes == tinygnn run ($(( $(date +%s) - t0 ))s); $(cost "$OUT/digits1.json")"
kill "$QPID" 2>/dev/null || true
echo "== stream: all passed in $(( $(date +%s) - start ))s"
