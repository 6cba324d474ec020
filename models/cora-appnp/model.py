"""Cora citation graph: node classification (7 classes) with APPNP (Gasteiger, Bojchevski &
Günnemann, "Predict then Propagate", ICLR 2019): a two-layer MLP predicts per node, then
personalized-PageRank propagation (K=10 power-iteration steps, teleport α=0.1) smooths the
predictions over the graph; standard Planetoid split (140 train / 500 val / 1000 test nodes).

Data: ``$TINYGNN_DATA/Cora/raw`` (never committed), row-normalised features.
"""
import torch
import torch.nn.functional as F
from torch_geometric.nn import APPNP
from torch_geometric.transforms import NormalizeFeatures

from tinygnn.datasets import load_planetoid

TASK = "node"


class CoraAPPNP(torch.nn.Module):
    """Dropout → Linear(1433→64) → ReLU → Dropout → Linear(64→7) → APPNP(K=10, α=0.1)."""

    def __init__(self, in_channels: int = 1433, hidden: int = 64, num_classes: int = 7,
                 K: int = 10, alpha: float = 0.1, dropout: float = 0.5):
        super().__init__()
        self.lin1 = torch.nn.Linear(in_channels, hidden)
        self.lin2 = torch.nn.Linear(hidden, num_classes)
        self.prop = APPNP(K, alpha)
        self.dropout = dropout

    def forward(self, x, edge_index):
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = F.relu(self.lin1(x))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.prop(self.lin2(x), edge_index)


def build_model() -> torch.nn.Module:
    return CoraAPPNP()


def load_data():
    """Cora with row-normalised features and the standard public split masks."""
    return NormalizeFeatures()(load_planetoid("Cora"))


def inputs():
    return {"graphs.safetensors": load_data()}
