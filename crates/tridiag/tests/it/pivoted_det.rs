//! `log_det_pivoted` against the eigenvalues of the dense matrix, on random
//! SPD, indefinite, saddle-point and ill-conditioned matrices, on matrices
//! where block LDLᵀ breaks down or loses digits to pivot growth, and on
//! badly scaled ones.

use crate::common;

use blockmat::{Block, Tridiag};
use common::*;
use faer::{mat, Mat};
use tridiag::{log_det_pivoted, BlockLdlt, FactorParams, OnSingular, ParPolicy, TridiagError};

const SYM_TOL: f64 = 8.0 * f64::EPSILON;

/// `(log|det|, sign)` of `t` by the pivoted sweep.
fn pivoted(t: &Tridiag) -> (f64, f64) {
    let d = log_det_pivoted(t, ParPolicy::Seq, SYM_TOL).unwrap_or_else(|e| panic!("pivoted log-det: {e}"));
    (d.log_abs, d.sign)
}

/// Error against the eigenvalues, relative to the scale `sum |log|lambda||`
/// (the signed sum can cancel), and the matrix's condition number.
fn error(t: &Tridiag) -> (f64, f64) {
    let ev = eigenvalues(dense(t).as_ref());
    let (ld, sign) = eigen_slogdet(&ev);
    let (got, got_sign) = pivoted(t);
    assert_eq!(got_sign, sign, "determinant sign");
    let scale = ev.iter().map(|v| v.abs().ln().abs()).sum::<f64>().max(1.0);
    let amax = ev.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let amin = ev.iter().fold(f64::INFINITY, |m, v| m.min(v.abs()));
    ((got - ld).abs() / scale, amax / amin)
}

// Gaussian elimination with partial pivoting is backward stable with a
// growth factor that is small in practice: each log|lambda_i| then moves by
// about eps_mach * kappa(S) * n. The bar 1e-15 * kappa (floor 1e-12)
// allows n up to a few hundred at ~4 eps_mach per entry; a wrong pivot, row
// interchange or update misses it by many orders of magnitude.
fn bar(cond: f64) -> f64 {
    (1e-15 * cond).max(1e-12)
}

#[test]
fn random_matrices_match_eigenvalues() {
    for seed in 0..12u64 {
        let mut r = rng(seed);
        let nb = 1 + (seed as usize % 6);
        let sizes = random_sizes(&mut r, nb, 1, 9);
        let kind = if seed % 2 == 0 { Kind::Spd } else { Kind::Indefinite };
        let t = random_tridiag(&mut r, &sizes, kind);
        let (err, cond) = error(&t);
        assert!(err <= bar(cond), "seed {seed} {kind:?}: err {err:e}, cond {cond:e}");
        let layers = random_layers(&mut r, 1 + seed as usize % 5);
        let t = saddle_tridiag(&mut r, &layers, 0.1);
        let (err, cond) = error(&t);
        assert!(err <= bar(cond), "seed {seed} saddle: err {err:e}, cond {cond:e}");
    }
}

#[test]
fn ill_conditioned_matrices_match_eigenvalues() {
    for (seed, rel) in [(1u64, 1e-4), (2, 1e-7), (3, 1e-9), (4, 1e-10)] {
        let mut r = rng(100 + seed);
        let layers = random_layers(&mut r, 6);
        let t = saddle_tridiag(&mut r, &layers, 0.0);
        let n: usize = layers.iter().map(|(p, a)| p + 2 * a).sum();
        let t = ill_conditioned(&t, n / 2, rel);
        let (err, cond) = error(&t);
        assert!(cond >= 0.1 / rel, "the shift must make the matrix ill-conditioned: {cond:e}");
        assert!(err <= bar(cond), "rel {rel:e}: err {err:e}, cond {cond:e}");
    }
}

/// Every block pivot is zero but the matrix is a permutation: block LDLᵀ
/// fails, partial pivoting across blocks does not.
#[test]
fn pivots_across_blocks_where_block_ldlt_breaks_down() {
    let zero = || Block::dense(mat![[0.0]]);
    let t = Tridiag::symmetric(
        vec![zero(), zero(), zero(), zero()],
        vec![Block::dense(mat![[2.0]]), Block::dense(mat![[0.0]]), Block::dense(mat![[3.0]])],
    )
    .unwrap();
    let err = BlockLdlt::factor(&t, &FactorParams::default()).unwrap_err();
    assert!(matches!(err, TridiagError::Singular { block: 0, .. }), "{err}");
    // [[0,2],[2,0]] (+) [[0,3],[3,0]]: det = (-4)(-9) = 36.
    let (ld, sign) = pivoted(&t);
    assert!((ld - 36f64.ln()).abs() <= 1e-15, "{ld}");
    assert_eq!(sign, 1.0);
}

