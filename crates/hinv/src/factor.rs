//! [`Factorization`]: the block LDLᵀ of the lifted system of `H + eps I`,
//! with solves (refined with the exact HVP when they need it),
//! log-determinant and inertia.

use std::sync::{Arc, OnceLock};

use faer::{Mat, MatRef};
use netgraph::Derivatives;
use serde::Serialize;
use tridiag::{BlockLdlt, FactorParams, OnSingular, SignedLogDet, TridiagError};

use crate::curvature::hvp_many;
use crate::error::{check_vector, HinvError, Result};
use crate::lifted::{lifted_tridiag_with, x_offsets, Layout};

/// Which interleaving of the lifted system a factorization uses.
///
/// The default is ALGORITHM.md's [`Layout::Interleaved`]. `Auto` is opt-in:
/// on smooth activations the shifted layout's pivots grow less (smaller raw
/// backward errors, fewer refinement steps, and block log-determinants
/// accurate to 1e-9 up to cond 1e8; [`Factorization::log_abs_det`] is
/// that accurate with either layout), but it fails badly where the curvature
/// vanishes (a 256-layer tanh network at PyTorch's initialisation: log-det
/// off by 2.5e-3, solve backward error 1), which its probe solve catches at
/// the price of two or three factorizations (docs/numerics.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LayoutChoice {
    /// [`Layout::Shifted`] (whose pivots grow least where it works),
    /// falling back to [`Layout::Interleaved`] when a block of it is exactly
    /// singular (dead units) or when a probe solve with it has a backward
    /// error above `64 eps_mach` and ALGORITHM.md's layout does better.
    Auto,
    /// Always this layout.
    Fixed(Layout),
}

impl Default for LayoutChoice {
    fn default() -> Self {
        LayoutChoice::Fixed(Layout::Interleaved)
    }
}

/// When a solve is refined with the exact Hessian-vector product.
///
/// Block elimination of the lifted system is backward stable per block, but
/// the Schur complements can grow along the chain when `H` is
/// ill-conditioned, and the raw solution then carries a backward error well
/// above machine precision (docs/numerics.md). One HVP measures it; one or
/// two refinement steps (an HVP and a solve each) remove it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Refinement {
    /// Return the raw solve.
    Off,
    /// Measure the backward error of every solve and refine while it is
    /// above `threshold`, for at most `max_iterations` steps.
    Auto {
        /// Backward error above which refinement switches on.
        threshold: f64,
        /// Most refinement steps per solve.
        max_iterations: usize,
    },
}

impl Default for Refinement {
    /// `Auto` with threshold `64 eps_mach` (1.4e-14) and at most 5 steps.
    fn default() -> Self {
        Refinement::Auto { threshold: 64.0 * f64::EPSILON, max_iterations: 5 }
    }
}

/// Knobs of [`crate::Curvature::factor_with`].
///
/// The default factorization stops only at pivots that are exactly zero
/// (`tridiag.singular_tol = 0`). A relative pivot threshold is the wrong
/// test for the lifted system: for small `eps` its Schur complements hold
/// entries of order `1/eps` next to legitimate pivots of order `eps`, so a
/// threshold relative to the block refuses well-conditioned `H + eps I`
/// (docs/numerics.md). Solves instead measure their backward error, and a
/// backward error that refinement cannot bring below `sqrt(eps_mach)` is
/// reported as [`HinvError::IllConditioned`].
#[derive(Debug, Clone)]
pub struct FactorOptions {
    /// Factor a singular `H + eps I` anyway (its zero eigenvalues then show
    /// in [`Factorization::inertia`]) instead of returning
    /// [`HinvError::Singular`]. Solves with such a factorization fail.
    pub allow_singular: bool,
    /// Refinement policy of [`Factorization::solve`] and friends.
    pub refinement: Refinement,
    /// Interleaving of the lifted system.
    pub layout: LayoutChoice,
    /// Parameters handed to the block-tridiagonal factorization.
    pub tridiag: FactorParams,
    /// Refuse to factor when [`factor_bytes`] exceeds this many bytes
    /// (`None`: no limit).
    pub memory_limit: Option<u64>,
}

impl Default for FactorOptions {
    fn default() -> Self {
        FactorOptions {
            allow_singular: false,
            refinement: Refinement::default(),
            layout: LayoutChoice::default(),
            tridiag: FactorParams { singular_tol: 0.0, ..FactorParams::default() },
            memory_limit: None,
        }
    }
}

