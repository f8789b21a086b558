//! Solve, log-determinant and inertia against dense oracles (faer LU,
//! symmetric eigenvalues) on random SPD, indefinite, saddle-point and
//! ill-conditioned block-tridiagonal matrices.

use crate::common;

use common::*;
use faer::Mat;
use tridiag::{BlockLdlt, FactorParams, ParPolicy, Strategy};

/// What one case measured, for the assertions and for failure messages.
#[derive(Debug)]
struct Measured {
    dim: usize,
    backward: f64,
    log_det_err: f64,
    log_det_scale: f64,
}

/// Factors `t`, solves `nrhs` random right-hand sides, and compares inertia,
/// sign and log-determinant with the eigenvalues of the dense matrix.
fn check(t: &blockmat::Tridiag, nrhs: usize, seed: u64, params: &FactorParams) -> Measured {
    let s = dense(t);
    let f = BlockLdlt::factor(t, params).unwrap_or_else(|e| panic!("factor failed: {e}"));
    assert_eq!(f.dim(), s.nrows());
    let b = random_mat(&mut rng(seed), s.nrows(), nrhs);
    let x = f.solve(b.as_ref()).expect("solve");
    let ev = eigenvalues(s.as_ref());
    let (pos, neg) = eigen_inertia(&ev);
    let inertia = f.inertia();
    assert_eq!((inertia.positive, inertia.negative, inertia.zero), (pos, neg, 0), "inertia");
    let (ld, sign) = eigen_slogdet(&ev);
    assert_eq!(f.det_sign(), sign, "determinant sign");
    Measured {
        dim: s.nrows(),
        backward: backward_error(s.as_ref(), x.as_ref(), b.as_ref()),
        log_det_err: (f.log_abs_det() - ld).abs(),
        // The sum of |log|lambda_i|| is the scale against which the rounding
        // of each term is measured (the signed sum can cancel to ~0).
        log_det_scale: ev.iter().map(|v| v.abs().ln().abs()).sum::<f64>().max(1.0),
    }
}

// Bunch–Kaufman is normwise backward stable with an error bounded by
// c(n) eps ||S|| times the growth factor (bounded by 2.57^(n-1) in theory,
// small in practice); the block elimination adds a few more roundings per
// block. Measured errors on these matrices are below 6e-16 (~3 eps); 64 eps
// leaves room for the dimension dependence (n up to ~400) without letting a
// wrong update (errors ~1e-3 and up) through.
const BACKWARD_TOL: f64 = 64.0 * f64::EPSILON;

// Each log|lambda_i| is known to about eps * kappa_i (eigen solver and
// factorization alike, kappa_i = ||S|| / |lambda_i|); for these well
// conditioned random matrices that is below 1e-12 relative to the scale.
const LOG_DET_REL_TOL: f64 = 1e-10;

fn assert_accurate(m: &Measured, label: &str) {
    assert!(m.backward <= BACKWARD_TOL, "{label}: backward error {:.3e} (dim {})", m.backward, m.dim);
    assert!(m.log_det_err <= LOG_DET_REL_TOL * m.log_det_scale, "{label}: log-det error {m:?}");
}

#[test]
fn spd_block_counts_1_to_64() {
    let mut r = rng(1);
    for &nb in &[1usize, 2, 3, 7, 16, 64] {
        let sizes = random_sizes(&mut r, nb, 1, 9);
        let t = random_tridiag(&mut r, &sizes, Kind::Spd);
        let m = check(&t, 3, nb as u64, &FactorParams::default());
        assert_accurate(&m, &format!("spd nb={nb}"));
    }
}

#[test]
fn indefinite_uneven_blocks() {
    let mut r = rng(2);
    for &nb in &[1usize, 2, 5, 13, 40, 64] {
        let sizes = random_sizes(&mut r, nb, 1, 8);
        let t = random_tridiag(&mut r, &sizes, Kind::Indefinite);
        let m = check(&t, 4, 100 + nb as u64, &FactorParams::default());
        assert_accurate(&m, &format!("indefinite nb={nb}"));
    }
}

#[test]
fn saddle_point_zero_diagonal_blocks() {
    let mut r = rng(3);
    for &nb in &[1usize, 2, 4, 11, 32, 64] {
        let layers = random_layers(&mut r, nb);
        let t = saddle_tridiag(&mut r, &layers, 0.1);
        // The coupling is the y range of the previous layer.
        let f = BlockLdlt::factor(&t, &FactorParams::default()).expect("factor");
        for (l, d) in f.diagnostics().iter().enumerate().take(nb - 1) {
            let (p, a) = layers[l];
            assert_eq!(d.coupling, Some(p..p + a), "coupling of layer {l}");
        }
        let m = check(&t, 5, 200 + nb as u64, &FactorParams::default());
        assert_accurate(&m, &format!("saddle nb={nb}"));
    }
}

