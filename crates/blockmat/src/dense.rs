//! Conversion of any [`Block`] to a dense faer matrix.

use faer::reborrow::ReborrowMut;
use faer::{Mat, MatMut};

use crate::block::{offsets, Block, Side};
use crate::pattern::children;

impl Block {
    /// The dense matrix this block represents.
    ///
    /// ```
    /// use blockmat::Block;
    /// let m = Block::scaled_identity(2, 3.0).to_dense();
    /// assert_eq!(m[(1, 1)], 3.0);
    /// assert_eq!(m[(0, 1)], 0.0);
    /// ```
    pub fn to_dense(&self) -> Mat<f64> {
        let mut out = Mat::zeros(self.nrows(), self.ncols());
        self.write_dense(out.as_mut());
        out
    }

    /// Overwrites `out` with the dense matrix this block represents,
    /// without allocating: for callers that densify many blocks into one
    /// reused buffer.
    ///
    /// ```
    /// use blockmat::Block;
    /// let mut buf = faer::Mat::<f64>::ones(2, 2);
    /// Block::scaled_identity(2, 3.0).write_dense_to(buf.as_mut()).unwrap();
    /// assert_eq!((buf[(1, 1)], buf[(0, 1)]), (3.0, 0.0));
    /// ```
    ///
    /// # Errors
    /// [`crate::BlockError::ShapeMismatch`] when `out` (right) has not the
    /// block's shape (left).
    pub fn write_dense_to(&self, mut out: MatMut<'_, f64>) -> crate::Result<()> {
        if (out.nrows(), out.ncols()) != self.shape() {
            return Err(crate::BlockError::ShapeMismatch {
                op: "write_dense_to",
                left: self.shape(),
                right: (out.nrows(), out.ncols()),
            });
        }
        out.fill(0.0);
        self.write_dense(out);
        Ok(())
    }

    /// Overwrites `out` with columns `start..start + out.ncols()` of the
    /// block, densely: one parameter group's columns of a large structured
    /// block without forming the rest of it.
    ///
    /// ```
    /// use blockmat::Block;
    /// let d = Block::block_diag(vec![Block::scaled_identity(2, 3.0), Block::identity(1)]);
    /// let mut cols = faer::Mat::<f64>::ones(3, 2);
    /// d.write_columns_to(1, cols.as_mut()).unwrap();
    /// assert_eq!((cols[(1, 0)], cols[(2, 1)], cols[(0, 0)]), (3.0, 1.0, 0.0));
    /// ```
    ///
    /// # Errors
    /// [`crate::BlockError::ShapeMismatch`] when `out` has not the block's
    /// rows or the columns run past the block's.
    pub fn write_columns_to(&self, start: usize, mut out: MatMut<'_, f64>) -> crate::Result<()> {
        if out.nrows() != self.nrows() || start + out.ncols() > self.ncols() {
            return Err(crate::BlockError::ShapeMismatch {
                op: "write_columns_to",
                left: self.shape(),
                right: (out.nrows(), start + out.ncols()),
            });
        }
        out.fill(0.0);
        self.write_columns(start, out);
        Ok(())
    }

