//! The [`Block`] type: a matrix that is a leaf (dense, zero, scaled identity)
//! or a structure whose entries are themselves blocks.

use faer::Mat;

use crate::error::{BlockError, Result};
use crate::low_rank::LowRank;

/// Which side of the diagonal the off-diagonal blocks of a [`Bidiag`] sit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Off-diagonal block `k` sits at block position `(k + 1, k)`.
    Lower,
    /// Off-diagonal block `k` sits at block position `(k, k + 1)`.
    Upper,
}

impl Side {
    /// The other side (what transposition turns this side into).
    pub fn flip(self) -> Side {
        match self {
            Side::Lower => Side::Upper,
            Side::Upper => Side::Lower,
        }
    }
}

/// A block-partitioned matrix, nested to any depth.
///
/// Leaves are dense matrices, zeros and scaled identities (the last two
/// without storage). Structures hold blocks that are themselves `Block`s, so
/// a block-tridiagonal matrix of 3x3 grids of block-diagonal matrices is an
/// ordinary value. Algorithms match on the variant once per block and run
/// faer kernels at the leaves.
///
/// ```
/// use blockmat::Block;
/// let d = Block::block_diag(vec![Block::identity(2), Block::zeros(1, 3)]);
/// assert_eq!(d.shape(), (3, 5));
/// ```
#[derive(Debug, Clone)]
pub enum Block {
    /// An all-zero `rows x cols` matrix, without storage.
    Zero {
        /// Number of rows.
        rows: usize,
        /// Number of columns.
        cols: usize,
    },
    /// `scale * I` of size `n x n`, without storage.
    Identity {
        /// Size.
        n: usize,
        /// The value on the diagonal.
        scale: f64,
    },
    /// A dense matrix.
    Dense(Mat<f64>),
    /// A product `left * core * right^T` stored by its factors.
    LowRank(LowRank),
    /// A block-diagonal matrix (diagonal blocks may be rectangular).
    Diag(BlockDiag),
    /// A lower or upper block-bidiagonal matrix.
    Bidiag(Bidiag),
    /// A block-tridiagonal matrix.
    Tridiag(Tridiag),
    /// A general grid of blocks.
    Grid(Grid),
}

/// A block-diagonal matrix: block `k` sits at block position `(k, k)`.
#[derive(Debug, Clone)]
pub struct BlockDiag {
    pub(crate) blocks: Vec<Block>,
}

/// A block-bidiagonal matrix with `L` diagonal blocks and `L - 1` off-diagonal
/// blocks on one [`Side`].
#[derive(Debug, Clone)]
pub struct Bidiag {
    pub(crate) side: Side,
    pub(crate) diag: Vec<Block>,
    pub(crate) off: Vec<Block>,
}

/// A block-tridiagonal matrix: diagonal blocks `D_k`, sub-diagonal blocks
/// `S_k` at `(k + 1, k)` and super-diagonal blocks at `(k, k + 1)`.
///
/// A *symmetric* tridiagonal matrix stores no super-diagonal: block
/// `(k, k + 1)` is the transpose of block `(k + 1, k)`.
#[derive(Debug, Clone)]
pub struct Tridiag {
    pub(crate) diag: Vec<Block>,
    pub(crate) sub: Vec<Block>,
    /// `None` for a symmetric matrix.
    pub(crate) sup: Option<Vec<Block>>,
}

/// A general `R x C` grid of blocks with consistent row and column sizes.
#[derive(Debug, Clone)]
pub struct Grid {
    pub(crate) row_sizes: Vec<usize>,
    pub(crate) col_sizes: Vec<usize>,
    /// Row-major, `row_sizes.len() * col_sizes.len()` blocks.
    pub(crate) blocks: Vec<Block>,
}

impl Block {
    /// An all-zero `rows x cols` block.
    pub fn zeros(rows: usize, cols: usize) -> Block {
        Block::Zero { rows, cols }
    }

    /// The `n x n` identity.
    pub fn identity(n: usize) -> Block {
        Block::Identity { n, scale: 1.0 }
    }

    /// `scale * I` of size `n x n`.
    pub fn scaled_identity(n: usize, scale: f64) -> Block {
        Block::Identity { n, scale }
    }

    /// A dense leaf.
    pub fn dense(m: Mat<f64>) -> Block {
        Block::Dense(m)
    }

    /// A block-diagonal matrix. Any blocks are allowed, so this cannot fail.
    pub fn block_diag(blocks: Vec<Block>) -> Block {
        Block::Diag(BlockDiag { blocks })
    }

    /// A block-bidiagonal matrix; see [`Bidiag::new`].
    pub fn bidiag(side: Side, diag: Vec<Block>, off: Vec<Block>) -> Result<Block> {
        Bidiag::new(side, diag, off).map(Block::Bidiag)
    }

