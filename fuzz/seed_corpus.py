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

Deterministic (fixed seeds) and idempotent: files are named by content hash,
so rerunning adds nothing new and keeps what the fuzzer found.
"""
from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import tempfile
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
    for which in range(3):  # karate-gcn, digits-gin, every-op (testkit/src/lib.rs)
        for t in tails(8):
            put("graph_validate", bytes([which]) + t)
    for t in ("model_parse", "inference", "graph_validate"):
        print(f"seed_corpus: {t}: {len(list((CORPUS / t).iterdir()))} files")
    print(f"seed_corpus: {len(models)} models ({sum(1 for _ in ROOT.glob('models/*/*.tgnn'))} bundled)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
