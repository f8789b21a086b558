//! The Laplace approximation of a trained network: the log marginal
//! likelihood (evidence), the prior precision that maximizes it, and the
//! linearized predictive distribution, all exact (no Kronecker or diagonal
//! approximation of the curvature).
//!
//! # Conventions (those of laplace-torch)
//!
//! `netgraph`'s losses are batch means; the likelihood is the sum over the
//! `N` samples of the batch:
//!
//! - classification (softmax cross-entropy): `log p(D|theta) = -N loss`;
//! - regression (mean squared error over `N C` entries) with noise standard
//!   deviation `sigma`: `log p(D|theta) = -N C loss / (2 sigma^2) - N C
//!   log(sigma sqrt(2 pi))`.
//!
//! The curvature of the negative log-likelihood is `s C` with `C` the
//! curvature ([`CurvatureKind`]) of the mean loss and `s = N`
//! (classification) or `s = N C / (2 sigma^2)` (regression). The prior is
//! `N(0, delta^-1 I)` with its normaliser: `log p(theta) = P/2 log delta -
//! P/2 log 2 pi - delta/2 ||theta||^2`. The evidence is
//!
//! ```text
//! log p(D) ~ log p(D|theta) + log p(theta) - 1/2 log det(s C + delta I) + P/2 log 2 pi
//! ```
//!
//! (the `2 pi` terms cancel; this is laplace-torch's `log_marginal_likelihood`
//! with a scalar prior precision, prior mean 0 and temperature 1). Since
//! `s C + delta I = s (C + (delta/s) I)`, every determinant and solve is one
//! of the curvature shifted by `delta / s`.
//!
//! The predictive covariance of the outputs `f*` of new inputs is
//! `J* (s C + delta I)^-1 J*^T` (multi-right-hand-side solves), per sample a
//! `C x C` matrix; for regression the predictive of `y*` adds `sigma^2 I`.

use faer::{Mat, Side};
use netgraph::{Batch, LossSpec, Network, Params};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tridiag::Inertia;

use crate::curvature::{Curvature, CurvatureOptions};
use crate::error::{DenseFailure, DenseMatrix, HinvError, Result};
use crate::factor::{Elimination, FactorOptions, SolveOptions};
use crate::ggn::{CurvatureFactor, CurvatureKind, Route};

/// The likelihood the loss stands for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Likelihood {
    /// Softmax cross-entropy: a categorical likelihood.
    Classification,
    /// Mean squared error: a Gaussian likelihood with this noise standard
    /// deviation.
    Regression {
        /// `sigma`.
        sigma_noise: f64,
    },
}

/// Knobs of [`Laplace::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct LaplaceOptions {
    /// The curvature (default: the Gauss–Newton matrix, laplace-torch's
    /// `hessian_structure="full"` with its GGN backends).
    pub curvature: CurvatureKind,
    /// The likelihood; `None`: from the network's loss, with `sigma = 1`
    /// for regression.
    pub likelihood: Option<Likelihood>,
    /// Force a route; `None`: the cheaper by predicted cost, or the lifted
    /// route when `elimination` is not [`Elimination::Auto`].
    pub route: Option<Route>,
    /// Memory budget of the derivative blocks and the factorizations.
    pub memory_limit: Option<u64>,
    /// The block elimination of a lifted route's factorizations
    /// ([`Elimination::Auto`] by default). On wide layers the automatic
    /// one may leave the posterior's inertia uncertain rather than pay for
    /// a second elimination (docs/numerics.md), which refuses it;
    /// [`Elimination::Interleaved`] runs the whole check at that cost.
    pub elimination: Elimination,
}

impl Default for LaplaceOptions {
    fn default() -> Self {
        LaplaceOptions {
            curvature: CurvatureKind::GaussNewton,
            likelihood: None,
            route: None,
            memory_limit: None,
            elimination: Elimination::Auto,
        }
    }
}

