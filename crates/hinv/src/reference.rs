//! The dense oracle to compare hinv against: form `H` column by column from
//! exact Hessian-vector products and solve or diagonalise it with faer.
//!
//! Nothing here uses the lifted system or its factorization, so these
//! routes are a second opinion on [`Curvature::factor`]'s answers, not a
//! faster way to get them: `H` takes `8 p^2` bytes and `p` HVPs to form
//! (each linear in depth), [`solve`] an LU of `2 p^3 / 3` flops and
//! [`spectrum`] a symmetric eigendecomposition of about `4 p^3 / 3`. Use
//! them in tests, benchmarks and on small networks (a few thousand
//! parameters); [`DenseLimit`] refuses the rest before allocating.
//!
//! ```
//! use hinv::reference::{self, DenseLimit};
//! use hinv::Curvature;
//! use netgraph::{Activation, Batch, Network};
//!
//! let net = Network::builder(3).dense(4, Activation::Tanh).repeat(2).cross_entropy(2)?;
//! let params = net.init_params(0);
//! let batch = Batch::random_classification(3, 2, 2, 1);
//! let curv = Curvature::new(&net, &params, &batch)?;
//! let (eps, g) = (1e-2, curv.gradient().to_vec());
//!
//! let h = reference::hessian(&curv, DenseLimit::default())?; // p x p
//! let spec = reference::spectrum(h.as_ref())?;
//! let f = curv.factor(eps)?;
//! // Same solution, determinant and inertia as the factored route, to
//! // about u cond(H + eps I) (< 1e-9 here).
//! assert!(spec.condition(eps) < 1e6);
//! let (x, x_ref) = (f.solve(&g)?, reference::solve(h.as_ref(), eps, &g)?);
//! let scale = x_ref.iter().fold(0.0f64, |m, v| m.max(v.abs()));
//! assert!(x.iter().zip(&x_ref).all(|(a, b)| (a - b).abs() <= 1e-8 * scale));
//! assert!((f.log_det()?.log_abs - spec.log_det(eps).log_abs).abs() < 1e-8);
//! let dense = spec.inertia(eps, 1e-10);
//! assert_eq!((f.inertia().positive, f.inertia().negative), (dense.positive, dense.negative));
//! # Ok::<(), hinv::HinvError>(())
//! ```

use faer::{Mat, MatRef, Side};
use serde::Serialize;

use crate::curvature::Curvature;
use crate::error::{check_vector, Bytes, DenseFailure, DenseMatrix, HinvError, Result};
use tridiag::{Inertia, SignedLogDet};

/// Memory budget of the dense routes.
#[derive(Debug, Clone, Copy)]
pub struct DenseLimit {
    /// Refuse when the dense matrices would need more bytes than this.
    pub bytes: u64,
}

impl Default for DenseLimit {
    /// Half of the memory the system reports available (see
    /// [`netgraph::memory::default_limit`]): the dense route needs the
    /// matrix and a factor of it.
    fn default() -> Self {
        DenseLimit { bytes: netgraph::memory::default_limit() / 2 }
    }
}

/// Bytes the dense route needs for a curvature: `H` and one factor-sized
/// copy, `16 p^2`. [`hessian`] refuses when this exceeds its [`DenseLimit`].
///
/// ```
/// # use hinv::{reference, Curvature};
/// # use netgraph::{Activation, Batch, Network};
/// # let net = Network::builder(3).dense(4, Activation::Tanh).cross_entropy(2)?;
/// # let curv = Curvature::new(&net, &net.init_params(0), &Batch::random_classification(3, 2, 2, 1))?;
/// let p = curv.num_params() as u64;
/// assert_eq!(reference::hessian_bytes(&curv), 16 * p * p);
/// # Ok::<(), hinv::HinvError>(())
/// ```
pub fn hessian_bytes(curv: &Curvature) -> u64 {
    let p = curv.num_params() as u64;
    2 * p * p * 8
}

