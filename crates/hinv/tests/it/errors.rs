//! Typed errors of the facade: wrong lengths, non-finite values, singular
//! systems. Messages are snapshot-tested so they stay helpful.

use crate::common;

use common::*;
use hinv::reference;
use hinv::{
    Curvature, CurvatureKind, DenseFailure, DenseMatrix, Elimination, FactorOptions, HinvError, OverflowSite, Route,
};
use netgraph::Activation;

fn small() -> Curvature {
    let net = network(3, 4, 3, Activation::Tanh, true, false, false);
    let p = params(&net, 2.0, 1);
    let b = batch_for(&net, 3, 2, false, 2);
    Curvature::new(&net, &p, &b).unwrap()
}

#[test]
fn wrong_length_and_non_finite_are_named() {
    let curv = small();
    let n = curv.num_params();
    let e = curv.hvp(&vec![1.0; n + 1]).unwrap_err();
    insta::assert_snapshot!("hvp_wrong_length", e.to_string());
    let f = curv.factor(1e-2).unwrap();
    let e = f.solve(&vec![0.0; n - 1]).unwrap_err();
    insta::assert_snapshot!("solve_wrong_length", e.to_string());
    let mut v = vec![0.5; n];
    v[7] = f64::NAN;
    let e = f.solve(&v).unwrap_err();
    insta::assert_snapshot!("solve_nan", e.to_string());
    let e = curv.factor(f64::INFINITY).unwrap_err();
    insta::assert_snapshot!("eps_infinite", e.to_string());
}

