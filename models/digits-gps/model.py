"""UCI handwritten digits as stroke graphs: graph classification (10 classes) with a small
graph transformer (GPS, Rampášek et al. 2022) and random-walk structural encodings.

Data: ``sklearn.datasets.load_digits`` (1797 8×8 images, shipped with scikit-learn). Each
image is a graph of its inked pixels (intensity ≥ 4 of 16: 15 to 36 nodes) with
8-neighbourhood grid edges between them and node features [intensity/16, column/7, row/7]
(``tinygnn.datasets.digits_stroke_graphs``). Every graph carries PyG's
``AddRandomWalkPE(8)`` attribute ``random_walk_pe``, which the runtime recomputes on the
device from the edges alone. Seeded split: 80 % train / 20 % test (359 graphs); the
calibration subset is 64 training graphs.
"""
import torch
from torch_geometric.nn import GINConv, GPSConv, MLP, global_add_pool
from torch_geometric.transforms import AddRandomWalkPE

from tinygnn.datasets import digits_split, digits_stroke_graphs

TASK = "graph"
SPLIT_SEED = 0
TEST_FRACTION = 0.2
NUM_CALIB = 64
WALK_LENGTH = 8


class DigitsGPS(torch.nn.Module):
    """The node features through Linear(3→24) and the batch-normalised RWSE through
    Linear(8→8), concatenated; 2 × GPSConv(32, GINConv(MLP 32→32→32), 4 heads, BatchNorm);
    global add pooling; MLP head 32→32→10."""

    def __init__(self, in_channels: int = 3, hidden: int = 32, pe_channels: int = 8,
                 heads: int = 4, num_layers: int = 2, num_classes: int = 10):
        super().__init__()
        self.node_lin = torch.nn.Linear(in_channels, hidden - pe_channels)
        self.pe_norm = torch.nn.BatchNorm1d(WALK_LENGTH)
        self.pe_lin = torch.nn.Linear(WALK_LENGTH, pe_channels)
        self.convs = torch.nn.ModuleList(
            GPSConv(hidden, GINConv(MLP([hidden, hidden, hidden])), heads=heads)
            for _ in range(num_layers))
        self.head = MLP([hidden, hidden, num_classes], norm=None, dropout=0.3)

    def forward(self, x, edge_index, batch, random_walk_pe):
        h = torch.cat([self.node_lin(x), self.pe_lin(self.pe_norm(random_walk_pe))], dim=-1)
        for conv in self.convs:
            h = conv(h, edge_index, batch)
        return self.head(global_add_pool(h, batch))


def build_model() -> torch.nn.Module:
    return DigitsGPS()


def split():
    """(train graphs, test graphs, calibration graphs): seeded and deterministic, each graph
    with its ``random_walk_pe``."""
    rwse = AddRandomWalkPE(WALK_LENGTH)
    graphs = [rwse(g) for g in digits_stroke_graphs()]
    train_idx, test_idx = digits_split(len(graphs), TEST_FRACTION, seed=SPLIT_SEED)
    gen = torch.Generator().manual_seed(SPLIT_SEED + 1)
    pick = torch.randperm(len(train_idx), generator=gen)[:NUM_CALIB]
    calib_idx = sorted(train_idx[i] for i in pick.tolist())
    return ([graphs[i] for i in train_idx], [graphs[i] for i in test_idx],
            [graphs[i] for i in calib_idx])


def inputs():
    _, test, calib = split()
    return {"graphs.safetensors": test, "calib.safetensors": calib}
