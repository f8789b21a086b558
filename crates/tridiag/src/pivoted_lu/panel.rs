//! One panel of partial-pivoting LU inside the two-block window, the
//! running determinant, and the panel's `L` applied to right-hand sides.

use faer::dyn_stack::MemBuffer;
use faer::linalg::lu::partial_pivoting::factor::PartialPivLuParams;
use faer::linalg::lu::partial_pivoting::factor::{lu_in_place, lu_in_place_scratch};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::solve_unit_lower_triangular_in_place;
use faer::reborrow::*;
use faer::{Accum, Auto, Mat, MatMut, MatRef, Par};

use super::SignedLogDet;
use crate::workspace::{buffer, grow};

/// faer's defaults for the panel LU.
fn lu_params() -> faer::Spec<PartialPivLuParams, f64> {
    <PartialPivLuParams as Auto<f64>>::auto().into()
}

/// Running product of pivots and permutation signs.
pub(super) struct Accumulator {
    pub(super) det: SignedLogDet,
    /// Panel column of the first exactly zero pivot.
    pub(super) zero_at: usize,
}

impl Accumulator {
    /// Records a row (or column) permutation of the given parity.
    pub(super) fn parity(&mut self, odd: bool) {
        if odd {
            self.det.sign = -self.det.sign;
        }
    }

    /// Records the diagonal of `U`; false on an exactly zero pivot, whose
    /// column it keeps in `zero_at`.
    fn pivots(&mut self, u: MatRef<'_, f64>) -> bool {
        for i in 0..u.ncols() {
            let v = u[(i, i)];
            if v == 0.0 {
                self.zero_at = i;
                self.det = SignedLogDet { log_abs: f64::NEG_INFINITY, sign: 0.0 };
                return false;
            }
            self.det.log_abs += v.abs().ln();
            self.parity(v < 0.0);
        }
        true
    }
}

/// Buffers reused by every panel, sized for the largest window.
pub(super) struct PivotScratch {
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
    /// The rows right of the panel, permuted.
    tmp: Mat<f64>,
    mem: MemBuffer,
}

impl PivotScratch {
    /// Room for windows of up to `rows x cols`.
    pub(super) fn new(rows: usize, cols: usize) -> PivotScratch {
        PivotScratch {
            perm: Vec::with_capacity(rows),
            perm_inv: Vec::with_capacity(rows),
            tmp: Mat::zeros(rows, cols),
            mem: buffer(lu_in_place_scratch::<usize, f64>(rows, cols, Par::Seq, lu_params())),
        }
    }
}

/// Partial-pivoting LU of the first `cols` columns of `w` (over all its
/// rows), applied to the columns right of them: row interchanges,
/// `U12 = L11^-1 A12`, `A22 -= L21 U12`. Returns the row order (row `i` of
/// the result is row `order[i]` of the input; the factors keep it), or
/// `None` on an exactly zero pivot.
pub(super) fn panel_step(
    mut w: MatMut<'_, f64>,
    cols: usize,
    acc: &mut Accumulator,
    par: Par,
    piv: &mut PivotScratch,
) -> Option<Vec<usize>> {
    let m = w.nrows();
    if cols == 0 {
        return Some((0..m).collect());
    }
    piv.perm.resize(m, 0);
    piv.perm_inv.resize(m, 0);
    let (mut panel, mut rest) = w.rb_mut().split_at_col_mut(cols);
    let stack = grow(&mut piv.mem, lu_in_place_scratch::<usize, f64>(m, cols, par, lu_params()));
    let (info, p) = lu_in_place(panel.rb_mut(), &mut piv.perm, &mut piv.perm_inv, par, stack, lu_params());
    let order = p.arrays().0.to_vec();
    acc.parity(info.transposition_count % 2 == 1);
    if !acc.pivots(panel.rb().subrows(0, cols)) {
        return None;
    }
    if rest.ncols() > 0 {
        if piv.tmp.nrows() < m || piv.tmp.ncols() < rest.ncols() {
            piv.tmp = Mat::zeros(m.max(piv.tmp.nrows()), rest.ncols().max(piv.tmp.ncols()));
        }
        let mut tmp = piv.tmp.as_mut().submatrix_mut(0, 0, m, rest.ncols());
        faer::perm::permute_rows(tmp.rb_mut(), rest.rb(), p);
        rest.copy_from(tmp.rb());
        let (l11, l21) = panel.rb().split_at_row(cols);
        let (mut u12, mut a22) = rest.split_at_row_mut(cols);
        solve_unit_lower_triangular_in_place(l11, u12.rb_mut(), par);
        matmul(a22.rb_mut(), Accum::Add, l21, u12.rb(), -1.0, par);
    }
    Some(order)
}

/// Applies a panel's `L` (`rows x cols`, unit lower in its top square) to
/// permuted right-hand-side rows: `y = L11^-1 b1`, `b2 -= L21 y`.
pub(super) fn forward_panel(mut w: MatMut<'_, f64>, l: MatRef<'_, f64>, par: Par) {
    let cols = l.ncols();
    if cols == 0 {
        return;
    }
    let (mut top, mut rest) = w.rb_mut().split_at_row_mut(cols);
    let (l11, l21) = l.split_at_row(cols);
    solve_unit_lower_triangular_in_place(l11, top.rb_mut(), par);
    matmul(rest.rb_mut(), Accum::Add, l21, top.rb(), -1.0, par);
}

/// `dst[i, :] = src[order[i], :]`.
pub(super) fn permute_into(mut dst: MatMut<'_, f64>, src: MatRef<'_, f64>, order: &[usize]) {
    for (i, &from) in order.iter().enumerate() {
        dst.rb_mut().row_mut(i).copy_from(src.row(from));
    }
}
