//! The blockwise transpose: a grid of `L`-block structures becomes an
//! `L`-block structure of grids.
//!
//! Take an `R x C` grid `K` whose block `(i, j)` is itself partitioned into
//! `L x L` blocks `K_ij[k, m]` (block-diagonal, bidiagonal, tridiagonal; zero
//! and identity leaves are read as block-diagonal). Reordering the unknowns
//! from "part `j`, then level `m`" to "level `m`, then part `j`" (and the
//! equations likewise) gives the matrix `K'` with
//!
//! ```text
//! K'[k, m] = grid over (i, j) of K_ij[k, m]
//! ```
//!
//! so `K' = P_r K P_c^T` for the interleaving permutations of the rows and
//! columns ([`BlockVec::interleave`](crate::BlockVec::interleave)). If every
//! `K_ij` is block-diagonal, `K'` is block-diagonal; if the `K_ij` have one
//! off-diagonal, `K'` is block-bidiagonal; in general it is
//! block-tridiagonal. This turns the lifted Hessian system of the algorithm
//! into the block-tridiagonal matrix its solver factors.

use std::collections::BTreeMap;

use crate::assemble::{Band, BlockMap};
use crate::block::{Block, Grid, Tridiag};
use crate::error::{BlockError, Result};

/// How the block rows and columns of a grid split into `L` levels:
/// `rows[i][k]` is the size of level `k` of block row `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nesting {
    /// Level sizes of each block row (all of length `L`).
    pub rows: Vec<Vec<usize>>,
    /// Level sizes of each block column (all of length `L`).
    pub cols: Vec<Vec<usize>>,
}

impl Nesting {
    /// The number of levels `L` (0 for an empty grid).
    pub fn levels(&self) -> usize {
        self.rows.first().or(self.cols.first()).map_or(0, Vec::len)
    }
}

const OP: &str = "interleave";

/// Reads the nesting off a grid: each block row takes the row partition of
/// its structured blocks, each block column their column partition; an
/// identity ties the partition of its row to that of its column. Zero leaves
/// take whatever their row and column say.
///
/// # Errors
/// [`BlockError::PartitionMismatch`] when two blocks disagree,
/// [`BlockError::Unsupported`] for a dense leaf (it has no levels),
/// [`BlockError::Underdetermined`] when a block row or column holds only
/// zero leaves (pass a [`Nesting`] to [`interleave_with`] instead).
pub fn infer_nesting(grid: &Grid) -> Result<Nesting> {
    let (nr, nc) = (grid.block_rows(), grid.block_cols());
    let mut rows: Vec<Option<Vec<usize>>> = vec![None; nr];
    let mut cols: Vec<Option<Vec<usize>>> = vec![None; nc];
    let mut ties = Vec::new();
    for i in 0..nr {
        for j in 0..nc {
            let b = &grid.blocks[i * nc + j];
            match b {
                Block::Zero { .. } => {}
                Block::Identity { .. } => ties.push((i, j)),
                Block::Dense(_) | Block::LowRank(_) => return Err(dense_leaf()),
                _ => {
                    set(&mut rows[i], b.row_partition())?;
                    set(&mut cols[j], b.col_partition())?;
                }
            }
        }
    }
    // Each pass settles at least one tie or stops, so this terminates.
    loop {
        let mut changed = false;
        for &(i, j) in &ties {
            match (rows[i].clone(), cols[j].clone()) {
                (Some(r), None) => (cols[j], changed) = (Some(r), true),
                (None, Some(c)) => (rows[i], changed) = (Some(c), true),
                (Some(r), Some(c)) if r != c => {
                    return Err(BlockError::PartitionMismatch { op: OP, left: r, right: c })
                }
                _ => {}
            }
        }
        if !changed {
            break;
        }
    }
    let rows = settle(rows, "row")?;
    let cols = settle(cols, "column")?;
    let nesting = Nesting { rows, cols };
    check_levels(&nesting)?;
    Ok(nesting)
}

fn dense_leaf() -> BlockError {
    BlockError::Unsupported {
        op: OP,
        structure: "dense leaf in a grid",
        hint: "give it its levels by wrapping it in a one-block `block_diag`, or use a zero or identity leaf",
    }
}

fn set(slot: &mut Option<Vec<usize>>, part: Option<Vec<usize>>) -> Result<()> {
    match (slot.as_ref(), part) {
        (_, None) => Ok(()),
        (None, Some(p)) => {
            *slot = Some(p);
            Ok(())
        }
        (Some(s), Some(p)) if *s != p => Err(BlockError::PartitionMismatch { op: OP, left: s.clone(), right: p }),
        _ => Ok(()),
    }
}

