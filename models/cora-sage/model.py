"""Cora citation graph: node classification (7 classes) with GraphSAGE (mean aggregation),
standard Planetoid split (140 train / 500 val / 1000 test nodes).

Data: ``$TINYGNN_DATA/Cora/raw`` (never committed), row-normalised features.
The model is PyG's ready-made ``torch_geometric.nn.models.GraphSAGE``.
"""
import torch
from torch_geometric.nn.models import GraphSAGE
from torch_geometric.transforms import NormalizeFeatures

from tinygnn.datasets import load_planetoid

TASK = "node"


def build_model() -> torch.nn.Module:
    """SAGEConv(1433→16, mean) → ReLU → Dropout(0.5) → SAGEConv(16→7, mean)."""
    return GraphSAGE(in_channels=1433, hidden_channels=16, num_layers=2, out_channels=7,
                     dropout=0.5, aggr="mean")


def load_data():
    """Cora with row-normalised features and the standard public split masks."""
    return NormalizeFeatures()(load_planetoid("Cora"))


def inputs():
    return {"graphs.safetensors": load_data()}
