//! The one error type of the `hinv` facade.

use thiserror::Error;

/// What went wrong in a curvature computation.
///
/// Lower layers' errors are wrapped, so a caller can still match on the
/// network, block-matrix or factorization error that caused it.
#[derive(Debug, Error)]
pub enum HinvError {
    /// A vector (or matrix of columns) does not have one entry per parameter.
    #[error("{what} has {found} rows, but the network has {expected} parameters")]
    WrongLength {
        /// Which argument.
        what: &'static str,
        /// The number of parameters.
        expected: usize,
        /// What was given.
        found: usize,
    },
    /// A NaN or infinity in an argument.
    #[error("{what} contains a non-finite value ({value}) at index {index}")]
    NonFinite {
        /// Which argument.
        what: &'static str,
        /// Flat index of the first offending entry.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A numeric argument (`eps`, a shift, a threshold, a tolerance) is
    /// NaN, infinite or out of its range.
    #[error("{what} must be {expected}, got {value}")]
    InvalidNumber {
        /// Which argument.
        what: &'static str,
        /// The value given.
        value: f64,
        /// What it must be.
        expected: &'static str,
    },
    /// No elimination reached the requested backward error, even after
    /// refinement and with pivoting across blocks: `H + eps I` is singular
    /// or too ill-conditioned at this `eps` for an answer within the
    /// tolerance.
    #[error(
        "H + eps I is numerically singular at eps = {eps:e}: the best backward error is {backward_error:.2e} after \
         {iterations} refinement step(s), above the tolerance {tolerance:.2e}; use a larger eps, shift by a value that \
         is not an eigenvalue of H, or accept a looser tolerance explicitly"
    )]
    IllConditioned {
        /// The regularisation that was asked for.
        eps: f64,
        /// Backward error of the best solution found.
        backward_error: f64,
        /// The tolerance it had to meet.
        tolerance: f64,
        /// Refinement steps taken.
        iterations: usize,
    },
    /// The network overflowed at these parameters: a pass or a derivative
    /// block holds a NaN or an infinity.
    #[error(
        "{what} is not finite ({value}): the network overflows at these parameters and inputs; \
         scale the weights or inputs down"
    )]
    Overflow {
        /// Where the non-finite value appeared.
        what: String,
        /// The offending value.
        value: f64,
    },
    /// `H + eps I` is singular at this `eps`: the elimination pivoted
    /// across blocks found no non-zero pivot for a column of the lifted
    /// system (Gaussian elimination with partial pivoting meets an exact
    /// zero only on a singular matrix, up to rounding).
    #[error(
        "H + eps I is singular at eps = {eps:e}: pivot {pivot} of block {block} (layer {layer}) has magnitude {magnitude:.3e}; \
         use a larger eps, or shift by a value that is not an eigenvalue of H"
    )]
    Singular {
        /// The regularisation that was asked for.
        eps: f64,
        /// Block of the lifted system (0-based).
        block: usize,
        /// Network layer of that block (1-based, as in the algorithm).
        layer: usize,
        /// Column inside the block (the lifted unknowns `(x_l, y_l, z_l)`)
        /// that found no pivot.
        pivot: usize,
        /// Magnitude of the pivot (0).
        magnitude: f64,
    },
    /// Derivative blocks handed to [`crate::Curvature::from_derivatives`]
    /// do not have the shapes their declared sizes give them.
    #[error(
        "inconsistent derivatives: {block} of layer {layer} is {}x{}, but the declared sizes make it {}x{}",
        found.0, found.1, expected.0, expected.1
    )]
    InconsistentBlocks {
        /// Layer (1-based; 0 for the sizes and the gradient).
        layer: usize,
        /// Which block (`Dx`, `Dz`, `A`, `G`, `E`), or `gradient`, or the sizes.
        block: &'static str,
        /// Shape the sizes give it.
        expected: (usize, usize),
        /// Its shape.
        found: (usize, usize),
    },
    /// A computation would need more memory than allowed; refused before
    /// allocating anything.
    #[error("{what} needs {needed}, above the limit of {limit}; {hint}")]
    TooLarge {
        /// What would have been computed.
        what: &'static str,
        /// Memory it would need.
        needed: Bytes,
        /// The limit in force.
        limit: Bytes,
        /// What to do instead.
        hint: &'static str,
    },
    /// A spectral computation (eigenvalue bracket, histogram range,
    /// shift-invert, trust-region step) could not certify its answer:
    /// counts stayed uncertain, or an iteration did not converge.
    #[error("{what} could not be certified: {why}; {hint}")]
    Uncertified {
        /// What was being computed.
        what: &'static str,
        /// Why it failed, with the numbers.
        why: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// The Laplace approximation needs a positive definite posterior
    /// precision; this one has eigenvalues at or below zero (an indefinite
    /// Hessian), or the factorization could not certify their signs.
    #[error(
        "{what} is not certifiably positive definite at prior precision {delta:e}: inertia {} positive, {} negative, \
         {} zero ({} uncertain); use the Gauss-Newton curvature or a larger prior precision",
        inertia.positive, inertia.negative, inertia.zero, inertia.uncertain
    )]
    NotPositiveDefinite {
        /// Which matrix.
        what: &'static str,
        /// The prior precision.
        delta: f64,
        /// Its inertia.
        inertia: tridiag::Inertia,
    },
    /// A dense reference solve failed.
    #[error("the dense reference route failed: {0}")]
    Dense(String),
    /// An error from the network layer (shapes, files, parameters).
    #[error(transparent)]
    Net(#[from] netgraph::NetError),
    /// An error from block-matrix assembly.
    #[error(transparent)]
    Block(#[from] blockmat::BlockError),
    /// An error from the block-tridiagonal factorization.
    #[error(transparent)]
    Factor(#[from] tridiag::TridiagError),
    /// Training data that cannot be read or split (`hinv::train`).
    #[error("training data: {reason}")]
    Data {
        /// What is wrong, naming the file.
        reason: String,
    },
    /// A training run cannot go on (`hinv::train`): an optimizer option
    /// out of range, or a loss that stopped being finite.
    #[error("training: {reason}")]
    Training {
        /// What happened, with the step and the values involved.
        reason: String,
    },
}

/// A number of bytes, displayed in binary units (`1.50 GiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&netgraph::memory::human_bytes(u128::from(self.0)))
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = HinvError> = std::result::Result<T, E>;

/// Checks that `v` has `expected` rows and only finite entries.
pub(crate) fn check_vector(what: &'static str, v: faer::MatRef<'_, f64>, expected: usize) -> Result<()> {
    if v.nrows() != expected {
        return Err(HinvError::WrongLength { what, expected, found: v.nrows() });
    }
    for j in 0..v.ncols() {
        for i in 0..v.nrows() {
            let x = v[(i, j)];
            if !x.is_finite() {
                return Err(HinvError::NonFinite { what, index: j * v.nrows() + i, value: x });
            }
        }
    }
    Ok(())
}
