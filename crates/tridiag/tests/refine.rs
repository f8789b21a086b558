//! Iterative refinement: reaches the requested backward error, reports
//! iterations, and converges to the solution of the operator it is given.

mod common;

use common::*;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use tridiag::{BlockLdlt, FactorParams, RefineParams};

fn dense_apply(s: &faer::Mat<f64>) -> impl Fn(MatRef<'_, f64>, MatMut<'_, f64>) + '_ {
    move |x, out| matmul(out, Accum::Replace, s.as_ref(), x, 1.0, Par::Seq)
}

#[test]
fn reaches_target_on_ill_conditioned_saddle() {
    let mut r = rng(31);
    let layers = random_layers(&mut r, 16);
    let base = saddle_tridiag(&mut r, &layers, 0.1);
    let n = dense(&base).nrows();
    let t = ill_conditioned(&base, n / 2, 1e-10);
    let s = dense(&t);
    let f = BlockLdlt::factor(&t, &FactorParams::default()).expect("factor");
    let b = random_mat(&mut r, n, 3);
    let params = RefineParams::default();
    let (x, rep) = f.solve_refined(b.as_ref(), dense_apply(&s), &params).expect("refine");
    assert!(rep.converged, "{rep:?}");
    assert!(rep.backward_error <= params.target_backward_error);
    // The reported error is the one the oracle measures (same norms).
    let be = backward_error(s.as_ref(), x.as_ref(), b.as_ref());
    assert!((be - rep.backward_error).abs() <= 1e-2 * be.max(1e-300) + 1e-18, "{be:e} vs {rep:?}");
}

#[test]
fn converges_to_the_applied_operator() {
    // Factor at eps = 0.1 and refine against eps = 0.1 + 1e-4: the factors
    // become a preconditioner; the result must solve the applied operator.
    let mut r = rng(32);
    let layers = random_layers(&mut r, 10);
    let t = saddle_tridiag(&mut r, &layers, 0.1);
    let target = dense(&shifted(&t, 1e-4));
    let f = BlockLdlt::factor(&t, &FactorParams::default()).expect("factor");
    let b = random_mat(&mut r, target.nrows(), 2);
    let params = RefineParams { target_backward_error: 1e-14, max_iterations: 30 };
    let (x, rep) = f.solve_refined(b.as_ref(), dense_apply(&target), &params).expect("refine");
    assert!(rep.converged && rep.iterations >= 1, "{rep:?}");
    assert!(backward_error(target.as_ref(), x.as_ref(), b.as_ref()) <= 1e-14);
    // Without iterations the same call reports the unrefined error honestly.
    let (_, rep0) = f
        .solve_refined(b.as_ref(), dense_apply(&target), &RefineParams { max_iterations: 0, ..params })
        .expect("refine");
    assert!(!rep0.converged && rep0.iterations == 0 && rep0.backward_error > 1e-14, "{rep0:?}");
}
