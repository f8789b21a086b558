//! `Factorization::solve_shifted` against the dense oracle: a factorization
//! of `H + eps I` reused for `H + eps' I`.
//!
//! Tolerances: a solution with normwise backward error `be` against
//! `A = H + eps' I` has a forward error of at most `be cond(A)` to first
//! order, and the dense LU oracle carries its own `~ n eps_mach cond(A)`;
//! the returned backward error is at most 64 eps_mach = 1.4e-14, so the
//! bound used is `10 * 1.4e-14 * cond(A)` with a floor of 1e-12 (the
//! factor 10 covers the oracle's growth and the power-iteration estimate
//! of `||A||`, which can only make the reported backward error larger).

use crate::common;

use common::*;
use faer::{Mat, MatRef};
use hinv::reference::{self, DenseLimit};
use hinv::{Curvature, HinvError, SolveMethod, SolveOptions};
use netgraph::Activation;

/// A curvature, its dense Hessian and its eigenvalues.
fn setup(width: usize, depth: usize, gain: f64, seed: u64) -> (Curvature, Mat<f64>, Vec<f64>) {
    let net = network(3, width, depth, Activation::Tanh, true, false, false);
    let p = params(&net, gain, seed);
    let b = batch_for(&net, 3, 4, false, 100 + seed);
    let curv = Curvature::new(&net, &p, &b).unwrap();
    let h = reference::hessian(&curv, DenseLimit::default()).unwrap();
    let eig = reference::spectrum(h.as_ref()).unwrap().eigenvalues;
    (curv, h, eig)
}

fn cond(eig: &[f64], eps: f64) -> f64 {
    let abs = eig.iter().map(|l| (l + eps).abs());
    let (lo, hi) = abs.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    hi / lo
}

/// `rho = |eps' - eps| / min |lambda + eps|`: plain refinement contracts by
/// `rho` per step and diverges beyond 1.
fn rho(eig: &[f64], eps: f64, shifted: f64) -> f64 {
    (shifted - eps).abs() / eig.iter().map(|l| (l + eps).abs()).fold(f64::INFINITY, f64::min)
}

/// Checks `x` against the dense solve and the backward error against the
/// dense `H + eps' I`, both within the module's bound.
fn check(h: &Mat<f64>, eig: &[f64], shifted: f64, g: &[f64], x: &[f64], what: &str) {
    let c = cond(eig, shifted);
    let dense = reference::solve(h.as_ref(), shifted, g).unwrap();
    let err = rel_diff(x, &dense);
    assert!(err <= (1.4e-13 * c).max(1e-12), "{what}: forward error {err:e} at cond {c:e}");
    let hx = mat_vec(h, x);
    let r: Vec<f64> = (0..x.len()).map(|i| g[i] - hx[i] - shifted * x[i]).collect();
    let a_norm = eig.iter().map(|l| (l + shifted).abs()).fold(0.0, f64::max);
    let be = norm(&r) / (a_norm * norm(x) + norm(g));
    // The dense product differs from the HVP by rounding of order
    // n eps_mach ||H|| ||x||: a few times the tolerance at most.
    assert!(be <= 4.0 * SolveOptions::default().tolerance, "{what}: dense backward error {be:e}");
}

fn col(v: &[f64]) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(v, v.len(), 1)
}

/// A random tanh network at eps = 0.1: shifts up and
/// down, inside and beyond the reach of plain refinement (rho above 1,
/// where at least one must converge), and two right-hand sides at once.
#[test]
fn random_network_nearby_and_farther_shifts() {
    let (curv, h, eig) = setup(5, 3, 1.5, 1);
    let eps = 0.1;
    let f = curv.factor(eps).unwrap();
    let g = curv.gradient().to_vec();
    let gap = eig.iter().map(|l| (l + eps).abs()).fold(f64::INFINITY, f64::min);
    let mut far = false;
    for shifted in [eps * 1.01, eps * 1.5, eps * 0.7, eps + 1.5 * gap, eps + 3.0 * gap, eps + 10.0 * gap] {
        // Shifts that land on an eigenvalue are not what this test is about.
        if eig.iter().any(|l| (l + shifted).abs() < 1e-3 * gap) {
            continue;
        }
        let r = rho(&eig, eps, shifted);
        let s = match f.solve_shifted(shifted, col(&g), &SolveOptions::default()) {
            Ok(s) => s,
            // Beyond rho = 1 convergence within the budget depends on the
            // spectrum; refusing is allowed there, never a wrong answer.
            Err(HinvError::ShiftTooFar { .. }) if r > 1.0 => continue,
            Err(e) => panic!("eps' {shifted:e} (rho {r:.2}): {e}"),
        };
        eprintln!("eps' {shifted:e}: rho {r:.2}, {:?}", s.report);
        assert_eq!(s.report.method, SolveMethod::Shifted);
        assert!(s.report.within_tolerance && s.report.backward_error <= SolveOptions::default().tolerance);
        let x: Vec<f64> = s.x.col(0).iter().copied().collect();
        far |= r > 1.0;
        check(&h, &eig, shifted, &g, &x, &format!("eps' {shifted:e} (rho {r:.2})"));
    }
    assert!(far, "no shift beyond plain refinement's reach was tested");

    // Two columns: each meets the tolerance on its own.
    let v = test_vector(g.len(), 3);
    let both = Mat::from_fn(g.len(), 2, |i, j| if j == 0 { g[i] } else { v[i] });
    let near = eps + 0.5 * gap;
    let s = f.solve_shifted(near, both.as_ref(), &SolveOptions::default()).unwrap();
    for (j, b) in [&g, &v].into_iter().enumerate() {
        let x: Vec<f64> = s.x.col(j).iter().copied().collect();
        check(&h, &eig, near, b, &x, &format!("column {j}"));
    }

    // The same eps is an ordinary solve.
    let same = f.solve_shifted(eps, col(&g), &SolveOptions::default()).unwrap();
    let x: Vec<f64> = same.x.col(0).iter().copied().collect();
    check(&h, &eig, eps, &g, &x, "eps' = eps");
}

