"""Seeded synthetic 3D point clouds of six shapes, for the ``shapes-dgcnn`` model.

Classes: 0 sphere, 1 cube, 2 cylinder, 3 cone, 4 torus, 5 pyramid (square base). Every
cloud draws its point count uniformly from ``lo..=hi`` (64..=256 for the model) with the same
seeded generator, samples that many points uniformly (by area) on the shape's surface, then applies a
random scale in [0.7, 1.3], a uniformly random rotation (QR of a Gaussian matrix, sign
fixed) and Gaussian noise (σ = 0.02). Node features are the coordinates ``[x, y, z]``; the
graphs carry no edges of their own (DynamicEdgeConv builds them), so ``edge_index`` holds
one self-loop per cloud (GRAPHS files need an edge list; it is not used by the model).
"""
from __future__ import annotations

import math
from typing import List, Tuple

import torch
from torch_geometric.data import Data

CLASSES = ["sphere", "cube", "cylinder", "cone", "torus", "pyramid"]


def _sphere(n, g):
    v = torch.randn(n, 3, generator=g)
    return v / v.norm(dim=1, keepdim=True)


def _cube(n, g):
    p = torch.rand(n, 3, generator=g) * 2 - 1
    axis = torch.randint(0, 3, (n,), generator=g)
    sign = torch.randint(0, 2, (n,), generator=g).float() * 2 - 1
    p[torch.arange(n), axis] = sign
    return p * 0.8


def _cylinder(n, g):
    # Side area 2π·r·h (r = 0.7, h = 1.6) vs caps 2·π·r².
    r, h = 0.7, 1.6
    side = 2 * math.pi * r * h
    caps = 2 * math.pi * r * r
    on_side = torch.rand(n, generator=g) < side / (side + caps)
    t = torch.rand(n, generator=g) * 2 * math.pi
    z = (torch.rand(n, generator=g) - 0.5) * h
    rr = torch.where(on_side, torch.full((n,), r), r * torch.rand(n, generator=g).sqrt())
    zz = torch.where(on_side, z, (torch.randint(0, 2, (n,), generator=g).float() - 0.5) * h)
    return torch.stack([rr * t.cos(), rr * t.sin(), zz], 1)


def _cone(n, g):
    r, h = 0.8, 1.6
    slant = math.sqrt(r * r + h * h)
    side, base = math.pi * r * slant, math.pi * r * r
    on_side = torch.rand(n, generator=g) < side / (side + base)
    t = torch.rand(n, generator=g) * 2 * math.pi
    u = torch.rand(n, generator=g).sqrt()  # area-uniform along the slant
    rr = torch.where(on_side, r * u, r * torch.rand(n, generator=g).sqrt())
    zz = torch.where(on_side, h / 2 - h * u, torch.full((n,), -h / 2))
    return torch.stack([rr * t.cos(), rr * t.sin(), zz], 1)


def _torus(n, g):
    big, small = 0.75, 0.3
    # Rejection-free approximation: weight the tube angle by the local radius.
    t = torch.rand(n, generator=g) * 2 * math.pi
    p = torch.rand(n, generator=g) * 2 * math.pi
    keep = torch.rand(n, generator=g) * (big + small) <= big + small * p.cos()
    p = torch.where(keep, p, math.pi - p)
    rr = big + small * p.cos()
    return torch.stack([rr * t.cos(), rr * t.sin(), small * p.sin()], 1)


def _pyramid(n, g):
    # Square base [-0.8, 0.8]², apex at z = 0.9, base at z = -0.7; four triangles + base.
    a, top, bot = 0.8, 0.9, -0.7
    face = torch.randint(0, 5, (n,), generator=g)
    u, v = torch.rand(n, generator=g), torch.rand(n, generator=g)
    flip = u + v > 1
    u, v = torch.where(flip, 1 - u, u), torch.where(flip, 1 - v, v)
    corners = torch.tensor([[a, a], [-a, a], [-a, -a], [a, -a]])
    i0, i1 = face % 4, (face + 1) % 4
    c0, c1 = corners[i0], corners[i1]
    xy = c0 * (1 - u - v).unsqueeze(1) + c1 * u.unsqueeze(1)  # apex at (0, 0)
    z = bot * (1 - v) + top * v
    base = torch.rand(n, 2, generator=g) * 2 * a - a
    is_base = face == 4
    xy = torch.where(is_base.unsqueeze(1), base, xy)
    z = torch.where(is_base, torch.full((n,), bot), z)
    return torch.cat([xy, z.unsqueeze(1)], 1)


_MAKERS = [_sphere, _cube, _cylinder, _cone, _torus, _pyramid]


def _rotation(g):
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g))
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def make_cloud(label: int, points: int, g: torch.Generator) -> Data:
    p = _MAKERS[label](points, g)
    p = p * (0.7 + 0.6 * torch.rand(1, generator=g))
    p = p @ _rotation(g).T
    p = p + 0.02 * torch.randn(points, 3, generator=g)
    return Data(x=p.float(), edge_index=torch.zeros(2, 1, dtype=torch.long),
                y=torch.tensor([label]))


def make_dataset(per_class: int, points: Tuple[int, int], seed: int) -> List[Data]:
    """``per_class`` clouds of every class, interleaved (0, 1, …, 5, 0, 1, …); each cloud's
    point count is drawn uniformly from ``points[0]..=points[1]`` before its shape."""
    lo, hi = points
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(per_class):
        for c in range(len(CLASSES)):
            n = int(torch.randint(lo, hi + 1, (1,), generator=g))
            out.append(make_cloud(c, n, g))
    return out
