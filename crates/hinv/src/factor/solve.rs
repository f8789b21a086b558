//! Solves with the factorization, refined with the exact Hessian-vector
//! product until the backward error meets the tolerance: first with the
//! block LDLᵀ, then, if that stops contracting (Schur complements that grew
//! beyond `cond ≈ 1e8`, or a breakdown), with the elimination pivoted
//! across blocks, which is as accurate as a dense LU.

use blockmat::reduce::norm_l2;
use faer::{Mat, MatRef};

use super::{Factorization, SolveMethod, SolveOptions, SolveReport};
use crate::curvature::hvp_many;
use crate::error::{check_vector, HinvError, Result};

/// A block-LDLᵀ refinement step must shrink the residual at least this
/// much to go on: a slower contraction means its errors are of the order
/// of the solution's, and the pivoted elimination does better. The pivoted
/// elimination, the last resort, goes on while the residual shrinks at all
/// (up to `max_refinements`): nothing better comes after it.
const LDLT_MIN_CONTRACTION: f64 = 0.5;

/// Refinement aims this many times below the tolerance while its steps
/// contract: a backward error just under 64 eps_mach still allows a forward
/// error of ~128 eps_mach cond, and one more cheap step (an HVP and a solve
/// with the factors already there) usually brings it to a few eps_mach,
/// where the forward error is that of a dense LU (differential test: up to
/// 130 u cond at the tolerance itself).
const REFINE_MARGIN: f64 = 16.0;

/// A solution and how it was obtained.
#[derive(Debug, Clone)]
pub struct Solution {
    /// The solution columns, one per right-hand side.
    pub x: Mat<f64>,
    /// Which elimination, how many refinement steps, which backward error.
    pub report: SolveReport,
}

/// The best iterate of a refinement and its residual.
struct Iterate {
    x: Mat<f64>,
    r: Mat<f64>,
    backward_error: f64,
    /// The best lower bound of `||H + eps I||` known when it was scored.
    norm_lower: f64,
}

impl Factorization {
    /// `(H + eps I)^-1 g` for one vector, to a backward error of at most
    /// `64 eps_mach` ([`SolveOptions::default`]).
    ///
    /// # Errors
    /// [`HinvError::IllConditioned`] when no elimination reaches the
    /// tolerance (`H + eps I` is numerically singular); shape and
    /// finiteness errors of the right-hand side.
    pub fn solve(&self, g: &[f64]) -> Result<Vec<f64>> {
        let s = self.solve_with(MatRef::from_column_major_slice(g, g.len(), 1), &SolveOptions::default())?;
        Ok(s.x.col(0).iter().copied().collect())
    }

