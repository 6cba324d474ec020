"""Zachary's karate club: node classification (4 communities) with a small GCN.

Data: ``torch_geometric.datasets.KarateClub`` (built into PyG, no download): 34 nodes,
156 directed edges, one-hot node features (34), 4 labelled training nodes (one per class).
The evaluation mask ``test_mask`` is every node not used for training (30 nodes).
"""
import torch
import torch.nn.functional as F
from torch_geometric.datasets import KarateClub
from torch_geometric.nn import GCNConv

TASK = "node"


class KarateGCN(torch.nn.Module):
    """GCNConv(34→8) → ReLU → GCNConv(8→8) → ReLU → Linear(8→4)."""

    def __init__(self, in_channels: int = 34, hidden: int = 8, num_classes: int = 4):
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden)
        self.conv2 = GCNConv(hidden, hidden)
        self.classifier = torch.nn.Linear(hidden, num_classes)

    def forward(self, x, edge_index):
        h = F.relu(self.conv1(x, edge_index))
        h = F.relu(self.conv2(h, edge_index))
        return self.classifier(h)


def build_model() -> torch.nn.Module:
    return KarateGCN()


def load_data():
    """The karate graph with ``test_mask`` = the nodes not in ``train_mask``."""
    data = KarateClub()[0]
    data.test_mask = ~data.train_mask
    return data


def inputs():
    return {"graphs.safetensors": load_data()}
