//! Solves with the pivoted factors: the elimination's row operations on
//! the right-hand side, then back substitution, block column by block
//! column.
//!
//! The intermediate `L^-1 P b` of block `k` has exactly `n_k` rows (the
//! `free` pivots of phase 1, then the `|J|` of phase 2), and block `k` of
//! the right-hand side has been read by the time it is known, so it is
//! kept there: a solve allocates its few window buffers and nothing per
//! block.

use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::solve_upper_triangular_in_place;
use faer::reborrow::*;
use faer::{Accum, Mat, MatMut, MatRef};

use super::panel::{forward_panel, permute_into};
use super::PivotedLu;
use crate::error::TridiagError;

impl PivotedLu {
    /// `A^-1 rhs` as a new matrix; see [`PivotedLu::solve_in_place`].
    pub fn solve(&self, rhs: MatRef<'_, f64>) -> Result<Mat<f64>, TridiagError> {
        let mut x = rhs.to_owned();
        self.solve_in_place(x.as_mut())?;
        Ok(x)
    }

    /// Overwrites `rhs` (`dim x m`, any `m`) with `A^-1 rhs`: the row
    /// operations of the elimination applied to `S rhs`, back substitution
    /// with `U`, and the scaling `S` again.
    ///
    /// # Errors
    /// [`TridiagError::ShapeMismatch`] when `rhs` has not `dim` rows,
    /// [`TridiagError::NonFinite`] for NaN or infinite entries,
    /// [`TridiagError::SolveSingular`] when the elimination met an exactly
    /// zero pivot.
    pub fn solve_in_place(&self, mut rhs: MatMut<'_, f64>) -> Result<(), TridiagError> {
        let nb = self.offsets.len() - 1;
        if rhs.nrows() != self.dim() {
            return Err(TridiagError::ShapeMismatch {
                op: "PivotedLu::solve_in_place",
                expected: (self.dim(), rhs.ncols()),
                found: (rhs.nrows(), rhs.ncols()),
            });
        }
        if let Some((first_block, _)) = self.singular_at {
            return Err(TridiagError::SolveSingular { zero_pivots: 1, first_block });
        }
        for k in 0..nb {
            if !rhs.rb().subrows(self.offsets[k], self.size(k)).is_all_finite() {
                return Err(TridiagError::NonFinite { what: "right-hand side", block: k });
            }
        }
        if nb == 0 {
            return Ok(());
        }
        for (i, &s) in self.scale.iter().enumerate() {
            rhs.rb_mut().row_mut(i).iter_mut().for_each(|v| *v *= s);
        }
        let m = rhs.ncols();
        let big = (0..nb).map(|k| self.size(k)).max().unwrap_or(0);
        let mut bufs = Buffers {
            left: Mat::zeros(big, m),
            a: Mat::zeros(2 * big, m),
            b: Mat::zeros(2 * big, m),
            cx: Mat::zeros(big, m),
        };
        self.forward(rhs.rb_mut(), &mut bufs);
        self.backward(rhs.rb_mut(), &mut bufs);
        for (i, &s) in self.scale.iter().enumerate() {
            rhs.rb_mut().row_mut(i).iter_mut().for_each(|v| *v *= s);
        }
        Ok(())
    }

    /// `L^-1 P` applied to `rhs`, block `k`'s result (`y1`, then `y2`)
    /// stored in its own rows.
    fn forward(&self, mut rhs: MatMut<'_, f64>, bufs: &mut Buffers) {
        let nb = self.offsets.len() - 1;
        let m = rhs.ncols();
        bufs.left.as_mut().subrows_mut(0, self.size(0)).copy_from(rhs.rb().subrows(0, self.size(0)));
        for (k, st) in self.steps.iter().enumerate() {
            let par = self.par.kernel_par(self.size(k) + self.size(k + 1));
            let (n0, s) = (st.top.nrows(), st.c.nrows());
            let free = n0 - s;
            let mut w = bufs.a.as_mut().subrows_mut(0, n0);
            permute_into(w.rb_mut(), bufs.left.as_ref().subrows(0, n0), &st.rows1);
            forward_panel(w.rb_mut(), st.top.as_ref().subcols(0, free), par);
            let at = self.offsets[k];
            rhs.rb_mut().subrows_mut(at, free).copy_from(w.rb().subrows(0, free));
            if k + 1 == nb {
                break;
            }
            let n1 = self.size(k + 1);
            let mut win = bufs.b.as_mut().subrows_mut(0, s + n1);
            win.rb_mut().subrows_mut(0, s).copy_from(w.rb().subrows(free, s));
            win.rb_mut().subrows_mut(s, n1).copy_from(rhs.rb().subrows(self.offsets[k + 1], n1));
            let mut w = bufs.a.as_mut().subrows_mut(0, s + n1);
            permute_into(w.rb_mut(), win.rb(), &st.rows2);
            forward_panel(w.rb_mut(), st.l2.as_ref(), par);
            rhs.rb_mut().subrows_mut(at + free, s).copy_from(w.rb().subrows(0, s));
            bufs.left.as_mut().subrows_mut(0, n1).copy_from(w.rb().subrows(s, n1));
            debug_assert_eq!(w.ncols(), m);
        }
    }

