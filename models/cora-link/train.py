#!/usr/bin/env python3
"""Train the Cora link-prediction GAE (GCN encoder, inner-product decoder; 300 epochs,
Adam lr 0.01, one fresh negative pair per positive training edge each epoch, binary
cross-entropy on the logits; seeded, CPU), export ``model.safetensors`` with
``tinygnn.export_link`` and write ``float_metrics.json`` (val and test AUC). Needs
``$TINYGNN_DATA``; Cora-derived files are not written here (``make_inputs.py cora-link``).
"""
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch_geometric.utils import negative_sampling

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common  # noqa: E402
import tinygnn  # noqa: E402

NAME = "cora-link"
SEED, EPOCHS, LR = 0, 300, 0.01


def scores(model, data):
    z = model(data.x, data.edge_index)
    s, t = data.edge_label_index
    return (z[s] * z[t]).sum(dim=-1)


def main():
    _common.seed_everything(SEED)
    mdef = _common.load_model_def(NAME)
    train, val, test = mdef.load_splits()
    model = mdef.build_model()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    for epoch in range(1, EPOCHS + 1):
        model.train()
        opt.zero_grad()
        z = model(train.x, train.edge_index)
        neg = negative_sampling(train.edge_index, num_nodes=train.num_nodes,
                                num_neg_samples=train.edge_label_index.size(1))
        eli = torch.cat([train.edge_label_index, neg], dim=1)
        lab = torch.cat([train.edge_label, torch.zeros(neg.size(1))])
        logit = (z[eli[0]] * z[eli[1]]).sum(dim=-1)
        loss = F.binary_cross_entropy_with_logits(logit, lab)
        loss.backward()
        opt.step()
        if epoch % 50 == 0:
            model.eval()
            with torch.no_grad():
                auc = roc_auc_score(val.edge_label.numpy(), scores(model, val).numpy())
            print(f"epoch {epoch:4d} loss {loss.item():.4f} val_auc {auc:.4f}")
    model.eval()
    folder = _common.MODELS / NAME
    result = tinygnn.export_link(model, folder / "model.safetensors", example=test,
                                 decoder="inner_product")
    with torch.no_grad():
        val_auc = roc_auc_score(val.edge_label.numpy(), scores(model, val).numpy())
        test_auc = roc_auc_score(test.edge_label.numpy(), result.output.view(-1).numpy())
    _common.write_metrics(NAME, {"task": "link", "float_val_auc": round(val_auc, 4),
                                 "float_test_auc": round(test_auc, 4),
                                 "num_test_pairs": int(test.edge_label.numel()),
                                 "seed": SEED, "split_seed": mdef.SPLIT_SEED,
                                 "epochs": EPOCHS, "lr": LR})


if __name__ == "__main__":
    main()
