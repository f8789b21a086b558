//! One dense symmetric indefinite block, factored in place by faer's
//! Bunch–Kaufman `P^T L B L^T P` with partial (classic) pivoting.

use faer::dyn_stack::{MemStack, StackReq};
use faer::linalg::cholesky::lblt::{factor, solve};
use faer::linalg::triangular_solve::{solve_unit_lower_triangular_in_place, solve_unit_upper_triangular_in_place};
use faer::perm::PermRef;
use faer::reborrow::*;
use faer::{Auto, ColRef, Mat, MatMut, MatRef, Par};

use crate::pivots::{scan, BlockDiagnostics, ZeroPivot};

/// The Bunch–Kaufman factors of one block.
#[derive(Debug, Clone)]
pub(crate) struct DenseLblt {
    /// `L` strictly below the diagonal, the diagonal of `B` on it.
    factors: Mat<f64>,
    /// Sub-diagonal of `B` (non-zero entries mark 2x2 pivots).
    subdiag: Vec<f64>,
    /// The permutation, then its inverse, in one buffer: with hundreds of
    /// small blocks the allocations count, not their size.
    perms: Vec<usize>,
}

/// Parameters faer's LBL^T is called with: classic partial pivoting, measured
/// 15–30% faster than faer's default (`PartialDiag`) on these blocks.
pub(crate) fn lblt_params() -> factor::LbltParams {
    factor::LbltParams { pivoting: factor::PivotingStrategy::Partial, ..<factor::LbltParams as Auto<f64>>::auto() }
}

impl DenseLblt {
    /// Scratch needed by [`DenseLblt::factor`] for a block of size `n`.
    pub(crate) fn factor_scratch(n: usize, par: Par) -> StackReq {
        // The kernel's scratch, then (after it) the pivots being scanned.
        factor::cholesky_in_place_scratch::<usize, f64>(n, par, lblt_params().into()).or(StackReq::new::<f64>(n))
    }

    /// Factors `a` (only its lower triangle is read) and scans the pivots;
    /// see [`scan`] for `threshold` and `replace`. `stack` holds
    /// [`DenseLblt::factor_scratch`]: the factors are `a` itself and two
    /// vectors, nothing else is allocated.
    pub(crate) fn factor(
        mut a: Mat<f64>,
        par: Par,
        threshold: f64,
        replace: Option<f64>,
        stack: &mut MemStack,
    ) -> (DenseLblt, BlockDiagnostics, ZeroPivot) {
        let n = a.nrows();
        // faer writes only the entries of 2x2 pivots into `subdiag`: it must
        // start zeroed for the pivot structure to be readable.
        let mut subdiag = vec![0.0; n];
        let mut perms = vec![0usize; 2 * n];
        let (perm, perm_inv) = perms.split_at_mut(n);
        factor::cholesky_in_place(
            a.as_mut(),
            faer::ColMut::from_slice_mut(&mut subdiag).as_diagonal_mut(),
            perm,
            perm_inv,
            par,
            stack,
            lblt_params().into(),
        );
        let (mut d, _) = stack.make_with(n, |i| a[(i, i)]);
        let (diag, zero) = scan(&mut d, &mut subdiag, threshold, replace);
        if replace.is_some() && zero.is_some() {
            for (i, v) in d.iter().enumerate() {
                a[(i, i)] = *v;
            }
        }
        (DenseLblt { factors: a, subdiag, perms }, diag, zero)
    }

    /// Scratch needed by [`DenseLblt::solve_in_place`] for `ncols` columns.
    pub(crate) fn solve_scratch(n: usize, ncols: usize, par: Par) -> StackReq {
        solve::solve_in_place_scratch::<usize, f64>(n, ncols, par)
    }

    /// `rhs <- S^-1 rhs`.
    pub(crate) fn solve_in_place(&self, rhs: MatMut<'_, f64>, par: Par, stack: &mut MemStack) {
        let n = self.factors.nrows();
        if n == 0 || rhs.ncols() == 0 {
            return;
        }
        // The permutation came out of faer's own factorization, so the check
        // inside `new_checked` cannot fail; it is O(n) against an O(n^2) solve.
        let (fwd, inv) = self.perms.split_at(n);
        let perm = PermRef::new_checked(fwd, inv, n);
        solve::solve_in_place(
            self.factors.as_ref(),
            self.factors.diagonal(),
            ColRef::from_slice(&self.subdiag).as_diagonal(),
            perm,
            rhs,
            par,
            stack,
        );
    }

    /// Size of the block.
    pub(crate) fn dim(&self) -> usize {
        self.factors.nrows()
    }
}

/// The three factors of `S^-1 = P^T L^-T B^-1 L^-1 P` applied one at a
/// time, for a caller that needs only `R^T S^-1 R = X^T B^-1 X` with
/// `X = L^-1 P R` (one triangular solve, not two), or that knows where `P R`
/// is zero.
impl DenseLblt {
    /// Position of each row of the block in the pivoted order (`P R` has
    /// row `perm_inv[i]` equal to row `i` of `R`).
    pub(crate) fn perm_inv(&self) -> &[usize] {
        &self.perms[self.dim()..]
    }

    /// `x <- L^-1 x` for the trailing rows `from..` of a pivoted right-hand
    /// side whose rows above `from` are zero (so are those of the result:
    /// `L` is unit lower triangular); `x` holds rows `from..` only.
    pub(crate) fn lower_solve_from(&self, from: usize, x: MatMut<'_, f64>, par: Par) {
        let n = self.dim();
        let l = self.factors.as_ref().submatrix(from, from, n - from, n - from);
        solve_unit_lower_triangular_in_place(l, x, par);
    }

    /// `y <- B^-1 x` with faer's own formulas for the 2x2 pivots (the
    /// solve above is faer's, so the two routes agree to rounding).
    pub(crate) fn pivot_solve(&self, x: MatRef<'_, f64>, mut y: MatMut<'_, f64>) {
        let (n, d) = (self.dim(), self.factors.diagonal());
        let mut i = 0;
        while i < n {
            if self.subdiag[i] == 0.0 {
                let r = d[i].recip();
                for j in 0..x.ncols() {
                    y[(i, j)] = x[(i, j)] * r;
                }
                i += 1;
            } else {
                let off = self.subdiag[i].recip();
                let (a, b) = (off * d[i], off * d[i + 1]);
                let denom = (a * b - 1.0).recip();
                for j in 0..x.ncols() {
                    let (u, v) = (x[(i, j)] * off, x[(i + 1, j)] * off);
                    y[(i, j)] = (b * u - v) * denom;
                    y[(i + 1, j)] = (a * v - u) * denom;
                }
                i += 2;
            }
        }
    }

    /// `y <- P^T L^-T y`: `S^-1 R` from `y = B^-1 L^-1 P R`, in place;
    /// `buf` holds one column (at least `n` rows) while it is permuted.
    pub(crate) fn upper_solve_in_place(&self, mut y: MatMut<'_, f64>, mut buf: faer::ColMut<'_, f64>, par: Par) {
        solve_unit_upper_triangular_in_place(self.factors.transpose(), y.rb_mut(), par);
        let n = self.dim();
        let perm = &self.perms[..n];
        for s in 0..y.ncols() {
            buf.rb_mut().subrows_mut(0, n).copy_from(y.rb().col(s));
            for (i, &p) in perm.iter().enumerate() {
                y[(p, s)] = buf[i];
            }
        }
    }
}
