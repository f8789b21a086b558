//! The exact trust-region step: `min g^T p + 1/2 p^T H p` subject to
//! `||p|| <= Delta`, by Moré–Sorensen on exact factorizations of `H + lambda I`.
//!
//! The solution is `p = -(H + lambda I)^-1 g` for the `lambda >= max(0,
//! -lambda_min)` at which `||p|| = Delta` (or `lambda = 0` inside the
//! region when `H` is positive definite). Positive definiteness is read off
//! the certified inertia of `H`, never guessed from `g^T H^-1 g > 0`. When
//! `H` is not positive definite, `lambda_min` and its eigenvector(s) `V`
//! come from shift-invert Lanczos ([`Curvature::lambda_min`]) and the
//! step is split along them:
//!
//! `||p(lambda)||^2 = sum_i c_i^2 / (lambda + theta_i)^2 + ||p_perp(lambda)||^2`,
//! `c = V^T g`, `p_perp = -(H + lambda I)^-1 (g - V c)` restricted to `V`'s
//! complement. `p_perp` is smooth down to `lambda = -lambda_min`, so the
//! secular equation `1/||p(lambda)|| = 1/Delta` is solved by Newton with
//! safeguards (monotone from the left) without factoring at a singular
//! matrix, and the hard case (`c = 0`, `||p_perp(-lambda_min)|| < Delta`)
//! is exact: `lambda = -lambda_min`, `p = p_perp + tau v`, `||p|| = Delta`.

use serde::Serialize;

use crate::curvature::Curvature;
use crate::error::{check_vector, HinvError, Result};
use crate::factor::{Factorization, SolveOptions};
use crate::spectrum::lanczos::{axpy, dot, norm};
use crate::spectrum::{Counter, SpectrumOptions};

/// Relative offset of the secular root from `-lambda_min` below which the
/// step is completed as in the hard case.
const HARD_CASE_OFFSET: f64 = 1e-10;

/// Knobs of [`Curvature::trust_region_step`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrustRegionOptions {
    /// A boundary step is accepted when `| ||p|| - Delta | <= tolerance Delta`.
    pub tolerance: f64,
    /// Most factorizations of the secular-equation iteration (the
    /// `lambda_min` computation has its own budget in `spectrum`).
    pub max_factorizations: usize,
    /// Options of the `lambda_min` computation and of every factorization.
    pub spectrum: SpectrumOptions,
}

impl Default for TrustRegionOptions {
    fn default() -> Self {
        TrustRegionOptions { tolerance: 1e-12, max_factorizations: 20, spectrum: SpectrumOptions::default() }
    }
}

/// Where the trust-region solution lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// `H` positive definite and the Newton step `-H^-1 g` inside the region (`lambda = 0`).
    Interior,
    /// On the boundary, `lambda > max(0, -lambda_min)`.
    Boundary,
    /// The hard case: `g` (numerically) orthogonal to the eigenvectors of
    /// `lambda_min < 0`, `lambda = -lambda_min`, and the step completed
    /// to the boundary along an eigenvector of `lambda_min`.
    HardCase,
}

/// The exact trust-region step and how it was found.
#[derive(Debug, Clone, Serialize)]
pub struct TrustRegionStep {
    /// The step `p`.
    #[serde(skip)]
    pub p: Vec<f64>,
    /// The multiplier: `(H + lambda I) p = -g`, `lambda >= max(0, -lambda_min)`.
    pub lambda: f64,
    /// `||p||`.
    pub step_norm: f64,
    /// The radius `Delta`.
    pub radius: f64,
    /// `-(g^T p + 1/2 p^T H p)`: how much the model decreases (>= 0).
    pub model_decrease: f64,
    /// The Cauchy point's decrease (the model's minimum along `-g` within
    /// the region), which `model_decrease` is never below.
    pub cauchy_decrease: f64,
    /// Interior, boundary or hard case.
    pub kind: StepKind,
    /// `lambda_min` when it was needed (`H` not certified positive definite).
    pub lambda_min: Option<f64>,
    /// `||(H + lambda I) p + g|| / ||g||`, measured with the exact HVP.
    pub optimality_residual: f64,
    /// Whether the iteration met its tolerance. When it did not, the step
    /// returned is the better of its best iterate and the Cauchy point.
    pub converged: bool,
    /// Factorizations spent, those of `lambda_min` included.
    pub factorizations: usize,
    /// Exact solves with a factorization.
    pub solves: usize,
}