/// Largest backward error a solve may return: beyond it the answer is not
/// a solution of any nearby system worth the name.
const UNTRUSTED_BACKWARD_ERROR: f64 = 1.490_116_119_384_765_6e-8; // sqrt(eps_mach)

/// Bytes the factorization of the lifted system needs, estimated before
/// anything is allocated: per layer the dense Schur complement and its
/// factors (`n_l^2`, `n_l = p_l + 2 a_l`), the stored columns
/// `S_l^-1[:, y]` (`n_l a_l`) and the lifted right-hand side, plus one
/// block's worth of scratch.
pub fn factor_bytes(d: &Derivatives) -> u64 {
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

/// Inertia of `H + eps I`: how many eigenvalues are positive, negative, zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Inertia {
    /// Eigenvalues above zero.
    pub positive: usize,
    /// Eigenvalues below zero: the eigenvalues of `H` below `-eps`.
    pub negative: usize,
    /// Eigenvalues that are zero to working precision.
    pub zero: usize,
}

/// What a solve did: backward errors before and after refinement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SolveReport {
    /// Refinement steps taken (0: the raw solve was good enough, or
    /// refinement is off).
    pub iterations: usize,
    /// Largest normwise backward error over the columns of the raw solve,
    /// `||g - (H + eps I) x|| / (||H + eps I|| ||x|| + ||g||)`, with
    /// `||H + eps I||` estimated by power iteration; `NaN` when not measured.
    pub initial_backward_error: f64,
    /// The same for the returned solution.
    pub backward_error: f64,
    /// Whether the returned solution meets the threshold of the policy.
    pub converged: bool,
}

/// The factored lifted system of `H + eps I`; reusable for any number of
/// right-hand sides.
#[derive(Debug)]
pub struct Factorization {
    ldlt: BlockLdlt,
    layout: Layout,
    derivs: Arc<Derivatives>,
    eps: f64,
    refinement: Refinement,
    /// Offset of each layer's `x_l` in the interleaved unknowns.
    lifted_offsets: Vec<usize>,
    /// `sum_l a_l`: the size of the `y` (and of the `z`) unknowns.
    lifted_extra: usize,
    norm_estimate: OnceLock<f64>,
    /// The determinant by pivoted elimination, computed on first use.
    pivoted_det: OnceLock<SignedLogDet>,
    /// Knobs of the block factorization, reused by the pivoted determinant.
    params: FactorParams,
}

impl Factorization {
    pub(crate) fn new(derivs: Arc<Derivatives>, eps: f64, opts: &FactorOptions) -> Result<Factorization> {
        if let Some(limit) = opts.memory_limit {
            let need = factor_bytes(&derivs);
            if need > limit {
                return Err(HinvError::TooLarge {
                    what: "the factorization of the lifted system",
                    needed: crate::error::Bytes(need),
                    limit: crate::error::Bytes(limit),
                    hint: "raise the memory limit, or use a smaller batch or a narrower network",
                });
            }
        }
        let mut params = opts.tridiag;
        params.on_singular = if opts.allow_singular { OnSingular::Continue } else { OnSingular::Error };
        let build = |layout: Layout, params: &FactorParams| -> Result<Factorization> {
            let k = lifted_tridiag_with(&derivs, eps, layout)?;
            let ldlt = BlockLdlt::factor(&k, params).map_err(|e| map_singular(e, eps))?;
            Ok(Factorization {
                ldlt,
                layout,
                eps,
                refinement: opts.refinement,
                lifted_offsets: x_offsets(&derivs, layout),
                lifted_extra: derivs.act_sizes[1..].iter().sum(),
                derivs: Arc::clone(&derivs),
                norm_estimate: OnceLock::new(),
                pivoted_det: OnceLock::new(),
                params: *params,
            })
        };
        match opts.layout {
            LayoutChoice::Fixed(layout) => build(layout, &params),
            LayoutChoice::Auto => {
                // A zero pivot of the shifted layout may be a breakdown of
                // the block elimination rather than a zero eigenvalue, so it
                // is never counted: fall back instead.
                let strict = FactorParams { on_singular: OnSingular::Error, ..params };
                let shifted = match build(Layout::Shifted, &strict) {
                    Ok(f) => f,
                    Err(HinvError::Singular { .. }) | Err(HinvError::Overflow { .. }) => {
                        return build(Layout::Interleaved, &params)
                    }
                    Err(e) => return Err(e),
                };
                let probe = shifted.probe_backward_error()?;
                if probe <= 64.0 * f64::EPSILON {
                    return Ok(shifted);
                }
                // Dropped first so that two factorizations never coexist (the
                // memory limit counts one); rebuilt in the rare case where
                // ALGORITHM.md's layout does no better.
                drop(shifted);
                match build(Layout::Interleaved, &params) {
                    Ok(other) if other.probe_backward_error()? < probe => Ok(other),
                    _ => build(Layout::Shifted, &strict),
                }
            }
        }
    }

