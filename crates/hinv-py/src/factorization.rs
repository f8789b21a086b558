//! `hinv.Factorization` and the small result classes (`Inertia`, `LogDet`,
//! `EigenvalueCount`, `SolveReport`, `Solution`).

use hinv::{CurvatureFactor, Route, SolveMethod, SolveOptions};
use pyo3::prelude::*;

use crate::arrays::{answer, columns};
use crate::errors::{hinv_err, invalid_arg};

/// ``C + eps I`` factored, ``C`` the curvature (Hessian or Gauss–Newton);
/// reusable for any number of right-hand sides. Made by
/// ``Curvature.factor(eps)``.
///
/// ``route`` says how: ``"lifted"`` (block LDLᵀ of the lifted system, and on
/// need Gaussian elimination pivoted across blocks) or ``"woodbury"`` (the
/// Gauss–Newton matrix through its explicit Jacobian, ``eps > 0``).
#[pyclass(module = "hinv", frozen, name = "Factorization")]
pub struct PyFactorization {
    pub inner: CurvatureFactor,
    pub num_params: usize,
}

/// The name of a route, as Python spells it.
pub fn route_name(r: Route) -> &'static str {
    match r {
        Route::Lifted => "lifted",
        Route::Woodbury => "woodbury",
    }
}

/// The inertia of ``H + eps I``: counts of positive, negative and zero
/// eigenvalues; the exact counts lie within ``uncertain`` of these
/// (0: certified).
#[pyclass(module = "hinv", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct Inertia {
    /// Positive eigenvalues.
    pub positive: usize,
    /// Negative eigenvalues (the eigenvalues of H below -eps).
    pub negative: usize,
    /// Zero eigenvalues.
    pub zero: usize,
    /// How many of the counts the factorization cannot vouch for.
    pub uncertain: usize,
}

#[pymethods]
impl Inertia {
    fn __repr__(&self) -> String {
        format!(
            "Inertia(positive={}, negative={}, zero={}, uncertain={})",
            self.positive, self.negative, self.zero, self.uncertain
        )
    }
}

/// ``log|det(H + eps I)|`` and the sign of the determinant (``sign`` 0 and
/// ``log_abs`` -inf for an exactly singular matrix).
#[pyclass(module = "hinv", frozen, get_all)]
#[derive(Clone)]
pub struct LogDet {
    /// +1.0, -1.0 or 0.0.
    pub sign: f64,
    /// ``log|det|``.
    pub log_abs: f64,
}

#[pymethods]
impl LogDet {
    fn __repr__(&self) -> String {
        format!("LogDet(sign={:?}, log_abs={:?})", self.sign, self.log_abs)
    }
    /// ``sign, log_abs = f.log_det()``, as with ``numpy.linalg.slogdet``.
    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let t = (self.sign, self.log_abs).into_pyobject(py)?;
        Ok(t.call_method0("__iter__")?.unbind())
    }
}

/// How many eigenvalues of H lie below a threshold: the exact count is in
/// ``count - uncertain ..= count + uncertain`` (0: certified).
#[pyclass(module = "hinv", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct EigenvalueCount {
    /// The count read off the factorization.
    pub count: usize,
    /// Its uncertainty (0: certified).
    pub uncertain: usize,
}

#[pymethods]
impl EigenvalueCount {
    fn __repr__(&self) -> String {
        format!("EigenvalueCount(count={}, uncertain={})", self.count, self.uncertain)
    }
}

/// What a solve did: the elimination (``"block_ldlt"``, ``"pivoted_lu"``, or
/// ``"shifted"`` for ``solve_shifted``), refinement steps (for
/// ``solve_shifted``: solves with the factorization), the backward errors before and after refinement, and
/// whether the tolerance was met (only False with ``accept_inexact``).
#[pyclass(module = "hinv", frozen, get_all)]
#[derive(Clone)]
pub struct SolveReport {
    /// ``"block_ldlt"``, ``"pivoted_lu"``, ``"woodbury"`` or ``"shifted"``.
    pub method: &'static str,
    /// Refinement steps with the exact HVP.
    pub refinements: usize,
    /// Largest column backward error of the unrefined solve.
    pub initial_backward_error: f64,
    /// Largest column backward error of the returned solution.
    pub backward_error: f64,
    /// ``backward_error <= tolerance``.
    pub within_tolerance: bool,
}

