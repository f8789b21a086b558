//! [`Factorization`]: the lifted system of `H + eps I`, factored by block
//! LDLᵀ (inertia, fast solves) and, when it is needed, by Gaussian
//! elimination with partial pivoting across blocks (solves and
//! determinants as accurate as a dense LU, at any conditioning).
//!
//! - `options`: [`FactorOptions`], [`SolveOptions`], [`SolveReport`];
//! - `solve`: solves refined with the exact HVP, and the choice between
//!   the two eliminations;
//! - `inertia`: the inertia with its certificate and second opinions;
//! - `shifted`: solves with a nearby `eps` through these factors;
//! - this module: the factorization and its determinant.

mod inertia;
mod options;
mod shifted;
mod solve;
#[cfg(test)]
mod tests;

pub use shifted::SHIFT_BUDGET;
pub(crate) use solve::backward_error;
pub use solve::Solution;

use std::sync::{Arc, OnceLock};

use netgraph::Derivatives;
use tridiag::{BlockLdlt, FactorParams, Inertia, OnSingular, PivotedLu, SignedLogDet, TridiagError};

use crate::error::{Bytes, HinvError, Result};
use crate::lifted::{lifted_tridiag, lifted_tridiag_scaled, x_offsets};
use crate::reduced::Reduced;

pub use options::{factor_bytes, Elimination, FactorOptions, SolveMethod, SolveOptions, SolveReport};

/// The block elimination that ran.
#[derive(Debug)]
enum Engine {
    /// The interleaved lifted system, factored whole.
    Interleaved(BlockLdlt),
    /// The parameters eliminated first, then the rest.
    ParametersFirst(Reduced),
}

/// The factored lifted system of `H + eps I`; reusable for any number of
/// right-hand sides.
#[derive(Debug)]
pub struct Factorization {
    engine: Engine,
    /// The elimination pivoted across blocks, computed on first need.
    lu: OnceLock<PivotedLu>,
    /// Its determinant (of the equilibrated, `lu_scale`d lifted system),
    /// computed without its factors when no solve has needed them.
    lifted_det: OnceLock<SignedLogDet>,
    /// The log-determinant through the parameters-first elimination,
    /// computed on first need (`None`: refused on the second run).
    reduced_det: OnceLock<Option<SignedLogDet>>,
    /// The interleaved elimination as a second opinion on an uncertain
    /// parameters-first inertia, computed on first need.
    interleaved: OnceLock<Option<BlockLdlt>>,
    /// The lifted count and judged margin of the parameters-first
    /// elimination (forced), the second opinion on an uncertain interleaved
    /// inertia where [`Elimination::Auto`] refused it, computed on first
    /// need.
    parameters_first: OnceLock<Option<(Inertia, f64)>>,
    derivs: Arc<Derivatives>,
    eps: f64,
    opts: FactorOptions,
    /// Offset of each layer's `x_l` in the interleaved unknowns.
    lifted_offsets: Vec<usize>,
    /// `sum_l a_l`: the size of the `y` (and of the `z`) unknowns.
    lifted_extra: usize,
    /// `||H + eps I||_2`, estimated by power iteration on first need
    /// (solves, the pivoted elimination): eight HVPs that counting
    /// eigenvalues does not need.
    norm: OnceLock<f64>,
}

