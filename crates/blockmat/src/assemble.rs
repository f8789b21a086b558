//! A sparse map of block positions, and the choice of the tightest structure
//! that holds it. Sums, products and the interleaving all produce their
//! result as such a map, so the rule "keep structure when it is closed" is
//! written once, here.

use std::collections::BTreeMap;

use crate::block::{Bidiag, Block, BlockDiag, Grid, Side, Tridiag};
use crate::error::Result;

/// Which block positions a structure may use: the lower and upper
/// neighbours of the diagonal, or any (a grid). Joined over the operands of
/// a sum, it keeps the sum as wide as its widest operand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Band {
    pub(crate) lower: bool,
    pub(crate) upper: bool,
    pub(crate) grid: bool,
}

impl Band {
    /// The positions `b`'s variant may use (nothing for a leaf).
    pub(crate) fn of(b: &Block) -> Band {
        match b {
            Block::Bidiag(x) => Band { lower: x.side == Side::Lower, upper: x.side == Side::Upper, grid: false },
            Block::Tridiag(_) => Band { lower: true, upper: true, grid: false },
            Block::Grid(_) => Band { lower: true, upper: true, grid: true },
            _ => Band::default(),
        }
    }

    /// Both sets of positions.
    pub(crate) fn join(self, o: Band) -> Band {
        Band { lower: self.lower || o.lower, upper: self.upper || o.upper, grid: self.grid || o.grid }
    }

    /// Only the grid-ness of `b` (products may narrow a band, not a grid).
    pub(crate) fn grid_of(b: &Block) -> Band {
        Band { grid: matches!(b, Block::Grid(_)), ..Band::default() }
    }
}

/// Blocks at block positions `(i, j)` of a matrix with the given block row
/// and column sizes; absent positions are zero.
pub(crate) struct BlockMap {
    pub(crate) rows: Vec<usize>,
    pub(crate) cols: Vec<usize>,
    pub(crate) entries: BTreeMap<(usize, usize), Block>,
}

impl BlockMap {
    pub(crate) fn new(rows: Vec<usize>, cols: Vec<usize>) -> BlockMap {
        BlockMap { rows, cols, entries: BTreeMap::new() }
    }

    /// The non-zero positions of a structure (owned: a symmetric
    /// tridiagonal matrix stores its super-diagonal only implicitly).
    /// `None` for a leaf.
    pub(crate) fn of(b: &Block) -> Option<BlockMap> {
        let mut map = BlockMap::new(b.row_partition()?, b.col_partition()?);
        let mut put = |i: usize, j: usize, blk: &Block| {
            if !blk.is_zero() {
                map.entries.insert((i, j), blk.clone());
            }
        };
        match b {
            Block::Zero { .. } | Block::Identity { .. } | Block::Dense(_) | Block::LowRank(_) => return None,
            Block::Diag(d) => d.blocks.iter().enumerate().for_each(|(k, x)| put(k, k, x)),
            Block::Bidiag(bd) => {
                bd.diag.iter().enumerate().for_each(|(k, x)| put(k, k, x));
                for (k, x) in bd.off.iter().enumerate() {
                    match bd.side {
                        Side::Lower => put(k + 1, k, x),
                        Side::Upper => put(k, k + 1, x),
                    }
                }
            }
            Block::Tridiag(t) => {
                t.diag.iter().enumerate().for_each(|(k, x)| put(k, k, x));
                for (k, x) in t.sub.iter().enumerate() {
                    put(k + 1, k, x);
                    match &t.sup {
                        Some(sup) => put(k, k + 1, &sup[k]),
                        None => put(k, k + 1, &x.transpose()),
                    }
                }
            }
            Block::Grid(g) => {
                let nc = g.col_sizes.len();
                g.blocks.iter().enumerate().for_each(|(idx, x)| put(idx / nc, idx % nc, x));
            }
        }
        Some(map)
    }

    fn zero(&self, i: usize, j: usize) -> Block {
        Block::zeros(self.rows[i], self.cols[j])
    }

    /// Takes the block at `(i, j)`, a zero leaf when absent.
    fn take(&mut self, i: usize, j: usize) -> Block {
        self.entries.remove(&(i, j)).unwrap_or_else(|| self.zero(i, j))
    }

    /// The tightest of block-diagonal, lower/upper bidiagonal, tridiagonal
    /// and grid that holds every present position and is at least as wide
    /// as `floor`; a grid when the numbers of block rows and columns differ.
    pub(crate) fn into_block(mut self, floor: Band) -> Result<Block> {
        let (nr, nc) = (self.rows.len(), self.cols.len());
        let keys: Vec<(usize, usize)> = self.entries.keys().copied().collect();
        let banded = nr == nc && keys.iter().all(|&(i, j)| i.abs_diff(j) <= 1);
        if floor.grid || !banded {
            let mut blocks = Vec::with_capacity(nr * nc);
            for i in 0..nr {
                for j in 0..nc {
                    blocks.push(self.take(i, j));
                }
            }
            return Grid::with_sizes(self.rows, self.cols, blocks).map(Block::Grid);
        }
        let has_lower = floor.lower || keys.iter().any(|&(i, j)| i > j);
        let has_upper = floor.upper || keys.iter().any(|&(i, j)| i < j);
        let diag: Vec<Block> = (0..nr).map(|k| self.take(k, k)).collect();
        let sub: Vec<Block> = (1..nr).map(|k| self.take(k, k - 1)).collect();
        let sup: Vec<Block> = (1..nr).map(|k| self.take(k - 1, k)).collect();
        Ok(match (has_lower, has_upper) {
            (false, false) => Block::Diag(BlockDiag { blocks: diag }),
            (true, false) => Block::Bidiag(Bidiag::new(Side::Lower, diag, sub)?),
            (false, true) => Block::Bidiag(Bidiag::new(Side::Upper, diag, sup)?),
            (true, true) => Block::Tridiag(Tridiag::new(diag, sub, sup)?),
        })
    }
}