fn settle(parts: Vec<Option<Vec<usize>>>, what: &'static str) -> Result<Vec<Vec<usize>>> {
    parts
        .into_iter()
        .enumerate()
        .map(|(index, p)| p.ok_or(BlockError::Underdetermined { op: OP, what, index }))
        .collect()
}

fn check_levels(n: &Nesting) -> Result<()> {
    let first = n.rows.first().or(n.cols.first());
    for p in n.rows.iter().chain(&n.cols) {
        if let Some(f) = first {
            if p.len() != f.len() {
                return Err(BlockError::PartitionMismatch { op: OP, left: f.clone(), right: p.clone() });
            }
        }
    }
    Ok(())
}

/// The blockwise transpose of `grid`, with the nesting inferred by
/// [`infer_nesting`].
///
/// The result is the tightest structure holding the non-zero level
/// positions: [`Block::Diag`] when every source block is diagonal,
/// [`Block::Bidiag`] with one off-diagonal, otherwise [`Block::Tridiag`]
/// (general, with its super-diagonal stored; see [`interleave_symmetric`]),
/// or a [`Block::Grid`] if a source block is a grid with entries further
/// from the diagonal. Every diagonal block of the result is an `R x C`
/// [`Grid`]; an off-diagonal position is a grid when some source block has
/// an entry there and a zero leaf otherwise. Entries of the grids absent
/// from a source structure are zero leaves.
///
/// ```
/// use blockmat::{interleave, Block};
/// let d = |s: f64| Block::block_diag(vec![Block::scaled_identity(1, s), Block::scaled_identity(2, s)]);
/// let k = Block::grid(vec![vec![d(1.0), d(2.0)], vec![d(3.0), d(4.0)]]).unwrap();
/// let kp = interleave(k.as_grid().unwrap()).unwrap();
/// assert_eq!(kp.kind(), "block-diagonal");
/// assert_eq!(kp.row_partition(), Some(vec![2, 4]));
/// ```
///
/// # Errors
/// Those of [`infer_nesting`] and [`interleave_with`].
pub fn interleave(grid: &Grid) -> Result<Block> {
    interleave_with(grid, &infer_nesting(grid)?)
}

/// The blockwise transpose of `grid` with an explicit nesting (needed when
/// a block row or column holds only zero leaves); see [`interleave`].
///
/// # Errors
/// [`BlockError::PartitionMismatch`] when the nesting does not match the
/// grid's sizes or a block's partitions, or levels differ in number;
/// [`BlockError::Unsupported`] for a dense leaf.
pub fn interleave_with(grid: &Grid, nesting: &Nesting) -> Result<Block> {
    let (nr, nc) = (grid.block_rows(), grid.block_cols());
    check_levels(nesting)?;
    let sums = |p: &[Vec<usize>]| p.iter().map(|x| x.iter().sum()).collect::<Vec<usize>>();
    if nesting.rows.len() != nr || sums(&nesting.rows) != grid.row_sizes {
        return Err(BlockError::PartitionMismatch { op: OP, left: grid.row_sizes.clone(), right: sums(&nesting.rows) });
    }
    if nesting.cols.len() != nc || sums(&nesting.cols) != grid.col_sizes {
        return Err(BlockError::PartitionMismatch { op: OP, left: grid.col_sizes.clone(), right: sums(&nesting.cols) });
    }
    let levels = nesting.levels();
    // positions[(k, m)] holds the R x C entries of level block (k, m).
    let mut positions: BTreeMap<(usize, usize), Vec<Option<Block>>> = BTreeMap::new();
    for k in 0..levels {
        positions.insert((k, k), vec![None; nr * nc]);
    }
    for i in 0..nr {
        for j in 0..nc {
            let b = &grid.blocks[i * nc + j];
            let (rp, cp) = (&nesting.rows[i], &nesting.cols[j]);
            let mut put = |k: usize, m: usize, blk: Block| {
                positions.entry((k, m)).or_insert_with(|| vec![None; nr * nc])[i * nc + j] = Some(blk);
            };
            match b {
                Block::Zero { .. } => {}
                Block::Dense(_) | Block::LowRank(_) => return Err(dense_leaf()),
                Block::Identity { scale, .. } => {
                    if rp != cp {
                        return Err(BlockError::PartitionMismatch { op: OP, left: rp.clone(), right: cp.clone() });
                    }
                    for (k, &n) in rp.iter().enumerate() {
                        put(k, k, Block::scaled_identity(n, *scale));
                    }
                }
                _ => {
                    let map = BlockMap::of(b).ok_or_else(dense_leaf)?;
                    if map.rows != *rp {
                        return Err(BlockError::PartitionMismatch { op: OP, left: rp.clone(), right: map.rows });
                    }
                    if map.cols != *cp {
                        return Err(BlockError::PartitionMismatch { op: OP, left: cp.clone(), right: map.cols });
                    }
                    for ((k, m), blk) in map.entries {
                        put(k, m, blk);
                    }
                }
            }
        }
    }
    let level_rows: Vec<usize> = (0..levels).map(|k| nesting.rows.iter().map(|p| p[k]).sum()).collect();
    let level_cols: Vec<usize> = (0..levels).map(|m| nesting.cols.iter().map(|p| p[m]).sum()).collect();
    let mut out = BlockMap::new(level_rows, level_cols);
    for ((k, m), entries) in positions {
        let row_sizes: Vec<usize> = nesting.rows.iter().map(|p| p[k]).collect();
        let col_sizes: Vec<usize> = nesting.cols.iter().map(|p| p[m]).collect();
        let blocks = entries
            .into_iter()
            .enumerate()
            .map(|(idx, e)| e.unwrap_or_else(|| Block::zeros(row_sizes[idx / nc], col_sizes[idx % nc])))
            .collect();
        out.entries.insert((k, m), Block::Grid(Grid::with_sizes(row_sizes, col_sizes, blocks)?));
    }
    out.into_block(Band::default())
}

