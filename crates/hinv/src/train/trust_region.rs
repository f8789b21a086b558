//! The exact trust-region method: each step solves
//! `min g.p + p.H p / 2, ||p|| <= Delta` exactly
//! ([`Curvature::trust_region_step_for`], Moré–Sorensen with the
//! positive-definiteness test by inertia and the hard case), and the
//! radius follows the ratio test.

use std::time::Instant;

use netgraph::Params;

use super::newton::ratio;
use super::optim::{check_setting, dot, gradient_and_curvature, uncertain_count_event, Optimizer, StepInfo, StepInput};
use crate::curvature::Curvature;
use crate::error::{HinvError, Result};
use crate::trust_region::{StepKind, TrustRegionOptions};

/// The radius after a trial step of ratio `rho` and length `step_norm`
/// (the textbook rule, Nocedal and Wright, Algorithm 4.1): a quarter of the
/// step below `rho = 1/4`, doubled (up to `max`) above `3/4` when the step
/// reached the boundary, unchanged otherwise.
pub fn radius_update(radius: f64, rho: f64, step_norm: f64, max: f64) -> f64 {
    if rho < 0.25 || rho.is_nan() {
        (0.25 * step_norm.min(radius)).max(1e-12)
    } else if rho > 0.75 && step_norm >= 0.99 * radius {
        (2.0 * radius).min(max)
    } else {
        radius
    }
}

/// Exact trust-region steps on the curvature batch's Hessian with the
/// mini-batch gradient; `x + p` is taken when `rho > 0`. The boundary is
/// met to 1% (the library's default, 1e-12, is for the subproblem alone;
/// the model here is only a mini-batch's); `lambda_min` keeps the
/// library's accuracy, which its certificate needs. The CSV's
/// damping column holds the radius `Delta`, and the negative-eigenvalue
/// column the certified count of `H`'s negative eigenvalues (one more
/// factorization per step, timed with the solve).
///
/// A step takes seconds (`lambda_min` by shift-invert Lanczos, then the
/// secular iteration, each solve exact). When the run's budget
/// ([`StepInput::deadline`]) leaves less time than the previous step's
/// subproblem took, the subproblem's factorizations and solves are capped
/// in proportion to the time left; an unconverged subproblem then returns
/// its best iterate or the Cauchy point (both safeguarded by the ratio
/// test), and the event log says so.
#[derive(Debug, Clone)]
pub struct TrustRegion {
    radius: f64,
    max_radius: f64,
    opts: TrustRegionOptions,
    /// What the last exact subproblem spent: seconds, factorizations, solves.
    last_cost: Option<(f64, usize, usize)>,
}

impl TrustRegion {
    /// Starts from radius `radius > 0`; the radius never exceeds `100 radius`.
    pub fn new(radius: f64) -> Result<TrustRegion> {
        check_setting("the initial radius", radius, radius > 0.0)?;
        let opts = TrustRegionOptions { tolerance: 1e-2, ..TrustRegionOptions::default() };
        Ok(TrustRegion { radius, max_radius: 100.0 * radius, opts, last_cost: None })
    }

    /// The current radius.
    pub fn radius(&self) -> f64 {
        self.radius
    }

    /// The subproblem's options for a step that must end by `deadline`:
    /// unchanged when the time left covers what the last subproblem took,
    /// otherwise its factorization and solve budgets scaled down to the
    /// share of it that fits (at least one of each). Returns the options
    /// and, when capped, the fraction.
    fn options_until(&self, deadline: Option<Instant>, now: Instant) -> (TrustRegionOptions, Option<f64>) {
        let (Some(deadline), Some((secs, factorizations, solves))) = (deadline, self.last_cost) else {
            return (self.opts.clone(), None);
        };
        let left = deadline.saturating_duration_since(now).as_secs_f64();
        if left >= secs {
            return (self.opts.clone(), None);
        }
        let fraction = left / secs;
        let cap = |spent: usize, max: usize| ((fraction * spent as f64).floor() as usize).clamp(1, max);
        let mut o = self.opts.clone();
        o.max_factorizations = cap(factorizations, o.max_factorizations);
        o.spectrum.max_factorizations = cap(factorizations, o.spectrum.max_factorizations);
        o.spectrum.max_solves = cap(solves, o.spectrum.max_solves);
        (o, Some(fraction))
    }
}

/// The step taken: the exact one, or the Cauchy point (`kind: None`).
struct Step {
    p: Vec<f64>,
    step_norm: f64,
    model_decrease: f64,
    kind: Option<StepKind>,
    lambda: f64,
    converged: bool,
    optimality_residual: f64,
}

/// The minimizer of the model along `-g` within the region.
fn cauchy_point(curv: &Curvature, g: &[f64], radius: f64) -> Result<Step> {
    let gn = dot(g, g).sqrt();
    let ghg = if gn > 0.0 { dot(g, &curv.hvp(g)?) } else { 0.0 };
    let tau = if ghg <= 0.0 { 1.0 } else { (gn.powi(3) / (radius * ghg)).min(1.0) };
    let a = if gn > 0.0 { tau * radius / gn } else { 0.0 };
    let p: Vec<f64> = g.iter().map(|gi| -a * gi).collect();
    let model_decrease = a * gn * gn - 0.5 * a * a * ghg;
    Ok(Step {
        p,
        step_norm: a * gn,
        model_decrease,
        kind: None,
        lambda: f64::NAN,
        converged: true,
        optimality_residual: f64::NAN,
    })
}

