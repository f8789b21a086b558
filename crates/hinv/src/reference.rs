//! The dense reference route: form `H` column by column from exact HVPs and
//! solve or diagonalise it with faer. Quadratic memory, cubic time: for
//! tests, benchmarks and users who want a second opinion on small networks.

use faer::{Mat, Side};
use serde::Serialize;

use crate::curvature::Curvature;
use crate::error::{DenseFailure, DenseMatrix, HinvError, Result};
use tridiag::Inertia;

/// Memory budget of the dense route.
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

/// The spectrum of `H`, from a dense symmetric eigendecomposition.
#[derive(Debug, Clone, Serialize)]
pub struct Spectrum {
    /// Eigenvalues of `H` in increasing order.
    pub eigenvalues: Vec<f64>,
}

impl Spectrum {
    /// `log|det(H + eps I)|`.
    pub fn log_abs_det(&self, eps: f64) -> f64 {
        self.eigenvalues.iter().map(|l| (l + eps).abs().ln()).sum()
    }
    /// Inertia of `H + eps I`, counting `|lambda + eps| <= tol` as zero.
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
    /// Number of eigenvalues strictly below `t`.
    pub fn count_below(&self, t: f64) -> usize {
        self.eigenvalues.iter().filter(|&&l| l < t).count()
    }
}

impl Curvature {
    /// Bytes the dense route needs: `H` and one factor-sized copy.
    pub fn dense_bytes(&self) -> u64 {
        let p = self.num_params() as u64;
        2 * p * p * 8
    }

    fn check_dense(&self, limit: DenseLimit) -> Result<()> {
        let need = self.dense_bytes();
        if need > limit.bytes {
            return Err(HinvError::TooLarge {
                what: "the dense Hessian route",
                needed: crate::error::Bytes(need),
                limit: crate::error::Bytes(limit.bytes),
                hint: "use the structured solver, or raise the limit if the machine has the memory",
            });
        }
        Ok(())
    }

    /// The dense Hessian, built from exact HVPs against blocks of unit
    /// vectors (exact to rounding, unlike finite differences), symmetrised.
    pub fn dense_hessian(&self, limit: DenseLimit) -> Result<Mat<f64>> {
        self.check_dense(limit)?;
        let p = self.num_params();
        let mut h = Mat::zeros(p, p);
        // Columns in chunks keep the HVP's temporaries small.
        let chunk = 256usize;
        let mut c0 = 0;
        while c0 < p {
            let nc = chunk.min(p - c0);
            let e = Mat::from_fn(p, nc, |i, j| if i == c0 + j { 1.0 } else { 0.0 });
            let hc = self.hvp_many(e.as_ref())?;
            h.as_mut().subcols_mut(c0, nc).copy_from(&hc);
            c0 += nc;
        }
        let sym = Mat::from_fn(p, p, |i, j| 0.5 * (h[(i, j)] + h[(j, i)]));
        Ok(sym)
    }

    /// `(H + eps I)^-1 g` by a dense LU solve of the dense Hessian.
    pub fn dense_solve(&self, h: &Mat<f64>, eps: f64, g: &[f64]) -> Result<Vec<f64>> {
        let p = self.num_params();
        crate::error::check_vector("the right-hand side", faer::MatRef::from_column_major_slice(g, g.len(), 1), p)?;
        let mut a = h.clone();
        for i in 0..p {
            a[(i, i)] += eps;
        }
        let lu = a.partial_piv_lu();
        let rhs = Mat::from_fn(p, 1, |i, _| g[i]);
        let x = faer::linalg::solvers::Solve::solve(&lu, &rhs);
        let out: Vec<f64> = x.col(0).iter().copied().collect();
        if out.iter().any(|v| !v.is_finite()) {
            return Err(HinvError::Dense {
                matrix: DenseMatrix::ReferenceSystem,
                n: p,
                failure: DenseFailure::Singular,
            });
        }
        Ok(out)
    }

    /// Eigenvalues of a dense Hessian (as from [`Curvature::dense_hessian`]).
    pub fn spectrum(h: &Mat<f64>) -> Result<Spectrum> {
        let mut eigenvalues = h.self_adjoint_eigenvalues(Side::Lower).map_err(|_| HinvError::Dense {
            matrix: DenseMatrix::ReferenceHessian,
            n: h.nrows(),
            failure: DenseFailure::NoConvergence,
        })?;
        eigenvalues.sort_by(f64::total_cmp);
        Ok(Spectrum { eigenvalues })
    }
}
