//! Structure-preserving algebra: transpose, scaling, sums and products.
//!
//! Every operation keeps the tightest structure that holds its result
//! (see `assemble.rs`): block-diagonal stays block-diagonal, diagonal times
//! bidiagonal is bidiagonal, zeros and identities cost nothing. Two
//! structures combined blockwise must have equal partitions (at every level
//! where both sides are structures); leaves combine with anything.

use std::collections::BTreeMap;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};

use crate::assemble::{Band, BlockMap};
use crate::block::{Bidiag, Block, BlockDiag, Grid, Tridiag};
use crate::error::{BlockError, Result};

impl Block {
    /// The transpose, with the same structure mirrored: block-diagonal stays
    /// block-diagonal, lower bidiagonal becomes upper, a grid becomes the
    /// transposed grid of transposes. A symmetric block-tridiagonal matrix
    /// stays symmetric (its diagonal blocks are transposed, so the result is
    /// exact even if the caller's symmetry promise was not kept).
    ///
    /// ```
    /// use blockmat::{Block, Side};
    /// let l = Block::unit_bidiag(Side::Lower, &[1, 2], vec![Block::zeros(2, 1)]).unwrap();
    /// assert_eq!(l.transpose().kind(), "upper-bidiagonal");
    /// ```
    pub fn transpose(&self) -> Block {
        match self {
            Block::Zero { rows, cols } => Block::zeros(*cols, *rows),
            Block::Identity { .. } => self.clone(),
            Block::Dense(m) => Block::Dense(m.transpose().to_owned()),
            Block::LowRank(l) => Block::LowRank(l.transpose()),
            Block::Diag(d) => Block::Diag(BlockDiag { blocks: d.blocks.iter().map(Block::transpose).collect() }),
            Block::Bidiag(b) => Block::Bidiag(Bidiag {
                side: b.side.flip(),
                diag: b.diag.iter().map(Block::transpose).collect(),
                off: b.off.iter().map(Block::transpose).collect(),
            }),
            Block::Tridiag(t) => {
                let diag = t.diag.iter().map(Block::transpose).collect();
                match &t.sup {
                    // (A^T)_{k+1,k} = (A_{k,k+1})^T = sub[k]: the stored
                    // sub-diagonal is unchanged.
                    None => Block::Tridiag(Tridiag { diag, sub: t.sub.clone(), sup: None }),
                    Some(sup) => Block::Tridiag(Tridiag {
                        diag,
                        sub: sup.iter().map(Block::transpose).collect(),
                        sup: Some(t.sub.iter().map(Block::transpose).collect()),
                    }),
                }
            }
            Block::Grid(g) => {
                let (nr, nc) = (g.row_sizes.len(), g.col_sizes.len());
                let mut blocks = Vec::with_capacity(nr * nc);
                for j in 0..nc {
                    for i in 0..nr {
                        blocks.push(g.blocks[i * nc + j].transpose());
                    }
                }
                Block::Grid(Grid { row_sizes: g.col_sizes.clone(), col_sizes: g.row_sizes.clone(), blocks })
            }
        }
    }

    /// `alpha * self`, with the same structure.
    pub fn scale(&self, alpha: f64) -> Block {
        let map = |v: &[Block]| v.iter().map(|b| b.scale(alpha)).collect::<Vec<_>>();
        match self {
            Block::Zero { .. } => self.clone(),
            Block::Identity { n, scale } => Block::scaled_identity(*n, alpha * scale),
            Block::Dense(m) => Block::Dense(Mat::from_fn(m.nrows(), m.ncols(), |i, j| alpha * m[(i, j)])),
            Block::LowRank(l) => Block::LowRank(l.scale(alpha)),
            Block::Diag(d) => Block::Diag(BlockDiag { blocks: map(&d.blocks) }),
            Block::Bidiag(b) => Block::Bidiag(Bidiag { side: b.side, diag: map(&b.diag), off: map(&b.off) }),
            Block::Tridiag(t) => {
                Block::Tridiag(Tridiag { diag: map(&t.diag), sub: map(&t.sub), sup: t.sup.as_deref().map(map) })
            }
            Block::Grid(g) => Block::Grid(Grid {
                row_sizes: g.row_sizes.clone(),
                col_sizes: g.col_sizes.clone(),
                blocks: map(&g.blocks),
            }),
        }
    }

