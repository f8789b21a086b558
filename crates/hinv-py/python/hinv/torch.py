"""PyTorch models in hinv, in memory: ``nn.Sequential`` + loss -> spec and weights.

Imports torch lazily (on first call), so ``import hinv.torch`` works without it.

>>> import hinv.torch as ht                                     # doctest: +SKIP
>>> curv = ht.curvature(model, x, y, "cross_entropy")           # doctest: +SKIP
>>> step = curv.factor(1e-3).solve(curv.gradient)               # doctest: +SKIP
>>> for p, s in zip(model.parameters(), ht.unflatten(model, step)):  # doctest: +SKIP
...     p.data.add_(-s)

The conversion follows docs/pytorch.md: an ``nn.Sequential`` (nested ones
unrolled) of ``nn.Linear`` layers, each optionally followed by one of
``nn.Identity``, ``nn.Tanh``, ``nn.Sigmoid``, ``nn.ReLU``, ``nn.Softplus``,
``nn.GELU`` or this module's ``Square``, and this module's
``Residual(nn.Linear(w, w), activation)``, ending with the ``nn.Linear``
that feeds ``F.cross_entropy`` (integer class targets) or ``F.mse_loss``
(float targets of the output's shape). Everything else raises
``ExportError`` naming the module and the reason, rather than compute the
curvature of a different function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import _hinv
from ._errors import HinvError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = [
    "ExportError",
    "Residual",
    "Square",
    "curvature",
    "laplace",
    "network",
    "parameters_vector",
    "to_spec",
    "unflatten",
]


class ExportError(HinvError, ValueError):
    """A model, batch or loss that hinv cannot represent exactly."""


_classes: dict[str, type] = {}


def _torch_classes() -> dict[str, type]:
    """Residual and Square, defined on first use (they subclass nn.Module)."""
    if _classes:
        return _classes
    from torch import nn

    class Residual(nn.Module):
        """hinv's residual layer, ``z -> z + act(linear(z))``, with a square ``nn.Linear``."""

        def __init__(self, linear: nn.Linear, act: nn.Module):
            super().__init__()
            self.linear, self.act = linear, act

        def forward(self, z):
            return z + self.act(self.linear(z))

    class Square(nn.Module):
        """hinv's ``square`` activation, ``x -> x * x``."""

        def forward(self, x):
            return x * x

    Residual.__module__ = Square.__module__ = __name__
    _classes.update(Residual=Residual, Square=Square)
    return _classes


def __getattr__(name: str) -> Any:  # PEP 562: hinv.torch.Residual, hinv.torch.Square
    if name in ("Residual", "Square"):
        return _torch_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _activation_spec(name: str, m: Any) -> Any:
    from torch import nn

    plain = {nn.Identity: "identity", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.ReLU: "relu"}
    plain[_torch_classes()["Square"]] = "square"
    if type(m) in plain:  # nn.ReLU's `inplace` does not change the function
        return plain[type(m)]
    if type(m) is nn.Softplus:
        if m.beta == 1 and m.threshold == 20:
            return "softplus"
        return {"kind": "softplus", "beta": float(m.beta), "threshold": float(m.threshold)}
    if type(m) is nn.GELU:
        if m.approximate not in ("none", "tanh"):
            raise ExportError(f"{name} (GELU): approximate={m.approximate!r} is not supported")
        return "gelu" if m.approximate == "none" else {"kind": "gelu", "approximate": "tanh"}
    raise ExportError(
        f"{name} ({type(m).__name__}): not an activation hinv supports "
        "(Identity, Tanh, Sigmoid, ReLU, Softplus, GELU, Square)"
    )


def _activation_types() -> tuple:
    from torch import nn

    return (nn.Identity, nn.Tanh, nn.Sigmoid, nn.ReLU, nn.Softplus, nn.GELU, _torch_classes()["Square"])


def _flatten_sequential(model: Any) -> list:
    from torch import nn

    if type(model) is not nn.Sequential:
        raise ExportError(
            f"{type(model).__name__}: hinv cannot see the forward of a custom nn.Module; write the model as "
            "nn.Sequential(nn.Linear, activation, ..., hinv.torch.Residual(nn.Linear, activation), ..., nn.Linear) "
            "with hinv.torch's Residual and Square"
        )
    out = []
    for name, m in model._modules.items():  # named_children() would hide a module used twice
        if type(m) is nn.Sequential:
            _check_hooks(name, m)
            out += [(f"{name}.{n}", c) for n, c in _flatten_sequential(m)]
        else:
            out.append((name, m))
    return out


def _check_hooks(name: str, m: Any) -> None:
    hooks = (m._forward_hooks, m._forward_pre_hooks, getattr(m, "_backward_hooks", None))
    if any(hooks):
        raise ExportError(f"{name} ({type(m).__name__}): has hooks, which may change its output")


