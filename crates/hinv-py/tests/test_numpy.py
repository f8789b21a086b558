"""hinv from Python against independent numpy oracles: finite differences of
the loss (gradient) and of the gradient (dense Hessian), numpy.linalg.solve,
slogdet and eigvalsh on the dense Hessian. numpy only: these run in CI."""

import numpy as np
import pytest
from conftest import ACTIVATIONS, problem, spec

import hinv


def fd_gradient(net, w, x, y, h=1e-6):
    g = np.empty_like(w)
    for i in range(len(w)):
        e = np.zeros_like(w)
        e[i] = h
        g[i] = (net.loss(w + e, x, y) - net.loss(w - e, x, y)) / (2 * h)
    return g


def fd_hessian(net, w, x, y, h=1e-5):
    """Central differences of hinv's gradient (itself checked against the loss)."""
    n = len(w)
    H = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = h
        H[:, i] = (hinv.Curvature(net, w + e, x, y).gradient - hinv.Curvature(net, w - e, x, y).gradient) / (2 * h)
    return H


def dense_hessian(curv):
    """H from hinv's exact HVP with the identity (checked against fd_hessian)."""
    return curv.hvp(np.eye(curv.num_params))


# Smooth activations only: relu's kink and the softplus threshold make
# finite differences straddle a non-differentiable point.
SMOOTH = ["identity", "tanh", "sigmoid", "square", "gelu", {"kind": "gelu", "approximate": "tanh"}, "softplus"]


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("act", SMOOTH)
def test_gradient_and_hessian_match_finite_differences(loss, act):
    net, w, x, y = problem(spec(loss=loss, act=act), gain=1.5)
    curv = hinv.Curvature(net, w, x, y)
    assert curv.loss == pytest.approx(net.loss(w, x, y), rel=1e-14)
    # Central differences with h = 1e-6 on an O(1) loss: truncation ~h^2 |f'''|,
    # rounding ~1e-16 / h; 1e-7 absolute leaves a wide margin for both.
    np.testing.assert_allclose(curv.gradient, fd_gradient(net, w, x, y), rtol=0, atol=1e-7)
    H = dense_hessian(curv)
    np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-13 * np.abs(H).max())
    # h = 1e-5 on the gradient: error ~1e-10 |g'''| + 1e-16/1e-5 ~ 1e-10, so 1e-7 relative to max|H|.
    np.testing.assert_allclose(H, fd_hessian(net, w, x, y), rtol=0, atol=1e-7 * max(1.0, np.abs(H).max()))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_hvp_columns_match_single_products(act):
    net, w, x, y = problem(spec(act=act), seed=3)
    curv = hinv.Curvature(net, w, x, y)
    V = np.random.default_rng(1).standard_normal((curv.num_params, 3))
    HV = curv.hvp(V)
    assert HV.shape == V.shape
    for j in range(3):
        np.testing.assert_allclose(HV[:, j], curv.hvp(V[:, j]), rtol=1e-13, atol=1e-15)


def solve_error_bound(A):
    # A backward-stable solve (hinv guarantees backward error <= 64 eps_mach)
    # has forward error up to ~ backward error * cond; numpy's LU likewise.
    # 1e-13 * cond covers both with margin.
    return 1e-13 * np.linalg.cond(A)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("gain", [1.0, 3.0])
@pytest.mark.parametrize("eps", [1e-1, 1e-3, -1e-2])
def test_solve_logdet_inertia_against_numpy(loss, gain, eps):
    net, w, x, y = problem(spec(loss=loss), seed=5, gain=gain)
    curv = hinv.Curvature(net, w, x, y)
    A = dense_hessian(curv) + eps * np.eye(curv.num_params)
    evals = np.linalg.eigvalsh(A)
    if np.abs(evals).min() < 1e-9 * np.abs(evals).max():
        pytest.skip("H + eps I numerically singular at this eps")
    f = curv.factor(eps)
    rng = np.random.default_rng(7)
    b = rng.standard_normal(curv.num_params)
    x1 = f.solve(b)
    ref = np.linalg.solve(A, b)
    assert np.linalg.norm(x1 - ref) <= solve_error_bound(A) * np.linalg.norm(ref)
    B = rng.standard_normal((curv.num_params, 4))
    sol = f.solve_with(B)
    refB = np.linalg.solve(A, B)
    assert sol.x.shape == B.shape
    assert np.linalg.norm(sol.x - refB) <= solve_error_bound(A) * np.linalg.norm(refB)
    assert sol.report.within_tolerance and sol.report.backward_error <= 64 * np.finfo(float).eps
    sign, logabs = np.linalg.slogdet(A)
    d = f.log_det()
    assert d.sign == sign
    # log|det| accurate to ~eps_mach cond relative to its magnitude (docs/numerics.md).
    assert abs(d.log_abs - logabs) <= 1e-12 * max(1.0, abs(logabs)) + solve_error_bound(A)
    assert f.log_abs_det() == d.log_abs
    inertia = f.inertia()
    neg, pos = int((evals < 0).sum()), int((evals > 0).sum())
    assert abs(inertia.negative - neg) <= inertia.uncertain
    assert abs(inertia.positive - pos) <= inertia.uncertain
    assert inertia.positive + inertia.negative + inertia.zero == curv.num_params


