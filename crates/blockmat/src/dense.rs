//! Conversion of any [`Block`] to a dense faer matrix.

use std::ops::Range;

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

    /// The dense matrix this block represents, borrowed from a
    /// [`Block::Dense`] leaf and formed otherwise: for readers that need
    /// dense storage but not ownership.
    ///
    /// ```
    /// use blockmat::Block;
    /// use std::borrow::Cow;
    /// let leaf = Block::dense(faer::Mat::identity(2, 2));
    /// assert!(matches!(leaf.dense_view(), Cow::Borrowed(_)));
    /// assert!(matches!(Block::identity(2).dense_view(), Cow::Owned(_)));
    /// ```
    pub fn dense_view(&self) -> std::borrow::Cow<'_, Mat<f64>> {
        match self.as_dense() {
            Some(m) => std::borrow::Cow::Borrowed(m),
            None => std::borrow::Cow::Owned(self.to_dense()),
        }
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
    pub fn write_columns_to(&self, start: usize, out: MatMut<'_, f64>) -> crate::Result<()> {
        if out.nrows() != self.nrows() || start + out.ncols() > self.ncols() {
            return Err(crate::BlockError::ShapeMismatch {
                op: "write_columns_to",
                left: self.shape(),
                right: (out.nrows(), start + out.ncols()),
            });
        }
        self.write_window_to(0, start, out)
    }

    /// Overwrites `out` with the window of the block at rows
    /// `row..row + out.nrows()` and columns `col..col + out.ncols()`,
    /// densely: the support of a coupling block (see
    /// [`Block::row_support`]) without the zeros around it.
    ///
    /// ```
    /// use blockmat::Block;
    /// let c = faer::mat![[1.0, 2.0], [3.0, 4.0]];
    /// let g = Block::grid(vec![
    ///     vec![Block::zeros(2, 3), Block::dense(c)],
    ///     vec![Block::zeros(2, 3), Block::zeros(2, 2)],
    /// ])
    /// .unwrap();
    /// let (rows, cols) = (g.row_support().unwrap(), g.col_support().unwrap());
    /// assert_eq!((rows.clone(), cols.clone()), (0..2, 3..5));
    /// let mut w = faer::Mat::<f64>::zeros(rows.len(), cols.len());
    /// g.write_window_to(rows.start, cols.start, w.as_mut()).unwrap();
    /// assert_eq!(w, faer::mat![[1.0, 2.0], [3.0, 4.0]]);
    /// ```
    ///
    /// # Errors
    /// [`crate::BlockError::ShapeMismatch`] when the window runs past the
    /// block (left: the block's shape, right: the window's end).
    pub fn write_window_to(&self, row: usize, col: usize, mut out: MatMut<'_, f64>) -> crate::Result<()> {
        let end = (row + out.nrows(), col + out.ncols());
        if end.0 > self.nrows() || end.1 > self.ncols() {
            return Err(crate::BlockError::ShapeMismatch { op: "write_window_to", left: self.shape(), right: end });
        }
        out.fill(0.0);
        self.write_window(row, col, out);
        Ok(())
    }

    /// The window at `(row, col)` of the block into `out` (zero wherever
    /// the block is zero), recursing only into children the window crosses.
    fn write_window(&self, row: usize, col: usize, mut out: MatMut<'_, f64>) {
        let (h, w) = (out.nrows(), out.ncols());
        match self {
            Block::Zero { .. } => {}
            Block::Identity { scale, .. } => {
                for i in row.max(col)..(row + h).min(col + w) {
                    out[(i - row, i - col)] = *scale;
                }
            }
            Block::Dense(m) => out.copy_from(m.submatrix(row, col, h, w)),
            Block::LowRank(l) => l.write_window(row, col, out),
            // A block-diagonal and a grid are walked with running offsets:
            // a wide layer's `Dx` (a grid of block-diagonals) is read one
            // unit at a time, so these must neither allocate nor recompute
            // every child's shape per call.
            Block::Diag(d) => {
                let (mut r0, mut c0) = (0, 0);
                for child in &d.blocks {
                    if c0 >= col + w || r0 >= row + h {
                        break;
                    }
                    let (cr, cc) = child.shape();
                    write_crossing(child, (r0, c0, cr, cc), (row, col), out.rb_mut());
                    (r0, c0) = (r0 + cr, c0 + cc);
                }
            }
            // (hinv hands `R`'s couplings over as bidiagonals of two zero
            // blocks, which the pivoted log-determinant reads per block.)
            Block::Bidiag(b) => {
                let (mut r0, mut c0) = (0, 0);
                for (k, d) in b.diag.iter().enumerate() {
                    if r0 >= row + h || c0 >= col + w {
                        break;
                    }
                    let (dr, dc) = d.shape();
                    write_crossing(d, (r0, c0, dr, dc), (row, col), out.rb_mut());
                    if let Some(o) = b.off.get(k) {
                        let (or, oc) = o.shape();
                        let at = match b.side {
                            Side::Lower => (r0 + dr, c0, or, oc),
                            Side::Upper => (r0, c0 + dc, or, oc),
                        };
                        write_crossing(o, at, (row, col), out.rb_mut());
                    }
                    (r0, c0) = (r0 + dr, c0 + dc);
                }
            }
            Block::Grid(g) => {
                let nc = g.col_sizes.len();
                let mut c0 = 0;
                for (j, &cc) in g.col_sizes.iter().enumerate() {
                    if c0 >= col + w {
                        break;
                    }
                    if c0 + cc > col {
                        let mut r0 = 0;
                        for (i, &cr) in g.row_sizes.iter().enumerate() {
                            write_crossing(&g.blocks[i * nc + j], (r0, c0, cr, cc), (row, col), out.rb_mut());
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
                        if let Some((r, c)) = crossing(at, (row, col), (h, w)) {
                            let (r0, c0) = (at.0, at.1);
                            let t = child.to_dense();
                            let src = t.transpose().submatrix(r.start - r0, c.start - c0, r.len(), c.len());
                            out.rb_mut().submatrix_mut(r.start - row, c.start - col, r.len(), c.len()).copy_from(src);
                        }
                    } else {
                        write_crossing(child, at, (row, col), out.rb_mut());
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

/// The rows and columns of the parent that both a child at
/// `(r0, c0, cr, cc)` and the window at `(row, col)` of shape `(h, w)`
/// cover, `None` when they do not meet.
fn crossing(
    (r0, c0, cr, cc): (usize, usize, usize, usize),
    (row, col): (usize, usize),
    (h, w): (usize, usize),
) -> Option<(Range<usize>, Range<usize>)> {
    let r = row.max(r0)..(row + h).min(r0 + cr);
    let c = col.max(c0)..(col + w).min(c0 + cc);
    (!r.is_empty() && !c.is_empty()).then_some((r, c))
}

/// The part of `child` (at `(r0, c0)` of its parent, of shape `(cr, cc)`)
/// inside the parent's window at `(row, col)`, into `out` (that window).
fn write_crossing(child: &Block, at: (usize, usize, usize, usize), (row, col): (usize, usize), out: MatMut<'_, f64>) {
    let shape = (out.nrows(), out.ncols());
    if let Some((r, c)) = crossing(at, (row, col), shape) {
        let window = out.submatrix_mut(r.start - row, c.start - col, r.len(), c.len());
        child.write_window(r.start - at.0, c.start - at.1, window);
    }
}
