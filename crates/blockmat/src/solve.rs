//! Linear solves `op(A) X = B` where the structure allows them: dense leaves
//! by faer's partial-pivot LU, identities by a division, block-diagonal
//! blockwise, block-bidiagonal by block substitution (a unit diagonal costs
//! nothing). Tridiagonal and grid matrices need a factorization this crate
//! does not own.

use faer::linalg::solvers::Solve;
use faer::reborrow::{IntoConst, Reborrow, ReborrowMut};
use faer::{Mat, MatRef};

use crate::block::{check_square, offsets, Block, Side};
use crate::error::{BlockError, Result};

impl Block {
    /// Solves `self * X = rhs` for a square `self`.
    ///
    /// ```
    /// use blockmat::{Block, Side};
    /// use faer::Mat;
    /// let m = Block::unit_bidiag(Side::Lower, &[1, 1], vec![Block::scaled_identity(1, -2.0)]).unwrap();
    /// let x = m.solve(Mat::from_fn(2, 1, |_, _| 1.0).as_ref()).unwrap();
    /// assert_eq!((x[(0, 0)], x[(1, 0)]), (1.0, 3.0));
    /// ```
    ///
    /// # Errors
    /// [`BlockError::NotSquare`] for a non-square matrix or diagonal block,
    /// [`BlockError::ShapeMismatch`] when `rhs` has the wrong number of rows,
    /// [`BlockError::Singular`] when a (diagonal) block is singular: a zero
    /// leaf, a zero identity, or a dense block whose LU has a pivot below
    /// `n * eps * max|A|`, [`BlockError::Unsupported`] for tridiagonal and
    /// grid matrices.
    pub fn solve(&self, rhs: MatRef<'_, f64>) -> Result<Mat<f64>> {
        self.solve_checked(rhs, false, "solve")
    }

    /// Solves `self^T * X = rhs`; see [`Block::solve`].
    pub fn solve_transpose(&self, rhs: MatRef<'_, f64>) -> Result<Mat<f64>> {
        self.solve_checked(rhs, true, "solve_transpose")
    }

    fn solve_checked(&self, rhs: MatRef<'_, f64>, trans: bool, op: &'static str) -> Result<Mat<f64>> {
        let n = check_square(op, 0, self)?;
        if rhs.nrows() != n {
            return Err(BlockError::ShapeMismatch { op, left: self.shape(), right: (rhs.nrows(), rhs.ncols()) });
        }
        self.solve_impl(rhs, trans, op)
    }

