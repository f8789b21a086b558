//! The differential test of the issue "Never a wrong answer", quick pass:
//! 18 random networks (every activation, both losses, residual layers,
//! dead ReLU units, vanishing curvature), three `eps` each placed anywhere
//! in the spectrum, every answer of the library against a dense reference
//! (see `differential/mod.rs`). The long pass is `cargo xtask differential`.

#[path = "differential/mod.rs"]
mod harness;

use harness::cases::{NetClass, EPS_PER_NET};
use harness::checks::{SolveOutcome, Verdict};
use harness::report::{self, RunInfo};
use harness::run::{run_network, Curv, NetOutcome};
use rayon::prelude::*;

/// 18 networks: the generator cycles classes with period 6 and curvy
/// activations with period 7 over the curvy ones, so 18 cover every
/// activation, class and placement of `eps`.
const NETWORKS: usize = 18;
const RUN: RunInfo = RunInfo { seed: 20250601, max_params: harness::cases::MAX_PARAMS };

#[test]
fn never_a_wrong_answer_quick_pass() {
    // Rayon runs the networks in parallel; the dense kernels stay
    // sequential inside them.
    faer::set_global_parallelism(faer::Par::Seq);
    let nets: Vec<NetOutcome> =
        (0..NETWORKS).into_par_iter().map(|i| run_network(RUN.seed, i, RUN.max_params, None)).collect();
    eprintln!("{}\n{}", report::totals(&nets), report::summary(&nets));

    // The test must still mean something: enough cases of every kind.
    let cases: Vec<_> = nets.iter().flat_map(|n| &n.cases).collect();
    assert!(cases.len() >= 45, "only {} cases ran (of {})", cases.len(), NETWORKS * EPS_PER_NET);
    for act in netgraph::Activation::ALL {
        assert!(
            nets.iter().any(|n| n.net.activation.name() == act.name() && !n.cases.is_empty()),
            "no case with {}",
            act.name()
        );
    }
    for class in [NetClass::Curvy, NetClass::Vanishing, NetClass::DeadUnits] {
        assert!(nets.iter().any(|n| n.net.class == class && !n.cases.is_empty()), "no {} network", class.name());
    }
    assert!(nets.iter().any(|n| n.net.mse) && nets.iter().any(|n| !n.net.mse), "both losses");
    assert!(nets.iter().any(|n| n.net.has_residual()), "a residual network");
    assert!(nets.iter().any(|n| n.curv == Curv::Singular), "a singular Hessian");
    let conds: Vec<f64> = cases.iter().map(|c| c.spectral.cond).collect();
    for (lo, hi) in [(1.0, 1e4), (1e4, 1e8), (1e8, 1e12), (1e12, f64::INFINITY)] {
        assert!(conds.iter().any(|&c| lo <= c && c < hi), "no case with cond in [{lo:e}, {hi:e})");
    }
    let answers = cases.iter().flat_map(|c| &c.solves).filter(|s| matches!(s, SolveOutcome::Answer { .. })).count();
    assert!(answers >= 40, "only {answers} solves answered");
    let certified = cases.iter().filter(|c| c.inertia == Verdict::Certified).count();
    assert!(certified >= 20, "only {certified} inertias decided by the spectrum");
    let fd = nets.iter().filter(|n| matches!(n.fd, Some((_, _, true)))).count();
    assert!(fd >= 8, "finite differences resolve H on only {fd} networks");

    let n = report::failure_count(&nets);
    assert!(n == 0, "{n} failure(s): a wrong answer is a bug.\n{}", report::failures(&nets, RUN));
}

/// Seed 3's network 550 (vanishing tanh, 23 layers of width 5, batch 1):
/// at `eps = 0` (case 1650, cond 5e20) the block solve overflowed, and its
/// NaN came back as `HinvError::Overflow` instead of a refusal of the
/// singular system; now the pivoted elimination takes over and refuses it
/// (`IllConditioned`).
#[test]
fn an_overflowing_block_solve_gives_way_to_the_pivoted_elimination() {
    faer::set_global_parallelism(faer::Par::Seq);
    const RUN3: RunInfo = RunInfo { seed: 3, max_params: harness::cases::MAX_PARAMS };
    let nets = vec![run_network(RUN3.seed, 550, RUN3.max_params, None)];
    assert!(!nets[0].cases.is_empty(), "the network ran");
    let n = report::failure_count(&nets);
    assert!(n == 0, "{n} failure(s)\n{}", report::failures(&nets, RUN3));
}

/// The oracle's backward error of a finite solution whose norm squared
/// overflows (a numerically singular system's: seed 7, `--max-params 4000`,
/// cases 751 and 354, `||x|| = 1.8e222` and `7.1e245`) is finite and small
/// when the solution is backward stable, large when it is not, and `inf`
/// for a non-finite solution. Unscaled norms made it `inf / inf = NaN`,
/// which the check reported as a library failure.
#[test]
fn dense_backward_error_of_huge_solutions() {
    use harness::dense::{backward_error, norm};
    const U: f64 = f64::EPSILON / 2.0;
    // Symmetric, entries near the failing cases' `||H|| ~ 5e-11`.
    let a: [[f64; 3]; 3] = [[4.0, 1.0, 0.5], [1.0, 3.0, -1.0], [0.5, -1.0, 2.0]];
    let h = faer::Mat::from_fn(3, 3, |i, j| a[i][j] * 1e-11);
    // The Frobenius norm, 5.79e-11, stands for `||H||_2` = 4.62e-11 (the
    // largest eigenvalue): it lowers the backward error by at most 1.25x,
    // which neither bar below is near (a rounded `b = H x` leaves about
    // `u`, the wrong answer 2.9e-7).
    let norm_h = a.iter().flatten().map(|v| (v * 1e-11).powi(2)).sum::<f64>().sqrt();
    for scale in [1.0, 1e150, 1e222, 1e300] {
        let x = [1.0 * scale, -3.0 * scale, 2.0 * scale];
        // `b = H x` rounded: `x` solves it to a backward error of a few u.
        let b: Vec<f64> = (0..3).map(|i| (0..3).map(|j| h[(i, j)] * x[j]).sum()).collect();
        let be = backward_error(&h, 0.0, norm_h, &x, &b);
        assert!(be <= 4.0 * U, "x = {scale:e} (1, -3, 2): backward error {be:e}, expected <= 4 u");
        assert!((norm(&x) / (scale * 14f64.sqrt()) - 1.0).abs() <= 4.0 * U, "||x|| = {:e}", norm(&x));
        // A wrong answer at the same scale still fails: a relative change
        // of 1e-6 in one entry leaves a residual of about 1e-6 ||H|| ||x||.
        let mut wrong = x;
        wrong[1] *= 1.0 + 1e-6;
        let be = backward_error(&h, 0.0, norm_h, &wrong, &b);
        assert!(be >= 1e-7, "x = {scale:e} (1, -3(1 + 1e-6), 2): backward error {be:e}, expected 2.9e-7");
    }
    for bad in [f64::NAN, f64::INFINITY] {
        let be = backward_error(&h, 0.0, norm_h, &[1.0, bad, 2.0], &[1e-11, 0.0, 0.0]);
        assert_eq!(be, f64::INFINITY, "a solution with {bad} has an infinite backward error");
    }
}
