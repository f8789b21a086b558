//! The two block eliminations of the lifted system (interleaved, and the
//! parameters first) against the dense route, each forced, on random and
//! ill-conditioned networks; and the automatic choice.

use crate::common;

use common::*;
use hinv::reference::{self, DenseLimit};
use hinv::{Curvature, Elimination, FactorOptions, Inertia, SolveOptions};
use netgraph::{Activation, Batch, Network};

fn forced(e: Elimination) -> FactorOptions {
    FactorOptions { elimination: e, allow_singular: true, ..FactorOptions::default() }
}

fn off_by(a: &Inertia, b: &Inertia) -> usize {
    a.positive.abs_diff(b.positive).max(a.negative.abs_diff(b.negative)).max(a.zero.abs_diff(b.zero))
}

/// Every activation, with and without bias and residual layers, both
/// losses, gains 1 to 3 and eps from 1e-1 to 1e-6 (cond(H + eps I) up to
/// ~1e10): each elimination's refined solve is as accurate as a
/// backward-stable dense solve (forward error <= 10 eps_mach cond, floor
/// 1e-13, the bar of tests/it/solve.rs) or refuses beyond cond 1e12, and its
/// inertia is the dense one within its own `uncertain`.
#[test]
fn both_eliminations_match_the_dense_route() {
    let mut checked = [0usize; 2];
    let mut uncertain = [0usize; 2];
    let mut max_cond = 0.0f64;
    for (i, &act) in ACTIVATIONS.iter().enumerate() {
        for (j, &(gain, eps)) in [(1.0, 1e-1), (2.0, 1e-3), (3.0, 1e-6)].iter().enumerate() {
            let case = 3 * i + j;
            let depth = if act == Activation::Square { 3 } else { 6 };
            let (bias, residual, mse) = (case % 2 == 0, case % 3 == 0, case % 4 == 1);
            let net = network(4, 5, depth, act, bias, residual, mse);
            let p = params(&net, gain, 500 + case as u64);
            let b = batch_for(&net, 4, 3, mse, 600 + case as u64);
            let curv = Curvature::new(&net, &p, &b).unwrap();
            let h = reference::hessian(&curv, DenseLimit::default()).unwrap();
            let spec = reference::spectrum(h.as_ref()).unwrap();
            let cond = spec.condition(eps);
            max_cond = max_cond.max(cond);
            let g = test_vector(curv.num_params(), case as u64);
            let xd = reference::solve(h.as_ref(), eps, &g).unwrap();
            let inertia_defined = spec.eigenvalues.iter().all(|l| (l + eps).abs() >= 1e-6);
            for (k, e) in [Elimination::Interleaved, Elimination::ParametersFirst].into_iter().enumerate() {
                let what = format!("{act:?} bias {bias} residual {residual} gain {gain} eps {eps} {e:?}");
                let f = curv.factor_with(eps, &forced(e)).unwrap();
                assert_eq!(f.elimination(), e, "{what}");
                let rhs = faer::MatRef::from_column_major_slice(&g, g.len(), 1);
                match f.solve_with(rhs, &SolveOptions::default()) {
                    Ok(s) => {
                        let x: Vec<f64> = s.x.col(0).iter().copied().collect();
                        let err = rel_diff(&x, &xd);
                        let bar = (2.2e-15 * cond).max(1e-13);
                        assert!(err <= bar, "{what}: err {err:e}, cond {cond:e}, {:?}", s.report);
                    }
                    // Beyond cond 1e12 even a dense LU loses most digits.
                    Err(hinv::HinvError::IllConditioned { .. }) if cond > 1e12 => {}
                    Err(err) => panic!("{what}: {err} (cond {cond:e})"),
                }
                if inertia_defined {
                    let got = f.inertia();
                    let dense = spec.inertia(eps, 0.0);
                    assert!(off_by(&got, &dense) <= got.uncertain, "{what}: {got:?} vs dense {dense:?}");
                    checked[k] += 1;
                    uncertain[k] += usize::from(got.uncertain > 0);
                }
            }
        }
    }
    eprintln!("inertias checked {checked:?}, uncertain {uncertain:?}, max cond {max_cond:e}");
    assert!(max_cond >= 1e6, "the cases must include ill-conditioned systems, max cond {max_cond:e}");
    // The parameters-first certificate must not give up much more often
    // than the interleaved one.
    assert!(uncertain[1] <= uncertain[0] + checked[1] / 4, "uncertain {uncertain:?} of {checked:?}");
}

