//! The input of the pivoted elimination: blocks densified on demand into
//! reused buffers, scaled by a symmetric (Ruiz) equilibration.

use std::ops::Range;

use faer::dyn_stack::StackReq;
use faer::reborrow::*;
use faer::{Mat, MatMut, MatRef};

use crate::error::TridiagError;
use crate::input::{column, diagonal_block_into, diagonal_block_unchecked, max_abs_slice, sub_block, Supported};
use crate::workspace::Workspace;

/// Most sweeps of the equilibration. Ruiz's iteration halves the log of
/// every row maximum's distance from one per sweep; row maxima within a
/// factor of four of one are all partial pivoting needs (two sweeps on the
/// Hessian systems measured).
const RUIZ_SWEEPS: usize = 20;

/// The input blocks, densified and scaled on demand: keeping them all
/// dense would double the memory of the factorization and, on the machines
/// measured, cost more in first-touch page faults than the elimination.
pub(super) struct Source<'a> {
    t: &'a blockmat::Tridiag,
    symmetry_tol: f64,
    pub(super) offsets: Vec<usize>,
    /// The symmetric scaling `S` (one factor per row).
    pub(super) scale: Vec<f64>,
    /// Every block has passed the input checks once.
    checked: bool,
    /// Where sub-diagonal blocks are densified.
    ws: Workspace,
}

impl<'a> Source<'a> {
    pub(super) fn new(t: &'a blockmat::Tridiag, symmetry_tol: f64) -> Source<'a> {
        let sizes: Vec<usize> = t.diag().iter().map(|b| b.nrows()).collect();
        let offsets = blockmat::offsets(&sizes);
        let scale = vec![1.0; offsets[sizes.len()]];
        let largest = sizes.iter().copied().max().unwrap_or(0);
        let ws = Workspace::new(StackReq::EMPTY, (largest, largest), 0);
        Source { t, symmetry_tol, offsets, scale, checked: false, ws }
    }

    pub(super) fn len(&self) -> usize {
        self.t.len()
    }

    pub(super) fn size(&self, k: usize) -> usize {
        if k < self.len() {
            self.offsets[k + 1] - self.offsets[k]
        } else {
            0
        }
    }

    /// The largest block size.
    pub(super) fn largest(&self) -> usize {
        (0..self.len()).map(|k| self.size(k)).max().unwrap_or(0)
    }

    /// Diagonal block `k` of `S A S` written into `out` (`n_k x n_k`),
    /// validated on the first pass only.
    pub(super) fn diag_into(&self, k: usize, mut out: MatMut<'_, f64>) -> Result<(), TridiagError> {
        if self.checked {
            diagonal_block_unchecked(self.t, k, out.rb_mut());
        } else {
            diagonal_block_into(self.t, k, self.symmetry_tol, out.rb_mut())?;
        }
        let s = &self.scale[self.offsets[k]..self.offsets[k + 1]];
        scale(out, s, s);
        Ok(())
    }

    /// Sub-diagonal block `k` of `S A S` restricted to its support
    /// `(rows, cols)`, `None` when structurally zero (or `k` is the last block).
    fn sub(&mut self, k: usize) -> Result<Option<Supported<MatRef<'_, f64>>>, TridiagError> {
        if k + 1 >= self.len() {
            return Ok(None);
        }
        let tol = (!self.checked).then_some(self.symmetry_tol);
        let Some(Supported { rows, cols, m: mut c }) = sub_block(self.t, k, tol, &mut self.ws)? else {
            return Ok(None);
        };
        let (rows_at, cols_at) = (self.offsets[k + 1] + rows.start, self.offsets[k] + cols.start);
        let (r, n) = (c.nrows(), c.ncols());
        scale(c.rb_mut(), &self.scale[rows_at..rows_at + r], &self.scale[cols_at..cols_at + n]);
        Ok(Some(Supported { rows, cols, m: c.into_const() }))
    }

    /// The coupling of block `k` to block `k + 1` as seen from block row
    /// `k`: its column support `J = [c0, e)` in block `k` (empty at `n_k`
    /// when there is none) and `C = sub[k][:, J]^T` (`|J| x n_{k+1}`), so
    /// that block `(k, k + 1)` is `E_J C`. `C` is newly allocated: the
    /// factors keep it.
    pub(super) fn support(&mut self, k: usize) -> Result<(Range<usize>, Mat<f64>), TridiagError> {
        let (n0, n1) = (self.size(k), self.size(k + 1));
        Ok(match self.sub(k)? {
            Some(Supported { rows, cols, m: c }) => {
                let mut m = Mat::zeros(cols.len(), n1);
                m.as_mut().subcols_mut(rows.start, rows.len()).copy_from(c.transpose());
                (cols, m)
            }
            None => (n0..n0, Mat::zeros(0, n1)),
        })
    }

    /// Symmetric Ruiz equilibration: multiplies `scale` until every row
    /// maximum of `S A S` is within a factor of four of one.
    pub(super) fn equilibrate(&mut self) -> Result<(), TridiagError> {
        let mut row_max = vec![0.0f64; self.scale.len()];
        let largest = self.largest();
        let mut buf = Mat::<f64>::zeros(largest, largest);
        for _ in 0..RUIZ_SWEEPS {
            row_max.iter_mut().for_each(|r| *r = 0.0);
            for k in 0..self.len() {
                let n = self.size(k);
                let mut d = buf.as_mut().submatrix_mut(0, 0, n, n);
                self.diag_into(k, d.rb_mut())?;
                // Symmetric: the maximum of column j is that of row j.
                let rows = &mut row_max[self.offsets[k]..self.offsets[k + 1]];
                for (j, r) in rows.iter_mut().enumerate() {
                    *r = r.max(max_abs_slice(column(d.rb(), j)));
                }
                let (off_next, off_here) = (self.offsets.get(k + 1).copied().unwrap_or(0), self.offsets[k]);
                let Some(Supported { rows: sub_rows, cols: sub_cols, m: c }) = self.sub(k)? else { continue };
                let (rows_at, cols_at) = (off_next + sub_rows.start, off_here + sub_cols.start);
                for j in 0..c.ncols() {
                    let col = column(c, j);
                    let mut m = row_max[cols_at + j];
                    for (r, v) in row_max[rows_at..rows_at + col.len()].iter_mut().zip(col) {
                        *r = r.max(v.abs());
                        m = m.max(v.abs());
                    }
                    row_max[cols_at + j] = m;
                }
            }
            self.checked = true;
            // A zero row means a singular matrix; leave it for the
            // elimination to find.
            if row_max.iter().all(|&r| (0.25..=4.0).contains(&r) || r == 0.0) {
                break;
            }
            for (s, &r) in self.scale.iter_mut().zip(&row_max) {
                if r > 0.0 {
                    *s /= r.sqrt();
                }
            }
        }
        Ok(())
    }
}

/// `m[i, j] *= rows[i] * cols[j]`, one factor at a time: for a subnormal
/// row maximum the factors are ~1e155 each and their product would
/// overflow while the scaled entry is ~1.
fn scale(mut m: MatMut<'_, f64>, rows: &[f64], cols: &[f64]) {
    for (j, &cj) in cols.iter().enumerate() {
        let col = m.rb_mut().col_mut(j).try_as_col_major_mut().expect("buffers are column-major").as_slice_mut();
        for (v, &ri) in col.iter_mut().zip(rows) {
            *v = *v * ri * cj;
        }
    }
}