#[pymethods]
impl SolveReport {
    fn __repr__(&self) -> String {
        format!(
            "SolveReport(method={:?}, refinements={}, initial_backward_error={:.3e}, backward_error={:.3e}, within_tolerance={})",
            self.method,
            self.refinements,
            self.initial_backward_error,
            self.backward_error,
            if self.within_tolerance { "True" } else { "False" }
        )
    }
}

/// A solution ``x`` (same rank as the right-hand side) and its ``report``.
#[pyclass(module = "hinv", frozen, get_all)]
pub struct Solution {
    /// The solution.
    pub x: Py<PyAny>,
    /// How it was obtained.
    pub report: SolveReport,
}

#[pymethods]
impl Solution {
    fn __repr__(&self, py: Python<'_>) -> String {
        let shape = self.x.bind(py).getattr("shape").map(|s| s.to_string()).unwrap_or_default();
        format!("Solution(x=<array {shape}>, report={})", self.report.__repr__())
    }
}

impl PyFactorization {
    /// A solve with `H + eps I`, or with `H + shifted_eps I` preconditioned
    /// by these factors when `shifted_eps` is given.
    fn solve_inner<'py>(
        &self,
        py: Python<'py>,
        b: &Bound<'py, PyAny>,
        shifted_eps: Option<f64>,
        tolerance: Option<f64>,
        max_refinements: Option<usize>,
        accept_inexact: bool,
    ) -> PyResult<(Bound<'py, PyAny>, SolveReport)> {
        let mut opts = SolveOptions { accept_inexact, ..SolveOptions::default() };
        if let Some(t) = tolerance {
            opts.tolerance = t;
        }
        if let Some(m) = max_refinements {
            opts.max_refinements = m;
        }
        let cols = columns(b, "b")?;
        if cols.mat.ncols() == 0 {
            return Err(invalid_arg(py, "b has no columns".into()));
        }
        let lifted = self.inner.as_lifted();
        if shifted_eps.is_some() && lifted.is_none() {
            return Err(invalid_arg(
                py,
                "solve_shifted needs the lifted route's factors (factor(eps, route=\"lifted\")); \
                 the Woodbury route refactors in O(p a_o^2): factor at shifted_eps instead"
                    .into(),
            ));
        }
        let s = py
            .detach(|| match (shifted_eps, lifted) {
                (Some(eps), Some(f)) => f.solve_shifted(eps, cols.mat.as_ref(), &opts),
                _ => self.inner.solve_with(cols.mat.as_ref(), &opts),
            })
            .map_err(|e| hinv_err(py, e))?;
        let r = s.report;
        let report = SolveReport {
            method: match r.method {
                SolveMethod::BlockLdlt => "block_ldlt",
                SolveMethod::PivotedLu => "pivoted_lu",
                SolveMethod::Woodbury => "woodbury",
                SolveMethod::Shifted => "shifted",
            },
            refinements: r.refinements,
            initial_backward_error: r.initial_backward_error,
            backward_error: r.backward_error,
            within_tolerance: r.within_tolerance,
        };
        Ok((answer(py, s.x.as_ref(), cols.one_d), report))
    }
}

