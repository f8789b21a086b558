//! How far the inertia read off the block pivots can be trusted: a
//! first-order bound on the error of every computed Schur complement,
//! propagated along the elimination, against the pivots it decides the
//! sign of.
//!
//! The computed `S_k` is the exact Schur complement plus an error `E_k`:
//! the rounding of forming `D_k - C W C^T` and of its Bunch–Kaufman
//! factorization (normwise about `u n_k` times the largest term before
//! cancellation), plus what the previous block's error does to
//! `W = S_{k-1}^-1`: `||dW|| <= nu^2 e / (1 - nu e)` with
//! `nu = ||S_{k-1}^-1||` and `e = ||E_{k-1}||` (a Neumann series), carried
//! through the coupling as `||C||^2 ||dW||`. By Weyl's inequality no
//! eigenvalue of `S_k` crosses zero unless it is within `||E_k||` of it, and
//! the pivots stand in for those eigenvalues (Sylvester), so a pivot whose
//! magnitude is above the bound has a certain sign. Where `nu e >= 1` the
//! bound is lost and every later pivot is uncertain.

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
        self.error_bounds()
            .iter()
            .zip(&self.diagnostics)
            .map(|(&e, d)| {
                d.pivots.iter().filter(|m| m.abs().partial_cmp(&e) != Some(std::cmp::Ordering::Greater)).count()
            })
            .sum()
    }

    /// The error bound of every computed Schur complement, in block order.
    pub fn error_bounds(&self) -> Vec<f64> {
        let nb = self.sizes.len();
        let mut err = vec![0.0; nb];
        if nb == 0 {
            return err;
        }
        let mid = self.middle_index;
        let d = &self.diagnostics;
        let mut incoming = 0.0;
        for k in 0..mid {
            err[k] = local(&d[k]) + incoming;
            incoming = propagated(&d[k], err[k]);
        }
        let from_top = incoming;
        incoming = 0.0;
        for k in (mid + 1..nb).rev() {
            err[k] = local(&d[k]) + incoming;
            incoming = propagated(&d[k], err[k]);
        }
        err[mid] = local(&d[mid]) + from_top + incoming;
        err
    }
}

/// A block's own rounding error: forming it and factoring it.
fn local(d: &BlockDiagnostics) -> f64 {
    let largest_pivot = d.pivots.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    LOCAL_ROUNDING * d.size as f64 * d.scale.max(largest_pivot)
}

/// What an error `e` in this block's Schur complement does to the next
/// block's, through `W = S^-1` and the coupling.
fn propagated(d: &BlockDiagnostics, e: f64) -> f64 {
    if d.coupling_norm == 0.0 {
        return 0.0;
    }
    // The power-iteration estimate of ||S^-1|| is a lower bound; the
    // smallest pivot gives another view of it (exact for a diagonal block).
    let nu = d.inverse_norm.max(1.0 / d.min_pivot);
    let ne = nu * e;
    // NaN (an infinite bound times a zero norm) loses the bound as well.
    if ne.partial_cmp(&1.0) != Some(std::cmp::Ordering::Less) {
        return f64::INFINITY;
    }
    d.coupling_norm * d.coupling_norm * nu * nu * e / (1.0 - ne)
}
