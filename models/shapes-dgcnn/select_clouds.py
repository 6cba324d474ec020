#!/usr/bin/env python3
"""Pick clouds of ``graphs.safetensors`` by point count for the emulated boards (stdlib only).

    select_clouds.py GRAPHS.safetensors OUT.safetensors spread N
        N clouds spread over the whole point-count range: the clouds at ranks
        round(i·(C−1)/(N−1)), i = 0..N−1, of the clouds sorted by (points, index) —
        the smallest and the largest cloud always among them (for the Cortex-M4).
    select_clouds.py GRAPHS.safetensors OUT.safetensors upto N MAX_POINTS
        the N largest clouds with at most MAX_POINTS points (ties: lower index first),
        i.e. the largest clouds that fit a board whose RAM bounds the cloud size (Cortex-M0).
    select_clouds.py GRAPHS.safetensors OUT.safetensors over N MIN_POINTS
        the N smallest clouds with more than MIN_POINTS points (ties: lower index first):
        the clouds just too large for that board (its firmware must not link).

Deterministic (no randomness: the clouds themselves come from the seeded ``shapes.py``).
Writes the clouds in their original order and prints one line per cloud: index, points.
The GRAPHS file keeps its tensors (``x`` F32 [N, F], ``edge_index`` I64 [2, E],
``batch`` I64 [N], ``y`` I64 [G]); node indices and ``batch`` are renumbered.
"""
import json
import struct
import sys


def read(path):
    b = open(path, "rb").read()
    (n,) = struct.unpack("<Q", b[:8])
    header = json.loads(b[8 : 8 + n])
    body = b[8 + n :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        code = {"F32": "f", "I64": "q"}[t["dtype"]]
        vals = list(struct.unpack(f"<{(hi - lo) // struct.calcsize(code)}{code}", body[lo:hi]))
        out[name] = (t["dtype"], t["shape"], vals)
    return out


def write(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        dtype, shape, vals = tensors[name]
        code = {"F32": "f", "I64": "q"}[dtype]
        blob = struct.pack(f"<{len(vals)}{code}", *vals)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main(argv):
    if len(argv) < 5 or argv[3] not in ("spread", "upto", "over") or (argv[3] != "spread") != (len(argv) == 6):
        sys.exit(__doc__)
    t = read(argv[1])
    _, (nodes, feat), x = t["x"]
    batch = t["batch"][2]
    _, (_, edges), ei = t["edge_index"]
    y = t["y"][2]
    graphs = len(y)
    start = [0] * (graphs + 1)
    for b in batch:
        start[b + 1] += 1
    for g in range(graphs):
        start[g + 1] += start[g]
    if start[graphs] != nodes or any(batch[i] > batch[i + 1] for i in range(nodes - 1)):
        sys.exit("batch must be sorted and cover every node")
    order = sorted(range(graphs), key=lambda g: (start[g + 1] - start[g], g))
    n = int(argv[4])
    if argv[3] == "spread":
        if not 2 <= n <= graphs:
            sys.exit("spread needs 2 <= N <= clouds")
        pick = [order[round(i * (graphs - 1) / (n - 1))] for i in range(n)]
    elif argv[3] == "over":
        low = int(argv[5])
        pick = [g for g in order if start[g + 1] - start[g] > low][:n]
        if not pick:
            sys.exit(f"no cloud has more than {low} points")
    else:
        cap = int(argv[5])
        fit = [g for g in order if start[g + 1] - start[g] <= cap]
        fit.sort(key=lambda g: (-(start[g + 1] - start[g]), g))
        pick = fit[:n]
        if not pick:
            sys.exit(f"no cloud has at most {cap} points")
    pick.sort()
    nx, nb, ny, src, dst, base = [], [], [], [], [], 0
    for k, g in enumerate(pick):
        a, z = start[g], start[g + 1]
        nx += x[a * feat : z * feat]
        nb += [k] * (z - a)
        ny.append(y[g])
        for e in range(edges):
            if a <= ei[e] < z:
                src.append(ei[e] - a + base)
                dst.append(ei[edges + e] - a + base)
        base += z - a
        print(f"cloud {g}: {z - a} points")
    write(argv[2], {"x": ("F32", [base, feat], nx), "batch": ("I64", [base], nb),
                    "edge_index": ("I64", [2, len(src)], src + dst), "y": ("I64", [len(ny)], ny)})


if __name__ == "__main__":
    main(sys.argv)