    /// A unit block-bidiagonal matrix: identities on the diagonal (sizes
    /// `sizes`), `off` beside it. This is the form of the matrix `M` of the
    /// algorithm (with `off[k] = -Dz_{k+2}`).
    pub fn unit_bidiag(side: Side, sizes: &[usize], off: Vec<Block>) -> Result<Block> {
        let diag = sizes.iter().map(|&n| Block::identity(n)).collect();
        Block::bidiag(side, diag, off)
    }

    /// A general block-tridiagonal matrix; see [`Tridiag::new`].
    pub fn tridiag(diag: Vec<Block>, sub: Vec<Block>, sup: Vec<Block>) -> Result<Block> {
        Tridiag::new(diag, sub, sup).map(Block::Tridiag)
    }

    /// A symmetric block-tridiagonal matrix; see [`Tridiag::symmetric`].
    pub fn sym_tridiag(diag: Vec<Block>, sub: Vec<Block>) -> Result<Block> {
        Tridiag::symmetric(diag, sub).map(Block::Tridiag)
    }

    /// A grid of blocks given row by row; see [`Grid::new`].
    pub fn grid(rows: Vec<Vec<Block>>) -> Result<Block> {
        Grid::new(rows).map(Block::Grid)
    }

    /// Number of rows.
    pub fn nrows(&self) -> usize {
        match self {
            Block::Zero { rows, .. } => *rows,
            Block::Identity { n, .. } => *n,
            Block::Dense(m) => m.nrows(),
            Block::LowRank(l) => l.left.nrows(),
            Block::Diag(d) => d.blocks.iter().map(Block::nrows).sum(),
            Block::Bidiag(b) => b.diag.iter().map(Block::nrows).sum(),
            Block::Tridiag(t) => t.diag.iter().map(Block::nrows).sum(),
            Block::Grid(g) => g.row_sizes.iter().sum(),
        }
    }

    /// Number of columns.
    pub fn ncols(&self) -> usize {
        match self {
            Block::Zero { cols, .. } => *cols,
            Block::Identity { n, .. } => *n,
            Block::Dense(m) => m.ncols(),
            Block::LowRank(l) => l.right.nrows(),
            Block::Diag(d) => d.blocks.iter().map(Block::ncols).sum(),
            Block::Bidiag(b) => b.diag.iter().map(Block::ncols).sum(),
            Block::Tridiag(t) => t.diag.iter().map(Block::ncols).sum(),
            Block::Grid(g) => g.col_sizes.iter().sum(),
        }
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.nrows(), self.ncols())
    }

    /// Sizes of the block rows of a structure, `None` for a leaf.
    pub fn row_partition(&self) -> Option<Vec<usize>> {
        match self {
            Block::Zero { .. } | Block::Identity { .. } | Block::Dense(_) | Block::LowRank(_) => None,
            Block::Diag(d) => Some(d.blocks.iter().map(Block::nrows).collect()),
            Block::Bidiag(b) => Some(b.diag.iter().map(Block::nrows).collect()),
            Block::Tridiag(t) => Some(t.diag.iter().map(Block::nrows).collect()),
            Block::Grid(g) => Some(g.row_sizes.clone()),
        }
    }

    /// Sizes of the block columns of a structure, `None` for a leaf.
    pub fn col_partition(&self) -> Option<Vec<usize>> {
        match self {
            Block::Zero { .. } | Block::Identity { .. } | Block::Dense(_) | Block::LowRank(_) => None,
            Block::Diag(d) => Some(d.blocks.iter().map(Block::ncols).collect()),
            Block::Bidiag(b) => Some(b.diag.iter().map(Block::ncols).collect()),
            Block::Tridiag(t) => Some(t.diag.iter().map(Block::ncols).collect()),
            Block::Grid(g) => Some(g.col_sizes.clone()),
        }
    }

    /// A short name of the variant, used in messages and printers.
    pub fn kind(&self) -> &'static str {
        match self {
            Block::Zero { .. } => "zero",
            Block::Identity { .. } => "identity",
            Block::Dense(_) => "dense",
            Block::LowRank(_) => "low-rank",
            Block::Diag(_) => "block-diagonal",
            Block::Bidiag(b) => match b.side {
                Side::Lower => "lower-bidiagonal",
                Side::Upper => "upper-bidiagonal",
            },
            Block::Tridiag(_) => "block-tridiagonal",
            Block::Grid(_) => "grid",
        }
    }

    /// The grid, when this is a [`Block::Grid`].
    pub fn as_grid(&self) -> Option<&Grid> {
        match self {
            Block::Grid(g) => Some(g),
            _ => None,
        }
    }

    /// The block-tridiagonal matrix, when this is a [`Block::Tridiag`].
    pub fn as_tridiag(&self) -> Option<&Tridiag> {
        match self {
            Block::Tridiag(t) => Some(t),
            _ => None,
        }
    }

    /// The block-diagonal matrix, when this is a [`Block::Diag`].
    pub fn as_diag(&self) -> Option<&BlockDiag> {
        match self {
            Block::Diag(d) => Some(d),
            _ => None,
        }
    }

    /// The block-bidiagonal matrix, when this is a [`Block::Bidiag`].
    pub fn as_bidiag(&self) -> Option<&Bidiag> {
        match self {
            Block::Bidiag(b) => Some(b),
            _ => None,
        }
    }

    /// The dense matrix, when this is a [`Block::Dense`] leaf.
    pub fn as_dense(&self) -> Option<&faer::Mat<f64>> {
        match self {
            Block::Dense(m) => Some(m),
            _ => None,
        }
    }

    /// True for a [`Block::Zero`] leaf (structures of zeros are not detected).
    pub fn is_zero(&self) -> bool {
        matches!(self, Block::Zero { .. })
    }
}

