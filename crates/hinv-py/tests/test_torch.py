"""hinv.torch against torch.func.hessian on small float64 models covering
every supported layer kind, activation and loss, and its refusals.
Skipped when torch is not installed (CI has none)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.func import functional_call, hessian  # noqa: E402

import hinv  # noqa: E402
import hinv.torch as ht  # noqa: E402


def models():
    """name -> (model, x, y, loss): together every layer kind, activation, loss, bias or not."""
    torch.manual_seed(0)
    R, Sq = ht.Residual, ht.Square
    out = {}
    m = nn.Sequential(nn.Linear(4, 5, bias=False), nn.Tanh(), nn.Linear(5, 5, bias=False), nn.Tanh(),
                      nn.Linear(5, 3, bias=False)).double()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(2.5)
    out["deep_tanh"] = (m, torch.randn(4, 4, dtype=torch.float64), torch.tensor([0, 2, 1, 2]), "cross_entropy")
    m = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), R(nn.Linear(4, 4), nn.GELU()),
                      R(nn.Linear(4, 4, bias=False), nn.GELU(approximate="tanh")),
                      nn.Linear(4, 4), nn.ReLU(inplace=True), nn.Sequential(nn.Linear(4, 3), Sq()),
                      nn.Linear(3, 3), nn.Identity(), nn.Linear(3, 3), nn.Linear(3, 3)).double()
    out["mixed_ce"] = (m, torch.randn(5, 3, dtype=torch.float64), torch.tensor([0, 2, 1, 1, 0]), nn.CrossEntropyLoss())
    m = nn.Sequential(nn.Linear(3, 4), nn.Softplus(beta=2), R(nn.Linear(4, 4), nn.Softplus()),
                      nn.Linear(4, 3), nn.Softplus(beta=0.5, threshold=5), nn.Linear(3, 2)).double()
    with torch.no_grad():
        m[0].weight.mul_(4)  # some pre-activations past the softplus thresholds
    out["softplus_mse"] = (m, 5 * torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64), "mse")
    m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))  # float32 model
    out["float32_mse"] = (m, torch.randn(6, 3), torch.randn(6, 2), nn.MSELoss())
    return out


def torch_reference(model, x, y, loss):
    """Loss, gradient and dense Hessian by torch.func, in float64 on the model's (float64-cast) weights."""
    m = model.double()
    names = [n for n, _ in m.named_parameters()]
    flat = torch.cat([p.detach().flatten() for p in m.parameters()])
    shapes = [p.shape for p in m.parameters()]
    kind = "cross_entropy" if loss in ("cross_entropy",) or isinstance(loss, nn.CrossEntropyLoss) else "mse"

    def f(v):
        ps, i = {}, 0
        for n, s in zip(names, shapes):
            k = int(np.prod(s))
            ps[n] = v[i:i + k].view(s)
            i += k
        z = functional_call(m, ps, (x.double(),))
        return F.cross_entropy(z, y) if kind == "cross_entropy" else F.mse_loss(z, y.double())

    g = torch.func.grad(f)(flat)
    return f(flat).item(), g.numpy(), hessian(f)(flat).numpy()


@pytest.mark.parametrize("name", ["deep_tanh", "mixed_ce", "softplus_mse", "float32_mse"])
def test_curvature_matches_torch_func_hessian(name):
    model, x, y, loss = models()[name]
    curv = ht.curvature(model, x, y, loss)
    ref_loss, ref_g, ref_H = torch_reference(model, x, y, loss)
    assert curv.loss == pytest.approx(ref_loss, rel=1e-13)
    # Both sides evaluate the same float64 formulas: agreement to rounding
    # (1e-12 relative to the largest entry, a few hundred ulps).
    np.testing.assert_allclose(curv.gradient, ref_g, rtol=0, atol=1e-12 * np.abs(ref_g).max())
    H = curv.hvp(np.eye(curv.num_params))
    np.testing.assert_allclose(H, ref_H, rtol=0, atol=1e-12 * np.abs(ref_H).max())
    eps = 1e-3
    A = ref_H + eps * np.eye(len(ref_g))
    step = curv.factor(eps).solve(curv.gradient)
    ref = np.linalg.solve(A, ref_g)
    # Forward error of two backward-stable solves: ~1e-13 cond (docs/pytorch.md).
    assert np.linalg.norm(step - ref) <= 1e-13 * np.linalg.cond(A) * np.linalg.norm(ref)


