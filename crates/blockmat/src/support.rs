//! Where a block can be non-zero: the row and column ranges outside of which
//! it is structurally zero. Solvers use this to restrict their work (the
//! off-diagonal blocks of the lifted Hessian system touch one column range).

use std::ops::Range;

use faer::Mat;

use crate::block::{Block, Side, Tridiag};

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
            Block::LowRank(l) => {
                let len = pick(l.left.nrows(), l.right.nrows());
                (l.left.nrows() > 0 && l.right.nrows() > 0 && l.rank() > 0).then_some(0..len)
            }
            // Running offsets rather than `offsets()`: the factorizations
            // ask every coupling block for its support, and must not
            // allocate per block.
            Block::Diag(d) => {
                let mut at = 0;
                let mut acc = None;
                for b in &d.blocks {
                    acc = union(acc, shifted(b.support(rows), at));
                    at += pick(b.nrows(), b.ncols());
                }
                acc
            }
            Block::Bidiag(b) => {
                let mut at = 0;
                let mut acc = None;
                for (k, d) in b.diag.iter().enumerate() {
                    let next = at + pick(d.nrows(), d.ncols());
                    acc = union(acc, shifted(d.support(rows), at));
                    if let Some(o) = b.off.get(k) {
                        // Lower: at (k + 1, k); upper: at (k, k + 1).
                        let lower = b.side == Side::Lower;
                        let shift = if lower == rows { next } else { at };
                        acc = union(acc, shifted(o.support(rows), shift));
                    }
                    at = next;
                }
                acc
            }
            Block::Tridiag(t) => {
                let mut at = 0;
                let mut acc = None;
                for (k, d) in t.diag.iter().enumerate() {
                    let next = at + pick(d.nrows(), d.ncols());
                    acc = union(acc, shifted(d.support(rows), at));
                    if let Some(s) = t.sub.get(k) {
                        // sub[k] at (k + 1, k), its transpose at (k, k + 1).
                        acc = union(acc, shifted(s.support(rows), pick(next, at)));
                        let sup = match &t.sup {
                            Some(sup) => sup[k].support(rows),
                            // (k, k+1) is sub[k]^T: its rows are sub[k]'s columns.
                            None => s.support(!rows),
                        };
                        acc = union(acc, shifted(sup, pick(at, next)));
                    }
                    at = next;
                }
                acc
            }
            Block::Grid(g) => {
                let nc = g.col_sizes.len();
                let mut acc = None;
                let mut r = 0;
                for (i, &nr) in g.row_sizes.iter().enumerate() {
                    let mut c = 0;
                    for (j, &ncj) in g.col_sizes.iter().enumerate() {
                        acc = union(acc, shifted(g.blocks[i * nc + j].support(rows), if rows { r } else { c }));
                        c += ncj;
                    }
                    r += nr;
                }
                acc
            }
        }
    }
}

impl Block {
    /// The largest `|entry|` of the block (0 for an empty one), without
    /// forming it: structures take the largest over their children, a
    /// scaled identity its scale. Only a low-rank leaf is multiplied out.
    /// Entries equal to NaN are skipped, as in [`crate::reduce::max_abs`].
    pub fn max_abs(&self) -> f64 {
        let over = |blocks: &mut dyn Iterator<Item = &Block>| blocks.map(Block::max_abs).fold(0.0f64, f64::max);
        match self {
            Block::Zero { .. } => 0.0,
            Block::Identity { n, scale } => {
                if *n == 0 {
                    0.0
                } else {
                    scale.abs()
                }
            }
            Block::Dense(m) => crate::reduce::max_abs(m.as_ref()),
            Block::LowRank(_) => crate::reduce::max_abs(self.to_dense().as_ref()),
            Block::Diag(d) => over(&mut d.blocks.iter()),
            Block::Bidiag(b) => over(&mut b.diag.iter().chain(&b.off)),
            // A symmetric tridiagonal's implicit super-diagonal holds the
            // sub-diagonal's entries.
            Block::Tridiag(t) => over(&mut t.diag.iter().chain(&t.sub).chain(t.sup.iter().flatten())),
            Block::Grid(g) => over(&mut g.blocks.iter()),
        }
    }

