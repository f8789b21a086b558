//! Symmetric block-tridiagonal LDL^T with pivoted (Bunch–Kaufman) blocks.
//!
//! [`BlockLdlt::factor`] eliminates block by block, factoring every Schur
//! complement `S_k` with faer's Bunch–Kaufman and carrying only the part of
//! `S_k^-1` that the next off-diagonal block touches (its column support in
//! `blockmat`). The factorization then solves any number of right-hand
//! sides and reports `log|det|`, its sign and the inertia from the pivots.
//! See the `ldlt` module documentation for the recurrences.
//!
//! - [`BlockLdlt`]: factor ([`FactorParams`]), solve, `log|det|`, sign,
//!   [`Inertia`] with a certificate (`uncertain`, see
//!   [`BlockLdlt::uncertain_pivots`]), per-block [`BlockDiagnostics`].
//! - [`BlockDiagLdlt`]: the same for a block-diagonal matrix (independent
//!   blocks, factored in parallel), for callers that eliminate a
//!   block-diagonal part of a larger system first.
//! - [`PivotedLu`]: Gaussian elimination with partial pivoting across
//!   blocks, for solves and `log|det|` as accurate as a dense LU where the
//!   block pivots grow; [`log_det_pivoted`] is its determinant alone,
//!   keeping no factor.
//! - [`ParPolicy`] and [`Strategy`]: explicit, never nested, parallelism
//!   (kernels, right-hand-side columns, or two elimination chains); see
//!   `docs/tridiag-parallel.md`.
//! - [`TridiagError`]: every failure, with the block and pivot at fault.

mod block_diag;
mod dense_lblt;
mod error;
mod input;
mod ldlt;
mod params;
mod pivoted_lu;
mod pivots;
mod small_lblt;
mod workspace;

pub use block_diag::BlockDiagLdlt;
pub use error::TridiagError;
pub use ldlt::BlockLdlt;
pub use params::{FactorParams, OnSingular, ParPolicy, Strategy, AUTO_TWO_SIDED_MIN_BLOCKS};
pub use pivoted_lu::{log_det_pivoted, PivotedLu, SignedLogDet};
pub use pivots::{BlockDiagnostics, Inertia};
