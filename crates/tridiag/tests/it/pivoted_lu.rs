//! `PivotedLu` solves against a dense solve and the residual, on random
//! SPD, indefinite, saddle-point and ill-conditioned matrices, where block
//! LDLᵀ breaks down, on badly scaled rows, and with many right-hand sides.

use crate::common;

use blockmat::{Block, Tridiag};
use common::*;
use faer::{mat, Mat};
use tridiag::{ParPolicy, PivotedLu, TridiagError};

const SYM_TOL: f64 = 8.0 * f64::EPSILON;

/// Backward error of `PivotedLu`'s solution for `k` random right-hand sides.
fn solve_backward_error(t: &Tridiag, k: usize, seed: u64, par: ParPolicy) -> f64 {
    let lu = PivotedLu::factor(t, par, SYM_TOL).unwrap_or_else(|e| panic!("factor: {e}"));
    let mut r = rng(seed);
    let b = random_mat(&mut r, lu.dim(), k);
    let x = lu.solve(b.as_ref()).unwrap_or_else(|e| panic!("solve: {e}"));
    backward_error(dense(t).as_ref(), x.as_ref(), b.as_ref())
}

// Gaussian elimination with partial pivoting is backward stable with a
// growth factor that is small in practice; on the equilibrated matrix the
// normwise backward error is a few eps_mach times sqrt(n) for the sizes
// here (at most ~60). 64 eps_mach leaves room for growth of ~10; a wrong
// row order, update or back-substitution term gives O(1).
const BAR: f64 = 64.0 * f64::EPSILON;

#[test]
fn random_matrices_are_solved_to_machine_precision() {
    for seed in 0..16u64 {
        let mut r = rng(seed);
        let nb = 1 + (seed as usize % 6);
        let sizes = random_sizes(&mut r, nb, 1, 9);
        let kind = if seed % 2 == 0 { Kind::Spd } else { Kind::Indefinite };
        let t = random_tridiag(&mut r, &sizes, kind);
        let be = solve_backward_error(&t, 1 + seed as usize % 3, seed, ParPolicy::Seq);
        assert!(be <= BAR, "seed {seed} {kind:?}: backward error {be:e}");
        let layers = random_layers(&mut r, 1 + seed as usize % 5);
        let t = saddle_tridiag(&mut r, &layers, 0.1);
        let be = solve_backward_error(&t, 2, seed, ParPolicy::Seq);
        assert!(be <= BAR, "seed {seed} saddle: backward error {be:e}");
    }
}

/// Backward stability does not depend on the conditioning; the forward
/// error then follows `cond * backward error`.
#[test]
fn ill_conditioned_matrices_keep_a_small_backward_error() {
    for (seed, rel) in [(1u64, 1e-4), (2, 1e-8), (3, 1e-11), (4, 1e-13)] {
        let mut r = rng(100 + seed);
        let layers = random_layers(&mut r, 6);
        let t = saddle_tridiag(&mut r, &layers, 0.0);
        let n: usize = layers.iter().map(|(p, a)| p + 2 * a).sum();
        let t = ill_conditioned(&t, n / 2, rel);
        let ev = eigenvalues(dense(&t).as_ref());
        let cond = ev.iter().fold(0.0f64, |m, v| m.max(v.abs())) / ev.iter().fold(f64::INFINITY, |m, v| m.min(v.abs()));
        assert!(cond >= 0.1 / rel, "the shift must make the matrix ill-conditioned: {cond:e}");
        let be = solve_backward_error(&t, 3, seed, ParPolicy::Seq);
        assert!(be <= BAR, "rel {rel:e} (cond {cond:.1e}): backward error {be:e}");
    }
}

/// Every block pivot is zero but the matrix is a permutation: the solution
/// is exact.
#[test]
fn solves_where_block_ldlt_breaks_down() {
    let zero = || Block::dense(mat![[0.0]]);
    let one = || Block::dense(mat![[1.0]]);
    let t = Tridiag::symmetric(vec![zero(), zero(), zero(), zero()], vec![one(), Block::dense(mat![[0.0]]), one()])
        .unwrap();
    let lu = PivotedLu::factor(&t, ParPolicy::Seq, SYM_TOL).unwrap();
    let x = lu.solve(mat![[1.0], [2.0], [3.0], [4.0]].as_ref()).unwrap();
    let want = [2.0, 1.0, 4.0, 3.0];
    for (i, w) in want.iter().enumerate() {
        assert_eq!(x[(i, 0)], *w, "entry {i}");
    }
}