impl Optimizer for TrustRegion {
    fn name(&self) -> String {
        format!("tr(delta0={})", self.radius)
    }
    fn uses_curvature(&self) -> bool {
        true
    }
    fn step(&mut self, input: &StepInput<'_>, params: &mut Params) -> Result<StepInfo> {
        let (loss, g, curv, mut times) = gradient_and_curvature(input, params, crate::CurvatureKind::Hessian)?;

        let mut info = StepInfo { batch_loss: loss, ..StepInfo::default() };
        let radius = self.radius;
        let t = Instant::now();
        let negative = curv.count_eigenvalues_below(0.0);
        let (opts, capped) = self.options_until(input.deadline, Instant::now());
        if let Some(fraction) = capped {
            info.events.push(format!(
                "the time budget left {:.0}% of the last subproblem's time: at most {} factorizations and {} solves",
                100.0 * fraction,
                opts.max_factorizations,
                opts.spectrum.max_solves
            ));
        }
        let t_sub = Instant::now();
        let solved = curv.trust_region_step_for(&g, radius, &opts);
        if let Ok(s) = &solved {
            if capped.is_none() {
                self.last_cost = Some((t_sub.elapsed().as_secs_f64(), s.factorizations, s.solves));
            }
        }
        times.solve += t.elapsed().as_secs_f64();
        if let Ok(c) = negative {
            info.negative_eigenvalues = Some(c.count);
            if c.uncertain > 0 {
                info.events.push(uncertain_count_event("H", c.count, c.uncertain, curv.num_params(), None));
            }
        }
        let s = match solved {
            Ok(s) => Step {
                p: s.p,
                step_norm: s.step_norm,
                model_decrease: s.model_decrease,
                kind: Some(s.kind),
                lambda: s.lambda,
                converged: s.converged,
                optimality_residual: s.optimality_residual,
            },
            Err(
                e @ (HinvError::Singular { .. } | HinvError::IllConditioned { .. } | HinvError::Uncertified { .. }),
            ) => {
                // The exact step is not available (a singular H whose
                // lambda_min = 0 is a cluster, for instance); the Cauchy
                // point still gives the decrease the method's convergence
                // needs, for one HVP.
                let t = Instant::now();
                let cauchy = cauchy_point(&curv, &g, radius)?;
                times.solve += t.elapsed().as_secs_f64();
                info.events.push(format!("{e}; the Cauchy point is taken instead"));
                cauchy
            }
            Err(e) => return Err(e),
        };
        if s.kind == Some(StepKind::HardCase) {
            info.events.push(format!(
                "hard case at Delta = {radius:.3e}: lambda = -lambda_min = {:.3e}, step completed along its eigenvector",
                s.lambda
            ));
        }
        if !s.converged {
            info.events.push(format!(
                "the subproblem did not converge at Delta = {radius:.3e} (residual {:.2e}); best of its iterate and the Cauchy point taken",
                s.optimality_residual
            ));
        }
        let mut trial = params.clone();
        trial.as_mut_slice().iter_mut().zip(&s.p).for_each(|(x, pi)| *x += pi);
        let t = Instant::now();
        let new_loss = input.net.loss(&trial, input.batch)?;
        times.gradient += t.elapsed().as_secs_f64();
        let rho = ratio(loss - new_loss, s.model_decrease);
        self.radius = radius_update(radius, rho, s.step_norm, self.max_radius);
        if rho > 0.0 {
            *params = trial;
            info.step_norm = s.step_norm;
        } else {
            info.rejected = 1;
        }
        info.damping = Some(self.radius);
        info.times = times;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_time_left_caps_the_subproblem_in_proportion() {
        let mut tr = TrustRegion::new(1.0).unwrap();
        let now = Instant::now();
        let soon = Some(now + Duration::from_secs(5));
        // No budget, or no step measured yet: the options as they are.
        assert_eq!(tr.options_until(None, now).1, None);
        assert_eq!(tr.options_until(soon, now).1, None);
        tr.last_cost = Some((10.0, 12, 60));
        assert_eq!(tr.options_until(Some(now + Duration::from_secs(11)), now).1, None, "it fits");
        let (o, f) = tr.options_until(soon, now);
        assert_eq!(f, Some(0.5));
        assert_eq!((o.max_factorizations, o.spectrum.max_factorizations, o.spectrum.max_solves), (6, 6, 30));
        // Never above the defaults, never below one of each.
        tr.last_cost = Some((10.0, 100, 1000));
        let (o, _) = tr.options_until(soon, now);
        assert_eq!((o.max_factorizations, o.spectrum.max_factorizations, o.spectrum.max_solves), (20, 50, 80));
        let (o, f) = tr.options_until(Some(now), now + Duration::from_secs(1));
        assert_eq!(f, Some(0.0));
        assert_eq!((o.max_factorizations, o.spectrum.max_factorizations, o.spectrum.max_solves), (1, 1, 1));
        // The rest of the options are the optimizer's.
        assert_eq!(o.tolerance, 1e-2);
    }
}
