//! Damped Newton with Levenberg–Marquardt adaptation of `eps`: the exact
//! step `(H + eps I) p = g` from hinv's factorization, judged by the ratio
//! of actual to predicted decrease.

use std::time::Instant;

use netgraph::Params;

use super::optim::{
    check_setting, dot, gradient_and_curvature, norm, uncertain_count_event, Optimizer, StepInfo, StepInput,
};
use crate::error::{HinvError, Result};
use crate::{CurvatureKind, FactorOptions};

/// The Levenberg–Marquardt rule: how the damping follows the ratio
/// `rho = actual decrease / predicted decrease` of a trial step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LmRule {
    /// Below this ratio the model is not trusted: damping times `increase`.
    pub low: f64,
    /// Above this ratio the model is good: damping times `decrease`.
    pub high: f64,
    /// Factor (> 1) applied on a poor ratio or a solver failure.
    pub increase: f64,
    /// Factor (< 1) applied on a good ratio.
    pub decrease: f64,
    /// Damping never goes below this.
    pub min: f64,
    /// Nor above this.
    pub max: f64,
}

impl LmRule {
    /// The rule of the damped Newton optimizer: thresholds 1/4 and 3/4,
    /// times 3 on a poor step, halved on a good one, within `[1e-8, 1e8]`.
    pub const NEWTON: LmRule = LmRule { low: 0.25, high: 0.75, increase: 3.0, decrease: 0.5, min: 1e-8, max: 1e8 };
    /// Martens' rule for Hessian-free: times 3/2 and 2/3.
    pub const MARTENS: LmRule =
        LmRule { low: 0.25, high: 0.75, increase: 1.5, decrease: 2.0 / 3.0, min: 1e-8, max: 1e8 };

    /// The damping after a trial step of ratio `rho` (NaN, as for a step
    /// that predicted no decrease, counts as poor).
    pub fn update(&self, damping: f64, rho: f64) -> f64 {
        let d = if rho > self.high {
            damping * self.decrease
        } else if rho >= self.low {
            damping
        } else {
            damping * self.increase
        };
        d.clamp(self.min, self.max)
    }

    /// The damping after the solver refused a system.
    pub fn raise(&self, damping: f64) -> f64 {
        (damping * self.increase).clamp(self.min, self.max)
    }
}

/// `actual / predicted`, `-inf` when the model predicts no decrease (the
/// step is then not taken, whatever the loss does).
pub(crate) fn ratio(actual: f64, predicted: f64) -> f64 {
    if predicted > 0.0 && actual.is_finite() {
        actual / predicted
    } else {
        f64::NEG_INFINITY
    }
}

/// Damped Newton: per step, the gradient `g` on the mini-batch, the
/// curvature on the curvature batch, then up to `max_trials` trials of
/// `x - p` with `(H + eps I) p = g` solved exactly by hinv.
///
/// A trial is judged by `rho = (f(x) - f(x - p)) / (g.p - p.H p / 2)` on
/// the mini-batch; the predicted decrease costs nothing, since
/// `p.H p = g.p - eps |p|^2`. The step is taken when `rho > 0`, and `eps`
/// follows [`LmRule::NEWTON`]. Indefiniteness is handled openly: when
/// `reject_indefinite` is set (the default) a factorization whose inertia
/// shows negative eigenvalues of `H + eps I`, or cannot certify that it has
/// none, is not solved but answered with more damping; a `Singular` or
/// `IllConditioned` system likewise.
/// Each such reaction is an event in the log, and the inertia's negative
/// count is reported with every step.
///
/// [`DampedNewton::gauss_newton`] replaces `H` by the generalized
/// Gauss–Newton matrix (positive semi-definite: every step is a descent
/// direction) and solves by the cheaper of its two exact routes.
#[derive(Debug, Clone)]
pub struct DampedNewton {
    eps: f64,
    rule: LmRule,
    max_trials: usize,
    reject_indefinite: bool,
    kind: CurvatureKind,
}

impl DampedNewton {
    /// Starts from damping `eps > 0`.
    pub fn new(eps: f64) -> Result<DampedNewton> {
        check_setting("the initial eps", eps, eps > 0.0)?;
        Ok(DampedNewton {
            eps,
            rule: LmRule::NEWTON,
            max_trials: 6,
            reject_indefinite: true,
            kind: CurvatureKind::Hessian,
        })
    }

    /// Solves indefinite systems, and systems whose count is not
    /// certified, too, as the original recipe does (the ratio test alone
    /// then guards the step).
    pub fn allow_indefinite(mut self) -> Self {
        self.reject_indefinite = false;
        self
    }