def test_count_eigenvalues_below_against_eigvalsh():
    net, w, x, y = problem(spec(), seed=2, gain=2.5)
    curv = hinv.Curvature(net, w, x, y)
    evals = np.linalg.eigvalsh(dense_hessian(curv))
    certified = 0
    for t in [-1.0, -1e-2, 1e-3, 0.1, 1.0]:
        c = curv.count_eigenvalues_below(t)
        assert abs(c.count - int((evals < t).sum())) <= c.uncertain
        certified += c.uncertain == 0
    assert certified >= 3  # the test must mean something: most counts certified


def test_ill_conditioned_deep_tanh():
    """A deep saturated tanh network: cond(H + eps I) ~1e6 and beyond."""
    layers = [{"kind": "dense", "out": 5, "activation": "tanh", "bias": False} for _ in range(8)]
    s = {"input_dim": 4, "layers": layers, "loss": {"kind": "cross_entropy", "classes": 3, "bias": False}}
    net, w, x, y = problem(s, batch=3, seed=11, gain=2.5)
    curv = hinv.Curvature(net, w, x, y)
    eps = 1e-4
    A = dense_hessian(curv) + eps * np.eye(curv.num_params)
    assert np.linalg.cond(A) > 1e5
    g = curv.gradient
    ref = np.linalg.solve(A, g)
    got = curv.factor(eps).solve(g)
    assert np.linalg.norm(got - ref) <= solve_error_bound(A) * np.linalg.norm(ref)


def test_weights_as_dict_list_flat_and_float32_agree(small):
    net, w, x, y = small
    d = net.unflatten(w)
    assert [k for k, _ in net.parameter_shapes()] == list(d)
    assert [tuple(s) for _, s in net.parameter_shapes()] == [v.shape for v in d.values()]
    g = hinv.Curvature(net, w, x, y).gradient
    np.testing.assert_array_equal(hinv.Curvature(net, d, x, y).gradient, g)
    np.testing.assert_array_equal(hinv.Curvature(net, list(d.values()), x, y).gradient, g)
    np.testing.assert_array_equal(net.flatten(d), w)
    w32 = w.astype(np.float32)
    np.testing.assert_array_equal(
        hinv.Curvature(net, w32, x, y).gradient, hinv.Curvature(net, w32.astype(np.float64), x, y).gradient
    )


def test_strided_inputs_are_read_in_logical_order(small):
    net, w, x, y = small
    curv = hinv.Curvature(net, w, x, y)
    wide = np.zeros((x.shape[0], 2 * x.shape[1]))
    wide[:, ::2] = x
    np.testing.assert_array_equal(hinv.Curvature(net, w, wide[:, ::2], y).gradient, curv.gradient)
    np.testing.assert_array_equal(hinv.Curvature(net, w, np.asfortranarray(x), y).gradient, curv.gradient)
    v = np.random.default_rng(0).standard_normal((curv.num_params, 2))
    np.testing.assert_allclose(curv.hvp(np.asfortranarray(v)[:, 1]), curv.hvp(v[:, 1].copy()), rtol=1e-15)
    np.testing.assert_array_equal(curv.hvp(v[::-1][::-1]), curv.hvp(v))


def test_spec_round_trip_and_repr(small):
    net = small[0]
    again = hinv.Network.from_spec(net.spec)
    assert again.spec == net.spec and again.num_params == net.num_params
    import json

    assert hinv.Network.from_spec(json.dumps(net.spec)).spec == net.spec
    assert "hinv.Network.from_spec" in repr(net)
    assert net.loss_kind == "cross_entropy" and net.input_dim == 3


