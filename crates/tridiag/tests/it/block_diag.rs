//! `BlockDiagLdlt` against dense oracles: block solves against faer's LU of
//! each block, inertia and `log|det|` against the eigenvalues of the
//! whole block-diagonal matrix, on mixed block sizes (1x1 blocks, tiny and
//! large ones, so both the sequential and the parallel path run), and its
//! errors with the index of the block that caused them.

use crate::common;

use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef};
use tridiag::{BlockDiagLdlt, FactorParams, OnSingular, TridiagError};

/// The blocks of `sizes`, each symmetric indefinite (`shift` 0) or
/// ill-conditioned (one eigenvalue scaled to `1e-9`).
fn blocks(seed: u64, sizes: &[usize], ill: bool) -> Vec<Mat<f64>> {
    let mut rng = common::rng(seed);
    sizes
        .iter()
        .map(|&n| {
            let s = common::random_sym(&mut rng, n, 0.0);
            if !ill || n < 2 {
                return s;
            }
            // S + (1e-9 - lambda) v v^T with (lambda, v) the smallest-magnitude
            // eigenpair: condition ~1e9 and the same other eigenvalues.
            let eig = s.self_adjoint_eigen(faer::Side::Lower).expect("eigen solver converges");
            let ev = eig.S().column_vector();
            let k = (0..n).min_by(|&a, &b| ev[a].abs().total_cmp(&ev[b].abs())).expect("n > 0");
            let v = eig.U().col(k);
            Mat::from_fn(n, n, |i, j| s[(i, j)] + (1e-9 - ev[k]) * v[i] * v[j])
        })
        .collect()
}

fn block_diagonal(blocks: &[Mat<f64>]) -> Mat<f64> {
    let n: usize = blocks.iter().map(|b| b.nrows()).sum();
    let mut d = Mat::<f64>::zeros(n, n);
    let mut at = 0;
    for b in blocks {
        d.as_mut().submatrix_mut(at, at, b.nrows(), b.nrows()).copy_from(b);
        at += b.nrows();
    }
    d
}

fn check_against_dense(blocks: Vec<Mat<f64>>, packed: bool) {
    let dense = block_diagonal(&blocks);
    let ev = common::eigenvalues(dense.as_ref());
    let sizes: Vec<usize> = blocks.iter().map(|b| b.nrows()).collect();
    let copies = blocks.clone();
    let params = FactorParams::default();
    let f = if packed {
        let data = blocks.iter().flat_map(|b| (0..b.ncols()).flat_map(move |j| b.col(j).iter().copied())).collect();
        BlockDiagLdlt::factor_packed(data, &sizes, &params).expect("factor")
    } else {
        BlockDiagLdlt::factor(blocks, &params).expect("factor")
    };
    assert_eq!(f.len(), sizes.len());
    assert!(f.pivots(sizes.len()).is_empty());
    let i = f.inertia();
    assert_eq!((i.positive, i.negative, i.zero), (common::eigen_inertia(&ev).0, common::eigen_inertia(&ev).1, 0));
    let (ld, sign) = common::eigen_slogdet(&ev);
    // Each pivot carries O(n u cond) relative error; the sum of their logs
    // is accurate to a few u times the largest block's condition, far
    // below 1e-6 even for the 1e9-conditioned blocks.
    assert!((f.log_abs_det() - ld).abs() <= 1e-6 * ld.abs().max(1.0), "log|det| {} vs {ld}", f.log_abs_det());
    assert_eq!(f.det_sign(), sign);
    for (k, b) in copies.iter().enumerate() {
        let n = b.nrows();
        // Sylvester: the pivots' eigenvalues carry the block's inertia and
        // determinant.
        let pivots = f.pivots(k);
        let block_ev = common::eigenvalues(b.as_ref());
        assert_eq!(pivots.len(), n, "block {k}");
        let positive = pivots.iter().filter(|p| **p > 0.0).count();
        assert_eq!((positive, n - positive), common::eigen_inertia(&block_ev), "block {k}");
        let log_det: f64 = pivots.iter().map(|p| p.abs().ln()).sum();
        let oracle = common::lu_log_abs_det(b.as_ref());
        assert!((log_det - oracle).abs() <= 1e-6 * oracle.abs().max(1.0), "block {k}: {log_det} vs {oracle}");
        let rhs = Mat::<f64>::from_fn(n, 3, |r, c| ((r * 7 + c * 3) % 11) as f64 - 5.0);
        let mut x = rhs.clone();
        f.solve_block_in_place(k, x.as_mut()).expect("solve");
        let oracle = b.partial_piv_lu().solve(rhs.as_ref());
        // Both solves are backward stable: they differ by O(u cond) relative.
        let cond = 1e10;
        let err = (&x - &oracle).norm_max() / oracle.norm_max().max(f64::MIN_POSITIVE);
        assert!(err <= 1e-16 * cond * n as f64, "block {k} ({n}x{n}): relative difference {err:.2e}");
        assert!(residual(b.as_ref(), x.as_ref(), rhs.as_ref()) <= 1e-13, "block {k}: backward error");
        // The inverse (a written-out kernel up to 32 rows, the solve with
        // the identity above) agrees with the solve: both are O(u cond)
        // from the exact inverse.
        let mut inv = Mat::<f64>::zeros(n, n);
        f.inverse_into(k, inv.as_mut()).expect("inverse");
        let x = &inv * &rhs;
        let err = (&x - &oracle).norm_max() / oracle.norm_max().max(f64::MIN_POSITIVE);
        assert!(err <= 1e-16 * cond * n as f64, "block {k} ({n}x{n}): inverse differs by {err:.2e}");
        assert!((&inv - inv.transpose()).norm_max() <= 1e-12 * inv.norm_max(), "block {k}: inverse symmetric");
    }
}

