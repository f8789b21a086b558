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
    /// A non-finite value appeared: the network overflowed at these
    /// parameters (loss, gradient, derivative blocks), or a factorization
    /// or an iteration overflowed on a system too close to singular.
    #[error("{what} is not finite ({value}): {}", what.hint())]
    Overflow {
        /// Where the non-finite value appeared.
        what: OverflowSite,
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
         {} zero ({} uncertain); use the Gauss-Newton curvature or a larger prior precision{}",
        inertia.positive, inertia.negative, inertia.zero, inertia.uncertain, uncertain_counts_hint(inertia, *elimination)
    )]
    NotPositiveDefinite {
        /// Which matrix.
        what: &'static str,
        /// The prior precision.
        delta: f64,
        /// Its inertia.
        inertia: tridiag::Inertia,
        /// The elimination of the lifted system that factored it (`None`:
        /// the Woodbury route).
        elimination: Option<crate::Elimination>,
    },
    /// A dense matrix computation (a reference solve, an eigendecomposition,
    /// a Cholesky factorization of a small matrix) failed.
    #[error("{failure} of {matrix} ({n}x{n}): {}", failure.explain(*matrix))]
    Dense {
        /// Which matrix.
        matrix: DenseMatrix,
        /// Its order.
        n: usize,
        /// How it failed.
        failure: DenseFailure,
    },
    /// A route that needs a particular curvature was asked of another one.
    #[error("{what} needs the {needs} curvature, but this one is the {found}; {hint}")]
    WrongCurvature {
        /// What was asked for.
        what: &'static str,
        /// The curvature it works with.
        needs: crate::CurvatureKind,
        /// The curvature it was asked of.
        found: crate::CurvatureKind,
        /// What to do instead.
        hint: &'static str,
    },
    /// An elimination of the lifted system was asked for together with the
    /// Woodbury route, which factors no lifted system
    /// ([`crate::FactorOptions::check_route`]).
    #[error(
        "the {elimination} elimination was asked for with the Woodbury route, which factors no lifted system: \
         leave the elimination at auto, or take the lifted or the automatic route"
    )]
    EliminationWithoutLiftedSystem {
        /// The elimination asked for.
        elimination: crate::Elimination,
    },
    /// An option that has no default for this input was not given.
    #[error("{option} must be given explicitly: {why}")]
    MissingOption {
        /// The option (a field of an options struct).
        option: &'static str,
        /// Why it cannot be inferred.
        why: &'static str,
    },
    /// [`crate::Factorization::solve_shifted`] did not reach its tolerance
    /// within its iteration budget: the factorization at `eps` is too poor
    /// a preconditioner for `H + shifted_eps I` (the shift is far from
    /// `eps` compared with the eigenvalues of `H + eps I` nearest zero).
    #[error(
        "the factorization at eps = {eps:e} does not precondition H + eps' I at eps' = {shifted_eps:e} well enough: \
         backward error {backward_error:.2e} after {iterations} preconditioned iterations, above the tolerance \
         {tolerance:.2e}; factor H + eps' I afresh (Curvature::factor({shifted_eps:e}))"
    )]
    ShiftTooFar {
        /// The `eps` of the factorization.
        eps: f64,
        /// The `eps'` of the system that was solved.
        shifted_eps: f64,
        /// Backward error of the best solution found, against `H + eps' I`.
        backward_error: f64,
        /// The tolerance it had to meet.
        tolerance: f64,
        /// Preconditioned iterations taken (each one solve with the factorization).
        iterations: usize,
    },
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

/// Where a non-finite value appeared ([`HinvError::Overflow`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverflowSite {
    /// The loss of the forward pass.
    Loss,
    /// An entry of the gradient.
    Gradient {
        /// Its index.
        index: usize,
    },
    /// A derivative block of a layer.
    DerivativeBlock {
        /// The layer (1-based).
        layer: usize,
        /// Which block (`Dx`, `Dz`, `A`, `G`, `E`).
        block: &'static str,
    },
    /// A pivot of the block factorization of the lifted system.
    Pivot {
        /// Block of the lifted system (0-based).
        block: usize,
        /// Network layer of that block (1-based).
        layer: usize,
        /// Column inside the block.
        pivot: usize,
    },
    /// An entry of a computed solution (flat column-major index).
    Solution {
        /// Its index.
        index: usize,
    },
    /// A vector of a Lanczos iteration (spectrum routines).
    LanczosVector,
}

