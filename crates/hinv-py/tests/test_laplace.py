"""The Gauss–Newton routes and the Laplace approximation from Python, against
independent numpy references: the dense GGN (``Curvature(..., curvature="ggn")
.hvp(eye)``) with numpy.linalg.solve / slogdet / eigvalsh, the closed-form
evidence and predictive of Bayesian linear regression, and output Jacobians
recovered from the gradients of a mean-squared-error twin of the network.
numpy only: these run in CI."""

import numpy as np
import pytest
from conftest import problem, spec

import hinv

U = np.finfo(float).eps
LN2PI = np.log(2 * np.pi)


def dense(curv):
    A = curv.hvp(np.eye(curv.num_params))
    return 0.5 * (A + A.T)


def ggn_problem(loss="cross_entropy", seed=5, gain=2.0, batch=5):
    net, w, x, y = problem(spec(loss=loss, act="tanh"), seed=seed, gain=gain, batch=batch)
    return net, w, x, y, hinv.Curvature(net, w, x, y, curvature="ggn")


# ---------------------------------------------------------------- routes


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("eps", [1e-1, 1e-3])
def test_woodbury_and_lifted_routes_against_numpy(loss, eps):
    net, w, x, y, ggn = ggn_problem(loss)
    A = dense(ggn) + eps * np.eye(ggn.num_params)
    cond = np.linalg.cond(A)
    rng = np.random.default_rng(3)
    B = rng.standard_normal((ggn.num_params, 3))
    ref = np.linalg.solve(A, B)
    sign, logdet = np.linalg.slogdet(A)
    assert sign == 1.0
    for route in ["woodbury", "lifted"]:
        f = ggn.factor(eps, route=route)
        assert f.route == route and f.num_params == ggn.num_params and f.eps == eps
        assert (f.lifted_dim is None) == (route == "woodbury")
        sol = f.solve_with(B)
        assert sol.report.within_tolerance and sol.report.backward_error <= 64 * U
        assert (sol.report.method == "woodbury") == (route == "woodbury")
        # Both solves backward stable (64 u): forward error a few u cond(A);
        # 1e-13 cond leaves a margin of ~500 over u cond.
        assert np.linalg.norm(sol.x - ref) <= 1e-13 * cond * np.linalg.norm(ref)
        np.testing.assert_allclose(f.solve(B[:, 0]), sol.x[:, 0], rtol=0, atol=1e-13 * cond * np.abs(ref).max())
        d = f.log_det()
        assert d.sign == 1.0
        # The target for the evidence: 1e-10 relative to the dense route
        # (both log-dets are accurate to ~u cond relative, cond <= 1e4 here).
        assert abs(d.log_abs - logdet) <= 1e-10 * max(1.0, abs(logdet))
        # GGN + eps I is positive definite by construction, and certified so.
        i = f.inertia()
        assert (i.positive, i.negative, i.zero, i.uncertain) == (ggn.num_params, 0, 0, 0)


def test_route_choice_and_costs():
    net, w, x, y, ggn = ggn_problem()
    assert ggn.curvature == "ggn"
    c = ggn.route_costs()
    assert c.lifted > 0 and c.woodbury is not None and c.woodbury > 0
    assert c.cheaper == ("woodbury" if c.woodbury < c.lifted else "lifted")
    assert ggn.factor(1e-2).route == c.cheaper
    # Only the lifted route takes eps <= 0; auto falls back to it.
    assert ggn.factor(0.0, allow_singular=True).route == "lifted"
    for bad in [0.0, -1e-3, float("nan")]:
        with pytest.raises(hinv.InvalidArgumentError):
            ggn.factor(bad, route="woodbury")
    with pytest.raises(hinv.InvalidArgumentError, match="route must be"):
        ggn.factor(1e-2, route="dense")
    # Below the rounding of U^T U (singular for softmax) the Woodbury route
    # cannot factor; forced it says so, chosen by cost it gives way.
    with pytest.raises(hinv.IllConditionedError):
        ggn.factor(1e-300, route="woodbury")
    assert ggn.factor(1e-300, allow_singular=True).route == "lifted"
    # The Hessian has no Woodbury route.
    hess = hinv.Curvature(net, w, x, y)
    assert hess.curvature == "hessian"
    hc = hess.route_costs()
    assert hc.woodbury is None and hc.cheaper == "lifted"
    assert hess.factor(1e-2).route == "lifted"
    with pytest.raises(hinv.InvalidArgumentError, match="Gauss-Newton"):
        hess.factor(1e-2, route="woodbury")
    assert "woodbury" in repr(ggn.factor(1e-2, route="woodbury"))


