//! Exact spectrum tools built on the certified inertia of `H - t I`
//! (Sylvester's law of inertia: one factorization gives the number of
//! eigenvalues of `H` below `t`).
//!
//! - this module: [`SpectrumOptions`], certified counts ([`Curvature::count_in`]),
//!   the extreme eigenvalues ([`Curvature::lambda_min`], [`Curvature::lambda_max`])
//!   by shift-invert Lanczos verified by counting, or bisection on counts;
//! - `histogram`: exact spectral histograms ([`Curvature::histogram`]);
//! - `eigenpairs`: the eigenpairs nearest a shift ([`Curvature::eigenpairs_near`]);
//! - `lanczos`: Lanczos with full reorthogonalization and Rayleigh–Ritz.
//!
//! Every count is either certified (the factorization's inertia has no
//! uncertain eigenvalue and no zero pivot) or the shift is moved a little,
//! within what the answer allows, and counted again; what still cannot be
//! certified is reported (`converged: false`, per-bin `uncertain`) or is an
//! error, never passed off as exact.

mod eigenpairs;
mod histogram;
pub(crate) mod lanczos;

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::curvature::Curvature;
use crate::error::{HinvError, Result};
use crate::factor::{FactorOptions, Factorization};

pub use eigenpairs::Eigenpairs;
use eigenpairs::{Pair, ShiftInvert};
pub use histogram::{symlog_edges, Histogram};
use lanczos::Krylov;

/// Most copies of a multiple extreme eigenvalue whose eigenvectors are sought.
const MAX_CLUSTER: usize = 8;

/// Accuracy, budget and factorization knobs of the spectrum tools.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectrumOptions {
    /// Relative accuracy of an eigenvalue: an eigenvalue `lambda` is
    /// bracketed to `max(rel_tol |lambda|, abs_tol ||H||)` on each side.
    pub rel_tol: f64,
    /// Absolute accuracy, relative to `||H||` (see `rel_tol`).
    pub abs_tol: f64,
    /// Shift-invert Lanczos steps before counting (few factorizations);
    /// false: bisection on counts alone.
    pub accelerate: bool,
    /// Plain Lanczos steps with the HVP that estimate the spectral range
    /// (no factorization; their results are only used once counted).
    pub range_steps: usize,
    /// Most exact solves of one shift-invert Lanczos run.
    pub max_solves: usize,
    /// Most factorizations of one bisection.
    pub max_factorizations: usize,
    /// Options of every factorization (memory limit, parallelism);
    /// `allow_singular` is always set for counting.
    pub factor: FactorOptions,
}

impl Default for SpectrumOptions {
    fn default() -> Self {
        SpectrumOptions {
            rel_tol: 1e-10,
            abs_tol: 1e-12,
            accelerate: true,
            range_steps: 40,
            max_solves: 80,
            max_factorizations: 80,
            factor: FactorOptions::default(),
        }
    }
}

impl SpectrumOptions {
    fn check(&self) -> Result<()> {
        for (what, v) in [("the relative tolerance", self.rel_tol), ("the absolute tolerance", self.abs_tol)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(HinvError::InvalidNumber { what, value: v, expected: "a finite number >= 0" });
            }
        }
        if self.rel_tol == 0.0 && self.abs_tol == 0.0 {
            return Err(HinvError::InvalidNumber {
                what: "the larger of the two tolerances",
                value: 0.0,
                expected: "above 0 (e.g. rel_tol 1e-10)",
            });
        }
        Ok(())
    }

    /// Half-width allowed around `lambda`.
    fn tol(&self, lambda: f64, scale: f64) -> f64 {
        (self.rel_tol * lambda.abs()).max(self.abs_tol * scale)
    }
}

/// The eigenvalue counts of `H - shift I`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShiftCount {
    /// The shift that was factored (moved from the one asked for when that
    /// could not be certified).
    #[serde(skip)]
    pub shift_bits: u64,
    /// Eigenvalues of `H` strictly below the shift.
    pub below: usize,
    /// Exactly zero pivots (eigenvalues at the shift, or a breakdown).
    pub at: usize,
    /// Eigenvalues strictly above.
    pub above: usize,
    /// Eigenvalues whose side is not certain.
    pub uncertain: usize,
}

impl ShiftCount {
    /// The shift that was factored.
    pub fn shift(&self) -> f64 {
        f64::from_bits(self.shift_bits)
    }

