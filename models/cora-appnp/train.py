#!/usr/bin/env python3
"""Train the Cora APPNP (PyG example setup: 200 epochs, Adam lr 0.01, weight decay 5e-4,
dropout 0.5; seeded, CPU, a few seconds), export ``model.safetensors``, write
``float_metrics.json``. Needs ``$TINYGNN_DATA``. Cora-derived files are NOT written here:
``python models/make_inputs.py cora-appnp OUT_DIR`` produces them from the weights.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common  # noqa: E402

NAME = "cora-appnp"
SEED, EPOCHS, LR, WEIGHT_DECAY = 0, 200, 0.01, 5e-4


def main():
    _common.seed_everything(SEED)
    mdef = _common.load_model_def(NAME)
    data = mdef.load_data()
    model = mdef.build_model()
    _common.train_node_classifier(model, data, epochs=EPOCHS, lr=LR, weight_decay=WEIGHT_DECAY)
    _common.finish(NAME, model, {"seed": SEED, "epochs": EPOCHS, "lr": LR,
                                 "weight_decay": WEIGHT_DECAY, "dropout": 0.5, "K": 10,
                                 "alpha": 0.1},
                   commit_inputs=False)


if __name__ == "__main__":
    main()
