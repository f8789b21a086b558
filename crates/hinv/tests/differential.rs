//! The differential test of the issue "Never a wrong answer", quick pass:
//! 18 random networks (every activation, both losses, residual layers,
//! dead ReLU units, vanishing curvature), three `eps` each placed anywhere
//! in the spectrum, every answer of the library against a dense reference
//! (see `differential/mod.rs`). The long pass is `cargo xtask differential`.

#[path = "differential/mod.rs"]
mod harness;

use harness::cases::{NetClass, EPS_PER_NET};
use harness::checks::{run_network, Curv, NetOutcome, SolveOutcome, Verdict};
use harness::report::{self, RunInfo};
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
