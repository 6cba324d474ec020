#!/usr/bin/env python3
"""Write an example model's input files from its committed weights.

    python models/make_inputs.py NAME OUT_DIR

writes ``OUT_DIR/graphs.safetensors`` (evaluation graphs with ``y`` and masks),
any extra inputs of that model (e.g. ``calib.safetensors``) and
``OUT_DIR/expected_float.safetensors`` (``out`` = PyG float output of the committed model),
and prints the float accuracy. Cora-based models read ``$TINYGNN_DATA`` (exit code 2, with
a message, when it is absent so that callers can skip visibly).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MODELS, load_model_def, write_inputs  # noqa: E402
from tinygnn.datasets import DatasetUnavailable  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("name", help="model folder under models/, e.g. cora-gcn")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    try:
        if load_model_def(args.name).TASK == "link":
            metrics = write_link_inputs(args.name, args.out_dir)
            print(f"{args.name}: wrote inputs to {args.out_dir}; float AUC "
                  f"{metrics['float_test_auc']:.4f} on {metrics['num_test']} test pairs")
            return 0
        metrics = write_inputs(args.name, args.out_dir)
    except DatasetUnavailable as e:
        print(f"make_inputs: {args.name}: dataset unavailable: {e}", file=sys.stderr)
        return 2
    print(f"{args.name}: wrote inputs to {args.out_dir}; float accuracy "
          f"{metrics['float_test_accuracy']:.4f} on {metrics['num_test']} test items")
    return 0


def write_link_inputs(name: str, out_dir: Path) -> dict:
    """Link-prediction models (helper `link`): the GRAPHS files of ``inputs()`` (with
    ``edge_label_index`` / ``edge_label``) and ``expected_float.safetensors`` (``out``: the
    committed model's float pair scores on the evaluation graph, via ``tinygnn.reference``)."""
    import tinygnn
    from sklearn.metrics import roc_auc_score
    from tinygnn.reference import run_files

    out_dir.mkdir(parents=True, exist_ok=True)
    files = load_model_def(name).inputs()
    for file_name, graphs in files.items():
        tinygnn.save_graphs(out_dir / file_name, graphs)
    eval_file, data = next(iter(files.items()))
    out = run_files(MODELS / name / "model.safetensors", out_dir / eval_file)
    tinygnn.save_tensors(out_dir / "expected_float.safetensors", {"out": out},
                         metadata={"model": name, "graphs": eval_file})
    auc = roc_auc_score(data.edge_label.numpy(), out.view(-1).numpy())
    return {"float_test_auc": round(float(auc), 4), "num_test": int(data.edge_label.numel())}


if __name__ == "__main__":
    sys.exit(main())