def test_woodbury_on_a_wide_batch_where_ggn_has_full_rank():
    # batch x classes = 30 x 3 = 90 > p = 67: U^T U is singular (rank <= p),
    # K = eps I + U^T U is still positive definite and the lemma holds.
    net, w, x, y, ggn = ggn_problem(batch=30, gain=1.0, seed=1)
    A = dense(ggn) + 1e-2 * np.eye(ggn.num_params)
    f = ggn.factor(1e-2, route="woodbury")
    b = np.random.default_rng(0).standard_normal(ggn.num_params)
    ref = np.linalg.solve(A, b)
    assert np.linalg.norm(f.solve(b) - ref) <= 1e-13 * np.linalg.cond(A) * np.linalg.norm(ref)
    assert f.log_abs_det() == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-10)


# ---------------------------------------------------------------- Laplace


def reference_evidence(loss_value, G, theta, delta, n, outputs, classification, sigma=1.0):
    """laplace-torch's log_marginal_likelihood (scalar prior precision, prior
    mean 0, temperature 1) from the batch-mean loss and a dense curvature."""
    p = len(theta)
    if classification:
        s, ll = n, -n * loss_value
    else:
        c = n * outputs
        s = c / (2 * sigma**2)
        ll = -c * loss_value / (2 * sigma**2) - c * np.log(sigma * np.sqrt(2 * np.pi))
    log_prior = 0.5 * p * np.log(delta) - 0.5 * p * LN2PI - 0.5 * delta * theta @ theta
    sign, logdet = np.linalg.slogdet(s * G + delta * np.eye(p))
    assert sign == 1.0
    return ll + log_prior - 0.5 * logdet + 0.5 * p * LN2PI, logdet, ll, log_prior


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("route", ["woodbury", "lifted"])
def test_evidence_against_dense_ggn(loss, route):
    net, w, x, y, ggn = ggn_problem(loss)
    G = dense(ggn)
    sigma = None if loss == "cross_entropy" else 0.7
    lap = hinv.Laplace(net, w, x, y, route=route, sigma_noise=sigma)
    assert lap.likelihood == ("classification" if loss == "cross_entropy" else "regression")
    assert lap.sigma_noise == sigma and lap.num_params == len(w)
    for delta in [1e-2, 1.0, 30.0]:
        ev = lap.evidence(delta)
        ref, logdet, ll, lp = reference_evidence(
            net.loss(w, x, y), G, w, delta, len(x), 3, loss == "cross_entropy", sigma or 1.0
        )
        assert ev.route == route and ev.prior_precision == delta
        assert ev.log_likelihood == pytest.approx(ll, rel=1e-13)
        assert ev.log_prior == pytest.approx(lp, rel=1e-13)
        # 1e-10 relative: the target against the dense route.
        assert ev.log_det_posterior_precision == pytest.approx(logdet, rel=1e-10)
        assert ev.log_marginal_likelihood == pytest.approx(ref, rel=1e-10)
        i = ev.inertia
        assert (i.positive, i.negative, i.zero, i.uncertain) == (len(w), 0, 0, 0)


def linear_regression(seed=0, n=12, d=3, outputs=2):
    s = {"input_dim": d, "layers": [], "loss": {"kind": "mse", "outputs": outputs, "bias": True}}
    net = hinv.Network.from_spec(s)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = x @ rng.standard_normal((d, outputs)) + 0.3 * rng.standard_normal((n, outputs))
    phi = np.hstack([x, np.ones((n, 1))])
    return net, x, y, phi


def map_weights(phi, y, sigma, delta):
    """The posterior mean of Bayesian linear regression, per output."""
    A = phi.T @ phi / sigma**2 + delta * np.eye(phi.shape[1])
    W = np.linalg.solve(A, phi.T @ y / sigma**2)  # (d + 1, outputs)
    return {"loss.weight": W[:-1].T.copy(), "loss.bias": W[-1].copy()}, A


