//! The Gauss–Newton curvature and the Laplace approximation against
//! independent references: the GGN from an explicit (finite-difference)
//! Jacobian, the Hessian of a linear network, the expected Fisher from
//! per-class gradients, dense solves, determinants and spectra.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use hinv::laplace::{Laplace, LaplaceOptions, Likelihood};
use hinv::reference::{self, DenseLimit};
use hinv::{Curvature, CurvatureKind, CurvatureOptions, Elimination, FactorOptions, HinvError, Route, SolveOptions};
use netgraph::{Activation, Batch, Network, Params, Targets};

const U: f64 = f64::EPSILON;

fn mm(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let mut c = Mat::zeros(a.nrows(), b.ncols());
    matmul(c.as_mut(), Accum::Replace, a, b, 1.0, Par::Seq);
    c
}

fn max_abs(a: MatRef<'_, f64>) -> f64 {
    let mut m = 0.0f64;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            m = m.max(a[(i, j)].abs());
        }
    }
    m
}

fn rel_diff(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    max_abs((a - b).as_ref()) / max_abs(b.as_ref())
}

fn ggn(net: &Network, params: &Params, batch: &Batch) -> Curvature {
    let opts = CurvatureOptions { kind: CurvatureKind::GaussNewton, ..Default::default() };
    Curvature::new_with(net, params, batch, &opts).expect("ggn curvature")
}

fn classifier(gain: f64) -> (Network, Params, Batch) {
    let net = Network::builder(3).dense(4, Activation::Tanh).dense(4, Activation::Tanh).cross_entropy(3).unwrap();
    let mut params = net.init_params(1);
    params.scale(gain);
    (net, params, Batch::random_classification(3, 3, 5, 2))
}

/// ALGORITHM.md's Gauss–Newton blocks, put through the Hessian's product,
/// give `J^T Lambda J` with `J` by central differences of the outputs.
#[test]
fn ggn_blocks_equal_explicit_jacobian_product() {
    for gain in [1.0, 2.5] {
        let (net, params, batch) = classifier(gain);
        let curv = ggn(&net, &params, &batch);
        let dense = reference::hessian(&curv, DenseLimit::default()).unwrap();
        let lam = curv.output_curvature().unwrap().lambda_block().to_dense();
        let jfd = net.output_jacobian_fd(&params, batch.inputs()).unwrap();
        let from_fd = mm(jfd.transpose(), mm(lam.as_ref(), jfd.as_ref()).as_ref());
        // Central differences with h = 1e-6: ~1e-9 absolute in J, entries O(1).
        let e_fd = rel_diff(&dense, &from_fd);
        assert!(e_fd < 1e-7, "gain {gain}: GGN vs finite-difference J^T Lambda J: {e_fd:e}");
        let jt = curv.ggn_jacobian_t().unwrap().unwrap();
        let exact = mm(jt.as_ref(), mm(lam.as_ref(), jt.transpose()).as_ref());
        // Two exact routes, a few roundings apart.
        let e = rel_diff(&dense, &exact);
        assert!(e < 1e-13, "gain {gain}: GGN vs exact J^T Lambda J: {e:e}");
    }
}

/// The hidden layers' Gauss–Newton products (their matrix-free form with
/// `A`, `G`, `E` dropped) against the Gauss–Newton blocks' own products
/// (the same blocks wrapped by `from_derivatives`, which reads them): the
/// same sums in other orders, 1e-13 relative.
#[test]
fn ggn_products_match_the_ggn_blocks() {
    for gain in [1.0, 2.5] {
        let (net, params, batch) = classifier(gain);
        let curv = ggn(&net, &params, &batch);
        let d = curv.derivatives();
        assert!(d.product(0).is_some() && d.product(1).is_some(), "hidden layers keep their products");
        assert!(d.product(2).is_none(), "the loss layer's Gauss-Newton blocks are its own");
        let blocks = Curvature::from_derivatives(d.clone()).unwrap();
        let n = curv.num_params();
        let v = Mat::from_fn(n, 2, |i, j| ((i * 7 + j * 3) % 11) as f64 / 5.0 - 1.0);
        let e = rel_diff(&curv.hvp_many(v.as_ref()).unwrap(), &blocks.hvp_many(v.as_ref()).unwrap());
        assert!(e < 1e-13, "gain {gain}: {e:e}");
    }
}

