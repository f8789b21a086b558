//! The lifted system's log-determinant through the parameters-first
//! elimination: the groups' pivots times `R`'s determinant pivoted across
//! its blocks, `R` rebuilt by eliminating the layers again or, behind a
//! closed-form run, its short rest kept at factorization.

use netgraph::Derivatives;
use tridiag::{FactorParams, SignedLogDet, TridiagError};

use super::assemble::{assemble, tridiagonal, Assembled};
use super::{eliminate_layers, Eliminated, LayerElimination, Reduced};

impl Reduced {
    /// `log|det|` of the lifted system and its sign, with `R` eliminated by
    /// partial pivoting across its blocks ([`tridiag::PivotedLu`]) instead
    /// of block LDLᵀ:
    /// `det K' = prod_l det(A_l + eps I) det(R)`. `R` was factored in
    /// place, so the layers' eliminations run again to rebuild it; `None`
    /// when they are refused (as [`Reduced::factor`] would refuse them).
    pub(crate) fn pivoted_log_det(
        d: &Derivatives,
        eps: f64,
        params: &FactorParams,
    ) -> Result<Option<SignedLogDet>, TridiagError> {
        let Ok(Eliminated { mut pieces, split, .. }) = eliminate_layers(d, eps, params, false)? else {
            return Ok(None);
        };
        // (The balancing has determinant 1: `sigma^a` times `sigma^-a`.)
        let Assembled { diag, couplings, .. } = assemble(d, &mut pieces, split, params.symmetry_tol)?;
        let det = tridiag::log_det_pivoted(&tridiagonal(diag, couplings)?, params.par, params.symmetry_tol)?;
        Ok(Some(times(det, pieces.iter().map(|p| p.elim.log_det()))))
    }

    /// Whether [`Reduced::kept_log_det`] answers: the rest of `R` was
    /// kept, and the amplification of rounding of the eliminations before
    /// it, the parameters' ([`Reduced::log_det_amplification`]) times the
    /// closed-form run's growth (its largest carried update relative to
    /// the block it landed in), is at most `limit`.
    pub(crate) fn keeps_rest_within(&self, limit: f64) -> bool {
        self.rest.is_some() && self.log_det_amplification() * self.decoupled.growth() <= limit
    }

    /// [`Reduced::pivoted_log_det`] from the rest of `R` kept at
    /// factorization (`None` unless [`Reduced::keeps_rest_within`]
    /// `limit`): its determinant pivoted across blocks, times the
    /// closed-form blocks' `det = (-1)^a det(I - PQ)`, whose `log det(I -
    /// PQ)` is within `||P|| ||Q|| / (1 - ||P|| ||Q||)`, `eps_mach`, of zero
    /// per block and is taken as zero. The block elimination that carried
    /// the run's update into the rest cannot pivot across blocks; its
    /// rounding is the rest's first block's input error, and its growth
    /// counts in the amplification as the parameters' elimination's does.
    pub(crate) fn kept_log_det(&self, limit: f64) -> Option<Result<SignedLogDet, TridiagError>> {
        if !self.keeps_rest_within(limit) {
            return None;
        }
        let rest = self.rest.as_ref()?;
        // (Its blocks were made exactly symmetric when `R` was assembled.)
        let det = match tridiag::log_det_pivoted(rest, self.par, f64::INFINITY) {
            Ok(det) => det,
            Err(e) => return Some(Err(self.decoupled.in_r(e))),
        };
        let odd = (self.decoupled.dim() / 2) % 2 == 1;
        let run = SignedLogDet { log_abs: 0.0, sign: if odd { -1.0 } else { 1.0 } };
        Some(Ok(times(det, std::iter::once(run).chain(self.layers.iter().map(LayerElimination::log_det)))))
    }
}

/// The product of determinants given as signed logarithms (a zero stays
/// `+0`).
fn times(det: SignedLogDet, factors: impl Iterator<Item = SignedLogDet>) -> SignedLogDet {
    factors.fold(det, |acc, l| SignedLogDet {
        log_abs: acc.log_abs + l.log_abs,
        sign: if acc.sign == 0.0 || l.sign == 0.0 { 0.0 } else { acc.sign * l.sign },
    })
}