def test_errors_are_typed_and_carry_the_rust_message(small):
    net, w, x, y = small
    curv = hinv.Curvature(net, w, x, y)
    f = curv.factor(1e-2)
    with pytest.raises(hinv.ShapeError, match=r"the right-hand side has 3 rows, but the network has \d+ parameters") as e:
        f.solve(np.ones(3))
    assert e.value.found == 3 and e.value.expected == curv.num_params
    assert isinstance(e.value, hinv.HinvError) and isinstance(e.value, ValueError)
    b = np.ones(curv.num_params)
    b[4] = np.nan
    with pytest.raises(hinv.NonFiniteError, match="non-finite") as e:
        f.solve(b)
    assert e.value.index == 4
    with pytest.raises(hinv.InvalidArgumentError, match="eps must be a finite number"):
        curv.factor(float("inf"))
    with pytest.raises(hinv.InvalidArgumentError):
        curv.count_eigenvalues_below(float("nan"))
    with pytest.raises(hinv.SpecError, match="missing field `layers`"):
        hinv.Network.from_spec({"input_dim": 3})
    with pytest.raises(hinv.SpecError, match="unknown field"):
        hinv.Network.from_spec({**net.spec, "extra": 1})
    with pytest.raises(hinv.InvalidArgumentError, match="input_dim must be positive"):
        hinv.Network.from_spec({**net.spec, "input_dim": 0})
    d = net.unflatten(w)
    with pytest.raises(hinv.ShapeError, match="missing tensor `loss.bias`"):
        hinv.Curvature(net, {k: v for k, v in d.items() if k != "loss.bias"}, x, y)
    with pytest.raises(hinv.ShapeError, match="unexpected tensor `foo`"):
        hinv.Curvature(net, {**d, "foo": np.zeros(1)}, x, y)
    with pytest.raises(hinv.ShapeError, match="has shape"):
        hinv.Curvature(net, {**d, "loss.bias": np.zeros(7)}, x, y)
    with pytest.raises(hinv.ShapeError):
        hinv.Curvature(net, w[:-1], x, y)
    with pytest.raises(hinv.NonFiniteError):
        hinv.Curvature(net, np.full_like(w, np.inf), x, y)
    with pytest.raises(hinv.ShapeError, match="integer class indices"):
        hinv.Curvature(net, w, x, y.astype(float))
    with pytest.raises(hinv.ShapeError, match="class index 9"):
        hinv.Curvature(net, w, x, np.full_like(y, 9))
    with pytest.raises(hinv.ShapeError, match="negative"):
        hinv.Curvature(net, w, x, -np.ones_like(y))
    with pytest.raises(hinv.ShapeError):
        hinv.Curvature(net, w, x[:, :2], y)
    with pytest.raises(hinv.ShapeError, match="1-D"):
        curv.hvp(np.ones((2, 2, 2)))
    with pytest.raises(hinv.TooLargeError):
        curv.factor(1e-2, memory_limit=10)


def test_singular_and_ill_conditioned_errors():
    """A linear model on inputs with a repeated column: H has exact zero
    eigenvalues, so H + 0 I is singular."""
    s = {"input_dim": 2, "layers": [], "loss": {"kind": "mse", "outputs": 1, "bias": False}}
    net = hinv.Network.from_spec(s)
    x = np.array([[1.0, 1.0], [2.0, 2.0], [-1.0, -1.0]])
    y = np.array([[1.0], [0.0], [2.0]])
    curv = hinv.Curvature(net, np.array([0.5, -0.25]), x, y)
    with pytest.raises((hinv.SingularError, hinv.IllConditionedError)) as e:
        curv.factor(0.0).solve(curv.gradient)
    assert isinstance(e.value, ArithmeticError) and e.value.eps == 0.0
    f = curv.factor(0.0, allow_singular=True)
    i = f.inertia()
    assert i.positive == 1 and (i.zero == 1 or i.uncertain >= 1)
    sol = f.solve_with(curv.gradient, accept_inexact=True) if i.zero == 0 else None
    if sol is not None:
        assert isinstance(sol.report.within_tolerance, bool)


def test_gil_is_released_during_factor():
    """Two threads factoring at once finish with the same answers (and do not deadlock)."""
    import threading

    net, w, x, y = problem(spec(width=6), batch=8, seed=4)
    curv = hinv.Curvature(net, w, x, y)
    g = curv.gradient
    out = {}

    def run(k):
        out[k] = curv.factor(1e-2).solve(g)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(out[0], out[1])


def test_docstrings_and_stub_present():
    import pathlib

    for obj in [hinv.Network, hinv.Curvature, hinv.Factorization, hinv.Curvature.hvp, hinv.Factorization.solve]:
        assert obj.__doc__ and len(obj.__doc__) > 20
    pkg = pathlib.Path(hinv.__file__).parent
    assert (pkg / "py.typed").exists() and (pkg / "_hinv.pyi").exists()


