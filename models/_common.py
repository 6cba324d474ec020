"""Shared helpers of the example models (``models/<name>/``).

Each model folder has a ``model.py`` defining

* ``TASK``: ``"node"`` or ``"graph"``;
* ``build_model()``: the (untrained) PyG model;
* ``inputs()``: ``{file name: Data or list of Data}``; the first entry is the evaluation set
  (written as ``graphs.safetensors``; accuracy over ``test_mask`` nodes for node tasks, over
  all graphs for graph tasks), others are extra inputs such as a calibration subset;
* optionally, for a recurrent cell (the evaluation set is a sequence, one graph per step):
  ``predict(model, steps)`` (every step's output from the zero state, stacked) and
  ``example(steps)`` (the export example, with its state);

a ``train.py`` that trains, exports ``model.safetensors`` and writes ``float_metrics.json``,
and a README. ``make_inputs.py NAME OUT_DIR`` rebuilds a model's input files and
``expected_float.safetensors`` from the committed weights (needed for datasets that must not
be committed, such as Cora).
"""
from __future__ import annotations

import importlib.util
import json
import random
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Dict, Optional, Union

import numpy as np
import torch

MODELS = Path(__file__).resolve().parent
REPO = MODELS.parent
sys.path.insert(0, str(REPO / "tools" / "python"))  # use this checkout's tinygnn
warnings.filterwarnings("ignore", category=FutureWarning)

import tinygnn  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from torch_geometric.data import Batch, Data  # noqa: E402

GraphsLike = Union[Data, list]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; use a fixed thread count for reproducible sums."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)


def load_model_def(name: str) -> ModuleType:
    """Import ``models/<name>/model.py``."""
    path = MODELS / name / "model.py"
    if not path.exists():
        raise SystemExit(f"unknown model '{name}': {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"tinygnn_models_{name.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def as_data(graphs: GraphsLike) -> Data:
    """One Data (a Batch for a list of graphs), as stored in a GRAPHS file."""
    return graphs if isinstance(graphs, Data) else Batch.from_data_list(list(graphs))


@torch.no_grad()
def predict(model: torch.nn.Module, graphs: GraphsLike) -> torch.Tensor:
    """Float output of ``model`` (eval mode) on the graphs, as the exporter calls it."""
    model.eval()
    return tinygnn.call_with_data(model, as_data(graphs)).float()


def accuracy(out: torch.Tensor, data: Data, task: str) -> float:
    """Accuracy over ``test_mask`` nodes (node task, if present) or all rows."""
    pred = out.argmax(dim=-1)
    y = data.y.view(-1)
    if task == "node" and getattr(data, "test_mask", None) is not None:
        pred, y = pred[data.test_mask], y[data.test_mask]
    return float((pred == y).float().mean())


def load_weights(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    """Load a MODEL.safetensors into ``model`` (integer buffers such as BatchNorm's
    ``num_batches_tracked`` are not stored and keep their values)."""
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(f"{path}: missing {missing}, unexpected {unexpected}")
    return model.eval()


def write_inputs(name: str, out_dir: Path,
                 model: Optional[torch.nn.Module] = None) -> Dict[str, object]:
    """Write the model's input GRAPHS files and ``expected_float.safetensors`` (tensor
    ``out``: PyG's float output on the evaluation set) into ``out_dir``; return metrics.
    ``model`` defaults to the model rebuilt from the committed ``model.safetensors``."""
    mdef = load_model_def(name)
    if model is None:
        model = load_weights(mdef.build_model(), MODELS / name / "model.safetensors")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = mdef.inputs()
    (eval_file, eval_graphs), *_ = files.items()
    for file_name, graphs in files.items():
        tinygnn.save_graphs(out_dir / file_name, graphs)
    data = as_data(eval_graphs)
    # A recurrent model (its model.py defines predict) runs the evaluation set as a
    # sequence from the zero state.
    out = mdef.predict(model, eval_graphs) if hasattr(mdef, "predict") else predict(model, data)
    tinygnn.save_tensors(out_dir / "expected_float.safetensors", {"out": out},
                         metadata={"model": name, "graphs": eval_file})
    num = int(data.test_mask.sum()) if mdef.TASK == "node" and "test_mask" in data else out.size(0)
    return {"float_test_accuracy": round(accuracy(out, data, mdef.TASK), 4), "num_test": num}


def write_metrics(name: str, metrics: Dict[str, object]) -> None:
    """Write ``models/<name>/float_metrics.json`` and print it."""
    import torch_geometric

    metrics = {"model": name, **metrics, "torch": torch.__version__.split("+")[0],
               "torch_geometric": torch_geometric.__version__}
    path = MODELS / name / "float_metrics.json"
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


def train_node_classifier(model: torch.nn.Module, data: Data, *, epochs: int, lr: float,
                          weight_decay: float, log_every: int = 50) -> torch.nn.Module:
    """Full-batch training on ``train_mask`` nodes with Adam and cross-entropy."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    for epoch in range(1, epochs + 1):
        model.train()
        optimizer.zero_grad()
        out = tinygnn.call_with_data(model, data)
        loss = torch.nn.functional.cross_entropy(out[data.train_mask], data.y[data.train_mask])
        loss.backward()
        optimizer.step()
        if epoch % log_every == 0 or epoch == epochs:
            out = predict(model, data)
            val = ""
            if getattr(data, "val_mask", None) is not None:
                val_acc = float((out.argmax(-1) == data.y)[data.val_mask].float().mean())
                val = f" val_acc {val_acc:.4f}"
            print(f"epoch {epoch:4d} loss {loss.item():.4f}{val}")
    return model.eval()


def finish(name: str, model: torch.nn.Module, extra_metrics: Dict[str, object],
           commit_inputs: bool) -> None:
    """Export ``models/<name>/model.safetensors``, measure float accuracy on the evaluation
    set, write ``float_metrics.json`` and, if ``commit_inputs``, the input files and
    ``expected_float.safetensors`` next to the model."""
    import tempfile

    mdef = load_model_def(name)
    folder = MODELS / name
    files = mdef.inputs()
    first = next(iter(files.values()))
    # A recurrent model's example is one step with its state (model.py's example()).
    example = mdef.example(first) if hasattr(mdef, "example") else as_data(first)
    result = tinygnn.export(model, folder / "model.safetensors", example=example)
    print(f"exported {folder / 'model.safetensors'}: {[op['op'] for op in result.spec['ops']]}")
    if commit_inputs:
        metrics = write_inputs(name, folder, model)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            metrics = write_inputs(name, Path(tmp), model)
    write_metrics(name, {"task": mdef.TASK, **metrics, **extra_metrics})