    /// The first NaN or infinity stored in the block (dense entries and
    /// identity scales), `None` when every stored value is finite.
    pub fn first_non_finite(&self) -> Option<f64> {
        match self {
            Block::Zero { .. } => None,
            Block::Identity { scale, .. } => (!scale.is_finite()).then_some(*scale),
            Block::Dense(m) => first_non_finite_in(m.as_ref()),
            Block::LowRank(l) => [&l.left, &l.core, &l.right].into_iter().find_map(|m| first_non_finite_in(m.as_ref())),
            Block::Diag(d) => d.blocks.iter().find_map(Block::first_non_finite),
            Block::Bidiag(b) => b.diag.iter().chain(&b.off).find_map(Block::first_non_finite),
            Block::Tridiag(t) => {
                t.diag.iter().chain(&t.sub).chain(t.sup.iter().flatten()).find_map(Block::first_non_finite)
            }
            Block::Grid(g) => g.blocks.iter().find_map(Block::first_non_finite),
        }
    }
}

/// The first NaN or infinity of a matrix, column by column. Every block of
/// every network is checked this way, so the common case (all finite) is
/// one vectorisable pass over the columns with a single verdict at the end:
/// `v * 0` is zero for a finite `v` and NaN otherwise, and the sum of those
/// is NaN exactly when some entry is not finite. (A verdict per column
/// cost a fifth more instructions on a deep network's many short columns:
/// 3.2M against 2.6M for the finiteness check of hinv's `Curvature::new`
/// at L256 h8 B2, under callgrind.)
fn first_non_finite_in(m: faer::MatRef<'_, f64>) -> Option<f64> {
    let mut acc = [0.0f64; 4];
    let mut strided = false;
    for j in 0..m.ncols() {
        match m.col(j).try_as_col_major() {
            Some(c) => {
                let mut chunks = c.as_slice().chunks_exact(4);
                for q in &mut chunks {
                    for (a, v) in acc.iter_mut().zip(q) {
                        *a += v * 0.0;
                    }
                }
                for (a, v) in acc.iter_mut().zip(chunks.remainder()) {
                    *a += v * 0.0;
                }
            }
            None => strided = true,
        }
    }
    // NaN compares unequal to everything.
    if strided || acc.iter().sum::<f64>() != 0.0 {
        (0..m.ncols()).find_map(|j| m.col(j).iter().copied().find(|v| !v.is_finite()))
    } else {
        None
    }
}

/// A dense matrix and where it sits in a block that is structurally zero
/// everywhere else ([`Block::into_dense_leaf`]).
#[derive(Debug, Clone)]
pub struct PlacedDense {
    /// Rows of the block the matrix covers.
    pub rows: Range<usize>,
    /// Columns of the block the matrix covers.
    pub cols: Range<usize>,
    /// The matrix, `rows.len() x cols.len()`.
    pub m: Mat<f64>,
}

impl Block {
    /// The block's only leaf that is not a [`Block::Zero`], moved out with
    /// the rows and columns it covers, when that leaf is dense and every
    /// block on the way to it is a grid or a bidiagonal; the block itself,
    /// unchanged, otherwise (a block-diagonal or tridiagonal holding one
    /// dense leaf included). For a consumer that takes ownership of a
    /// coupling's support instead of densifying the block and copying it
    /// (hinv's reduced system: one dense `a_l x a_{l-1}` leaf in a
    /// `2 a_l x 2 a_{l-1}` block).
    ///
    /// ```
    /// use blockmat::{Block, Side};
    /// let c = faer::Mat::from_fn(2, 3, |i, j| (i + j) as f64);
    /// let b = Block::bidiag(Side::Upper, vec![Block::zeros(2, 3), Block::zeros(2, 3)], vec![Block::dense(c.clone())])
    ///     .unwrap();
    /// let leaf = b.into_dense_leaf().unwrap();
    /// assert_eq!((leaf.rows, leaf.cols), (0..2, 3..6));
    /// assert!(leaf.m == c);
    /// // Two non-zero leaves: the block comes back.
    /// let two = Block::grid(vec![vec![Block::identity(2), Block::dense(c)]]).unwrap();
    /// assert_eq!(two.into_dense_leaf().unwrap_err().shape(), (2, 5));
    /// ```
    // The error is the caller's block given back (as `Rc::try_unwrap`
    // does), not a failure to describe: boxing it would allocate on the
    // path that then densifies the block anyway.
    #[allow(clippy::result_large_err)]
    pub fn into_dense_leaf(self) -> Result<PlacedDense, Block> {
        match self {
            Block::Dense(m) => Ok(PlacedDense { rows: 0..m.nrows(), cols: 0..m.ncols(), m }),
            Block::Grid(mut g) => {
                let nc = g.col_sizes.len();
                let Some(k) = only_non_zero(&g.blocks) else { return Err(Block::Grid(g)) };
                let (r0, c0) = (g.row_sizes[..k / nc].iter().sum(), g.col_sizes[..k % nc].iter().sum());
                take_leaf(&mut g.blocks[k], r0, c0).ok_or(Block::Grid(g))
            }
            Block::Bidiag(mut b) => {
                // Children in one list: the diagonal, then the off-diagonal.
                let nd = b.diag.len();
                let Some(k) = only_non_zero(b.diag.iter().chain(&b.off)) else { return Err(Block::Bidiag(b)) };
                let row_at = |i: usize| b.diag[..i].iter().map(Block::nrows).sum::<usize>();
                let col_at = |j: usize| b.diag[..j].iter().map(Block::ncols).sum::<usize>();
                let (i, j) = match (k.checked_sub(nd), b.side) {
                    (None, _) => (k, k),
                    (Some(o), Side::Lower) => (o + 1, o),
                    (Some(o), Side::Upper) => (o, o + 1),
                };
                let (r0, c0) = (row_at(i), col_at(j));
                let leaf = match k.checked_sub(nd) {
                    None => &mut b.diag[k],
                    Some(o) => &mut b.off[o],
                };
                take_leaf(leaf, r0, c0).ok_or(Block::Bidiag(b))
            }
            other => Err(other),
        }
    }
}