/// The Laplace approximation at one point of one network on one data set.
#[derive(Debug, Clone)]
pub struct Laplace {
    curv: Curvature,
    net: Network,
    params: Params,
    likelihood: Likelihood,
    /// `s`: the negative log-likelihood's curvature is `s C`.
    scale: f64,
    log_likelihood: f64,
    theta_sq: f64,
    opts: LaplaceOptions,
}

/// The evidence and its parts at one prior precision.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// `delta`.
    pub prior_precision: f64,
    /// The log marginal likelihood (Laplace approximation).
    pub log_marginal_likelihood: f64,
    /// `log p(D|theta)`.
    pub log_likelihood: f64,
    /// `log p(theta)`, normaliser included.
    pub log_prior: f64,
    /// `log det(s C + delta I)`.
    pub log_det_posterior_precision: f64,
    /// The route that factored it.
    pub route: Route,
    /// Inertia of the posterior precision (all positive, certified).
    pub inertia: Inertia,
}

/// The result of [`Laplace::optimize_prior_precision`].
#[derive(Debug, Clone, Serialize)]
pub struct PriorSearch {
    /// The evidence at the best prior precision found.
    pub best: Evidence,
    /// Factorizations used.
    pub evaluations: usize,
    /// True when the maximum sits at an end of the search interval (widen it).
    pub at_boundary: bool,
}

/// The linearized (GLM) predictive of the outputs of new inputs.
#[derive(Debug, Clone, Serialize)]
pub struct Predictive {
    /// `f*(x)`, `batch x C` (row-major).
    pub mean: Vec<Vec<f64>>,
    /// Per sample, the `C x C` covariance `J*_s (s C + delta I)^-1 J*_s^T`
    /// of the outputs (row-major rows).
    pub covariance: Vec<Vec<Vec<f64>>>,
    /// `sigma^2` for regression (the predictive of `y*` adds it to the
    /// diagonal), 0 for classification.
    pub noise_variance: f64,
    /// The route of the solves.
    pub route: Route,
}

impl Laplace {
    /// Computes the curvature of the network at `params` on the training
    /// `batch`.
    ///
    /// # Errors
    /// [`HinvError::EliminationWithoutLiftedSystem`] for a forced Woodbury
    /// route with an elimination other than [`Elimination::Auto`] (an
    /// elimination alone takes the lifted route);
    /// [`HinvError::MissingOption`] for custom layers without a likelihood;
    /// the curvature's own errors ([`Curvature::new_with`]).
    pub fn new(net: &Network, params: &Params, batch: &Batch, opts: &LaplaceOptions) -> Result<Laplace> {
        // Refused before the curvature is computed, not at the first posterior.
        FactorOptions { elimination: opts.elimination, ..FactorOptions::default() }.check_route(opts.route)?;
        let likelihood = match (opts.likelihood, net.spec().map(|s| s.loss)) {
            (Some(l), _) => l,
            (None, Some(LossSpec::CrossEntropy { .. })) => Likelihood::Classification,
            (None, Some(LossSpec::Mse { .. })) => Likelihood::Regression { sigma_noise: 1.0 },
            (None, None) => {
                return Err(HinvError::MissingOption {
                    option: "LaplaceOptions::likelihood",
                    why: "a network of custom layers has no built-in loss to infer it from",
                })
            }
        };
        let copts = CurvatureOptions { memory_limit: opts.memory_limit, kind: opts.curvature };
        let curv = Curvature::new_with(net, params, batch, &copts)?;
        let n = batch.batch_size() as f64;
        let (scale, log_likelihood) = match likelihood {
            Likelihood::Classification => (n, -n * curv.loss()),
            Likelihood::Regression { sigma_noise } => {
                if !(sigma_noise.is_finite() && sigma_noise > 0.0) {
                    return Err(HinvError::InvalidNumber {
                        what: "sigma_noise",
                        value: sigma_noise,
                        expected: "a finite number above 0",
                    });
                }
                let c = n * net.spec().map_or(1, |s| s.loss.outputs()) as f64;
                let s2 = sigma_noise * sigma_noise;
                let ll = -c * curv.loss() / (2.0 * s2) - c * (sigma_noise * (2.0 * std::f64::consts::PI).sqrt()).ln();
                (c / (2.0 * s2), ll)
            }
        };
        let theta_sq = params.as_slice().iter().map(|v| v * v).sum();
        Ok(Laplace {
            curv,
            net: net.clone(),
            params: params.clone(),
            likelihood,
            scale,
            log_likelihood,
            theta_sq,
            opts: opts.clone(),
        })
    }