def test_unflatten_and_parameters_vector():
    model, x, y, loss = models()["mixed_ce"]
    v = ht.parameters_vector(model)
    parts = ht.unflatten(model, v)
    assert [p.shape for p in parts] == [p.shape for p in model.parameters()]
    for p, q in zip(parts, model.parameters()):
        assert torch.equal(p, q.detach()) and p.dtype == q.dtype
    m32 = models()["float32_mse"][0]
    assert all(p.dtype == torch.float32 for p in ht.unflatten(m32, ht.parameters_vector(m32)))
    with pytest.raises(ht.ExportError, match="unflatten"):
        ht.unflatten(model, v[:-1])
    spec, weights = ht.to_spec(model, loss)
    net = hinv.Network.from_spec(spec)
    np.testing.assert_array_equal(net.flatten(weights), v)


def test_damped_newton_step_decreases_the_loss():
    """Levenberg-Marquardt: raise eps until H + eps I is certified positive
    definite and the step -(H + eps I)^-1 g lowers the loss."""
    model, x, y, loss = models()["softplus_mse"]
    before = F.mse_loss(model(x), y).item()
    curv = ht.curvature(model, x, y, loss)
    saved = [p.detach().clone() for p in model.parameters()]
    for eps in [1e-2, 1e-1, 1.0, 10.0, 100.0]:
        f = curv.factor(eps)
        i = f.inertia()
        if i.negative > 0 or i.uncertain > 0:
            continue
        with torch.no_grad():
            for p, q, s in zip(model.parameters(), saved, ht.unflatten(model, f.solve(curv.gradient))):
                p.copy_(q - s)
        if F.mse_loss(model(x), y).item() < before:
            break
    else:
        pytest.fail("no damping gave a decrease")
    assert F.mse_loss(model(x), y).item() < before


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, z):
        return self.fc(z)


@pytest.mark.parametrize(
    "model, x, y, loss, message",
    [
        (nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(), nn.Linear(4, 2)), None, None, "cross_entropy", r"1 \(LeakyReLU\)"),
        (nn.Sequential(nn.Linear(3, 4), nn.Dropout(), nn.Linear(4, 2)), None, None, "cross_entropy", "Dropout"),
        (nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=1)), None, None, "cross_entropy", r"1 \(Softmax\)"),
        (nn.Sequential(nn.Linear(3, 2), nn.Tanh()), None, None, "cross_entropy", "must end with the nn.Linear"),
        (Custom(), None, None, "cross_entropy", "custom nn.Module"),
        (nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)), None, None, "cross_entropy", "takes 5 features, receives 4"),
        (nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Tanh(), nn.Linear(4, 2)), None, None, "cross_entropy",
         "must follow an nn.Linear"),
        (nn.Sequential(nn.Linear(3, 4), nn.GELU(approximate="none"), nn.Linear(4, 2)), None, torch.tensor([0.5, 0.5]),
         "cross_entropy", "integer classes"),
        (nn.Sequential(nn.Linear(3, 2)), None, torch.tensor([0, 5]), "cross_entropy", "class indices must lie"),
        (nn.Sequential(nn.Linear(3, 1)), None, torch.randn(2), "mse", "broadcast"),
        (nn.Sequential(nn.Linear(3, 2)), None, None, nn.CrossEntropyLoss(label_smoothing=0.1), "label smoothing"),
        (nn.Sequential(nn.Linear(3, 2)), None, None, nn.L1Loss(), "L1Loss"),
        (nn.Sequential(nn.Linear(3, 2)), None, None, "nll", "'cross_entropy' or 'mse'"),
        (nn.Sequential(nn.Linear(3, 2)), torch.randn(2, 3, 1), None, "cross_entropy", "inputs must be floats"),
    ],
)
def test_refuses_what_it_cannot_represent(model, x, y, loss, message):
    x = torch.randn(2, 3) if x is None else x
    y = torch.tensor([0, 1]) if y is None else y
    with pytest.raises(ht.ExportError, match=message) as e:
        ht.curvature(model, x, y, loss)
    assert isinstance(e.value, hinv.HinvError)


def test_refuses_shared_parameters_and_hooks():
    lin = nn.Linear(3, 3)
    with pytest.raises(ht.ExportError, match="shares a parameter"):
        ht.to_spec(nn.Sequential(lin, nn.Tanh(), lin, nn.Linear(3, 2)))
    m = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 2))
    h = m[1].register_forward_hook(lambda mod, i, o: o * 2)
    with pytest.raises(ht.ExportError, match="hooks"):
        ht.to_spec(m)
    h.remove()
    ht.to_spec(m)
    with pytest.raises(ht.ExportError, match="square nn.Linear"):
        ht.to_spec(nn.Sequential(nn.Linear(3, 3), ht.Residual(nn.Linear(3, 4), nn.Tanh()), nn.Linear(3, 2)))
