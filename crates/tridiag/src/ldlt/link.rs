//! The coupling of a chain block to the next one, and the part of the
//! block's inverse the coupling needs.
//!
//! With `R = E_cols` (the columns are the narrow side) or `R = E_cols C^T`
//! (the rows are), the Schur update of the next block needs only
//! `R^T S^-1 R`, and the backward sweep `S^-1 R`. From the Bunch–Kaufman
//! factors `S = P^T L B L^T P`, with `X = L^-1 P R`,
//!
//! ```text
//! R^T S^-1 R = X^T B^-1 X,      S^-1 R = P^T L^-T (B^-1 X)
//! ```
//!
//! so factoring costs one triangular solve, not the two of a full solve
//! (and `P E_cols` is a permuted identity: sorted by their first non-zero
//! row, panels of its columns skip the rows above it). The second solve,
//! `L^-T`, is left to the first backward sweep that needs it: a
//! factorization used for its inertia or log-determinant only never pays
//! it. Measured with `cargo run --release -p hinv-benches --example
//! link_inverse` (numbers in the CHANGELOG).

use std::sync::{PoisonError, RwLock};

use faer::dyn_stack::{MemStack, StackReq};
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::{temp_mat_scratch, temp_mat_zeroed};
use faer::mat::AsMatMut;
use faer::reborrow::*;
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::dense_lblt::DenseLblt;
use crate::input::Coupling;

/// Columns of `P E_cols` solved together: each panel starts at its first
/// column's first non-zero row.
const PANEL: usize = 32;

/// The part of `S^-1` the backward sweep needs, in one of two states (the
/// same buffer, solved in place).
#[derive(Debug, Clone)]
enum Inverse {
    /// After factoring: `B^-1 X`.
    Half(Mat<f64>),
    /// After the first backward sweep: `S^-1 R`.
    Full(Mat<f64>),
}

/// Coupling of a chain block to the next block, with the part of the
/// inverse the backward sweep needs.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) coupling: Coupling,
    /// `R = E_cols` when true, `R = E_cols C^T` otherwise (the narrower side).
    by_cols: bool,
    /// Completed in place (under the write lock) by the first sweep.
    inverse: RwLock<Inverse>,
}

impl Clone for Link {
    fn clone(&self) -> Link {
        let inverse = self.inverse.read().unwrap_or_else(PoisonError::into_inner).clone();
        Link { coupling: self.coupling.clone(), by_cols: self.by_cols, inverse: RwLock::new(inverse) }
    }
}

impl Link {
    /// Stack [`Link::new`] needs for a block of size `n` and a coupling of
    /// up to `r x m`.
    pub(crate) fn scratch(n: usize, r: usize, m: usize, _par: Par) -> StackReq {
        let w = m.min(r);
        StackReq::all_of(&[
            StackReq::new::<usize>(m),
            temp_mat_scratch::<f64>(n, w),
            temp_mat_scratch::<f64>(n, w),
            temp_mat_scratch::<f64>(w, w),
            temp_mat_scratch::<f64>(m, m),
            temp_mat_scratch::<f64>(r, m),
        ])
    }