#[pymethods]
impl PyFactorization {
    /// ``(H + eps I)^-1 b`` for a vector ``(p,)`` or columns ``(p, k)``, to a
    /// normwise backward error of at most ``tolerance`` (default 64 machine
    /// epsilons, 1.4e-14), refined with the exact HVP (here and below ``H``
    /// is the curvature, the Gauss–Newton matrix for ``curvature="ggn"``).
    ///
    /// Raises IllConditionedError when no elimination reaches the tolerance,
    /// unless ``accept_inexact`` (then see ``solve_with`` for the report).
    /// The damped Newton step is ``-f.solve(gradient)``.
    #[pyo3(signature = (b, *, tolerance = None, max_refinements = None, accept_inexact = false))]
    fn solve<'py>(
        &self,
        py: Python<'py>,
        b: &Bound<'py, PyAny>,
        tolerance: Option<f64>,
        max_refinements: Option<usize>,
        accept_inexact: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.solve_inner(py, b, None, tolerance, max_refinements, accept_inexact)?.0)
    }

    /// ``solve`` returning a ``Solution`` with ``.x`` and ``.report``
    /// (elimination used, refinement steps, backward errors).
    #[pyo3(signature = (b, *, tolerance = None, max_refinements = None, accept_inexact = false))]
    fn solve_with<'py>(
        &self,
        py: Python<'py>,
        b: &Bound<'py, PyAny>,
        tolerance: Option<f64>,
        max_refinements: Option<usize>,
        accept_inexact: bool,
    ) -> PyResult<Solution> {
        let (x, report) = self.solve_inner(py, b, None, tolerance, max_refinements, accept_inexact)?;
        Ok(Solution { x: x.unbind(), report })
    }

    /// ``(H + shifted_eps I)^-1 b`` with this factorization of ``H + eps I``
    /// as a preconditioner (MINRES, refined with the exact HVP), to the same
    /// backward-error ``tolerance`` as ``solve`` against ``H + shifted_eps I``;
    /// for a nearby shift (a damping schedule) without refactoring. Returns a
    /// ``Solution``; ``report.refinements`` counts the solves with the
    /// factorization (at most 40 per column).
    ///
    /// Raises ShiftTooFarError when that budget runs out (factor at
    /// ``shifted_eps`` instead), IllConditionedError when ``H + shifted_eps I``
    /// is too ill-conditioned; with ``accept_inexact`` the best answer is
    /// returned with ``report.within_tolerance`` False instead.
    #[pyo3(signature = (shifted_eps, b, *, tolerance = None, max_refinements = None, accept_inexact = false))]
    fn solve_shifted<'py>(
        &self,
        py: Python<'py>,
        shifted_eps: f64,
        b: &Bound<'py, PyAny>,
        tolerance: Option<f64>,
        max_refinements: Option<usize>,
        accept_inexact: bool,
    ) -> PyResult<Solution> {
        let (x, report) = self.solve_inner(py, b, Some(shifted_eps), tolerance, max_refinements, accept_inexact)?;
        Ok(Solution { x: x.unbind(), report })
    }

    /// ``log|det(H + eps I)|`` with the sign of the determinant, accurate to
    /// about ``eps_mach * cond(H + eps I)`` relative to its magnitude.
    fn log_det(&self, py: Python<'_>) -> PyResult<LogDet> {
        let d = py.detach(|| self.inner.log_det()).map_err(|e| hinv_err(py, e))?;
        Ok(LogDet { sign: d.sign, log_abs: d.log_abs })
    }

    /// ``log|det(H + eps I)|`` (``log_det().log_abs``).
    fn log_abs_det(&self, py: Python<'_>) -> PyResult<f64> {
        Ok(self.log_det(py)?.log_abs)
    }

    /// The inertia of ``C + eps I`` with its certificate ``uncertain``. For
    /// the Gauss–Newton curvature and ``eps > 0`` it is positive definite by
    /// construction, and certified so (docs/laplace.md, "Inertia").
    fn inertia(&self) -> Inertia {
        let i = self.inner.inertia();
        Inertia { positive: i.positive, negative: i.negative, zero: i.zero, uncertain: i.uncertain }
    }

    /// The ``eps`` of this factorization.
    #[getter]
    fn eps(&self) -> f64 {
        self.inner.eps()
    }

    /// Number of parameters.
    #[getter]
    fn num_params(&self) -> usize {
        self.num_params
    }

    /// ``"lifted"`` or ``"woodbury"``: the route that factored ``C + eps I``.
    #[getter]
    fn route(&self) -> &'static str {
        route_name(self.inner.route())
    }

    /// ``"interleaved"`` or ``"parameters_first"``: the block elimination
    /// that factored the lifted system (``"auto"`` resolved); None on the
    /// Woodbury route.
    #[getter]
    fn elimination(&self) -> Option<&'static str> {
        // (The lifted engine reports only the two it ran, never auto.)
        self.inner.as_lifted().map(|f| crate::curvature::elimination_name(f.elimination()))
    }

    /// Size of the lifted system (``sum_l p_l + 2 a_l``); None on the
    /// Woodbury route.
    #[getter]
    fn lifted_dim(&self) -> Option<usize> {
        self.inner.as_lifted().map(|f| f.lifted_dim())
    }

    fn __repr__(&self) -> String {
        format!(
            "<hinv.Factorization: {} parameters, eps={:e}, route {}>",
            self.num_params,
            self.inner.eps(),
            route_name(self.inner.route())
        )
    }
}
