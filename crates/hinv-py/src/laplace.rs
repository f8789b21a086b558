//! `hinv.Laplace` (Rust: `hinv::laplace`): the Laplace approximation of a
//! trained network with the exact curvature: evidence, the prior precision
//! maximizing it, and the linearized predictive. Every long call releases
//! the GIL.

use hinv::laplace::{Evidence as RsEvidence, Laplace, LaplaceOptions, Likelihood, Predictive as RsPredictive};
use numpy::ndarray::{Array2, Array3};
use numpy::{IntoPyArray, PyArray2, PyArray3};
use pyo3::prelude::*;

use crate::curvature::{parse_elimination, parse_kind, parse_route};
use crate::errors::{hinv_err, invalid_arg, shape_err};
use crate::factorization::{route_name, Inertia};
use crate::network::PyNetwork;

/// The Laplace approximation of a network at trained weights on its training
/// data, with the full curvature (no Kronecker or diagonal approximation):
/// laplace-torch's ``hessian_structure="full"`` conventions
/// (docs/laplace.md).
///
/// ``Laplace(net, weights, x, y)`` computes the curvature once; each
/// ``evidence``/``predictive`` call at a prior precision ``delta`` is one
/// factorization of the posterior precision ``s C + delta I`` (``C`` the
/// curvature of the mean loss, ``s = N`` for cross-entropy,
/// ``N outputs / (2 sigma_noise^2)`` for MSE).
///
/// - ``curvature``: ``"ggn"`` (default, the generalized Gauss–Newton matrix)
///   or ``"hessian"`` (then ``s H + delta I`` must be positive definite:
///   NotPositiveDefiniteError otherwise).
/// - ``sigma_noise``: the noise standard deviation of the Gaussian
///   likelihood of an MSE network (default 1.0); not allowed for
///   cross-entropy (a categorical likelihood).
/// - ``route``: ``"auto"`` (default), ``"lifted"`` or ``"woodbury"``
///   (``Curvature.factor``).
/// - ``memory_limit``: bytes allowed for the derivative blocks and factors.
/// - ``elimination``: ``"auto"`` (default), ``"interleaved"`` or
///   ``"parameters_first"`` (``Curvature.factor``); ``"interleaved"``
///   checks the posterior's inertia (within ``memory_limit``) where ``"auto"`` may leave
///   it uncertain (wide layers, the Hessian).
#[pyclass(module = "hinv", frozen, name = "Laplace")]
pub struct PyLaplace {
    inner: Laplace,
    input_dim: usize,
    outputs: usize,
}

/// The log marginal likelihood (Laplace approximation) and its parts at one
/// prior precision: ``log_marginal_likelihood = log_likelihood + log_prior -
/// log_det_posterior_precision / 2 + P/2 log(2 pi)``.
#[pyclass(module = "hinv", frozen, get_all)]
#[derive(Clone)]
pub struct Evidence {
    /// ``delta``.
    pub prior_precision: f64,
    /// The evidence ``log p(D)`` (Laplace approximation).
    pub log_marginal_likelihood: f64,
    /// ``log p(D | theta)``.
    pub log_likelihood: f64,
    /// ``log p(theta)`` with its normaliser.
    pub log_prior: f64,
    /// ``log det(s C + delta I)``.
    pub log_det_posterior_precision: f64,
    /// ``"lifted"`` or ``"woodbury"``.
    pub route: &'static str,
    /// The inertia of the posterior precision (all positive, certified).
    pub inertia: Inertia,
}

#[pymethods]
impl Evidence {
    fn __repr__(&self) -> String {
        format!(
            "Evidence(prior_precision={:e}, log_marginal_likelihood={:.12e}, route={:?})",
            self.prior_precision, self.log_marginal_likelihood, self.route
        )
    }
}

fn evidence(e: RsEvidence) -> Evidence {
    let i = e.inertia;
    Evidence {
        prior_precision: e.prior_precision,
        log_marginal_likelihood: e.log_marginal_likelihood,
        log_likelihood: e.log_likelihood,
        log_prior: e.log_prior,
        log_det_posterior_precision: e.log_det_posterior_precision,
        route: route_name(e.route),
        inertia: Inertia { positive: i.positive, negative: i.negative, zero: i.zero, uncertain: i.uncertain },
    }
}

/// The result of ``Laplace.optimize_prior_precision``: the evidence at the
/// best prior precision found, the factorizations spent, and whether the
/// maximum sits at an end of the interval (then widen it).
#[pyclass(module = "hinv", frozen, get_all)]
pub struct PriorSearch {
    /// The evidence at the best prior precision (``best.prior_precision``).
    pub best: Evidence,
    /// Factorizations used.
    pub evaluations: usize,
    /// True when the maximum is at an end of ``[lower, upper]``.
    pub at_boundary: bool,
}