/// `[[delta, 1, 1], [1, 1, 0], [1, 0, 1]]` in blocks of 1 and 2: the whole
/// matrix is well conditioned (det = delta - 2) but block elimination
/// pivots on `delta`, its Schur complement `[[1 - 1/delta, -1/delta],
/// [-1/delta, 1 - 1/delta]]` has entries `1/delta` that cancel in its
/// determinant, and the block log-determinant loses `~ eps_mach / delta`.
/// Partial pivoting across the blocks swaps the rows and loses nothing.
#[test]
fn beats_block_pivots_under_growth() {
    for delta in [3.3e-5, 1.7e-8, 2.9e-11] {
        let t = Tridiag::symmetric(
            vec![Block::dense(mat![[delta]]), Block::dense(mat![[1.0, 0.0], [0.0, 1.0]])],
            vec![Block::dense(mat![[1.0], [1.0]])],
        )
        .unwrap();
        let exact = (2.0 - delta).ln();
        let (ld, sign) = pivoted(&t);
        assert_eq!(sign, -1.0);
        // A few roundings of O(1) numbers.
        assert!((ld - exact).abs() <= 4.0 * f64::EPSILON, "delta {delta:e}: {ld} vs {exact}");
        let block = BlockLdlt::factor(&t, &FactorParams { singular_tol: 0.0, ..FactorParams::default() }).unwrap();
        let block_err = (block.log_abs_det() - exact).abs();
        // The growth is real: the block pivots lose about eps_mach / delta.
        assert!(block_err >= 0.01 * f64::EPSILON / delta, "delta {delta:e}: block error {block_err:e}");
    }
}

/// Rows scaled by 1e-150..1e150: without the equilibration partial
/// pivoting would pick pivots by scale and the products would overflow.
#[test]
fn badly_scaled_rows() {
    let mut r = rng(11);
    let sizes = [3, 5, 2, 4, 3];
    let t = random_tridiag(&mut r, &sizes, Kind::Indefinite);
    let n: usize = sizes.iter().sum();
    let scale: Vec<f64> = (0..n).map(|i| 10f64.powi((i as i32 * 37 % 61) * 5 - 150)).collect();
    let s = dense(&t);
    let offsets = blockmat::offsets(&sizes);
    let block = |r0: usize, c0: usize, rn: usize, cn: usize| {
        Mat::from_fn(rn, cn, |i, j| s[(r0 + i, c0 + j)] * scale[r0 + i] * scale[c0 + j])
    };
    let diag = (0..sizes.len()).map(|k| Block::dense(block(offsets[k], offsets[k], sizes[k], sizes[k]))).collect();
    let sub =
        (1..sizes.len()).map(|k| Block::dense(block(offsets[k], offsets[k - 1], sizes[k], sizes[k - 1]))).collect();
    let scaled = Tridiag::symmetric(diag, sub).unwrap();
    let (ld, sign) = pivoted(&scaled);
    let (ld0, sign0) = eigen_slogdet(&eigenvalues(s.as_ref()));
    let expected = ld0 + 2.0 * scale.iter().map(|v| v.ln()).sum::<f64>();
    assert_eq!(sign, sign0);
    assert!((ld - expected).abs() <= 1e-12 * expected.abs(), "{ld} vs {expected}");
    // A subnormal entry: its scale factor squared would overflow.
    let tiny = Tridiag::symmetric(vec![Block::dense(mat![[1e-310]])], vec![]).unwrap();
    let (ld, sign) = pivoted(&tiny);
    assert_eq!(sign, 1.0);
    assert!((ld - 1e-310f64.ln()).abs() <= 1e-12 * 714.0, "{ld}");
}

