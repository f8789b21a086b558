//! Products of a [`Block`] (or its transpose) with dense right-hand sides,
//! `out += alpha * op(A) * x`, exploiting structure: zeros cost nothing,
//! identities are an axpy, structures recurse to faer GEMMs at the leaves.

use faer::linalg::matmul::matmul;
use faer::reborrow::ReborrowMut;
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::block::{Block, Side};
use crate::error::{BlockError, Result};

impl Block {
    /// `out += alpha * self * x` for a dense `x` with any number of columns.
    ///
    /// ```
    /// use blockmat::Block;
    /// use faer::Mat;
    /// let a = Block::block_diag(vec![Block::scaled_identity(1, 2.0), Block::identity(1)]);
    /// let x = Mat::from_fn(2, 1, |i, _| (i + 1) as f64);
    /// let mut y = Mat::zeros(2, 1);
    /// a.mul_add_to(y.as_mut(), x.as_ref(), 1.0).unwrap();
    /// assert_eq!((y[(0, 0)], y[(1, 0)]), (2.0, 2.0));
    /// ```
    pub fn mul_add_to(&self, out: MatMut<'_, f64>, x: MatRef<'_, f64>, alpha: f64) -> Result<()> {
        self.check_apply("mul_add_to", out.nrows(), out.ncols(), x, false)?;
        self.apply(out, x, alpha, false);
        Ok(())
    }

    /// `out += alpha * self^T * x`.
    pub fn tmul_add_to(&self, out: MatMut<'_, f64>, x: MatRef<'_, f64>, alpha: f64) -> Result<()> {
        self.check_apply("tmul_add_to", out.nrows(), out.ncols(), x, true)?;
        self.apply(out, x, alpha, true);
        Ok(())
    }

    /// `self * x` as a new dense matrix.
    pub fn mul_dense(&self, x: MatRef<'_, f64>) -> Result<Mat<f64>> {
        let mut out = Mat::zeros(self.nrows(), x.ncols());
        self.mul_add_to(out.as_mut(), x, 1.0)?;
        Ok(out)
    }

    /// `self^T * x` as a new dense matrix.
    pub fn tmul_dense(&self, x: MatRef<'_, f64>) -> Result<Mat<f64>> {
        let mut out = Mat::zeros(self.ncols(), x.ncols());
        self.tmul_add_to(out.as_mut(), x, 1.0)?;
        Ok(out)
    }

    fn check_apply(&self, op: &'static str, or: usize, oc: usize, x: MatRef<'_, f64>, trans: bool) -> Result<()> {
        let (r, c) = if trans { (self.ncols(), self.nrows()) } else { self.shape() };
        if x.nrows() != c {
            return Err(BlockError::ShapeMismatch { op, left: (r, c), right: (x.nrows(), x.ncols()) });
        }
        if or != r || oc != x.ncols() {
            return Err(BlockError::ShapeMismatch { op, left: (r, x.ncols()), right: (or, oc) });
        }
        Ok(())
    }