    /// Every count certain, and no zero pivot (which could be an eigenvalue
    /// at the shift as well as a breakdown of the elimination).
    pub fn is_certified(&self) -> bool {
        self.uncertain == 0 && self.at == 0
    }
}

/// The number of eigenvalues of `H` in `[lower, upper)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IntervalCount {
    /// Lower end (included).
    pub lower: f64,
    /// Upper end (excluded).
    pub upper: f64,
    /// Eigenvalues in `[lower, upper)`.
    pub count: usize,
    /// The exact count is within `count ± uncertain` (0: certified).
    pub uncertain: usize,
    /// Factorizations spent (2).
    pub factorizations: usize,
}

/// The estimate of the spectral range from plain Lanczos on the HVP:
/// no factorization, nothing certified until counted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RangeEstimate {
    /// Smallest Ritz value (at or above `lambda_min`).
    pub low: f64,
    /// `||H v - low v||`: some eigenvalue lies within this of `low`.
    pub low_residual: f64,
    /// Largest Ritz value (at or below `lambda_max`).
    pub high: f64,
    /// `||H v - high v||`.
    pub high_residual: f64,
    /// `max(|low|, |high|)`, a lower estimate of `||H||_2`, the scale of the
    /// absolute tolerances.
    pub norm: f64,
    /// Hessian-vector products spent.
    pub hvps: usize,
}

/// Which end of the spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The smallest eigenvalue.
    Min,
    /// The largest eigenvalue.
    Max,
}

/// How an extreme eigenvalue was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Shift-invert Lanczos, then two counts around the Rayleigh quotient.
    ShiftInvert,
    /// Bisection on certified counts.
    Bisection,
}

/// An extreme eigenvalue of `H`, bracketed by certified counts.
#[derive(Debug, Clone, Serialize)]
pub struct ExtremeEigenvalue {
    /// Which end.
    pub end: End,
    /// The estimate: the Rayleigh quotient of the eigenvector when
    /// shift-invert converged, the bracket's midpoint otherwise.
    pub value: f64,
    /// Certified bracket: no eigenvalue beyond it on the outer side, at
    /// least one inside (`lower <= lambda <= upper`).
    pub lower: f64,
    /// See `lower`.
    pub upper: f64,
    /// Whether the bracket is within the tolerance:
    /// `upper - lower <= 2 max(rel_tol |value|, abs_tol ||H||)`.
    pub converged: bool,
    /// Eigenvalues inside the bracket (certified): more than 1 for a
    /// multiple (or tightly clustered) extreme eigenvalue.
    pub multiplicity: usize,
    /// Unit eigenvectors of the eigenvalues in the bracket, when shift-invert found them.
    #[serde(skip)]
    pub eigenvectors: Vec<Vec<f64>>,
    /// Their Rayleigh quotients.
    pub eigenvector_values: Vec<f64>,
    /// Their residuals `||H v - lambda v||`.
    pub residuals: Vec<f64>,
    /// The method that produced the bracket.
    pub method: Method,
    /// Factorizations spent (the count that matters: each is one
    /// factorization of the lifted system).
    pub factorizations: usize,
    /// Exact solves with a factorization (shift-invert Lanczos steps).
    pub solves: usize,
    /// Hessian-vector products outside the factorizations and solves.
    pub hvps: usize,
    /// The range estimate whose `norm` scaled the absolute tolerance.
    pub range: RangeEstimate,
}

/// Counts eigenvalues by factoring `H - t I`, and counts the factorizations.
pub(crate) struct Counter<'a> {
    pub(crate) curv: &'a Curvature,
    opts: FactorOptions,
    pub(crate) spent: AtomicUsize,
}

