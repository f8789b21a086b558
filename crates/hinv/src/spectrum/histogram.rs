//! Exact spectral histograms: one certified count per bin edge, the edges
//! factored in parallel.

use rayon::prelude::*;
use serde::Serialize;

use super::{Counter, ShiftCount, SpectrumOptions};
use crate::curvature::Curvature;
use crate::error::{HinvError, Result};

/// The number of eigenvalues of `H` in each bin `[edges[i], edges[i+1])`.
#[derive(Debug, Clone, Serialize)]
pub struct Histogram {
    /// The edges counted, increasing; an edge too close to an eigenvalue
    /// for its count to be certified is moved by at most a thousandth of
    /// its smaller neighbouring bin (see `moved_edges`).
    pub edges: Vec<f64>,
    /// Eigenvalues in each bin.
    pub counts: Vec<usize>,
    /// Each bin's count is within `counts[i] ± uncertain[i]` (0: certified).
    pub uncertain: Vec<usize>,
    /// Eigenvalues below the first edge.
    pub below: usize,
    /// Eigenvalues at or above the last edge.
    pub above: usize,
    /// How many edges were moved to certify their counts.
    pub moved_edges: usize,
    /// Factorizations spent (one per edge, more for moved edges).
    pub factorizations: usize,
    /// Every count certified.
    pub certified: bool,
}

impl Histogram {
    /// Total eigenvalues counted in the bins.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }
}

fn check_edges(edges: &[f64]) -> Result<()> {
    if edges.len() < 2 {
        return Err(HinvError::InvalidNumber {
            what: "the number of histogram edges",
            value: edges.len() as f64,
            expected: "at least 2",
        });
    }
    for (i, &e) in edges.iter().enumerate() {
        if !e.is_finite() {
            return Err(HinvError::InvalidNumber { what: "a histogram edge", value: e, expected: "a finite number" });
        }
        if i > 0 && e <= edges[i - 1] {
            return Err(HinvError::InvalidNumber {
                what: "a histogram edge",
                value: e,
                expected: "above the edge before it (edges strictly increasing)",
            });
        }
    }
    Ok(())
}

impl Curvature {
    /// Counts the eigenvalues of `H` in the bins between `edges` (strictly
    /// increasing): one factorization of `H - e I` per edge, in parallel
    /// across edges (rayon), so `k` bins cost `k + 1` factorizations.
    ///
    /// ```
    /// use hinv::{Curvature, SpectrumOptions};
    /// use netgraph::{Activation, Batch, Network};
    ///
    /// let net = Network::builder(3).without_bias().dense(4, Activation::Tanh).repeat(2).cross_entropy(2)?;
    /// let mut params = net.init_params(1);
    /// params.scale(2.0);
    /// let curv = Curvature::new(&net, &params, &Batch::random_classification(3, 2, 3, 2))?;
    /// let h = curv.histogram(&[-1e3, -1e-6, 1e-6, 1e3], &SpectrumOptions::default())?;
    /// assert_eq!(h.below + h.total() + h.above, curv.num_params());
    /// # Ok::<(), hinv::HinvError>(())
    /// ```
    pub fn histogram(&self, edges: &[f64], opts: &SpectrumOptions) -> Result<Histogram> {
        opts.check()?;
        check_edges(edges)?;
        let counter = Counter::new(self, &opts.factor);
        let n = edges.len();
        let counts: Vec<(ShiftCount, bool)> = (0..n)
            .into_par_iter()
            .map(|i| {
                let left = if i > 0 { edges[i] - edges[i - 1] } else { f64::INFINITY };
                let right = if i + 1 < n { edges[i + 1] - edges[i] } else { f64::INFINITY };
                let wiggle = 1e-3 * left.min(right);
                let (c, _) = counter.factor_at(edges[i])?;
                if c.is_certified() {
                    return Ok((c, false));
                }
                match counter.certified_near(edges[i] + wiggle / 2.0, wiggle)? {
                    Some((c, _)) => Ok((c, true)),
                    None => Ok((c, false)),
                }
            })
            .collect::<Result<_>>()?;
        let mut out = Histogram {
            edges: counts.iter().map(|(c, _)| c.shift()).collect(),
            counts: Vec::with_capacity(n - 1),
            uncertain: Vec::with_capacity(n - 1),
            below: counts[0].0.below,
            above: counts[n - 1].0.above + counts[n - 1].0.at,
            moved_edges: counts.iter().filter(|(_, moved)| *moved).count(),
            factorizations: counter.spent(),
            certified: counts.iter().all(|(c, _)| c.is_certified()),
        };
        for w in counts.windows(2) {
            let (a, b) = (&w[0].0, &w[1].0);
            out.counts.push(b.below.saturating_sub(a.below));
            out.uncertain.push(a.uncertain + a.at + b.uncertain + b.at);
        }
        Ok(out)
    }

    /// A histogram of `bins` equal bins over the whole spectrum: the range
    /// from plain Lanczos on the HVP (no factorization), widened by the
    /// Ritz residuals, and certified by the end counts themselves (nothing
    /// below the first edge, nothing above the last; widened and counted
    /// again otherwise), so `bins + 1` factorizations in the usual case.
    pub fn histogram_bins(&self, bins: usize, opts: &SpectrumOptions) -> Result<Histogram> {
        opts.check()?;
        if bins == 0 {
            return Err(HinvError::InvalidNumber { what: "the number of bins", value: 0.0, expected: "at least 1" });
        }
        let r = self.range_estimate(opts.range_steps)?;
        let scale = r.norm.max(f64::MIN_POSITIVE.sqrt());
        let pad = 1e-3 * (r.high - r.low).max(scale);
        let (mut lo, mut hi) = (r.low - r.low_residual - pad, r.high + r.high_residual + pad);
        let mut spent = 0;
        for _ in 0..6 {
            let edges: Vec<f64> = (0..=bins).map(|i| lo + (hi - lo) * i as f64 / bins as f64).collect();
            let h = self.histogram(&edges, opts)?;
            spent += h.factorizations;
            if h.below == 0 && h.above == 0 {
                return Ok(Histogram { factorizations: spent, ..h });
            }
            let w = hi - lo;
            if h.below > 0 {
                lo -= w;
            }
            if h.above > 0 {
                hi += w;
            }
        }
        Err(HinvError::Uncertified {
            what: "the spectral range of the histogram",
            why: format!("eigenvalues remained outside [{lo:e}, {hi:e}] after widening it six times"),
            hint: "give the edges explicitly",
        })
    }
}

/// Bin edges evenly spaced on a symmetric-log axis
/// `s(x) = sign(x) ln(1 + |x| / linthresh)` between `lower` and `upper`:
/// fine bins near zero, coarse far out, for spectra spanning decades on
/// both sides of zero.
pub fn symlog_edges(lower: f64, upper: f64, bins: usize, linthresh: f64) -> Vec<f64> {
    let s = |x: f64| x.signum() * (x.abs() / linthresh).ln_1p();
    let inv = |y: f64| y.signum() * linthresh * y.abs().exp_m1();
    let (a, b) = (s(lower), s(upper));
    (0..=bins).map(|i| inv(a + (b - a) * i as f64 / bins.max(1) as f64)).collect()
}
