//! Knobs and reports of factorizations and solves.

use serde::Serialize;
use tridiag::{ParPolicy, Strategy};

use crate::{HinvError, Result, Route};

/// Knobs of [`crate::Curvature::factor_with`].
///
/// The block LDLᵀ stops only at pivots that are exactly zero: a relative
/// pivot threshold is the wrong test for the lifted system, whose Schur
/// complements hold entries of order `1/eps` next to legitimate pivots of
/// order `eps` (docs/numerics.md). An exactly zero pivot is either a zero
/// eigenvalue of `H + eps I` or a breakdown of the block elimination; the
/// elimination pivoted across blocks ([`tridiag::PivotedLu`]) tells them
/// apart.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorOptions {
    /// Factor a singular `H + eps I` anyway (its zero eigenvalues then show
    /// in [`crate::Factorization::inertia`]) instead of returning
    /// [`crate::HinvError::Singular`]. Solves with such a factorization fail.
    pub allow_singular: bool,
    /// Parallelism: of the dense kernels, and of independent work split
    /// across rayon threads (the layers' eliminations, the two chains of
    /// the two-sided order, many right-hand sides). The default,
    /// [`ParPolicy::Auto`], splits only work worth a thread
    /// ([`ParPolicy::MIN_SPLIT_FLOPS`]): small networks run on the calling
    /// thread.
    pub par: ParPolicy,
    /// Order of the block elimination. The default, [`Strategy::Auto`],
    /// eliminates networks of about 10 layers and more from both ends
    /// (on two threads when `par` finds the work worth it), shallower ones
    /// top-down; see `docs/tridiag-parallel.md`.
    pub strategy: Strategy,
    /// Refuse to factor when [`factor_bytes`] exceeds this many bytes
    /// (`None`: no limit). The pivoted elimination that solves
    /// ill-conditioned systems is checked against the same limit, together
    /// with the block factorization, when it is first needed.
    pub memory_limit: Option<u64>,
    /// Which block elimination factors the lifted system. Other than
    /// [`Elimination::Auto`] it also chooses the lifted route where
    /// [`crate::Curvature::factor_route`] would choose by cost, and it is
    /// refused with the Woodbury route, which factors no lifted system
    /// ([`FactorOptions::check_route`]).
    pub elimination: Elimination,
}

impl FactorOptions {
    /// Refuses a forced [`Route::Woodbury`] together with an elimination
    /// other than [`Elimination::Auto`]: that route factors no lifted
    /// system, so the elimination asked for would be silently ignored.
    /// [`crate::Curvature::factor_route`] and [`crate::laplace::Laplace`]
    /// call it; front ends call it to refuse the pair before any work.
    ///
    /// ```
    /// use hinv::{Elimination, FactorOptions, HinvError, Route};
    ///
    /// let opts = FactorOptions { elimination: Elimination::Interleaved, ..FactorOptions::default() };
    /// assert!(opts.check_route(Some(Route::Lifted)).is_ok());
    /// assert!(opts.check_route(None).is_ok()); // the lifted route, then
    /// let e = opts.check_route(Some(Route::Woodbury)).unwrap_err();
    /// assert!(matches!(e, HinvError::EliminationWithoutLiftedSystem { elimination: Elimination::Interleaved }));
    /// ```
    ///
    /// # Errors
    /// [`HinvError::EliminationWithoutLiftedSystem`] for that pair.
    pub fn check_route(&self, route: Option<Route>) -> Result<()> {
        if route == Some(Route::Woodbury) && self.elimination != Elimination::Auto {
            return Err(HinvError::EliminationWithoutLiftedSystem { elimination: self.elimination });
        }
        Ok(())
    }
}

impl Default for FactorOptions {
    fn default() -> Self {
        FactorOptions {
            allow_singular: false,
            par: ParPolicy::Auto,
            strategy: Strategy::Auto,
            memory_limit: None,
            elimination: Elimination::Auto,
        }
    }
}

/// Which block elimination factors the lifted system (docs/numerics.md,
/// "Eliminating the parameters first").
///
/// Both are exact (inertia by Haynsworth's theorem) and both are refined
/// with the exact HVP; they differ in cost and in how much growth their
/// pivots allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Elimination {
    /// [`Elimination::ParametersFirst`] when its fill stays within
    /// `1e10` times the lifted system's entries, every group of
    /// `A_l + eps I` has a condition estimate within `1e8` and every pivot
    /// of it is certain, else [`Elimination::Interleaved`]
    /// (docs/numerics.md, "Eliminating the parameters first").
    #[default]
    Auto,
    /// Each layer's unknowns `(x_l, y_l, z_l)` together, Bunch–Kaufman
    /// pivoting across the whole `p_l + 2 a_l` block: the most stable.
    Interleaved,
    /// Each layer's parameters first, unit by unit (`A_l + eps I` is block
    /// diagonal over a dense layer's output units), then a block-tridiagonal
    /// system of blocks `2 a_l`: cost independent of the parameter count
    /// per unit. Forced even where its growth test fails (for
    /// measurements), except where a unit block is exactly singular: then
    /// the interleaved elimination runs ([`crate::Factorization::elimination`]
    /// tells which did).
    ParametersFirst,
}