impl<'a> Counter<'a> {
    pub(crate) fn new(curv: &'a Curvature, opts: &FactorOptions) -> Counter<'a> {
        Counter { curv, opts: FactorOptions { allow_singular: true, ..opts.clone() }, spent: AtomicUsize::new(0) }
    }

    pub(crate) fn spent(&self) -> usize {
        self.spent.load(Ordering::Relaxed)
    }

    /// Factors `H - t I` and reads its inertia.
    pub(crate) fn factor_at(&self, t: f64) -> Result<(ShiftCount, Factorization)> {
        self.spent.fetch_add(1, Ordering::Relaxed);
        let f = self.curv.factor_with(-t, &self.opts)?;
        let i = f.inertia();
        let c = ShiftCount {
            shift_bits: t.to_bits(),
            below: i.negative,
            at: i.zero,
            above: i.positive,
            uncertain: i.uncertain,
        };
        Ok((c, f))
    }

    /// A certified count at `t`, or, failing that, at `t + wiggle/2`,
    /// `t - wiggle/2` (moving off an eigenvalue too close to sign); `None`
    /// when none of the three is certified.
    pub(crate) fn certified_near(&self, t: f64, wiggle: f64) -> Result<Option<(ShiftCount, Factorization)>> {
        for off in [0.0, 0.5, -0.5] {
            let s = t + off * wiggle;
            if off != 0.0 && (s == t || wiggle == 0.0) {
                continue;
            }
            let (c, f) = self.factor_at(s)?;
            if c.is_certified() {
                return Ok(Some((c, f)));
            }
        }
        Ok(None)
    }
}

/// Number of eigenvalues on the outer side of `t` for an end.
fn outer(end: End, c: &ShiftCount) -> usize {
    match end {
        End::Min => c.below,
        End::Max => c.above,
    }
}

/// Direction from the inside of the spectrum towards the end.
fn outward(end: End) -> f64 {
    match end {
        End::Min => -1.0,
        End::Max => 1.0,
    }
}

impl Curvature {
    /// Plain Lanczos (full reorthogonalization) on the HVP: Ritz values
    /// near both ends of the spectrum and `||H||`, without factoring.
    pub fn range_estimate(&self, steps: usize) -> Result<RangeEstimate> {
        let n = self.num_params();
        let mut k = Krylov::new(n, 0x5eed);
        let mut hvps = 0;
        for _ in 0..steps.clamp(1, n) {
            if !k.step(&mut |v| self.hvp(v))? {
                break;
            }
            hvps += 1;
        }
        let r = k.ritz(|t| vec![0, t.len() - 1])?;
        let (low, high) = (r.theta[0], r.theta[1]);
        Ok(RangeEstimate {
            low,
            low_residual: r.residuals[0],
            high,
            high_residual: r.residuals[1],
            norm: low.abs().max(high.abs()),
            hvps,
        })
    }

    /// The number of eigenvalues of `H` in `[lower, upper)`, from two
    /// factorizations, with their certificate (`uncertain`, which also
    /// covers exactly zero pivots at either end).
    ///
    /// ```
    /// use hinv::Curvature;
    /// use netgraph::{Activation, Batch, Network};
    ///
    /// let net = Network::builder(3).without_bias().dense(4, Activation::Tanh).repeat(2).cross_entropy(2)?;
    /// let mut params = net.init_params(1);
    /// params.scale(2.0);
    /// let curv = Curvature::new(&net, &params, &Batch::random_classification(3, 2, 3, 2))?;
    /// let all = curv.count_in(-1e6, 1e6)?;
    /// assert_eq!((all.count, all.uncertain), (curv.num_params(), 0));
    /// # Ok::<(), hinv::HinvError>(())
    /// ```
    pub fn count_in(&self, lower: f64, upper: f64) -> Result<IntervalCount> {
        self.count_in_with(lower, upper, &FactorOptions::default())
    }

    /// [`Curvature::count_in`] with explicit factor options (the
    /// elimination, the memory limit; `allow_singular` is always set): for
    /// example [`crate::Elimination::Interleaved`], which checks counts
    /// that the default elimination may leave uncertain on wide layers.
    pub fn count_in_with(&self, lower: f64, upper: f64, opts: &FactorOptions) -> Result<IntervalCount> {
        for (what, v) in [("the interval's lower end", lower), ("the interval's upper end", upper)] {
            if !v.is_finite() {
                return Err(HinvError::InvalidNumber { what, value: v, expected: "a finite number" });
            }
        }
        if lower > upper {
            return Err(HinvError::InvalidNumber {
                what: "the interval's upper end",
                value: upper,
                expected: "at least its lower end",
            });
        }
        let counter = Counter::new(self, opts);
        let (a, _) = counter.factor_at(lower)?;
        let (b, _) = counter.factor_at(upper)?;
        Ok(IntervalCount {
            lower,
            upper,
            count: b.below.saturating_sub(a.below),
            uncertain: a.uncertain + a.at + b.uncertain + b.at,
            factorizations: 2,
        })
    }

