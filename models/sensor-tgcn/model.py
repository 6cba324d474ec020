"""A sensor network: per-node forecasting with a TGCN cell over a synthetic diffusion process.

Process (seeded, deterministic, ``diffusion``): sensors at random points of the unit square,
each linked to its 3 nearest (both directions), edge weights exp(-d²/0.05) as in
traffic-sensor graphs (METR-LA style). A quantity (heat, a pollutant) spreads over the graph,
``u_{t+1} = (1−α)u_t + α·P u_t + injections − 0.05·u_t`` with ``P`` the weight-normalized
neighbour average and random injections (sources: 5 % of the sensors per step). Each step's
input is ``[u_t standardized, sin, cos of a 48-step daily phase]``; the label of sensor ``i``
at step ``t`` is the level band (low / mid / high, terciles of the whole run) of
``u_{t+1}[i]``: a one-step forecast.

Model (``Forecaster``): torch-geometric-temporal's TGCN cell written in plain PyG (GRU gates
over ``cat[GCNConv(X), H]``) and a per-node ``Linear(H→3)`` classifier; it returns
``(logits, h_next)`` and is exported with the example state ``data.h`` (tinygnn's recurrent
form: the caller carries ``h`` from step to step, starting from zeros).

One run of 3 × STEPS steps from one seed: the first STEPS train, the next STEPS calibrate
(``calib.safetensors``), the last STEPS are the test sequence (``graphs.safetensors``).
``scripts/recurrent-report.py`` imports this module to sweep other sizes.
"""
import contextlib

import torch
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv

TASK = "node"
NODES, HIDDEN, CLASSES, STEPS = 100, 8, 3, 120
GRAPH_SEED, K_NEAREST = 18, 3