    /// `-self`, with the same structure.
    pub fn neg(&self) -> Block {
        self.scale(-1.0)
    }

    /// `self + other`.
    ///
    /// Zero is free, identities add their scales, two structures with equal
    /// partitions add blockwise and keep the tightest common structure
    /// (block-diagonal + lower bidiagonal is lower bidiagonal, anything + a
    /// grid is a grid, symmetric + symmetric tridiagonal stays symmetric). An
    /// identity added to a structure with square diagonal blocks goes onto
    /// those blocks. A dense leaf added to a structure gives a dense leaf.
    ///
    /// # Errors
    /// [`BlockError::ShapeMismatch`] when the shapes differ,
    /// [`BlockError::PartitionMismatch`] when two structures (at any depth)
    /// are partitioned differently.
    pub fn add(&self, other: &Block) -> Result<Block> {
        self.combine(other, 1.0, "add")
    }

    /// `self - other`; see [`Block::add`].
    pub fn sub(&self, other: &Block) -> Result<Block> {
        self.combine(other, -1.0, "sub")
    }

    /// `self + beta * other`.
    fn combine(&self, other: &Block, beta: f64, op: &'static str) -> Result<Block> {
        if self.shape() != other.shape() {
            return Err(BlockError::ShapeMismatch { op, left: self.shape(), right: other.shape() });
        }
        match (self, other) {
            (_, Block::Zero { .. }) => Ok(self.clone()),
            (Block::Zero { .. }, _) => Ok(other.scale(beta)),
            (Block::Identity { n, scale: s }, Block::Identity { scale: t, .. }) => {
                Ok(Block::scaled_identity(*n, s + beta * t))
            }
            (Block::Dense(a), Block::Dense(b)) => {
                Ok(Block::Dense(Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)] + beta * b[(i, j)])))
            }
            (Block::Identity { scale, .. }, s) if s.row_partition().is_some() => match lift_identity(*scale, s) {
                Some(d) => d.combine(s, beta, op),
                None => Ok(dense_combine(self, other, beta)),
            },
            (s, Block::Identity { scale, .. }) if s.row_partition().is_some() => match lift_identity(*scale, s) {
                Some(d) => s.combine(&d, beta, op),
                None => Ok(dense_combine(self, other, beta)),
            },
            _ => match (BlockMap::of(self), BlockMap::of(other)) {
                (Some(a), Some(b)) => {
                    check_partitions(op, &a.rows, &b.rows)?;
                    check_partitions(op, &a.cols, &b.cols)?;
                    let mut out = BlockMap::new(a.rows, a.cols);
                    out.entries = a.entries;
                    for (key, b) in b.entries {
                        let sum = match out.entries.remove(&key) {
                            Some(a) => a.combine(&b, beta, op)?,
                            None => b.scale(beta),
                        };
                        out.entries.insert(key, sum);
                    }
                    let both_symmetric = is_sym_tridiag(self) && is_sym_tridiag(other);
                    let block = out.into_block(Band::of(self).join(Band::of(other)))?;
                    Ok(match block {
                        // Both operands have block (k, k+1) = block (k+1, k)^T,
                        // so their sum does too.
                        Block::Tridiag(t) if both_symmetric => {
                            Block::Tridiag(Tridiag { diag: t.diag, sub: t.sub, sup: None })
                        }
                        b => b,
                    })
                }
                _ => Ok(dense_combine(self, other, beta)),
            },
        }
    }

    /// The product `self * other`, keeping structure when it is closed.
    ///
    /// Zero times anything is zero and an identity only scales the other
    /// factor. Two structures whose inner partitions agree multiply
    /// blockwise and the result takes the tightest structure holding the
    /// non-zero block positions: block-diagonal times block-diagonal is
    /// block-diagonal, block-diagonal times bidiagonal is bidiagonal, lower
    /// times upper bidiagonal is tridiagonal, and lower times lower
    /// bidiagonal (two sub-diagonals) is a [`Grid`] with zero leaves outside
    /// the band. A grid factor gives a grid. A dense factor gives a dense
    /// leaf, computed with the structured product; so does a pair of
    /// structures whose inner partitions differ (at that level; deeper
    /// levels keep what they can).
    ///
    /// # Errors
    /// [`BlockError::ShapeMismatch`] when the inner dimensions differ.
    pub fn matmul(&self, other: &Block) -> Result<Block> {
        let op = "matmul";
        if self.ncols() != other.nrows() {
            return Err(BlockError::ShapeMismatch { op, left: self.shape(), right: other.shape() });
        }
        let (m, n) = (self.nrows(), other.ncols());
        match (self, other) {
            (Block::Zero { .. }, _) | (_, Block::Zero { .. }) => Ok(Block::zeros(m, n)),
            (Block::Identity { scale, .. }, b) => Ok(if *scale == 1.0 { b.clone() } else { b.scale(*scale) }),
            (a, Block::Identity { scale, .. }) => Ok(if *scale == 1.0 { a.clone() } else { a.scale(*scale) }),
            (Block::Dense(a), Block::Dense(b)) => {
                let mut out = Mat::zeros(m, n);
                if a.ncols() > 0 {
                    matmul(out.as_mut(), Accum::Replace, a.as_ref(), b.as_ref(), 1.0, Par::Seq);
                }
                Ok(Block::Dense(out))
            }
            (a, Block::Dense(b)) => a.mul_dense(b.as_ref()).map(Block::Dense),
            // A low-rank leaf meets the other factor's structure densely.
            (a, b @ Block::LowRank(_)) => a.mul_dense(b.to_dense().as_ref()).map(Block::Dense),
            // D * S = (S^T D^T)^T, so the structured product does the work.
            (Block::Dense(a), b) => Ok(Block::Dense(b.tmul_dense(a.transpose())?.transpose().to_owned())),
            (a @ Block::LowRank(_), b) => {
                Ok(Block::Dense(b.tmul_dense(a.to_dense().transpose())?.transpose().to_owned()))
            }
            _ => {
                let (Some(a), Some(b)) = (BlockMap::of(self), BlockMap::of(other)) else {
                    // Every leaf was handled above.
                    return Err(BlockError::Unsupported {
                        op,
                        structure: self.kind(),
                        hint: "leaves are multiplied before this point",
                    });
                };
                if a.cols != b.rows {
                    // Blockwise multiplication needs equal inner partitions;
                    // otherwise the structured product still works on a
                    // dense right factor.
                    return self.mul_dense(other.to_dense().as_ref()).map(Block::Dense);
                }
                let mut by_row: BTreeMap<usize, Vec<(usize, &Block)>> = BTreeMap::new();
                for ((j, k), blk) in &b.entries {
                    by_row.entry(*j).or_default().push((*k, blk));
                }
                let mut out = BlockMap::new(a.rows.clone(), b.cols.clone());
                for ((i, j), x) in &a.entries {
                    for (k, y) in by_row.get(j).map(Vec::as_slice).unwrap_or(&[]) {
                        let p = x.matmul(y)?;
                        if p.is_zero() {
                            continue;
                        }
                        let acc = match out.entries.remove(&(*i, *k)) {
                            Some(acc) => acc.sum_loose(&p),
                            None => p,
                        };
                        out.entries.insert((*i, *k), acc);
                    }
                }
                out.into_block(Band::grid_of(self).join(Band::grid_of(other)))
            }
        }
    }
}

