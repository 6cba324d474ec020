"""Cora link prediction (helper `link`): a GAE (Kipf & Welling, "Variational Graph
Auto-Encoders", 2016, the non-variational variant) with a 2-layer GCN encoder
(1433→32→16) and the inner-product decoder, on PyG's seeded ``RandomLinkSplit``
(85 / 5 / 10 % of the undirected edges for train / val / test, one negative pair per
positive in val and test), as in PyG's ``examples/link_pred.py`` / ``autoencoder.py``.

At inference the encoder sees the training edges only (``edge_index`` of the split) and the
decoder scores the test pairs (``edge_label_index``, labels ``edge_label``): the output is
the logit ``z_s · z_t`` of every pair (the sigmoid is left to the host; AUC is the same).

Data: ``$TINYGNN_DATA/Cora/raw`` (never committed), row-normalised features.
"""
import random

import numpy as np
import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv
from torch_geometric.transforms import NormalizeFeatures, RandomLinkSplit

from tinygnn.datasets import load_planetoid

TASK = "link"
SPLIT_SEED = 12345


class Encoder(torch.nn.Module):
    """GCNConv(1433→32) → ReLU → GCNConv(32→16): the node embeddings z."""

    def __init__(self, in_channels: int = 1433, hidden: int = 32, out: int = 16):
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden)
        self.conv2 = GCNConv(hidden, out)

    def forward(self, x, edge_index):
        return self.conv2(F.relu(self.conv1(x, edge_index)), edge_index)


def build_model() -> torch.nn.Module:
    return Encoder()


def load_splits():
    """(train, val, test) ``Data`` of the seeded RandomLinkSplit (the split does not depend
    on the global RNG state: it is drawn under its own seeds)."""
    data = NormalizeFeatures()(load_planetoid("Cora"))
    for key in ("train_mask", "val_mask", "test_mask", "y"):
        data[key] = None
    split = RandomLinkSplit(num_val=0.05, num_test=0.1, is_undirected=True,
                            add_negative_train_samples=False, split_labels=False)
    # PyG's negative sampling draws from torch, numpy and Python's random: seed all three
    # and restore them afterwards.
    states = (torch.random.get_rng_state(), np.random.get_state(), random.getstate())
    torch.manual_seed(SPLIT_SEED)
    np.random.seed(SPLIT_SEED)
    random.seed(SPLIT_SEED)
    try:
        train, val, test = split(data)
    finally:
        torch.random.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
    return train, val, test


def inputs():
    """Evaluation graph: the test split (training edges, test pairs); calibration: the
    validation split (its own pairs), so that no test pair sets a range."""
    _, val, test = load_splits()
    return {"graphs.safetensors": test, "calib.safetensors": val}
