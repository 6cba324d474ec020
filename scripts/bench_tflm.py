#!/usr/bin/env python3
"""The TFLite Micro side of scripts/bench.sh: a bundled GCN model expressed with TFLite ops,
quantized to full int8 by TensorFlow's converter, run by the real TFLite Micro interpreter.

    bench_tflm.py convert MODEL_DIR GRAPHS OUT_DIR   # needs tensorflow: writes OUT_DIR/model.tflite,
                                                     # OUT_DIR/inputs.npz (int8 inputs), OUT_DIR/tflite.json
    bench_tflm.py run OUT_DIR --reps R [--json]      # tflite_micro + numpy only: arena, accuracy, time
    bench_tflm.py invoke OUT_DIR --reps K            # K invokes and nothing else (for callgrind)

The GCN (`gcn_conv` ops of the exporter's spec, as in models/*/model.py) becomes, per layer,
`H = X·W` (FULLY_CONNECTED, constant int8 weights), `Â·H` (BATCH_MATMUL: both operands are
activations) and `+ b` (ADD). Â is the dense normalised adjacency of PyG's gcn_norm
(self-loops added where missing, D^-½ (A+I) D^-½, in-degree), computed in numpy from the
graph's edge_index and given to the interpreter as a second int8 input [N, N]: TFLite has no
scatter/segment ops, so a dense N×N matrix is the only way it can express message passing.
Calibration uses the same graphs that tinygnn's model was calibrated on (models.py: the
evaluation graph for karate-gcn and cora-gcn). `relu` → ReLU, `linear` → FULLY_CONNECTED,
`dropout` → identity (eval mode). Any other op is refused with a message.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file


def load_graph(path):
    g = load_file(str(path))
    x = g["x"].astype(np.float32)
    ei = g["edge_index"].astype(np.int64)
    y = g.get("y")
    mask = g.get("test_mask")
    return x, ei, (None if y is None else y.astype(np.int64)), (None if mask is None else mask.astype(bool))


def gcn_norm_dense(ei, n):
    """Dense Â = D^-½ (A + I) D^-½ with PyG's gcn_norm rules (add_remaining_self_loops,
    weight 1, deg = in-degree incl. the loop); row = target, column = source."""
    src, dst = ei
    w = np.ones(src.shape[0], dtype=np.float64)
    has_loop = np.zeros(n, dtype=bool)
    has_loop[src[src == dst]] = True
    loops = np.nonzero(~has_loop)[0]
    src = np.concatenate([src, loops])
    dst = np.concatenate([dst, loops])
    w = np.concatenate([w, np.ones(loops.shape[0])])
    deg = np.zeros(n)
    np.add.at(deg, dst, w)
    dinv = np.where(deg > 0, deg ** -0.5, 0.0)
    a = np.zeros((n, n))
    np.add.at(a, (dst, src), dinv[dst] * w * dinv[src])
    return a.astype(np.float32)


def read_spec(model_dir):
    f = safe_open(str(Path(model_dir) / "model.safetensors"), "np")
    spec = json.loads(f.metadata()["tinygnn_spec"])
    tensors = {k: f.get_tensor(k).astype(np.float32) for k in f.keys()}
    return spec, tensors


def convert(args):
    import tensorflow as tf

    spec, t = read_spec(args.model_dir)
    x, ei, y, mask = load_graph(args.graphs)
    n, f = x.shape
    a = gcn_norm_dense(ei, n)
    ops = spec["ops"]
    for op in ops:
        if op["op"] not in ("gcn_conv", "relu", "linear", "dropout"):
            raise SystemExit(f"bench_tflm: op '{op['op']}' ({op['name']}) has no TFLite form here")
        if op["op"] == "gcn_conv":
            at = op["attrs"]
            if at.get("improved") or not at.get("add_self_loops", True) or not at.get("normalize", True) \
                    or at.get("edge_weight"):
                raise SystemExit(f"bench_tflm: {op['name']}: only default GCNConv attributes are supported")
        if len(op["inputs"]) != 1:
            raise SystemExit(f"bench_tflm: {op['name']}: only a chain of ops is supported")

    consts = {}
    for op in ops:
        p = op.get("params", {})
        if op["op"] in ("gcn_conv", "linear"):
            consts[op["name"]] = (tf.constant(t[p["weight"]].T), tf.constant(t[p["bias"]]))

    def layers(xin, adj):
        h = xin
        for op in ops:
            if op["op"] == "gcn_conv":
                w, b = consts[op["name"]]
                h = tf.matmul(adj, tf.matmul(h, w)) + b
            elif op["op"] == "linear":
                w, b = consts[op["name"]]
                h = tf.matmul(h, w) + b
            elif op["op"] == "relu":
                h = tf.nn.relu(h)
        return h

    if args.const_adj:
        # Variant: Â baked into the model as a constant (the graph is fixed at conversion time).
        a_const = tf.constant(a)

        @tf.function(input_signature=[tf.TensorSpec([n, f], tf.float32, name="x")])
        def gcn(xin):
            return layers(xin, a_const)

        float_out = gcn(tf.constant(x)).numpy()

        def representative():
            yield [x]
    else:
        @tf.function(input_signature=[tf.TensorSpec([n, f], tf.float32, name="x"),
                                      tf.TensorSpec([n, n], tf.float32, name="adj")])
        def gcn(xin, adj):
            return layers(xin, adj)

        float_out = gcn(tf.constant(x), tf.constant(a)).numpy()

        def representative():
            yield [x, a]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([gcn.get_concrete_function()], gcn)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    blob = conv.convert()

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.tflite").write_bytes(blob)
    # The converter's input quantization, read back with TF's own interpreter (not timed).
    it = tf.lite.Interpreter(model_content=blob)
    ins = {d["name"]: d for d in it.get_input_details()}
    ops_used = sorted({o["op_name"] for o in it._get_ops_details()})

    def q(name, v):
        d = next(d for k, d in ins.items() if name in k)
        s, z = d["quantization"]
        return d["index"], np.clip(np.round(v / s) + z, -128, 127).astype(np.int8)

    order = sorted(ins.values(), key=lambda d: d["index"])
    names = [d["name"] for d in order]
    qx = q("x", x)[1]
    arrays = [qx]
    meta = {"tflite_bytes": len(blob), "ops": ops_used, "inputs": names, "nodes": n, "features": f,
            "tensorflow": tf.__version__, "adj_nonzero": int((a != 0).sum()), "const_adj": bool(args.const_adj)}
    if not args.const_adj:
        qa = q("adj", a)[1]
        arrays = [qx if "x" in nm and "adj" not in nm else qa for nm in names]
        meta["adj_int8_nonzero"] = int((qa != q("adj", 0.0)[1]).sum())
    np.savez(out / "inputs.npz", *arrays, y=(y if y is not None else np.zeros(0, np.int64)),
             mask=(mask if mask is not None else np.zeros(0, bool)), float_out=float_out)
    (out / "tflite.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta))


def interpreter(out_dir, arena):
    from tflite_micro import runtime

    return runtime.Interpreter.from_file(str(Path(out_dir) / "model.tflite"), arena_size=arena)


def load_inputs(out_dir):
    z = np.load(Path(out_dir) / "inputs.npz")
    k = sorted((k for k in z.files if k.startswith("arr_")), key=lambda s: int(s[4:]))
    return [z[i] for i in k], z


def works(out_dir, arena, inputs, invoke=True):
    try:
        it = interpreter(out_dir, arena)
        for i, v in enumerate(inputs):
            it.set_input(v, i)
        if invoke:
            it.invoke()
        return it
    except Exception:  # the interpreter raises RuntimeError (or ValueError) when the arena is too small
        return None


def min_arena(out_dir, inputs):
    """Smallest arena (bytes, to 16) with which the interpreter allocates and invokes."""
    hi = 1 << 12
    while works(out_dir, hi, inputs) is None:
        hi *= 2
        if hi > 1 << 31:
            raise SystemExit("bench_tflm: no arena up to 2 GiB works")
    lo = hi // 2 if hi > 1 << 12 else 0
    while hi - lo > 16:
        mid = (lo + hi) // 2 // 16 * 16
        if works(out_dir, mid, inputs) is None:
            lo = mid
        else:
            hi = mid
    return hi


def reported_arena(it):
    """The interpreter's own figure: RecordingMicroAllocator's 'Arena allocation total' (printed by
    C++ on stderr, captured through the file descriptor)."""
    import os
    import tempfile

    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            it.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read()
    for line in text.splitlines():
        if "Arena allocation total" in line:
            return int(line.split("total")[1].split()[0])
    return None


def run(args):
    import tflite_micro

    inputs, z = load_inputs(args.out_dir)
    arena = min_arena(args.out_dir, inputs)
    it = works(args.out_dir, arena, inputs)
    reported = reported_arena(it)
    out = it.get_output(0)
    od = it.get_output_details(0)
    s, zp = od["quantization_parameters"]["scales"][0], od["quantization_parameters"]["zero_points"][0]
    pred = out.argmax(axis=1)
    y, mask, fout = z["y"], z["mask"], z["float_out"]
    rows = mask if mask.size == pred.size else np.ones(pred.size, bool)
    acc = float((pred[rows] == y[rows]).mean()) if y.size == pred.size else None
    # Timed: set inputs once (as a device would, they are in the arena), then invoke repeatedly.
    it = works(args.out_dir, arena, inputs)
    for _ in range(3):
        it.invoke()
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter_ns()
        it.invoke()
        times.append(time.perf_counter_ns() - t0)
    res = {"tflite_micro": tflite_micro.__version__, "arena_bytes_min": arena, "arena_bytes_reported": reported,
           "input_bytes": int(sum(v.nbytes for v in inputs)),
           "output_scale": float(s), "output_zero_point": int(zp),
           "argmax": pred.tolist(), "accuracy": acc, "accuracy_rows": int(rows.sum()),
           "float_tf_accuracy": float((fout.argmax(1)[rows] == y[rows]).mean()) if y.size == pred.size else None,
           "float_tf_argmax": fout.argmax(1).tolist(),
           "reps": args.reps, "median_ns": statistics.median(times), "min_ns": min(times)}
    print(json.dumps(res))


def invoke(args):
    from tflite_micro import runtime  # noqa: F401

    inputs, _ = load_inputs(args.out_dir)
    arena = int(args.arena)
    it = works(args.out_dir, arena, inputs, invoke=False)
    if it is None:
        raise SystemExit(f"bench_tflm: arena {arena} does not work")
    for _ in range(args.reps):
        it.invoke()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert")
    c.add_argument("model_dir")
    c.add_argument("graphs")
    c.add_argument("out_dir")
    c.add_argument("--const-adj", action="store_true",
                   help="variant: Â as a constant of the model (graph fixed at conversion), one input")
    r = sub.add_parser("run")
    r.add_argument("out_dir")
    r.add_argument("--reps", type=int, default=100)
    v = sub.add_parser("invoke")
    v.add_argument("out_dir")
    v.add_argument("--reps", type=int, default=1)
    v.add_argument("--arena", required=True)
    args = ap.parse_args()
    {"convert": convert, "run": run, "invoke": invoke}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