#[pymethods]
impl PriorSearch {
    fn __repr__(&self) -> String {
        format!(
            "PriorSearch(best={}, evaluations={}, at_boundary={})",
            self.best.__repr__(),
            self.evaluations,
            if self.at_boundary { "True" } else { "False" }
        )
    }
}

/// The linearized (GLM) predictive of the outputs ``f*`` of new inputs:
/// ``mean`` ``(n, C)``, ``covariance`` ``(n, C, C)`` (per sample
/// ``J* (s C + delta I)^-1 J*^T``), ``variance`` its diagonal ``(n, C)``,
/// ``noise_variance`` (``sigma_noise^2`` for regression: the predictive of
/// ``y*`` adds it to the diagonal; 0 for classification) and ``route``.
#[pyclass(module = "hinv", frozen)]
pub struct Predictive {
    inner: RsPredictive,
    classification: bool,
    /// `C`, kept for the shapes of an empty batch.
    outputs: usize,
}

#[pymethods]
impl Predictive {
    /// ``f*(x)``, ``(n, C)`` (a new array).
    #[getter]
    fn mean<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        rows(py, &self.inner.mean, self.outputs)
    }

    /// The output covariances, ``(n, C, C)`` (a new array).
    #[getter]
    fn covariance<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray3<f64>> {
        let (n, c) = (self.inner.covariance.len(), self.outputs);
        let flat: Vec<f64> = self.inner.covariance.iter().flatten().flatten().copied().collect();
        Array3::from_shape_vec((n, c, c), flat).unwrap_or_else(|_| Array3::zeros((n, c, c))).into_pyarray(py)
    }

    /// The output variances (the covariances' diagonals), ``(n, C)``.
    #[getter]
    fn variance<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        let d: Vec<Vec<f64>> = self.inner.covariance.iter().map(|s| (0..s.len()).map(|k| s[k][k]).collect()).collect();
        rows(py, &d, self.outputs)
    }

    /// ``sigma_noise^2`` for regression, 0 for classification.
    #[getter]
    fn noise_variance(&self) -> f64 {
        self.inner.noise_variance
    }

    /// ``"lifted"`` or ``"woodbury"``: the route of the solves.
    #[getter]
    fn route(&self) -> &'static str {
        route_name(self.inner.route)
    }

    /// Class probabilities ``(n, C)`` by the probit approximation
    /// (laplace-torch's ``link_approx="probit"``):
    /// ``softmax(mean / sqrt(1 + pi/8 variance))``. Classification only.
    fn probit<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.classification_only(py, "probit")?;
        Ok(rows(py, &self.inner.probit(), self.outputs))
    }

    /// Class probabilities ``(n, C)`` by Monte Carlo (laplace-torch's
    /// ``link_approx="mc"``): the mean of ``softmax(f)`` over ``samples``
    /// draws of ``f ~ N(mean, covariance)``, reproducible for a ``seed``.
    /// Classification only.
    #[pyo3(signature = (samples = 1000, *, seed = 0))]
    fn sample_probabilities<'py>(
        &self,
        py: Python<'py>,
        samples: usize,
        seed: u64,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.classification_only(py, "sample_probabilities")?;
        if samples == 0 {
            return Err(invalid_arg(py, "samples must be at least 1".into()));
        }
        let p = py.detach(|| self.inner.sample_probabilities(samples, seed)).map_err(|e| hinv_err(py, e))?;
        Ok(rows(py, &p, self.outputs))
    }

    fn __repr__(&self) -> String {
        format!(
            "<hinv.Predictive: {} samples x {} outputs, route {}>",
            self.inner.mean.len(),
            self.outputs,
            self.route()
        )
    }
}

impl Predictive {
    fn classification_only(&self, py: Python<'_>, what: &str) -> PyResult<()> {
        if self.classification {
            Ok(())
        } else {
            Err(invalid_arg(
                py,
                format!("{what} gives class probabilities: a cross-entropy network's only (this one is a regression)"),
            ))
        }
    }
}

/// Rows of length `c` as an `(n, c)` array.
fn rows<'py>(py: Python<'py>, r: &[Vec<f64>], c: usize) -> Bound<'py, PyArray2<f64>> {
    let n = r.len();
    let flat: Vec<f64> = r.iter().flatten().copied().collect();
    Array2::from_shape_vec((n, c), flat).unwrap_or_else(|_| Array2::zeros((n, c))).into_pyarray(py)
}