impl Block {
    /// `self + other` for blocks of equal shape, densifying instead of
    /// failing when partitions differ (products of differently nested
    /// factors meet here).
    fn sum_loose(&self, other: &Block) -> Block {
        self.combine(other, 1.0, "matmul").unwrap_or_else(|_| dense_combine(self, other, 1.0))
    }
}

fn is_sym_tridiag(b: &Block) -> bool {
    matches!(b, Block::Tridiag(t) if t.sup.is_none())
}

fn check_partitions(op: &'static str, left: &[usize], right: &[usize]) -> Result<()> {
    if left != right {
        return Err(BlockError::PartitionMismatch { op, left: left.to_vec(), right: right.to_vec() });
    }
    Ok(())
}

/// `scale * I` as a block-diagonal matrix partitioned like `s`, when `s`
/// has equal row and column partitions.
fn lift_identity(scale: f64, s: &Block) -> Option<Block> {
    let rows = s.row_partition()?;
    (Some(&rows) == s.col_partition().as_ref())
        .then(|| Block::block_diag(rows.iter().map(|&n| Block::scaled_identity(n, scale)).collect()))
}

fn dense_combine(a: &Block, b: &Block, beta: f64) -> Block {
    let (a, b) = (a.to_dense(), b.to_dense());
    Block::Dense(Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)] + beta * b[(i, j)]))
}