impl Factorization {
    pub(crate) fn new(derivs: Arc<Derivatives>, eps: f64, opts: &FactorOptions) -> Result<Factorization> {
        if !eps.is_finite() {
            return Err(HinvError::InvalidNumber { what: "eps", value: eps, expected: "a finite number" });
        }
        check_memory(&derivs, opts.memory_limit, 1)?;
        // Where the curvature vanishes (||H + eps I|| far below the lifted
        // system's structural -I blocks), the pivoted elimination factors
        // `(H + eps I) / ||H + eps I||` so that it does not drown in their
        // rounding (differential test: 40 false refusals and 57 wrong
        // log-dets at ||H|| <= 1e-10 went to 0). The block LDLᵀ, which
        // gives the inertia, keeps the unscaled system: scaled, its
        // certificate missed the growth of 7 vanishing networks (wrong
        // inertias marked certain), and scaling a large curvature down made
        // more pivots fall within its rounding bound (17 uncertain inertias
        // of 62 in tests/it/solve.rs, against 8).
        let engine = factor_engine(&derivs, eps, &factor_params(opts), opts.elimination)?;
        let f = Factorization {
            engine,
            lu: OnceLock::new(),
            lifted_det: OnceLock::new(),
            reduced_det: OnceLock::new(),
            interleaved: OnceLock::new(),
            parameters_first: OnceLock::new(),
            lifted_offsets: x_offsets(&derivs),
            lifted_extra: derivs.act_sizes[1..].iter().sum(),
            derivs,
            eps,
            opts: opts.clone(),
            norm: OnceLock::new(),
        };
        if f.ldlt_broke_down() {
            let lu = f.pivoted_lu()?;
            if let (Some(e), false) = (f.singular_error(lu), opts.allow_singular) {
                return Err(e);
            }
        }
        Ok(f)
    }

