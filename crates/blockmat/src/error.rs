//! The one error type of `blockmat`.

use thiserror::Error;

/// What went wrong when building or combining block matrices.
///
/// Every variant carries the shapes or partitions that disagreed, so that a
/// caller can tell which operand to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BlockError {
    /// Two operands whose shapes must agree do not.
    #[error("{op}: shape mismatch, left operand is {}x{} but right operand is {}x{}", left.0, left.1, right.0, right.1)]
    ShapeMismatch {
        /// The operation that was attempted.
        op: &'static str,
        /// Shape `(rows, cols)` of the left operand.
        left: (usize, usize),
        /// Shape `(rows, cols)` of the right operand.
        right: (usize, usize),
    },
    /// Two operands whose block partitions must agree do not.
    #[error("{op}: partition mismatch, {left:?} against {right:?}")]
    PartitionMismatch {
        /// The operation that was attempted.
        op: &'static str,
        /// Block sizes on the left.
        left: Vec<usize>,
        /// Block sizes on the right.
        right: Vec<usize>,
    },
    /// A block placed in a structure does not have the shape its position requires.
    #[error("{structure}: block ({row}, {col}) is {}x{} but its position requires {}x{}", found.0, found.1, expected.0, expected.1)]
    BlockShape {
        /// The structure being built (`"grid"`, `"bidiagonal"`, ...).
        structure: &'static str,
        /// Block row of the offending block.
        row: usize,
        /// Block column of the offending block.
        col: usize,
        /// Shape the position requires.
        expected: (usize, usize),
        /// Shape of the block that was given.
        found: (usize, usize),
    },
    /// A structure was given the wrong number of blocks.
    #[error("{structure}: expected {expected} {what} blocks, found {found}")]
    BlockCount {
        /// The structure being built.
        structure: &'static str,
        /// Which list of blocks (`"off-diagonal"`, `"grid"`, ...).
        what: &'static str,
        /// Number of blocks required.
        expected: usize,
        /// Number of blocks given.
        found: usize,
    },
    /// The operation needs a square matrix (or square diagonal blocks).
    #[error("{op}: block {index} is {}x{}, but it must be square", shape.0, shape.1)]
    NotSquare {
        /// The operation that was attempted.
        op: &'static str,
        /// Index of the offending diagonal block (0 for a leaf).
        index: usize,
        /// Its shape.
        shape: (usize, usize),
    },
    /// A solve met a singular (or numerically singular) block.
    #[error("{op}: diagonal block {index} ({n}x{n}) is singular; regularise it or use a pivoted symmetric solver")]
    Singular {
        /// The operation that was attempted.
        op: &'static str,
        /// Index of the diagonal block (0 for a leaf).
        index: usize,
        /// Size of the singular block.
        n: usize,
    },
    /// The operation is not defined for this structure.
    #[error("{op}: not supported for a {structure} matrix; {hint}")]
    Unsupported {
        /// The operation that was attempted.
        op: &'static str,
        /// The structure that does not support it.
        structure: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
    /// The blockwise transpose could not tell how a block row or column of
    /// a grid splits into its `L` pieces (it holds only zero leaves).
    #[error("{op}: the L-partition of block {what} {index} cannot be inferred (only zero leaves there); pass a `Nesting` explicitly")]
    Underdetermined {
        /// The operation that was attempted.
        op: &'static str,
        /// `"row"` or `"column"`.
        what: &'static str,
        /// Index of the block row or column in the grid.
        index: usize,
    },
    /// A matrix promised to be symmetric is not, within the tolerance.
    #[error("{op}: block ({row}, {col}) is not the transpose of block ({col}, {row}) within the tolerance")]
    NotSymmetric {
        /// The operation that was attempted.
        op: &'static str,
        /// Block row of the offending block.
        row: usize,
        /// Block column of the offending block.
        col: usize,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = BlockError> = std::result::Result<T, E>;
