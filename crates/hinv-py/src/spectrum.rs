//! The spectrum and trust-region calls of `hinv.Curvature` (Rust:
//! `hinv::spectrum`, `hinv::trust_region`): extreme eigenvalues with
//! certified brackets, interval counts, histograms and the exact
//! trust-region step.

use hinv::{
    Curvature, Elimination, End, ExtremeEigenvalue, FactorOptions, Method, SpectrumOptions, StepKind,
    TrustRegionOptions,
};
use pyo3::prelude::*;

use crate::arrays::{matrix, vector};
use crate::errors::hinv_err;

/// An extreme eigenvalue of H bracketed by certified counts: the exact
/// eigenvalue lies in ``[lower, upper]``; ``eigenvectors`` are the columns
/// ``(p, multiplicity)`` found for it (possibly empty when bisection alone was
/// used), with their Rayleigh quotients and residuals.
#[pyclass(module = "hinv", frozen, get_all)]
pub struct Eigenvalue {
    /// ``"min"`` or ``"max"``.
    pub end: &'static str,
    /// The eigenvalue.
    pub value: f64,
    /// Certified lower end of its bracket.
    pub lower: f64,
    /// Certified upper end of its bracket.
    pub upper: f64,
    /// Whether the bracket met the tolerance.
    pub converged: bool,
    /// How many eigenvalues the bracket holds.
    pub multiplicity: usize,
    /// Eigenvector columns ``(p, k)``.
    pub eigenvectors: Py<PyAny>,
    /// Rayleigh quotients of the eigenvectors.
    pub eigenvector_values: Py<PyAny>,
    /// ``||H v - value v||`` of each eigenvector.
    pub residuals: Py<PyAny>,
    /// ``"shift_invert"`` or ``"bisection"``.
    pub method: &'static str,
    /// Factorizations spent.
    pub factorizations: usize,
    /// Exact solves spent.
    pub solves: usize,
    /// Hessian-vector products spent.
    pub hvps: usize,
}

#[pymethods]
impl Eigenvalue {
    fn __repr__(&self) -> String {
        format!(
            "Eigenvalue(end={:?}, value={:e}, lower={:e}, upper={:e}, converged={}, multiplicity={})",
            self.end,
            self.value,
            self.lower,
            self.upper,
            if self.converged { "True" } else { "False" },
            self.multiplicity
        )
    }
}

/// The number of eigenvalues of H in ``[lower, upper)``, within ``uncertain``.
#[pyclass(module = "hinv", frozen, get_all)]
pub struct IntervalCount {
    /// Lower end.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
    /// The count.
    pub count: usize,
    /// The exact count lies within this of ``count`` (0: certified).
    pub uncertain: usize,
}

#[pymethods]
impl IntervalCount {
    fn __repr__(&self) -> String {
        format!(
            "IntervalCount(lower={:e}, upper={:e}, count={}, uncertain={})",
            self.lower, self.upper, self.count, self.uncertain
        )
    }
}

/// The exact trust-region step: ``p`` minimises ``g.p + p.H p / 2`` over
/// ``||p|| <= radius``, with ``(H + lam I) p = -g``. Note the sign: ``p`` is
/// the step itself (``w += p``), unlike ``Factorization.solve``.
#[pyclass(module = "hinv", frozen, get_all)]
pub struct TrustRegionStep {
    /// The step (add it to the weights).
    pub p: Py<PyAny>,
    /// The multiplier ``lam >= max(0, -lambda_min)``.
    pub lam: f64,
    /// ``||p||``.
    pub step_norm: f64,
    /// The radius.
    pub radius: f64,
    /// ``-(g.p + p.H p / 2) >= 0``.
    pub model_decrease: f64,
    /// The Cauchy point's decrease (``model_decrease`` is never below it).
    pub cauchy_decrease: f64,
    /// ``"interior"``, ``"boundary"`` or ``"hard_case"``.
    pub kind: &'static str,
    /// lambda_min of H when it was needed, else None.
    pub lambda_min: Option<f64>,
    /// ``||(H + lam I) p + g|| / ||g||`` with the exact HVP.
    pub optimality_residual: f64,
    /// Whether the iteration met its tolerance.
    pub converged: bool,
    /// Factorizations spent.
    pub factorizations: usize,
    /// Exact solves spent.
    pub solves: usize,
}

