#!/usr/bin/env python3
"""Seed the fuzz corpora (fuzz/corpus/<target>/) from the project's models.

    python3 fuzz/seed_corpus.py [--no-convert]

* model_parse: every bundled model (models/*/*.tgnn) and every conformance case
  (tests/conformance/<case>/) converted to .tgnn with the `tinygnn` CLI (small
  models covering every op kind; skipped with --no-convert), and the shared
  every-op fixture (testkit/, `tinygnn_testkit::every_op_model`, with GAT);
* inference: each of those models framed as the target reads it (u32 LE length,
  model bytes) followed by a few seeded random tails that `arbitrary` turns
  into graphs;
* graph_validate: for each of the target's fixed models (the first byte picks
  it), seeded random tails.
* stream_reply: the target's 12-byte header (what the host waits for) followed
  by valid reply frames (info, outputs of the right and of wrong sizes, error
  replies), encoded here as docs/stream.md describes them;
* proto_server: request streams for karate-gcn (Hello, requests of a few
  nodes with f32 and int8 features, a bad frame between valid ones).

Deterministic (fixed seeds) and idempotent: files are named by content hash,
so rerunning adds nothing new and keeps what the fuzzer found.
"""
from __future__ import annotations

import hashlib
import os
import random
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
CORPUS = FUZZ / "corpus"


def put(target: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def cli() -> str:
    exe = os.environ.get("TINYGNN_CLI") or str(ROOT / "target" / "release" / "tinygnn")
    if not Path(exe).exists():
        subprocess.run(["cargo", "build", "-q", "--release", "-p", "tinygnn-cli"], cwd=ROOT, check=True)
    return exe


def every_op_model(tmp: Path) -> tuple[str, bytes]:
    """The every-op fixture of testkit/ (the graph_validate target's third model)."""
    dst = tmp / "every-op.tgnn"
    subprocess.run(["cargo", "run", "-q", "--release", "-p", "tinygnn-testkit", "--features",
                    "all-ops", "--bin", "every-op-model", "--", str(dst)], cwd=ROOT, check=True)
    return ("every-op", dst.read_bytes())


def conformance_models(tmp: Path) -> list[tuple[str, bytes]]:
    out = []
    exe = cli()
    for case in sorted((ROOT / "tests" / "conformance").iterdir()):
        if not (case / "model.safetensors").exists():
            continue
        dst = tmp / f"{case.name}.tgnn"
        subprocess.run([exe, "convert", str(case / "model.safetensors"), "--calib",
                        str(case / "graphs.safetensors"), "-o", str(dst)],
                       check=True, capture_output=True)
        out.append((case.name, dst.read_bytes()))
    return out


def varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def blob(b: bytes) -> bytes:
    return varint(len(b)) + b


def cobs(data: bytes) -> bytes:
    out, block = bytearray(), bytearray()
    for b in data:
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
        else:
            block.append(b)
            if len(block) == 254:
                out += b"\xff" + block
                block = bytearray()
    out += bytes([len(block) + 1]) + block
    return bytes(out)


def frame(body: bytes) -> bytes:
    """COBS(body ‖ crc32_le(body)) ‖ 0x00 (docs/stream.md)."""
    return cobs(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"


def info(nodes: int = 34, out_channels: int = 4) -> bytes:
    return frame(b"\x01" + b"\x01" + blob(b"karate-gcn.tgnn") + varint(0x36AC99A3) + varint(34)
                 + varint(out_channels) + varint(nodes) + varint(156) + varint(1) + varint(8193)
                 + blob(b"none"))


def response(rid: int, rows: int, channels: int, data: bytes) -> bytes:
    return frame(b"\x03" + varint(rid) + varint(rows) + varint(channels) + struct.pack("<f", 0.1)
                 + b"\x03" + varint(1234) + blob(data))


def error(rid, code: int, detail: bytes) -> bytes:
    opt = b"\x00" if rid is None else b"\x01" + varint(rid)
    return frame(b"\x04" + opt + varint(code) + blob(detail))


def request(rid: int, nodes: int, f32: bool, rng: random.Random) -> bytes:
    if f32:
        feats = b"\x00" + blob(b"".join(struct.pack("<f", rng.random()) for _ in range(nodes * 34)))
    else:
        feats = b"\x01" + blob(bytes(rng.getrandbits(8) for _ in range(nodes * 34)))
    edges = [(i, (i + 1) % nodes) for i in range(nodes)]
    src = b"".join(struct.pack("<H", a) for a, _ in edges)
    dst = b"".join(struct.pack("<H", b) for _, b in edges)
    return frame(b"\x02" + varint(rid) + varint(nodes) + varint(34) + feats + blob(src) + blob(dst)
                 + b"\x00\x00")


def reply_header(output: bool, rid: int, nodes: int, graphs: int, channels: int, level: int) -> bytes:
    """The stream_reply target's header: what the host waits for."""
    return struct.pack("<BIHHHB", 1 if output else 0, rid, nodes, graphs, channels, level)


def stream_seeds(rng: random.Random) -> None:
    put("stream_reply", reply_header(False, 0, 0, 0, 0, 0) + info())
    put("stream_reply", reply_header(False, 0, 0, 0, 0, 0) + info(nodes=70000, out_channels=0))
    for rows, channels, n in [(34, 4, 136), (1, 4, 4), (33, 4, 132), (34, 0, 0), (34, 4, 10)]:
        data = bytes(rng.getrandbits(8) for _ in range(n))
        for level in range(3):
            put("stream_reply", reply_header(True, 7, 34, 1, 4, level) + response(7, rows, channels, data))
    put("stream_reply", reply_header(True, 7, 34, 1, 4, 0) + error(7, 4, b"graph beyond capacity"))
    put("stream_reply", reply_header(True, 7, 34, 1, 4, 0) + error(None, 1, b""))
    hello = frame(b"\x00")
    put("proto_server", hello)
    for nodes in (1, 3, 34):
        for f32 in (True, False):
            put("proto_server", hello + request(nodes, nodes, f32, rng))
    put("proto_server", request(1, 2, True, rng) + b"\x05\x01\x00" + request(2, 2, False, rng))


def main() -> int:
    convert = "--no-convert" not in sys.argv[1:]
    models = [(p.stem, p.read_bytes()) for p in sorted(ROOT.glob("models/*/*.tgnn"))]
    with tempfile.TemporaryDirectory() as tmp:
        models.append(every_op_model(Path(tmp)))
        if convert:
            models += conformance_models(Path(tmp))
    rng = random.Random(0x7467_6E6E)
    tails = lambda k: [bytes(rng.getrandbits(8) for _ in range(rng.choice([16, 64, 256, 1024])))
                       for _ in range(k)]
    for name, m in models:
        put("model_parse", m)
        for t in tails(4):
            put("inference", len(m).to_bytes(4, "little") + m + t)
    # karate-gcn, digits-gin, and the testkit's every-op, edge-op, hyper-op and
    # cheb-op models (fuzz/src/lib.rs, fixed_models)
    for which in range(6):
        for t in tails(8):
            put("graph_validate", bytes([which]) + t)
    stream_seeds(rng)
    for t in ("model_parse", "inference", "graph_validate", "stream_reply", "proto_server"):
        print(f"seed_corpus: {t}: {len(list((CORPUS / t).iterdir()))} files")
    print(f"seed_corpus: {len(models)} models ({sum(1 for _ in ROOT.glob('models/*/*.tgnn'))} bundled)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