def test_extreme_eigenvalues_and_interval_counts_against_eigvalsh():
    net, w, x, y = problem(spec(), seed=2, gain=2.5)
    curv = hinv.Curvature(net, w, x, y)
    evals = np.linalg.eigvalsh(dense_hessian(curv))
    scale = np.abs(evals).max()
    for e, ref in [(curv.lambda_min(), evals[0]), (curv.lambda_max(), evals[-1])]:
        # The bracket is certified by inertia; numpy's eigvalsh is accurate to
        # ~1e-15 ||H||, so it must lie inside the bracket widened by that.
        assert e.lower - 1e-13 * scale <= ref <= e.upper + 1e-13 * scale
        assert abs(e.value - ref) <= 1e-9 * scale
        if e.eigenvectors.shape[1]:
            v = e.eigenvectors[:, 0]
            assert np.linalg.norm(curv.hvp(v) - e.value * v) <= 1e-6 * scale * np.linalg.norm(v)
    c = curv.count_in(-0.5, 0.5)
    assert abs(c.count - int(((evals >= -0.5) & (evals < 0.5)).sum())) <= c.uncertain


@pytest.mark.parametrize("radius", [1e-2, 1.0, 100.0])
def test_trust_region_step_against_dense_secular_equation(radius):
    net, w, x, y = problem(spec(), seed=6, gain=2.0)
    curv = hinv.Curvature(net, w, x, y)
    H, g = dense_hessian(curv), curv.gradient
    s = curv.trust_region_step(radius)
    assert s.converged and s.kind in ("interior", "boundary", "hard_case")
    assert np.linalg.norm(s.p) <= radius * (1 + 1e-10)
    # KKT conditions of the trust-region problem, checked with the dense H:
    # (H + lam I) p = -g, lam >= 0, H + lam I positive semidefinite.
    lam = s.lam
    assert lam >= 0 and np.linalg.eigvalsh(H + lam * np.eye(len(g)))[0] >= -1e-9 * np.abs(H).max()
    assert np.linalg.norm(H @ s.p + lam * s.p + g) <= 1e-8 * np.linalg.norm(g)
    model = g @ s.p + 0.5 * s.p @ H @ s.p
    assert -model == pytest.approx(s.model_decrease, rel=1e-8, abs=1e-14)


def test_gauss_newton_curvature():
    # With no hidden layer the outputs are linear in the weights, so for the
    # mean squared error GGN = H exactly (the Hessian route is checked
    # against finite differences above); 1e-13 relative covers the two
    # routes' different rounding.
    s = {"input_dim": 3, "layers": [], "loss": {"kind": "mse", "outputs": 2, "bias": True}}
    net, w, x, y = problem(s, seed=4)
    H = dense_hessian(hinv.Curvature(net, w, x, y))
    G = dense_hessian(hinv.Curvature(net, w, x, y, curvature="ggn"))
    np.testing.assert_allclose(G, H, rtol=0, atol=1e-13 * np.abs(H).max())
    # On a curved network the GGN is positive semi-definite where H is not,
    # and GGN + eps I is certified positive definite.
    net, w, x, y = problem(spec(loss="cross_entropy", act="tanh"), gain=2.0, seed=5)
    ggn = hinv.Curvature(net, w, x, y, curvature="ggn")
    G = dense_hessian(ggn)
    ev = np.linalg.eigvalsh(0.5 * (G + G.T))
    # Eigenvalues of a PSD matrix computed with error ~ p u ||G||.
    assert ev.min() >= -1e-12 * np.abs(ev).max()
    i = ggn.factor(1e-3).inertia()
    assert (i.negative, i.zero, i.uncertain) == (0, 0, 0)
    b = np.random.default_rng(0).standard_normal(ggn.num_params)
    x_ = ggn.factor(1e-3).solve(b)
    A = G + 1e-3 * np.eye(len(b))
    ref = np.linalg.solve(A, b)
    # Both solves are backward stable: they differ by a few u cond(A).
    assert np.linalg.norm(x_ - ref) <= 100 * 2.2e-16 * np.linalg.cond(A) * np.linalg.norm(ref)
    with pytest.raises(hinv.InvalidArgumentError):
        hinv.Curvature(net, w, x, y, curvature="fisher")


