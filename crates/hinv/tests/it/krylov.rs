//! The Krylov baselines against the exact solve: CG on a positive definite
//! `H + eps I`, MINRES on an indefinite one.

use crate::common;

use common::*;
use hinv::reference;
use hinv::Curvature;
use netgraph::Activation;

/// With eps above `-lambda_min(H)` the shifted Hessian is positive definite
/// and CG converges; its answer must match the exact solve to about the
/// requested residual times cond (1e-10 * cond, cond ~ 1e2 here).
#[test]
fn cg_matches_exact_solve_when_positive_definite() {
    let net = network(4, 6, 6, Activation::Tanh, true, false, false);
    let p = params(&net, 2.0, 3);
    let b = batch_for(&net, 4, 3, false, 4);
    let curv = Curvature::new(&net, &p, &b).unwrap();
    let h = reference::hessian(&curv, reference::DenseLimit::default()).unwrap();
    let spec = reference::spectrum(h.as_ref()).unwrap();
    let eps = (-spec.eigenvalues[0]).max(0.0) + 1e-1;
    let g = curv.gradient().to_vec();
    let exact = curv.factor(eps).unwrap().solve(&g).unwrap();
    let rep = curv.conjugate_gradient(eps, &g, 1e-12, 10 * g.len()).unwrap();
    assert!(rep.converged && !rep.indefinite, "{rep:?}");
    assert!(rep.relative_residual <= 1e-12);
    assert!(rep.iterations > 0 && rep.iterations <= 10 * g.len());
    let cond = spec.condition(eps);
    assert!(rel_diff(&rep.x, &exact) <= 1e-10 * cond, "cond {cond:e}");
}

/// On an indefinite `H + eps I`, CG reports the negative curvature it meets
/// and MINRES still converges to the exact solution.
#[test]
fn minres_handles_indefinite_and_cg_reports_it() {
    let net = network(4, 6, 6, Activation::Tanh, true, false, false);
    let p = params(&net, 2.5, 5);
    let b = batch_for(&net, 4, 3, false, 6);
    let curv = Curvature::new(&net, &p, &b).unwrap();
    let eps = 1e-2;
    let f = curv.factor(eps).unwrap();
    assert!(f.inertia().negative > 0, "the case must be indefinite");
    let g = curv.gradient().to_vec();
    let exact = f.solve(&g).unwrap();
    let cg = curv.conjugate_gradient(eps, &g, 1e-12, 10 * g.len()).unwrap();
    assert!(cg.indefinite || !cg.converged, "{cg:?}");
    let mr = curv.minres(eps, &g, 1e-12, 20 * g.len()).unwrap();
    assert!(mr.converged, "{mr:?}");
    let h = reference::hessian(&curv, reference::DenseLimit::default()).unwrap();
    let cond = reference::spectrum(h.as_ref()).unwrap().condition(eps);
    assert!(rel_diff(&mr.x, &exact) <= 1e-10 * cond, "cond {cond:e}, err {:e}", rel_diff(&mr.x, &exact));
}

/// A zero right-hand side needs no iteration; a wrong length is an error.
#[test]
fn krylov_edge_cases() {
    let net = network(3, 4, 2, Activation::Gelu, false, false, true);
    let p = params(&net, 1.0, 1);
    let b = batch_for(&net, 3, 2, true, 2);
    let curv = Curvature::new(&net, &p, &b).unwrap();
    let n = curv.num_params();
    let z = curv.minres(1.0, &vec![0.0; n], 1e-10, 10).unwrap();
    assert_eq!((z.iterations, z.converged), (0, true));
    assert!(curv.conjugate_gradient(1.0, &vec![1.0; n + 2], 1e-10, 10).is_err());
}