fn residual(a: MatRef<'_, f64>, x: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    common::backward_error(a, x, b)
}

#[test]
fn block_solves_inertia_and_log_det_match_the_dense_matrix() {
    // 1x1 blocks, tiny ones, and blocks of 70 (70^3 > 2^18 in total: the
    // blocks are factored in parallel on a multi-core pool).
    let sizes = [1, 3, 1, 8, 70, 2, 17, 1, 70, 5];
    for seed in 0..4 {
        for packed in [false, true] {
            check_against_dense(blocks(seed, &sizes, false), packed);
            check_against_dense(blocks(seed + 100, &sizes, true), packed);
        }
    }
    // Small blocks only: the sequential path.
    check_against_dense(blocks(9, &[2, 1, 4, 4, 9, 1], false), true);
}

/// Blocks up to 32 rows are checked in one fused pass, larger ones by the
/// general checks: both must measure the same scale (the largest entry,
/// exactly) and refuse the same inputs, with the same deviation.
#[test]
fn small_and_large_blocks_are_checked_alike() {
    let params = FactorParams::default();
    for n in [1usize, 2, 5, 32, 33, 40] {
        let b = blocks(20 + n as u64, &[n], false);
        let big = b[0].norm_max();
        let f = BlockDiagLdlt::factor(b.clone(), &params).expect("factor");
        assert_eq!(f.diagnostics()[0].scale, big, "n = {n}");
        // Below, above and on the diagonal.
        for (i, j) in [(n - 1, 0), (0, n - 1), (n - 1, n - 1)] {
            for bad in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
                let mut c = b.clone();
                c[0][(i, j)] = bad;
                let err = BlockDiagLdlt::factor(c, &params).unwrap_err();
                assert_eq!(err, TridiagError::NonFinite { what: "diagonal", block: 0 }, "n = {n}, ({i}, {j}) {bad}");
            }
        }
        // A 1x1 block has no symmetry to check, whatever the tolerance.
        if n == 1 {
            let negative = FactorParams { symmetry_tol: -1.0, ..params };
            assert!(BlockDiagLdlt::factor(b.clone(), &negative).is_ok());
        }
        if n > 1 {
            // Above the diagonal and the largest entry: the scale must see both triangles.
            let mut c = b.clone();
            c[0][(0, n - 1)] += 10.0 * big;
            let big = c[0].norm_max();
            let deviation = (c[0][(0, n - 1)] - c[0][(n - 1, 0)]).abs();
            let err = BlockDiagLdlt::factor(c, &params).unwrap_err();
            let tolerance = params.symmetry_tol * big;
            assert_eq!(err, TridiagError::NotSymmetric { row: 0, col: 0, deviation, tolerance }, "n = {n}");
        }
    }
}

