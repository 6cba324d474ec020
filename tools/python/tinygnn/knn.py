"""Brute-force k-nearest-neighbour search with tinygnn's documented semantics, and a
stand-in for PyG's ``torch.ops.pyg.knn`` when ``pyg-lib`` is not installed.

PyG's ``DynamicEdgeConv`` calls ``torch.ops.pyg.knn`` (from ``pyg-lib``, which is not on
PyPI). :func:`install` registers :func:`knn` under that name (only if the op does not
exist) and tells PyG it is available, so that PyG's own ``DynamicEdgeConv`` code runs
(``propagate`` over ``knn(x, x, k, batch, batch).flip(0)``) on machines without
``pyg-lib``. Semantics (``docs/point-clouds.md``): for every query point, the ``k``
points of the same graph closest in squared Euclidean distance, the point itself
included, ties to the smaller index; a graph of fewer than ``k`` points gives all of
them. Result: ``[2, E]`` with row 0 the query (``y``) index and row 1 the neighbour
(``x``) index, queries in order, neighbours nearest first.
"""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["knn", "knn_graph", "install"]


def _segments(ptr: Optional[torch.Tensor], n: int) -> torch.Tensor:
    """Graph id of every row from a CSR pointer (all 0 without one)."""
    if ptr is None:
        return torch.zeros(n, dtype=torch.long)
    counts = ptr[1:] - ptr[:-1]
    return torch.repeat_interleave(torch.arange(counts.numel()), counts)


def knn(x: torch.Tensor, y: torch.Tensor, ptr_x: Optional[torch.Tensor],
        ptr_y: Optional[torch.Tensor], k: int, cosine: bool = False,
        num_workers: int = 1) -> torch.Tensor:
    """For every row of ``y``, its ``k`` nearest rows of ``x`` in the same graph
    (``ptr_x``/``ptr_y`` CSR pointers as PyG passes them)."""
    if cosine:
        raise ValueError("cosine kNN is not supported")
    gx, gy = _segments(ptr_x, x.size(0)), _segments(ptr_y, y.size(0))
    rows, cols = [], []
    xd, yd = x.double(), y.double()
    for g in torch.unique(gy).tolist():
        qi = torch.nonzero(gy == g).flatten()
        ci = torch.nonzero(gx == g).flatten()
        if ci.numel() == 0:
            continue
        d = ((yd[qi].unsqueeze(1) - xd[ci].unsqueeze(0)) ** 2).sum(-1)
        # Stable sort by distance: equal distances keep the candidates' index order.
        order = torch.sort(d, dim=1, stable=True).indices[:, :k]
        cols.append(ci[order].flatten())
        rows.append(qi.repeat_interleave(order.size(1)))
    if not rows:
        return torch.zeros((2, 0), dtype=torch.long)
    row, col = torch.cat(rows), torch.cat(cols)
    perm = torch.sort(row, stable=True).indices  # queries in order, neighbours nearest first
    return torch.stack([row[perm], col[perm]])


def knn_graph(x: torch.Tensor, k: int, batch: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The edge index DynamicEdgeConv propagates over: ``[source=neighbour, target=point]``."""
    n = x.size(0)
    b = torch.zeros(n, dtype=torch.long) if batch is None else batch.long()
    g = int(b.max()) + 1 if n else 0
    ptr = torch.zeros(g + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(torch.bincount(b, minlength=g), 0)
    return knn(x, x, ptr, ptr, k).flip([0])


_LIB = None


def install() -> bool:
    """Register :func:`knn` as ``torch.ops.pyg.knn`` if no such op exists, and mark
    PyG's kNN as available. Returns whether the stand-in was installed."""
    global _LIB
    import torch_geometric.typing as tgt

    try:
        torch.ops.pyg.knn  # noqa: B018 (pyg-lib present)
        present = True
    except (AttributeError, RuntimeError):
        present = False
    if not present and _LIB is None:
        _LIB = torch.library.Library("pyg", "FRAGMENT")
        _LIB.define("knn(Tensor x, Tensor y, Tensor? ptr_x, Tensor? ptr_y, int k, "
                    "bool cosine, int num_workers) -> Tensor")
        _LIB.impl("knn", knn, "CompositeExplicitAutograd")
    tgt.WITH_KNN = True
    return not present
