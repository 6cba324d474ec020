"""Write and read ``GRAPHS.safetensors`` (see ``docs/interchange.md``)."""
from __future__ import annotations

from typing import Dict, Sequence, Union

import torch
from safetensors.torch import load_file

from .tensors_io import save_tensors
from torch_geometric.data import Batch, Data

__all__ = ["save_graphs", "load_graphs", "graphs_tensors"]

MASKS = ("train_mask", "val_mask", "test_mask")
HYPER = ("hyperedge_index", "hyperedge_weight")


def _hyperedges(graphs) -> Union[Dict[str, torch.Tensor], None]:
    """hyperedge_index [2, nnz] (I64) and hyperedge_weight [M] (F32) of the graphs, batched:
    node ids offset by the nodes, hyperedge ids by the hyperedges (max id + 1, or the length
    of hyperedge_weight if longer) of the graphs before. None if no graph has any."""
    if not any(getattr(g, "hyperedge_index", None) is not None for g in graphs):
        if any(getattr(g, "hyperedge_weight", None) is not None for g in graphs):
            raise ValueError("save_graphs: hyperedge_weight needs hyperedge_index")
        return None
    idx, weights, weighted = [], [], False
    n0 = m0 = 0
    for g in graphs:
        hi = getattr(g, "hyperedge_index", None)
        hi = torch.zeros(2, 0, dtype=torch.long) if hi is None else hi.long()
        if hi.dim() != 2 or hi.size(0) != 2:
            raise ValueError("save_graphs: hyperedge_index must be [2, nnz]")
        m = int(hi[1].max()) + 1 if hi.numel() else 0
        hw = getattr(g, "hyperedge_weight", None)
        if hw is not None:
            hw = hw.reshape(-1).to(torch.float32)
            if hw.numel() < m:
                raise ValueError("save_graphs: hyperedge_weight must have one value per "
                                 "hyperedge (at least max(hyperedge_index[1]) + 1)")
            m = hw.numel()
            weighted = True
        idx.append(hi + torch.tensor([[n0], [m0]]))
        weights.append(torch.ones(m) if hw is None else hw)
        n0 += g.num_nodes
        m0 += m
    out = {"hyperedge_index": torch.cat(idx, dim=1).to(torch.int64)}
    if weighted:
        out["hyperedge_weight"] = torch.cat(weights).to(torch.float32)
    return out


def graphs_tensors(data_or_list: Union[Data, Sequence[Data]]) -> Dict[str, torch.Tensor]:
    """The tensors of a GRAPHS file for one graph, a ``Batch``, or a list of graphs (batched
    PyG-style with ``Batch.from_data_list``: node indices offset, ``batch`` vector)."""
    hyper = None
    if isinstance(data_or_list, Data):
        data = data_or_list
        hyper = _hyperedges([data])
    else:
        graphs = list(data_or_list)
        if not graphs:
            raise ValueError("save_graphs: empty list of graphs")
        # PyG's batching would offset both rows of hyperedge_index by the node count:
        # the incidences are batched here (nodes by nodes, hyperedges by hyperedges).
        hyper = _hyperedges(graphs)
        plain = []
        for g in graphs:
            g = g.clone()
            for key in HYPER:
                if key in g:
                    del g[key]
            plain.append(g)
        data = Batch.from_data_list(plain)
    if data.x is None or (data.edge_index is None and hyper is None):
        raise ValueError("save_graphs: every graph needs x and edge_index (or hyperedge_index)")
    if data.x.dim() != 2:
        raise ValueError(f"save_graphs: x must be [N, F], got {tuple(data.x.shape)}")
    n = data.num_nodes
    out = {
        "x": data.x.to(torch.float32),
        "edge_index": (torch.zeros(2, 0) if data.edge_index is None
                       else data.edge_index).to(torch.int64),
    }
    if hyper is not None:
        out.update(hyper)
    if getattr(data, "edge_weight", None) is not None:
        ew = data.edge_weight.reshape(-1)
        if ew.numel() != data.edge_index.size(1):
            raise ValueError("save_graphs: edge_weight must have one value per edge")
        out["edge_weight"] = ew.to(torch.float32)
    ea = getattr(data, "edge_attr", None)
    if ea is not None:
        if ea.size(0) != data.edge_index.size(1):
            raise ValueError("save_graphs: edge_attr must have one row per edge")
        out["edge_attr"] = (ea if ea.dim() == 2 else ea.reshape(-1, 1)).to(torch.float32)
    if getattr(data, "batch", None) is not None:
        out["batch"] = data.batch.to(torch.int64)
    y = getattr(data, "y", None)
    if y is not None:
        if y.is_floating_point():
            raise ValueError("save_graphs: y must hold integer class labels")
        out["y"] = y.reshape(-1).to(torch.int64)
    eli = getattr(data, "edge_label_index", None)
    if eli is not None:
        if eli.dim() != 2 or eli.size(0) != 2:
            raise ValueError("save_graphs: edge_label_index must be [2, P]")
        out["edge_label_index"] = eli.to(torch.int64)
        label = getattr(data, "edge_label", None)
        if label is not None:
            if label.numel() != eli.size(1):
                raise ValueError("save_graphs: edge_label must have one value per pair")
            out["edge_label"] = label.reshape(-1).to(torch.float32)
    elif getattr(data, "edge_label", None) is not None:
        raise ValueError("save_graphs: edge_label needs edge_label_index")
    for key in MASKS:
        mask = getattr(data, key, None)
        if mask is not None:
            if mask.numel() != n:
                raise ValueError(f"save_graphs: {key} must have one entry per node")
            out[key] = mask.reshape(-1).to(torch.uint8)
    return {k: v.contiguous() for k, v in out.items()}


def save_graphs(path, data_or_list: Union[Data, Sequence[Data]], *,
                inputs: Sequence = ()) -> Dict[str, torch.Tensor]:
    """Write ``GRAPHS.safetensors``: x (F32), edge_index (I64), and when present
    edge_weight (F32), edge_attr (F32, [E, D]), batch (I64), y (I64), the train/val/test masks (U8)
    and, for link prediction, edge_label_index (I64 ``[2, P]``, the node pairs to score) and
    edge_label (F32). Written safely (temporary file + ``os.replace``); ``inputs``: paths
    not to overwrite (``ValueError``), e.g. the file the graphs were loaded from.
    Returns the tensors written."""
    tensors = graphs_tensors(data_or_list)
    save_tensors(path, tensors, inputs=inputs)
    return tensors


def load_graphs(path) -> Data:
    """Read a GRAPHS file back into one (possibly batched) ``Data``; masks become bool."""
    tensors = load_file(str(path))
    data = Data()
    for key, value in tensors.items():
        data[key] = value.bool() if key in MASKS else value
    return data