class TGCN(torch.nn.Module):
    """torch_geometric_temporal.nn.recurrent.TGCN in plain PyG."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv_z = GCNConv(in_channels, out_channels)
        self.linear_z = torch.nn.Linear(2 * out_channels, out_channels)
        self.conv_r = GCNConv(in_channels, out_channels)
        self.linear_r = torch.nn.Linear(2 * out_channels, out_channels)
        self.conv_h = GCNConv(in_channels, out_channels)
        self.linear_h = torch.nn.Linear(2 * out_channels, out_channels)

    def forward(self, x, edge_index, edge_weight, h):
        z = torch.sigmoid(self.linear_z(torch.cat([self.conv_z(x, edge_index, edge_weight), h],
                                                  dim=-1)))
        r = torch.sigmoid(self.linear_r(torch.cat([self.conv_r(x, edge_index, edge_weight), h],
                                                  dim=-1)))
        h_tilde = torch.tanh(self.linear_h(
            torch.cat([self.conv_h(x, edge_index, edge_weight), h * r], dim=-1)))
        return z * h + (1 - z) * h_tilde


class Forecaster(torch.nn.Module):
    """TGCN cell + per-node classifier: returns (logits, h_next)."""

    def __init__(self, f, hidden, classes):
        super().__init__()
        self.cell = TGCN(f, hidden)
        self.out = torch.nn.Linear(hidden, classes)

    def forward(self, x, edge_index, edge_weight, h):
        h = self.cell(x, edge_index, edge_weight, h)
        return self.out(h), h


def sensor_graph(n, k, g):
    """Sensors at random points of the unit square, each linked to its k nearest (both
    directions), weights exp(-d²/σ²) as in traffic-sensor graphs (METR-LA style)."""
    pos = torch.rand(n, 2, generator=g)
    d = torch.cdist(pos, pos)
    nn = d.topk(k + 1, largest=False).indices[:, 1:]
    src = torch.arange(n).repeat_interleave(k)
    dst = nn.reshape(-1)
    ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)
    ei = torch.unique(ei, dim=1)
    w = torch.exp(-(d[ei[0], ei[1]] ** 2) / 0.05)
    return ei, w


def diffusion(ei, w, n, steps, g, alpha=0.35, classes=3):
    """u_{t+1} = (1−α)u_t + α·P u_t + sources: a quantity spreading over the sensors with
    random injections; x_t = [u_t, sin, cos of the daily phase]; the label of node i at
    step t is the level (low / mid / high) of u_{t+1}[i] (a one-step forecast). u is
    standardized (mean 0, std 1 over the whole run) in x."""
    deg = torch.zeros(n).index_add_(0, ei[1], w)
    P = torch.zeros(n, n)
    P[ei[1], ei[0]] = w / deg[ei[1]].clamp(min=1e-6)
    u = torch.rand(n, generator=g)
    us = []
    for t in range(steps + 1):
        us.append(u)
        inj = (torch.rand(n, generator=g) < 0.05).float() * torch.rand(n, generator=g) * 2
        u = (1 - alpha) * u + alpha * (P @ u) + inj - 0.05 * u
    us = torch.stack(us)
    lo, hi = torch.quantile(us, 1 / 3), torch.quantile(us, 2 / 3)
    # Standardized, like the other channels in [-1, 1]: the input is quantized per tensor.
    mu, sd = us.mean(), us.std()
    seq = []
    for t in range(steps):
        phase = 2 * torch.pi * t / 48
        x = torch.stack([(us[t] - mu) / sd, torch.full((n,), float(torch.sin(torch.tensor(phase)))),
                         torch.full((n,), float(torch.cos(torch.tensor(phase))))], dim=1)
        y = (us[t + 1] > lo).long() + (us[t + 1] > hi).long()
        seq.append(Data(x=x, edge_index=ei, edge_weight=w, y=y))
    return seq


@contextlib.contextmanager
def one_thread():
    """One torch thread, as train.py runs (``seed_everything``): the last bits of the sums
    (``P @ u``, the cell's) depend on the thread count, and 360 steps of the process and 120
    recurrent steps carry them on; make_inputs.py must reproduce the committed files."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def splits(nodes=NODES, steps=STEPS, seed=GRAPH_SEED):
    """(train, calib, test) sequences of ``steps`` steps each, from one seeded run."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        ei, w = sensor_graph(nodes, K_NEAREST, g)
        seq = diffusion(ei, w, nodes, 3 * steps, g)
    return seq[:steps], seq[steps:2 * steps], seq[2 * steps:]


def train(model, seq, hidden, epochs=60, lr=0.02):
    """Adam on the summed per-step cross-entropy, truncated backpropagation every 20 steps."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        h = torch.zeros(seq[0].num_nodes, hidden)
        loss = 0
        for t, d in enumerate(seq):
            logits, h = model(d.x, d.edge_index, d.edge_weight, h)
            loss = loss + torch.nn.functional.cross_entropy(logits, d.y)
            if (t + 1) % 20 == 0:  # truncated backpropagation through time
                opt.zero_grad()
                loss.backward()
                opt.step()
                h = h.detach()
                loss = 0
    return model.eval()


@torch.no_grad()
def predict(model, seq, hidden=HIDDEN):
    """Float logits of every step from the zero state, stacked (step-major rows), as
    ``tinygnn run --sequence`` and tinygnn.reference.run_files order them."""
    model.eval()
    if not isinstance(seq, list):
        seq = seq.to_data_list()
    with one_thread():
        h = torch.zeros(seq[0].num_nodes, hidden)
        outs = []
        for d in seq:
            logits, h = model(d.x, d.edge_index, d.edge_weight, h)
            outs.append(logits)
    return torch.cat(outs)


def build_model():
    return Forecaster(3, HIDDEN, CLASSES)


def example(seq):
    """The export example: step 0 with the zero state ``h``."""
    d = seq[0].clone()
    d.h = torch.zeros(d.num_nodes, HIDDEN)
    return d


def inputs():
    _, calib, test = splits()
    return {"graphs.safetensors": test, "calib.safetensors": calib}