    /// The curvature of the mean loss.
    pub fn curvature(&self) -> &Curvature {
        &self.curv
    }
    /// The likelihood in use.
    pub fn likelihood(&self) -> Likelihood {
        self.likelihood
    }
    /// `s`: the negative log-likelihood's curvature is `s C`.
    pub fn scale(&self) -> f64 {
        self.scale
    }
    /// `log p(D|theta)`.
    pub fn log_likelihood(&self) -> f64 {
        self.log_likelihood
    }

    fn check_delta(delta: f64) -> Result<()> {
        if delta.is_finite() && delta > 0.0 {
            Ok(())
        } else {
            Err(HinvError::InvalidNumber {
                what: "the prior precision",
                value: delta,
                expected: "a finite number above 0",
            })
        }
    }

    /// `s C + delta I`, factored (as `s (C + delta/s I)`), refused unless
    /// positive definite with a certified inertia.
    fn posterior(&self, delta: f64) -> Result<CurvatureFactor> {
        Laplace::check_delta(delta)?;
        let fopts = FactorOptions {
            allow_singular: true,
            memory_limit: self.opts.memory_limit,
            elimination: self.opts.elimination,
            ..Default::default()
        };
        let f = self.curv.factor_route(delta / self.scale, &fopts, self.opts.route)?;
        let i = f.inertia();
        if i.negative > 0 || i.zero > 0 || i.uncertain > 0 {
            return Err(HinvError::NotPositiveDefinite {
                what: "the posterior precision s C + delta I",
                delta,
                inertia: i,
                elimination: f.as_lifted().map(|f| f.elimination()),
            });
        }
        Ok(f)
    }

    /// The evidence at prior precision `delta`: one factorization.
    pub fn evidence(&self, delta: f64) -> Result<Evidence> {
        let f = self.posterior(delta)?;
        let p = self.curv.num_params() as f64;
        let log_det = f.log_det()?.log_abs + p * self.scale.ln();
        let ln2pi = (2.0 * std::f64::consts::PI).ln();
        let log_prior = 0.5 * p * delta.ln() - 0.5 * p * ln2pi - 0.5 * delta * self.theta_sq;
        Ok(Evidence {
            prior_precision: delta,
            log_marginal_likelihood: self.log_likelihood + log_prior - 0.5 * log_det + 0.5 * p * ln2pi,
            log_likelihood: self.log_likelihood,
            log_prior,
            log_det_posterior_precision: log_det,
            route: f.route(),
            inertia: f.inertia(),
        })
    }

