"""A byte-for-byte deterministic safetensors writer.

``safetensors.torch.save_file`` stores the ``__metadata__`` map in hash order, so writing
the same tensors and metadata twice can give different bytes; goldens and committed
example files should not change when they are regenerated. This writer emits the
standard format (8-byte little-endian header length, JSON header padded with spaces to a
multiple of 8, then the tensor data) with keys and tensors in sorted order. Files are read
with the ordinary ``safetensors`` library.

Files are written safely, as the ``tinygnn`` CLI writes its own (``docs/cli.md``, "Output
files"): into a temporary file in the destination's directory, synced, then moved over the
destination with ``os.replace``. A write that fails half way leaves the previous file as it
was and no temporary file; a reader never sees a half-written file. A destination that is a
symbolic link is written where it points; a replaced file keeps its permissions. A write onto
one of the ``inputs`` it is given (the same file, however named) is refused before anything is
written.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
from typing import Dict, Iterable, Optional, Sequence

import torch

_DTYPES = {
    torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


_COUNTER = itertools.count()


def same_file(a, b) -> bool:
    """Whether paths ``a`` and ``b`` name the same file (symbolic links, ``..`` and hard
    links resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_not_input(path, inputs: Sequence = ()) -> None:
    """Raise ``ValueError`` if ``path`` is one of ``inputs`` (see :func:`same_file`)."""
    for inp in inputs:
        if inp is not None and same_file(path, inp):
            raise ValueError(f"refusing to write {os.fspath(path)}: it is the input "
                             f"{os.fspath(inp)} (give another output path)")


def write_bytes_safely(path, chunks: Iterable[bytes], inputs: Sequence = ()) -> None:
    """Write ``chunks`` to ``path`` through a temporary file and ``os.replace`` (see the
    module docs); refuses a ``path`` that is one of ``inputs``."""
    check_not_input(path, inputs)
    dest = os.path.realpath(path) if os.path.islink(path) else os.fspath(path)
    folder = os.path.dirname(os.path.abspath(dest))
    name = os.path.basename(dest)
    while True:
        tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}-{next(_COUNTER)}")
        try:
            # 0o666 less the umask: the mode a plain open() would give a new file.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        if os.path.isfile(dest):
            shutil.copymode(dest, tmp)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_tensors(path, tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None,
                 *, inputs: Sequence = ()):
    """Write ``tensors`` (and string ``metadata``) to ``path`` deterministically and safely
    (temporary file + ``os.replace``). ``inputs``: paths the call must not overwrite (e.g. the
    file the tensors were read from); writing onto one raises ``ValueError``."""
    check_not_input(path, inputs)
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
    write_bytes_safely(path, [len(text).to_bytes(8, "little"), text, *blobs], inputs)
