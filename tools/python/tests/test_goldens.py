"""The committed conformance goldens are consistent with the spec semantics and up to date."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tinygnn.reference import run_files

CONFORMANCE = Path(__file__).resolve().parents[3] / "tests" / "conformance"
CASES = sorted(p.name for p in CONFORMANCE.iterdir() if (p / "expected.safetensors").exists())


def test_there_are_goldens():
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES)
def test_reference_matches_expected(case):
    d = CONFORMANCE / case
    out = run_files(d / "model.safetensors", d / "graphs.safetensors")
    expected = load_file(str(d / "expected.safetensors"))["out"]
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_goldens_are_up_to_date():
    res = subprocess.run([sys.executable, "-W", "ignore", str(CONFORMANCE / "gen_golden.py"),
                          "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