/// `p_perp(lambda)` and `p_perp^T (H + lambda I)^-1 p_perp`.
struct Eval {
    p_perp: Vec<f64>,
    qq: f64,
}

struct Solver<'a> {
    curv: &'a Curvature,
    g: &'a [f64],
    counter: Counter<'a>,
    /// Orthonormal eigenvectors of `lambda_min` (empty when `H` is
    /// positive definite).
    v: Vec<Vec<f64>>,
    /// Their Rayleigh quotients.
    theta: Vec<f64>,
    /// `V^T g`.
    c: Vec<f64>,
    /// `g - V c`.
    g_perp: Vec<f64>,
    scale: f64,
    solves: usize,
}

impl Solver<'_> {
    fn project(&self, x: &mut [f64]) {
        for _ in 0..2 {
            for v in &self.v {
                let c = dot(v, x);
                axpy(x, -c, v);
            }
        }
    }

    /// `sum_i c_i^2 / (lambda + theta_i)^k`.
    fn c_sum(&self, lambda: f64, k: i32) -> f64 {
        self.c.iter().zip(&self.theta).map(|(c, t)| if *c == 0.0 { 0.0 } else { c * c / (lambda + t).powi(k) }).sum()
    }

    fn solve(&mut self, f: &Factorization, b: &[f64]) -> Result<Vec<f64>> {
        self.solves += 1;
        let opts = SolveOptions { accept_inexact: true, ..SolveOptions::default() };
        let s = f.solve_with(faer::MatRef::from_column_major_slice(b, b.len(), 1), &opts)?;
        Ok(s.x.col(0).iter().copied().collect())
    }

    /// `(H + lambda I)^-1 b` on `V`'s complement (`b` in it), with the
    /// factorization of `H + lambda_f I`, `lambda_f >= lambda`: refined with
    /// the exact HVP at `lambda` and projected, which contracts by
    /// `(lambda_f - lambda) / (lambda_f + lambda_2)` per step (`lambda_2`
    /// the eigenvalue after `lambda_min`'s cluster).
    fn deflated_solve(&mut self, f: &Factorization, lambda: f64, b: &[f64]) -> Result<Vec<f64>> {
        let mut x = self.solve(f, b)?;
        self.project(&mut x);
        let bn = norm(b);
        let mut best = (f64::INFINITY, x.clone());
        for _ in 0..8 {
            let hx = self.curv.shifted_hvp(lambda, &x)?;
            let mut r: Vec<f64> = b.iter().zip(&hx).map(|(b, h)| b - h).collect();
            self.project(&mut r);
            let rn = norm(&r);
            if rn >= best.0 {
                break;
            }
            best = (rn, x.clone());
            if rn <= 4.0 * f64::EPSILON * (bn + self.scale * norm(&x)) {
                break;
            }
            let mut dx = self.solve(f, &r)?;
            self.project(&mut dx);
            axpy(&mut x, 1.0, &dx);
        }
        Ok(best.1)
    }

    /// Factors `H + lambda_f I` (just above the floor when `lambda` is at
    /// it) and evaluates `p_perp(lambda)`.
    fn eval(&mut self, lambda: f64) -> Result<Eval> {
        let min_theta = self.theta.iter().copied().fold(f64::INFINITY, f64::min);
        let dist = if min_theta.is_finite() { lambda + min_theta } else { f64::INFINITY };
        let gap = 1e-8 * self.scale;
        let lambda_f = if dist >= gap { lambda } else { lambda + (gap - dist) };
        let (count, f) = self.counter.factor_at(-lambda_f)?;
        if count.is_certified() && count.below > 0 {
            return Err(HinvError::Uncertified {
                what: "the trust-region step",
                why: format!(
                    "H + {lambda_f:e} I has {} negative eigenvalue(s) by its certified inertia, above the computed \
                     -lambda_min",
                    count.below
                ),
                hint: "tighten the spectrum tolerances",
            });
        }
        let g_perp = self.g_perp.clone();
        let mut p = self.deflated_solve(&f, lambda, &g_perp)?;
        p.iter_mut().for_each(|x| *x = -*x);
        let q = self.deflated_solve(&f, lambda, &p)?;
        Ok(Eval { qq: dot(&p, &q), p_perp: p })
    }

    /// The full step at `lambda` from `p_perp`.
    fn step(&self, lambda: f64, p_perp: &[f64]) -> Vec<f64> {
        let mut p = p_perp.to_vec();
        for ((v, c), t) in self.v.iter().zip(&self.c).zip(&self.theta) {
            if *c != 0.0 {
                axpy(&mut p, -c / (lambda + t), v);
            }
        }
        p
    }
}

