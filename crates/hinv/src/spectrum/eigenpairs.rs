//! Shift-invert Lanczos: the eigenpairs of `H` nearest a shift `sigma`, by
//! Lanczos on `(H - sigma I)^-1` applied with exact solves, verified by
//! counting the eigenvalues in the interval they span.

use serde::Serialize;

use super::lanczos::{dot, norm, Krylov};
use super::{Counter, SpectrumOptions};
use crate::curvature::Curvature;
use crate::error::{HinvError, Result};
use crate::factor::{Factorization, SolveOptions};

/// An eigenpair estimate: the Rayleigh quotient of a Ritz vector.
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    pub(crate) value: f64,
    pub(crate) vector: Vec<f64>,
    pub(crate) residual: f64,
}

/// Lanczos on `(H - shift I)^-1` with one factorization.
pub(crate) struct ShiftInvert<'a> {
    curv: &'a Curvature,
    f: &'a Factorization,
    k: Krylov,
    pub(crate) solves: usize,
    pub(crate) hvps: usize,
}

impl<'a> ShiftInvert<'a> {
    pub(crate) fn new(curv: &'a Curvature, f: &'a Factorization, seed: u64) -> ShiftInvert<'a> {
        ShiftInvert { curv, f, k: Krylov::new(curv.num_params(), seed), solves: 0, hvps: 0 }
    }

    /// Appends a fresh start direction: the next steps can find a copy of
    /// a multiple eigenvalue (or an eigenvalue the start vector missed).
    pub(crate) fn restart(&mut self) -> bool {
        self.k.push_fresh(self.curv.num_params())
    }

    /// Steps until the `want` Ritz pairs nearest the shift (largest
    /// `|theta|` of the inverse) have residuals `||H v - lambda v||` within
    /// `tol(lambda)`, or `max_solves` more solves were spent. Returns them
    /// sorted by decreasing `|theta|` and whether all converged.
    pub(crate) fn run(
        &mut self,
        want: usize,
        tol: impl Fn(f64) -> f64,
        max_solves: usize,
    ) -> Result<(Vec<Pair>, bool)> {
        let n = self.curv.num_params();
        // Solves need not meet the default backward error: the pairs are
        // judged by their residuals with the exact HVP, and the counts.
        let solve_opts = SolveOptions { accept_inexact: true, ..SolveOptions::default() };
        let f = self.f;
        let mut op = |v: &[f64]| -> Result<Vec<f64>> {
            let s = f.solve_with(faer::MatRef::from_column_major_slice(v, v.len(), 1), &solve_opts)?;
            Ok(s.x.col(0).iter().copied().collect())
        };
        let mut spent = 0;
        loop {
            let stepped = spent < max_solves && self.k.step(&mut op)?;
            if stepped {
                self.solves += 1;
                spent += 1;
            }
            let m = self.k.len();
            if m == 0 {
                return Ok((Vec::new(), false));
            }
            if stepped && m < want.min(n) {
                continue;
            }
            let ritz = self.k.ritz(|t| {
                let mut idx: Vec<usize> = (0..t.len()).collect();
                idx.sort_by(|&a, &b| t[b].abs().total_cmp(&t[a].abs()));
                idx.truncate(want);
                idx
            })?;
            let mut pairs = Vec::with_capacity(ritz.vectors.len());
            let mut converged = ritz.vectors.len() >= want.min(n);
            for v in ritz.vectors {
                let hv = self.curv.hvp(&v)?;
                self.hvps += 1;
                let value = dot(&v, &hv);
                let r: Vec<f64> = hv.iter().zip(&v).map(|(h, x)| h - value * x).collect();
                let residual = norm(&r);
                converged &= residual <= tol(value);
                pairs.push(Pair { value, vector: v, residual });
            }
            if converged || !stepped {
                return Ok((pairs, converged));
            }
        }
    }
}

/// The eigenpairs of `H` nearest a shift, verified by counting.
#[derive(Debug, Clone, Serialize)]
pub struct Eigenpairs {
    /// The shift asked for.
    pub requested_shift: f64,
    /// The shift factored (moved off an eigenvalue when `H - sigma I` was
    /// too close to singular to solve with).
    pub shift: f64,
    /// Eigenvalues (Rayleigh quotients), nearest the shift first.
    pub values: Vec<f64>,
    /// Unit eigenvectors, in the same order.
    #[serde(skip)]
    pub vectors: Vec<Vec<f64>>,
    /// `||H v - lambda v||` of each pair.
    pub residuals: Vec<f64>,
    /// The counted interval `[lower, upper)`: it holds every eigenvalue
    /// reported, each within its residual.
    pub lower: f64,
    /// See `lower`.
    pub upper: f64,
    /// Eigenvalues of `H` in `[lower, upper)` by the counts.
    pub count_in_interval: usize,
    /// The counts' uncertainty (0: certified).
    pub uncertain: usize,
    /// The count equals the number of pairs and is certified: no
    /// eigenvalue nearer the shift than the farthest reported one was
    /// missed, and each reported value is within its residual of a
    /// distinct eigenvalue.
    pub verified: bool,
    /// Whether every residual met the tolerance.
    pub converged: bool,
    /// Factorizations spent.
    pub factorizations: usize,
    /// Exact solves (Lanczos steps).
    pub solves: usize,
    /// Hessian-vector products outside the solves.
    pub hvps: usize,
}

