"""Cora citation graph: node classification (7 classes) with the GAT of Veličković et al.
(ICLR 2018): 8 attention heads of 8 channels, concatenated, then one head for the 7 classes;
standard Planetoid split (140 train / 500 val / 1000 test nodes).

Deviation from the paper: ReLU instead of ELU between the layers (the runtime has no ELU).
Data: ``$TINYGNN_DATA/Cora/raw`` (never committed), row-normalised features.
"""
import torch
import torch.nn.functional as F
from torch_geometric.nn import GATConv
from torch_geometric.transforms import NormalizeFeatures

from tinygnn.datasets import load_planetoid

TASK = "node"


class CoraGAT(torch.nn.Module):
    """Dropout → GATConv(1433→8, 8 heads, concat) → ReLU → Dropout → GATConv(64→7, 1 head)."""

    def __init__(self, in_channels: int = 1433, hidden: int = 8, heads: int = 8,
                 num_classes: int = 7, dropout: float = 0.6):
        super().__init__()
        self.conv1 = GATConv(in_channels, hidden, heads=heads, dropout=dropout)
        self.conv2 = GATConv(hidden * heads, num_classes, heads=1, concat=False, dropout=dropout)
        self.dropout = dropout

    def forward(self, x, edge_index):
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = F.relu(self.conv1(x, edge_index))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.conv2(x, edge_index)


def build_model() -> torch.nn.Module:
    return CoraGAT()


def load_data():
    """Cora with row-normalised features and the standard public split masks."""
    return NormalizeFeatures()(load_planetoid("Cora"))


def inputs():
    return {"graphs.safetensors": load_data()}
