"""Datasets used by tinygnn's examples and benchmarks.

* Planetoid citation graphs (Cora, CiteSeer) read from ``$TINYGNN_DATA`` (a folder with
  ``<Name>/raw/``); the raw folder is copied to a temporary directory first because PyG
  writes a ``processed/`` folder next to it and the shared copy is read-only.
* The UCI handwritten digits (``sklearn.datasets.load_digits``) as 8x8 pixel-grid graphs, or
  as stroke graphs of their inked pixels only.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from torch_geometric.data import Data

__all__ = ["DatasetUnavailable", "data_root", "load_planetoid", "digits_graphs",
           "digits_stroke_graphs", "grid_edge_index", "digits_split"]

ENV_VAR = "TINYGNN_DATA"


class DatasetUnavailable(FileNotFoundError):
    """The dataset files are not available on this machine (``$TINYGNN_DATA`` unset/missing)."""


def data_root() -> Path:
    """The folder named by ``$TINYGNN_DATA``; raises :class:`DatasetUnavailable` if unset or
    missing."""
    value = os.environ.get(ENV_VAR)
    if not value:
        raise DatasetUnavailable(f"${ENV_VAR} is not set; point it to a folder holding "
                                 "Planetoid's <Name>/raw/ files (e.g. Cora/raw/ind.cora.x)")
    root = Path(value)
    if not root.is_dir():
        raise DatasetUnavailable(f"${ENV_VAR}={value} is not a directory")
    return root


def load_planetoid(name: str, root: Optional[os.PathLike] = None) -> Data:
    """Load Planetoid ``name`` ('Cora', 'CiteSeer', 'PubMed') with its standard public split
    (train/val/test masks). ``root`` defaults to ``$TINYGNN_DATA``; its ``<name>/raw``
    folder is copied to a temporary directory, so it may be read-only."""
    from torch_geometric.datasets import Planetoid

    base = Path(root) if root is not None else data_root()
    raw = base / name / "raw"
    if not raw.is_dir():
        raise DatasetUnavailable(f"{raw} does not exist (expected Planetoid raw files for {name})")
    with tempfile.TemporaryDirectory(prefix="tinygnn-planetoid-") as tmp:
        shutil.copytree(raw, Path(tmp) / name / "raw")
        dataset = Planetoid(tmp, name)
        return dataset[0].clone()


def grid_edge_index(height: int = 8, width: int = 8, neighbourhood: int = 4) -> torch.Tensor:
    """Directed edges (both directions) of a ``height x width`` pixel grid, nodes numbered
    row-major; ``neighbourhood`` is 4 (up/down/left/right) or 8 (plus diagonals)."""
    if neighbourhood == 4:
        steps = [(0, 1), (1, 0)]
    elif neighbourhood == 8:
        steps = [(0, 1), (1, 0), (1, 1), (1, -1)]
    else:
        raise ValueError("neighbourhood must be 4 or 8")
    src, dst = [], []
    for r in range(height):
        for c in range(width):
            for dr, dc in steps:
                rr, cc = r + dr, c + dc
                if 0 <= rr < height and 0 <= cc < width:
                    a, b = r * width + c, rr * width + cc
                    src += [a, b]
                    dst += [b, a]
    return torch.tensor([src, dst], dtype=torch.long)


def digits_graphs(neighbourhood: int = 4) -> List[Data]:
    """All 1797 UCI digits as graphs: one node per pixel (64, none dropped), edges of the
    pixel grid, node features [intensity/16, col/7, row/7], graph label ``y`` (shape [1])."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)  # [n, 8, 8], values 0..16
    rows, cols = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    coords = torch.stack([cols.reshape(-1) / 7.0, rows.reshape(-1) / 7.0], dim=1)
    edge_index = grid_edge_index(8, 8, neighbourhood)
    graphs = []
    for img, label in zip(images, digits.target):
        x = torch.cat([img.reshape(-1, 1) / 16.0, coords], dim=1)
        graphs.append(Data(x=x, edge_index=edge_index.clone(),
                           y=torch.tensor([int(label)], dtype=torch.long)))
    return graphs


def digits_stroke_graphs(threshold: int = 4, neighbourhood: int = 8) -> List[Data]:
    """All 1797 UCI digits as stroke graphs: one node per inked pixel (intensity >=
    ``threshold`` of 16; 15 to 36 nodes at the default), nodes numbered row-major, edges of
    the pixel grid between inked pixels (both directions), node features
    [intensity/16, col/7, row/7], graph label ``y`` (shape [1]). Unlike
    :func:`digits_graphs` the structure differs from image to image (loops of 0, 6, 8 and 9,
    stroke ends), which structural encodings such as random-walk PE can see."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).reshape(-1, 64)
    rows, cols = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    coords = torch.stack([cols.reshape(-1) / 7.0, rows.reshape(-1) / 7.0], dim=1)
    grid = grid_edge_index(8, 8, neighbourhood)
    graphs = []
    for img, label in zip(images, digits.target):
        keep = img >= threshold
        index = torch.full((64,), -1, dtype=torch.long)
        index[keep] = torch.arange(int(keep.sum()))
        both = keep[grid[0]] & keep[grid[1]]
        edge_index = index[grid[:, both]]
        x = torch.cat([img[keep].reshape(-1, 1) / 16.0, coords[keep]], dim=1)
        graphs.append(Data(x=x, edge_index=edge_index,
                           y=torch.tensor([int(label)], dtype=torch.long)))
    return graphs


def digits_split(n: int, test_fraction: float = 0.2, seed: int = 0) -> Tuple[List[int], List[int]]:
    """A seeded random (train, test) split of ``range(n)``."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g).tolist()
    n_test = int(round(n * test_fraction))
    return sorted(perm[n_test:]), sorted(perm[:n_test])
