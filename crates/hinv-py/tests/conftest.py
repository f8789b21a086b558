"""Shared fixtures: small networks of every layer kind, activation and loss,
with seeded weights and batches, built through the public API only."""

import numpy as np
import pytest

import hinv

ACTIVATIONS = [
    "identity",
    "tanh",
    "sigmoid",
    "relu",
    "square",
    "gelu",
    {"kind": "gelu", "approximate": "tanh"},
    "softplus",
    {"kind": "softplus", "beta": 2.0, "threshold": 5.0},
]


def spec(loss="cross_entropy", act="tanh", residual=True, bias=True, width=4, input_dim=3, outputs=3):
    layers = [{"kind": "dense", "out": width, "activation": act, "bias": bias}]
    if residual:
        layers.append({"kind": "residual", "activation": act, "bias": not bias})
    layers.append({"kind": "dense", "out": width, "activation": "tanh", "bias": bias})
    head = {"kind": loss, "bias": bias, ("classes" if loss == "cross_entropy" else "outputs"): outputs}
    return {"input_dim": input_dim, "layers": layers, "loss": head}


def problem(s, batch=5, seed=0, gain=1.0):
    """(net, flat weights, x, y) for spec s, weights from the network's own init times `gain`."""
    rng = np.random.default_rng(seed)
    net = hinv.Network.from_spec(s)
    w = net.init_params(seed) * gain
    x = rng.standard_normal((batch, s["input_dim"]))
    head = s["loss"]
    if head["kind"] == "cross_entropy":
        y = rng.integers(0, head["classes"], size=batch)
    else:
        y = rng.standard_normal((batch, head["outputs"]))
    return net, w, x, y


@pytest.fixture
def small():
    return problem(spec())