def _check_module(name: str, m: Any) -> None:
    from torch import nn

    _check_hooks(name, m)
    residual = _torch_classes()["Residual"]
    if type(m) not in (nn.Linear, residual, *_activation_types()):
        raise ExportError(
            f"{name} ({type(m).__name__}): module type not supported; hinv knows nn.Linear, "
            "hinv.torch.Residual and the activations Identity, Tanh, Sigmoid, ReLU, Softplus, GELU, Square"
        )
    if type(m) is residual:
        for n, c in m.named_children():
            _check_module(f"{name}.{n}", c)
    if list(m.buffers()):
        raise ExportError(f"{name} ({type(m).__name__}): holds buffers, which hinv's layers do not have")


def _loss_name(loss: Any) -> str:
    """"cross_entropy" or "mse", from a string or a default nn.CrossEntropyLoss / nn.MSELoss."""
    if isinstance(loss, str):
        if loss in ("cross_entropy", "mse"):
            return loss
        raise ExportError(f"loss must be 'cross_entropy' or 'mse', found {loss!r}")
    from torch import nn

    if type(loss) is nn.CrossEntropyLoss:
        if loss.reduction != "mean" or loss.weight is not None or loss.label_smoothing != 0.0:
            raise ExportError("nn.CrossEntropyLoss: only reduction='mean' without class weights or label smoothing")
        return "cross_entropy"
    if type(loss) is nn.MSELoss:
        if loss.reduction != "mean":
            raise ExportError("nn.MSELoss: only reduction='mean' is supported")
        return "mse"
    raise ExportError(f"loss {type(loss).__name__}: hinv supports cross_entropy and mse (mean reduction)")


def _global_hooks() -> bool:
    from torch.nn.modules import module as mm

    names = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks")
    return any(getattr(mm, n, None) for n in names)


def to_spec(model: Any, loss: Any = "cross_entropy") -> tuple[dict, dict[str, np.ndarray]]:
    """The hinv spec (a dict, docs/spec.md) and weights (``{name: float64 array}``,
    the CLI's safetensors names) of ``model`` followed by ``loss``
    (``"cross_entropy"``, ``"mse"``, or a default ``nn.CrossEntropyLoss()`` /
    ``nn.MSELoss()``). Raises ExportError for anything hinv cannot represent
    exactly, naming the module (its index in the nn.Sequential)."""
    from torch import nn

    loss = _loss_name(loss)
    if _global_hooks():
        raise ExportError("global nn.Module hooks are registered; they may change the model's output")
    _check_hooks("the model", model)
    mods = _flatten_sequential(model)
    for name, m in mods:
        _check_module(name, m)
    seen: set[int] = set()
    for name, m in mods:
        for p in m.parameters():
            if id(p) in seen:
                raise ExportError(
                    f"{name} ({type(m).__name__}): shares a parameter with an earlier layer; hinv's layers each have their own"
                )
            seen.add(id(p))
    if not mods or type(mods[-1][1]) is not nn.Linear:
        found = type(mods[-1][1]).__name__ if mods else "nothing"
        raise ExportError(
            f"the model must end with the nn.Linear whose output feeds the loss, found {found} "
            "(F.cross_entropy applies the softmax itself)"
        )
    residual = _torch_classes()["Residual"]
    layers: list[dict] = []
    tensors: dict[str, np.ndarray] = {}
    first = mods[0][1]
    width = first.in_features if type(first) is nn.Linear else getattr(getattr(first, "linear", None), "in_features", None)
    if not isinstance(width, int):
        raise ExportError(f"{mods[0][0]} ({type(mods[0][1]).__name__}): the model must start with an nn.Linear or a Residual")
    input_dim = width

    def linear(name: str, lin: Any, prefix: str) -> bool:
        if lin.in_features != width:
            raise ExportError(f"{name} (Linear): takes {lin.in_features} features, receives {width}")
        tensors[f"{prefix}.weight"] = _array64(lin.weight)
        if lin.bias is not None:
            tensors[f"{prefix}.bias"] = _array64(lin.bias)
        return lin.bias is not None

    k = 0
    while k < len(mods) - 1:
        name, m = mods[k]
        prefix = f"layers.{len(layers)}"
        if type(m) is residual:
            lin = m.linear
            if type(lin) is not nn.Linear or lin.in_features != lin.out_features:
                raise ExportError(f"{name} (Residual): needs a square nn.Linear")
            bias = linear(f"{name}.linear", lin, prefix)
            layers.append({"kind": "residual", "activation": _activation_spec(f"{name}.act", m.act), "bias": bias})
            k += 1
        elif type(m) is nn.Linear:
            bias = linear(name, m, prefix)
            act, k = "identity", k + 1
            if type(mods[k][1]) in _activation_types():
                act, k = _activation_spec(*mods[k]), k + 1
            layers.append({"kind": "dense", "out": m.out_features, "activation": act, "bias": bias})
            width = m.out_features
        else:
            raise ExportError(f"{name} ({type(m).__name__}): an activation must follow an nn.Linear")
    name, last = mods[-1]
    bias = linear(name, last, "loss")
    head = {"kind": loss, "bias": bias}
    head["classes" if loss == "cross_entropy" else "outputs"] = last.out_features
    return {"input_dim": input_dim, "layers": layers, "loss": head}, tensors