/// For a linear network with MSE, the loss is quadratic in the outputs and
/// the network's second derivatives vanish... except that products of
/// weights make `o` bilinear; the Hessian keeps the term
/// `sum_o dL/do d2o/dx2`, so `GGN = H` only where the residual vanishes.
/// With a single linear layer (o affine in x) the two are equal exactly.
#[test]
fn linear_network_mse_ggn_equals_hessian() {
    let net = Network::builder(4).mse(3).unwrap();
    let params = net.init_params(5);
    let batch = Batch::random_regression(4, 3, 6, 7);
    let h = reference::hessian(&Curvature::new(&net, &params, &batch).unwrap(), DenseLimit::default()).unwrap();
    let g = reference::hessian(&ggn(&net, &params, &batch), DenseLimit::default()).unwrap();
    assert!(rel_diff(&g, &h) < 1e-14, "{:e}", rel_diff(&g, &h));

    // Deeper identity networks at a zero-residual point (targets = outputs):
    // the residual term vanishes and GGN = H.
    let deep = Network::builder(3).dense(4, Activation::Identity).dense(4, Activation::Identity).mse(2).unwrap();
    let p = deep.init_params(3);
    let inputs = Batch::random_regression(3, 2, 5, 9).inputs().clone();
    let o = deep.output_jacobian(&p, &inputs).unwrap().values;
    let exact_fit = Batch::new(inputs, Targets::Values(o)).unwrap();
    let h = reference::hessian(&Curvature::new(&deep, &p, &exact_fit).unwrap(), DenseLimit::default()).unwrap();
    let g = reference::hessian(&ggn(&deep, &p, &exact_fit), DenseLimit::default()).unwrap();
    assert!(rel_diff(&g, &h) < 1e-13, "{:e}", rel_diff(&g, &h));
}

/// For softmax cross-entropy the GGN of the mean loss is the expected
/// Fisher `1/B sum_s E_{y ~ q_s} [grad l_s(y) grad l_s(y)^T]`, built here
/// from per-sample, per-class gradients.
#[test]
fn cross_entropy_ggn_is_expected_fisher() {
    let (net, params, batch) = classifier(2.0);
    let g = reference::hessian(&ggn(&net, &params, &batch), DenseLimit::default()).unwrap();
    let p = net.num_params();
    let nb = batch.batch_size();
    let q = net.output_jacobian(&params, batch.inputs()).unwrap().values;
    let mut fisher = Mat::<f64>::zeros(p, p);
    for s in 0..nb {
        let row = Mat::from_fn(1, 3, |_, j| batch.inputs()[(s, j)]);
        let m = (0..3).map(|k| q[(s, k)]).fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = (0..3).map(|k| (q[(s, k)] - m).exp()).sum();
        for y in 0..3 {
            let prob = (q[(s, y)] - m).exp() / z;
            let one = Batch::new(row.clone(), Targets::Classes(vec![y])).unwrap();
            let (_, grad) = net.gradient(&params, &one).unwrap();
            for i in 0..p {
                for j in 0..p {
                    fisher[(i, j)] += prob * grad[i] * grad[j] / nb as f64;
                }
            }
        }
    }
    assert!(rel_diff(&g, &fisher) < 1e-12, "{:e}", rel_diff(&g, &fisher));
}

