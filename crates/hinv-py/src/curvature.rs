//! `hinv.Curvature`: the derivative blocks of a network at given weights on
//! one batch, and the products, factorizations and eigenvalue counts they
//! give. Every long call releases the GIL.

use hinv::{Curvature, CurvatureKind, CurvatureOptions, Elimination, End, FactorOptions, Route};
use numpy::PyArray1;
use pyo3::prelude::*;

use crate::arrays::{answer, columns, vector};
use crate::errors::{hinv_err, invalid_arg};
use crate::factorization::{route_name, EigenvalueCount, PyFactorization};
use crate::network::PyNetwork;
use crate::spectrum;

/// The curvature of a network's batch loss at given weights.
///
/// ``Curvature(net, weights, x, y)`` runs the forward and backward passes
/// and computes every layer's derivative blocks once; every product,
/// factorization (for any ``eps``) and eigenvalue count reuses them.
///
/// - ``weights``: a dict ``{name: array}`` with the names and PyTorch shapes
///   of ``net.parameter_shapes()`` (``layers.0.weight``, ..., ``loss.bias``),
///   a list of arrays in that order, or a flat vector of ``net.num_params``.
/// - ``x``: inputs ``(batch, input_dim)``.
/// - ``y``: integer classes ``(batch,)`` for cross-entropy, values
///   ``(batch, outputs)`` for MSE.
/// - ``memory_limit``: refuse derivative blocks needing more bytes than this
///   (default: the memory available).
/// - ``curvature``: ``"hessian"`` (default) or ``"ggn"``, the generalized
///   Gauss–Newton matrix ``J^T Lambda J`` (the Fisher for cross-entropy):
///   every product, factorization and count is then the GGN's
///   (docs/laplace.md).
///
/// Arrays are read as float64; the loss is the batch mean (PyTorch's).
#[pyclass(module = "hinv", frozen, name = "Curvature")]
pub struct PyCurvature {
    inner: Curvature,
}

#[pymethods]
impl PyCurvature {
    #[new]
    #[pyo3(signature = (net, weights, x, y, *, memory_limit = None, curvature = "hessian"))]
    fn new(
        py: Python<'_>,
        net: PyRef<'_, PyNetwork>,
        weights: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        memory_limit: Option<u64>,
        curvature: &str,
    ) -> PyResult<PyCurvature> {
        let kind = parse_kind(py, curvature)?;
        let params = net.params(weights)?;
        let batch = net.batch(x, y)?;
        let opts = CurvatureOptions { memory_limit, kind };
        let n = &net.net;
        let inner = py.detach(|| Curvature::new_with(n, &params, &batch, &opts)).map_err(|e| hinv_err(py, e))?;
        Ok(PyCurvature { inner })
    }

    /// The batch loss.
    #[getter]
    fn loss(&self) -> f64 {
        self.inner.loss()
    }

