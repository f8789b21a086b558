//! Singular, non-finite, non-symmetric and mis-shaped inputs return typed
//! errors (messages pinned by snapshots); `OnSingular::Continue` reports the
//! zero pivots in the inertia.

use crate::common;

use blockmat::{Block, Tridiag};
use common::*;
use faer::{mat, Mat};
use tridiag::{BlockLdlt, FactorParams, OnSingular, TridiagError};

fn continue_params() -> FactorParams {
    FactorParams { on_singular: OnSingular::Continue, ..Default::default() }
}

/// `[[1, 1], [1, 1]]` as two 1x1 blocks: `S_1 = 1 - 1 = 0` exactly.
fn singular_second_block() -> Tridiag {
    Tridiag::symmetric(vec![Block::dense(mat![[1.0]]), Block::dense(mat![[1.0]])], vec![Block::dense(mat![[1.0]])])
        .expect("shapes")
}

#[test]
fn zero_first_block_is_singular() {
    let t = Tridiag::symmetric(vec![Block::zeros(2, 2)], vec![]).expect("shapes");
    let err = BlockLdlt::factor(&t, &FactorParams::default()).expect_err("singular");
    assert!(matches!(err, TridiagError::Singular { block: 0, pivot: 0, .. }), "{err:?}");
    insta::assert_snapshot!("zero_block", err.to_string());
}

#[test]
fn singular_schur_complement_names_the_block() {
    let err = BlockLdlt::factor(&singular_second_block(), &FactorParams::default()).expect_err("singular");
    assert!(matches!(err, TridiagError::Singular { block: 1, pivot: 0, .. }), "{err:?}");
    insta::assert_snapshot!("schur_complement", err.to_string());
}

#[test]
fn continue_counts_zero_pivots_and_refuses_to_solve() {
    let f = BlockLdlt::factor(&singular_second_block(), &continue_params()).expect("continue");
    // Eigenvalues of [[1, 1], [1, 1]] are 0 and 2.
    // A zero pivot is never certain: it may be a breakdown of the block
    // elimination rather than a zero eigenvalue.
    let i = f.inertia();
    assert_eq!((i.positive, i.negative, i.zero), (1, 0, 1));
    assert!(i.uncertain >= 1, "{i:?}");
    assert_eq!(f.log_abs_det(), f64::NEG_INFINITY);
    assert_eq!(f.det_sign(), 0.0);
    assert_eq!(f.diagnostics()[1].inertia.zero, 1);
    let err = f.solve(Mat::<f64>::ones(2, 1).as_ref()).expect_err("no solve");
    insta::assert_snapshot!("solve_singular", err.to_string());
}

#[test]
fn duplicated_rows_are_singular_in_their_block() {
    // Random SPD, indefinite and saddle-point matrices, the duplicate in the
    // first, a middle and the last block: the error names that block, and
    // Continue counts one zero and the signs of the other eigenvalues.
    for (seed, which, k) in [(11u64, 0, 3usize), (12, 1, 0), (13, 1, 6), (14, 2, 4), (15, 0, 7)] {
        let mut r = rng(seed);
        let base = match which {
            0 => random_tridiag(&mut r, &[4, 5, 3, 6, 4, 5, 3, 4], Kind::Spd),
            1 => random_tridiag(&mut r, &[4, 5, 3, 6, 4, 5, 3, 4], Kind::Indefinite),
            _ => saddle_tridiag(&mut r, &[(3, 2), (4, 3), (2, 2), (5, 2), (3, 3), (2, 1)], 0.2),
        };
        let t = duplicate_index(&base, k, 0, 2);
        let err = BlockLdlt::factor(&t, &FactorParams::default()).expect_err("singular");
        assert!(matches!(err, TridiagError::Singular { block, .. } if block == k), "seed {seed}: {err:?}");
        let f = BlockLdlt::factor(&t, &continue_params()).expect("continue");
        let ev = eigenvalues(dense(&t).as_ref());
        // The zero eigenvalue comes out of the eigen solver as +-eps ||S||.
        let tiny = 1e-12 * ev.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let pos = ev.iter().filter(|v| **v > tiny).count();
        let neg = ev.iter().filter(|v| **v < -tiny).count();
        assert_eq!(pos + neg + 1, ev.len(), "seed {seed}: one zero eigenvalue");
        let i = f.inertia();
        assert_eq!((i.positive, i.negative, i.zero), (pos, neg, 1), "seed {seed}");
        assert!(i.uncertain >= 1, "seed {seed}: {i:?}");
    }
}