impl Curvature {
    /// The exact trust-region step for the gradient; see
    /// [`Curvature::trust_region_step_for`].
    pub fn trust_region_step(&self, radius: f64, opts: &TrustRegionOptions) -> Result<TrustRegionStep> {
        let g = self.gradient().to_vec();
        self.trust_region_step_for(&g, radius, opts)
    }

    /// The exact solution of `min g^T p + 1/2 p^T H p`, `||p|| <= radius`,
    /// for any `g`: Moré–Sorensen with the positive-definiteness test done
    /// by inertia and the hard case handled exactly (see the module
    /// documentation of `trust_region.rs` and docs/spectrum.md).
    ///
    /// ```
    /// use hinv::{Curvature, TrustRegionOptions};
    /// use netgraph::{Activation, Batch, Network};
    ///
    /// let net = Network::builder(3).without_bias().dense(4, Activation::Tanh).repeat(2).cross_entropy(2)?;
    /// let mut params = net.init_params(1);
    /// params.scale(2.0);
    /// let curv = Curvature::new(&net, &params, &Batch::random_classification(3, 2, 3, 2))?;
    /// let s = curv.trust_region_step(0.1, &TrustRegionOptions::default())?;
    /// assert!(s.converged && s.step_norm <= 0.1 * (1.0 + 1e-10));
    /// assert!(s.model_decrease >= s.cauchy_decrease);
    /// # Ok::<(), hinv::HinvError>(())
    /// ```
    pub fn trust_region_step_for(&self, g: &[f64], radius: f64, opts: &TrustRegionOptions) -> Result<TrustRegionStep> {
        check_vector("the gradient", faer::MatRef::from_column_major_slice(g, g.len(), 1), self.num_params())?;
        if !(radius.is_finite() && radius > 0.0) {
            return Err(HinvError::InvalidNumber {
                what: "the trust-region radius",
                value: radius,
                expected: "a finite number above 0",
            });
        }
        if !(opts.tolerance.is_finite() && opts.tolerance > 0.0) {
            return Err(HinvError::InvalidNumber {
                what: "the trust-region tolerance",
                value: opts.tolerance,
                expected: "a finite number above 0",
            });
        }
        let range = self.range_estimate(20)?;
        let mut s = Solver {
            curv: self,
            g,
            counter: Counter::new(self, &opts.spectrum.factor),
            v: Vec::new(),
            theta: Vec::new(),
            c: Vec::new(),
            g_perp: g.to_vec(),
            scale: range.norm.max(f64::MIN_POSITIVE.sqrt()),
            solves: 0,
        };
        let gnorm = norm(g);
        let mut extra_factorizations = 0;
        let mut lambda_min = None;
        // Positive definiteness by inertia: one factorization of H.
        let (c0, f0) = s.counter.factor_at(0.0)?;
        let pd = c0.is_certified() && c0.below == 0;
        let floor;
        let mut first: Option<(f64, Eval)> = None;
        if pd {
            floor = 0.0;
            let mut p = s.deflated_solve(&f0, 0.0, g)?;
            p.iter_mut().for_each(|x| *x = -*x);
            let q = s.deflated_solve(&f0, 0.0, &p)?;
            first = Some((0.0, Eval { qq: dot(&p, &q), p_perp: p }));
        } else {
            drop(f0);
            let m = self.lambda_min(&opts.spectrum)?;
            extra_factorizations = m.factorizations;
            s.solves += m.solves;
            if !m.converged || m.eigenvectors.len() < m.multiplicity.max(1) {
                return Err(HinvError::Uncertified {
                    what: "the trust-region step",
                    why: format!(
                        "lambda_min is bracketed in [{:e}, {:e}] with {} eigenvalue(s) and {} eigenvector(s) found",
                        m.lower,
                        m.upper,
                        m.multiplicity,
                        m.eigenvectors.len()
                    ),
                    hint: "raise the spectrum's solve budget (max_solves) or loosen its tolerances",
                });
            }
            lambda_min = Some(m.value);
            s.theta = m.eigenvector_values.clone();
            s.v = m.eigenvectors;
            s.c = s.v.iter().map(|v| dot(v, g)).collect();
            let mut gp = g.to_vec();
            s.project(&mut gp);
            s.g_perp = gp;
            let min_theta = s.theta.iter().copied().fold(f64::INFINITY, f64::min);
            floor = (-min_theta).max(0.0);
        }
        let delta = radius;
        let finish = |s: &mut Solver<'_>, lambda: f64, p: Vec<f64>, kind: StepKind, converged: bool| {
            finish_step(s, lambda, p, kind, converged, radius, lambda_min, extra_factorizations)
        };