@pytest.mark.parametrize("curvature", ["ggn", "hessian"])
def test_evidence_and_predictive_of_bayesian_linear_regression(curvature):
    # A network with no hidden layer and MSE is Bayesian linear regression:
    # at the posterior mean the Laplace approximation is exact, so the
    # evidence is log N(y_k; 0, sigma^2 I + Phi Phi^T / delta) summed over
    # the outputs, and the predictive covariance of f*_k is
    # phi*^T A^-1 phi* with no covariance across outputs.
    sigma, delta = 0.4, 2.5
    net, x, y, phi = linear_regression()
    weights, A = map_weights(phi, y, sigma, delta)
    lap = hinv.Laplace(net, weights, x, y, curvature=curvature, sigma_noise=sigma)
    n = len(x)
    S = sigma**2 * np.eye(n) + phi @ phi.T / delta
    sign, logdet = np.linalg.slogdet(S)
    exact = sum(-0.5 * y[:, k] @ np.linalg.solve(S, y[:, k]) - 0.5 * logdet - 0.5 * n * LN2PI for k in range(2))
    # Both sides are sums of O(10) terms computed to ~u cond(S), cond ~ 1e2.
    assert lap.evidence(delta).log_marginal_likelihood == pytest.approx(exact, rel=1e-11)

    xs = np.random.default_rng(9).standard_normal((4, 3))
    phis = np.hstack([xs, np.ones((4, 1))])
    pred = lap.predictive(delta, xs)
    np.testing.assert_allclose(pred.mean, xs @ weights["loss.weight"].T + weights["loss.bias"], rtol=1e-13, atol=1e-13)
    var = np.einsum("si,ij,sj->s", phis, np.linalg.inv(A), phis)
    cov_ref = np.zeros((4, 2, 2))
    cov_ref[:, 0, 0] = cov_ref[:, 1, 1] = var
    assert pred.covariance.shape == (4, 2, 2)
    # cond(A) ~ 1e2: 1e-12 relative to the largest variance.
    np.testing.assert_allclose(pred.covariance, cov_ref, rtol=0, atol=1e-12 * var.max())
    np.testing.assert_allclose(pred.variance, cov_ref[:, [0, 1], [0, 1]], rtol=0, atol=1e-12 * var.max())
    assert pred.noise_variance == pytest.approx(sigma**2, rel=1e-15)
    with pytest.raises(hinv.InvalidArgumentError, match="regression"):
        pred.probit()


def twin_jacobian(net_spec, w, xs):
    """Outputs f(x*) and Jacobians J* of a network's loss-layer outputs,
    recovered from a mean-squared-error twin (same layers and head weights):
    on one sample its loss is |f - t|^2 / C and its gradient 2 J^T (f - t) / C,
    so targets 0 and e_k give f_k and the row J_k exactly (up to rounding)."""
    c = net_spec["loss"]["classes"]
    twin_spec = dict(net_spec, loss={"kind": "mse", "outputs": c, "bias": net_spec["loss"]["bias"]})
    twin = hinv.Network.from_spec(twin_spec)
    means, jacs = [], []
    for xi in xs:
        xi = xi[None, :]
        zero = hinv.Curvature(twin, w, xi, np.zeros((1, c)))
        f, J = np.empty(c), np.empty((c, len(w)))
        for k in range(c):
            e = np.zeros((1, c))
            e[0, k] = 1.0
            ek = hinv.Curvature(twin, w, xi, e)
            f[k] = (c * (zero.loss - ek.loss) + 1.0) / 2.0
            J[k] = c / 2.0 * (zero.gradient - ek.gradient)
        means.append(f)
        jacs.append(J)
    return np.array(means), np.array(jacs)