/// An ill-conditioned case: larger weights and eps = 1e-6 (cond(H + eps I)
/// asserted above 1e6), shifted across eigenvalues of H so that the
/// preconditioned operator is indefinite, where CG would fail.
#[test]
fn ill_conditioned_and_indefinite_shifts() {
    let (curv, h, eig) = setup(5, 3, 2.5, 2);
    let eps = 1e-6;
    let c = cond(&eig, eps);
    assert!(c >= 1e6, "the case must be ill-conditioned, cond {c:e}");
    let f = curv.factor(eps).unwrap();
    let g = curv.gradient().to_vec();
    // eps' = 2 eps (rho of order 1 or more at this conditioning), and a
    // shift halfway between two eigenvalues of H, past the one nearest -eps.
    let neg: Vec<f64> = eig.iter().copied().filter(|l| *l < -eps).collect();
    assert!(neg.len() >= 2, "H must be indefinite here: {eig:?}");
    let k = neg.len() - 1;
    let across = -0.5 * (neg[k] + neg[k - 1]);
    let crossed = eig.iter().filter(|l| (-across..-eps).contains(*l)).count();
    assert!(crossed >= 1);
    for shifted in [2.0 * eps, across] {
        let s = f.solve_shifted(shifted, col(&g), &SolveOptions::default()).unwrap();
        assert!(s.report.within_tolerance);
        let x: Vec<f64> = s.x.col(0).iter().copied().collect();
        check(&h, &eig, shifted, &g, &x, &format!("eps' {shifted:e} (rho {:.2e})", rho(&eig, eps, shifted)));
    }
    // The inertia of the shifted matrix differs from the factored one's,
    // which a factorization at eps could not tell: the solve still can.
    assert_eq!(f.inertia().negative, eig.iter().filter(|l| **l < -across).count() + crossed);
}

/// Far from eps on a network with more parameters than the budget of
/// solves (so MINRES cannot finish by exhausting the space): a typed error
/// that says to refactor, or, with accept_inexact, an answer marked inexact.
#[test]
fn far_shift_is_a_typed_error() {
    let (curv, _, eig) = setup(8, 3, 2.0, 3);
    assert!(curv.num_params() > 3 * hinv::SHIFT_BUDGET);
    let eps = 1e-7;
    let shifted = 10.0;
    assert!(rho(&eig, eps, shifted) > 1e3);
    let f = curv.factor(eps).unwrap();
    let g = curv.gradient().to_vec();
    let e = f.solve_shifted(shifted, col(&g), &SolveOptions::default()).unwrap_err();
    let HinvError::ShiftTooFar { eps: e0, shifted_eps, iterations, backward_error, .. } = e else { panic!("{e}") };
    assert_eq!((e0, shifted_eps), (eps, shifted));
    assert!(iterations <= hinv::SHIFT_BUDGET && backward_error > SolveOptions::default().tolerance);
    assert!(e.to_string().contains("factor H + eps' I afresh"), "{e}");

    let opts = SolveOptions { accept_inexact: true, ..SolveOptions::default() };
    let s = f.solve_shifted(shifted, col(&g), &opts).unwrap();
    assert!(!s.report.within_tolerance);
    assert_eq!(s.report.backward_error, backward_error);
}

#[test]
fn bad_arguments() {
    let (curv, _, _) = setup(3, 2, 1.0, 4);
    let f = curv.factor(1e-2).unwrap();
    let g = curv.gradient().to_vec();
    let e = f.solve_shifted(f64::NAN, col(&g), &SolveOptions::default()).unwrap_err();
    assert!(matches!(e, HinvError::InvalidNumber { what: "the shifted eps", .. }), "{e}");
    let e = f.solve_shifted(0.1, col(&g[1..]), &SolveOptions::default()).unwrap_err();
    assert!(matches!(e, HinvError::WrongLength { .. }), "{e}");
    let e = f.solve_shifted(0.1, col(&g), &SolveOptions { tolerance: 0.0, ..Default::default() }).unwrap_err();
    assert!(matches!(e, HinvError::InvalidNumber { .. }), "{e}");
}

/// A deep residual network of identity layers with large weights at
/// eps = 1e-5, where the block LDLᵀ's Schur complements grow so much that
/// `solve_with` needs the pivoted elimination: raw block sweeps then make
/// too little progress per outer step, and the refined solves take over
/// (when written, the first outer step contracted the residual by a factor
/// 11 the wrong way before the switch). The answer must still match the
/// dense oracle.
#[test]
fn block_growth_falls_back_to_refined_solves() {
    let net = network(4, 6, 8, Activation::Identity, true, true, true);
    let p = params(&net, 3.0, 6);
    let b = batch_for(&net, 4, 3, true, 1006);
    let curv = Curvature::new(&net, &p, &b).unwrap();
    let h = reference::hessian(&curv, DenseLimit::default()).unwrap();
    let eig = reference::spectrum(h.as_ref()).unwrap().eigenvalues;
    let eps = 1e-5;
    let f = curv.factor(eps).unwrap();
    let g = curv.gradient().to_vec();
    let shifted = 1.01 * eps;
    let s = f.solve_shifted(shifted, col(&g), &SolveOptions::default()).unwrap();
    assert!(s.report.within_tolerance);
    let x: Vec<f64> = s.x.col(0).iter().copied().collect();
    check(&h, &eig, shifted, &g, &x, &format!("cond {:e}", cond(&eig, shifted)));
}