    /// The `eps` of this factorization.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.derivs.param_sizes.iter().sum()
    }

    /// `||H + eps I||_2`, estimated from below by power iteration.
    pub(crate) fn norm_estimate(&self) -> Result<f64> {
        if let Some(n) = self.norm.get() {
            return Ok(*n);
        }
        let n = solve::operator_norm_estimate(&self.derivs, self.eps)?;
        Ok(*self.norm.get_or_init(|| n))
    }

    /// The pivoted elimination factors the lifted system of
    /// `lu_scale (H + eps I)` (the block LDLᵀ that of `H + eps I`).
    fn lu_scale(&self) -> Result<f64> {
        let norm = self.norm_estimate()?;
        Ok(if norm > 0.0 && norm < 1.0 && (1.0 / norm).is_finite() { 1.0 / norm } else { 1.0 })
    }

    /// Size of the lifted system (`sum_l p_l + 2 a_l`).
    pub fn lifted_dim(&self) -> usize {
        match &self.engine {
            Engine::Interleaved(l) => l.dim(),
            Engine::ParametersFirst(r) => r.lifted_dim(),
        }
    }

    /// Which block elimination factored the lifted system
    /// ([`Elimination::Interleaved`] or [`Elimination::ParametersFirst`]).
    pub fn elimination(&self) -> Elimination {
        match &self.engine {
            Engine::Interleaved(_) => Elimination::Interleaved,
            Engine::ParametersFirst(_) => Elimination::ParametersFirst,
        }
    }

    /// The growth of the parameters-first elimination: its largest fill
    /// (`Dx_l A_l^-1 Dx_l^T`, `G_l^T A_l^-1 G_l`, `Dx_l A_l^-1 G_l`) relative
    /// to the largest entry of its layer's blocks; `None` when the
    /// elimination was interleaved. [`Elimination::Auto`] accepts up to
    /// `1e10`.
    pub fn growth(&self) -> Option<f64> {
        match &self.engine {
            Engine::Interleaved(_) => None,
            Engine::ParametersFirst(r) => Some(r.growth()),
        }
    }

    /// The underlying block-tridiagonal factorization (per-block
    /// diagnostics, pivots): of the whole lifted system when
    /// [`Factorization::elimination`] is interleaved, of the Schur
    /// complement `R` left after the parameters when it is
    /// parameters-first, each of its `(z_l, y_l)` blocks balanced by an
    /// exact power-of-two congruence (`S R S`, `S = diag(sigma_l I, I /
    /// sigma_l)`: the same inertia and determinant). In that case its
    /// leading blocks that decouple (`||P|| ||Q|| <= eps_mach`, the layers
    /// nearest the input of a deep network whose gradient vanishes) are
    /// eliminated in closed form and not part of it: it factors the rest of
    /// `R`, the first block with their update (docs/numerics.md, "Open
    /// points").
    pub fn block_ldlt(&self) -> &BlockLdlt {
        match &self.engine {
            Engine::Interleaved(l) => l,
            Engine::ParametersFirst(r) => r.schur(),
        }
    }

    /// Smallest margin of a block pivot over its rounding bound.
    fn pivot_margin(&self) -> f64 {
        match &self.engine {
            Engine::Interleaved(l) => l.pivot_margin(),
            Engine::ParametersFirst(r) => r.pivot_margin(),
        }
    }

    /// True when the block LDLᵀ met an exactly zero pivot: its solves are
    /// then unavailable and the pivoted elimination solves instead.
    fn ldlt_broke_down(&self) -> bool {
        self.block_ldlt().diagnostics().iter().any(|d| d.inertia.zero > 0)
    }

    /// [`HinvError::Singular`] when the pivoted elimination met an exactly
    /// zero pivot: `H + eps I` is singular to working precision.
    fn singular_error(&self, lu: &PivotedLu) -> Option<HinvError> {
        let (block, pivot) = lu.zero_pivot()?;
        Some(HinvError::Singular { eps: self.eps, block, layer: block + 1, pivot, magnitude: 0.0 })
    }

    /// The pivoted elimination of the lifted system, computed once.
    fn pivoted_lu(&self) -> Result<&PivotedLu> {
        if let Some(lu) = self.lu.get() {
            return Ok(lu);
        }
        let lu = PivotedLu::factor(&self.pivoted_input()?, self.opts.par, FactorParams::default().symmetry_tol)
            .map_err(|e| map_factor_error(e, self.eps))?;
        Ok(self.lu.get_or_init(|| lu))
    }

    /// The equilibrated, `lu_scale`d lifted system the pivoted elimination
    /// runs on, within the memory limit (the block factors stay alive:
    /// the limit covers both).
    fn pivoted_input(&self) -> Result<blockmat::Tridiag> {
        check_memory(&self.derivs, self.opts.memory_limit, 2)?;
        lifted_tridiag_scaled(&self.derivs, self.eps, self.lu_scale()?)
    }

    /// The pivoted elimination's determinant of the lifted system, if it
    /// has been computed (with its factors or alone).
    fn known_lifted_det(&self) -> Option<SignedLogDet> {
        self.lu.get().map(PivotedLu::log_det).or_else(|| self.lifted_det.get().copied())
    }

    /// The determinant of the pivoted elimination of the lifted system
    /// (as [`Factorization::det_from`] takes it): its factors' when they
    /// exist, else the elimination run for the determinant alone
    /// ([`tridiag::log_det_pivoted`], the same number bit for bit), which
    /// keeps no factor; computed once. What `log_det` and the inertia's
    /// parity check read.
    fn lifted_det(&self) -> Result<SignedLogDet> {
        if let Some(d) = self.known_lifted_det() {
            return Ok(d);
        }
        let d = tridiag::log_det_pivoted(&self.pivoted_input()?, self.opts.par, FactorParams::default().symmetry_tol)
            .map_err(|e| map_factor_error(e, self.eps))?;
        Ok(*self.lifted_det.get_or_init(|| d))
    }

    /// `log|det(H + eps I)|` and the sign of the determinant (`-inf` and 0
    /// for an exactly singular matrix), accurate to about
    /// `eps_mach * cond(H + eps I)` relative to its magnitude
    /// (docs/numerics.md).
    ///
    /// The block pivots already hold a log-determinant
    /// ([`BlockLdlt::log_abs_det`] of [`Factorization::block_ldlt`], which
    /// after the parameters-first elimination leaves out the parameters'
    /// blocks and `R`'s blocks eliminated in closed form), but
    /// block elimination cannot pivot across layers, and where the partial
    /// products of the network are ill-conditioned its Schur complements
    /// grow and that sum loses up to `1e-13 cond` (relative); refinement
    /// repairs solves, not determinants. So this runs Gaussian elimination
    /// with partial pivoting across blocks, on first use, and keeps its
    /// answer:
    ///
    /// - after the parameters-first elimination whose growth times its
    ///   groups' condition is at most 1e4 (tanh networks of 16 layers and
    ///   more at PyTorch's initialisation with `eps = 1e-3` reach 2e3–7e3),
    ///   on its Schur complement `R` (blocks of `2 a_l`), the groups'
    ///   pivots giving the rest: 1.1–4.0 times the factorization's time
    ///   (docs/benchmarks.md), and accurate to `eps_mach cond(H + eps I)`
    ///   times at most that amplification; where most of `R` was
    ///   eliminated in closed form (a deep network at PyTorch's
    ///   initialisation), on the short rest kept at factorization alone,
    ///   without eliminating the layers again (0.5–0.7 ms at L1024 h8 B2,
    ///   `cargo run --release -p hinv --example phase_times -- 1024 8 2 3`);
    /// - otherwise on the equilibrated lifted system
    ///   ([`tridiag::log_det_pivoted`], blocks of `p_l + 2 a_l`; the
    ///   factors of [`tridiag::PivotedLu`] when a solve's fallback has
    ///   already computed them): up to 100 times the parameters-first
    ///   factorization's time on wide layers.
    ///
    /// Both are linear in depth; docs/numerics.md, "The log-determinant",
    /// has their accuracy.
    ///
    /// # Errors
    /// [`HinvError::TooLarge`] when the pivoted factors would exceed the
    /// memory limit; [`HinvError::Factor`] should the lifted system fail
    /// its input checks (it passed them once already).
    pub fn log_det(&self) -> Result<SignedLogDet> {
        if let Some(d) = self.reduced_log_det()? {
            return Ok(d);
        }
        Ok(self.det_from(self.lifted_det()?))
    }

    /// The log-determinant through the parameters-first elimination, on
    /// first call: the groups' pivots and `R` pivoted across its blocks,
    /// from the short rest of `R` kept at factorization behind a
    /// closed-form run ([`Reduced::kept_log_det`]) or with the layers
    /// eliminated again ([`Reduced::pivoted_log_det`]); `None` when the
    /// engine is the interleaved one or its amplification of rounding
    /// ([`Reduced::log_det_amplification`]) is above
    /// [`REDUCED_LOG_DET_LIMIT`].
    fn reduced_log_det(&self) -> Result<Option<SignedLogDet>> {
        let Some(r) = self.reduced_for_log_det() else { return Ok(None) };
        if let Some(d) = self.reduced_det.get() {
            return Ok(*d);
        }
        let d = match r.kept_log_det(REDUCED_LOG_DET_LIMIT) {
            // `R` but its closed-form blocks, kept at factorization.
            Some(d) => Some(d.map_err(|e| map_factor_error(e, self.eps))?),
            None => {
                // A second elimination next to the first: bounded by the
                // lifted system's estimate (more than this route keeps),
                // as the other.
                check_memory(&self.derivs, self.opts.memory_limit, 2)?;
                Reduced::pivoted_log_det(&self.derivs, self.eps, &factor_params(&self.opts))
                    .map_err(|e| map_factor_error(e, self.eps))?
            }
        };
        let d = d.map(|d| SignedLogDet { sign: self.lifted_sign(d.sign), ..d });
        Ok(*self.reduced_det.get_or_init(|| d))
    }

    /// The parameters-first elimination, when the log-determinant may go
    /// through it.
    fn reduced_for_log_det(&self) -> Option<&Reduced> {
        let Engine::ParametersFirst(r) = &self.engine else { return None };
        // (A forced elimination with an uncertain group pivot would be
        // refused when run again.)
        let refused = r.log_det_amplification() > REDUCED_LOG_DET_LIMIT || r.has_uncertain_group_pivot();
        (!refused).then_some(r)
    }

    /// Whether [`Factorization::log_det`] takes the rest of `R` kept at
    /// factorization.
    #[cfg(test)]
    pub(crate) fn log_det_keeps_rest(&self) -> bool {
        self.reduced_for_log_det().is_some_and(|r| r.keeps_rest_within(REDUCED_LOG_DET_LIMIT))
    }

    /// The sign of `det(H + eps I)` from the lifted system's: `det K' =
    /// (-1)^(sum a_l) det(H + eps I)`; a zero stays `+0`.
    fn lifted_sign(&self, sign: f64) -> f64 {
        if sign == 0.0 {
            0.0
        } else if self.lifted_extra % 2 == 1 {
            -sign
        } else {
            sign
        }
    }

    /// `det(H + eps I)` from the pivoted elimination's determinant `d` of
    /// the lifted system ([`Factorization::lifted_det`]).
    fn det_from(&self, d: SignedLogDet) -> SignedLogDet {
        // det K = (-1)^(sum a_l) det(lu_scale (H + eps I)): the (y, z) part of
        // the lifted system is [[P^T E P, -M^T], [-M, 0]] with det M = 1.
        let sign = self.lifted_sign(d.sign);
        // The scale is known: the pivoted elimination ran with it.
        let scale = self.lu_scale().unwrap_or(1.0);
        let log_abs = d.log_abs - self.num_params() as f64 * scale.ln();
        SignedLogDet { log_abs, sign }
    }
}