/// `Auto` eliminates the parameters first on the demo network, and falls
/// back to the interleaved elimination when `A_l + eps I` is singular (eps
/// the negative of an eigenvalue of one unit's block), where restricting
/// the pivots to the parameters would divide by zero; the answer is still
/// the dense one.
#[test]
fn auto_prefers_parameters_first_and_falls_back_when_a_unit_block_is_singular() {
    let net = Network::builder(5).without_bias().dense(10, Activation::Tanh).repeat(30).cross_entropy(3).unwrap();
    let curv =
        Curvature::new(&net, &net.init_params(20240601), &Batch::random_classification(5, 3, 2, 20240602)).unwrap();
    let f = curv.factor(1e-3).unwrap();
    assert_eq!(f.elimination(), Elimination::ParametersFirst);
    assert!(f.growth().unwrap() <= 1e10);

    let net = Network::builder(3).without_bias().dense(4, Activation::Tanh).repeat(2).cross_entropy(3).unwrap();
    let p = params(&net, 3.0, 7);
    let curv = Curvature::new(&net, &p, &Batch::random_classification(3, 3, 3, 8)).unwrap();
    // The first unit's block of the first layer's A: a 3x3 block of a
    // block-diagonal A without bias.
    let a = curv.derivatives().layers[0].a.as_diag().expect("unit blocks").blocks()[0].to_dense();
    let lambda = a.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
    let top = lambda.iter().copied().fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
    assert!(top.abs() > 1e-3, "the unit block must not vanish ({top:e})");
    let eps = -top;
    let f = curv.factor_with(eps, &FactorOptions { allow_singular: true, ..FactorOptions::default() }).unwrap();
    assert_eq!(f.elimination(), Elimination::Interleaved, "A + eps I is singular: growth {:?}", f.growth());
    let h = reference::hessian(&curv, DenseLimit::default()).unwrap();
    let g = test_vector(curv.num_params(), 3);
    let cond = reference::spectrum(h.as_ref()).unwrap().condition(eps);
    if cond < 1e10 {
        let x = f.solve(&g).unwrap();
        let err = rel_diff(&x, &reference::solve(h.as_ref(), eps, &g).unwrap());
        assert!(err <= (2.2e-15 * cond).max(1e-13), "err {err:e} cond {cond:e}");
    }
}

/// A first layer reading 300 inputs (unit blocks of 301 of rank 16, the
/// batch: eliminated on their projection, `hinv::reduced::projected`), for
/// a positive and a negative shift (whose 285 `eps` directions per unit
/// are then negative): the parameters-first elimination against the dense
/// route, solve and inertia.
#[test]
fn wide_inputs_are_eliminated_on_their_projection() {
    let net = Network::builder(300).dense(4, Activation::Tanh).dense(4, Activation::Tanh).cross_entropy(3).unwrap();
    let p = params(&net, 2.0, 11);
    let curv = Curvature::new(&net, &p, &Batch::random_classification(300, 3, 16, 12)).unwrap();
    let h = reference::hessian(&curv, DenseLimit::default()).unwrap();
    let spec = reference::spectrum(h.as_ref()).unwrap();
    for eps in [1e-2, -0.05] {
        let f = curv.factor_with(eps, &forced(Elimination::ParametersFirst)).unwrap();
        let cond = spec.condition(eps);
        let g = test_vector(curv.num_params(), 5);
        let x = f.solve(&g).unwrap();
        let err = rel_diff(&x, &reference::solve(h.as_ref(), eps, &g).unwrap());
        // The bar of tests/it/solve.rs: a backward-stable dense solve's accuracy.
        assert!(err <= (2.2e-15 * cond).max(1e-13), "eps {eps}: err {err:e}, cond {cond:e}");
        let got = f.inertia();
        let dense = spec.inertia(eps, 0.0);
        assert!(off_by(&got, &dense) <= got.uncertain, "eps {eps}: {got:?} vs dense {dense:?}");
        assert_eq!(got.uncertain, 0, "eps {eps}: the eps directions are far from zero");
        if eps < 0.0 {
            assert!(got.negative > 4 * 285, "eps {eps}: the projected directions count ({got:?})");
        }
    }
}

