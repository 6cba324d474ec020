#!/usr/bin/env python3
"""Train the digits GPS (seeded, CPU, a few minutes), export it, write its inputs.

Writes, next to this file: model.safetensors, graphs.safetensors (test graphs with y),
calib.safetensors (64 training graphs, for int8 calibration), expected_float.safetensors
(PyG float output on the test graphs) and float_metrics.json.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common  # noqa: E402  (sets up the path to tinygnn, silences import warnings)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch_geometric.loader import DataLoader  # noqa: E402

NAME = "digits-gps"
SEED, EPOCHS, BATCH_SIZE, LR = 0, 80, 64, 0.003


def main():
    _common.seed_everything(SEED)
    mdef = _common.load_model_def(NAME)
    train, test, _ = mdef.split()
    model = mdef.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
    loader = DataLoader(train, batch_size=BATCH_SIZE, shuffle=True,
                        generator=torch.Generator().manual_seed(SEED))
    for epoch in range(1, EPOCHS + 1):
        model.train()
        total = 0.0
        for batch in loader:
            optimizer.zero_grad()
            out = model(batch.x, batch.edge_index, batch.batch, batch.random_walk_pe)
            loss = F.cross_entropy(out, batch.y)
            loss.backward()
            optimizer.step()
            total += loss.item() * batch.num_graphs
        scheduler.step()
        if epoch % 10 == 0 or epoch == EPOCHS:
            train_out = _common.predict(model, train)
            train_acc = _common.accuracy(train_out, _common.as_data(train), "graph")
            test_out = _common.predict(model, test)
            test_acc = _common.accuracy(test_out, _common.as_data(test), "graph")
            print(f"epoch {epoch:3d} loss {total / len(train):.4f} train_acc {train_acc:.4f} "
                  f"test_acc {test_acc:.4f}")
    _common.finish(NAME, model, {"seed": SEED, "epochs": EPOCHS, "batch_size": BATCH_SIZE,
                                 "lr": LR, "num_train": len(train)}, commit_inputs=True)


if __name__ == "__main__":
    main()