    /// Back substitution, last block column first, overwriting each
    /// block's `L^-1 P b` with the solution of the scaled system.
    fn backward(&self, mut rhs: MatMut<'_, f64>, bufs: &mut Buffers) {
        let nb = self.offsets.len() - 1;
        for k in (0..nb).rev() {
            let st = &self.steps[k];
            let par = self.par.kernel_par(self.size(k) + self.size(k + 1));
            let (n0, s) = (st.top.nrows(), st.c.nrows());
            let free = n0 - s;
            let at = self.offsets[k];
            // x_J from phase 2: U11 x_J = y2 - U12 x_{k+1} - U13 C_{k+1} x_{k+2}.
            let mut xj = bufs.a.as_mut().subrows_mut(0, s);
            xj.copy_from(rhs.rb().subrows(at + free, s));
            if k + 1 < nb {
                let n1 = self.size(k + 1);
                let x1 = rhs.rb().subrows(self.offsets[k + 1], n1);
                matmul(xj.rb_mut(), Accum::Add, st.u2.as_ref().subcols(0, n1), x1, -1.0, par);
                if k + 2 < nb {
                    let c1 = &self.steps[k + 1].c;
                    let mut cx = bufs.cx.as_mut().subrows_mut(0, c1.nrows());
                    let x2 = rhs.rb().subrows(self.offsets[k + 2], self.size(k + 2));
                    matmul(cx.rb_mut(), Accum::Replace, c1.as_ref(), x2, 1.0, par);
                    matmul(xj.rb_mut(), Accum::Add, st.u2.as_ref().subcols(n1, c1.nrows()), cx.rb(), -1.0, par);
                }
                solve_upper_triangular_in_place(st.l2.as_ref().subrows(0, s), xj.rb_mut(), par);
            }
            // x_free from phase 1: U11 x_free = y1 - U12 x_J - U13 C_k x_{k+1}.
            let mut xf = bufs.b.as_mut().subrows_mut(0, free);
            xf.copy_from(rhs.rb().subrows(at, free));
            matmul(xf.rb_mut(), Accum::Add, st.top.as_ref().submatrix(0, free, free, s), xj.rb(), -1.0, par);
            if s > 0 {
                let mut cx = bufs.cx.as_mut().subrows_mut(0, s);
                let x1 = rhs.rb().subrows(self.offsets[k + 1], self.size(k + 1));
                matmul(cx.rb_mut(), Accum::Replace, st.c.as_ref(), x1, 1.0, par);
                matmul(xf.rb_mut(), Accum::Add, st.top.as_ref().submatrix(0, n0, free, s), cx.rb(), -1.0, par);
            }
            solve_upper_triangular_in_place(st.top.as_ref().submatrix(0, 0, free, free), xf.rb_mut(), par);
            let mut xk = rhs.rb_mut().subrows_mut(at, n0);
            for (i, &to) in st.order.iter().enumerate() {
                let from = if i < free { xf.rb().row(i) } else { xj.rb().row(i - free) };
                xk.rb_mut().row_mut(to).copy_from(from);
            }
        }
    }
}

/// The window buffers of one solve (`m` columns each).
struct Buffers {
    /// The leftover rows of the current block row.
    left: Mat<f64>,
    a: Mat<f64>,
    b: Mat<f64>,
    /// `C x` products.
    cx: Mat<f64>,
}
