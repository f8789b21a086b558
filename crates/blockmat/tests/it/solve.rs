//! Solves against dense LU, on random nestings and ill-conditioned leaves.

use crate::common;

use blockmat::{Block, BlockError, Side};
use common::*;
use faer::linalg::solvers::Solve;
use faer::Mat;

fn dense_solve(a: &Mat<f64>, b: &Mat<f64>, trans: bool) -> Mat<f64> {
    let lu = a.partial_piv_lu();
    if trans {
        lu.solve_transpose(b)
    } else {
        lu.solve(b)
    }
}

#[test]
fn solves_match_dense_lu() {
    let mut rng = rng(11);
    for _ in 0..200 {
        let n = rng_size(&mut rng);
        let a = rand_solvable(&mut rng, n, 3);
        let d = a.to_dense();
        let b = rand_mat(&mut rng, n, 3);
        for trans in [false, true] {
            let x = if trans { a.solve_transpose(b.as_ref()) } else { a.solve(b.as_ref()) }.unwrap();
            // Diagonal leaves are 4 I + noise in [-1, 1] (size <= 9), so the
            // diagonal blocks are well conditioned, but off-diagonal blocks
            // compound over up to 3 levels of substitution; residuals of
            // both solvers stay near 1e-14, so 1e-10 on x is generous.
            let want = dense_solve(&d, &b, trans);
            assert!(max_diff(&x, &want) < 1e-10, "{}", a.structure());
        }
    }
}

fn rng_size(rng: &mut rand_chacha::ChaCha8Rng) -> usize {
    use rand::Rng;
    rng.random_range(0..=9)
}

#[test]
fn ill_conditioned_dense_leaves_solve_to_their_condition() {
    // Hilbert blocks: cond(H_6) ~ 1.5e7. Backward-stable LU gives a
    // relative error around cond * eps ~ 3e-9, so check the residual
    // (which is small regardless of conditioning) and x to 1e-6.
    let h = |n: usize| Mat::from_fn(n, n, |i, j| 1.0 / (i + j + 1) as f64);
    let a = Block::bidiag(
        Side::Upper,
        vec![Block::dense(h(6)), Block::dense(h(5))],
        vec![Block::dense(Mat::from_fn(6, 5, |i, j| (i * j) as f64))],
    )
    .unwrap();
    let x_true = Mat::from_fn(11, 2, |i, j| (i + 2 * j) as f64 / 7.0);
    let b = a.mul_dense(x_true.as_ref()).unwrap();
    let x = a.solve(b.as_ref()).unwrap();
    let r = a.mul_dense(x.as_ref()).unwrap();
    assert!(max_diff(&r, &b) < 1e-9);
    assert!(max_diff(&x, &x_true) < 1e-6);
}

#[test]
fn unit_bidiagonal_is_substitution_without_division() {
    let mut rng = rng(12);
    let off = vec![Block::dense(rand_mat(&mut rng, 3, 2)), Block::dense(rand_mat(&mut rng, 1, 3))];
    let m = Block::unit_bidiag(Side::Lower, &[2, 3, 1], off).unwrap();
    let b = rand_mat(&mut rng, 6, 2);
    let x = m.solve(b.as_ref()).unwrap();
    // Only multiply-adds happen, so the residual is at rounding level.
    assert!(max_diff(&m.mul_dense(x.as_ref()).unwrap(), &b) < 1e-14);
}

#[test]
fn singular_and_unsupported_are_errors() {
    let b = Mat::<f64>::zeros(3, 1);
    let rank1 = Block::dense(Mat::from_fn(2, 2, |i, j| ((i + 1) * (j + 1)) as f64));
    let errs = [
        Block::block_diag(vec![Block::identity(1), rank1]).solve(b.as_ref()).unwrap_err(),
        Block::scaled_identity(3, 0.0).solve(b.as_ref()).unwrap_err(),
        Block::zeros(3, 3).solve_transpose(b.as_ref()).unwrap_err(),
        Block::zeros(3, 2).solve(b.as_ref()).unwrap_err(),
        Block::identity(2).solve(b.as_ref()).unwrap_err(),
        Block::block_diag(vec![Block::zeros(2, 1), Block::zeros(1, 2)]).solve(b.as_ref()).unwrap_err(),
        Block::sym_tridiag(vec![Block::identity(3)], vec![]).unwrap().solve(b.as_ref()).unwrap_err(),
        Block::grid(vec![vec![Block::identity(3)]]).unwrap().solve(b.as_ref()).unwrap_err(),
    ];
    assert!(matches!(errs[0], BlockError::Singular { index: 1, n: 2, .. }));
    insta::assert_snapshot!(errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"));
    // Empty systems are fine.
    assert_eq!(Block::zeros(0, 0).solve(Mat::zeros(0, 2).as_ref()).unwrap().ncols(), 2);
}
