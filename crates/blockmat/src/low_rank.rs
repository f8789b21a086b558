//! A leaf stored by the factors of a low-rank product.
//!
//! A dense layer's unit block of the second derivative is `U^T C U`, with
//! `U` the layer's inputs (one row per sample) and `C` diagonal: a first
//! layer reading 784 pixels has 32 such blocks of `785 x 785` but rank at
//! most the batch size. Stored as factors they take `n r` numbers instead
//! of `n^2`, and a product with them costs `O(n r)`.

use faer::linalg::matmul::matmul;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::block::Block;
use crate::error::{BlockError, Result};

/// `left * core * right^T` (`m x n`), with `left` `m x r`, `core` `r x s`
/// and `right` `n x s`.
#[derive(Debug, Clone)]
pub struct LowRank {
    pub(crate) left: Mat<f64>,
    pub(crate) core: Mat<f64>,
    pub(crate) right: Mat<f64>,
}

impl LowRank {
    /// The left factor (`m x r`).
    pub fn left(&self) -> MatRef<'_, f64> {
        self.left.as_ref()
    }

    /// The core (`r x s`).
    pub fn core(&self) -> MatRef<'_, f64> {
        self.core.as_ref()
    }

    /// The right factor (`n x s`).
    pub fn right(&self) -> MatRef<'_, f64> {
        self.right.as_ref()
    }

    /// The rank bound `min(r, s)`.
    pub fn rank(&self) -> usize {
        self.core.nrows().min(self.core.ncols())
    }

    /// `out += alpha * self * x`, through the factors: `O((m + n) r k)`
    /// for `k` columns, never forming the product.
    ///
    /// # Errors
    /// [`BlockError::ShapeMismatch`] when `x` has not the block's columns or
    /// `out` not its rows and `x`'s columns.
    pub fn mul_add_to(&self, out: MatMut<'_, f64>, x: MatRef<'_, f64>, alpha: f64) -> Result<()> {
        let (m, n) = (self.left.nrows(), self.right.nrows());
        if x.nrows() != n || out.nrows() != m || out.ncols() != x.ncols() {
            return Err(BlockError::ShapeMismatch {
                op: "LowRank::mul_add_to",
                left: (m, n),
                right: (x.nrows(), x.ncols()),
            });
        }
        self.apply(out, x, alpha, false);
        Ok(())
    }

    /// Overwrites `out` with columns `start..start + out.ncols()` of the
    /// product (`O(m r w)` for `w` columns).
    ///
    /// # Errors
    /// [`BlockError::ShapeMismatch`] when `out` has not the block's rows or
    /// the columns run past the block's.
    pub fn write_columns_to(&self, start: usize, out: MatMut<'_, f64>) -> Result<()> {
        let (m, n) = (self.left.nrows(), self.right.nrows());
        if out.nrows() != m || start + out.ncols() > n {
            return Err(BlockError::ShapeMismatch {
                op: "LowRank::write_columns_to",
                left: (m, n),
                right: (out.nrows(), start + out.ncols()),
            });
        }
        self.write_window(0, start, out);
        Ok(())
    }

    /// `out += alpha * op(self) * x`, through the factors: `O((m + n) r k)`.
    pub(crate) fn apply(&self, out: MatMut<'_, f64>, x: MatRef<'_, f64>, alpha: f64, trans: bool) {
        // op(L C R^T) = L C R^T or R C^T L^T.
        let (first, core, last) = if trans {
            (self.left.as_ref(), self.core.transpose(), self.right.as_ref())
        } else {
            (self.right.as_ref(), self.core.as_ref(), self.left.as_ref())
        };
        if first.ncols() == 0 || x.ncols() == 0 {
            return;
        }
        with_temp(first.ncols(), x.ncols(), |mut t| {
            matmul(t.rb_mut(), Accum::Replace, first.transpose(), x, 1.0, Par::Seq);
            with_temp(core.nrows(), x.ncols(), |mut u| {
                matmul(u.rb_mut(), Accum::Replace, core, t.rb(), 1.0, Par::Seq);
                matmul(out, Accum::Add, last, u.rb(), alpha, Par::Seq);
            })
        })
    }

    /// `out <- self` (dense, `out` has the block's shape).
    pub(crate) fn write_dense(&self, out: MatMut<'_, f64>) {
        self.write_window(0, 0, out);
    }

    /// `out <- ` the window at rows `row..` and columns `col..` of the
    /// product: `L[rows] C R[cols]^T`.
    pub(crate) fn write_window(&self, row: usize, col: usize, mut out: MatMut<'_, f64>) {
        if self.core.nrows() == 0 || self.core.ncols() == 0 {
            out.fill(0.0);
            return;
        }
        let left = self.left.as_ref().subrows(row, out.nrows());
        let right = self.right.as_ref().subrows(col, out.ncols());
        with_temp(left.nrows(), self.core.ncols(), |mut lc| {
            matmul(lc.rb_mut(), Accum::Replace, left, self.core.as_ref(), 1.0, Par::Seq);
            matmul(out, Accum::Replace, lc.rb(), right.transpose(), 1.0, Par::Seq);
        });
    }

    /// `right core^T left^T`, the transpose, as factors.
    pub fn transpose(&self) -> LowRank {
        LowRank { left: self.right.clone(), core: self.core.transpose().to_owned(), right: self.left.clone() }
    }

    pub(crate) fn scale(&self, alpha: f64) -> LowRank {
        LowRank { left: self.left.clone(), core: &self.core * faer::Scale(alpha), right: self.right.clone() }
    }
}