#[test]
fn errors_name_the_block() {
    let params = FactorParams::default();
    let mut b = blocks(3, &[2, 3, 4], false);
    b[1] = Mat::zeros(3, 2);
    assert!(matches!(
        BlockDiagLdlt::factor(b, &params),
        Err(TridiagError::ShapeMismatch { expected: (3, 3), found: (3, 2), .. })
    ));
    let mut b = blocks(3, &[2, 3, 4], false);
    b[2][(1, 1)] = f64::NAN;
    assert!(matches!(BlockDiagLdlt::factor(b, &params), Err(TridiagError::NonFinite { block: 2, .. })));
    let mut b = blocks(3, &[2, 3, 4], false);
    b[1][(0, 2)] += 0.5;
    assert!(matches!(BlockDiagLdlt::factor(b, &params), Err(TridiagError::NotSymmetric { row: 1, col: 1, .. })));
    // A singular block: an error, or a count of one zero eigenvalue and a
    // refused solve of that block only.
    let mut b = blocks(3, &[2, 3, 4], false);
    b[1] = Mat::from_fn(3, 3, |i, j| ((i + 1) * (j + 1)) as f64);
    assert!(matches!(BlockDiagLdlt::factor(b.clone(), &params), Err(TridiagError::Singular { block: 1, .. })));
    let cont = FactorParams { on_singular: OnSingular::Continue, ..params };
    let f = BlockDiagLdlt::factor(b, &cont).expect("continues past the zero pivots");
    assert_eq!(f.inertia().zero, 2);
    assert!(matches!(
        f.solve_block_in_place(1, Mat::<f64>::ones(3, 1).as_mut()),
        Err(TridiagError::SolveSingular { first_block: 1, .. })
    ));
    f.solve_block_in_place(2, Mat::<f64>::ones(4, 1).as_mut()).expect("the other blocks solve");
    assert!(matches!(
        f.inverse_into(1, Mat::<f64>::zeros(3, 3).as_mut()),
        Err(TridiagError::SolveSingular { first_block: 1, .. })
    ));
    for (k, shape) in [(2, (4, 3)), (2, (3, 4)), (3, (4, 4)), (1, (3, 3))] {
        // An error leaves `out` as it was.
        let mut out = Mat::<f64>::from_fn(shape.0, shape.1, |_, _| 7.0);
        let err = f.inverse_into(k, out.as_mut()).expect_err("an error");
        assert!(
            matches!(err, TridiagError::ShapeMismatch { .. } | TridiagError::SolveSingular { first_block: 1, .. }),
            "block {k}, out {shape:?}: {err}"
        );
        assert!(out.col_iter().flat_map(|c| c.iter().copied()).all(|v| v == 7.0), "block {k}: out written");
    }
    assert!(matches!(
        f.solve_block_in_place(3, Mat::<f64>::ones(4, 1).as_mut()),
        Err(TridiagError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        BlockDiagLdlt::factor_packed(vec![1.0; 5], &[2, 2], &params),
        Err(TridiagError::ShapeMismatch { expected: (8, 1), found: (5, 1), .. })
    ));
    // Sizes whose squares overflow: an error, not a wrapped total or a panic.
    let huge = 1usize << (usize::BITS / 2);
    assert!(matches!(
        BlockDiagLdlt::factor_packed(vec![1.0; 4], &[2, huge, huge], &params),
        Err(TridiagError::ShapeMismatch { .. })
    ));
}

/// Empty blocks take no room, and the certificate judges each block's
/// pivots against its own rounding bound (`8 u n max(scale, largest
/// pivot)`): a pivot of `1e-15` in a block of scale 1 and size 2 is above
/// the zero threshold (`u n`) but within that bound, so it is uncertain.
#[test]
fn empty_blocks_and_the_certificate() {
    let params = FactorParams::default();
    // Blocks 0x0, [[1, 0], [0, 1e-15]], 0x0, [[-3]].
    let f = BlockDiagLdlt::factor_packed(vec![1.0, 0.0, 0.0, 1e-15, -3.0], &[0, 2, 0, 1], &params).expect("factor");
    assert_eq!(f.len(), 4);
    assert!(f.pivots(0).is_empty() && f.pivots(2).is_empty());
    assert_eq!(f.pivots(1), &[1.0, 1e-15]);
    assert_eq!(f.pivots(3), &[-3.0]);
    let i = f.inertia();
    assert_eq!((i.positive, i.negative, i.zero, i.uncertain), (2, 1, 0, 1));
    let bound = 8.0 * f64::EPSILON * 2.0;
    assert!((f.pivot_margin() - 1e-15 / bound).abs() <= 1e-12, "margin {}", f.pivot_margin());
    let mut rhs = Mat::<f64>::ones(2, 1);
    f.solve_block_in_place(1, rhs.as_mut()).expect("solve");
    assert_eq!(rhs[(0, 0)], 1.0);
    assert!((rhs[(1, 0)] / 1e15 - 1.0).abs() <= 4.0 * f64::EPSILON);
    f.solve_block_in_place(0, Mat::<f64>::zeros(0, 1).as_mut()).expect("an empty block solves");
    // Well separated pivots: certified, with a margin far above 1.
    let g = BlockDiagLdlt::factor_packed(vec![2.0, 1.0, 1.0, -3.0, 4.0], &[2, 1], &params).expect("factor");
    assert_eq!(g.inertia().uncertain, 0);
    assert!(g.pivot_margin() > 1e12);
}