/// The index of the only block of `blocks` that is not a [`Block::Zero`].
fn only_non_zero<'a>(blocks: impl IntoIterator<Item = &'a Block>) -> Option<usize> {
    let mut found = None;
    for (k, b) in blocks.into_iter().enumerate() {
        if !matches!(b, Block::Zero { .. }) {
            if found.is_some() {
                return None;
            }
            found = Some(k);
        }
    }
    found
}

/// `b`'s dense leaf shifted by `(r0, c0)`, a zero block of its shape left
/// in its place; `None` (and `b` as it was) when `b` has none.
fn take_leaf(b: &mut Block, r0: usize, c0: usize) -> Option<PlacedDense> {
    let zero = Block::zeros(b.nrows(), b.ncols());
    match std::mem::replace(b, zero).into_dense_leaf() {
        Ok(PlacedDense { rows, cols, m }) => {
            Some(PlacedDense { rows: rows.start + r0..rows.end + r0, cols: cols.start + c0..cols.end + c0, m })
        }
        Err(back) => {
            *b = back;
            None
        }
    }
}

impl Tridiag {
    /// Moves the diagonal blocks out, leaving structural zero blocks of the
    /// same shapes in their place: the partition, the off-diagonal blocks
    /// and the symmetry are unchanged. For a consumer that factors the
    /// diagonal blocks in place and still reads the couplings (no copy of
    /// the blocks it owns from then on).
    ///
    /// ```
    /// use blockmat::{Block, Tridiag};
    /// let mut t = Tridiag::symmetric(
    ///     vec![Block::dense(faer::Mat::identity(2, 2)), Block::identity(1)],
    ///     vec![Block::zeros(1, 2)],
    /// )
    /// .unwrap();
    /// let diag = t.take_diag();
    /// assert_eq!(diag[0].kind(), "dense");
    /// assert!(t.diag().iter().all(Block::is_zero));
    /// assert_eq!(t.diag()[0].shape(), (2, 2));
    /// ```
    pub fn take_diag(&mut self) -> Vec<Block> {
        let zeros = self.diag.iter().map(|b| Block::zeros(b.nrows(), b.ncols())).collect();
        std::mem::replace(&mut self.diag, zeros)
    }

    /// Moves the sub-diagonal blocks out, as [`Tridiag::take_diag`] does
    /// the diagonal ones: structural zero blocks of the same shapes stay.
    /// For a consumer that takes the couplings' storage
    /// ([`Block::into_dense_leaf`]) instead of copying them.
    ///
    /// ```
    /// use blockmat::{Block, Tridiag};
    /// let mut t = Tridiag::symmetric(vec![Block::identity(2), Block::identity(1)], vec![Block::dense(faer::Mat::ones(1, 2))])
    ///     .unwrap();
    /// let sub = t.take_sub();
    /// assert_eq!(sub[0].kind(), "dense");
    /// assert!(t.sub()[0].is_zero() && t.sub()[0].shape() == (1, 2));
    /// ```
    pub fn take_sub(&mut self) -> Vec<Block> {
        let zeros = self.sub.iter().map(|b| Block::zeros(b.nrows(), b.ncols())).collect();
        std::mem::replace(&mut self.sub, zeros)
    }
}