/// The blockwise transpose of a symmetric grid, as a symmetric
/// block-tridiagonal matrix (no super-diagonal stored).
///
/// Symmetry is checked, not trusted: every diagonal block of the result must
/// equal its transpose and every super-diagonal block the transpose of the
/// sub-diagonal block facing it, entrywise within `tol * max|entry|` of the
/// pair (`tol = 0` demands exact equality). The check densifies one level
/// block at a time, which costs the memory of the factorization that
/// follows, not of the whole matrix.
///
/// # Errors
/// Those of [`interleave`]; [`BlockError::NotSymmetric`] naming the first
/// level block that fails; [`BlockError::Unsupported`] when a source block
/// reaches two levels away from the diagonal.
pub fn interleave_symmetric(grid: &Grid, tol: f64) -> Result<Tridiag> {
    let op = "interleave_symmetric";
    let kp = interleave(grid)?;
    let mut map = BlockMap::of(&kp).ok_or(BlockError::Unsupported {
        op,
        structure: "leaf",
        hint: "interleave always returns a structure",
    })?;
    if map.entries.keys().any(|&(k, m)| k.abs_diff(m) > 1) {
        return Err(BlockError::Unsupported {
            op,
            structure: "grid with entries off the tridiagonal band",
            hint: "the source blocks must be (bi/tri)diagonal",
        });
    }
    let levels = map.rows.len();
    let mut diag = Vec::with_capacity(levels);
    let mut sub = Vec::with_capacity(levels.saturating_sub(1));
    for k in 0..levels {
        let zero = |r: usize, c: usize| Block::zeros(r, c);
        let d = map.entries.remove(&(k, k)).unwrap_or_else(|| zero(map.rows[k], map.cols[k]));
        let dd = d.to_dense();
        if !close(dd.as_ref(), dd.transpose(), tol) {
            return Err(BlockError::NotSymmetric { op, row: k, col: k });
        }
        diag.push(d);
        if k + 1 < levels {
            let s = map.entries.remove(&(k + 1, k)).unwrap_or_else(|| zero(map.rows[k + 1], map.cols[k]));
            let u = map.entries.remove(&(k, k + 1)).unwrap_or_else(|| zero(map.rows[k], map.cols[k + 1]));
            if !close(u.to_dense().as_ref(), s.to_dense().transpose(), tol) {
                return Err(BlockError::NotSymmetric { op, row: k, col: k + 1 });
            }
            sub.push(s);
        }
    }
    Tridiag::symmetric(diag, sub)
}

fn close(a: faer::MatRef<'_, f64>, b: faer::MatRef<'_, f64>, tol: f64) -> bool {
    if a.nrows() != b.nrows() || a.ncols() != b.ncols() {
        return false;
    }
    let (mut scale, mut diff) = (0.0f64, 0.0f64);
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            scale = scale.max(a[(i, j)].abs()).max(b[(i, j)].abs());
            diff = diff.max((a[(i, j)] - b[(i, j)]).abs());
        }
    }
    diff <= tol * scale
}
