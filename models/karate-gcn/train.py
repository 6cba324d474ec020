#!/usr/bin/env python3
"""Train the karate-club GCN (seeded, CPU, seconds), export it, write its inputs.

Writes, next to this file: model.safetensors, graphs.safetensors (the graph with y,
train_mask and test_mask = nodes not used for training), expected_float.safetensors and
float_metrics.json.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common  # noqa: E402

NAME = "karate-gcn"
SEED, EPOCHS, LR, WEIGHT_DECAY = 0, 200, 0.01, 5e-4


def main():
    _common.seed_everything(SEED)
    mdef = _common.load_model_def(NAME)
    data = mdef.load_data()
    model = mdef.build_model()
    _common.train_node_classifier(model, data, epochs=EPOCHS, lr=LR, weight_decay=WEIGHT_DECAY)
    _common.finish(NAME, model, {"seed": SEED, "epochs": EPOCHS, "lr": LR,
                                 "weight_decay": WEIGHT_DECAY}, commit_inputs=True)


if __name__ == "__main__":
    main()