def _array64(t: Any) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().to(dtype=__import__("torch").float64).numpy())


def network(model: Any, loss: Any = "cross_entropy") -> _hinv.Network:
    """The ``hinv.Network`` of ``model`` and ``loss`` (see ``to_spec``)."""
    spec, _ = to_spec(model, loss)
    return _hinv.Network.from_spec(spec)


def _batch(net: _hinv.Network, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    import torch

    x = torch.as_tensor(x)
    if not x.is_floating_point() or x.dim() != 2 or x.shape[1] != net.input_dim:
        raise ExportError(f"inputs must be floats of shape (batch, {net.input_dim}), found {x.dtype} {tuple(x.shape)}")
    n = x.shape[0]
    y = torch.as_tensor(y)
    head = net.spec["loss"]
    if net.loss_kind == "cross_entropy":
        classes = head["classes"]
        if y.dtype not in (torch.int32, torch.int64) or tuple(y.shape) != (n,):
            raise ExportError(
                f"cross_entropy targets must be integer classes of shape ({n},), found {y.dtype} {tuple(y.shape)} "
                "(class probabilities are not supported)"
            )
        if n and (int(y.min()) < 0 or int(y.max()) >= classes):
            raise ExportError(f"class indices must lie in 0..{classes - 1} (ignore_index is not supported)")
        y_np = y.detach().cpu().to(torch.int64).numpy()
    else:
        outputs = head["outputs"]
        if not y.is_floating_point() or tuple(y.shape) != (n, outputs):
            raise ExportError(
                f"mse targets must be floats of shape ({n}, {outputs}), found {y.dtype} {tuple(y.shape)} "
                "(F.mse_loss would broadcast another shape)"
            )
        y_np = _array64(y)
    return _array64(x), y_np


def curvature(
    model: Any,
    x: Any,
    y: Any,
    loss: Any = "cross_entropy",
    *,
    memory_limit: int | None = None,
    curvature: str = "hessian",
) -> _hinv.Curvature:
    """``hinv.Curvature`` of the batch loss ``loss(model(x), y)`` at the model's
    current parameters, in float64. Vectors (gradient, solves, HVPs) are flat in
    ``model.parameters()`` order; ``unflatten(model, v)`` shapes them.
    ``curvature="ggn"`` gives the generalized Gauss–Newton matrix instead of
    the Hessian."""
    spec, weights = to_spec(model, loss)
    _check_parameter_order(model, weights)
    net = _hinv.Network.from_spec(spec)
    xs, ys = _batch(net, x, y)
    return _hinv.Curvature(net, weights, xs, ys, memory_limit=memory_limit, curvature=curvature)


def laplace(model: Any, x: Any, y: Any, loss: Any = "cross_entropy", **kwargs: Any) -> _hinv.Laplace:
    """``hinv.Laplace`` of the model at its current parameters on the training
    batch ``(x, y)``, in float64 (keyword arguments: those of ``hinv.Laplace``:
    ``curvature``, ``sigma_noise``, ``route``, ``memory_limit``). For new
    inputs, ``predictive(prior_precision, x_new)`` takes an array or tensor
    of shape ``(n, input_dim)``."""
    spec, weights = to_spec(model, loss)
    _check_parameter_order(model, weights)
    net = _hinv.Network.from_spec(spec)
    xs, ys = _batch(net, x, y)
    return _hinv.Laplace(net, weights, xs, ys, **kwargs)


def _check_parameter_order(model: Any, weights: dict) -> None:
    shapes = [tuple(p.shape) for p in model.parameters()]
    mine = [w.shape for w in weights.values()]
    if shapes != mine:
        raise ExportError(
            f"model.parameters() has shapes {shapes}, the converted layers {mine}: "
            "a parameter outside the layers hinv sees would be lost"
        )


def parameters_vector(model: Any) -> np.ndarray:
    """``torch.cat([p.flatten() for p in model.parameters()])`` as a float64 numpy vector."""
    parts = [_array64(p).ravel() for p in model.parameters()]
    return np.concatenate(parts) if parts else np.zeros(0)


def unflatten(model: Any, v: Any) -> list:
    """Tensors shaped like ``model.parameters()`` (their dtype and device) from a
    flat vector ``v`` in that order, so that ``p.data.add_(-lr * s)`` works."""
    import torch

    params = list(model.parameters())
    v = torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v)
    total = sum(p.numel() for p in params)
    if v.dim() != 1 or v.numel() != total:
        raise ExportError(f"unflatten: expected a vector of {total} entries, found shape {tuple(v.shape)}")
    out, i = [], 0
    for p in params:
        out.append(v[i : i + p.numel()].reshape(p.shape).to(dtype=p.dtype, device=p.device))
        i += p.numel()
    return out
