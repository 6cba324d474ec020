"""Files are written safely: through a temporary file and ``os.replace`` (a failed write
leaves the old file and no temporary), never onto an input."""
import os

import pytest
import torch
from torch_geometric.nn import models

import tinygnn
from tinygnn import tensors_io

from helpers import random_graph


def files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_replaces_and_keeps_permissions(tmp_path):
    path = tmp_path / "t.safetensors"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    tinygnn.save_tensors(path, {"a": torch.arange(3)})
    assert path.read_bytes()[8:9] == b"{"
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert files(tmp_path) == ["t.safetensors"]
    # A link is written through, and stays a link.
    link = tmp_path / "link.safetensors"
    link.symlink_to(path)
    tinygnn.save_tensors(link, {"b": torch.arange(2)})
    assert link.is_symlink()
    assert b'"b"' in path.read_bytes()


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "g.safetensors"
    path.write_bytes(b"old graphs")

    def fail(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tensors_io.os, "fsync", fail)
    with pytest.raises(OSError, match="No space left"):
        tinygnn.save_graphs(path, random_graph())
    assert path.read_bytes() == b"old graphs"
    assert files(tmp_path) == ["g.safetensors"]


def test_refuses_to_overwrite_an_input(tmp_path):
    graphs = tmp_path / "g.safetensors"
    tinygnn.save_graphs(graphs, random_graph())
    before = graphs.read_bytes()
    model = models.GCN(5, 8, num_layers=2, out_channels=3)
    # The example given as a file: the model may not be written onto it, however named.
    link = tmp_path / "link.safetensors"
    link.symlink_to(graphs)
    for out in (graphs, link, tmp_path / "." / "g.safetensors"):
        with pytest.raises(ValueError, match="refusing to write"):
            tinygnn.export(model, out, example=graphs)
        assert graphs.read_bytes() == before
    with pytest.raises(ValueError, match="refusing to write"):
        tinygnn.save_graphs(link, random_graph(), inputs=[graphs])
    assert graphs.read_bytes() == before
    # Elsewhere it works, and the example file gives the same export as the Data.
    a = tinygnn.export(model, tmp_path / "a.safetensors", example=graphs)
    b = tinygnn.export(model, tmp_path / "b.safetensors", example=tinygnn.load_graphs(graphs))
    assert a.spec == b.spec
    torch.testing.assert_close(a.output, b.output)
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    assert not [n for n in files(tmp_path) if ".tmp-" in n]