impl Block {
    /// `left * core * right^T` stored by its factors (`left` `m x r`,
    /// `core` `r x s`, `right` `n x s`): an `m x n` leaf of rank at most
    /// `min(r, s)`.
    ///
    /// # Errors
    /// [`BlockError::ShapeMismatch`] when the inner sizes differ.
    ///
    /// ```
    /// use blockmat::Block;
    /// use faer::Mat;
    /// // u c u^T with u = (1, 2)^T and c = 3.
    /// let u = Mat::from_fn(2, 1, |i, _| (i + 1) as f64);
    /// let b = Block::low_rank(u.clone(), Mat::from_fn(1, 1, |_, _| 3.0), u).unwrap();
    /// assert_eq!(b.to_dense()[(1, 1)], 12.0);
    /// assert_eq!(b.kind(), "low-rank");
    /// ```
    pub fn low_rank(left: Mat<f64>, core: Mat<f64>, right: Mat<f64>) -> Result<Block> {
        if left.ncols() != core.nrows() {
            return Err(BlockError::ShapeMismatch {
                op: "low_rank (left x core)",
                left: left.shape(),
                right: core.shape(),
            });
        }
        if right.ncols() != core.ncols() {
            return Err(BlockError::ShapeMismatch {
                op: "low_rank (core x right^T)",
                left: core.shape(),
                right: (right.ncols(), right.nrows()),
            });
        }
        Ok(Block::LowRank(LowRank { left, core, right }))
    }

    /// The factors, when this is a [`Block::LowRank`] leaf.
    pub fn as_low_rank(&self) -> Option<&LowRank> {
        match self {
            Block::LowRank(l) => Some(l),
            _ => None,
        }
    }
}

/// Room for a temporary of up to this many entries on the stack: a rank-one
/// leaf (a wide layer's `Dx` stores one per sample and unit) is applied
/// to a few columns at a time, where a heap buffer per call would cost
/// more than the product.
const STACK_TEMP: usize = 64;

/// `f` of a zeroed `rows x cols` temporary, on the stack when it is small.
fn with_temp<T>(rows: usize, cols: usize, f: impl FnOnce(MatMut<'_, f64>) -> T) -> T {
    let len = rows * cols;
    if len <= STACK_TEMP {
        let mut buf = [0.0f64; STACK_TEMP];
        f(MatMut::from_column_major_slice_mut(&mut buf[..len], rows, cols))
    } else {
        let mut m = Mat::<f64>::zeros(rows, cols);
        f(m.as_mut())
    }
}