@pytest.mark.parametrize("gain", [1.0, 3.0])
def test_solve_shifted_against_numpy(gain):
    # A factorization at eps reused for H + eps' I, checked against a dense
    # solve of H + eps' I; the same bound as a plain solve (the same
    # backward-error contract).
    net, w, x, y = problem(spec(), seed=11, gain=gain)
    curv = hinv.Curvature(net, w, x, y)
    H = dense_hessian(curv)
    f = curv.factor(0.1)
    rng = np.random.default_rng(3)
    b = rng.standard_normal((curv.num_params, 2))
    A = H + 0.102 * np.eye(curv.num_params)
    sol = f.solve_shifted(0.102, b)
    ref = np.linalg.solve(A, b)
    assert sol.report.method == "shifted" and sol.report.within_tolerance
    assert np.linalg.norm(sol.x - ref) <= solve_error_bound(A) * np.linalg.norm(ref)
    # Far away: refused with a typed error (or, if the budget sufficed,
    # answered within the tolerance), never a silent inexact answer.
    try:
        far = f.solve_shifted(100.0, b[:, 0])
    except hinv.ShiftTooFarError as e:
        assert e.shifted_eps == 100.0 and e.eps == 0.1 and "afresh" in str(e)
    else:
        A = H + 100.0 * np.eye(curv.num_params)
        ref = np.linalg.solve(A, b[:, 0])
        assert np.linalg.norm(far.x - ref) <= solve_error_bound(A) * np.linalg.norm(ref)


def test_elimination_choice_reaches_every_factorization():
    """``elimination=`` selects the block elimination of the lifted system;
    both give numpy's answers, and the spectral tools and the Laplace
    posterior accept it."""
    net, w, x, y = problem(spec(), seed=2, gain=2.5)
    curv = hinv.Curvature(net, w, x, y)
    eps = 1e-3
    A = dense_hessian(curv) + eps * np.eye(curv.num_params)
    evals = np.linalg.eigvalsh(A)
    sign, logabs = np.linalg.slogdet(A)
    g = curv.gradient
    ref = np.linalg.solve(A, g)
    for name in ["interleaved", "parameters_first"]:
        f = curv.factor(eps, elimination=name)
        assert f.elimination == name
        assert np.linalg.norm(f.solve(g) - ref) <= solve_error_bound(A) * np.linalg.norm(ref)
        d = f.log_det()
        assert d.sign == sign and abs(d.log_abs - logabs) <= 1e-12 * abs(logabs) + solve_error_bound(A)
        i = f.inertia()
        assert abs(i.negative - int((evals < 0).sum())) <= i.uncertain
    assert curv.factor(eps).elimination in ("interleaved", "parameters_first")
    assert hinv.Curvature(net, w, x, y, curvature="ggn").factor(eps, route="woodbury").elimination is None
    scale = np.abs(evals).max()
    below = curv.count_eigenvalues_below(-eps, elimination="interleaved")
    assert abs(below.count - int((evals < 0).sum())) <= below.uncertain
    inside = curv.count_in(-0.5, 0.5, elimination="parameters_first")
    assert abs(inside.count - int(((evals - eps >= -0.5) & (evals - eps < 0.5)).sum())) <= inside.uncertain
    low = curv.lambda_min(elimination="interleaved")
    assert low.lower - 1e-13 * scale <= evals[0] - eps <= low.upper + 1e-13 * scale
    assert curv.trust_region_step(1.0, elimination="interleaved").converged
    # Both eliminations of the lifted route give one evidence.
    laplace = [hinv.Laplace(net, w, x, y, route="lifted", elimination=e) for e in ["interleaved", "parameters_first"]]
    ev = [lap.evidence(1.0).log_marginal_likelihood for lap in laplace]
    assert ev[0] == pytest.approx(ev[1], rel=1e-10)
    ggn = hinv.Curvature(net, w, x, y, curvature="ggn")
    refused = "with the Woodbury route, which factors no lifted system"
    with pytest.raises(hinv.InvalidArgumentError, match=refused):
        ggn.factor(eps, route="woodbury", elimination="interleaved")
    with pytest.raises(hinv.InvalidArgumentError, match=refused) as e:
        hinv.Laplace(net, w, x, y, route="woodbury", elimination="parameters_first")
    # In Python's spelling, which the keyword accepts.
    assert 'elimination="parameters_first"' in str(e.value) and 'route="lifted"' in str(e.value)
    # Alone, an elimination takes the lifted route (it is one of the lifted
    # system), where the cost would take the Woodbury one.
    assert ggn.factor(eps).route == "woodbury"
    f = ggn.factor(eps, elimination="interleaved")
    assert (f.route, f.elimination) == ("lifted", "interleaved")
    for bad in ["lifted", "parameters-first"]:
        with pytest.raises(hinv.InvalidArgumentError, match='"auto", "interleaved" or "parameters_first"'):
            curv.factor(eps, elimination=bad)
