"""The Python distribution is `tinygnn-export`, not `tinygnn` (on PyPI an unrelated project),
while the package keeps the import name `tinygnn`; every install instruction of the docs names a
way that installs this distribution."""
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = ROOT / "tools" / "python" / "pyproject.toml"


def project():
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    import tomllib
    return tomllib.loads(PYPROJECT.read_text())


def test_distribution_name_is_not_the_pypi_tinygnn():
    meta = project()
    assert meta["project"]["name"] == "tinygnn-export"
    assert meta["tool"]["setuptools"]["packages"] == ["tinygnn"]
    assert (PYPROJECT.parent / "tinygnn" / "__init__.py").is_file()


def test_install_instructions_name_this_distribution():
    docs = [ROOT / "README.md", ROOT / "tools" / "python" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    seen = 0
    for doc in docs:
        for line in doc.read_text().splitlines():
            for cmd in re.findall(r"pip install [^`#|]*", line):
                if "tflite" in cmd:
                    continue  # the benchmark's comparison, not this package
                seen += 1
                assert "tools/python" in cmd or "tinygnn-export" in cmd, f"{doc.name}: {cmd}"
                assert not re.search(r"\btinygnn\b(?!-)", cmd.replace("tools/python", "")), f"{doc.name}: {cmd}"
    assert seen >= 2