    /// The unchecked recursion; shapes were validated at the top.
    pub(crate) fn apply(&self, mut out: MatMut<'_, f64>, x: MatRef<'_, f64>, alpha: f64, trans: bool) {
        let k = x.ncols();
        match self {
            Block::Zero { .. } => {}
            Block::Identity { scale, .. } => {
                let s = alpha * *scale;
                if s != 0.0 {
                    for j in 0..k {
                        for i in 0..x.nrows() {
                            out[(i, j)] += s * x[(i, j)];
                        }
                    }
                }
            }
            Block::Dense(m) => {
                if m.nrows() > 0 && m.ncols() > 0 {
                    let lhs = if trans { m.transpose() } else { m.as_ref() };
                    matmul(out, Accum::Add, lhs, x, alpha, Par::Seq);
                }
            }
            Block::LowRank(l) => l.apply(out, x, alpha, trans),
            Block::Diag(d) => {
                let (mut r, mut c) = (0, 0);
                for b in &d.blocks {
                    let (nr, nc) = if trans { (b.ncols(), b.nrows()) } else { b.shape() };
                    b.apply(out.rb_mut().submatrix_mut(r, 0, nr, k), x.submatrix(c, 0, nc, k), alpha, trans);
                    r += nr;
                    c += nc;
                }
            }
            // Running offsets, not `offsets()`: every HVP applies each
            // layer's blocks, and a product must not allocate per block.
            // The diagonal blocks first, then the off-diagonal ones, in the
            // order the sums were always taken.
            Block::Bidiag(b) => {
                let (mut r, mut c) = (0, 0);
                for d in &b.diag {
                    stored(d, out.rb_mut(), x, alpha, trans, r, c);
                    (r, c) = (r + d.nrows(), c + d.ncols());
                }
                let (mut r, mut c) = (0, 0);
                for (d, o) in b.diag.iter().zip(&b.off) {
                    let (nr, nc) = d.shape();
                    let (i, j) = match b.side {
                        Side::Lower => (r + nr, c),
                        Side::Upper => (r, c + nc),
                    };
                    stored(o, out.rb_mut(), x, alpha, trans, i, j);
                    (r, c) = (r + nr, c + nc);
                }
            }
            Block::Tridiag(t) => {
                let (mut r, mut c) = (0, 0);
                for d in &t.diag {
                    stored(d, out.rb_mut(), x, alpha, trans, r, c);
                    (r, c) = (r + d.nrows(), c + d.ncols());
                }
                let (mut r, mut c) = (0, 0);
                for (kk, (d, s)) in t.diag.iter().zip(&t.sub).enumerate() {
                    let (nr, nc) = d.shape();
                    // Block (k + 1, k) starts below block k, block (k, k + 1)
                    // right of it.
                    stored(s, out.rb_mut(), x, alpha, trans, r + nr, c);
                    match &t.sup {
                        Some(sup) => stored(&sup[kk], out.rb_mut(), x, alpha, trans, r, c + nc),
                        // Block (k, k+1) is sub[k]^T, so it acts as sub[k]
                        // with the opposite transposition.
                        None if trans => place(s, out.rb_mut(), x, alpha, false, c + nc, r),
                        None => place(s, out.rb_mut(), x, alpha, true, r, c + nc),
                    }
                    (r, c) = (r + nr, c + nc);
                }
            }
            Block::Grid(g) => {
                let nc = g.col_sizes.len();
                let mut r0 = 0;
                for (i, &nr) in g.row_sizes.iter().enumerate() {
                    let mut c0 = 0;
                    for (j, &ncol) in g.col_sizes.iter().enumerate() {
                        stored(&g.blocks[i * nc + j], out.rb_mut(), x, alpha, trans, r0, c0);
                        c0 += ncol;
                    }
                    r0 += nr;
                }
            }
        }
    }
}

/// Applies a block stored at element offset `(r0, c0)` of its parent, for
/// the parent applied as itself (`trans = false`) or as its transpose.
fn stored(blk: &Block, out: MatMut<'_, f64>, x: MatRef<'_, f64>, alpha: f64, trans: bool, r0: usize, c0: usize) {
    if trans {
        place(blk, out, x, alpha, true, c0, r0);
    } else {
        place(blk, out, x, alpha, false, r0, c0);
    }
}

/// `out[out0..] += alpha * op(blk) * x[x0..]`, `op` the transpose when `blk_trans`.
fn place(
    blk: &Block,
    mut out: MatMut<'_, f64>,
    x: MatRef<'_, f64>,
    alpha: f64,
    blk_trans: bool,
    out0: usize,
    x0: usize,
) {
    let k = x.ncols();
    let (br, bc) = if blk_trans { (blk.ncols(), blk.nrows()) } else { blk.shape() };
    blk.apply(out.rb_mut().submatrix_mut(out0, 0, br, k), x.submatrix(x0, 0, bc, k), alpha, blk_trans);
}