impl std::fmt::Display for Elimination {
    /// The name [`Elimination::from_str`](std::str::FromStr) takes:
    /// `auto`, `interleaved` or `parameters-first`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Elimination::Auto => "auto",
            Elimination::Interleaved => "interleaved",
            Elimination::ParametersFirst => "parameters-first",
        })
    }
}

impl std::str::FromStr for Elimination {
    type Err = String;

    /// `auto`, `interleaved` or `parameters-first` (also `parameters_first`),
    /// the names the command line and the Python package take.
    ///
    /// ```
    /// use hinv::Elimination;
    ///
    /// assert_eq!("interleaved".parse(), Ok(Elimination::Interleaved));
    /// assert_eq!("Parameters_First".parse(), Ok(Elimination::ParametersFirst));
    /// assert!("lifted".parse::<Elimination>().unwrap_err().contains("auto, interleaved or parameters-first"));
    /// ```
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "auto" => Ok(Elimination::Auto),
            "interleaved" => Ok(Elimination::Interleaved),
            "parameters-first" => Ok(Elimination::ParametersFirst),
            _ => Err(format!("`{s}` is not an elimination: use auto, interleaved or parameters-first")),
        }
    }
}

/// The accuracy a solve must reach before it is returned.
///
/// The default asks for a normwise backward error of at most `64 eps_mach`
/// (1.4e-14) and returns an error otherwise: a returned solution is always
/// within the tolerance unless `accept_inexact` says so.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SolveOptions {
    /// Largest acceptable normwise backward error
    /// `||g - (H + eps I) x|| / (||H + eps I|| ||x|| + ||g||)` of every
    /// column (`||H + eps I||` estimated by power iteration from below, so
    /// the measured value can only overstate the error).
    pub tolerance: f64,
    /// Most refinement steps with the exact Hessian-vector product, per
    /// elimination. Refinement aims 16 times below `tolerance` while its
    /// steps contract (for the forward error), and the result is accepted
    /// at `tolerance`.
    pub max_refinements: usize,
    /// Return the best solution found even when it misses the tolerance,
    /// with [`SolveReport::within_tolerance`] false, instead of
    /// [`crate::HinvError::IllConditioned`].
    pub accept_inexact: bool,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions { tolerance: 64.0 * f64::EPSILON, max_refinements: 10, accept_inexact: false }
    }
}

/// Which elimination produced a solution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SolveMethod {
    /// The block LDLᵀ (Bunch–Kaufman blocks), refined with the exact HVP.
    BlockLdlt,
    /// Gaussian elimination with partial pivoting across blocks
    /// ([`tridiag::PivotedLu`]), refined with the exact HVP: used when the
    /// block LDLᵀ broke down or its refinement stopped contracting.
    PivotedLu,
    /// The Woodbury identity through the explicit Jacobian (Gauss–Newton
    /// only), refined with the exact product.
    Woodbury,
    /// MINRES preconditioned by a factorization at another `eps`, refined
    /// with the exact HVP ([`crate::Factorization::solve_shifted`]).
    Shifted,
}

/// What a solve did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SolveReport {
    /// The elimination that produced the solution.
    pub method: SolveMethod,
    /// Refinement steps taken, over both eliminations.
    pub refinements: usize,
    /// Largest column backward error of the first (unrefined) solve.
    pub initial_backward_error: f64,
    /// Largest column backward error of the returned solution, measured
    /// with the exact HVP. Its norm `||H + eps I||` is a lower bound (the
    /// products at hand, or a power-iteration estimate when those alone
    /// would reject the solution), so this overstates the true backward
    /// error, never understates it.
    pub backward_error: f64,
    /// Whether `backward_error <= tolerance`. Only false when
    /// [`SolveOptions::accept_inexact`] asked for the answer anyway.
    pub within_tolerance: bool,
}

/// Bytes the block factorization of the lifted system needs, estimated
/// before anything is allocated: per layer the dense Schur complement and
/// its factors (`n_l^2`, `n_l = p_l + 2 a_l`), the stored columns
/// `S_l^-1[:, y]` (`n_l a_l`) and the lifted right-hand side, plus one
/// block's worth of scratch. The pivoted elimination needs about as much
/// again when a solve or the determinant asks for it.
pub fn factor_bytes(d: &netgraph::Derivatives) -> u64 {
    let mut total: u128 = 0;
    let mut largest: u128 = 0;
    for l in 0..d.layers.len() {
        let (p, a) = (d.param_sizes[l] as u128, d.act_sizes[l + 1] as u128);
        let n = p + 2 * a;
        total += n * n + n * a + n;
        largest = largest.max(n * n);
    }
    u64::try_from((total + 2 * largest) * 8).unwrap_or(u64::MAX)
}
