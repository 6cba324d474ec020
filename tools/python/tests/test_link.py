"""Link prediction export (helper `link`): ``tinygnn.export_link`` and pair GRAPHS files."""
import pytest
import torch
from safetensors.torch import load_file
from torch_geometric.data import Data
from torch_geometric.nn import GAE, GCNConv, InnerProductDecoder

import tinygnn
from tinygnn.reference import run_files


class Enc(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = GCNConv(5, 8)
        self.conv2 = GCNConv(8, 4)

    def forward(self, x, edge_index):
        return self.conv2(torch.relu(self.conv1(x, edge_index)), edge_index)


def graph():
    g = torch.Generator().manual_seed(3)
    ei = torch.randint(0, 12, (2, 30), generator=g)
    data = Data(x=torch.randn(12, 5, generator=g), edge_index=ei)
    data.edge_label_index = torch.tensor([[0, 3, 11, 5], [1, 3, 0, 5]])
    data.edge_label = torch.tensor([1.0, 0.0, 1.0, 0.0])
    return data


def test_inner_product_matches_pyg_and_reference(tmp_path):
    torch.manual_seed(0)
    enc, data = Enc().eval(), graph()
    res = tinygnn.export_link(GAE(enc), tmp_path / "m.safetensors", example=data)
    assert res.spec["task"] == "link"
    assert [op["op"] for op in res.spec["ops"]][-1] == "inner_product"
    with torch.no_grad():
        z = enc(data.x, data.edge_index)
        want = InnerProductDecoder()(z, data.edge_label_index, sigmoid=False)
    torch.testing.assert_close(res.output.view(-1), want)
    tinygnn.save_graphs(tmp_path / "g.safetensors", data)
    t = load_file(str(tmp_path / "g.safetensors"))
    assert t["edge_label_index"].tolist() == data.edge_label_index.tolist()
    assert t["edge_label"].tolist() == [1.0, 0.0, 1.0, 0.0]
    torch.testing.assert_close(run_files(tmp_path / "m.safetensors", tmp_path / "g.safetensors"),
                               res.output, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("decoder,width", [("hadamard", 4), ("concat", 8)])
def test_mlp_decoders(tmp_path, decoder, width):
    torch.manual_seed(1)
    enc, data = Enc().eval(), graph()
    mlp = torch.nn.Sequential(torch.nn.Linear(width, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    res = tinygnn.export_link(enc, tmp_path / "m.safetensors", example=data, decoder=decoder,
                              mlp=mlp)
    ops = [op["op"] for op in res.spec["ops"]]
    assert ops[-4:] == [f"pair_{decoder}", "linear", "relu", "linear"]
    tinygnn.save_graphs(tmp_path / "g.safetensors", data)
    torch.testing.assert_close(run_files(tmp_path / "m.safetensors", tmp_path / "g.safetensors"),
                               res.output, rtol=1e-5, atol=1e-6)
    assert res.output.shape == (4, 1)


def test_bad_link_exports(tmp_path):
    enc, data = Enc().eval(), graph()
    with pytest.raises(tinygnn.ExportError, match="decoder must be"):
        tinygnn.export_link(enc, tmp_path / "m.safetensors", example=data, decoder="dot")
    with pytest.raises(tinygnn.ExportError, match="needs the pair MLP"):
        tinygnn.export_link(enc, tmp_path / "m.safetensors", example=data, decoder="hadamard")
    del data.edge_label_index
    with pytest.raises(tinygnn.ExportError, match="edge_label_index"):
        tinygnn.export_link(enc, tmp_path / "m.safetensors", example=data)
    bad = graph()
    bad.edge_label = torch.ones(3)
    with pytest.raises(ValueError, match="one value per pair"):
        tinygnn.save_graphs(tmp_path / "g.safetensors", bad)
