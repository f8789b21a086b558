//! The log-determinant's two routes against the dense spectrum.

use netgraph::{Activation, Batch, Network};

use super::{factor_params, Engine, FactorOptions, Factorization, REDUCED_LOG_DET_LIMIT};
use crate::reduced::Reduced;
use crate::reference::{self, DenseLimit, Spectrum};
use crate::Curvature;

/// The bar both routes are held to: the issue's `1e-9` (relative) up to
/// cond 1e8, and beyond it what a backward error of `64 u ||H + eps I||`
/// may move `log|det|` by to first order (Weyl: each `log|lambda + eps|`
/// by `64 u ||H + eps I|| / |lambda + eps|`), as the differential test
/// allows.
fn bar(spec: &Spectrum, eps: f64, want: f64) -> f64 {
    let shifted: Vec<f64> = spec.eigenvalues.iter().map(|l| (l + eps).abs()).collect();
    let norm = shifted.iter().cloned().fold(0.0, f64::max);
    let kappa_sum: f64 = shifted.iter().map(|v| norm / v).sum();
    let scale = want.abs().max(1.0);
    if spec.condition(eps) <= 1e8 {
        1e-9
    } else {
        (64.0 * f64::EPSILON * kappa_sum / scale).max(1e-9)
    }
}

/// Every activation at gains 0.5 to 3 and `eps` from 1e-1 to 1e-5
/// (`cond(H + eps I)` up to about 1e9): the determinant through the
/// parameters-first elimination (groups' pivots, then `R` pivoted across
/// its blocks) meets the bar wherever its growth times its groups'
/// condition is within [`REDUCED_LOG_DET_LIMIT`], and
/// [`Factorization::log_det`] takes it exactly there; elsewhere it pivots
/// across the whole lifted system, which meets the bar everywhere. The
/// signs agree with the dense spectrum's wherever `-eps` is clear of
/// every eigenvalue.
#[test]
fn log_det_through_the_parameters_meets_the_dense_spectrum() {
    let (mut within, mut beyond) = (0, 0);
    let mut worst_within = 0.0f64;
    // The parameters-first route's worst error (relative to the bar) and
    // case count per decade of its amplification, printed for
    // docs/numerics.md.
    let mut decades = std::collections::BTreeMap::<i32, (f64, usize)>::new();
    for (i, &act) in Activation::ALL.iter().enumerate() {
        for (j, &gain) in [0.5, 1.0, 3.0].iter().enumerate() {
            for (k, &eps) in [1e-1, 1e-3, 1e-5].iter().enumerate() {
                let seed = (100 * i + 10 * j + k) as u64;
                // Squares compound doubly exponentially with depth.
                let depth = if act == Activation::Square { 3 } else { 6 };
                let net = Network::builder(4).dense(5, act).repeat(depth).cross_entropy(3).unwrap();
                let mut p = net.init_params(seed);
                p.scale(gain);
                let batch = Batch::random_classification(4, 3, 3, seed + 1);
                let curv = Curvature::new(&net, &p, &batch).unwrap();
                let h = reference::hessian(&curv, DenseLimit::default()).unwrap();
                let spec = reference::spectrum(h.as_ref()).unwrap();
                let want = spec.log_det(eps);
                let what = format!("{act:?} gain {gain} eps {eps:e} (cond {:.1e})", spec.condition(eps));
                let opts = FactorOptions { allow_singular: true, ..FactorOptions::default() };
                let f: Factorization = curv.factor_with(eps, &opts).unwrap();
                let Engine::ParametersFirst(r) = &f.engine else { continue };
                let amplification = r.growth().max(1.0) * r.cond();
                let reduced = Reduced::pivoted_log_det(&f.derivs, eps, &factor_params(&f.opts)).unwrap().unwrap();
                let lifted = f.det_from(f.pivoted_lu().unwrap());
                let got = f.log_det().unwrap();
                let rel = |d: f64| (d - want.log_abs).abs() / want.log_abs.abs().max(1.0);
                let entry = decades.entry(amplification.log10().floor() as i32).or_insert((0.0, 0));
                *entry = (entry.0.max(rel(reduced.log_abs) / bar(&spec, eps, want.log_abs)), entry.1 + 1);
                let near = spec.eigenvalues.iter().map(|l| (l + eps).abs()).fold(f64::INFINITY, f64::min);
                let sign_decided = near >= 1e-6 && near >= 100.0 * f64::EPSILON * h.norm_l2();
                assert!(rel(lifted.log_abs) <= bar(&spec, eps, want.log_abs), "{what}: lifted route");
                if amplification <= REDUCED_LOG_DET_LIMIT {
                    within += 1;
                    worst_within = worst_within.max(rel(reduced.log_abs) / bar(&spec, eps, want.log_abs));
                    assert!(rel(reduced.log_abs) <= bar(&spec, eps, want.log_abs), "{what}: parameters-first route");
                    // det K' = (-1)^(sum a_l) det(H + eps I).
                    let sign = if f.lifted_extra % 2 == 1 { -reduced.sign } else { reduced.sign };
                    assert_eq!((got.log_abs, got.sign), (reduced.log_abs, sign), "{what}: the route taken");
                } else {
                    beyond += 1;
                    assert_eq!((got.log_abs, got.sign), (lifted.log_abs, lifted.sign), "{what}: the route taken");
                }
                if sign_decided {
                    assert_eq!(got.sign, want.sign, "{what}: sign");
                }
            }
        }
    }
    eprintln!("| growth x cond | cases | worst log-det error / bar, parameters first |\n|---|--:|--:|");
    for (d, (worst, n)) in &decades {
        eprintln!("| 1e{d} .. 1e{} | {n} | {worst:.1e} |", d + 1);
    }
    eprintln!("{within} cases within the limit (worst error {worst_within:.2e} of the bar), {beyond} beyond");
    assert!(within >= 15 && beyond >= 3, "both routes must be exercised: {within} within, {beyond} beyond");
}
