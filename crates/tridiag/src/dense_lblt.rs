//! One dense symmetric indefinite block, factored in place by
//! Bunch–Kaufman `P^T L B L^T P` with partial (classic) pivoting: faer's
//! kernel, or [`crate::small_lblt`]'s for blocks of at most
//! [`small_lblt::SMALL_MAX`] rows, in the same storage.

use faer::dyn_stack::{MemStack, StackReq};
use faer::linalg::cholesky::lblt::{factor, solve};
use faer::linalg::triangular_solve::{solve_unit_lower_triangular_in_place, solve_unit_upper_triangular_in_place};
use faer::linalg::{temp_mat_scratch, temp_mat_zeroed};
use faer::mat::AsMatMut;
use faer::perm::{permute_rows, PermRef};
use faer::reborrow::*;
use faer::{Auto, ColRef, Mat, MatMut, MatRef, Par};

use crate::pivots::{scan, BlockDiagnostics, ZeroPivot};
use crate::small_lblt;

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

/// Parameters faer's LBL^T is called with for a block of size `n`: classic
/// partial pivoting, measured 15–30% faster than faer's default
/// (`PartialDiag`) on these blocks, and panels of 24 columns between 64
/// and 1024 rows (faer's default is 64): 10–19% faster at n = 96, 256 and
/// 512 (best of alternating runs on a random symmetric block,
/// `cargo run --release -p tridiag --example bk_block_size`), no clear
/// difference at 1024, and below 64 the kernel is unblocked either way.
pub(crate) fn lblt_params(n: usize) -> factor::LbltParams {
    let auto = <factor::LbltParams as Auto<f64>>::auto();
    let block_size = if n > 64 && n < 1024 { 24 } else { auto.block_size };
    factor::LbltParams { pivoting: factor::PivotingStrategy::Partial, block_size, ..auto }
}

impl DenseLblt {
    /// Scratch needed by [`DenseLblt::factor`] for a block of size `n`.
    pub(crate) fn factor_scratch(n: usize, par: Par) -> StackReq {
        // The kernel's scratch, then (after it) the pivots being scanned.
        factor::cholesky_in_place_scratch::<usize, f64>(n, par, lblt_params(n).into()).or(StackReq::new::<f64>(n))
    }

    /// Factors `a` (only its lower triangle is read) and scans the pivots;
    /// see [`scan`] for `threshold` and `replace`. `stack` holds
    /// [`DenseLblt::factor_scratch`]: the factors are `a` itself and two
    /// vectors, and the diagnostics keep the pivots; nothing else is
    /// allocated.
    pub(crate) fn factor(
        mut a: Mat<f64>,
        par: Par,
        threshold: f64,
        replace: Option<f64>,
        stack: &mut MemStack,
    ) -> (DenseLblt, BlockDiagnostics, ZeroPivot) {
        let n = a.nrows();
        let mut subdiag = vec![0.0; n];
        let mut perms = vec![0usize; 2 * n];
        let mut pivots = vec![0.0; n];
        let (mut diag, zero) =
            factor_in_place(a.as_mut(), &mut subdiag, &mut perms, &mut pivots, par, threshold, replace, stack);
        diag.pivots = pivots;
        (DenseLblt { factors: a, subdiag, perms }, diag, zero)
    }

    /// Scratch needed by [`DenseLblt::solve_in_place`] for `ncols` columns.
    pub(crate) fn solve_scratch(n: usize, ncols: usize, par: Par) -> StackReq {
        solve::solve_in_place_scratch::<usize, f64>(n, ncols, par)
    }

    /// `rhs <- S^-1 rhs`.
    pub(crate) fn solve_in_place(&self, rhs: MatMut<'_, f64>, par: Par, stack: &mut MemStack) {
        solve_in_place(self.factors.as_ref(), &self.subdiag, &self.perms, rhs, par, stack);
    }

    /// Size of the block.
    pub(crate) fn dim(&self) -> usize {
        self.factors.nrows()
    }

    /// The permutation `P` (row `i` of `P x` is row `perm[i]` of `x`) and
    /// its inverse.
    pub(crate) fn perm(&self) -> (&[usize], &[usize]) {
        self.perms.split_at(self.dim())
    }

    /// The first row of the pivot (`1 x 1` or `2 x 2`) holding row `i` of
    /// `B`; `n` for `i >= n`.
    pub(crate) fn pivot_start(&self, i: usize) -> usize {
        let n = self.dim();
        let mut k = 0;
        while k < n {
            let next = k + self.pivot_len(k);
            if next > i {
                return k;
            }
            k = next;
        }
        n
    }

    /// Size (1 or 2) of the pivot of `B` starting at row `k`: faer marks a
    /// `2 x 2` pivot by a non-zero sub-diagonal entry at its first row.
    fn pivot_len(&self, k: usize) -> usize {
        if self.subdiag[k] == 0.0 || k + 1 == self.dim() {
            1
        } else {
            2
        }
    }

