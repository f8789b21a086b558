"""hinv's Gauss–Newton matrix and Laplace approximation against PyTorch: the
GGN against J^T Lambda J built with torch.func (jacrev of the outputs,
hessian of the loss in the outputs) on models of every layer kind,
activation and loss; the evidence and the GLM predictive against
laplace-torch's "full" Laplace with its GGN backends.
Skipped when torch (or laplace-torch) is not installed (CI has neither)."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.func import functional_call, hessian, jacrev  # noqa: E402

import hinv.torch as ht  # noqa: E402

# The same models as test_torch.py: every layer kind, activation and loss.
from test_torch import models  # noqa: E402


def torch_ggn(model, x, y, loss):
    """J^T Lambda J of the batch-mean loss, in float64, by torch.func."""
    m = copy.deepcopy(model).double()
    names = [n for n, _ in m.named_parameters()]
    shapes = [p.shape for p in m.parameters()]
    flat = torch.cat([p.detach().flatten() for p in m.parameters()])
    xd = x.double()
    kind = "cross_entropy" if loss == "cross_entropy" or isinstance(loss, nn.CrossEntropyLoss) else "mse"

    def outputs(v):
        ps, i = {}, 0
        for n, s in zip(names, shapes):
            k = int(np.prod(s))
            ps[n] = v[i:i + k].view(s)
            i += k
        return functional_call(m, ps, (xd,))

    def mean_loss(z):
        return F.cross_entropy(z, y) if kind == "cross_entropy" else F.mse_loss(z, y.double())

    z = outputs(flat).detach()
    J = jacrev(outputs)(flat).reshape(z.numel(), -1)  # (N C, P)
    lam = hessian(mean_loss)(z).reshape(z.numel(), z.numel())  # (N C, N C)
    return (J.T @ lam @ J).numpy()


@pytest.mark.parametrize("name", list(models()))
def test_ggn_matches_torch_func_jacobians(name):
    model, x, y, loss = models()[name]
    G = torch_ggn(model, x, y, loss)
    curv = ht.curvature(model, x, y, loss, curvature="ggn")
    mine = curv.hvp(np.eye(curv.num_params))
    # Both are sums of O(N C) products of exactly computed factors: rounding
    # ~ N C u max|J|^2 max|Lambda|, far below 1e-12 of the largest entry.
    np.testing.assert_allclose(mine, G, rtol=0, atol=1e-12 * np.abs(G).max())
    assert np.linalg.eigvalsh(0.5 * (G + G.T)).min() >= -1e-12 * np.abs(G).max()
    # Both routes solve GGN + eps I as numpy does.
    A = G + 1e-2 * np.eye(len(G))
    b = np.random.default_rng(0).standard_normal(len(G))
    ref = np.linalg.solve(A, b)
    for route in ["lifted", "woodbury"]:
        xr = curv.factor(1e-2, route=route).solve(b)
        assert np.linalg.norm(xr - ref) <= 1e-13 * np.linalg.cond(A) * np.linalg.norm(ref)


try:
    import laplace
    from laplace.curvature import BackPackGGN, CurvlinopsGGN
except ImportError:  # the GGN tests above still run
    laplace = None
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402


def trained(kind, seed=0):
    """A small tanh network trained a little (Adam), in float64."""
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    x = torch.randn(40, 4, dtype=torch.float64)
    if kind == "classification":
        y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 0.5).long()
        lf = nn.CrossEntropyLoss()
    else:
        y = torch.stack([x[:, 0] * x[:, 1], torch.sin(x[:, 2]), x[:, 3]], 1) + 0.1 * torch.randn(40, 3, dtype=torch.float64)
        lf = nn.MSELoss()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        lf(m(x), y).backward()
        opt.step()
    return m, x, y, lf


@pytest.fixture
def float64_default():
    # laplace-torch 0.3's curvlinops backend builds its dense GGN in torch's
    # default dtype: with float32 (torch's default) it is 3.5e-8 off
    # torch.func's J^T Lambda J on these models, with float64 1e-15 off, as
    # BackPack's is either way.
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.skipif(laplace is None, reason="laplace-torch is not installed")
@pytest.mark.parametrize("backend", ["backpack", "curvlinops"])
@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_evidence_and_predictive_match_laplace_torch_full(kind, backend, float64_default):
    backend = {"backpack": BackPackGGN, "curvlinops": CurvlinopsGGN}[backend]
    model, x, y, lf = trained(kind)
    sigma = 0.3
    extra = {} if kind == "classification" else {"sigma_noise": sigma}
    la = laplace.Laplace(model, kind, subset_of_weights="all", hessian_structure="full", backend=backend, **extra)
    la.fit(DataLoader(TensorDataset(x, y), batch_size=len(x)))
    mine = ht.laplace(model, x, y, lf, **extra)
    xs = torch.randn(6, 4, dtype=torch.float64)
    for delta in [0.1, 1.0, 10.0]:
        theirs = la.log_marginal_likelihood(prior_precision=torch.tensor(delta, dtype=torch.float64)).item()
        # laplace-torch forms the dense P x P posterior precision and takes its
        # logdet (Cholesky): agreement to 1e-10 relative, the target.
        assert mine.evidence(delta).log_marginal_likelihood == pytest.approx(theirs, rel=1e-10)
        f_mu, f_var = la._glm_predictive_distribution(xs)
        pred = mine.predictive(delta, xs.numpy())
        np.testing.assert_allclose(pred.mean, f_mu.detach().numpy(), rtol=0, atol=1e-12)
        fv = f_var.detach().numpy()
        np.testing.assert_allclose(pred.covariance, fv, rtol=0, atol=1e-10 * np.abs(fv).max())
        if kind == "classification":
            probs = la(xs, pred_type="glm", link_approx="probit").detach().numpy()
            np.testing.assert_allclose(pred.probit(), probs, rtol=0, atol=1e-12)
        else:
            assert pred.noise_variance == pytest.approx(sigma**2, rel=1e-15)
    # The prior precision maximizing the evidence, against laplace-torch's
    # evidence on both sides of it.
    best = mine.optimize_prior_precision(lower=1e-3, upper=1e3, rtol=1e-8).best
    d = best.prior_precision
    for other in [0.99 * d, 1.01 * d]:
        la_best = la.log_marginal_likelihood(prior_precision=torch.tensor(d, dtype=torch.float64)).item()
        la_other = la.log_marginal_likelihood(prior_precision=torch.tensor(other, dtype=torch.float64)).item()
        assert la_best > la_other