    /// The smallest eigenvalue of `H`, bracketed by certified counts to
    /// `max(rel_tol |lambda|, abs_tol ||H||)` on each side (see
    /// [`ExtremeEigenvalue`]); with its eigenvector(s) when
    /// `opts.accelerate`.
    ///
    /// ```
    /// use hinv::{Curvature, SpectrumOptions};
    /// use netgraph::{Activation, Batch, Network};
    ///
    /// let net = Network::builder(3).without_bias().dense(4, Activation::Tanh).repeat(2).cross_entropy(2)?;
    /// let mut params = net.init_params(1);
    /// params.scale(2.0);
    /// let curv = Curvature::new(&net, &params, &Batch::random_classification(3, 2, 3, 2))?;
    /// let m = curv.lambda_min(&SpectrumOptions::default())?;
    /// assert!(m.converged && m.lower <= m.value && m.value <= m.upper);
    /// // Nothing below the bracket, at least one eigenvalue in it.
    /// assert_eq!(curv.count_in(m.lower - 1e3, m.lower)?.count, 0);
    /// # Ok::<(), hinv::HinvError>(())
    /// ```
    pub fn lambda_min(&self, opts: &SpectrumOptions) -> Result<ExtremeEigenvalue> {
        self.extreme_eigenvalue(End::Min, opts)
    }

    /// The largest eigenvalue of `H`; see [`Curvature::lambda_min`].
    pub fn lambda_max(&self, opts: &SpectrumOptions) -> Result<ExtremeEigenvalue> {
        self.extreme_eigenvalue(End::Max, opts)
    }

