//! Couplings tens of columns wide between blocks of ~100 (the other tests'
//! blocks have at most a dozen rows), on both sides: columns narrower than
//! rows (the link keeps `L^-1 P E_cols`) and rows narrower (it keeps
//! `L^-1 P E_cols C^T`), with indefinite blocks (2x2 pivots), against the
//! dense oracles.

use crate::common;

use blockmat::{Block, Tridiag};
use common::*;
use tridiag::{BlockLdlt, FactorParams, ParPolicy, Strategy};

/// Blocks of `sizes`; sub-diagonal block `k` non-zero on a window of
/// `widths[k]` columns (and all rows), so that the coupling is `n x w`.
fn windowed(sizes: &[usize], widths: &[usize], seed: u64) -> Tridiag {
    let mut r = rng(seed);
    let diag = sizes.iter().map(|&n| Block::dense(random_sym(&mut r, n, 0.0))).collect();
    let sub = (1..sizes.len())
        .map(|k| {
            let (rows, cols, w) = (sizes[k], sizes[k - 1], widths[k - 1]);
            let start = (cols - w) / 3;
            Block::grid(vec![vec![
                Block::zeros(rows, start),
                Block::dense(random_mat(&mut r, rows, w)),
                Block::zeros(rows, cols - start - w),
            ]])
            .expect("consistent grid")
        })
        .collect();
    Tridiag::symmetric(diag, sub).expect("consistent tridiagonal")
}

fn cases() -> Vec<(Tridiag, &'static str)> {
    vec![
        // Columns narrower than rows: several panels of sorted columns.
        (windowed(&[96, 90, 100, 80, 96], &[70, 45, 90, 33], 1), "narrow columns"),
        // Rows narrower than columns (a small block after a wide coupling),
        // so the link solves with C^T.
        (windowed(&[100, 20, 90, 12, 80], &[90, 20, 80, 12], 2), "narrow rows"),
    ]
}

/// Against the dense oracles, every strategy; random indefinite blocks of
/// these sizes have condition numbers below ~1e5, as in accuracy.rs.
#[test]
fn matches_dense_oracles() {
    for (t, label) in cases() {
        let s = dense(&t);
        let ev = eigenvalues(s.as_ref());
        let (pos, neg) = eigen_inertia(&ev);
        let (ld, sign) = eigen_slogdet(&ev);
        let scale = ev.iter().map(|v| v.abs().ln().abs()).sum::<f64>().max(1.0);
        let b = random_mat(&mut rng(3), s.nrows(), 5);
        for strategy in [Strategy::Sequential, Strategy::TwoSided] {
            for par in [ParPolicy::Seq, ParPolicy::Auto, ParPolicy::Rayon(2)] {
                let f = BlockLdlt::factor(&t, &FactorParams { strategy, par, ..Default::default() }).expect("factor");
                let i = f.inertia();
                assert_eq!((i.positive, i.negative, i.zero), (pos, neg, 0), "{label} {strategy:?}");
                assert_eq!(f.det_sign(), sign, "{label} {strategy:?}");
                assert!((f.log_abs_det() - ld).abs() <= 1e-10 * scale, "{label} {strategy:?}");
                let x = f.solve(b.as_ref()).expect("solve");
                let be = backward_error(s.as_ref(), x.as_ref(), b.as_ref());
                assert!(be <= 64.0 * f64::EPSILON, "{label} {strategy:?} {par:?}: backward error {be:e}");
            }
        }
    }
}