/// The dense `p x p` curvature matrix (the Hessian, or the Gauss–Newton
/// matrix for a [`crate::CurvatureKind::GaussNewton`] curvature), built
/// from exact HVPs against blocks of unit vectors (exact to rounding,
/// unlike finite differences) and symmetrised.
///
/// Costs `p` HVPs (each linear in depth) and `8 p^2` bytes; refuses with
/// [`HinvError::TooLarge`] when [`hessian_bytes`] exceeds `limit`, before
/// allocating. See the [module example](self).
pub fn hessian(curv: &Curvature, limit: DenseLimit) -> Result<Mat<f64>> {
    let need = hessian_bytes(curv);
    if need > limit.bytes {
        return Err(HinvError::TooLarge {
            what: "the dense Hessian route",
            needed: Bytes(need),
            limit: Bytes(limit.bytes),
            hint: "use the structured solver, or raise the limit if the machine has the memory",
        });
    }
    let p = curv.num_params();
    let mut h = Mat::zeros(p, p);
    // Columns in chunks keep the HVP's temporaries small.
    let chunk = 256usize;
    let mut c0 = 0;
    while c0 < p {
        let nc = chunk.min(p - c0);
        let e = Mat::from_fn(p, nc, |i, j| if i == c0 + j { 1.0 } else { 0.0 });
        let hc = curv.hvp_many(e.as_ref())?;
        h.as_mut().subcols_mut(c0, nc).copy_from(&hc);
        c0 += nc;
    }
    Ok(Mat::from_fn(p, p, |i, j| 0.5 * (h[(i, j)] + h[(j, i)])))
}

/// `(H + eps I)^-1 rhs` by a partial-pivoting LU of the dense `H + eps I`
/// (`h` as from [`hessian`], or any square matrix of the caller's).
///
/// Copies `h` (`8 p^2` bytes) and factors it in `2 p^3 / 3` flops; no
/// refinement, so its error is that of a backward-stable dense solve,
/// about `u cond(H + eps I)` relative. Errors: [`HinvError::WrongLength`]
/// when `h` is not square or `rhs` does not have one entry per row,
/// [`HinvError::NonFinite`] for a NaN in `rhs`, and [`HinvError::Dense`]
/// (`ReferenceSystem`, `Singular`) when the LU meets an exactly singular
/// matrix.
///
/// ```
/// use faer::Mat;
/// use hinv::reference;
///
/// let h = Mat::from_fn(2, 2, |i, j| if i == j { 2.0 } else { 1.0 });
/// let x = reference::solve(h.as_ref(), 1.0, &[4.0, 4.0])?; // [[3, 1], [1, 3]] x = [4, 4]
/// assert!((x[0] - 1.0).abs() < 1e-15 && (x[1] - 1.0).abs() < 1e-15);
/// # Ok::<(), hinv::HinvError>(())
/// ```
pub fn solve(h: MatRef<'_, f64>, eps: f64, rhs: &[f64]) -> Result<Vec<f64>> {
    let p = h.ncols();
    if h.nrows() != p {
        return Err(HinvError::WrongLength { what: "the dense matrix", expected: p, found: h.nrows() });
    }
    check_vector("the right-hand side", MatRef::from_column_major_slice(rhs, rhs.len(), 1), p)?;
    if !eps.is_finite() {
        return Err(HinvError::InvalidNumber { what: "eps", value: eps, expected: "a finite number" });
    }
    let mut a = h.to_owned();
    for i in 0..p {
        a[(i, i)] += eps;
    }
    let lu = a.partial_piv_lu();
    let b = Mat::from_fn(p, 1, |i, _| rhs[i]);
    let x = faer::linalg::solvers::Solve::solve(&lu, &b);
    let out: Vec<f64> = x.col(0).iter().copied().collect();
    if out.iter().any(|v| !v.is_finite()) {
        return Err(HinvError::Dense { matrix: DenseMatrix::ReferenceSystem, n: p, failure: DenseFailure::Singular });
    }
    Ok(out)
}

