//! How far the inertia read off the block pivots can be trusted: every
//! pivot against the rounding error of the Schur complement it comes from.
//!
//! The computed `S_k` is `D_k - C W C^T` formed in floating point and
//! factored by Bunch–Kaufman: its own error is about `u n_k` times the
//! largest term before cancellation (`D_k`, the carried update, or the
//! pivots themselves when they grew). By Weyl's inequality no eigenvalue of
//! `S_k` crosses zero unless it is within that error of it, and the pivots
//! stand in for those eigenvalues (Sylvester), so a pivot whose magnitude
//! is above the bound has a certain sign as far as this block's rounding
//! goes. A small pivot born of cancellation between large terms, the
//! signature of pivot growth, is flagged this way.
//!
//! Errors inherited from earlier blocks are not bounded here: a rigorous
//! first-order propagation (`||C||^2 ||S^-1||^2` per block) was measured to
//! flag every pivot of ordinary indefinite Hessian systems (140 of 140 on
//! an 8-layer network at eps = 0.1), since it compounds worst cases that
//! do not occur together. The differential test (`cargo xtask
//! differential`) measures what this certificate misses; see
//! docs/numerics.md.

use super::BlockLdlt;
use crate::pivots::BlockDiagnostics;

/// Rounding constant of a block's own error, per unit of `n_k` times its
/// scale: forming `D - C W C^T` (a few roundings per entry, summed in
/// norm) and Bunch–Kaufman's backward error with its usual small growth.
const LOCAL_ROUNDING: f64 = 8.0 * f64::EPSILON;

impl BlockLdlt {
    /// Number of pivots whose sign the factorization cannot vouch for: each
    /// lies within the propagated error bound of its Schur complement (see
    /// the module `certify` documentation), so the exact inertia differs
    /// from [`BlockLdlt::inertia`] by at most this many in each count.
    /// Zero pivots (factored with [`crate::OnSingular::Continue`]) always
    /// count. 0 means the inertia is certified to first order in rounding.
    pub fn uncertain_pivots(&self) -> usize {
        self.error_bounds().iter().zip(&self.diagnostics).map(|(&e, d)| uncertain(&d.pivots, e)).sum()
    }

    /// How far the smallest pivot clears its block's error bound: the
    /// minimum over all pivots of `|pivot| / bound` (infinite for an empty
    /// matrix, at most 1 when [`BlockLdlt::uncertain_pivots`] is non-zero).
    /// The bound leaves out errors inherited from earlier blocks, so a
    /// margin of a few units certifies less than one of millions: callers
    /// with a second, independent elimination at hand use it there (hinv
    /// checks the parity of the count against a pivoted determinant).
    pub fn pivot_margin(&self) -> f64 {
        self.error_bounds()
            .iter()
            .zip(&self.diagnostics)
            .map(|(&e, d)| margin(&d.pivots, e))
            .fold(f64::INFINITY, f64::min)
    }

    /// Declares that diagonal block `k`'s entries were computed upstream
    /// with errors of order `u scales[k]` (more than their own magnitude
    /// shows when they cancelled there): the certificate then judges the
    /// block's pivots against at least that scale. Missing entries leave a
    /// block as it is.
    pub fn with_input_scales(mut self, scales: &[f64]) -> BlockLdlt {
        for (d, &s) in self.diagnostics.iter_mut().zip(scales) {
            d.scale = d.scale.max(s);
        }
        self
    }

    /// The rounding-error bound of every computed Schur complement, in
    /// block order.
    pub fn error_bounds(&self) -> Vec<f64> {
        self.diagnostics.iter().map(local).collect()
    }
}

/// How many of a block's `pivots` lie within its error `bound` of zero (a
/// NaN pivot counts).
pub(crate) fn uncertain(pivots: &[f64], bound: f64) -> usize {
    pivots.iter().filter(|m| m.abs().partial_cmp(&bound) != Some(std::cmp::Ordering::Greater)).count()
}

/// The smallest `|pivot| / bound` over a block's `pivots` (infinite for
/// none, 0 when any ratio is NaN).
pub(crate) fn margin(pivots: &[f64], bound: f64) -> f64 {
    pivots.iter().map(|p| p.abs() / bound).fold(f64::INFINITY, |m, r| if r.is_nan() { 0.0 } else { m.min(r) })
}

/// A block's own rounding error: forming it and factoring it.
pub(crate) fn local(d: &BlockDiagnostics) -> f64 {
    // `max_pivot` is the largest pivot eigenvalue's magnitude (0 for an empty block).
    LOCAL_ROUNDING * d.size as f64 * d.scale.max(d.max_pivot)
}