        // At the floor: the interior solution, or the hard case.
        let at_floor = match first.take() {
            Some(e) => e.1,
            None => s.eval(floor)?,
        };
        let c_norm = norm(&s.c);
        let perp_floor = norm(&at_floor.p_perp);
        let singular_floor = lambda_min.is_some_and(|l| l <= 0.0);
        if !singular_floor {
            let s0 = s.c_sum(floor, 2) + perp_floor * perp_floor;
            if s0.sqrt() <= delta && floor == 0.0 {
                let p = s.step(0.0, &at_floor.p_perp);
                return finish(&mut s, 0.0, p, StepKind::Interior, true);
            }
        } else if perp_floor < delta {
            // The c-term alone puts the root at floor + ~|c| / sqrt(Delta^2 - ||p_perp||^2).
            // When that offset is below what lambda_min's own accuracy
            // resolves (|c| is then the eigenvector's rounding, or a g made
            // orthogonal to it), lambda + theta has no correct digits left
            // and Newton cannot converge; the hard-case completion differs
            // from the exact root by offset / gap relative, below 1e-10.
            let room = (delta * delta - perp_floor * perp_floor).sqrt();
            let offset = c_norm / room;
            if offset <= HARD_CASE_OFFSET * floor.max(s.scale) {
                let mut p = at_floor.p_perp.clone();
                let sign = if s.c.first().copied().unwrap_or(0.0) > 0.0 { -1.0 } else { 1.0 };
                let tau = room;
                axpy(&mut p, sign * tau, &s.v[0]);
                return finish(&mut s, floor, p, StepKind::HardCase, true);
            }
        }