    /// Columns `start..` of the block into `out` (zero wherever the block
    /// is zero), recursing only into children those columns cross.
    fn write_columns(&self, start: usize, mut out: MatMut<'_, f64>) {
        let w = out.ncols();
        match self {
            Block::Zero { .. } => {}
            Block::Identity { scale, .. } => {
                for j in 0..w {
                    out[(start + j, j)] = *scale;
                }
            }
            Block::Dense(m) => out.copy_from(m.subcols(start, w)),
            Block::LowRank(l) => l.write_columns(start, out),
            _ => {
                let ro = offsets(&self.row_partition().unwrap_or_default());
                let co = offsets(&self.col_partition().unwrap_or_default());
                // Only the block columns `first..last` cross the range, found
                // by bisection: a structure read a few columns at a time (a
                // wide layer's `Dx`, one unit per call) has many children,
                // and the sizes come from the partitions, since a child's
                // own shape sums its children again.
                let first = co.partition_point(|&c| c <= start).saturating_sub(1);
                let last = co.partition_point(|&c| c < start + w).min(co.len() - 1);
                let mut write = |i: usize, j: usize, child: &Block, transposed: bool| {
                    let (r0, c0, cr, cc) = (ro[i], co[j], ro[i + 1] - ro[i], co[j + 1] - co[j]);
                    let (lo, hi) = (start.max(c0), (start + w).min(c0 + cc));
                    if lo >= hi {
                        return;
                    }
                    let mut dst = out.rb_mut().submatrix_mut(r0, lo - start, cr, hi - lo);
                    if transposed {
                        // The implicit super-diagonal of a symmetric
                        // tridiagonal: its columns are rows of the stored block.
                        dst.copy_from(child.to_dense().transpose().subcols(lo - c0, hi - lo));
                    } else {
                        child.write_columns(lo - c0, dst);
                    }
                };
                match self {
                    Block::Diag(d) => (first..last).for_each(|k| write(k, k, &d.blocks[k], false)),
                    _ => children(self)
                        .into_iter()
                        .filter(|&(_, j, _, _)| (first..last).contains(&j))
                        .for_each(|(i, j, child, transposed)| write(i, j, child, transposed)),
                }
            }
        }
    }

    /// Writes the block into `out`, which must have its shape and be zero
    /// wherever the block is zero (only non-zero sub-blocks are written).
    pub(crate) fn write_dense(&self, mut out: MatMut<'_, f64>) {
        debug_assert_eq!((out.nrows(), out.ncols()), self.shape());
        match self {
            Block::Zero { .. } => {}
            Block::Identity { n, scale } => {
                for i in 0..*n {
                    out[(i, i)] = *scale;
                }
            }
            Block::Dense(m) => out.copy_from(m),
            Block::LowRank(l) => l.write_dense(out),
            Block::Diag(d) => {
                let (mut r, mut c) = (0, 0);
                for b in &d.blocks {
                    let (nr, nc) = b.shape();
                    b.write_dense(out.rb_mut().submatrix_mut(r, c, nr, nc));
                    r += nr;
                    c += nc;
                }
            }
            Block::Bidiag(b) => {
                // Running offsets, not `offsets()`: this runs once per block
                // of every factorization and must not allocate.
                let (mut r, mut c) = (0, 0);
                for (k, d) in b.diag.iter().enumerate() {
                    let (nr, nc) = d.shape();
                    d.write_dense(out.rb_mut().submatrix_mut(r, c, nr, nc));
                    if let Some(o) = b.off.get(k) {
                        let (i, j) = match b.side {
                            Side::Lower => (r + nr, c),
                            Side::Upper => (r, c + nc),
                        };
                        o.write_dense(out.rb_mut().submatrix_mut(i, j, o.nrows(), o.ncols()));
                    }
                    r += nr;
                    c += nc;
                }
            }
            Block::Tridiag(t) => {
                let (mut r, mut c) = (0, 0);
                for (k, d) in t.diag.iter().enumerate() {
                    let (nr, nc) = d.shape();
                    d.write_dense(out.rb_mut().submatrix_mut(r, c, nr, nc));
                    if let Some(s) = t.sub.get(k) {
                        s.write_dense(out.rb_mut().submatrix_mut(r + nr, c, s.nrows(), s.ncols()));
                        match &t.sup {
                            Some(sup) => {
                                let u = &sup[k];
                                u.write_dense(out.rb_mut().submatrix_mut(r, c + nc, u.nrows(), u.ncols()));
                            }
                            // The transpose written through a transposed
                            // view: the region is still zero here.
                            None => s.write_dense(
                                out.rb_mut().submatrix_mut(r, c + nc, s.ncols(), s.nrows()).transpose_mut(),
                            ),
                        }
                    }
                    r += nr;
                    c += nc;
                }
            }
            Block::Grid(g) => {
                let nc = g.col_sizes.len();
                let mut r = 0;
                for (i, &nr) in g.row_sizes.iter().enumerate() {
                    let mut c = 0;
                    for (j, &ncj) in g.col_sizes.iter().enumerate() {
                        g.blocks[i * nc + j].write_dense(out.rb_mut().submatrix_mut(r, c, nr, ncj));
                        c += ncj;
                    }
                    r += nr;
                }
            }
        }
    }
}
