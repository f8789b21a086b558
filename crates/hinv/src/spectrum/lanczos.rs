//! Lanczos with full reorthogonalization on a symmetric operator given as a
//! closure (the HVP, or exact solves with `H - sigma I`), and the
//! Rayleigh–Ritz extraction of its eigenpairs.
//!
//! The projected matrix is kept in full (`T = Q^T W`, `W = op(Q)`), not as
//! a tridiagonal: then a fresh start vector can be appended whenever the
//! Krylov space becomes invariant (or a count says an eigenvalue is
//! missing, as for a multiple eigenvalue, of which one start vector sees a
//! single copy) and the extraction stays the same.

use faer::{Mat, Side};

use crate::error::{DenseFailure, DenseMatrix, HinvError, OverflowSite, Result};

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn norm(v: &[f64]) -> f64 {
    dot(v, v).sqrt()
}

pub(crate) fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    y.iter_mut().zip(x).for_each(|(yi, xi)| *yi += a * xi);
}

/// A deterministic pseudo-random vector with entries in `[-1, 1)`: the
/// start vectors, so that every run of a command gives the same digits.
pub(crate) fn pseudo_random(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0x6A09_E667_F3BC_C909);
    (0..n)
        .map(|_| {
            // SplitMix64.
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// An orthonormal Krylov basis `Q`, the operator applied to it (`W`), and
/// the projected matrix `Q^T W`.
pub(crate) struct Krylov {
    /// Orthonormal columns; one more than `w` once a step has run.
    q: Vec<Vec<f64>>,
    w: Vec<Vec<f64>>,
    /// `t[j][i] = q_i . w_j` for `i <= j`.
    t: Vec<Vec<f64>>,
    seed: u64,
    /// Fresh start vectors appended (the first one included).
    pub(crate) starts: usize,
}

/// Ritz pairs of the operator on the current basis.
pub(crate) struct Ritz {
    /// Ritz values of the operator, of the pairs picked.
    pub(crate) theta: Vec<f64>,
    /// Ritz vectors (unit, orthonormal).
    pub(crate) vectors: Vec<Vec<f64>>,
    /// `||op(v) - theta v||` of each.
    pub(crate) residuals: Vec<f64>,
}

impl Krylov {
    pub(crate) fn new(n: usize, seed: u64) -> Krylov {
        let mut k = Krylov { q: Vec::new(), w: Vec::new(), t: Vec::new(), seed, starts: 0 };
        k.push_fresh(n);
        k
    }

    /// Steps taken (operator applications).
    pub(crate) fn len(&self) -> usize {
        self.w.len()
    }

    /// Orthogonalizes `v` against the basis twice ("twice is enough") and
    /// appends it; false when nothing independent is left of it.
    fn push(&mut self, mut v: Vec<f64>) -> bool {
        let before = norm(&v);
        for _ in 0..2 {
            for q in &self.q {
                let c = dot(q, &v);
                axpy(&mut v, -c, q);
            }
        }
        let after = norm(&v);
        if !(after > 1e-10 * before && after > 0.0 && after.is_finite()) {
            return false;
        }
        v.iter_mut().for_each(|x| *x /= after);
        self.q.push(v);
        true
    }

    /// Appends a fresh pseudo-random direction (a restart); false when the
    /// basis already spans the whole space.
    pub(crate) fn push_fresh(&mut self, n: usize) -> bool {
        if self.q.len() >= n {
            return false;
        }
        for _ in 0..4 {
            self.seed = self.seed.wrapping_add(1);
            if self.push(pseudo_random(n, self.seed)) {
                self.starts += 1;
                return true;
            }
        }
        false
    }

    /// Applies the operator to the newest basis vector and extends the
    /// basis by the new direction (a fresh one if the space is invariant).
    /// False when the basis spans the whole space and every vector has
    /// been applied.
    pub(crate) fn step(&mut self, op: &mut impl FnMut(&[f64]) -> Result<Vec<f64>>) -> Result<bool> {
        let n = self.q[0].len();
        if self.w.len() == self.q.len() && !self.push_fresh(n) {
            return Ok(false);
        }
        let j = self.w.len();
        let w = op(&self.q[j])?;
        if let Some(bad) = w.iter().find(|x| !x.is_finite()) {
            return Err(HinvError::Overflow { what: OverflowSite::LanczosVector, value: *bad });
        }
        self.t.push(self.q[..=j].iter().map(|q| dot(q, &w)).collect());
        let next = w.clone();
        self.w.push(w);
        if !self.push(next) {
            self.push_fresh(n);
        }
        Ok(true)
    }

    /// Rayleigh–Ritz on the applied part of the basis: every Ritz value,
    /// and the vectors and residuals of those `pick` chooses (by index into
    /// the increasing Ritz values), so that a step costs `O(m n)` for the
    /// few pairs wanted rather than `O(m^2 n)` for all.
    pub(crate) fn ritz(&self, pick: impl FnOnce(&[f64]) -> Vec<usize>) -> Result<Ritz> {
        let m = self.w.len();
        // The upper triangle only: `q_i . w_j` for `i > j + 1` is zero up
        // to the reorthogonalization's rounding.
        let t = Mat::from_fn(m, m, |i, j| if i <= j { self.t[j][i] } else { self.t[i][j] });
        let e = t.self_adjoint_eigen(Side::Lower).map_err(|_| HinvError::Dense {
            matrix: DenseMatrix::LanczosProjection,
            n: m,
            failure: DenseFailure::NoConvergence,
        })?;
        let (s, u) = (e.S().column_vector(), e.U());
        let theta: Vec<f64> = (0..m).map(|k| s[k]).collect();
        let n = self.q[0].len();
        let chosen = pick(&theta);
        let mut out = Ritz { theta: Vec::new(), vectors: Vec::new(), residuals: Vec::new() };
        for k in chosen {
            let mut v = vec![0.0; n];
            let mut r = vec![0.0; n];
            for i in 0..m {
                axpy(&mut v, u[(i, k)], &self.q[i]);
                axpy(&mut r, u[(i, k)], &self.w[i]);
            }
            axpy(&mut r, -theta[k], &v);
            out.theta.push(theta[k]);
            out.residuals.push(norm(&r));
            out.vectors.push(v);
        }
        Ok(out)
    }
}
