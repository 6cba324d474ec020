"""GRAPHS file tests: round trip, dtypes, batching, validation."""
import pytest
import torch
from safetensors import safe_open
from torch_geometric.data import Data

import tinygnn
from helpers import random_graph


def test_single_graph_round_trip(tmp_path):
    data = random_graph(edge_weight=True)
    data.y = torch.arange(data.num_nodes) % 3
    data.train_mask = torch.arange(data.num_nodes) < 4
    data.test_mask = ~data.train_mask
    path = tmp_path / "g.safetensors"
    tinygnn.save_graphs(path, data)
    with safe_open(str(path), framework="pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    assert dtypes == {"x": "F32", "edge_index": "I64", "edge_weight": "F32", "y": "I64",
                      "train_mask": "U8", "test_mask": "U8"}
    back = tinygnn.load_graphs(path)
    for key in ("x", "edge_index", "edge_weight", "y", "train_mask", "test_mask"):
        assert torch.equal(back[key], data[key]), key
    assert back.train_mask.dtype == torch.bool


def test_list_is_batched(tmp_path):
    graphs = [Data(x=torch.randn(n, 3), edge_index=torch.tensor([[0, 1], [1, 0]]),
                   y=torch.tensor([i])) for i, n in enumerate((2, 4, 3))]
    path = tmp_path / "g.safetensors"
    tinygnn.save_graphs(path, graphs)
    back = tinygnn.load_graphs(path)
    assert back.batch.tolist() == [0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert back.edge_index.tolist() == [[0, 1, 2, 3, 6, 7], [1, 0, 3, 2, 7, 6]]
    assert back.y.tolist() == [0, 1, 2]
    assert torch.equal(back.x, torch.cat([g.x for g in graphs]))


def test_rejects_float_labels_and_bad_shapes(tmp_path):
    data = random_graph()
    data.y = torch.rand(data.num_nodes)
    with pytest.raises(ValueError, match="y"):
        tinygnn.save_graphs(tmp_path / "g.safetensors", data)
    bad = Data(x=torch.randn(4), edge_index=torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="x"):
        tinygnn.save_graphs(tmp_path / "g.safetensors", bad)


def test_save_tensors_is_deterministic_and_standard(tmp_path):
    tensors = {"b": torch.arange(5), "a": torch.randn(2, 3), "m": torch.tensor([True, False])}
    meta = {"z": "1", "a": "2"}
    tinygnn.save_tensors(tmp_path / "1.safetensors", tensors, metadata=meta)
    tinygnn.save_tensors(tmp_path / "2.safetensors", dict(reversed(tensors.items())),
                         metadata=dict(reversed(meta.items())))
    assert (tmp_path / "1.safetensors").read_bytes() == (tmp_path / "2.safetensors").read_bytes()
    with safe_open(str(tmp_path / "1.safetensors"), framework="pt") as f:
        assert f.metadata() == meta
        for k, v in tensors.items():
            assert torch.equal(f.get_tensor(k), v)
