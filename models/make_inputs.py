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
from _common import write_inputs  # noqa: E402
from tinygnn.datasets import DatasetUnavailable  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("name", help="model folder under models/, e.g. cora-gcn")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    try:
        metrics = write_inputs(args.name, args.out_dir)
    except DatasetUnavailable as e:
        print(f"make_inputs: {args.name}: dataset unavailable: {e}", file=sys.stderr)
        return 2
    print(f"{args.name}: wrote inputs to {args.out_dir}; float accuracy "
          f"{metrics['float_test_accuracy']:.4f} on {metrics['num_test']} test items")
    return 0


if __name__ == "__main__":
    sys.exit(main())