#[test]
fn singular_and_degenerate_inputs() {
    // Two equal rows: exactly singular.
    let mut r = rng(3);
    let t = random_tridiag(&mut r, &[3, 4, 3], Kind::Indefinite);
    let t = duplicate_index(&t, 1, 0, 2);
    let d = log_det_pivoted(&t, ParPolicy::Seq, SYM_TOL).unwrap();
    // Rounding may leave a pivot of order eps instead of an exact zero; either
    // way the determinant must be tiny against the matrix's scale.
    assert!(d.sign == 0.0 || d.log_abs < -20.0, "{d:?}");
    // No blocks: the empty product.
    let empty = Tridiag::symmetric(vec![], vec![]).unwrap();
    let d = log_det_pivoted(&empty, ParPolicy::Seq, SYM_TOL).unwrap();
    assert_eq!((d.log_abs, d.sign), (0.0, 1.0));
    // A zero block row.
    let z = Tridiag::symmetric(vec![Block::zeros(2, 2), Block::dense(mat![[1.0]])], vec![Block::zeros(1, 2)]).unwrap();
    let d = log_det_pivoted(&z, ParPolicy::Seq, SYM_TOL).unwrap();
    assert_eq!((d.log_abs, d.sign), (f64::NEG_INFINITY, 0.0));
    // The block factorization agrees that it is singular.
    let f = BlockLdlt::factor(&z, &FactorParams { on_singular: OnSingular::Continue, ..Default::default() }).unwrap();
    assert_eq!(f.inertia().zero, 2);
}

#[test]
fn rejects_what_the_factorization_rejects() {
    let asym = Tridiag::symmetric(vec![Block::dense(mat![[1.0, 2.0], [0.0, 1.0]])], vec![]).unwrap();
    let err = log_det_pivoted(&asym, ParPolicy::Seq, SYM_TOL).unwrap_err();
    assert!(matches!(err, TridiagError::NotSymmetric { row: 0, col: 0, .. }), "{err}");
    let nan = Tridiag::symmetric(vec![Block::dense(mat![[f64::NAN]])], vec![]).unwrap();
    let err = log_det_pivoted(&nan, ParPolicy::Seq, SYM_TOL).unwrap_err();
    assert!(matches!(err, TridiagError::NonFinite { block: 0, .. }), "{err}");
}

/// Parallel kernels give the same answer up to rounding.
#[test]
fn parallel_policy_agrees() {
    let mut r = rng(21);
    let layers = random_layers(&mut r, 8);
    let t = saddle_tridiag(&mut r, &layers, 0.05);
    let a = log_det_pivoted(&t, ParPolicy::Seq, SYM_TOL).unwrap();
    let b = log_det_pivoted(&t, ParPolicy::Rayon(2), SYM_TOL).unwrap();
    assert_eq!(a.sign, b.sign);
    assert!((a.log_abs - b.log_abs).abs() <= 1e-12 * a.log_abs.abs().max(1.0));
}

/// The determinant alone (no factor kept, windows reused from block to
/// block) is the same elimination as `PivotedLu::factor`: bit for bit the
/// same determinant, on blocks of unequal sizes (the reused windows hold
/// stale entries from larger blocks) up to 150, saddle points and a
/// singular matrix, sequential and parallel.
#[test]
fn the_determinant_alone_equals_the_kept_factors() {
    let mut cases = Vec::new();
    for seed in 0..6u64 {
        let mut r = rng(100 + seed);
        let sizes = random_sizes(&mut r, 2 + seed as usize, 1, 12);
        cases.push(random_tridiag(&mut r, &sizes, Kind::Indefinite));
        let layers = random_layers(&mut r, 2 + seed as usize);
        cases.push(saddle_tridiag(&mut r, &layers, 0.1));
    }
    let mut r = rng(7);
    let t = random_tridiag(&mut r, &[3, 4, 3], Kind::Indefinite);
    cases.push(duplicate_index(&t, 1, 0, 2));
    cases.push(
        Tridiag::symmetric(vec![Block::zeros(2, 2), Block::dense(mat![[1.0]])], vec![Block::zeros(1, 2)]).unwrap(),
    );
    // Blocks past faer's blocked kernels (over 64), of unequal sizes.
    let mut r = rng(8);
    cases.push(random_tridiag(&mut r, &[150, 70, 130, 90], Kind::Indefinite));
    for (i, t) in cases.iter().enumerate() {
        for par in [ParPolicy::Seq, ParPolicy::Rayon(2)] {
            let alone = log_det_pivoted(t, par, SYM_TOL).unwrap();
            let kept = tridiag::PivotedLu::factor(t, par, SYM_TOL).unwrap().log_det();
            let (a, k) =
                ((alone.log_abs.to_bits(), alone.sign.to_bits()), (kept.log_abs.to_bits(), kept.sign.to_bits()));
            assert_eq!(a, k, "case {i}, {par:?}");
        }
    }
}
