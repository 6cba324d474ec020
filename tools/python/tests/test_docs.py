"""The documentation states exactly what the exporter supports: the module and function
tables of tools/python/README.md are the exporter's own tables (SUPPORTED_MODULES,
SUPPORTED_FUNCTIONS), and the op table of docs/interchange.md lists exactly SPEC_OPS, each of
which the reference interpreter runs."""
import re
from pathlib import Path

import pytest

import importlib

export = importlib.import_module("tinygnn.export")  # the module (tinygnn.export is the function)

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "tools" / "python" / "README.md"
INTERCHANGE = ROOT / "docs" / "interchange.md"
REFERENCE = ROOT / "tools" / "python" / "tinygnn" / "reference.py"


def table_rows(text, start, end=None):
    """The cells of the markdown table rows after the marker ``start`` (up to ``end`` or
    the first line that is not a table row)."""
    lines = text[text.index(start) + len(start):].splitlines()
    rows, seen = [], False
    for line in lines[1:]:
        if end and line.startswith(end):
            break
        if not line.startswith("|"):
            if seen and not end:
                break
            continue
        seen = True
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set(cells[0]) <= set("-: ") or cells[0] in ("module", "function or method", "op"):
            continue  # separator or header
        rows.append(cells)
    return rows


def names(cell):
    return re.findall(r"`([^`]+)`", cell)


def documented(start, end):
    """{name: set of spec ops} from a README table."""
    out = {}
    for cells in table_rows(README.read_text(), start, end):
        for name in names(cells[0]):
            assert name not in out, f"{name} is listed twice in {README.name}"
            out[name] = set(names(cells[1]))
    return out


def test_readme_lists_exactly_the_supported_modules():
    doc = documented("<!-- supported-modules", "<!-- end supported-modules")
    table = {k: set(v) for k, v in export.SUPPORTED_MODULES.items()}
    assert sorted(set(doc) - set(table)) == [], "documented but not in the exporter's table"
    assert sorted(set(table) - set(doc)) == [], "in the exporter's table but not documented"
    assert doc == table


def test_readme_lists_exactly_the_supported_functions():
    doc = documented("<!-- supported-functions", "<!-- end supported-functions")
    table = {k: {v} for k, v in export.SUPPORTED_FUNCTIONS.items()}
    assert sorted(set(doc) - set(table)) == [], "documented but not in the exporter's table"
    assert sorted(set(table) - set(doc)) == [], "in the exporter's table but not documented"
    assert doc == table


def test_tables_resolve_and_name_only_spec_ops():
    for name, ops in export.SUPPORTED_MODULES.items():
        assert export._resolve(name) is not None, name
        assert set(ops) <= set(export.SPEC_OPS), name
    for name, op in export.SUPPORTED_FUNCTIONS.items():
        if not name.startswith("torch.Tensor."):
            assert callable(export._resolve(name)), name
        assert op in export.SPEC_OPS, name


def test_interchange_lists_exactly_the_spec_ops():
    rows = table_rows(INTERCHANGE.read_text(), "### Ops")
    doc = [n for cells in rows for n in names(cells[0])]
    assert len(doc) == len(set(doc)), "an op is listed twice"
    assert sorted(doc) == sorted(export.SPEC_OPS)


@pytest.mark.parametrize("op", export.SPEC_OPS)
def test_reference_runs_every_spec_op(op):
    assert f'"{op}"' in REFERENCE.read_text(), f"tinygnn/reference.py does not handle '{op}'"