/// The interleaved elimination's input `K'` is assembled by hand
/// (`lifted_tridiag`); `blockmat`'s blockwise transpose of the 3x3 layer
/// grid `K` (`lifted_grid`) must give the same matrix, block for block and
/// entry for entry, with biases, residual layers and both losses.
#[test]
fn blockwise_transpose_of_the_layer_grid_is_the_hand_built_interleaving() {
    for (case, (bias, residual, mse)) in
        [(false, false, false), (true, true, false), (true, false, true)].into_iter().enumerate()
    {
        let net = network(3, 4, 4, Activation::Tanh, bias, residual, mse);
        let curv = Curvature::new(&net, &params(&net, 1.5, case as u64), &batch_for(&net, 3, 2, mse, 9)).unwrap();
        let eps = 1e-2;
        let grid = curv.lifted_grid(eps).unwrap();
        let grid = grid.as_grid().expect("K is a 3x3 grid of layer-structured blocks");
        // A's unit blocks are symmetric to rounding only (formed by
        // products); the interleaving itself moves entries, so they must
        // then agree exactly.
        let via_blockmat = blockmat::interleave_symmetric(grid, 8.0 * f64::EPSILON).unwrap();
        let by_hand = curv.lifted_tridiag(eps).unwrap();
        assert_eq!(via_blockmat.len(), by_hand.len());
        for (k, (a, b)) in via_blockmat.diag().iter().zip(by_hand.diag()).enumerate() {
            assert_eq!(a.to_dense(), b.to_dense(), "case {case}: diagonal block {k}");
        }
        for (k, (a, b)) in via_blockmat.sub().iter().zip(by_hand.sub()).enumerate() {
            assert_eq!(a.to_dense(), b.to_dense(), "case {case}: sub-diagonal block {k}");
        }
    }
}

/// The parallelism policy changes where the work runs, never the result:
/// `Auto` gives exactly `Seq`'s factorization (split or not, every piece
/// runs the same sequential kernels), and `Rayon(2)`, which splits the
/// layers and the two chains whatever the size (and runs faer's kernels on
/// two threads when the chains are sequential), agrees to rounding. Run on
/// a pool of two threads, so that the split branches run whatever
/// `RAYON_NUM_THREADS` says.
#[test]
fn parallelism_policies_agree() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    pool.install(policies_agree_on_two_threads);
}