    /// `(H + eps I)^-1 G` for a matrix of right-hand-side columns, with
    /// explicit accuracy options and a report.
    ///
    /// The block LDLᵀ solves first and is refined with the exact HVP while
    /// each step at least halves the residual; if the tolerance is not met
    /// (or the block elimination broke down), the elimination pivoted
    /// across blocks takes over from the best iterate, refined the same
    /// way. A solution that misses the tolerance is an error unless
    /// `opts.accept_inexact`.
    pub fn solve_with(&self, g: MatRef<'_, f64>, opts: &SolveOptions) -> Result<Solution> {
        if !(opts.tolerance.is_finite() && opts.tolerance > 0.0) {
            return Err(HinvError::InvalidNumber {
                what: "the solve tolerance",
                value: opts.tolerance,
                expected: "a finite backward error above 0 (e.g. 1.4e-14, the default)",
            });
        }
        check_vector("the right-hand side", g, self.num_params())?;
        let mut refinements = 0;
        let mut initial = f64::NAN;
        let first = if self.ldlt_broke_down() {
            None
        } else {
            match self.solve_ldlt(g) {
                Ok(x) => Some(x),
                // Pivots so near zero that the sweeps overflow: the block
                // elimination failed here, as when it broke down, and the
                // pivoted one decides (a solution or a refusal).
                Err(HinvError::Overflow { .. }) => None,
                Err(e) => return Err(e),
            }
        };
        let block = match first {
            None => None,
            Some(x) => {
                let it = self.iterate(g, x, 0.0)?;
                initial = it.backward_error;
                let (it, steps) = self.refine(g, it, opts, LDLT_MIN_CONTRACTION, |r| self.solve_ldlt(r))?;
                refinements += steps;
                Some(self.rescore(g, it, opts.tolerance)?)
            }
        };
        // A block iterate within the tolerance but stalled above the
        // refinement's aim gets the pivoted elimination's correction when
        // that costs about what the block factorization did (the
        // interleaved elimination factors the same blocks): a lifted system
        // far worse conditioned than `H + eps I` (`H = 0`, tiny `eps`)
        // stalls the block refinement at a few `u`, short of a
        // backward-stable solve's forward error.
        let stalled = |b: &Iterate| {
            b.backward_error > opts.tolerance / REFINE_MARGIN && self.elimination() == super::Elimination::Interleaved
        };
        let (it, method) = match block {
            Some(b) if b.backward_error <= opts.tolerance && !stalled(&b) => (b, SolveMethod::BlockLdlt),
            block => {
                let lu = self.pivoted_lu().and_then(|lu| self.singular_error(lu).map_or(Ok(lu), Err));
                let (lu, block) = match (lu, block) {
                    (Ok(lu), block) => (lu, block),
                    // A stalled block answer within the tolerance stands on its own.
                    (Err(_), Some(b)) if b.backward_error <= opts.tolerance => {
                        return self.report(b, SolveMethod::BlockLdlt, refinements, initial, opts);
                    }
                    (Err(e), _) => return Err(e),
                };
                let scale = self.lu_scale()?;
                let solve_lu = |r: MatRef<'_, f64>| self.solve_lifted(r, scale, |m| lu.solve_in_place(m));
                let start = match block {
                    Some(b) => match solve_lu(b.r.as_ref()) {
                        // One correction from the best block iterate.
                        Ok(dx) => {
                            let cand = self.iterate(g, &b.x + &dx, b.norm_lower)?;
                            refinements += 1;
                            if cand.backward_error < b.backward_error {
                                cand
                            } else {
                                b
                            }
                        }
                        // An overflowing correction is a failed step.
                        Err(HinvError::Overflow { .. }) => b,
                        Err(e) => return Err(e),
                    },
                    None => match solve_lu(g) {
                        Ok(x) => {
                            let it = self.iterate(g, x, 0.0)?;
                            initial = it.backward_error;
                            it
                        }
                        // Neither elimination gives a finite solution: `H + eps I`
                        // is numerically singular (differential test, seed 3
                        // case 1650: eps = 0, cond 5e20, a NaN from both).
                        Err(HinvError::Overflow { .. }) => {
                            return Err(HinvError::IllConditioned {
                                eps: self.eps,
                                backward_error: f64::INFINITY,
                                tolerance: opts.tolerance,
                                iterations: refinements,
                            })
                        }
                        Err(e) => return Err(e),
                    },
                };
                let (it, steps) = self.refine(g, start, opts, 1.0, solve_lu)?;
                refinements += steps;
                (self.rescore(g, it, opts.tolerance)?, SolveMethod::PivotedLu)
            }
        };
        self.report(it, method, refinements, initial, opts)
    }

    /// The solution with its report, or [`HinvError::IllConditioned`] when
    /// it misses the tolerance and inexact answers are not accepted.
    fn report(
        &self,
        it: Iterate,
        method: SolveMethod,
        refinements: usize,
        initial: f64,
        opts: &SolveOptions,
    ) -> Result<Solution> {
        let within_tolerance = it.backward_error <= opts.tolerance;
        if !within_tolerance && !opts.accept_inexact {
            return Err(HinvError::IllConditioned {
                eps: self.eps,
                backward_error: it.backward_error,
                tolerance: opts.tolerance,
                iterations: refinements,
            });
        }
        let report = SolveReport {
            method,
            refinements,
            initial_backward_error: initial,
            backward_error: it.backward_error,
            within_tolerance,
        };
        Ok(Solution { x: it.x, report })
    }