#[pymethods]
impl PyLaplace {
    #[new]
    #[pyo3(signature = (net, weights, x, y, *, curvature = "ggn", sigma_noise = None, route = "auto", memory_limit = None, elimination = "auto"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        net: PyRef<'_, PyNetwork>,
        weights: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        curvature: &str,
        sigma_noise: Option<f64>,
        route: &str,
        memory_limit: Option<u64>,
        elimination: &str,
    ) -> PyResult<PyLaplace> {
        let kind = parse_kind(py, curvature)?;
        let route = parse_route(py, route)?;
        let elimination = parse_elimination(py, elimination)?;
        let likelihood = match (net.spec.loss, sigma_noise) {
            (netgraph::LossSpec::CrossEntropy { .. }, None) => Likelihood::Classification,
            (netgraph::LossSpec::CrossEntropy { .. }, Some(_)) => {
                return Err(invalid_arg(
                    py,
                    "sigma_noise is the noise of a regression (mse) likelihood; this network's loss is cross_entropy"
                        .into(),
                ));
            }
            (netgraph::LossSpec::Mse { .. }, s) => Likelihood::Regression { sigma_noise: s.unwrap_or(1.0) },
        };
        let params = net.params(weights)?;
        let batch = net.batch(x, y)?;
        let opts = LaplaceOptions { curvature: kind, likelihood: Some(likelihood), route, memory_limit, elimination };
        let n = &net.net;
        let inner = py.detach(|| Laplace::new(n, &params, &batch, &opts)).map_err(|e| hinv_err(py, e))?;
        Ok(PyLaplace { inner, input_dim: n.input_dim(), outputs: net.spec.loss.outputs() })
    }

    /// The evidence (log marginal likelihood) at prior precision
    /// ``prior_precision`` (> 0): one factorization. Raises
    /// NotPositiveDefiniteError when the posterior precision is not
    /// certifiably positive definite (only possible with the Hessian).
    fn evidence(&self, py: Python<'_>, prior_precision: f64) -> PyResult<Evidence> {
        let e = py.detach(|| self.inner.evidence(prior_precision)).map_err(|e| hinv_err(py, e))?;
        Ok(evidence(e))
    }

    /// The prior precision in ``[lower, upper]`` maximizing the evidence, by
    /// golden-section search on ``log delta`` to a relative width ``rtol``
    /// (one factorization per step). For the Gauss–Newton curvature the
    /// evidence is concave in ``delta``, so this is its maximum over the
    /// interval; check ``at_boundary``.
    #[pyo3(signature = (*, lower = 1e-4, upper = 1e4, rtol = 1e-6))]
    fn optimize_prior_precision(&self, py: Python<'_>, lower: f64, upper: f64, rtol: f64) -> PyResult<PriorSearch> {
        let s = py.detach(|| self.inner.optimize_prior_precision(lower, upper, rtol)).map_err(|e| hinv_err(py, e))?;
        Ok(PriorSearch { best: evidence(s.best), evaluations: s.evaluations, at_boundary: s.at_boundary })
    }

    /// The linearized predictive of the outputs for new inputs ``x``
    /// ``(n, input_dim)`` at prior precision ``prior_precision``: one
    /// factorization and one solve with ``n C`` right-hand sides.
    fn predictive(&self, py: Python<'_>, prior_precision: f64, x: &Bound<'_, PyAny>) -> PyResult<Predictive> {
        let a = crate::arrays::as_f64(x)?;
        let shape = crate::arrays::shape_of(&a);
        let d = self.input_dim;
        if shape.len() != 2 || shape[1] != d {
            return Err(shape_err(py, format!("x must have shape (n, {d}), found {shape:?}")));
        }
        let v = crate::arrays::c_order(&a)?;
        let inputs = faer::Mat::from_fn(shape[0], shape[1], |i, j| v[i * shape[1] + j]);
        let p = py.detach(|| self.inner.predictive(prior_precision, &inputs)).map_err(|e| hinv_err(py, e))?;
        let classification = matches!(self.inner.likelihood(), Likelihood::Classification);
        Ok(Predictive { inner: p, classification, outputs: self.outputs })
    }

    /// ``"classification"`` or ``"regression"``.
    #[getter]
    fn likelihood(&self) -> &'static str {
        match self.inner.likelihood() {
            Likelihood::Classification => "classification",
            Likelihood::Regression { .. } => "regression",
        }
    }

    /// The noise standard deviation of a regression, None for classification.
    #[getter]
    fn sigma_noise(&self) -> Option<f64> {
        match self.inner.likelihood() {
            Likelihood::Classification => None,
            Likelihood::Regression { sigma_noise } => Some(sigma_noise),
        }
    }

    /// ``s``: the negative log-likelihood's curvature is ``s C``.
    #[getter]
    fn scale(&self) -> f64 {
        self.inner.scale()
    }

    /// ``log p(D | theta)``.
    #[getter]
    fn log_likelihood(&self) -> f64 {
        self.inner.log_likelihood()
    }

    /// Number of parameters ``P``.
    #[getter]
    fn num_params(&self) -> usize {
        self.inner.curvature().num_params()
    }

    fn __repr__(&self) -> String {
        format!(
            "<hinv.Laplace: {}, {} parameters, log_likelihood {:.6e}>",
            self.likelihood(),
            self.num_params(),
            self.inner.log_likelihood()
        )
    }
}