/// A ReLU layer whose units are all dead (zero weights, negative bias)
/// makes the Hessian exactly zero in whole rows and columns, so `H + 0 I`
/// is exactly singular: the factorization must say so, name a block, and
/// suggest a larger eps; with `allow_singular` the zeros show in the inertia.
#[test]
fn singular_hessian_is_a_typed_error() {
    let net = network(3, 4, 3, Activation::Relu, true, false, false);
    let mut p = params(&net, 1.0, 5);
    let counts = net.param_counts();
    let offs = blockmat::offsets(&counts);
    // Layer 2 (index 1): weights 4x4 then bias 4.
    let layer = &mut p.as_mut_slice()[offs[1]..offs[2]];
    let (w, b) = layer.split_at_mut(16);
    w.iter_mut().for_each(|x| *x = 0.0);
    b.iter_mut().for_each(|x| *x = -1.0);
    let batch = batch_for(&net, 3, 2, false, 6);
    let curv = Curvature::new(&net, &p, &batch).unwrap();
    let err = curv.factor(0.0).unwrap_err();
    assert!(matches!(err, HinvError::Singular { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("larger eps"), "{msg}");
    insta::assert_snapshot!("singular", msg);
    let f = curv.factor_with(0.0, &FactorOptions { allow_singular: true, ..Default::default() }).unwrap();
    assert!(f.inertia().zero > 0);
    assert!(f.solve(curv.gradient()).is_err());
    // The dead layer's parameters are exact zero rows of the lifted
    // system: the pivoted determinant sees them too.
    let d = f.log_det().unwrap();
    assert_eq!((d.log_abs, d.sign), (f64::NEG_INFINITY, 0.0));
    // Zero pivots are never certain.
    assert!(f.inertia().uncertain >= f.inertia().zero);
}

/// Overflow in the passes is an error naming where it appeared, and the
/// memory limits refuse before allocating.
#[test]
fn overflow_and_memory_limits() {
    let net = network(3, 6, 14, Activation::Square, false, false, false);
    let p = params(&net, 3.0, 1);
    let b = batch_for(&net, 3, 2, false, 2);
    let err = Curvature::new(&net, &p, &b).unwrap_err();
    assert!(matches!(err, HinvError::Overflow { what: OverflowSite::Loss, .. }), "{err}");
    insta::assert_snapshot!("overflow", err.to_string());

    let curv = small();
    let err = reference::hessian(&curv, reference::DenseLimit { bytes: 1000 }).unwrap_err();
    insta::assert_snapshot!("dense_too_large", err.to_string());
    let opts = FactorOptions { memory_limit: Some(1 << 10), ..Default::default() };
    let err = curv.factor_with(1e-2, &opts).unwrap_err();
    insta::assert_snapshot!("factor_too_large", err.to_string());
    // The estimate covers what the factorization really holds: at least the
    // dense Schur complements.
    let d = curv.derivatives();
    let blocks: u64 =
        (0..d.layers.len()).map(|l| ((d.param_sizes[l] + 2 * d.act_sizes[l + 1]) as u64).pow(2) * 8).sum();
    assert!(hinv::factor_bytes(d) >= blocks);
}

/// Derivatives built elsewhere pass the same checks as `Curvature::new`:
/// a block of the wrong shape, a gradient of the wrong length or a NaN is
/// an error naming it, never an index out of bounds later.
#[test]
fn foreign_derivatives_are_checked() {
    let net = network(3, 4, 3, Activation::Tanh, true, false, false);
    let p = params(&net, 2.0, 1);
    let b = batch_for(&net, 3, 2, false, 2);
    let good = net.derivatives(&p, &b).unwrap();
    assert!(Curvature::from_derivatives(good.clone()).is_ok());

    let mut d = good.clone();
    d.layers[1].g = blockmat::Block::zeros(1, 1);
    let e = Curvature::from_derivatives(d).unwrap_err();
    assert!(matches!(e, HinvError::InconsistentBlocks { layer: 2, block: "G", .. }), "{e}");
    insta::assert_snapshot!("inconsistent_block", e.to_string());

    let mut d = good.clone();
    d.gradient.pop();
    let e = Curvature::from_derivatives(d).unwrap_err();
    assert!(matches!(e, HinvError::InconsistentBlocks { block: "gradient", .. }), "{e}");

    let mut d = good.clone();
    d.act_sizes.pop();
    assert!(matches!(Curvature::from_derivatives(d), Err(HinvError::InconsistentBlocks { layer: 0, .. })));

    let mut d = good;
    d.gradient[0] = f64::NAN;
    let e = Curvature::from_derivatives(d).unwrap_err();
    assert!(matches!(e, HinvError::Overflow { what: OverflowSite::Gradient { index: 0 }, .. }), "{e}");
}

/// A non-finite derivative block is reported by layer and name, the first
/// in layer order when there are several (the later one a NaN, the earlier
/// an infinity, in different blocks), in a shallow and a deep network.
#[test]
fn first_non_finite_block_in_layer_order() {
    for depth in [3, 64] {
        let net = network(3, 8, depth, Activation::Tanh, true, false, false);
        let good = net.derivatives(&params(&net, 1.0, 3), &batch_for(&net, 3, 2, false, 4)).unwrap();
        let poisoned = |b: &blockmat::Block, value: f64| {
            let (r, c) = b.shape();
            blockmat::Block::dense(faer::Mat::from_fn(r, c, |i, j| if (i, j) == (r - 1, c - 1) { value } else { 0.0 }))
        };
        let (early, late) = (depth / 2, depth - 1);
        let mut d = good.clone();
        d.layers[late].a = poisoned(&d.layers[late].a, f64::NAN);
        d.layers[early].dx = poisoned(&d.layers[early].dx, f64::INFINITY);
        let e = Curvature::from_derivatives(d).unwrap_err();
        let want = OverflowSite::DerivativeBlock { layer: early + 1, block: "Dx" };
        assert!(matches!(e, HinvError::Overflow { what, value } if what == want && value == f64::INFINITY), "{e}");
    }
}

/// The memory budget of the derivative blocks is the caller's when given,
/// not the machine's free memory at the time of the call.
#[test]
fn derivative_memory_limit_is_settable() {
    let net = network(3, 4, 3, Activation::Tanh, true, false, false);
    let p = params(&net, 2.0, 1);
    let b = batch_for(&net, 3, 2, false, 2);
    let tight = hinv::CurvatureOptions { memory_limit: Some(64), ..Default::default() };
    let e = Curvature::new_with(&net, &p, &b, &tight).unwrap_err();
    assert!(matches!(e, HinvError::Net(netgraph::NetError::TooLarge { .. })), "{e}");
    let roomy = hinv::CurvatureOptions { memory_limit: Some(u64::MAX), ..Default::default() };
    let curv = Curvature::new_with(&net, &p, &b, &roomy).unwrap();
    assert_eq!(curv.gradient(), Curvature::new(&net, &p, &b).unwrap().gradient());
}

/// The errors a caller branches on carry typed fields, not text: which
/// dense matrix failed and how, which curvature a route needs, how far a
/// shifted solve got.
#[test]
fn typed_fields_of_dense_route_and_shift_errors() {
    let curv = small();
    let n = curv.num_params();
    // An exactly singular dense H + eps I: the zero matrix at eps = 0.
    let zero = faer::Mat::<f64>::zeros(n, n);
    let e = reference::solve(zero.as_ref(), 0.0, &vec![1.0; n]).unwrap_err();
    assert!(
        matches!(e, HinvError::Dense { matrix: DenseMatrix::ReferenceSystem, n: m, failure: DenseFailure::Singular } if m == n),
        "{e}"
    );
    insta::assert_snapshot!("dense_singular", e.to_string());
    // The reference routes take any matrix: a non-square one is refused,
    // not indexed out of bounds.
    let wide = faer::Mat::<f64>::zeros(n - 1, n);
    let e = reference::solve(wide.as_ref(), 1.0, &vec![1.0; n]).unwrap_err();
    assert!(
        matches!(e, HinvError::WrongLength { what: "the dense matrix", expected, found } if (expected, found) == (n, n - 1)),
        "{e}"
    );
    insta::assert_snapshot!("dense_not_square", e.to_string());
    assert!(matches!(reference::spectrum(wide.as_ref()), Err(HinvError::WrongLength { .. })));

    let e = curv.factor_woodbury(1e-3).unwrap_err();
    assert!(
        matches!(e, HinvError::WrongCurvature { needs: CurvatureKind::GaussNewton, found: CurvatureKind::Hessian, .. }),
        "{e}"
    );
    insta::assert_snapshot!("woodbury_on_hessian", e.to_string());
    // An elimination asked for with a route that has none is refused, not
    // ignored, before any factorization.
    let opts = FactorOptions { elimination: Elimination::ParametersFirst, ..FactorOptions::default() };
    let e = curv.factor_route(1e-3, &opts, Some(Route::Woodbury)).map(|_| ()).unwrap_err();
    assert!(matches!(e, HinvError::EliminationWithoutLiftedSystem { elimination: Elimination::ParametersFirst }));
    insta::assert_snapshot!("elimination_without_lifted_system", e.to_string());

    // The message template of a shifted solve that ran out of budget
    // (tests/it/shifted.rs reaches it on a real network).
    let e = HinvError::ShiftTooFar {
        eps: 1e-7,
        shifted_eps: 10.0,
        backward_error: 3.2e-9,
        tolerance: 64.0 * f64::EPSILON,
        iterations: 40,
    };
    insta::assert_snapshot!("shift_too_far", e.to_string());
}