/// Rows scaled from 1e-150 to 1e150: the equilibration keeps the solve
/// backward stable.
#[test]
fn badly_scaled_rows_are_solved() {
    let mut r = rng(7);
    let layers = random_layers(&mut r, 5);
    let t = saddle_tridiag(&mut r, &layers, 0.3);
    let d = dense(&t);
    let n = d.nrows();
    let s: Vec<f64> = (0..n).map(|i| 10f64.powf(-150.0 + 300.0 * i as f64 / n as f64)).collect();
    // Rebuild the same blocks scaled symmetrically.
    let sizes: Vec<usize> = t.diag().iter().map(|b| b.nrows()).collect();
    let offs = blockmat::offsets(&sizes);
    let scaled = |i: usize, j: usize| d[(i, j)] * s[i] * s[j];
    let diag = (0..sizes.len())
        .map(|k| Block::dense(Mat::from_fn(sizes[k], sizes[k], |i, j| scaled(offs[k] + i, offs[k] + j))))
        .collect();
    let sub = (0..sizes.len() - 1)
        .map(|k| Block::dense(Mat::from_fn(sizes[k + 1], sizes[k], |i, j| scaled(offs[k + 1] + i, offs[k] + j))))
        .collect();
    let t2 = Tridiag::symmetric(diag, sub).unwrap();
    let lu = PivotedLu::factor(&t2, ParPolicy::Seq, SYM_TOL).unwrap();
    // Componentwise check in the scaled coordinates: x = S^-1 y with
    // (S A S) y = S b, so S^-1 x solves the well-scaled system.
    let b = random_mat(&mut r, n, 1);
    let bs = Mat::from_fn(n, 1, |i, _| b[(i, 0)] * s[i]);
    let x = lu.solve(bs.as_ref()).unwrap();
    let y = Mat::from_fn(n, 1, |i, _| x[(i, 0)] * s[i]);
    let be = backward_error(d.as_ref(), y.as_ref(), b.as_ref());
    assert!(be <= BAR, "backward error in the balanced coordinates {be:e}");
}

#[test]
fn many_right_hand_sides_and_parallel_policy_agree_with_one_at_a_time() {
    let mut r = rng(11);
    let layers = random_layers(&mut r, 7);
    let t = saddle_tridiag(&mut r, &layers, 0.05);
    let seq = PivotedLu::factor(&t, ParPolicy::Seq, SYM_TOL).unwrap();
    let par = PivotedLu::factor(&t, ParPolicy::Rayon(2), SYM_TOL).unwrap();
    let b = random_mat(&mut r, seq.dim(), 5);
    let all = seq.solve(b.as_ref()).unwrap();
    let all_par = par.solve(b.as_ref()).unwrap();
    for j in 0..5 {
        let one = seq.solve(b.as_ref().subcols(j, 1)).unwrap();
        for i in 0..seq.dim() {
            // Same operations column by column: equal up to the blocking of
            // the matrix products.
            assert!((one[(i, 0)] - all[(i, j)]).abs() <= 1e-12 * (1.0 + one[(i, 0)].abs()));
            assert!((all_par[(i, j)] - all[(i, j)]).abs() <= 1e-12 * (1.0 + all[(i, j)].abs()));
        }
    }
}

#[test]
fn singular_shapes_and_non_finite_inputs_are_errors() {
    let z =
        Tridiag::symmetric(vec![Block::dense(mat![[1.0]]), Block::dense(mat![[0.0]])], vec![Block::dense(mat![[0.0]])])
            .unwrap();
    let lu = PivotedLu::factor(&z, ParPolicy::Seq, SYM_TOL).unwrap();
    assert_eq!(lu.log_det().sign, 0.0);
    assert!(matches!(lu.solve(mat![[1.0], [1.0]].as_ref()), Err(TridiagError::SolveSingular { .. })));
    let ok = Tridiag::symmetric(vec![Block::dense(mat![[2.0]])], vec![]).unwrap();
    let lu = PivotedLu::factor(&ok, ParPolicy::Seq, SYM_TOL).unwrap();
    assert!(matches!(lu.solve(mat![[1.0], [1.0]].as_ref()), Err(TridiagError::ShapeMismatch { .. })));
    assert!(matches!(lu.solve(mat![[f64::NAN]].as_ref()), Err(TridiagError::NonFinite { .. })));
    assert_eq!(lu.solve(mat![[1.0]].as_ref()).unwrap()[(0, 0)], 0.5);
    let empty = Tridiag::symmetric(vec![], vec![]).unwrap();
    let lu = PivotedLu::factor(&empty, ParPolicy::Seq, SYM_TOL).unwrap();
    assert_eq!(lu.solve(Mat::<f64>::zeros(0, 1).as_ref()).unwrap().nrows(), 0);
}