    /// Gauss–Newton steps: `(GGN + eps I) p = g` with the same
    /// Levenberg–Marquardt damping (for cross-entropy, natural-gradient
    /// steps: the GGN is the Fisher).
    pub fn gauss_newton(mut self) -> Self {
        self.kind = CurvatureKind::GaussNewton;
        self
    }

    /// The current damping.
    pub fn eps(&self) -> f64 {
        self.eps
    }
}

impl Optimizer for DampedNewton {
    fn name(&self) -> String {
        let pd = if self.reject_indefinite { "" } else { ",indefinite" };
        match self.kind {
            CurvatureKind::Hessian => format!("newton(eps0={}{pd})", self.eps),
            CurvatureKind::GaussNewton => format!("gn(eps0={})", self.eps),
        }
    }
    fn uses_curvature(&self) -> bool {
        true
    }
    fn step(&mut self, input: &StepInput<'_>, params: &mut Params) -> Result<StepInfo> {
        let (loss, g, curv, mut times) = gradient_and_curvature(input, params, self.kind)?;

        let mut info = StepInfo { batch_loss: loss, ..StepInfo::default() };
        for trial in 0..self.max_trials {
            // Each trial is a factorization; past the run's budget the step
            // ends after the trials made (the next step would not run).
            if trial > 0 && input.deadline.is_some_and(|d| Instant::now() >= d) {
                info.events.push(format!("the time budget ran out after {trial} trial(s): the step ends rejected"));
                break;
            }
            let eps = self.eps;
            let t = Instant::now();
            // The automatic route: the lifted system for the Hessian, the
            // cheaper of lifted and Woodbury for the Gauss–Newton matrix.
            let solved = curv.factor_route(eps, &FactorOptions::default(), None).and_then(|f| {
                let inertia = f.inertia();
                // A count that is not certified (pivots within rounding of
                // zero, or a parity that could not be checked) cannot vouch
                // for a positive definite system, and near-zero pivots
                // would dominate the solve: it is damped like a negative
                // count, which moves the spectrum away from zero.
                if (inertia.negative > 0 || !inertia.is_certified()) && self.reject_indefinite {
                    return Ok((None, inertia));
                }
                f.solve(&g).map(|p| (Some(p), inertia))
            });
            times.solve += t.elapsed().as_secs_f64();
            let matrix = match self.kind {
                CurvatureKind::Hessian => "H + eps I",
                CurvatureKind::GaussNewton => "GGN + eps I",
            };
            let p = match solved {
                Ok((p, inertia)) => {
                    let neg = inertia.negative;
                    let reported = info.negative_eigenvalues;
                    info.negative_eigenvalues = Some(reported.map_or(neg, |n| n.max(neg)));
                    // The log's count is the certified one; where the
                    // factorization cannot certify the count the column
                    // reports (vanishing curvature next to a tiny eps),
                    // the log says so rather than pass it off as exact.
                    if !inertia.is_certified() && reported.is_none_or(|n| neg > n) {
                        let dim = curv.num_params();
                        info.events.push(uncertain_count_event(matrix, neg, inertia.uncertain, dim, Some(eps)));
                    }
                    match p {
                        Some(p) => p,
                        None => {
                            self.eps = self.rule.raise(eps);
                            info.rejected += 1;
                            let why = if inertia.is_certified() {
                                format!("{matrix} has {neg} negative eigenvalue(s) at eps = {eps:.3e}")
                            } else {
                                let (lo, hi) = (neg.saturating_sub(inertia.uncertain), neg + inertia.uncertain);
                                format!(
                                    "{matrix} is not certified positive definite at eps = {eps:.3e} (its negative eigenvalues number {lo}..={})",
                                    hi.min(curv.num_params())
                                )
                            };
                            info.events.push(format!("{why}: eps raised to {:.3e}", self.eps));
                            continue;
                        }
                    }
                }
                Err(e @ (HinvError::Singular { .. } | HinvError::IllConditioned { .. })) => {
                    self.eps = self.rule.raise(eps);
                    info.rejected += 1;
                    info.events.push(format!("{e}; eps raised to {:.3e}", self.eps));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let predicted = 0.5 * (dot(&g, &p) + eps * dot(&p, &p));
            let mut trial = params.clone();
            trial.as_mut_slice().iter_mut().zip(&p).for_each(|(x, pi)| *x -= pi);
            let t = Instant::now();
            let new_loss = input.net.loss(&trial, input.batch)?;
            times.gradient += t.elapsed().as_secs_f64();
            let rho = ratio(loss - new_loss, predicted);
            self.eps = self.rule.update(eps, rho);
            if rho > 0.0 {
                *params = trial;
                info.step_norm = norm(&p);
                break;
            }
            info.rejected += 1;
        }
        info.damping = Some(self.eps);
        info.times = times;
        Ok(info)
    }
}