    /// Backward error of a raw solve with a fixed, structureless right-hand
    /// side: a cheap measure of how much the pivots grew.
    fn probe_backward_error(&self) -> Result<f64> {
        let n = self.num_params();
        let g = Mat::from_fn(n, 1, |i, _| 1.0 + 0.5 * ((i as f64 * 0.754_877_666_2).fract() - 0.5));
        let x = match self.solve_raw(g.as_ref()) {
            Ok(x) => x,
            Err(HinvError::Overflow { .. }) | Err(HinvError::Factor(_)) => return Ok(f64::INFINITY),
            Err(e) => return Err(e),
        };
        Ok(self.residual(g.as_ref(), x.as_ref())?.1)
    }

    /// The interleaving of the lifted system this factorization used.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The `eps` of this factorization.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.derivs.param_sizes.iter().sum()
    }

    /// Size of the lifted system (`sum_l p_l + 2 a_l`).
    pub fn lifted_dim(&self) -> usize {
        self.ldlt.dim()
    }

    /// The underlying block factorization (per-block diagnostics, pivots).
    pub fn block_ldlt(&self) -> &BlockLdlt {
        &self.ldlt
    }

    /// `(H + eps I)^-1 g` for one vector, refined as the policy says.
    pub fn solve(&self, g: &[f64]) -> Result<Vec<f64>> {
        Ok(self.solve_with_report(g)?.0)
    }

    /// [`Factorization::solve`], also reporting the backward errors.
    pub fn solve_with_report(&self, g: &[f64]) -> Result<(Vec<f64>, SolveReport)> {
        let (x, rep) = self.solve_many_with_report(MatRef::from_column_major_slice(g, g.len(), 1))?;
        Ok((x.col(0).iter().copied().collect(), rep))
    }

    /// `(H + eps I)^-1 G` for a matrix of right-hand-side columns, in one
    /// sweep of the factors per refinement step.
    pub fn solve_many(&self, g: MatRef<'_, f64>) -> Result<Mat<f64>> {
        Ok(self.solve_many_with_report(g)?.0)
    }

    /// [`Factorization::solve_many`], also reporting the worst column's
    /// backward errors.
    pub fn solve_many_with_report(&self, g: MatRef<'_, f64>) -> Result<(Mat<f64>, SolveReport)> {
        match self.refinement {
            Refinement::Off => {
                let x = self.solve_raw(g)?;
                Ok((
                    x,
                    SolveReport {
                        iterations: 0,
                        initial_backward_error: f64::NAN,
                        backward_error: f64::NAN,
                        converged: true,
                    },
                ))
            }
            Refinement::Auto { threshold, max_iterations } => self.refine(g, threshold, max_iterations),
        }
    }

    /// Solves, then refines with the exact HVP until every column's
    /// backward error is at most `target`, at most `max_iterations` steps,
    /// stopping early when a step no longer helps.
    pub fn solve_refined(&self, g: &[f64], target: f64, max_iterations: usize) -> Result<(Vec<f64>, SolveReport)> {
        let (x, rep) = self.refine(MatRef::from_column_major_slice(g, g.len(), 1), target, max_iterations)?;
        Ok((x.col(0).iter().copied().collect(), rep))
    }

    fn refine(&self, g: MatRef<'_, f64>, target: f64, max_iterations: usize) -> Result<(Mat<f64>, SolveReport)> {
        if !(target.is_finite() && target >= 0.0) {
            return Err(HinvError::InvalidEps { what: "the refinement target", value: target });
        }
        let mut x = self.solve_raw(g)?;
        let (mut r, mut be) = self.residual(g, x.as_ref())?;
        let initial = be;
        let mut iterations = 0;
        while be > target && iterations < max_iterations {
            let dx = self.solve_raw(r.as_ref())?;
            let cand = &x + &dx;
            let (rc, bc) = self.residual(g, cand.as_ref())?;
            iterations += 1;
            // Accept a step only if it shrinks the residual itself: the
            // normwise backward error also shrinks when `x` merely grows,
            // which is how a diverging refinement looks.
            if rc.norm_l2().partial_cmp(&r.norm_l2()) != Some(std::cmp::Ordering::Less) {
                break;
            }
            (x, r, be) = (cand, rc, bc);
        }
        if be.partial_cmp(&UNTRUSTED_BACKWARD_ERROR) != Some(std::cmp::Ordering::Less) {
            return Err(HinvError::IllConditioned { eps: self.eps, backward_error: be, iterations });
        }
        let converged = be <= target;
        Ok((x, SolveReport { iterations, initial_backward_error: initial, backward_error: be, converged }))
    }

    /// `R = G - (H + eps I) X` and the largest column backward error.
    fn residual(&self, g: MatRef<'_, f64>, x: MatRef<'_, f64>) -> Result<(Mat<f64>, f64)> {
        let hx = hvp_many(&self.derivs, x)?;
        let r = Mat::from_fn(g.nrows(), g.ncols(), |i, j| g[(i, j)] - hx[(i, j)] - self.eps * x[(i, j)]);
        let norm_op = self.operator_norm()?;
        let mut worst: f64 = 0.0;
        for j in 0..g.ncols() {
            let denom = norm_op * x.col(j).norm_l2() + g.col(j).norm_l2();
            let be = if denom > 0.0 { r.col(j).norm_l2() / denom } else { 0.0 };
            worst = worst.max(be);
        }
        Ok((r, worst))
    }

    /// `||H + eps I||_2`, estimated once by power iteration with the HVP.
    fn operator_norm(&self) -> Result<f64> {
        if let Some(&n) = self.norm_estimate.get() {
            return Ok(n);
        }
        let n = operator_norm_estimate(&self.derivs, self.eps)?;
        Ok(*self.norm_estimate.get_or_init(|| n))
    }

    /// The raw block solve, without refinement.
    pub fn solve_raw(&self, g: MatRef<'_, f64>) -> Result<Mat<f64>> {
        let p = self.num_params();
        check_vector("the right-hand side", g, p)?;
        let k = g.ncols();
        let sizes = &self.derivs.param_sizes;
        let poffs = blockmat::offsets(sizes);
        let mut rhs = Mat::zeros(self.ldlt.dim(), k);
        for (l, &pl) in sizes.iter().enumerate() {
            rhs.as_mut().subrows_mut(self.lifted_offsets[l], pl).copy_from(g.subrows(poffs[l], pl));
        }
        self.ldlt.solve_in_place(rhs.as_mut()).map_err(|e| map_singular(e, self.eps))?;
        let mut x = Mat::zeros(p, k);
        for (l, &pl) in sizes.iter().enumerate() {
            x.as_mut().subrows_mut(poffs[l], pl).copy_from(rhs.as_ref().subrows(self.lifted_offsets[l], pl));
        }
        if let Some((index, value)) = first_non_finite(x.as_ref()) {
            // Overflow inside the sweeps: never hand back a NaN as a result.
            return Err(HinvError::Overflow { what: format!("entry {index} of the computed solution"), value });
        }
        Ok(x)
    }

    /// `log|det(H + eps I)|`, accurate to about `eps_mach * cond(H + eps I)`
    /// relative to its magnitude (docs/numerics.md), `-inf` when singular.
    ///
    /// The block pivots already hold a log-determinant
    /// ([`Factorization::block_log_abs_det`]), but block elimination cannot
    /// pivot across layers, and where the partial products of the network
    /// are ill-conditioned its Schur complements grow: that sum then loses
    /// up to `1e-13 * cond` (relative). Refinement repairs solves, not
    /// determinants. So the first call runs Gaussian elimination with
    /// partial pivoting across blocks on the equilibrated lifted system
    /// ([`tridiag::log_det_pivoted`]): about the factorization's time
    /// (measured 0.9-1.7x, median 1.1x, in docs/benchmarks.md), linear in
    /// depth, no memory kept; later calls are free.
    pub fn log_abs_det(&self) -> f64 {
        self.pivoted().log_abs
    }

    /// `log|det(H + eps I)|` as the sum over the block pivots of the
    /// factorization: free, exact in exact arithmetic, but only accurate to
    /// about `1e-13 * cond(H + eps I)` (relative) where the Schur complements
    /// grow; see [`Factorization::log_abs_det`].
    pub fn block_log_abs_det(&self) -> f64 {
        self.ldlt.log_abs_det()
    }

    /// The sign of `det(H + eps I)` (0 when singular), from the same pivoted
    /// elimination as [`Factorization::log_abs_det`]. It equals
    /// `(-1)^negative` of [`Factorization::inertia`] unless an eigenvalue is
    /// so close to `-eps` that the block pivots misjudged its side, or the
    /// block elimination (factored with `allow_singular`) met an exact zero
    /// pivot that is a breakdown rather than a zero eigenvalue: the pivoted
    /// elimination is the one to trust for the determinant. A singular
    /// `H + eps I` gives 0 here and `-inf` from `log_abs_det` when the
    /// pivoted elimination meets an exactly zero column (dead units, zero
    /// layers), else a huge negative log-determinant, as a dense LU would.
    pub fn det_sign(&self) -> f64 {
        self.pivoted().sign
    }

    /// The pivoted determinant of `H + eps I`, computed once.
    fn pivoted(&self) -> SignedLogDet {
        *self.pivoted_det.get_or_init(|| {
            let from_blocks = || {
                let i = self.inertia();
                let sign = match (i.zero, i.negative % 2) {
                    (0, 0) => 1.0,
                    (0, _) => -1.0,
                    _ => 0.0,
                };
                SignedLogDet { log_abs: self.ldlt.log_abs_det(), sign }
            };
            // The interleaving of ALGORITHM.md whatever the factorization
            // used: partial pivoting does not depend on the block grouping.
            let det = lifted_tridiag_with(&self.derivs, self.eps, Layout::Interleaved)
                .ok()
                .and_then(|k| tridiag::log_det_pivoted(&k, self.params.par, self.params.symmetry_tol).ok());
            match det {
                // det K = (-1)^(sum a_l) det(H + eps I): the (y, z) part of
                // the lifted system is [[P^T E P, -M^T], [-M, 0]] with
                // det M = 1.
                Some(d) if !d.log_abs.is_nan() => {
                    SignedLogDet { log_abs: d.log_abs, sign: if self.lifted_extra % 2 == 1 { -d.sign } else { d.sign } }
                }
                // The input was validated when it was factored, so this is
                // out of reach; the block pivots are the next best answer.
                _ => from_blocks(),
            }
        })
    }

    /// The inertia of `H + eps I`. By Haynsworth's theorem the lifted system
    /// has `sum_l a_l` more positive and more negative eigenvalues than
    /// `H + eps I`, which are subtracted here.
    pub fn inertia(&self) -> Inertia {
        let k = self.ldlt.inertia();
        let negative = k.negative.saturating_sub(self.lifted_extra);
        let zero = k.zero;
        Inertia { positive: self.num_params().saturating_sub(negative + zero), negative, zero }
    }
}

