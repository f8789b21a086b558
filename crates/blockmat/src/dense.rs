//! Conversion of any [`Block`] to a dense faer matrix.

use faer::reborrow::ReborrowMut;
use faer::{Mat, MatMut};

use crate::block::{offsets, Block, Side};

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
                let ro = offsets(&b.diag.iter().map(Block::nrows).collect::<Vec<_>>());
                let co = offsets(&b.diag.iter().map(Block::ncols).collect::<Vec<_>>());
                for (k, d) in b.diag.iter().enumerate() {
                    d.write_dense(out.rb_mut().submatrix_mut(ro[k], co[k], d.nrows(), d.ncols()));
                }
                for (k, o) in b.off.iter().enumerate() {
                    let (i, j) = match b.side {
                        Side::Lower => (k + 1, k),
                        Side::Upper => (k, k + 1),
                    };
                    o.write_dense(out.rb_mut().submatrix_mut(ro[i], co[j], o.nrows(), o.ncols()));
                }
            }
            Block::Tridiag(t) => {
                let ro = offsets(&t.diag.iter().map(Block::nrows).collect::<Vec<_>>());
                let co = offsets(&t.diag.iter().map(Block::ncols).collect::<Vec<_>>());
                for (k, d) in t.diag.iter().enumerate() {
                    d.write_dense(out.rb_mut().submatrix_mut(ro[k], co[k], d.nrows(), d.ncols()));
                }
                for (k, s) in t.sub.iter().enumerate() {
                    s.write_dense(out.rb_mut().submatrix_mut(ro[k + 1], co[k], s.nrows(), s.ncols()));
                    match &t.sup {
                        Some(sup) => {
                            let u = &sup[k];
                            u.write_dense(out.rb_mut().submatrix_mut(ro[k], co[k + 1], u.nrows(), u.ncols()));
                        }
                        None => {
                            let st = s.to_dense();
                            out.rb_mut()
                                .submatrix_mut(ro[k], co[k + 1], s.ncols(), s.nrows())
                                .copy_from(st.transpose());
                        }
                    }
                }
            }
            Block::Grid(g) => {
                let ro = offsets(&g.row_sizes);
                let co = offsets(&g.col_sizes);
                let nc = g.col_sizes.len();
                for (idx, b) in g.blocks.iter().enumerate() {
                    let (i, j) = (idx / nc, idx % nc);
                    b.write_dense(out.rb_mut().submatrix_mut(ro[i], co[j], g.row_sizes[i], g.col_sizes[j]));
                }
            }
        }
    }
}