    /// The gradient of the batch loss, flat in parameter order (a new array).
    #[getter]
    fn gradient<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        vector(py, self.inner.gradient().to_vec())
    }

    /// Number of parameters ``p``.
    #[getter]
    fn num_params(&self) -> usize {
        self.inner.num_params()
    }

    /// Number of layers, the loss layer included.
    #[getter]
    fn num_layers(&self) -> usize {
        self.inner.num_layers()
    }

    /// ``H v`` for a vector ``(p,)``, or ``H V`` for columns ``(p, k)``;
    /// exact (Pearlmutter's form, linear in depth, never forming H).
    fn hvp<'py>(&self, py: Python<'py>, v: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let cols = columns(v, "v")?;
        let out = py.detach(|| self.inner.hvp_many(cols.mat.as_ref())).map_err(|e| hinv_err(py, e))?;
        Ok(answer(py, out.as_ref(), cols.one_d))
    }

    /// Factors ``H + eps I`` (``H`` the curvature: the Gauss–Newton matrix for
    /// ``curvature="ggn"``) for solves, the log-determinant and the inertia.
    ///
    /// ``route``: ``"lifted"`` (the block-tridiagonal system, any curvature
    /// and eps), ``"woodbury"`` (the Gauss–Newton matrix through its explicit
    /// Jacobian, ``eps > 0`` only: InvalidArgumentError otherwise) or
    /// ``"auto"`` (default: the cheaper by ``route_costs()``; always lifted
    /// for the Hessian, for ``eps <= 0`` and with an ``elimination`` other
    /// than ``"auto"``, which ``"woodbury"`` refuses: InvalidArgumentError).
    ///
    /// A singular ``H + eps I`` raises SingularError unless
    /// ``allow_singular`` (the zero eigenvalues then show in ``inertia()``;
    /// solves fail). ``memory_limit`` refuses factors needing more bytes.
    ///
    /// ``elimination`` (lifted route): ``"auto"`` (default: each layer's
    /// parameters first where the fill stays small, else interleaved),
    /// ``"interleaved"`` (each layer's whole block pivoted together: the
    /// most stable, ``inertia()`` checked by a second elimination where
    /// needed, within ``memory_limit``, at up to hundreds of
    /// factorizations' cost on wide layers, where ``"auto"`` may leave such
    /// a count uncertain instead) or ``"parameters_first"`` (forced, for
    /// measurements).
    #[pyo3(signature = (eps, *, route = "auto", allow_singular = false, memory_limit = None, elimination = "auto"))]
    fn factor(
        &self,
        py: Python<'_>,
        eps: f64,
        route: &str,
        allow_singular: bool,
        memory_limit: Option<u64>,
        elimination: &str,
    ) -> PyResult<PyFactorization> {
        let route = parse_route(py, route)?;
        let elimination = parse_elimination(py, elimination)?;
        let opts = FactorOptions { allow_singular, memory_limit, elimination, ..FactorOptions::default() };
        let f = py.detach(|| self.inner.factor_route(eps, &opts, route)).map_err(|e| hinv_err(py, e))?;
        Ok(PyFactorization { inner: f, num_params: self.inner.num_params() })
    }

    /// The predicted cost (floating-point operations) of factoring by each
    /// route: ``RouteCosts(lifted, woodbury, cheaper)``; ``woodbury`` is None
    /// for the Hessian.
    fn route_costs(&self) -> RouteCosts {
        let c = self.inner.route_costs();
        RouteCosts { lifted: c.lifted, woodbury: c.woodbury, cheaper: route_name(c.cheaper()) }
    }

    /// ``"hessian"`` or ``"ggn"``.
    #[getter]
    fn curvature(&self) -> &'static str {
        kind_name(self.inner.kind())
    }

    /// How many eigenvalues of H lie strictly below ``t`` (Sylvester's law of
    /// inertia on one factorization of ``H - t I``), with ``uncertain``: the
    /// exact count lies within ``uncertain`` of ``count`` (0: certified).
    /// ``elimination`` as for ``factor``: ``"interleaved"`` checks a count
    /// that ``"auto"`` may leave uncertain on wide layers.
    #[pyo3(signature = (t, *, elimination = "auto"))]
    fn count_eigenvalues_below(&self, py: Python<'_>, t: f64, elimination: &str) -> PyResult<EigenvalueCount> {
        let opts = FactorOptions { elimination: parse_elimination(py, elimination)?, ..FactorOptions::default() };
        let c = py.detach(|| self.inner.count_eigenvalues_below_with(t, &opts)).map_err(|e| hinv_err(py, e))?;
        Ok(EigenvalueCount { count: c.count, uncertain: c.uncertain })
    }

    /// The smallest eigenvalue of H, bracketed by certified eigenvalue counts
    /// to ``max(rel_tol |lambda|, abs_tol ||H||)`` (shift-invert Lanczos
    /// verified by counting, or bisection on counts). Raises
    /// UncertifiedError when the counts stay uncertain; ``elimination`` as
    /// for ``factor``.
    #[pyo3(signature = (*, rel_tol = 1e-10, abs_tol = 1e-12, elimination = "auto"))]
    fn lambda_min(
        &self,
        py: Python<'_>,
        rel_tol: f64,
        abs_tol: f64,
        elimination: &str,
    ) -> PyResult<spectrum::Eigenvalue> {
        spectrum::extreme_eigenvalue(&self.inner, py, End::Min, rel_tol, abs_tol, parse_elimination(py, elimination)?)
    }

    /// The largest eigenvalue of H; see ``lambda_min``.
    #[pyo3(signature = (*, rel_tol = 1e-10, abs_tol = 1e-12, elimination = "auto"))]
    fn lambda_max(
        &self,
        py: Python<'_>,
        rel_tol: f64,
        abs_tol: f64,
        elimination: &str,
    ) -> PyResult<spectrum::Eigenvalue> {
        spectrum::extreme_eigenvalue(&self.inner, py, End::Max, rel_tol, abs_tol, parse_elimination(py, elimination)?)
    }

    /// How many eigenvalues of H lie in ``[lower, upper)``, with
    /// ``uncertain``; ``elimination`` as for ``factor``.
    #[pyo3(signature = (lower, upper, *, elimination = "auto"))]
    fn count_in(&self, py: Python<'_>, lower: f64, upper: f64, elimination: &str) -> PyResult<spectrum::IntervalCount> {
        spectrum::count_in(&self.inner, py, lower, upper, parse_elimination(py, elimination)?)
    }

    /// The exact trust-region step for the gradient: ``p`` minimises
    /// ``g.p + p.H p / 2`` over ``||p|| <= radius`` (Moré–Sorensen, the hard
    /// case included). ``p`` is the step itself: ``w += step.p``.
    /// ``elimination`` as for ``factor``.
    #[pyo3(signature = (radius, *, tolerance = 1e-12, elimination = "auto"))]
    fn trust_region_step(
        &self,
        py: Python<'_>,
        radius: f64,
        tolerance: f64,
        elimination: &str,
    ) -> PyResult<spectrum::TrustRegionStep> {
        spectrum::trust_region_step(&self.inner, py, radius, tolerance, parse_elimination(py, elimination)?)
    }

    fn __repr__(&self) -> String {
        format!(
            "<hinv.Curvature: {}, {} parameters, {} layers, loss {:.6e}>",
            kind_name(self.inner.kind()),
            self.inner.num_params(),
            self.inner.num_layers(),
            self.inner.loss()
        )
    }
}