    /// The prior precision in `[lo, hi]` that maximizes the evidence, by
    /// golden-section search on `log delta` to a relative width of `rtol`
    /// (each step one factorization). For the Gauss–Newton curvature the
    /// evidence is concave in `delta`, so the search finds its maximum.
    pub fn optimize_prior_precision(&self, lo: f64, hi: f64, rtol: f64) -> Result<PriorSearch> {
        Laplace::check_delta(lo)?;
        Laplace::check_delta(hi)?;
        if hi <= lo {
            return Err(HinvError::InvalidNumber {
                what: "the upper end of the prior-precision interval",
                value: hi,
                expected: "above the lower end",
            });
        }
        if !(rtol.is_finite() && rtol > 0.0) {
            return Err(HinvError::InvalidNumber {
                what: "the relative tolerance of the prior-precision search",
                value: rtol,
                expected: "a finite number above 0",
            });
        }
        let phi = 0.5 * (5f64.sqrt() - 1.0);
        let (mut a, mut b) = (lo.ln(), hi.ln());
        let mut c = b - phi * (b - a);
        let mut d = a + phi * (b - a);
        let mut fc = self.evidence(c.exp())?;
        let mut fd = self.evidence(d.exp())?;
        let mut evaluations = 2;
        while b - a > rtol.ln_1p() {
            if fc.log_marginal_likelihood >= fd.log_marginal_likelihood {
                (b, d, fd) = (d, c, fc);
                c = b - phi * (b - a);
                fc = self.evidence(c.exp())?;
            } else {
                (a, c, fc) = (c, d, fd);
                d = a + phi * (b - a);
                fd = self.evidence(d.exp())?;
            }
            evaluations += 1;
        }
        let best = if fc.log_marginal_likelihood >= fd.log_marginal_likelihood { fc } else { fd };
        let t = best.prior_precision.ln();
        let at_boundary = (t - lo.ln()).abs() < 2.0 * rtol.ln_1p() || (hi.ln() - t).abs() < 2.0 * rtol.ln_1p();
        Ok(PriorSearch { best, evaluations, at_boundary })
    }

    /// The linearized predictive of the outputs for `inputs`
    /// (`batch x input_dim`) at prior precision `delta`: one factorization
    /// and one solve with `batch C` right-hand sides.
    pub fn predictive(&self, delta: f64, inputs: &Mat<f64>) -> Result<Predictive> {
        let cols = inputs.ncols().max(1);
        let bad = (0..inputs.nrows())
            .flat_map(|i| (0..inputs.ncols()).map(move |j| (i, j)))
            .find(|&(i, j)| !inputs[(i, j)].is_finite());
        if let Some((i, j)) = bad {
            return Err(HinvError::NonFinite { what: "the test inputs", index: i * cols + j, value: inputs[(i, j)] });
        }
        let f = self.posterior(delta)?;
        let jac = self.net.output_jacobian(&self.params, inputs)?;
        let x = f.solve_with(jac.jt.as_ref(), &SolveOptions::default())?.x;
        let (nb, c) = (jac.values.nrows(), jac.values.ncols());
        let mut covariance = Vec::with_capacity(nb);
        for s in 0..nb {
            let cov: Vec<Vec<f64>> = (0..c)
                .map(|k| {
                    (0..c)
                        .map(|kp| {
                            let (i, j) = (s * c + k, s * c + kp);
                            // Both triangles, averaged: the solve is exact only to its tolerance.
                            let a: f64 = (0..x.nrows()).map(|r| jac.jt[(r, i)] * x[(r, j)]).sum();
                            let b: f64 = (0..x.nrows()).map(|r| jac.jt[(r, j)] * x[(r, i)]).sum();
                            0.5 * (a + b) / self.scale
                        })
                        .collect()
                })
                .collect();
            covariance.push(cov);
        }
        let mean = (0..nb).map(|s| (0..c).map(|k| jac.values[(s, k)]).collect()).collect();
        let noise_variance = match self.likelihood {
            Likelihood::Classification => 0.0,
            Likelihood::Regression { sigma_noise } => sigma_noise * sigma_noise,
        };
        Ok(Predictive { mean, covariance, noise_variance, route: f.route() })
    }
}