#[pymethods]
impl TrustRegionStep {
    fn __repr__(&self) -> String {
        format!(
            "TrustRegionStep(kind={:?}, lam={:e}, step_norm={:e}, radius={:e}, model_decrease={:e}, converged={})",
            self.kind,
            self.lam,
            self.step_norm,
            self.radius,
            self.model_decrease,
            if self.converged { "True" } else { "False" }
        )
    }
}

fn eigenvalue(py: Python<'_>, e: ExtremeEigenvalue) -> Eigenvalue {
    let p = e.eigenvectors.first().map_or(0, Vec::len);
    let cols = faer::Mat::from_fn(p, e.eigenvectors.len(), |i, j| e.eigenvectors[j][i]);
    Eigenvalue {
        end: match e.end {
            End::Min => "min",
            End::Max => "max",
        },
        value: e.value,
        lower: e.lower,
        upper: e.upper,
        converged: e.converged,
        multiplicity: e.multiplicity,
        eigenvectors: matrix(py, cols.as_ref()).into_any().unbind(),
        eigenvector_values: vector(py, e.eigenvector_values).into_any().unbind(),
        residuals: vector(py, e.residuals).into_any().unbind(),
        method: match e.method {
            Method::ShiftInvert => "shift_invert",
            Method::Bisection => "bisection",
        },
        factorizations: e.factorizations,
        solves: e.solves,
        hvps: e.hvps,
    }
}

fn spectrum_options(rel_tol: f64, abs_tol: f64, elimination: Elimination) -> SpectrumOptions {
    let factor = FactorOptions { elimination, ..FactorOptions::default() };
    SpectrumOptions { rel_tol, abs_tol, factor, ..SpectrumOptions::default() }
}

/// The smallest (``End::Min``) or largest eigenvalue of H, bracketed by
/// certified eigenvalue counts to ``max(rel_tol |lambda|, abs_tol ||H||)``
/// (shift-invert Lanczos verified by counting, or bisection). Raises
/// HinvError (uncertified) when the counts stay uncertain.
pub fn extreme_eigenvalue(
    curv: &Curvature,
    py: Python<'_>,
    end: End,
    rel_tol: f64,
    abs_tol: f64,
    elimination: Elimination,
) -> PyResult<Eigenvalue> {
    let opts = spectrum_options(rel_tol, abs_tol, elimination);
    let e = py.detach(|| curv.extreme_eigenvalue(end, &opts)).map_err(|e| hinv_err(py, e))?;
    Ok(eigenvalue(py, e))
}

/// How many eigenvalues of H lie in ``[lower, upper)`` (two factorizations).
pub fn count_in(
    curv: &Curvature,
    py: Python<'_>,
    lower: f64,
    upper: f64,
    elimination: Elimination,
) -> PyResult<IntervalCount> {
    let opts = FactorOptions { elimination, ..FactorOptions::default() };
    let c = py.detach(|| curv.count_in_with(lower, upper, &opts)).map_err(|e| hinv_err(py, e))?;
    Ok(IntervalCount { lower: c.lower, upper: c.upper, count: c.count, uncertain: c.uncertain })
}

/// The exact trust-region step of radius ``radius`` for the gradient
/// (Moré–Sorensen, hard case included). ``p`` is the step: ``w += p``.
pub fn trust_region_step(
    curv: &Curvature,
    py: Python<'_>,
    radius: f64,
    tolerance: f64,
    elimination: Elimination,
) -> PyResult<TrustRegionStep> {
    let defaults = TrustRegionOptions::default();
    let spectrum =
        SpectrumOptions { factor: FactorOptions { elimination, ..FactorOptions::default() }, ..defaults.spectrum };
    let opts = TrustRegionOptions { tolerance, spectrum, ..defaults };
    let s = py.detach(|| curv.trust_region_step(radius, &opts)).map_err(|e| hinv_err(py, e))?;
    Ok(TrustRegionStep {
        p: vector(py, s.p).into_any().unbind(),
        lam: s.lambda,
        step_norm: s.step_norm,
        radius: s.radius,
        model_decrease: s.model_decrease,
        cauchy_decrease: s.cauchy_decrease,
        kind: match s.kind {
            StepKind::Interior => "interior",
            StepKind::Boundary => "boundary",
            StepKind::HardCase => "hard_case",
        },
        lambda_min: s.lambda_min,
        optimality_residual: s.optimality_residual,
        converged: s.converged,
        factorizations: s.factorizations,
        solves: s.solves,
    })
}