fn policies_agree_on_two_threads() {
    use hinv::{ParPolicy, Strategy};
    let net = network(4, 5, 12, Activation::Tanh, true, true, false);
    let curv = Curvature::new(&net, &params(&net, 1.5, 31), &batch_for(&net, 4, 3, false, 32)).unwrap();
    let g = test_vector(curv.num_params(), 33);
    let eps = 1e-3;
    for elimination in [Elimination::Interleaved, Elimination::ParametersFirst] {
        for strategy in [Strategy::Sequential, Strategy::TwoSided] {
            let run = |par| {
                let opts = FactorOptions { par, strategy, ..forced(elimination) };
                let f = curv.factor_with(eps, &opts).unwrap();
                let x = f.solve(&g).unwrap();
                (f.inertia(), f.log_det().unwrap().log_abs, x)
            };
            let (inertia, log_det, x) = run(ParPolicy::Seq);
            let what = format!("{elimination:?} {strategy:?}");
            assert_eq!(run(ParPolicy::Auto), (inertia, log_det, x.clone()), "{what}: Auto");
            let (i2, l2, x2) = run(ParPolicy::Rayon(2));
            assert_eq!(i2, inertia, "{what}: Rayon(2)");
            // Both are backward stable; at cond(H + eps I) below 1e6 here
            // they agree to well within 1e-8.
            assert!((l2 - log_det).abs() <= 1e-10 * log_det.abs().max(1.0), "{what}: log-det {l2} vs {log_det}");
            let d = x.iter().zip(&x2).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            let m = x.iter().map(|v| v.abs()).fold(0.0, f64::max);
            assert!(d <= 1e-8 * m, "{what}: solutions differ by {d:e} (max {m:e})");
        }
    }
}