    /// [`Curvature::lambda_min`] or [`Curvature::lambda_max`].
    pub fn extreme_eigenvalue(&self, end: End, opts: &SpectrumOptions) -> Result<ExtremeEigenvalue> {
        opts.check()?;
        let range = self.range_estimate(opts.range_steps)?;
        let scale = range.norm.max(f64::MIN_POSITIVE.sqrt());
        let counter = Counter::new(self, &opts.factor);
        let out = outward(end);
        let (ritz, res) = match end {
            End::Min => (range.low, range.low_residual),
            End::Max => (range.high, range.high_residual),
        };
        // An outer shift with no eigenvalue beyond it; the Ritz value is
        // at or inside the end, and usually close to it.
        let mut d = (2.0 * res).max(1e-3 * scale);
        let mut inner: Option<f64> = None;
        let (outer_shift, outer_factor) = loop {
            let t = ritz + out * d;
            match counter.certified_near(t, d / 2.0)? {
                Some((c, f)) if outer(end, &c) == 0 => break (c.shift(), f),
                Some((c, _)) => inner = Some(c.shift()),
                None => {}
            }
            d *= 4.0;
            if d > 64.0 * scale {
                return Err(HinvError::Uncertified {
                    what: "the extreme eigenvalue's outer bound",
                    why: format!("no certified count found beyond {t:e} (||H|| estimated at {scale:e})"),
                    hint: "the spectrum is too close to singular everywhere for the factorization's certificate; \
                           on wide layers the interleaved elimination (`SpectrumOptions::factor`, \
                           `--elimination interleaved`) checks counts the default leaves uncertain; \
                           else try a smaller network or batch",
                });
            }
        };
        let mut result = ExtremeEigenvalue {
            end,
            value: f64::NAN,
            lower: f64::NAN,
            upper: f64::NAN,
            converged: false,
            multiplicity: 0,
            eigenvectors: Vec::new(),
            eigenvector_values: Vec::new(),
            residuals: Vec::new(),
            method: Method::Bisection,
            factorizations: 0,
            solves: 0,
            hvps: range.hvps,
            range,
        };
        let mut outer_t = outer_shift;
        if opts.accelerate {
            let tol = |l: f64| opts.tol(l, scale);
            let mut si = ShiftInvert::new(self, &outer_factor, 0xe16e);
            // Half the tolerance: the two counts then sit a tolerance away.
            let (pairs, converged) = si.run(1, |l| 0.5 * tol(l), opts.max_solves)?;
            if let (Some(p), true) = (pairs.first(), converged) {
                let lambda = p.value;
                let tol = tol(lambda);
                // Moving the checks inward keeps the bracket within the
                // tolerance when the first shift is too close to sign.
                let check = |t: f64| counter.certified_near(t, tol / 2.0);
                let o = check(lambda + out * tol)?;
                let i = check(lambda - out * tol * 0.75)?;
                match (o, i) {
                    (Some((oc, _)), Some((ic, _))) if outer(end, &oc) == 0 && outer(end, &ic) >= 1 => {
                        set_bracket(&mut result, oc.shift(), ic.shift());
                        result.multiplicity = outer(end, &ic);
                        result.value = lambda;
                        result.method = Method::ShiftInvert;
                        result.converged = (result.upper - result.lower) <= 2.0 * tol;
                        let mut pairs = pairs;
                        // A multiple end eigenvalue: one start vector sees
                        // one copy; fresh directions find the others.
                        let (lo, hi) = (result.lower, result.upper);
                        let inside = |ps: &[Pair]| ps.iter().filter(|p| p.value >= lo && p.value <= hi).count();
                        let want = result.multiplicity.min(MAX_CLUSTER);
                        let mut rounds = 0;
                        while inside(&pairs) < want && rounds < 2 * MAX_CLUSTER && si.restart() {
                            let budget = opts.max_solves.saturating_sub(si.solves).max(1);
                            pairs = si.run(want, |l| 0.5 * opts.tol(l, scale), budget)?.0;
                            rounds += 1;
                        }
                        for p in pairs.into_iter().filter(|p| p.value >= lo && p.value <= hi) {
                            result.eigenvector_values.push(p.value);
                            result.residuals.push(p.residual);
                            result.eigenvectors.push(p.vector);
                        }
                        result.solves = si.solves;
                        result.hvps += si.hvps;
                        result.factorizations = counter.spent();
                        return Ok(result);
                    }
                    (o, i) => {
                        // Use what was learnt for the bisection.
                        for c in [o, i].into_iter().flatten().map(|(c, _)| c) {
                            if outer(end, &c) == 0 {
                                if (c.shift() - outer_t) * out < 0.0 {
                                    outer_t = c.shift();
                                }
                            } else if inner.is_none_or(|t| (c.shift() - t) * out > 0.0) {
                                inner = Some(c.shift());
                            }
                        }
                    }
                }
            }
            result.solves = si.solves;
            result.hvps += si.hvps;
        }
        drop(outer_factor);
        // Bisection between the outer shift and an inner one.
        let inner_t = match inner {
            Some(t) => t,
            None => {
                let mut t = ritz - out * (res + opts.tol(ritz, scale));
                loop {
                    let w = (t - outer_t).abs();
                    match counter.certified_near(t, w / 4.0)? {
                        Some((c, _)) if outer(end, &c) >= 1 => break c.shift(),
                        Some((c, _)) => outer_t = c.shift(),
                        None => {}
                    }
                    t -= out * w;
                    if counter.spent() > opts.max_factorizations {
                        return Err(HinvError::Uncertified {
                            what: "the extreme eigenvalue's inner bound",
                            why: format!("no certified count with an eigenvalue beyond {t:e}"),
                            hint: "raise max_factorizations",
                        });
                    }
                }
            }
        };
        let (mut o, mut i) = (outer_t, inner_t);
        let mut last_inner_count = None;
        loop {
            let mid = 0.5 * (o + i);
            if (i - o).abs() <= 2.0 * opts.tol(mid, scale) || counter.spent() >= opts.max_factorizations {
                break;
            }
            match counter.certified_near(mid, (i - o).abs() / 4.0)? {
                Some((c, _)) if outer(end, &c) == 0 => o = c.shift(),
                Some((c, _)) => {
                    i = c.shift();
                    last_inner_count = Some(outer(end, &c));
                }
                // Nothing certifiable near the middle: stop with the
                // certified bracket, flagged as not converged.
                None => break,
            }
        }
        if last_inner_count.is_none() {
            // The multiplicity needs the inner count; recount at the inner end.
            if let Some((c, _)) = counter.certified_near(i, 0.0)? {
                last_inner_count = Some(outer(end, &c));
            }
        }
        set_bracket(&mut result, o, i);
        result.value = 0.5 * (o + i);
        result.multiplicity = last_inner_count.unwrap_or(0);
        result.method = Method::Bisection;
        result.converged = (i - o).abs() <= 2.0 * opts.tol(result.value, scale);
        result.factorizations = counter.spent();
        Ok(result)
    }
}

fn set_bracket(r: &mut ExtremeEigenvalue, a: f64, b: f64) {
    r.lower = a.min(b);
    r.upper = a.max(b);
}