impl OverflowSite {
    /// What to do about it: overflow in the passes is the network's,
    /// overflow in a factorization or solve the system's.
    fn hint(&self) -> &'static str {
        match self {
            OverflowSite::Loss | OverflowSite::Gradient { .. } | OverflowSite::DerivativeBlock { .. } => {
                "the network overflows at these parameters and inputs; scale the weights or inputs down"
            }
            OverflowSite::Pivot { .. } | OverflowSite::Solution { .. } => {
                "H + eps I is too close to singular (or too badly scaled) at this eps; use a larger eps, or \
                 scale the weights or inputs down"
            }
            OverflowSite::LanczosVector => {
                "the operator overflows on a unit vector; scale the weights or inputs down, or use a larger shift"
            }
        }
    }
}

impl std::fmt::Display for OverflowSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverflowSite::Loss => write!(f, "the loss"),
            OverflowSite::Gradient { index } => write!(f, "entry {index} of the gradient"),
            OverflowSite::DerivativeBlock { layer, block } => write!(f, "derivative block {block} of layer {layer}"),
            OverflowSite::Pivot { block, layer, pivot } => {
                write!(f, "pivot {pivot} of block {block} of the factorization (layer {layer})")
            }
            OverflowSite::Solution { index } => write!(f, "entry {index} of the computed solution"),
            OverflowSite::LanczosVector => write!(f, "a Lanczos vector"),
        }
    }
}

/// The matrix of a failed dense computation ([`HinvError::Dense`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenseMatrix {
    /// The dense `H + eps I` of [`crate::reference`]'s solve.
    ReferenceSystem,
    /// The dense Hessian of [`crate::reference`]'s spectrum.
    ReferenceHessian,
    /// `U^T U` of the Woodbury route (`U` the scaled Jacobian).
    WoodburyGram,
    /// `delta I + U^T U`, the small matrix the Woodbury route factors.
    WoodburyCapacitance,
    /// The tridiagonal projection of a Lanczos iteration.
    LanczosProjection,
    /// A predictive covariance of the Laplace approximation.
    PredictiveCovariance,
}

impl std::fmt::Display for DenseMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DenseMatrix::ReferenceSystem => "the dense H + eps I of the reference route",
            DenseMatrix::ReferenceHessian => "the dense Hessian of the reference route",
            DenseMatrix::WoodburyGram => "U^T U of the Woodbury route",
            DenseMatrix::WoodburyCapacitance => "delta I + U^T U of the Woodbury route",
            DenseMatrix::LanczosProjection => "the projected Lanczos matrix",
            DenseMatrix::PredictiveCovariance => "a predictive covariance",
        })
    }
}

/// How a dense computation failed ([`HinvError::Dense`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenseFailure {
    /// The LU solve produced a non-finite value: the matrix is singular to
    /// working precision.
    Singular,
    /// The symmetric eigensolver did not converge.
    NoConvergence,
    /// Cholesky met a pivot that is not positive.
    NotPositiveDefinite {
        /// Index of that pivot.
        pivot: usize,
    },
}

impl DenseFailure {
    fn explain(&self, m: DenseMatrix) -> String {
        match (self, m) {
            (DenseFailure::Singular, _) => {
                "it is singular to working precision; use a larger eps (the factored route reports where: \
                 HinvError::Singular)"
                    .into()
            }
            (DenseFailure::NoConvergence, _) => {
                "its entries are probably huge or not finite; scale the weights or inputs down".into()
            }
            (DenseFailure::NotPositiveDefinite { pivot }, DenseMatrix::WoodburyCapacitance) => format!(
                "pivot {pivot} is not positive: delta is below the rounding of ||U||^2, or U^T U overflowed; use \
                 a larger delta or the lifted route (Route::Lifted)"
            ),
            (DenseFailure::NotPositiveDefinite { pivot }, _) => {
                format!("pivot {pivot} is not positive; the matrix is not positive definite to working precision")
            }
        }
    }
}

impl std::fmt::Display for DenseFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DenseFailure::Singular => "the LU solve",
            DenseFailure::NoConvergence => "the eigendecomposition",
            DenseFailure::NotPositiveDefinite { .. } => "the Cholesky factorization",
        })
    }
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

/// What else may certify counts left uncertain: on wide layers a count
/// after the parameters-first elimination skips the second elimination
/// that would check it (docs/numerics.md, "Eliminating the parameters
/// first"); the interleaved one runs it.
fn uncertain_counts_hint(inertia: &tridiag::Inertia, elimination: Option<crate::Elimination>) -> &'static str {
    if inertia.uncertain > 0 && elimination == Some(crate::Elimination::ParametersFirst) {
        ", or, since the parameters-first elimination left counts uncertain, the interleaved elimination (the \
         `elimination` option), which checks them at a higher cost"
    } else {
        ""
    }
}
