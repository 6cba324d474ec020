"""Dataset helper tests (Planetoid ones skip, visibly, without $TINYGNN_DATA)."""
import os

import pytest
import torch

from tinygnn import datasets


def test_grid_edges():
    ei4 = datasets.grid_edge_index(8, 8, 4)
    assert ei4.shape == (2, 2 * 2 * 8 * 7)
    ei8 = datasets.grid_edge_index(3, 3, 8)
    assert ei8.shape == (2, 2 * (2 * 3 * 2 + 2 * 2 * 2))
    # symmetric, no self-loops
    pairs = set(map(tuple, ei4.T.tolist()))
    assert all((b, a) in pairs for a, b in pairs) and all(a != b for a, b in pairs)


def test_digits_graphs():
    graphs = datasets.digits_graphs()
    assert len(graphs) == 1797
    g = graphs[0]
    assert g.x.shape == (64, 3) and g.y.shape == (1,)
    assert float(g.x[:, 0].max()) <= 1.0 and float(g.x[:, 1:].max()) == 1.0
    # node 9 is row 1, column 1
    assert torch.allclose(g.x[9, 1:], torch.tensor([1 / 7, 1 / 7]))
    train, test = datasets.digits_split(len(graphs), 0.2, seed=0)
    assert len(test) == 359 and not set(train) & set(test)
    assert datasets.digits_split(len(graphs), 0.2, seed=0) == (train, test)


def test_missing_data_root_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("TINYGNN_DATA", raising=False)
    with pytest.raises(datasets.DatasetUnavailable, match="TINYGNN_DATA"):
        datasets.load_planetoid("Cora")
    monkeypatch.setenv("TINYGNN_DATA", str(tmp_path))
    with pytest.raises(datasets.DatasetUnavailable, match="Cora"):
        datasets.load_planetoid("Cora")


@pytest.mark.skipif(not os.environ.get("TINYGNN_DATA"), reason="$TINYGNN_DATA not set")
@pytest.mark.parametrize("name,nodes,features,train", [("Cora", 2708, 1433, 140),
                                                        ("CiteSeer", 3327, 3703, 120)])
def test_planetoid(name, nodes, features, train):
    data = datasets.load_planetoid(name)
    assert data.num_nodes == nodes and data.x.shape[1] == features
    assert int(data.train_mask.sum()) == train and int(data.test_mask.sum()) == 1000