        // Newton on psi(lambda) = 1/||p(lambda)|| - 1/Delta, safeguarded by a
        // bracket: psi(lo) < 0 <= psi(hi).
        let mut lo = floor;
        let mut hi = floor + gnorm / delta * (1.0 + 1e-12) + f64::MIN_POSITIVE;
        // From the left: floor + |c| / Delta, where the c-term alone reaches
        // Delta, unless that is within lambda_min's accuracy of the floor,
        // whose evaluation is at hand.
        let start = c_norm / delta;
        let negligible = start <= HARD_CASE_OFFSET * floor.max(s.scale);
        if singular_floor && negligible {
            // Below lambda_min's accuracy: g has no component along V.
            s.c.iter_mut().for_each(|c| *c = 0.0);
        }
        let mut lambda = if (singular_floor || c_norm > 0.0 && floor > 0.0) && !negligible {
            (floor + start).min(hi)
        } else {
            floor
        };
        let mut e = if lambda == floor { at_floor } else { s.eval(lambda)? };
        let mut best: Option<(f64, f64, Vec<f64>)> = None;
        loop {
            let sum = s.c_sum(lambda, 2) + dot(&e.p_perp, &e.p_perp);
            let pn = sum.sqrt();
            let err = (pn - delta).abs();
            if best.as_ref().is_none_or(|b| err < b.0) {
                best = Some((err, lambda, e.p_perp.clone()));
            }
            if err <= opts.tolerance * delta {
                let p = s.step(lambda, &e.p_perp);
                let near_floor = singular_floor && lambda - floor <= f64::EPSILON.sqrt() * floor.max(s.scale);
                let kind = if near_floor && perp_floor < delta { StepKind::HardCase } else { StepKind::Boundary };
                return finish(&mut s, lambda, p, kind, true);
            }
            if pn > delta {
                lo = lambda;
            } else {
                hi = lambda;
            }
            let ds = -2.0 * s.c_sum(lambda, 3) - 2.0 * e.qq;
            let psi = 1.0 / pn - 1.0 / delta;
            let dpsi = -ds / (2.0 * sum * pn);
            let mut next = lambda - psi / dpsi;
            if !(next > lo && next < hi && next.is_finite()) {
                next = 0.5 * (lo + hi);
            }
            let stalled = hi - lo <= 4.0 * f64::EPSILON * hi.abs().max(s.scale);
            if stalled || s.counter.spent() >= opts.max_factorizations {
                let (_, l, pp) = best.take().unwrap_or((0.0, lambda, e.p_perp.clone()));
                let p = s.step(l, &pp);
                return finish(&mut s, l, p, StepKind::Boundary, false);
            }
            lambda = next;
            e = s.eval(lambda)?;
        }
    }
}

/// Measures the step (model, optimality residual, Cauchy point) and builds
/// the report; falls back to the Cauchy point should the step decrease the
/// model less (which only an unconverged iteration can do).
#[allow(clippy::too_many_arguments)]
fn finish_step(
    s: &mut Solver<'_>,
    lambda: f64,
    mut p: Vec<f64>,
    kind: StepKind,
    mut converged: bool,
    radius: f64,
    lambda_min: Option<f64>,
    extra_factorizations: usize,
) -> Result<TrustRegionStep> {
    let g = s.g;
    let gnorm = norm(g);
    let model = |p: &[f64], hp: &[f64]| dot(g, p) + 0.5 * dot(p, hp);
    let mut hp = s.curv.hvp(&p)?;
    let hg = s.curv.hvp(g)?;
    let ghg = dot(g, &hg);
    let tau = if ghg <= 0.0 || gnorm == 0.0 { 1.0 } else { (gnorm.powi(3) / (radius * ghg)).min(1.0) };
    let cauchy_scale = if gnorm == 0.0 { 0.0 } else { -tau * radius / gnorm };
    let cauchy: Vec<f64> = g.iter().map(|x| cauchy_scale * x).collect();
    let cauchy_model = dot(g, &cauchy) + 0.5 * cauchy_scale * cauchy_scale * ghg;
    let mut m = model(&p, &hp);
    let mut kind = kind;
    if m > cauchy_model + 1e-12 * cauchy_model.abs() {
        converged = false;
        p = cauchy;
        hp = hg.iter().map(|x| cauchy_scale * x).collect();
        m = cauchy_model;
        kind = StepKind::Boundary;
    }
    let r: Vec<f64> = hp.iter().zip(&p).zip(g).map(|((h, x), gi)| h + lambda * x + gi).collect();
    Ok(TrustRegionStep {
        lambda,
        step_norm: norm(&p),
        radius,
        model_decrease: -m,
        cauchy_decrease: -cauchy_model,
        kind,
        lambda_min,
        optimality_residual: norm(&r) / gnorm.max(f64::MIN_POSITIVE),
        converged,
        factorizations: s.counter.spent() + extra_factorizations,
        solves: s.solves,
        p,
    })
}