#[test]
fn ill_conditioned_up_to_1e10() {
    let mut r = rng(4);
    for &(nb, rel, kind) in &[
        (8usize, 1e-6, Kind::Spd),
        (20, 1e-10, Kind::Spd),
        (16, 1e-8, Kind::Indefinite),
        (30, 1e-10, Kind::Indefinite),
    ] {
        let sizes = random_sizes(&mut r, nb, 2, 7);
        let base = random_tridiag(&mut r, &sizes, kind);
        let n: usize = sizes.iter().sum();
        // SPD: lift the smallest eigenvalue to rel * ||S|| (still SPD);
        // indefinite: put one eigenvalue of the middle of the spectrum there.
        let j = if kind == Kind::Spd { 0 } else { n / 2 };
        let t = ill_conditioned(&base, j, rel);
        let m = check(&t, 3, 300 + nb as u64, &FactorParams::default());
        // Backward stability does not depend on the conditioning.
        assert!(m.backward <= BACKWARD_TOL, "ill nb={nb}: backward {:.3e}", m.backward);
        // The log of the smallest eigenvalue is only known to ~eps / rel in
        // both oracle and factorization; the other terms as above.
        let tol = LOG_DET_REL_TOL * m.log_det_scale + 8.0 * f64::EPSILON / rel;
        assert!(m.log_det_err <= tol, "ill nb={nb}: log-det {m:?} tol {tol:.3e}");
    }
}

#[test]
fn saddle_log_det_matches_lu() {
    // A second oracle for log|det| that shares nothing with the eigen solver.
    let mut r = rng(5);
    let layers = random_layers(&mut r, 24);
    let t = saddle_tridiag(&mut r, &layers, 1e-3);
    let f = BlockLdlt::factor(&t, &FactorParams::default()).expect("factor");
    let lu = lu_log_abs_det(dense(&t).as_ref());
    assert!((f.log_abs_det() - lu).abs() <= 1e-10 * lu.abs().max(1.0), "{} vs {lu}", f.log_abs_det());
}

/// Blocks and couplings wider than 16 take the triangular update, which
/// writes only the lower triangle of a workspace reused across blocks of
/// different sizes: a stale or unwritten entry would show here as a wrong
/// update (errors ~1e-3 and up), with both strategies and both chains.
#[test]
fn wide_blocks_of_varying_sizes_every_strategy() {
    let mut r = rng(9);
    for strategy in [Strategy::Sequential, Strategy::TwoSided] {
        for kind in [Kind::Spd, Kind::Indefinite] {
            let sizes = random_sizes(&mut r, 9, 17, 48);
            let t = random_tridiag(&mut r, &sizes, kind);
            let m = check(&t, 3, 7, &FactorParams { strategy, ..Default::default() });
            assert_accurate(&m, &format!("{strategy:?} {kind:?} sizes {sizes:?}"));
        }
    }
}

#[test]
fn many_right_hand_sides_every_policy() {
    let mut r = rng(6);
    let layers = random_layers(&mut r, 20);
    let t = saddle_tridiag(&mut r, &layers, 0.5);
    let s = dense(&t);
    let b = random_mat(&mut r, s.nrows(), 67);
    let mut reference: Option<Mat<f64>> = None;
    for par in [ParPolicy::Seq, ParPolicy::Auto, ParPolicy::Rayon(2)] {
        let f = BlockLdlt::factor(&t, &FactorParams { par, ..Default::default() }).expect("factor");
        let x = f.solve(b.as_ref()).expect("solve");
        assert!(backward_error(s.as_ref(), x.as_ref(), b.as_ref()) <= BACKWARD_TOL, "{par:?}");
        // Column splitting must not change a column's result beyond rounding
        // of differently blocked kernels.
        if let Some(x0) = &reference {
            let d = (&x - x0).norm_max() / x0.norm_max();
            assert!(d <= 1e-12, "{par:?}: {d:e}");
        }
        reference = Some(x);
        // One column at a time gives the same as all at once.
        let x1 = f.solve(b.as_ref().subcols(3, 1)).expect("solve one");
        let d = (&x1 - reference.as_ref().map(|x| x.as_ref().subcols(3, 1)).expect("set above")).norm_max();
        assert!(d <= 1e-12 * x1.norm_max(), "{par:?}: single column differs by {d:e}");
    }
}

#[test]
fn empty_and_decoupled_blocks() {
    // Zero blocks, empty blocks and structurally zero couplings.
    let mut r = rng(7);
    let t = blockmat::Tridiag::symmetric(
        vec![
            blockmat::Block::dense(random_sym(&mut r, 3, 9.0)),
            blockmat::Block::zeros(0, 0),
            blockmat::Block::dense(random_sym(&mut r, 2, 0.0)),
            blockmat::Block::dense(random_sym(&mut r, 4, 0.0)),
        ],
        vec![
            blockmat::Block::zeros(0, 3),
            blockmat::Block::zeros(2, 0),
            blockmat::Block::dense(random_mat(&mut r, 4, 2)),
        ],
    )
    .expect("shapes");
    let m = check(&t, 2, 7, &FactorParams::default());
    assert_accurate(&m, "decoupled");
    let empty = blockmat::Tridiag::symmetric(vec![], vec![]).expect("empty");
    let f = BlockLdlt::factor(&empty, &FactorParams::default()).expect("empty factor");
    assert_eq!((f.dim(), f.log_abs_det(), f.det_sign()), (0, 0.0, 1.0));
    assert_eq!(f.solve(Mat::<f64>::zeros(0, 2).as_ref()).expect("empty solve").nrows(), 0);
}
