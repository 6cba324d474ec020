"""A byte-for-byte deterministic safetensors writer.

``safetensors.torch.save_file`` stores the ``__metadata__`` map in hash order, so writing
the same tensors and metadata twice can give different bytes; goldens and committed
example files should not change when they are regenerated. This writer emits the
standard format (8-byte little-endian header length, JSON header padded with spaces to a
multiple of 8, then the tensor data) with keys and tensors in sorted order. Files are read
with the ordinary ``safetensors`` library.
"""
from __future__ import annotations

import json
from typing import Dict, Optional

import torch

_DTYPES = {
    torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def save_tensors(path, tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None):
    """Write ``tensors`` (and string ``metadata``) to ``path`` deterministically."""
    header: Dict[str, object] = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("safetensors metadata must map str to str")
        header["__metadata__"] = dict(sorted(metadata.items()))
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _DTYPES:
            raise TypeError(f"tensor '{name}': unsupported dtype {t.dtype}")
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for data in blobs:
            f.write(data)