    /// Scratch of [`DenseLblt::forward_half`] and
    /// [`DenseLblt::backward_half`] on `ncols` columns.
    pub(crate) fn half_scratch(n: usize, ncols: usize) -> StackReq {
        temp_mat_scratch::<f64>(n, ncols)
    }

    /// `x <- L^-1 P x`, the first half of a solve.
    pub(crate) fn forward_half(&self, mut x: MatMut<'_, f64>, par: Par, stack: &mut MemStack) {
        let n = self.dim();
        if n == 0 || x.ncols() == 0 {
            return;
        }
        let (fwd, inv) = self.perm();
        let (mut tmp, _) = temp_mat_zeroed::<f64, _, _>(n, x.ncols(), stack);
        let mut tmp = tmp.as_mat_mut();
        permute_rows(tmp.rb_mut(), x.rb(), PermRef::new_checked(fwd, inv, n));
        solve_unit_lower_triangular_in_place(self.factors.as_ref(), tmp.rb_mut(), par);
        x.copy_from(tmp.rb());
    }

    /// `x <- L[s.., s..]^-1 x` for the rows `s..` of an `L^-1 P y` whose
    /// rows above `s` are zero (`x` holds rows `s..` only).
    pub(crate) fn lower_solve_from(&self, s: usize, x: MatMut<'_, f64>, par: Par) {
        let n = self.dim();
        if s < n && x.ncols() > 0 {
            solve_unit_lower_triangular_in_place(self.factors.as_ref().submatrix(s, s, n - s, n - s), x, par);
        }
    }

    /// `x <- B^-1 x` on rows `s..` of `B` (`x` holds those rows; `s` the
    /// first row of a pivot, see [`DenseLblt::pivot_start`]). The `2 x 2`
    /// pivots are inverted as faer's own solve inverts them, scaled by the
    /// off-diagonal entry.
    pub(crate) fn pivot_solve_from(&self, s: usize, mut x: MatMut<'_, f64>) {
        let n = self.dim();
        let k = x.ncols();
        let d = self.factors.diagonal().column_vector();
        let mut i = s;
        while i < n {
            if self.pivot_len(i) == 1 {
                let inv = d[i].recip();
                for j in 0..k {
                    x[(i - s, j)] *= inv;
                }
                i += 1;
            } else {
                let e_inv = self.subdiag[i].recip();
                let (a, c) = (e_inv * d[i], e_inv * d[i + 1]);
                let denom = (a * c - 1.0).recip();
                for j in 0..k {
                    let (u, v) = (x[(i - s, j)] * e_inv, x[(i + 1 - s, j)] * e_inv);
                    x[(i - s, j)] = (c * u - v) * denom;
                    x[(i + 1 - s, j)] = (a * v - u) * denom;
                }
                i += 2;
            }
        }
    }

    /// `x <- P^T L^-T x`, the second half of a solve.
    pub(crate) fn backward_half(&self, mut x: MatMut<'_, f64>, par: Par, stack: &mut MemStack) {
        let n = self.dim();
        if n == 0 || x.ncols() == 0 {
            return;
        }
        let (fwd, inv) = self.perm();
        solve_unit_upper_triangular_in_place(self.factors.transpose(), x.rb_mut(), par);
        let (mut tmp, _) = temp_mat_zeroed::<f64, _, _>(n, x.ncols(), stack);
        let mut tmp = tmp.as_mat_mut();
        permute_rows(tmp.rb_mut(), x.rb(), PermRef::new_checked(fwd, inv, n).inverse());
        x.copy_from(tmp.rb());
    }
}

/// Factors `a` in place, with the sub-diagonal of `B` written to
/// `subdiag` (`n` entries), the permutation then its inverse to `perms`
/// (`2n`) and the pivots' eigenvalues to `pivots` (`n`): the storage of
/// [`DenseLblt`], or a caller's buffers shared by many blocks. Scans the
/// pivots as [`DenseLblt::factor`] does; `stack` holds
/// [`DenseLblt::factor_scratch`].
pub(crate) fn factor_in_place(
    mut a: MatMut<'_, f64>,
    subdiag: &mut [f64],
    perms: &mut [usize],
    pivots: &mut [f64],
    par: Par,
    threshold: f64,
    replace: Option<f64>,
    stack: &mut MemStack,
) -> (BlockDiagnostics, ZeroPivot) {
    let n = a.nrows();
    // faer writes only the entries of 2x2 pivots into `subdiag`: it must
    // start zeroed for the pivot structure to be readable.
    subdiag.fill(0.0);
    let (perm, perm_inv) = perms.split_at_mut(n);
    if n <= small_lblt::SMALL_MAX && a.row_stride() == 1 {
        small_lblt::factor(a.rb_mut(), subdiag, perm, perm_inv);
    } else {
        factor::cholesky_in_place(
            a.rb_mut(),
            faer::ColMut::from_slice_mut(subdiag).as_diagonal_mut(),
            perm,
            perm_inv,
            par,
            stack,
            lblt_params(n).into(),
        );
    }
    let (mut d, _) = stack.make_with(n, |i| a[(i, i)]);
    let (diag, zero) = scan(&mut d, subdiag, threshold, replace, pivots);
    if replace.is_some() && zero.is_some() {
        for (i, v) in d.iter().enumerate() {
            a[(i, i)] = *v;
        }
    }
    (diag, zero)
}