@pytest.mark.parametrize("route", ["woodbury", "lifted"])
def test_classification_predictive_against_dense_ggn(route):
    s = spec(loss="cross_entropy", act="tanh")
    net, w, x, y = problem(s, seed=5, gain=2.0)
    G = dense(hinv.Curvature(net, w, x, y, curvature="ggn"))
    lap = hinv.Laplace(net, w, x, y, route=route)
    assert lap.scale == len(x)
    delta = 0.5
    xs = np.random.default_rng(11).standard_normal((3, s["input_dim"]))
    pred = lap.predictive(delta, xs)
    assert pred.route == route and pred.noise_variance == 0.0
    f, J = twin_jacobian(s, w, xs)
    P = len(x) * G + delta * np.eye(len(w))
    cov = np.einsum("sij,sjk->sik", J, np.linalg.solve(P, np.transpose(J, (0, 2, 1))))
    np.testing.assert_allclose(pred.mean, f, rtol=0, atol=1e-12 * np.abs(f).max())
    # Solves backward stable to 64 u, cond(P) below 1e3 here.
    np.testing.assert_allclose(pred.covariance, cov, rtol=0, atol=1e-11 * np.abs(cov).max())
    var = cov[:, range(3), range(3)]
    z = f / np.sqrt(1 + np.pi / 8 * var)
    probit = np.exp(z - z.max(axis=1, keepdims=True))
    probit /= probit.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(pred.probit(), probit, rtol=1e-12, atol=1e-15)

    # Monte Carlo: hinv's 4000 draws against numpy's 100000 of the same
    # Gaussian; the standard error of a mean of probabilities is at most
    # 0.5 / sqrt(4000) = 0.008, so 0.04 is five of them.
    mc = pred.sample_probabilities(4000, seed=1)
    np.testing.assert_allclose(mc.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    rng = np.random.default_rng(0)
    for i in range(3):
        draws = rng.multivariate_normal(f[i], cov[i], size=100_000)
        e = np.exp(draws - draws.max(axis=1, keepdims=True))
        assert np.abs(mc[i] - (e / e.sum(axis=1, keepdims=True)).mean(axis=0)).max() < 0.04
    np.testing.assert_array_equal(mc, pred.sample_probabilities(4000, seed=1))
    assert not np.array_equal(mc, pred.sample_probabilities(4000, seed=2))


def test_optimize_prior_precision_against_dense_root():
    # For the GGN the evidence is concave in delta; its maximizer solves
    # P / delta = |theta|^2 + sum_i 1 / (s lambda_i + delta), found here by
    # bisection on log delta with numpy's eigenvalues of the dense GGN.
    net, w, x, y, ggn = ggn_problem()
    lam = np.linalg.eigvalsh(dense(ggn))
    s, p = len(x), len(w)

    def slope(d):
        return p / d - w @ w - np.sum(1.0 / (s * lam + d))

    lo, hi = 1e-4, 1e4
    assert slope(lo) > 0 > slope(hi)
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if slope(mid) > 0 else (lo, mid)
    root = np.sqrt(lo * hi)
    search = hinv.Laplace(net, w, x, y).optimize_prior_precision(lower=1e-4, upper=1e4, rtol=1e-8)
    assert not search.at_boundary and search.evaluations > 10
    # Golden section to a log-width of 1e-8; the flat top of the evidence
    # (curvature ~p in log delta, values rounded at ~1e-13) moves the maximum
    # by at most ~1e-7 relative.
    assert search.best.prior_precision == pytest.approx(root, rel=1e-5)
    assert search.best.log_marginal_likelihood >= hinv.Laplace(net, w, x, y).evidence(root).log_marginal_likelihood - 1e-9
    edge = hinv.Laplace(net, w, x, y).optimize_prior_precision(lower=root * 10, upper=root * 100, rtol=1e-4)
    assert edge.at_boundary


def test_laplace_errors():
    net, w, x, y = problem(spec(act="tanh"), seed=5, gain=3.0)
    H = dense(hinv.Curvature(net, w, x, y))
    assert np.linalg.eigvalsh(H).min() * len(x) < -1e-2  # an indefinite Hessian
    lap_h = hinv.Laplace(net, w, x, y, curvature="hessian")
    with pytest.raises(hinv.NotPositiveDefiniteError) as e:
        lap_h.evidence(1e-3)
    assert isinstance(e.value, ArithmeticError) and e.value.prior_precision == 1e-3
    assert e.value.inertia.negative > 0 and "positive definite" in str(e.value)
    lap = hinv.Laplace(net, w, x, y)
    for bad in [0.0, -1.0, float("nan"), float("inf")]:
        with pytest.raises(hinv.InvalidArgumentError):
            lap.evidence(bad)
    with pytest.raises(hinv.InvalidArgumentError):
        lap.optimize_prior_precision(lower=10.0, upper=1.0)
    with pytest.raises(hinv.ShapeError, match=r"shape \(n, 3\)"):
        lap.predictive(1.0, np.ones((2, 4)))
    with pytest.raises(hinv.NonFiniteError, match="test inputs"):
        lap.predictive(1.0, np.array([[0.0, np.nan, 1.0]]))
    empty = lap.predictive(1.0, np.zeros((0, 3)))
    assert empty.mean.shape == (0, 3) and empty.covariance.shape == (0, 3, 3) and empty.probit().shape == (0, 3)
    with pytest.raises(hinv.InvalidArgumentError, match="sigma_noise"):
        hinv.Laplace(net, w, x, y, sigma_noise=1.0)
    with pytest.raises(hinv.InvalidArgumentError, match="curvature must be"):
        hinv.Laplace(net, w, x, y, curvature="kfac")
    with pytest.raises(hinv.InvalidArgumentError, match="route must be"):
        hinv.Laplace(net, w, x, y, route="dense")
    with pytest.raises(hinv.InvalidArgumentError):
        lap.predictive(1.0, x).sample_probabilities(0)
    for obj in [hinv.Laplace, hinv.Laplace.evidence, hinv.Laplace.predictive, hinv.Predictive.probit]:
        assert obj.__doc__ and len(obj.__doc__) > 20
    assert "classification" in repr(lap)
