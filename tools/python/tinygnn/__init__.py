"""tinygnn: export PyTorch Geometric GNNs for the tinygnn microcontroller runtime.

* :func:`export` writes ``MODEL.safetensors`` (f32 weights + JSON op spec);
  :func:`export_link` a link-prediction encoder + pair decoder (``docs/link-prediction.md``).
* :func:`save_graphs` / :func:`load_graphs` write/read ``GRAPHS.safetensors``.
* :data:`SUPPORTED_MODULES` / :data:`SUPPORTED_FUNCTIONS` (public name -> spec ops) are
  what the exporter translates; :data:`SPEC_OPS` every op a spec may contain.
* :func:`save_tensors` writes any safetensors file deterministically (sorted keys).
* :mod:`tinygnn.datasets` loads Cora/CiteSeer (from ``$TINYGNN_DATA``) and digits-as-graphs.
* :mod:`tinygnn.reference` evaluates a spec in plain torch (the ops' semantics).

The file formats are described in ``docs/interchange.md``.
"""
from .export import (SPEC_OPS, SUPPORTED_FUNCTIONS, SUPPORTED_MODULES, ExportError, ExportResult,
                     build_link_spec, build_spec, call_with_data, export, export_link)
from .graphs import load_graphs, save_graphs
from .tensors_io import save_tensors
from . import datasets, reference

__all__ = ["ExportError", "ExportResult", "build_spec", "call_with_data", "export",
           "build_link_spec", "export_link", "SPEC_OPS", "SUPPORTED_MODULES", "SUPPORTED_FUNCTIONS",
           "load_graphs", "save_graphs", "save_tensors", "datasets", "reference"]
__version__ = "0.1.0"