/// The lifted and Woodbury routes against a dense solve of the dense GGN:
/// solves (several right-hand sides), determinants, and the inertia
/// (positive definite, certified) on a benign and an ill-conditioned case.
#[test]
fn routes_match_dense_and_are_positive_definite() {
    for gain in [1.0, 2.5] {
        let (net, params, batch) = classifier(gain);
        let curv = ggn(&net, &params, &batch);
        let dense = reference::hessian(&curv, DenseLimit::default()).unwrap();
        let spec = reference::spectrum(dense.as_ref()).unwrap();
        let top = spec.eigenvalues.last().copied().unwrap();
        // PSD up to the rounding of forming it.
        assert!(spec.eigenvalues[0] > -1e-14 * top, "min eigenvalue {:e}", spec.eigenvalues[0]);
        let p = curv.num_params();
        for delta in [1e-6, 1e-3, 1.0] {
            let rhs = Mat::from_fn(p, 3, |i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
            let cond = spec.condition(delta);
            for route in [Route::Lifted, Route::Woodbury] {
                let f = curv.factor_route(delta, &FactorOptions::default(), Some(route)).unwrap();
                assert_eq!(f.route(), route);
                let x = f.solve_with(rhs.as_ref(), &SolveOptions::default()).unwrap().x;
                for j in 0..3 {
                    let col: Vec<f64> = rhs.col(j).iter().copied().collect();
                    let xd = reference::solve(dense.as_ref(), delta, &col).unwrap();
                    let num: f64 = (0..p).map(|i| (x[(i, j)] - xd[i]).powi(2)).sum::<f64>().sqrt();
                    let den: f64 = xd.iter().map(|v| v * v).sum::<f64>().sqrt();
                    // Both solutions carry ~u cond of error.
                    assert!(
                        num / den <= 10.0 * U * cond + 1e-15,
                        "{route:?} delta {delta}: {:e} vs cond {cond:e}",
                        num / den
                    );
                }
                let ld = f.log_det().unwrap();
                let ld_dense = spec.log_det(delta).log_abs;
                let rel = (ld.log_abs - ld_dense).abs() / ld_dense.abs().max(1.0);
                assert!(rel <= 10.0 * U * cond, "{route:?} delta {delta}: log det {} vs {ld_dense}", ld.log_abs);
                assert_eq!(ld.sign, 1.0);
                let i = f.inertia();
                assert_eq!((i.positive, i.negative, i.zero, i.uncertain), (p, 0, 0, 0), "{route:?} delta {delta}");
            }
        }
        // The lifted count alone (no knowledge of PSD-ness) finds no
        // eigenvalue of GGN below -1e-6 either.
        let below = curv.count_eigenvalues_below(-1e-6).unwrap();
        assert_eq!(below.count, 0);
        // Products: the lifted GGN product against the dense matrix.
        let v: Vec<f64> = (0..p).map(|i| (i as f64).sin()).collect();
        let gv = curv.hvp(&v).unwrap();
        let gv_dense = mm(dense.as_ref(), MatRef::from_column_major_slice(&v, p, 1));
        let err = (0..p).map(|i| (gv[i] - gv_dense[(i, 0)]).abs()).fold(0.0, f64::max);
        assert!(err <= 1e-13 * max_abs(gv_dense.as_ref()).max(1e-300), "{err:e}");
    }
}

/// Predicted costs pick the Woodbury route when batch x classes is small
/// next to the lifted blocks, and the lifted route for the Hessian.
#[test]
fn automatic_route_choice() {
    let net = Network::builder(5).without_bias().dense(10, Activation::Tanh).repeat(6).cross_entropy(3).unwrap();
    let params = net.init_params(3);
    let batch = Batch::random_classification(5, 3, 8, 4);
    let curv = ggn(&net, &params, &batch);
    let costs = curv.route_costs();
    assert!(costs.woodbury.unwrap() < costs.lifted);
    let f = curv.factor_route(1e-3, &FactorOptions::default(), None).unwrap();
    assert_eq!(f.route(), Route::Woodbury);
    let h = Curvature::new(&net, &params, &batch).unwrap();
    assert_eq!(h.route_costs().woodbury, None);
    assert_eq!(h.factor_route(1e-3, &FactorOptions::default(), None).unwrap().route(), Route::Lifted);
    assert!(matches!(h.factor_woodbury(1e-3), Err(HinvError::WrongCurvature { .. })));
    assert!(matches!(curv.factor_woodbury(0.0), Err(HinvError::InvalidNumber { .. })));
    // An elimination asked for is one of the lifted system: it takes the
    // lifted route where the cost would take the Woodbury one, and is
    // refused with a forced Woodbury route rather than ignored.
    for elimination in [Elimination::Interleaved, Elimination::ParametersFirst] {
        let opts = FactorOptions { elimination, ..FactorOptions::default() };
        let f = curv.factor_route(1e-3, &opts, None).unwrap();
        assert_eq!(f.route(), Route::Lifted);
        assert_eq!(f.as_lifted().map(|f| f.elimination()), Some(elimination));
        let e = curv.factor_route(1e-3, &opts, Some(Route::Woodbury)).map(|_| ()).unwrap_err();
        assert!(matches!(e, HinvError::EliminationWithoutLiftedSystem { elimination: el } if el == elimination));
        let lopts = LaplaceOptions { route: Some(Route::Woodbury), elimination, ..LaplaceOptions::default() };
        let e = Laplace::new(&net, &params, &batch, &lopts).map(|_| ()).unwrap_err();
        assert!(matches!(e, HinvError::EliminationWithoutLiftedSystem { .. }), "{e}");
        // The posterior alike: lifted with the elimination, Woodbury without.
        for (elimination, route) in [(elimination, Route::Lifted), (Elimination::Auto, Route::Woodbury)] {
            let lopts = LaplaceOptions { elimination, ..LaplaceOptions::default() };
            let lap = Laplace::new(&net, &params, &batch, &lopts).unwrap();
            assert_eq!(lap.evidence(1.0).unwrap().route, route, "{elimination:?}");
        }
    }
}

/// Dense evidence from the spectrum of the dense curvature.
fn dense_evidence(lap: &Laplace, params: &Params, dense: &Mat<f64>, delta: f64) -> f64 {
    let spec = reference::spectrum(dense.as_ref()).unwrap();
    let p = params.len() as f64;
    let s = lap.scale();
    let log_det: f64 = spec.eigenvalues.iter().map(|l| (s * l + delta).ln()).sum();
    let theta_sq: f64 = params.as_slice().iter().map(|v| v * v).sum();
    let ln2pi = (2.0 * std::f64::consts::PI).ln();
    let log_prior = 0.5 * p * delta.ln() - 0.5 * p * ln2pi - 0.5 * delta * theta_sq;
    lap.log_likelihood() + log_prior - 0.5 * log_det + 0.5 * p * ln2pi
}

#[test]
fn evidence_and_predictive_match_dense() {
    let (net, params, batch) = classifier(2.0);
    for route in [Route::Lifted, Route::Woodbury] {
        let opts = LaplaceOptions { route: Some(route), ..Default::default() };
        let lap = Laplace::new(&net, &params, &batch, &opts).unwrap();
        let dense = reference::hessian(lap.curvature(), DenseLimit::default()).unwrap();
        for delta in [1e-2, 1.0, 30.0] {
            let ev = lap.evidence(delta).unwrap();
            let d = dense_evidence(&lap, &params, &dense, delta);
            let rel = (ev.log_marginal_likelihood - d).abs() / d.abs();
            assert!(rel < 1e-10, "{route:?} delta {delta}: {} vs {d}", ev.log_marginal_likelihood);
        }
        // The optimum beats its neighbours.
        let best = lap.optimize_prior_precision(1e-4, 1e4, 1e-6).unwrap();
        assert!(!best.at_boundary);
        let b = best.best.prior_precision;
        for f in [0.99, 1.01] {
            assert!(best.best.log_marginal_likelihood >= lap.evidence(b * f).unwrap().log_marginal_likelihood);
        }
        // Predictive covariance against J* (s GGN + delta I)^-1 J*^T, dense.
        let test = Batch::random_classification(3, 3, 4, 99);
        let pred = lap.predictive(0.5, test.inputs()).unwrap();
        let jt = net.output_jacobian(&params, test.inputs()).unwrap().jt;
        let s = lap.scale();
        let mut post = Mat::from_fn(dense.nrows(), dense.ncols(), |i, j| s * dense[(i, j)]);
        for i in 0..post.nrows() {
            post[(i, i)] += 0.5;
        }
        let x = faer::linalg::solvers::Solve::solve(&post.partial_piv_lu(), &jt);
        let cov = mm(jt.transpose(), x.as_ref());
        for (si, c) in pred.covariance.iter().enumerate() {
            for k in 0..3 {
                for kp in 0..3 {
                    let want = cov[(si * 3 + k, si * 3 + kp)];
                    assert!((c[k][kp] - want).abs() <= 1e-10 * cov[(si * 3 + k, si * 3 + k)].abs(), "{route:?}");
                }
            }
        }
        // Where the posterior is tight (large prior precision) the probit
        // approximation and Monte Carlo (20000 draws: ~0.3% noise) agree.
        let tight = lap.predictive(1e3, test.inputs()).unwrap();
        let probit = tight.probit();
        let mc = tight.sample_probabilities(20000, 1).unwrap();
        for (a, b) in probit.iter().zip(&mc) {
            assert!((a.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-2, "probit {x} vs sampled {y}");
            }
        }
    }
}

#[test]
fn regression_evidence_matches_dense() {
    let net = Network::builder(3).dense(5, Activation::Tanh).mse(2).unwrap();
    let params = net.init_params(2);
    let batch = Batch::random_regression(3, 2, 6, 3);
    let opts = LaplaceOptions { likelihood: Some(Likelihood::Regression { sigma_noise: 0.7 }), ..Default::default() };
    let lap = Laplace::new(&net, &params, &batch, &opts).unwrap();
    // s = N C / (2 sigma^2).
    assert!((lap.scale() - 12.0 / (2.0 * 0.49)).abs() < 1e-12);
    let dense = reference::hessian(lap.curvature(), DenseLimit::default()).unwrap();
    let ev = lap.evidence(2.0).unwrap();
    let d = dense_evidence(&lap, &params, &dense, 2.0);
    assert!((ev.log_marginal_likelihood - d).abs() / d.abs() < 1e-10);
    let pred = lap.predictive(2.0, batch.inputs()).unwrap();
    assert!((pred.noise_variance - 0.49).abs() < 1e-15);
}

/// With the Hessian, an indefinite posterior precision is refused, never
/// turned into a wrong evidence.
#[test]
fn indefinite_hessian_posterior_is_refused() {
    let (net, params, batch) = classifier(3.0);
    let h = Curvature::new(&net, &params, &batch).unwrap();
    let neg = h.count_eigenvalues_below(-1e-6).unwrap().count;
    let opts = LaplaceOptions { curvature: CurvatureKind::Hessian, ..Default::default() };
    let lap = Laplace::new(&net, &params, &batch, &opts).unwrap();
    match lap.evidence(1e-6 * 5.0) {
        Err(HinvError::NotPositiveDefinite { inertia, .. }) => assert!(inertia.negative > 0 || inertia.uncertain > 0),
        Ok(ev) => assert_eq!(neg, 0, "an indefinite posterior gave an evidence {ev:?}"),
        Err(e) => panic!("{e}"),
    }
}

/// Below the rounding of `U^T U` (softmax makes it singular: each sample's
/// `R_s` has rank `C - 1`) the Woodbury route cannot factor
/// `delta I + U^T U`: forced, it says so; chosen by cost, it gives way to
/// the lifted route. Non-finite test inputs are refused, not propagated.
#[test]
fn woodbury_below_rounding_and_non_finite_test_inputs() {
    let (net, params, batch) = classifier(1.0);
    let curv = ggn(&net, &params, &batch);
    let opts = FactorOptions { allow_singular: true, ..Default::default() };
    assert!(matches!(curv.factor_route(1e-300, &opts, Some(Route::Woodbury)), Err(HinvError::IllConditioned { .. })));
    assert_eq!(curv.factor_route(1e-300, &opts, None).unwrap().route(), Route::Lifted);
    assert_eq!(curv.factor_route(1e-3, &opts, Some(Route::Woodbury)).unwrap().route(), Route::Woodbury);
    let lap = Laplace::new(&net, &params, &batch, &LaplaceOptions::default()).unwrap();
    let mut x = Mat::<f64>::zeros(2, 3);
    x[(1, 2)] = f64::NAN;
    match lap.predictive(1.0, &x) {
        Err(HinvError::NonFinite { what, index, .. }) => assert_eq!((what, index), ("the test inputs", 5)),
        other => panic!("{other:?}"),
    }
}