/// `rhs <- S^-1 rhs` for the factors [`factor_in_place`] wrote; `stack`
/// holds [`DenseLblt::solve_scratch`].
pub(crate) fn solve_in_place(
    factors: MatRef<'_, f64>,
    subdiag: &[f64],
    perms: &[usize],
    rhs: MatMut<'_, f64>,
    par: Par,
    stack: &mut MemStack,
) {
    let n = factors.nrows();
    if n == 0 || rhs.ncols() == 0 {
        return;
    }
    // The permutation came out of faer's own factorization, so the check
    // inside `new_checked` cannot fail; it is O(n) against an O(n^2) solve.
    let (fwd, inv) = perms.split_at(n);
    let perm = PermRef::new_checked(fwd, inv, n);
    solve::solve_in_place(
        factors,
        factors.diagonal(),
        ColRef::from_slice(subdiag).as_diagonal(),
        perm,
        rhs,
        par,
        stack,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::dyn_stack::MemBuffer;
    use rand::{Rng, SeedableRng};

    /// The factors of a symmetric indefinite matrix with a zero diagonal
    /// (Bunch–Kaufman takes 2x2 pivots on it).
    fn factored(n: usize, seed: u64) -> DenseLblt {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let a = Mat::<f64>::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0));
        let s = Mat::from_fn(n, n, |i, j| if i == j { 0.0 } else { a[(i, j)] + a[(j, i)] });
        let mut mem = MemBuffer::new(DenseLblt::factor_scratch(n, Par::Seq));
        let (lblt, diag, zero) = DenseLblt::factor(s, Par::Seq, 0.0, None, MemStack::new(&mut mem));
        assert!(zero.is_none() && diag.two_by_two > 0, "the test needs 2x2 pivots");
        lblt
    }

    #[test]
    fn halves_and_pivots_make_the_whole_solve() {
        let n = 40;
        let lblt = factored(n, 7);
        let b = Mat::<f64>::from_fn(n, 3, |i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let mut whole = b.clone();
        let mut halves = b.clone();
        let mut mem = MemBuffer::new(DenseLblt::solve_scratch(n, 3, Par::Seq).or(DenseLblt::half_scratch(n, 3)));
        let stack = MemStack::new(&mut mem);
        lblt.solve_in_place(whole.as_mut(), Par::Seq, stack);
        lblt.forward_half(halves.as_mut(), Par::Seq, stack);
        lblt.pivot_solve_from(0, halves.as_mut());
        lblt.backward_half(halves.as_mut(), Par::Seq, stack);
        // The same operations in the same order as faer's solve: only the
        // copies differ, so the results agree to rounding of O(n) terms.
        let scale = whole.norm_max();
        assert!((&whole - &halves).norm_max() <= 1e-13 * scale, "halves differ from the solve");
    }

    #[test]
    fn trailing_rows_solve_alone() {
        let n = 40;
        let lblt = factored(n, 11);
        let (perm, _) = lblt.perm();
        for row in [0, 1, 17, 18, 39] {
            let s = lblt.pivot_start(row);
            assert!(s <= row && (s == 0 || lblt.pivot_start(s - 1) < s), "pivot_start({row}) = {s}");
            // A right-hand side whose permuted rows above `s` are zero.
            let mut e = Mat::<f64>::zeros(n, 2);
            for i in s..n {
                e[(i, 0)] = (i % 5) as f64 - 2.0;
                e[(i, 1)] = 1.0 / (1.0 + i as f64);
            }
            let mut b = Mat::<f64>::zeros(n, 2);
            for i in 0..n {
                b.row_mut(perm[i]).copy_from(e.row(i));
            }
            let mut mem = MemBuffer::new(DenseLblt::half_scratch(n, 2));
            lblt.forward_half(b.as_mut(), Par::Seq, MemStack::new(&mut mem));
            lblt.pivot_solve_from(0, b.as_mut());
            let mut tail = e.as_ref().subrows(s, n - s).to_owned();
            lblt.lower_solve_from(s, tail.as_mut(), Par::Seq);
            lblt.pivot_solve_from(s, tail.as_mut());
            let scale = b.norm_max();
            assert!(b.as_ref().subrows(0, s).norm_max() == 0.0, "rows above {s} must stay zero");
            assert!((b.as_ref().subrows(s, n - s) - &tail).norm_max() <= 1e-13 * scale, "tail from {s}");
        }
    }
}