    /// Factors the link of `lblt` to the next block through `coupling`;
    /// writes the lower triangle of the update `-C S^-1[cols, cols] C^T`
    /// for the next block into `upd` (`|rows| x |rows|`). What the link
    /// keeps (`B^-1 X`) is all it allocates; `stack` holds
    /// [`Link::scratch`].
    pub(crate) fn new(
        lblt: &DenseLblt,
        coupling: Coupling,
        par: Par,
        mut upd: MatMut<'_, f64>,
        stack: &mut MemStack,
    ) -> Link {
        let (n, cols) = (lblt.dim(), coupling.cols.clone());
        let c = coupling.c.as_ref();
        let (r, m) = c.shape();
        let by_cols = m <= r;
        let w = m.min(r);
        let pinv = lblt.perm_inv();
        let (mut order, stack) = stack.make_with(if by_cols { m } else { 0 }, |j| j);
        let (mut x, stack) = temp_mat_zeroed::<f64, _, _>(n, w, stack);
        let mut x = x.as_mat_mut();
        if by_cols {
            order.sort_unstable_by_key(|&j| pinv[cols.start + j]);
            for (s, &j) in order.iter().enumerate() {
                x[(pinv[cols.start + j], s)] = 1.0;
            }
            for start in (0..m).step_by(PANEL) {
                let width = PANEL.min(m - start);
                let from = pinv[cols.start + order[start]];
                lblt.lower_solve_from(from, x.rb_mut().submatrix_mut(from, start, n - from, width), par);
            }
        } else {
            for (j, col) in cols.clone().enumerate() {
                x.rb_mut().row_mut(pinv[col]).copy_from(c.col(j).transpose());
            }
            let from = cols.clone().map(|col| pinv[col]).min().unwrap_or(n);
            lblt.lower_solve_from(from, x.rb_mut().subrows_mut(from, n - from), par);
        }
        let (mut ys, stack) = temp_mat_zeroed::<f64, _, _>(n, w, stack);
        let mut ys = ys.as_mat_mut();
        lblt.pivot_solve(x.rb(), ys.rb_mut());
        // Kept in the original column order, so that completing it needs no
        // column order.
        let mut y = Mat::<f64>::zeros(n, w);
        if by_cols {
            for (s, &j) in order.iter().enumerate() {
                y.col_mut(j).copy_from(ys.rb().col(s));
            }
        } else {
            y.copy_from(ys.rb());
        }
        let (mut ws, stack) = temp_mat_zeroed::<f64, _, _>(w, w, stack);
        let mut ws = ws.as_mat_mut();
        triangular::matmul(
            ws.rb_mut(),
            BlockStructure::TriangularLower,
            Accum::Replace,
            x.rb().transpose(),
            BlockStructure::Rectangular,
            ys.rb(),
            BlockStructure::Rectangular,
            1.0,
            par,
        );
        // Only the lower triangle is computed: the upper one must not keep
        // the previous block's update.
        upd.fill(0.0);
        if by_cols {
            // W = E_cols^T S^-1 E_cols back in the original column order
            // (symmetric, both triangles), then -C W C^T.
            let (mut wm, stack) = temp_mat_zeroed::<f64, _, _>(m, m, stack);
            let mut wm = wm.as_mat_mut();
            for (a, &ja) in order.iter().enumerate() {
                for (b, &jb) in order.iter().enumerate().take(a + 1) {
                    wm[(ja, jb)] = ws[(a, b)];
                    wm[(jb, ja)] = ws[(a, b)];
                }
            }
            let (mut cw, _) = temp_mat_zeroed::<f64, _, _>(r, m, stack);
            let mut cw = cw.as_mat_mut();
            matmul(cw.rb_mut(), Accum::Replace, c, wm.rb(), 1.0, par);
            lower_product(upd, cw.rb(), c.transpose(), par);
        } else {
            // R^T S^-1 R is the update itself.
            for j in 0..r {
                for i in j..r {
                    upd[(i, j)] = -ws[(i, j)];
                }
            }
        }
        Link { coupling, by_cols, inverse: RwLock::new(Inverse::Half(y)) }
    }

    /// `cur -= S^-1 E_cols C^T next_rows` (the backward sweep's step),
    /// completing the inverse first if no sweep has yet; `tmp` has at
    /// least `max(n, |cols|)` rows and `next_rows`' columns.
    pub(crate) fn backward(
        &self,
        lblt: &DenseLblt,
        cur: MatMut<'_, f64>,
        next_rows: MatRef<'_, f64>,
        tmp: &mut Mat<f64>,
        par: Par,
    ) {
        loop {
            let inverse = self.inverse.read().unwrap_or_else(PoisonError::into_inner);
            if let Inverse::Full(z) = &*inverse {
                if self.by_cols {
                    let c = &self.coupling;
                    let mut t = tmp.as_mut().subrows_mut(0, c.cols.len());
                    matmul(t.rb_mut(), Accum::Replace, c.c.transpose(), next_rows, 1.0, par);
                    matmul(cur, Accum::Add, z.as_ref(), t.rb(), -1.0, par);
                } else {
                    matmul(cur, Accum::Add, z.as_ref(), next_rows, -1.0, par);
                }
                return;
            }
            drop(inverse);
            self.complete(lblt, tmp, par);
        }
    }

    /// `S^-1 R = P^T L^-T (B^-1 X)` in place of the half inverse (by the
    /// first sweep to get the write lock; a no-op for the others). `tmp`'s
    /// first column (at least `n` rows) is the permutation's buffer.
    fn complete(&self, lblt: &DenseLblt, tmp: &mut Mat<f64>, par: Par) {
        let mut inverse = self.inverse.write().unwrap_or_else(PoisonError::into_inner);
        // Taken out first: were the solve to panic, the link would hold an
        // empty inverse (a shape error on use), not a half-solved one.
        match std::mem::replace(&mut *inverse, Inverse::Full(Mat::new())) {
            Inverse::Half(mut y) => {
                lblt.upper_solve_in_place(y.as_mut(), tmp.as_mut().col_mut(0), par);
                *inverse = Inverse::Full(y);
            }
            full => *inverse = full,
        }
    }
}

/// The lower triangle of `-a b` into `dst` (Bunch–Kaufman reads only the
/// lower triangle, so the upper one is not computed).
fn lower_product(dst: MatMut<'_, f64>, a: MatRef<'_, f64>, b: MatRef<'_, f64>, par: Par) {
    triangular::matmul(
        dst,
        BlockStructure::TriangularLower,
        Accum::Replace,
        a,
        BlockStructure::Rectangular,
        b,
        BlockStructure::Rectangular,
        -1.0,
        par,
    );
}
