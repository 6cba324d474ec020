"""ChebConv (normalization='sym', lambda_max 2, K <= 3): export, reference semantics against
PyG on directed graphs with self-loops and edge weights, refusals naming the supported form."""
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.nn import ChebConv

import tinygnn

from helpers import perturb, random_graph
from test_export import export_and_check, ops


class TwoCheb(torch.nn.Module):
    def __init__(self, k=3, lambda_max=None):
        super().__init__()
        self.conv1 = ChebConv(5, 8, K=k)
        self.conv2 = ChebConv(8, 3, K=k)
        self.lambda_max = lambda_max

    def forward(self, x, edge_index, edge_weight=None):
        x = F.relu(self.conv1(x, edge_index, edge_weight, lambda_max=self.lambda_max))
        return self.conv2(x, edge_index, edge_weight, lambda_max=self.lambda_max)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_two_cheb_layers(k, weighted, tmp_path):
    # random_graph is directed, with self-loops, a duplicate edge and an isolated node:
    # the degree over the source index and the loop removal both show.
    data = random_graph(edge_weight=weighted)
    spec = export_and_check(perturb(TwoCheb(k)), data, tmp_path)
    assert ops(spec) == ["cheb_conv", "relu", "cheb_conv"]
    a = spec["ops"][0]["attrs"]
    assert a["K"] == k and a["normalization"] == "sym" and a["lambda_max"] == 2.0
    assert a["edge_weight"] == weighted
    assert sorted(spec["ops"][0]["params"]) == ["bias"] + [f"weight_{i}" for i in range(k)]


def test_single_cheb_layer_untraced(tmp_path):
    conv = perturb(ChebConv(5, 4, K=2, bias=False))
    spec = export_and_check(conv, random_graph(edge_weight=True), tmp_path)
    assert ops(spec) == ["cheb_conv"] and "bias" not in spec["ops"][0]["params"]


def test_lambda_max_two_accepted(tmp_path):
    export_and_check(perturb(TwoCheb(2, lambda_max=2.0)), random_graph(), tmp_path)


def test_refusals(tmp_path):
    data = random_graph()
    with pytest.raises(tinygnn.ExportError, match="lambda_max = 1.5 is not supported.*sym"):
        tinygnn.export(TwoCheb(2, lambda_max=1.5), tmp_path / "m.safetensors", example=data)
    m = TwoCheb(4)
    with pytest.raises(tinygnn.ExportError, match="K = 4 is not supported.*K = 1, 2 or 3"):
        tinygnn.export(m, tmp_path / "m.safetensors", example=data)
    for norm in ["rw", None]:
        m = TwoCheb(2)
        m.conv1 = ChebConv(5, 8, K=2, normalization=norm)
        with pytest.raises(tinygnn.ExportError, match="normalization.*not supported.*'sym'"):
            tinygnn.export(m, tmp_path / "m.safetensors", example=data)