/// The block factorizations' parameters: zero pivots are recorded rather
/// than fatal, since only the pivoted elimination can tell a zero
/// eigenvalue from a breakdown. The inputs are finite (checked when the
/// blocks were computed), so a NaN pivot is a breakdown too (a nearly
/// singular Schur complement whose inverse overflowed), and is counted
/// with the zeros.
fn factor_params(opts: &FactorOptions) -> FactorParams {
    FactorParams {
        par: opts.par,
        strategy: opts.strategy,
        on_singular: OnSingular::Continue,
        singular_tol: 0.0,
        ..FactorParams::default()
    }
}

/// Largest growth of the parameters-first elimination times the largest
/// condition estimate of its groups (and a projected group's residual in
/// units of rounding, [`Reduced::log_det_amplification`]) for which
/// [`Factorization::log_det`]
/// takes its determinant from that elimination (the groups' pivots, and
/// `R` pivoted across blocks) instead of pivoting across the whole lifted
/// system's blocks (up to 100 times slower at width 32). Both amplify the
/// elimination's rounding, which a determinant cannot refine away. Chosen
/// well below where the route's error reaches its bar (1.2 times it at
/// 1e9–1e10 in `factor::tests`' table; at most 1.7e-6 of it up to 1e4;
/// docs/numerics.md, "The log-determinant").
const REDUCED_LOG_DET_LIMIT: f64 = 1e4;