pub(crate) fn check_square(op: &'static str, index: usize, b: &Block) -> Result<usize> {
    let (r, c) = b.shape();
    if r != c {
        return Err(BlockError::NotSquare { op, index, shape: (r, c) });
    }
    Ok(r)
}

impl BlockDiag {
    /// The diagonal blocks.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }
    /// Mutable access to the diagonal blocks (shapes may change freely: a
    /// block-diagonal matrix has no constraint between its blocks).
    pub fn blocks_mut(&mut self) -> &mut [Block] {
        &mut self.blocks
    }
    /// Number of diagonal blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }
    /// True when there are no blocks (a `0 x 0` matrix).
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

impl Bidiag {
    /// Builds a block-bidiagonal matrix from `L` diagonal blocks and `L - 1`
    /// off-diagonal blocks (none when `L = 0`).
    ///
    /// For [`Side::Lower`], `off[k]` sits at `(k + 1, k)` and must be
    /// `rows(diag[k + 1]) x cols(diag[k])`; for [`Side::Upper`] it sits at
    /// `(k, k + 1)` and must be `rows(diag[k]) x cols(diag[k + 1])`.
    pub fn new(side: Side, diag: Vec<Block>, off: Vec<Block>) -> Result<Bidiag> {
        check_off("bidiagonal", &diag, &off, side)?;
        Ok(Bidiag { side, diag, off })
    }
    /// Which side the off-diagonal blocks are on.
    pub fn side(&self) -> Side {
        self.side
    }
    /// The diagonal blocks.
    pub fn diag(&self) -> &[Block] {
        &self.diag
    }
    /// The off-diagonal blocks.
    pub fn off(&self) -> &[Block] {
        &self.off
    }
    /// Number of diagonal blocks.
    pub fn len(&self) -> usize {
        self.diag.len()
    }
    /// True when there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.diag.is_empty()
    }
    /// True when every diagonal block is the identity (`scale == 1`).
    pub fn is_unit(&self) -> bool {
        self.diag.iter().all(|d| matches!(d, Block::Identity { scale, .. } if *scale == 1.0))
    }
}

impl Tridiag {
    /// Builds a general block-tridiagonal matrix: `sub[k]` at `(k + 1, k)`,
    /// `sup[k]` at `(k, k + 1)`.
    pub fn new(diag: Vec<Block>, sub: Vec<Block>, sup: Vec<Block>) -> Result<Tridiag> {
        check_off("tridiagonal", &diag, &sub, Side::Lower)?;
        check_off("tridiagonal", &diag, &sup, Side::Upper)?;
        Ok(Tridiag { diag, sub, sup: Some(sup) })
    }

    /// Builds a symmetric block-tridiagonal matrix from its square diagonal
    /// blocks and its sub-diagonal blocks; block `(k, k + 1)` is `sub[k]^T`.
    /// Symmetry of the diagonal blocks themselves is the caller's promise.
    pub fn symmetric(diag: Vec<Block>, sub: Vec<Block>) -> Result<Tridiag> {
        for (k, d) in diag.iter().enumerate() {
            check_square("symmetric tridiagonal", k, d)?;
        }
        check_off("tridiagonal", &diag, &sub, Side::Lower)?;
        Ok(Tridiag { diag, sub, sup: None })
    }