    fn solve_impl(&self, rhs: MatRef<'_, f64>, trans: bool, op: &'static str) -> Result<Mat<f64>> {
        let n = self.nrows();
        let singular = |index: usize, n: usize| BlockError::Singular { op, index, n };
        match self {
            Block::Zero { .. } if n == 0 => Ok(rhs.to_owned()),
            Block::Zero { .. } => Err(singular(0, n)),
            Block::Identity { scale, .. } => {
                if *scale == 0.0 && n > 0 {
                    return Err(singular(0, n));
                }
                let inv = 1.0 / scale;
                Ok(Mat::from_fn(rhs.nrows(), rhs.ncols(), |i, j| inv * rhs[(i, j)]))
            }
            Block::Dense(m) => dense_solve(m.as_ref(), rhs, trans).ok_or(singular(0, n)),
            Block::LowRank(_) => dense_solve(self.to_dense().as_ref(), rhs, trans).ok_or(singular(0, n)),
            Block::Diag(d) => {
                let mut out = Mat::zeros(n, rhs.ncols());
                let mut r = 0;
                for (k, b) in d.blocks.iter().enumerate() {
                    let nk = check_square(op, k, b)?;
                    let x = b.solve_impl(rhs.subrows(r, nk), trans, op).map_err(|e| reindex(e, k, nk))?;
                    out.as_mut().subrows_mut(r, nk).copy_from(&x);
                    r += nk;
                }
                Ok(out)
            }
            Block::Bidiag(b) => {
                for (k, d) in b.diag.iter().enumerate() {
                    check_square(op, k, d)?;
                }
                let sizes: Vec<usize> = b.diag.iter().map(Block::nrows).collect();
                let off = offsets(&sizes);
                let mut out = rhs.to_owned();
                // The effective matrix is lower triangular (forward
                // substitution) for a lower matrix or a transposed upper one.
                let forward = (b.side == Side::Lower) != trans;
                let order: Vec<usize> =
                    if forward { (0..b.len()).collect() } else { (0..b.len()).rev().collect() };
                for k in order {
                    let nk = sizes[k];
                    // The already-solved neighbour and the off block coupling it to k.
                    let coupled = if forward { k.checked_sub(1).map(|p| (p, p)) } else { (k + 1 < b.len()).then_some((k + 1, k)) };
                    if let Some((p, o)) = coupled {
                        let (done, mut cur) = split_rows(&mut out, off[p], sizes[p], off[k], nk);
                        b.off[o].apply(cur.rb_mut(), done.rb(), -1.0, trans);
                    }
                    let x = b.diag[k]
                        .solve_impl(out.as_ref().subrows(off[k], nk), trans, op)
                        .map_err(|e| reindex(e, k, nk))?;
                    out.as_mut().subrows_mut(off[k], nk).copy_from(&x);
                }
                Ok(out)
            }
            Block::Tridiag(_) => Err(BlockError::Unsupported {
                op,
                structure: "block-tridiagonal",
                hint: "factor it with the `tridiag` crate, or solve `to_dense()` with faer",
            }),
            Block::Grid(_) => Err(BlockError::Unsupported {
                op,
                structure: "grid",
                hint: "interleave it into a block-tridiagonal matrix for the `tridiag` crate, or solve `to_dense()` with faer",
            }),
        }
    }
}

/// A singular block reported at this level: its index among the diagonal
/// blocks of the structure being solved.
fn reindex(e: BlockError, index: usize, n: usize) -> BlockError {
    match e {
        BlockError::Singular { op, .. } => BlockError::Singular { op, index, n },
        e => e,
    }
}

/// Two disjoint row ranges of `m`: `(rows a0..a0+na read-only, rows b0..b0+nb mutable)`.
fn split_rows(
    m: &mut Mat<f64>,
    a0: usize,
    na: usize,
    b0: usize,
    nb: usize,
) -> (MatRef<'_, f64>, faer::MatMut<'_, f64>) {
    let k = m.ncols();
    if a0 + na <= b0 {
        let (top, bot) = m.as_mut().split_at_row_mut(b0);
        (top.into_const().submatrix(a0, 0, na, k), bot.submatrix_mut(0, 0, nb, k))
    } else {
        let (top, bot) = m.as_mut().split_at_row_mut(a0);
        (bot.into_const().submatrix(0, 0, na, k), top.submatrix_mut(b0, 0, nb, k))
    }
}

/// Partial-pivot LU solve, `None` when a pivot is negligible: below
/// `n * eps * max|A|`, the size of the rounding error LU makes on the
/// entries, so such a pivot carries no information.
fn dense_solve(m: MatRef<'_, f64>, rhs: MatRef<'_, f64>, trans: bool) -> Option<Mat<f64>> {
    let n = m.nrows();
    if n == 0 {
        return Some(rhs.to_owned());
    }
    let mut amax = 0.0f64;
    for j in 0..n {
        for i in 0..n {
            amax = amax.max(m[(i, j)].abs());
        }
    }
    let lu = m.partial_piv_lu();
    let u = lu.U();
    let tol = n as f64 * f64::EPSILON * amax;
    for i in 0..n {
        let p = u[(i, i)];
        if !p.is_finite() || p.abs() <= tol {
            return None;
        }
    }
    let mut x = rhs.to_owned();
    if trans {
        lu.solve_transpose_in_place(x.as_mut());
    } else {
        lu.solve_in_place(x.as_mut());
    }
    Some(x)
}
