//! The one error type of `tridiag`.

use thiserror::Error;

/// What went wrong when factoring or solving a block-tridiagonal system.
///
/// Every variant names the block (and pivot, shape or side) at fault, so that
/// a caller can tell which part of its operator to fix.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TridiagError {
    /// A pivot of the Bunch–Kaufman factorization of the Schur complement
    /// `S_block` is zero or below the relative threshold.
    #[error(
        "block {block}: pivot {pivot} of the Schur complement is numerically zero \
         (|pivot| = {magnitude:.3e} <= threshold {threshold:.3e}); the matrix is singular \
         or the block elimination broke down (regularise, or factor with OnSingular::Continue \
         to count the zero pivots)"
    )]
    Singular {
        /// Index of the diagonal block whose Schur complement is singular.
        block: usize,
        /// Index of the pivot in that block's pivoted order.
        pivot: usize,
        /// Magnitude of the smallest eigenvalue of the (1x1 or 2x2) pivot.
        magnitude: f64,
        /// The absolute threshold it fell below.
        threshold: f64,
    },
    /// A solve was asked of a factorization that has zero pivots (factored
    /// with [`crate::OnSingular::Continue`]).
    #[error("solve: the factorization has {zero_pivots} zero pivot(s), first in block {first_block}; it only provides inertia and log-determinant")]
    SolveSingular {
        /// Number of zero pivots over all blocks.
        zero_pivots: usize,
        /// The first block holding one.
        first_block: usize,
    },
    /// Operand shapes disagree.
    #[error("{op}: shape mismatch, expected {}x{} but found {}x{}", expected.0, expected.1, found.0, found.1)]
    ShapeMismatch {
        /// The operation that was attempted.
        op: &'static str,
        /// Shape `(rows, cols)` that was required.
        expected: (usize, usize),
        /// Shape `(rows, cols)` that was given.
        found: (usize, usize),
    },
    /// The input is not symmetric: a diagonal block differs from its
    /// transpose, or a stored super-diagonal block from the transpose of the
    /// sub-diagonal block.
    #[error("block ({row}, {col}) breaks symmetry: max |A - A^T| = {deviation:.3e} exceeds {tolerance:.3e}")]
    NotSymmetric {
        /// Block row.
        row: usize,
        /// Block column.
        col: usize,
        /// Largest entrywise deviation from symmetry.
        deviation: f64,
        /// The tolerance it exceeded.
        tolerance: f64,
    },
    /// A NaN or infinity in the input.
    #[error("{what} block {block} contains NaN or infinite entries")]
    NonFinite {
        /// Which operand (`"diagonal"`, `"sub-diagonal"`, `"right-hand side"`, ...).
        what: &'static str,
        /// Index of the block (block row for a right-hand side).
        block: usize,
    },
}