    /// Number of diagonal blocks.
    pub fn len(&self) -> usize {
        self.diag.len()
    }
    /// True when there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.diag.is_empty()
    }
    /// True when the super-diagonal is implied by symmetry.
    pub fn is_symmetric(&self) -> bool {
        self.sup.is_none()
    }
    /// The diagonal blocks.
    pub fn diag(&self) -> &[Block] {
        &self.diag
    }
    /// The sub-diagonal blocks (`sub[k]` at `(k + 1, k)`).
    pub fn sub(&self) -> &[Block] {
        &self.sub
    }
    /// The stored super-diagonal blocks, `None` for a symmetric matrix.
    pub fn sup(&self) -> Option<&[Block]> {
        self.sup.as_deref()
    }
}

/// Checks the count and shapes of the off-diagonal blocks `off` on `side`
/// of the diagonal blocks `diag` (a bidiagonal's, or one side of a
/// tridiagonal's).
fn check_off(structure: &'static str, diag: &[Block], off: &[Block], side: Side) -> Result<()> {
    let expected = diag.len().saturating_sub(1);
    if off.len() != expected {
        return Err(BlockError::BlockCount {
            structure,
            what: match (structure, side) {
                ("bidiagonal", _) => "off-diagonal",
                (_, Side::Lower) => "sub-diagonal",
                (_, Side::Upper) => "super-diagonal",
            },
            expected,
            found: off.len(),
        });
    }
    for (k, o) in off.iter().enumerate() {
        let (row, col, exp) = match side {
            Side::Lower => (k + 1, k, (diag[k + 1].nrows(), diag[k].ncols())),
            Side::Upper => (k, k + 1, (diag[k].nrows(), diag[k + 1].ncols())),
        };
        if o.shape() != exp {
            return Err(BlockError::BlockShape { structure, row, col, expected: exp, found: o.shape() });
        }
    }
    Ok(())
}

impl Grid {
    /// Builds a grid from its rows of blocks. All rows must have the same
    /// number of blocks, blocks in one block row the same number of rows and
    /// blocks in one block column the same number of columns.
    pub fn new(rows: Vec<Vec<Block>>) -> Result<Grid> {
        let nc = rows.first().map_or(0, Vec::len);
        for r in &rows {
            if r.len() != nc {
                return Err(BlockError::BlockCount {
                    structure: "grid",
                    what: "row-length",
                    expected: nc,
                    found: r.len(),
                });
            }
        }
        let row_sizes: Vec<usize> = rows.iter().map(|r| r.first().map_or(0, Block::nrows)).collect();
        let col_sizes: Vec<usize> = match rows.first() {
            Some(r) => r.iter().map(Block::ncols).collect(),
            None => Vec::new(),
        };
        Grid::with_sizes(row_sizes, col_sizes, rows.into_iter().flatten().collect())
    }

    /// Builds a grid with explicit block sizes (needed when a grid has no
    /// columns, or to build a grid of zero rows), `blocks` row-major.
    pub fn with_sizes(row_sizes: Vec<usize>, col_sizes: Vec<usize>, blocks: Vec<Block>) -> Result<Grid> {
        let (nr, nc) = (row_sizes.len(), col_sizes.len());
        if blocks.len() != nr * nc {
            return Err(BlockError::BlockCount {
                structure: "grid",
                what: "grid",
                expected: nr * nc,
                found: blocks.len(),
            });
        }
        for i in 0..nr {
            for j in 0..nc {
                let b = &blocks[i * nc + j];
                let exp = (row_sizes[i], col_sizes[j]);
                if b.shape() != exp {
                    return Err(BlockError::BlockShape {
                        structure: "grid",
                        row: i,
                        col: j,
                        expected: exp,
                        found: b.shape(),
                    });
                }
            }
        }
        Ok(Grid { row_sizes, col_sizes, blocks })
    }

    /// Number of block rows.
    pub fn block_rows(&self) -> usize {
        self.row_sizes.len()
    }
    /// Number of block columns.
    pub fn block_cols(&self) -> usize {
        self.col_sizes.len()
    }
    /// Sizes of the block rows.
    pub fn row_sizes(&self) -> &[usize] {
        &self.row_sizes
    }
    /// Sizes of the block columns.
    pub fn col_sizes(&self) -> &[usize] {
        &self.col_sizes
    }
    /// The block at block position `(i, j)`, `None` when out of range.
    pub fn get(&self, i: usize, j: usize) -> Option<&Block> {
        if i < self.block_rows() && j < self.block_cols() {
            self.blocks.get(i * self.block_cols() + j)
        } else {
            None
        }
    }
    /// All blocks, row-major.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }
}

/// Offsets `0, s0, s0 + s1, ...` of a partition (length `sizes.len() + 1`).
pub fn offsets(sizes: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(sizes.len() + 1);
    let mut acc = 0;
    out.push(0);
    for &s in sizes {
        acc += s;
        out.push(acc);
    }
    out
}