/// A deep tanh network at PyTorch's initialisation (and below it), whose
/// activations vanish with depth, so that `||H||` is of order `1e-10` and
/// its blocks span dozens of orders of magnitude; `eps` is set relative to
/// `||H||`. The raw solve (no refinement, which would repair a wrong
/// factorization through the exact products) meets the bar of
/// `both_eliminations_match_the_dense_route` (backward stability, 10 u
/// cond) although the forced parameters-first elimination runs at growth
/// 1e13 to 1e14 here: measured to hold (with a margin of about 100), not
/// derived; the log-determinant is the dense one to 1e-10 relative, and
/// the inertia the dense one within its uncertainty. The automatic
/// choice refuses the parameters-first elimination on such networks
/// (growth above 1e10), and the interleaved certificate alone leaves
/// more eigenvalues uncertain (all of them, in fact); through the
/// parameters-first count as its second opinion it counts as the forced
/// elimination does, up to a growth of `1 / EPSILON`. `cargo test --release -p hinv --test it
/// elimination::vanishing -- --nocapture` prints each case's numbers.
///
/// And the answers must not depend on the scale of `H` against the `-I`
/// of the lifted system: `H` is linear in `A`, `G` and `E` at fixed `Dx`
/// and `Dz`, so scaling those three by `s = 2^-200` (exactly) scales `H`
/// by `s`. With `eps s`, the solution is `x / s`, the inertia the same and
/// the log-determinant `p ln s` lower, and so must hinv's be (an attempt,
/// not kept, to drop entries of `R`'s blocks negligible against the `-I`
/// failed this: scaled, `Q`'s entries are of order `1e-36` beside it).
#[test]
fn vanishing_layers_keep_the_dense_answer_at_any_scale() {
    let s = 2f64.powi(-200);
    let mut uncertain = 0;
    for (gain, rel) in [(1.0, 1e-3), (1.0, 1e-6), (0.7, 1e-6), (1.0, -1e-4)] {
        let net = network(4, 3, 40, Activation::Tanh, false, false, false);
        let p = params(&net, gain, 71);
        let b = batch_for(&net, 4, 2, false, 72);
        let curv = Curvature::new(&net, &p, &b).unwrap();
        let h = reference::hessian(&curv, DenseLimit::default()).unwrap();
        let spec = reference::spectrum(h.as_ref()).unwrap();
        // eps relative to ||H||, which the vanishing activations make tiny.
        let eps = rel * spec.eigenvalues.iter().fold(0.0f64, |m, l| m.max(l.abs()));
        let cond = spec.condition(eps);
        let g = test_vector(curv.num_params(), 73);
        let xd = reference::solve(h.as_ref(), eps, &g).unwrap();
        let what = format!("gain {gain} eps {eps} cond {cond:e}");
        let f = curv.factor_with(eps, &forced(Elimination::ParametersFirst)).unwrap();
        assert_eq!(f.elimination(), Elimination::ParametersFirst, "{what}");
        // Without refinement (which would repair a wrong factorization
        // through the exact products): the factorization alone.
        let raw = SolveOptions { max_refinements: 0, accept_inexact: true, ..SolveOptions::default() };
        let rhs = faer::MatRef::from_column_major_slice(&g, g.len(), 1);
        let x: Vec<f64> = f.solve_with(rhs, &raw).unwrap().x.col(0).iter().copied().collect();
        let err = rel_diff(&x, &xd);
        assert!(err <= (2.2e-15 * cond).max(1e-13), "{what}: err {err:e}");
        let got = f.inertia();
        uncertain += got.uncertain;
        assert!(off_by(&got, &spec.inertia(eps, 0.0)) <= got.uncertain, "{what}: {got:?}");
        // The automatic choice refuses the parameters-first elimination
        // here (growth 1e13-1e14 against the -I's scale), and the
        // interleaved certificate leaves every eigenvalue uncertain; the
        // parameters-first count, run as its second opinion, answers.
        let growth = f.growth().unwrap();
        assert!(growth > 1e10, "{what}: growth {growth:e}, within what Auto accepts");
        let auto = curv.factor(eps).unwrap();
        assert_eq!(auto.elimination(), Elimination::Interleaved, "{what}");
        let alone = curv.factor_with(eps, &forced(Elimination::Interleaved)).unwrap().inertia();
        assert!(alone.uncertain > got.uncertain, "{what}: {alone:?} against {got:?}");
        let counted = auto.inertia();
        assert!(off_by(&counted, &spec.inertia(eps, 0.0)) <= counted.uncertain, "{what}: {counted:?}");
        // Up to a growth of 1 / EPSILON, beyond which the second opinion
        // is not asked (a first-order bound then says nothing).
        assert_eq!(counted, if growth * f64::EPSILON < 1.0 { got } else { alone }, "{what}");
        eprintln!(
            "{what}: ||H|| {:e}, growth {growth:e}, parameters-first margin {:e}, uncertain {} (interleaved alone: {}, margin {:e})",
            eps / rel,
            f.block_ldlt().pivot_margin(),
            got.uncertain,
            alone.uncertain,
            auto.block_ldlt().pivot_margin()
        );
        let dense: f64 = spec.eigenvalues.iter().map(|l| (l + eps).abs().ln()).sum();
        let ld = f.log_det().unwrap().log_abs;
        assert!((ld - dense).abs() <= 1e-10 * dense.abs(), "{what}: log-det {ld} vs {dense}");

        let mut d = curv.derivatives().clone();
        for l in &mut d.layers {
            (l.a, l.g, l.e) = (l.a.scale(s), l.g.scale(s), l.e.scale(s));
        }
        let scaled = Curvature::from_derivatives(d).unwrap();
        let fs = scaled.factor_with(eps * s, &forced(Elimination::ParametersFirst)).unwrap();
        assert_eq!(fs.elimination(), Elimination::ParametersFirst, "{what}, scaled");
        let lds = fs.log_det().unwrap().log_abs - curv.num_params() as f64 * s.ln();
        assert!((lds - ld).abs() <= 1e-10 * ld.abs(), "{what}, scaled by 2^-200: log-det {lds} vs {ld}");
        let xs: Vec<f64> = fs.solve_with(rhs, &raw).unwrap().x.col(0).iter().map(|v| v * s).collect();
        let err = rel_diff(&xs, &x);
        assert!(err <= (2.2e-15 * cond).max(1e-13), "{what}, scaled by 2^-200: err {err:e}");
        // The certificate is not scale-invariant (the lifted system's -I
        // does not scale), so the scaled count may be uncertain; it is
        // the same count within that.
        let counted = fs.inertia();
        assert!(off_by(&counted, &got) <= counted.uncertain, "{what}, scaled: {counted:?} vs {got:?}");
    }
    // 11 when this test was written, 10 of them at gain 0.7: a
    // regression guard (more would mean the certificate got looser).
    assert!(uncertain <= 11, "{uncertain} uncertain pivots");
}
