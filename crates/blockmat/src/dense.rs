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
            // A block-diagonal and a grid are walked with running offsets:
            // a wide layer's `Dx` (a grid of block-diagonals) is read one
            // unit at a time, so these must neither allocate nor recompute
            // every child's shape per call.
            Block::Diag(d) => {
                let (mut r0, mut c0) = (0, 0);
                for child in &d.blocks {
                    if c0 >= start + w {
                        break;
                    }
                    let (cr, cc) = child.shape();
                    write_crossing(child, (r0, c0, cr, cc), start, out.rb_mut());
                    (r0, c0) = (r0 + cr, c0 + cc);
                }
            }
            Block::Grid(g) => {
                let nc = g.col_sizes.len();
                let mut c0 = 0;
                for (j, &cc) in g.col_sizes.iter().enumerate() {
                    if c0 >= start + w {
                        break;
                    }
                    if c0 + cc > start {
                        let mut r0 = 0;
                        for (i, &cr) in g.row_sizes.iter().enumerate() {
                            write_crossing(&g.blocks[i * nc + j], (r0, c0, cr, cc), start, out.rb_mut());
                            r0 += cr;
                        }
                    }
                    c0 += cc;
                }
            }
            _ => {
                let ro = offsets(&self.row_partition().unwrap_or_default());
                let co = offsets(&self.col_partition().unwrap_or_default());
                for (i, j, child, transposed) in children(self) {
                    let at = (ro[i], co[j], ro[i + 1] - ro[i], co[j + 1] - co[j]);
                    if transposed {
                        // The implicit super-diagonal of a symmetric
                        // tridiagonal: its columns are rows of the stored block.
                        let (r0, c0, cr, cc) = at;
                        let (lo, hi) = (start.max(c0), (start + w).min(c0 + cc));
                        if lo < hi {
                            let mut dst = out.rb_mut().submatrix_mut(r0, lo - start, cr, hi - lo);
                            dst.copy_from(child.to_dense().transpose().subcols(lo - c0, hi - lo));
                        }
                    } else {
                        write_crossing(child, at, start, out.rb_mut());
                    }
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

/// The part of `child` (at rows `r0..r0 + cr`, columns `c0..c0 + cc` of its
/// parent) inside the parent's columns `start..start + out.ncols()`, into
/// `out` (those columns of the parent).
fn write_crossing(child: &Block, (r0, c0, cr, cc): (usize, usize, usize, usize), start: usize, out: MatMut<'_, f64>) {
    let (lo, hi) = (start.max(c0), (start + out.ncols()).min(c0 + cc));
    if lo < hi {
        child.write_columns(lo - c0, out.submatrix_mut(r0, lo - start, cr, hi - lo));
    }
}