    /// Refines `it` with `solve` while the backward error is above the
    /// tolerance divided by [`REFINE_MARGIN`] and each step shrinks the
    /// residual by at least the factor `min_contraction`.
    fn refine(
        &self,
        g: MatRef<'_, f64>,
        mut it: Iterate,
        opts: &SolveOptions,
        min_contraction: f64,
        solve: impl Fn(MatRef<'_, f64>) -> Result<Mat<f64>>,
    ) -> Result<(Iterate, usize)> {
        let mut steps = 0;
        let aim = opts.tolerance / REFINE_MARGIN;
        while it.backward_error > aim && steps < opts.max_refinements {
            let dx = match solve(it.r.as_ref()) {
                Ok(dx) => dx,
                // An overflowing correction is a failed step, not a result.
                Err(HinvError::Overflow { .. }) => break,
                Err(e) => return Err(e),
            };
            let cand = self.iterate(g, &it.x + &dx, it.norm_lower)?;
            steps += 1;
            // Accept a step only if it shrinks the residual itself: the
            // normwise backward error also shrinks when `x` merely grows,
            // which is how a diverging refinement looks.
            let (old, new) = (norm_l2(it.r.as_ref()), norm_l2(cand.r.as_ref()));
            if new.partial_cmp(&old) != Some(std::cmp::Ordering::Less) {
                break;
            }
            let contracting = new <= min_contraction * old;
            it = cand;
            if !contracting {
                break;
            }
        }
        Ok((it, steps))
    }

    /// `x` with its residual `G - (H + eps I) X` and largest column
    /// backward error, scored with the best lower bound of
    /// `||H + eps I||` at hand: the power-iteration estimate if it was
    /// already needed, else (and at least) `||(H + eps I) x_j|| / ||x_j||`
    /// over the columns and `lower`. A lower bound of the norm overstates
    /// the backward error, so a solution it accepts is accepted; only one
    /// it would reject is scored again with the estimate ([`Self::rescore`]),
    /// which saves most solves the 8 products with `H` of the estimate.
    fn iterate(&self, g: MatRef<'_, f64>, x: Mat<f64>, lower: f64) -> Result<Iterate> {
        let hx = hvp_many(&self.derivs, x.as_ref())?;
        let r = Mat::from_fn(g.nrows(), g.ncols(), |i, j| g[(i, j)] - hx[(i, j)] - self.eps * x[(i, j)]);
        let mut norm_lower = lower.max(self.norm.get().copied().unwrap_or(0.0));
        for j in 0..x.ncols() {
            let nx = norm_l2(x.col(j).as_mat());
            if nx > 0.0 {
                norm_lower = norm_lower.max(norm_l2((g.col(j) - r.col(j)).as_mat()) / nx);
            }
        }
        let backward_error = backward_error(g, x.as_ref(), r.as_ref(), norm_lower);
        Ok(Iterate { x, r, backward_error, norm_lower })
    }

    /// `it` scored with the power-iteration estimate of the norm, when its
    /// backward error (scored with a cheaper lower bound) exceeds
    /// `tolerance`: the verdict must not rest on a loose bound.
    fn rescore(&self, g: MatRef<'_, f64>, it: Iterate, tolerance: f64) -> Result<Iterate> {
        if it.backward_error <= tolerance || self.norm.get().is_some_and(|&n| n <= it.norm_lower) {
            return Ok(it);
        }
        let norm_lower = it.norm_lower.max(self.norm_estimate()?);
        let backward_error = backward_error(g, it.x.as_ref(), it.r.as_ref(), norm_lower);
        Ok(Iterate { backward_error, norm_lower, ..it })
    }

    pub(super) fn solve_ldlt(&self, g: MatRef<'_, f64>) -> Result<Mat<f64>> {
        match &self.engine {
            super::Engine::Interleaved(l) => self.solve_lifted(g, 1.0, |m| l.solve_in_place(m)),
            super::Engine::ParametersFirst(r) => {
                let x = r.solve(g).map_err(|e| super::map_factor_error(e, self.eps))?;
                check_finite(x)
            }
        }
    }

    /// Lifts `scale g` into the interleaved unknowns, solves with `solve`
    /// (factors of the lifted system of `scale (H + eps I)`), and reads the
    /// `x` part back.
    fn solve_lifted(
        &self,
        g: MatRef<'_, f64>,
        scale: f64,
        solve: impl FnOnce(faer::MatMut<'_, f64>) -> std::result::Result<(), tridiag::TridiagError>,
    ) -> Result<Mat<f64>> {
        let (p, k) = (self.num_params(), g.ncols());
        let sizes = &self.derivs.param_sizes;
        let poffs = blockmat::offsets(sizes);
        let mut rhs = Mat::zeros(self.lifted_dim(), k);
        for (l, &pl) in sizes.iter().enumerate() {
            let mut dst = rhs.as_mut().subrows_mut(self.lifted_offsets[l], pl);
            dst.copy_from(g.subrows(poffs[l], pl));
            if scale != 1.0 {
                dst *= faer::Scale(scale);
            }
        }
        solve(rhs.as_mut()).map_err(|e| super::map_factor_error(e, self.eps))?;
        let mut x = Mat::zeros(p, k);
        for (l, &pl) in sizes.iter().enumerate() {
            x.as_mut().subrows_mut(poffs[l], pl).copy_from(rhs.as_ref().subrows(self.lifted_offsets[l], pl));
        }
        check_finite(x)
    }
}

/// The largest column backward error `||r_j|| / (norm ||x_j|| + ||g_j||)`
/// (infinite for a NaN), of either route's solves.
pub(crate) fn backward_error(g: MatRef<'_, f64>, x: MatRef<'_, f64>, r: MatRef<'_, f64>, norm: f64) -> f64 {
    let mut worst: f64 = 0.0;
    for j in 0..g.ncols() {
        let denom = norm * norm_l2(x.col(j).as_mat()) + norm_l2(g.col(j).as_mat());
        let be = if denom > 0.0 { norm_l2(r.col(j).as_mat()) / denom } else { 0.0 };
        // A NaN backward error must never pass for a small one.
        worst = if be.is_nan() { f64::INFINITY } else { worst.max(be) };
    }
    worst
}

/// Overflow inside the sweeps: never hand back a NaN as a result.
fn check_finite(x: Mat<f64>) -> Result<Mat<f64>> {
    if let Some((index, value)) = first_non_finite(x.as_ref()) {
        return Err(HinvError::Overflow { what: crate::OverflowSite::Solution { index }, value });
    }
    Ok(x)
}

/// `||H + eps I||_2` estimated by at most 8 power iterations with the HVP,
/// from a fixed start vector. Power iteration approaches the norm from
/// below, so a short run can only overstate the backward error (and refine
/// once more than needed), never hide one.
pub(crate) fn operator_norm_estimate(d: &netgraph::Derivatives, eps: f64) -> Result<f64> {
    let n: usize = d.param_sizes.iter().sum();
    // A deterministic start with no special structure.
    let mut v = Mat::from_fn(n, 1, |i, _| 1.0 + 0.5 * ((i as f64 * 0.618_033_988_7).fract() - 0.5));
    let mut est = 0.0;
    for _ in 0..8 {
        let nv = norm_l2(v.as_ref());
        if nv == 0.0 || !nv.is_finite() {
            break;
        }
        v *= faer::Scale(1.0 / nv);
        let hv = hvp_many(d, v.as_ref())?;
        let w = &hv + &(&v * faer::Scale(eps));
        let new = norm_l2(w.as_ref());
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