fn softmax(v: &[f64]) -> Vec<f64> {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = v.iter().map(|x| (x - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

impl Predictive {
    /// Class probabilities by the probit approximation (laplace-torch's
    /// `link_approx="probit"`): `softmax(f / sqrt(1 + pi/8 diag(Sigma)))`.
    pub fn probit(&self) -> Vec<Vec<f64>> {
        self.mean
            .iter()
            .zip(&self.covariance)
            .map(|(m, cov)| {
                let scaled: Vec<f64> = m
                    .iter()
                    .enumerate()
                    .map(|(k, f)| f / (1.0 + std::f64::consts::PI / 8.0 * cov[k][k]).sqrt())
                    .collect();
                softmax(&scaled)
            })
            .collect()
    }

    /// Class probabilities by Monte Carlo (laplace-torch's
    /// `link_approx="mc"`): the mean of `softmax(f)` over `samples` draws of
    /// `f ~ N(mean, Sigma)` (square root of `Sigma` from its symmetric
    /// eigendecomposition, negative rounding clipped), seeded.
    pub fn sample_probabilities(&self, samples: usize, seed: u64) -> Result<Vec<Vec<f64>>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(self.mean.len());
        for (m, cov) in self.mean.iter().zip(&self.covariance) {
            let c = m.len();
            let sigma = Mat::from_fn(c, c, |i, j| cov[i][j]);
            let eig = sigma.self_adjoint_eigen(Side::Lower).map_err(|_| HinvError::Dense {
                matrix: DenseMatrix::PredictiveCovariance,
                n: c,
                failure: DenseFailure::NoConvergence,
            })?;
            let (u, s) = (eig.U(), eig.S());
            let root = Mat::from_fn(c, c, |i, j| u[(i, j)] * s[j].max(0.0).sqrt());
            let mut acc = vec![0.0; c];
            for _ in 0..samples {
                let z: Vec<f64> = (0..c).map(|_| standard_normal(&mut rng)).collect();
                let f: Vec<f64> = (0..c).map(|i| m[i] + (0..c).map(|j| root[(i, j)] * z[j]).sum::<f64>()).collect();
                for (a, p) in acc.iter_mut().zip(softmax(&f)) {
                    *a += p;
                }
            }
            out.push(acc.iter().map(|a| a / samples.max(1) as f64).collect());
        }
        Ok(out)
    }
}

/// Box–Muller.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use netgraph::{Activation, Batch, Network};

    use super::{Laplace, LaplaceOptions};
    use crate::factor::Elimination;
    use crate::ggn::{CurvatureKind, Route};

    /// A refused posterior names the interleaved elimination only where it
    /// may help: counts left uncertain after the parameters-first one.
    #[test]
    fn a_refusal_names_the_interleaved_elimination_where_it_may_help() {
        let refusal = |uncertain, elimination| {
            let inertia = tridiag::Inertia { positive: 10, negative: 0, zero: 0, uncertain };
            let e = crate::HinvError::NotPositiveDefinite { what: "the posterior", delta: 1.0, inertia, elimination };
            e.to_string().contains("the interleaved elimination")
        };
        assert!(refusal(2, Some(Elimination::ParametersFirst)));
        assert!(!refusal(0, Some(Elimination::ParametersFirst)));
        assert!(!refusal(2, Some(Elimination::Interleaved)));
        assert!(!refusal(2, None));
    }

    /// The posterior's lifted factorization runs the elimination the
    /// options ask for, and both answer the same evidence (the same matrix).
    #[test]
    fn the_posterior_runs_the_elimination_asked_for() {
        let net = Network::builder(3).dense(5, Activation::Tanh).repeat(3).cross_entropy(3).unwrap();
        let params = net.init_params(5);
        let batch = Batch::random_classification(3, 3, 4, 6);
        let mut evidence = Vec::new();
        for elimination in [Elimination::Interleaved, Elimination::ParametersFirst] {
            let opts = LaplaceOptions {
                curvature: CurvatureKind::Hessian,
                route: Some(Route::Lifted),
                elimination,
                ..LaplaceOptions::default()
            };
            let lap = Laplace::new(&net, &params, &batch, &opts).unwrap();
            let f = lap.posterior(10.0).unwrap();
            assert_eq!(f.as_lifted().map(|f| f.elimination()), Some(elimination));
            evidence.push(lap.evidence(10.0).unwrap().log_marginal_likelihood);
        }
        // Two eliminations of one well-conditioned matrix (prior precision
        // 10 dominates): the log-determinants agree to rounding.
        assert!((evidence[0] - evidence[1]).abs() <= 1e-10 * evidence[0].abs().max(1.0), "{evidence:?}");
    }
}
