"""Synthetic 3D shapes (6 classes) as point clouds: graph classification with a small
DGCNN (two DynamicEdgeConv layers, k = 10, global max pooling, MLP head).

Data: ``shapes.py`` (committed, seeded): sphere, cube, cylinder, cone, torus, pyramid; 64–256
points per cloud (count drawn uniformly, seeded), random scale, rotation and noise. Train 1200 clouds (seed 1), test 300
(seed 2), calibration 60 training clouds.
"""
import sys
from pathlib import Path

import torch
from torch_geometric.nn import DynamicEdgeConv, global_max_pool

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shapes  # noqa: E402
from tinygnn.knn import install  # noqa: E402

install()  # PyG's DynamicEdgeConv needs torch.ops.pyg.knn (pyg-lib, not on PyPI)

TASK = "graph"
POINTS, K = (64, 256), 10  # points per cloud: uniform in 64..=256


def _seq(*m):
    return torch.nn.Sequential(*m)


class ShapesDGCNN(torch.nn.Module):
    """EdgeConv blocks on the kNN graph of their input (k = 10, max aggregation):
    3 → [Linear(6, 32) → BN → ReLU → Linear(32, 32) → ReLU] → 32 →
    [Linear(64, 32) → BN → ReLU] → 32; global max pool; Linear(32, 32) → ReLU →
    Dropout(0.3) → Linear(32, 6)."""

    def __init__(self, hidden: int = 32, num_classes: int = 6):
        super().__init__()
        self.conv1 = DynamicEdgeConv(_seq(torch.nn.Linear(6, hidden), torch.nn.BatchNorm1d(hidden),
                                          torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                                          torch.nn.ReLU()), k=K)
        self.conv2 = DynamicEdgeConv(_seq(torch.nn.Linear(2 * hidden, hidden),
                                          torch.nn.BatchNorm1d(hidden), torch.nn.ReLU()), k=K)
        self.lin1 = torch.nn.Linear(hidden, hidden)
        self.lin2 = torch.nn.Linear(hidden, num_classes)

    def forward(self, x, batch):
        h = self.conv2(self.conv1(x, batch), batch)
        h = global_max_pool(h, batch)
        h = self.lin1(h).relu()
        h = torch.nn.functional.dropout(h, p=0.3, training=self.training)
        return self.lin2(h)


def build_model() -> torch.nn.Module:
    return ShapesDGCNN()


def split():
    train = shapes.make_dataset(200, POINTS, seed=1)
    test = shapes.make_dataset(50, POINTS, seed=2)
    return train, test, train[:60]


def inputs():
    _, test, calib = split()
    return {"graphs.safetensors": test, "calib.safetensors": calib}