/// The predicted cost of each route of ``Curvature.factor``, in
/// floating-point operations (docs/laplace.md, "Two exact routes").
#[pyclass(module = "hinv", frozen, get_all)]
pub struct RouteCosts {
    /// The lifted block-tridiagonal route.
    pub lifted: f64,
    /// The Woodbury route (None for the Hessian).
    pub woodbury: Option<f64>,
    /// ``"lifted"`` or ``"woodbury"``: what ``route="auto"`` takes for ``eps > 0``.
    pub cheaper: &'static str,
}

#[pymethods]
impl RouteCosts {
    fn __repr__(&self) -> String {
        let w = self.woodbury.map_or("None".to_string(), |w| format!("{w:e}"));
        format!("RouteCosts(lifted={:e}, woodbury={w}, cheaper={:?})", self.lifted, self.cheaper)
    }
}

/// ``"hessian"`` / ``"ggn"`` to the Rust kind.
pub fn parse_kind(py: Python<'_>, curvature: &str) -> PyResult<CurvatureKind> {
    match curvature {
        "hessian" => Ok(CurvatureKind::Hessian),
        "ggn" => Ok(CurvatureKind::GaussNewton),
        other => Err(invalid_arg(py, format!("curvature must be \"hessian\" or \"ggn\", not {other:?}"))),
    }
}

fn kind_name(k: CurvatureKind) -> &'static str {
    match k {
        CurvatureKind::Hessian => "hessian",
        CurvatureKind::GaussNewton => "ggn",
    }
}

/// ``"auto"``, ``"interleaved"`` or ``"parameters_first"`` (Python's
/// spellings, exactly, as for ``route``) to the Rust choice.
pub fn parse_elimination(py: Python<'_>, elimination: &str) -> PyResult<Elimination> {
    match elimination {
        "auto" => Ok(Elimination::Auto),
        "interleaved" => Ok(Elimination::Interleaved),
        "parameters_first" => Ok(Elimination::ParametersFirst),
        other => Err(invalid_arg(
            py,
            format!("elimination must be \"auto\", \"interleaved\" or \"parameters_first\", not {other:?}"),
        )),
    }
}

/// The Rust choice in Python's spelling (the inverse of
/// [`parse_elimination`]).
pub fn elimination_name(elimination: Elimination) -> &'static str {
    match elimination {
        Elimination::Auto => "auto",
        Elimination::Interleaved => "interleaved",
        Elimination::ParametersFirst => "parameters_first",
    }
}

/// ``"auto"`` / ``"lifted"`` / ``"woodbury"`` to the Rust choice (None: auto).
pub fn parse_route(py: Python<'_>, route: &str) -> PyResult<Option<Route>> {
    match route {
        "auto" => Ok(None),
        "lifted" => Ok(Some(Route::Lifted)),
        "woodbury" => Ok(Some(Route::Woodbury)),
        other => Err(invalid_arg(py, format!("route must be \"auto\", \"lifted\" or \"woodbury\", not {other:?}"))),
    }
}