/// The eigenvalues of a dense symmetric `h` (as from [`hessian`]), from
/// faer's symmetric eigensolver on its lower triangle: `4 p^3 / 3` flops
/// and a `p x p` workspace. The [`Spectrum`] gives `log|det(H + eps I)|`,
/// the inertia and the condition number for any `eps` without another
/// decomposition. [`HinvError::Dense`] (`ReferenceHessian`,
/// `NoConvergence`) when the eigensolver fails (non-finite entries).
///
/// ```
/// use faer::Mat;
/// use hinv::reference;
///
/// let h = Mat::from_fn(2, 2, |i, j| if i == j { 0.0 } else { 1.0 }); // eigenvalues -1, 1
/// let spec = reference::spectrum(h.as_ref())?;
/// assert!((spec.eigenvalues[0] + 1.0).abs() < 1e-15 && (spec.eigenvalues[1] - 1.0).abs() < 1e-15);
/// assert_eq!(spec.inertia(0.5, 1e-12).negative, 1); // -1 + 0.5 < 0
/// assert_eq!(spec.log_det(0.5).sign, -1.0);
/// # Ok::<(), hinv::HinvError>(())
/// ```
pub fn spectrum(h: MatRef<'_, f64>) -> Result<Spectrum> {
    let n = h.ncols();
    if h.nrows() != n {
        return Err(HinvError::WrongLength { what: "the dense matrix", expected: n, found: h.nrows() });
    }
    let mut eigenvalues = h.self_adjoint_eigenvalues(Side::Lower).map_err(|_| HinvError::Dense {
        matrix: DenseMatrix::ReferenceHessian,
        n,
        failure: DenseFailure::NoConvergence,
    })?;
    eigenvalues.sort_by(f64::total_cmp);
    Ok(Spectrum { eigenvalues })
}

/// The spectrum of a dense symmetric `H` ([`spectrum`]), and what it says
/// about `H + eps I` for any `eps`.
#[derive(Debug, Clone, Serialize)]
pub struct Spectrum {
    /// Eigenvalues of `H` in increasing order.
    pub eigenvalues: Vec<f64>,
}

impl Spectrum {
    /// `log|det(H + eps I)|` and its sign, as the sum of `log|lambda + eps|`
    /// (the same type as [`crate::Factorization::log_det`]); `-inf` and
    /// sign 0 when some `lambda + eps` is exactly zero.
    pub fn log_det(&self, eps: f64) -> SignedLogDet {
        let shifted = self.eigenvalues.iter().map(|l| l + eps);
        let log_abs = shifted.clone().map(|v| v.abs().ln()).sum();
        let sign = if shifted.clone().any(|v| v == 0.0) {
            0.0
        } else if shifted.filter(|v| *v < 0.0).count() % 2 == 1 {
            -1.0
        } else {
            1.0
        };
        SignedLogDet { log_abs, sign }
    }
    /// Inertia of `H + eps I`, counting `|lambda + eps| <= tol` as zero
    /// (`uncertain` is always 0: the caller's `tol` decides).
    pub fn inertia(&self, eps: f64, tol: f64) -> Inertia {
        let mut i = Inertia::default();
        for l in &self.eigenvalues {
            let v = l + eps;
            if v.abs() <= tol {
                i.zero += 1;
            } else if v > 0.0 {
                i.positive += 1;
            } else {
                i.negative += 1;
            }
        }
        i
    }
    /// 2-norm condition number of `H + eps I` (infinite when singular).
    pub fn condition(&self, eps: f64) -> f64 {
        let abs = self.eigenvalues.iter().map(|l| (l + eps).abs());
        let (lo, hi) = abs.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo == 0.0 {
            f64::INFINITY
        } else {
            hi / lo
        }
    }
    /// Number of eigenvalues strictly below `t` (compare
    /// [`Curvature::count_eigenvalues_below`]).
    pub fn count_below(&self, t: f64) -> usize {
        self.eigenvalues.iter().filter(|&&l| l < t).count()
    }
}