impl Curvature {
    /// The `k` eigenpairs of `H` nearest `sigma`, by Lanczos on
    /// `(H - sigma I)^-1` with exact solves (full reorthogonalization),
    /// then two counts: the interval around `sigma` that holds every
    /// reported eigenvalue (widened by the residuals' Frobenius norm, which
    /// by Kahan's theorem bounds the distance of the reported values to
    /// `k` distinct eigenvalues) must hold exactly `k` eigenvalues, or the
    /// run restarts with a fresh direction to find the one it missed (a
    /// copy of a multiple eigenvalue).
    ///
    /// ```
    /// use hinv::{Curvature, SpectrumOptions};
    /// use netgraph::{Activation, Batch, Network};
    ///
    /// let net = Network::builder(3).without_bias().dense(4, Activation::Tanh).repeat(2).cross_entropy(2)?;
    /// let mut params = net.init_params(1);
    /// params.scale(2.0);
    /// let curv = Curvature::new(&net, &params, &Batch::random_classification(3, 2, 3, 2))?;
    /// let near = curv.eigenpairs_near(0.0, 3, &SpectrumOptions::default())?;
    /// assert!(near.verified);
    /// for (l, v) in near.values.iter().zip(&near.vectors) {
    ///     let hv = curv.hvp(v)?;
    ///     let r: f64 = hv.iter().zip(v).map(|(h, x)| (h - l * x).powi(2)).sum::<f64>().sqrt();
    ///     assert!(r < 1e-8);
    /// }
    /// # Ok::<(), hinv::HinvError>(())
    /// ```
    pub fn eigenpairs_near(&self, sigma: f64, k: usize, opts: &SpectrumOptions) -> Result<Eigenpairs> {
        opts.check()?;
        if !sigma.is_finite() {
            return Err(HinvError::InvalidNumber { what: "the shift", value: sigma, expected: "a finite number" });
        }
        let n = self.num_params();
        if k == 0 || k > n {
            return Err(HinvError::InvalidNumber {
                what: "the number of eigenpairs",
                value: k as f64,
                expected: "between 1 and the number of parameters",
            });
        }
        let range = self.range_estimate(opts.range_steps.min(20))?;
        let scale = range.norm.max(f64::MIN_POSITIVE.sqrt());
        let counter = Counter::new(self, &opts.factor);
        // A shift that is an eigenvalue (to working precision) cannot be
        // solved with; move it by a little, up to three times.
        let probe = super::lanczos::pseudo_random(n, 7);
        let mut shift = sigma;
        let mut factored = None;
        for attempt in 0..4 {
            let (_, f) = counter.factor_at(shift)?;
            let ok = f.solve_with(
                faer::MatRef::from_column_major_slice(&probe, n, 1),
                &SolveOptions { tolerance: 1e-10, ..SolveOptions::default() },
            );
            match ok {
                Ok(_) => {
                    factored = Some(f);
                    break;
                }
                Err(HinvError::Singular { .. } | HinvError::IllConditioned { .. }) => {
                    shift = sigma + 1e-8 * scale * 16f64.powi(attempt);
                }
                Err(e) => return Err(e),
            }
        }
        let Some(f) = factored else {
            return Err(HinvError::Uncertified {
                what: "the shift-invert eigenpairs",
                why: format!("H - sigma I stayed singular for sigma near {sigma:e}"),
                hint: "choose a shift that is not an eigenvalue of H",
            });
        };
        let mut si = ShiftInvert::new(self, &f, 0xe16e);
        let tol = |l: f64| opts.tol(l, scale);
        let mut out = Eigenpairs {
            requested_shift: sigma,
            shift,
            values: Vec::new(),
            vectors: Vec::new(),
            residuals: Vec::new(),
            lower: shift,
            upper: shift,
            count_in_interval: 0,
            uncertain: 0,
            verified: false,
            converged: false,
            factorizations: 0,
            solves: 0,
            hvps: range.hvps,
        };
        // A few rounds: each count that finds more eigenvalues than pairs
        // restarts Lanczos with a fresh direction.
        for _ in 0..8 {
            let budget = opts.max_solves.saturating_sub(si.solves).max(1);
            let (pairs, converged) = si.run(k, tol, budget)?;
            let frob = pairs.iter().map(|p| p.residual * p.residual).sum::<f64>().sqrt();
            let radius = pairs.iter().map(|p| (p.value - shift).abs()).fold(0.0, f64::max) + frob;
            let radius = radius.max(tol(shift));
            let (lo, hi) = (shift - 1.02 * radius, shift + 1.02 * radius);
            let wiggle = 0.02 * radius;
            let a = counter.certified_near(lo, wiggle)?.map(|(c, _)| c);
            let b = counter.certified_near(hi, wiggle)?.map(|(c, _)| c);
            out.values = pairs.iter().map(|p| p.value).collect();
            out.residuals = pairs.iter().map(|p| p.residual).collect();
            out.vectors = pairs.into_iter().map(|p| p.vector).collect();
            out.converged = converged;
            match (a, b) {
                (Some(a), Some(b)) => {
                    out.lower = a.shift();
                    out.upper = b.shift();
                    out.count_in_interval = b.below.saturating_sub(a.below);
                    out.uncertain = 0;
                    out.verified = converged && out.count_in_interval == k;
                    if out.count_in_interval <= k || !si.restart() {
                        break;
                    }
                }
                _ => {
                    out.lower = lo;
                    out.upper = hi;
                    out.uncertain = 1;
                    break;
                }
            }
        }
        out.factorizations = counter.spent();
        out.solves = si.solves;
        out.hvps += si.hvps;
        Ok(out)
    }
}