/// `||H + eps I||_2` estimated by at most 8 power iterations with the HVP,
/// from a fixed start vector. Power iteration approaches the norm from
/// below, so a short run can only overstate the backward error (and refine
/// once more than needed), never hide one; a factor of two either way does
/// not matter for a threshold at 64 eps_mach.
pub(crate) fn operator_norm_estimate(d: &Derivatives, eps: f64) -> Result<f64> {
    let n: usize = d.param_sizes.iter().sum();
    // A deterministic start with no special structure.
    let mut v = Mat::from_fn(n, 1, |i, _| 1.0 + 0.5 * ((i as f64 * 0.618_033_988_7).fract() - 0.5));
    let mut est = 0.0;
    for _ in 0..8 {
        let nv = v.col(0).norm_l2();
        if nv == 0.0 || !nv.is_finite() {
            break;
        }
        v *= faer::Scale(1.0 / nv);
        let hv = hvp_many(d, v.as_ref())?;
        let w = &hv + &(&v * faer::Scale(eps));
        let new = w.col(0).norm_l2();
        let done = (new - est).abs() <= 1e-2 * new;
        est = new;
        v = w;
        if done {
            break;
        }
    }
    Ok(est)
}

fn first_non_finite(m: MatRef<'_, f64>) -> Option<(usize, f64)> {
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            if !m[(i, j)].is_finite() {
                return Some((j * m.nrows() + i, m[(i, j)]));
            }
        }
    }
    None
}

fn map_singular(e: TridiagError, eps: f64) -> HinvError {
    match e {
        TridiagError::Singular { block, pivot, magnitude, .. } if magnitude.is_nan() => HinvError::Overflow {
            what: format!("pivot {pivot} of block {block} of the factorization (layer {})", block + 1),
            value: magnitude,
        },
        TridiagError::Singular { block, pivot, magnitude, .. } => {
            HinvError::Singular { eps, block, layer: block + 1, pivot, magnitude }
        }
        other => HinvError::Factor(other),
    }
}
