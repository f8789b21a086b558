//! Where a block can be non-zero: the row and column ranges outside of which
//! it is structurally zero. Solvers use this to restrict their work (the
//! off-diagonal blocks of the lifted Hessian system touch one column range).

use std::ops::Range;

use crate::block::{offsets, Block, Side};

fn union(a: Option<Range<usize>>, b: Option<Range<usize>>) -> Option<Range<usize>> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(a), Some(b)) => Some(a.start.min(b.start)..a.end.max(b.end)),
    }
}

fn shifted(r: Option<Range<usize>>, by: usize) -> Option<Range<usize>> {
    r.map(|r| r.start + by..r.end + by)
}

impl Block {
    /// The smallest column range outside of which the block is structurally
    /// zero, `None` when it is structurally zero everywhere. Only zero
    /// *structure* is seen ([`Block::Zero`] leaves, zero-sized blocks, zero
    /// identities), not dense blocks that happen to hold zeros.
    ///
    /// ```
    /// use blockmat::Block;
    /// let g = Block::grid(vec![
    ///     vec![Block::zeros(2, 3), Block::identity(2), Block::zeros(2, 1)],
    /// ]).unwrap();
    /// assert_eq!(g.col_support(), Some(3..5));
    /// ```
    pub fn col_support(&self) -> Option<Range<usize>> {
        self.support(false)
    }

    /// The smallest row range outside of which the block is structurally
    /// zero; see [`Block::col_support`].
    pub fn row_support(&self) -> Option<Range<usize>> {
        self.support(true)
    }

    fn support(&self, rows: bool) -> Option<Range<usize>> {
        let pick = |r: usize, c: usize| if rows { r } else { c };
        match self {
            Block::Zero { .. } => None,
            Block::Identity { n, scale } => (*n > 0 && *scale != 0.0).then_some(0..*n),
            Block::Dense(m) => {
                let len = pick(m.nrows(), m.ncols());
                (m.nrows() > 0 && m.ncols() > 0).then_some(0..len)
            }
            Block::Diag(d) => {
                let sizes: Vec<usize> = d.blocks.iter().map(|b| pick(b.nrows(), b.ncols())).collect();
                let off = offsets(&sizes);
                d.blocks.iter().enumerate().fold(None, |acc, (k, b)| union(acc, shifted(b.support(rows), off[k])))
            }
            Block::Bidiag(b) => {
                let sizes: Vec<usize> = b.diag.iter().map(|d| pick(d.nrows(), d.ncols())).collect();
                let off = offsets(&sizes);
                let mut acc = None;
                for (k, d) in b.diag.iter().enumerate() {
                    acc = union(acc, shifted(d.support(rows), off[k]));
                }
                for (k, o) in b.off.iter().enumerate() {
                    let (i, j) = match b.side {
                        Side::Lower => (k + 1, k),
                        Side::Upper => (k, k + 1),
                    };
                    acc = union(acc, shifted(o.support(rows), off[pick(i, j)]));
                }
                acc
            }
            Block::Tridiag(t) => {
                let sizes: Vec<usize> = t.diag.iter().map(|d| pick(d.nrows(), d.ncols())).collect();
                let off = offsets(&sizes);
                let mut acc = None;
                for (k, d) in t.diag.iter().enumerate() {
                    acc = union(acc, shifted(d.support(rows), off[k]));
                }
                for (k, s) in t.sub.iter().enumerate() {
                    acc = union(acc, shifted(s.support(rows), off[pick(k + 1, k)]));
                    let sup = match &t.sup {
                        Some(sup) => sup[k].support(rows),
                        // (k, k+1) is sub[k]^T: its rows are sub[k]'s columns.
                        None => s.support(!rows),
                    };
                    acc = union(acc, shifted(sup, off[pick(k, k + 1)]));
                }
                acc
            }
            Block::Grid(g) => {
                let ro = offsets(&g.row_sizes);
                let co = offsets(&g.col_sizes);
                let nc = g.col_sizes.len();
                g.blocks.iter().enumerate().fold(None, |acc, (idx, b)| {
                    let (i, j) = (idx / nc, idx % nc);
                    union(acc, shifted(b.support(rows), if rows { ro[i] } else { co[j] }))
                })
            }
        }
    }
}

impl Block {
    /// The first NaN or infinity stored in the block (dense entries and
    /// identity scales), `None` when every stored value is finite.
    pub fn first_non_finite(&self) -> Option<f64> {
        match self {
            Block::Zero { .. } => None,
            Block::Identity { scale, .. } => (!scale.is_finite()).then_some(*scale),
            Block::Dense(m) => (0..m.ncols()).find_map(|j| (0..m.nrows()).map(|i| m[(i, j)]).find(|v| !v.is_finite())),
            Block::Diag(d) => d.blocks.iter().find_map(Block::first_non_finite),
            Block::Bidiag(b) => b.diag.iter().chain(&b.off).find_map(Block::first_non_finite),
            Block::Tridiag(t) => {
                t.diag.iter().chain(&t.sub).chain(t.sup.iter().flatten()).find_map(Block::first_non_finite)
            }
            Block::Grid(g) => g.blocks.iter().find_map(Block::first_non_finite),
        }
    }
}
