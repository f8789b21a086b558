//! Hessian-free optimization (Martens 2010): truncated conjugate gradients
//! on damped Hessian-vector products, warm-started, with Martens'
//! stopping rule and Levenberg–Marquardt damping. The products are hinv's
//! exact HVPs on the curvature batch.

use std::time::Instant;

use netgraph::Params;

use super::newton::{ratio, LmRule};
use super::optim::{check_setting, dot, gradient_and_curvature, norm, Optimizer, StepInfo, StepInput};
use crate::error::Result;

/// Hessian-free: `p` approximately solves `(H + lambda I) p = g` by CG
/// from `0.95` times the previous step, for at most `max_cg` products,
/// stopping early on Martens' relative-progress test or at a direction of
/// non-positive curvature (the Hessian, unlike the Gauss–Newton matrix,
/// may be indefinite: CG then returns the iterate reached so far, an event
/// in the log). The step `x - p` is taken when the loss decreases
/// (`rho > 0`), and `lambda` follows [`LmRule::MARTENS`].
#[derive(Debug, Clone)]
pub struct HessianFree {
    lambda: f64,
    max_cg: usize,
    rule: LmRule,
    previous: Vec<f64>,
}

impl HessianFree {
    /// Starts from damping `lambda > 0`, with at most `max_cg >= 1` CG
    /// iterations per step.
    pub fn new(lambda: f64, max_cg: usize) -> Result<HessianFree> {
        check_setting("the initial lambda", lambda, lambda > 0.0)?;
        check_setting("the CG iterations", max_cg as f64, max_cg >= 1)?;
        Ok(HessianFree { lambda, max_cg, rule: LmRule::MARTENS, previous: Vec::new() })
    }
}

/// The result of truncated CG.
struct Cg {
    x: Vec<f64>,
    /// `x . (H + lambda I) x`.
    xax: f64,
    iterations: usize,
    negative_curvature: bool,
}

/// CG for `A x = b` from `x0`, `A = H + lambda I` applied by `op`;
/// Martens' stopping rule on `phi(x) = x.Ax/2 - b.x`.
fn truncated_cg(
    mut op: impl FnMut(&[f64]) -> Result<Vec<f64>>,
    b: &[f64],
    x0: Vec<f64>,
    max_iter: usize,
) -> Result<Cg> {
    let mut x = x0;
    let mut ax = op(&x)?;
    let mut r: Vec<f64> = b.iter().zip(&ax).map(|(bi, ai)| bi - ai).collect();
    let mut d = r.clone();
    let mut rr = dot(&r, &r);
    let mut phis: Vec<f64> = vec![0.5 * dot(&x, &ax) - dot(b, &x)];
    let mut negative_curvature = false;
    let mut iterations = 0;
    let tiny = 1e-12 * norm(b);
    while iterations < max_iter && rr.sqrt() > tiny {
        let ad = op(&d)?;
        let dad = dot(&d, &ad);
        iterations += 1;
        if dad <= 0.0 {
            negative_curvature = true;
            break;
        }
        let alpha = rr / dad;
        x.iter_mut().zip(&d).for_each(|(xi, di)| *xi += alpha * di);
        ax.iter_mut().zip(&ad).for_each(|(ai, adi)| *ai += alpha * adi);
        r.iter_mut().zip(&ad).for_each(|(ri, adi)| *ri -= alpha * adi);
        let rr_new = dot(&r, &r);
        d.iter_mut().zip(&r).for_each(|(di, ri)| *di = ri + (rr_new / rr) * *di);
        rr = rr_new;
        let phi = 0.5 * dot(&x, &ax) - dot(b, &x);
        phis.push(phi);
        // Martens (2010), section 4.4: stop when the last k iterations
        // improved phi by less than k * 5e-4 relative to it.
        let i = phis.len() - 1;
        let k = (i / 10).max(10);
        if i > k && phi < 0.0 && (phi - phis[i - k]) / phi < k as f64 * 5e-4 {
            break;
        }
    }
    let xax = dot(&x, &ax);
    Ok(Cg { x, xax, iterations, negative_curvature })
}

impl Optimizer for HessianFree {
    fn name(&self) -> String {
        format!("hf(lambda0={},cg={})", self.lambda, self.max_cg)
    }
    fn uses_curvature(&self) -> bool {
        true
    }
    fn step(&mut self, input: &StepInput<'_>, params: &mut Params) -> Result<StepInfo> {
        let (loss, g, curv, mut times) = gradient_and_curvature(input, params, crate::CurvatureKind::Hessian)?;

        let lambda = self.lambda;
        let x0 = if self.previous.len() == g.len() {
            self.previous.iter().map(|v| 0.95 * v).collect()
        } else {
            vec![0.0; g.len()]
        };
        let t = Instant::now();
        let op = |v: &[f64]| -> Result<Vec<f64>> {
            let mut hv = curv.hvp(v)?;
            hv.iter_mut().zip(v).for_each(|(h, vi)| *h += lambda * vi);
            Ok(hv)
        };
        let cg = truncated_cg(op, &g, x0, self.max_cg)?;
        times.solve += t.elapsed().as_secs_f64();

        let mut info = StepInfo { batch_loss: loss, ..StepInfo::default() };
        if cg.negative_curvature {
            info.events.push(format!(
                "CG met non-positive curvature of H + lambda I at iteration {} (lambda = {lambda:.3e}); truncated there",
                cg.iterations
            ));
        }
        // Undamped model: g.p - p.H p / 2, with p.H p = p.A p - lambda |p|^2.
        let pp = dot(&cg.x, &cg.x);
        let predicted = dot(&g, &cg.x) - 0.5 * (cg.xax - lambda * pp);
        let mut trial = params.clone();
        trial.as_mut_slice().iter_mut().zip(&cg.x).for_each(|(x, pi)| *x -= pi);
        let t = Instant::now();
        let new_loss = input.net.loss(&trial, input.batch)?;
        times.gradient += t.elapsed().as_secs_f64();
        let rho = ratio(loss - new_loss, predicted);
        self.lambda = self.rule.update(lambda, rho);
        if rho > 0.0 {
            *params = trial;
            info.step_norm = pp.sqrt();
        } else {
            info.rejected = 1;
        }
        self.previous = cg.x;
        info.damping = Some(self.lambda);
        info.times = times;
        Ok(info)
    }
}
