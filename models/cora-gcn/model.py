"""Cora citation graph: node classification (7 classes) with the GCN of Kipf & Welling
(ICLR 2017), standard Planetoid split (140 train / 500 val / 1000 test nodes).

Data: ``$TINYGNN_DATA/Cora/raw`` (never committed); node features are row-normalised
(``NormalizeFeatures``), as in the paper, and stored that way in ``graphs.safetensors``.
"""
import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv
from torch_geometric.transforms import NormalizeFeatures

from tinygnn.datasets import load_planetoid

TASK = "node"


class CoraGCN(torch.nn.Module):
    """Dropout → GCNConv(1433→16) → ReLU → Dropout → GCNConv(16→7) (logits)."""

    def __init__(self, in_channels: int = 1433, hidden: int = 16, num_classes: int = 7,
                 dropout: float = 0.5):
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden)
        self.conv2 = GCNConv(hidden, num_classes)
        self.dropout = dropout

    def forward(self, x, edge_index):
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = F.relu(self.conv1(x, edge_index))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.conv2(x, edge_index)


def build_model() -> torch.nn.Module:
    return CoraGCN()


def load_data():
    """Cora with row-normalised features and the standard public split masks."""
    return NormalizeFeatures()(load_planetoid("Cora"))


def inputs():
    return {"graphs.safetensors": load_data()}