#[test]
fn non_finite_input_names_the_block() {
    let mut r = rng(20);
    let mut d = random_sym(&mut r, 3, 5.0);
    d[(1, 2)] = f64::NAN;
    d[(2, 1)] = f64::NAN;
    let t = Tridiag::symmetric(
        vec![Block::identity(2), Block::dense(random_sym(&mut r, 3, 5.0)), Block::dense(d)],
        vec![Block::zeros(3, 2), Block::dense(random_mat(&mut r, 3, 3))],
    )
    .expect("shapes");
    let err = BlockLdlt::factor(&t, &FactorParams::default()).expect_err("nan");
    assert_eq!(err, TridiagError::NonFinite { what: "diagonal", block: 2 });
    insta::assert_snapshot!("non_finite_diagonal", err.to_string());

    let mut s = random_mat(&mut r, 3, 2);
    s[(0, 0)] = f64::INFINITY;
    let t = Tridiag::symmetric(vec![Block::identity(2), Block::identity(3)], vec![Block::dense(s)]).expect("shapes");
    let err = BlockLdlt::factor(&t, &FactorParams::default()).expect_err("inf");
    assert_eq!(err, TridiagError::NonFinite { what: "sub-diagonal", block: 0 });

    let t = Tridiag::symmetric(vec![Block::identity(2), Block::identity(3)], vec![Block::zeros(3, 2)]).expect("shapes");
    let f = BlockLdlt::factor(&t, &FactorParams::default()).expect("identity");
    let mut b = Mat::<f64>::ones(5, 2);
    b[(4, 1)] = f64::NAN;
    let err = f.solve(b.as_ref()).expect_err("nan rhs");
    assert_eq!(err, TridiagError::NonFinite { what: "right-hand side", block: 1 });
}

#[test]
fn symmetry_is_checked() {
    let t = Tridiag::symmetric(vec![Block::dense(mat![[1.0, 2.0], [3.0, 1.0]])], vec![]).expect("shapes");
    let err = BlockLdlt::factor(&t, &FactorParams::default()).expect_err("not symmetric");
    assert!(matches!(err, TridiagError::NotSymmetric { row: 0, col: 0, .. }), "{err:?}");
    insta::assert_snapshot!("not_symmetric_diagonal", err.to_string());
    // An infinite tolerance accepts the block (the check's pass is then
    // skipped, which no result shows): it is read from its lower
    // triangle, as the factorization always reads it.
    let skip = FactorParams { symmetry_tol: f64::INFINITY, ..FactorParams::default() };
    let lower = Tridiag::symmetric(vec![Block::dense(mat![[1.0, 3.0], [3.0, 1.0]])], vec![]).expect("shapes");
    let (f, g) =
        (BlockLdlt::factor(&t, &skip).expect("unchecked"), BlockLdlt::factor(&lower, &skip).expect("symmetric"));
    assert_eq!(f.log_abs_det(), g.log_abs_det());
    assert_eq!(f.inertia(), g.inertia());

    // A general tridiagonal is accepted when sup[k] = sub[k]^T ...
    let mut r = rng(21);
    let c = random_mat(&mut r, 2, 3);
    let diag = vec![Block::dense(random_sym(&mut r, 3, 9.0)), Block::dense(random_sym(&mut r, 2, 9.0))];
    let good = Tridiag::new(diag.clone(), vec![Block::dense(c.clone())], vec![Block::dense(c.transpose().to_owned())])
        .expect("shapes");
    let sym = Tridiag::symmetric(diag.clone(), vec![Block::dense(c.clone())]).expect("shapes");
    let (a, b) = (
        BlockLdlt::factor(&good, &FactorParams::default()).expect("symmetric general"),
        BlockLdlt::factor(&sym, &FactorParams::default()).expect("symmetric"),
    );
    assert_eq!(a.log_abs_det(), b.log_abs_det());
    // ... and refused otherwise, naming the super-diagonal position.
    let bad = Tridiag::new(diag, vec![Block::dense(c)], vec![Block::dense(random_mat(&mut r, 3, 2))]).expect("shapes");
    let err = BlockLdlt::factor(&bad, &FactorParams::default()).expect_err("not symmetric");
    assert!(matches!(err, TridiagError::NotSymmetric { row: 0, col: 1, .. }), "{err:?}");
}

#[test]
fn shapes_are_checked() {
    let t = Tridiag::symmetric(vec![Block::identity(2), Block::identity(3)], vec![Block::zeros(3, 2)]).expect("shapes");
    let f = BlockLdlt::factor(&t, &FactorParams::default()).expect("identity");
    let err = f.solve(Mat::<f64>::ones(4, 2).as_ref()).expect_err("wrong rows");
    insta::assert_snapshot!("rhs_shape", err.to_string());
    let mut out = Mat::<f64>::zeros(6, 1);
    assert!(matches!(f.solve_in_place(out.as_mut()), Err(TridiagError::ShapeMismatch { .. })));

    // A general tridiagonal does not force square diagonal blocks.
    let t = Tridiag::new(vec![Block::zeros(2, 3)], vec![], vec![]).expect("shapes");
    let err = BlockLdlt::factor(&t, &FactorParams::default()).expect_err("not square");
    insta::assert_snapshot!("non_square_block", err.to_string());
}
