//! One dense symmetric indefinite block, factored in place by faer's
//! Bunch–Kaufman `P^T L B L^T P` with partial (classic) pivoting.

use faer::dyn_stack::{MemStack, StackReq};
use faer::linalg::cholesky::lblt::{factor, solve};
use faer::perm::PermRef;
use faer::{Auto, ColRef, Mat, MatMut, Par};

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