/// Factors the lifted system by the elimination `choice` asks for
/// ([`Elimination::Auto`]: parameters first unless its growth test refuses).
fn factor_engine(d: &Derivatives, eps: f64, params: &FactorParams, choice: Elimination) -> Result<Engine> {
    if choice != Elimination::Interleaved {
        let force = choice == Elimination::ParametersFirst;
        match Reduced::factor(d, eps, params, force).map_err(|e| map_factor_error(e, eps))? {
            Ok(r) => return Ok(Engine::ParametersFirst(r)),
            Err(_refused) => {}
        }
    }
    let k = lifted_tridiag(d, eps)?;
    Ok(Engine::Interleaved(BlockLdlt::factor(&k, params).map_err(|e| map_factor_error(e, eps))?))
}

/// Refuses when `copies` block factorizations would exceed the limit.
fn check_memory(d: &Derivatives, limit: Option<u64>, copies: u64) -> Result<()> {
    let Some(limit) = limit else { return Ok(()) };
    let need = factor_bytes(d).saturating_mul(copies);
    if need > limit {
        return Err(HinvError::TooLarge {
            what: if copies == 1 {
                "the factorization of the lifted system"
            } else {
                "the pivoted elimination of an ill-conditioned system (next to the block factorization)"
            },
            needed: Bytes(need),
            limit: Bytes(limit),
            hint: "raise the memory limit, or use a smaller batch or a narrower network",
        });
    }
    Ok(())
}

fn map_factor_error(e: TridiagError, eps: f64) -> HinvError {
    match e {
        TridiagError::Singular { block, pivot, magnitude, .. } if magnitude.is_nan() => HinvError::Overflow {
            what: crate::OverflowSite::Pivot { block, layer: block + 1, pivot },
            value: magnitude,
        },
        TridiagError::Singular { block, pivot, magnitude, .. } => {
            HinvError::Singular { eps, block, layer: block + 1, pivot, magnitude }
        }
        other => HinvError::Factor(other),
    }
}
