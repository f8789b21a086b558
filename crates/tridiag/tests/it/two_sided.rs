//! The two-sided ("burn at both ends") elimination gives the same solution,
//! log-determinant and inertia as the sequential one and as the dense
//! oracles, sequentially and with its two chains on two threads.

use crate::common;

use common::*;
use tridiag::{BlockLdlt, FactorParams, OnSingular, ParPolicy, Strategy};

fn params(par: ParPolicy) -> FactorParams {
    FactorParams { strategy: Strategy::TwoSided, par, ..Default::default() }
}

/// Compares a two-sided factorization of `t` with the dense oracles and
/// with the sequential factorization.
fn check(t: &blockmat::Tridiag, seed: u64, label: &str, interior: bool) {
    let s = dense(t);
    let seq = BlockLdlt::factor(t, &FactorParams::default()).expect("sequential");
    let ev = eigenvalues(s.as_ref());
    let (pos, neg) = eigen_inertia(&ev);
    let (ld, sign) = eigen_slogdet(&ev);
    let scale = ev.iter().map(|v| v.abs().ln().abs()).sum::<f64>().max(1.0);
    let b = random_mat(&mut rng(seed), s.nrows(), 9);
    let x_seq = seq.solve(b.as_ref()).expect("solve");
    // `Auto` keeps these small systems on one thread (too little work to
    // split); `Rayon(2)` runs the two chains on two threads whatever the size.
    for par in [ParPolicy::Seq, ParPolicy::Auto, ParPolicy::Rayon(2)] {
        let f = BlockLdlt::factor(t, &params(par)).expect("two-sided");
        let nb = t.len();
        if interior && nb >= 3 {
            // The bottom chain must exist for the test to mean anything.
            assert!(f.middle_block() > 0 && f.middle_block() + 1 < nb, "{label}: middle {}", f.middle_block());
        }
        let i = f.inertia();
        assert_eq!((i.positive, i.negative, i.zero), (pos, neg, 0), "{label} {par:?}");
        assert_eq!(f.det_sign(), sign, "{label} {par:?}");
        // Same tolerance and reasoning as in accuracy.rs.
        assert!((f.log_abs_det() - ld).abs() <= 1e-10 * scale, "{label} {par:?}: {} vs {ld}", f.log_abs_det());
        let x = f.solve(b.as_ref()).expect("solve");
        let be = backward_error(s.as_ref(), x.as_ref(), b.as_ref());
        assert!(be <= 64.0 * f64::EPSILON, "{label} {par:?}: backward error {be:e}");
        // Both orders are backward stable, so they agree to about cond * eps;
        // these random matrices have cond below 1e5.
        let d = (&x - &x_seq).norm_max() / x_seq.norm_max();
        assert!(d <= 1e-9, "{label} {par:?}: differs from sequential by {d:e}");
        assert_eq!(f.diagnostics().len(), nb);
    }
}

#[test]
fn matches_oracles_and_sequential() {
    let mut r = rng(41);
    for &nb in &[1usize, 2, 3, 4, 9, 64] {
        let sizes = random_sizes(&mut r, nb, 1, 8);
        check(&random_tridiag(&mut r, &sizes, Kind::Spd), nb as u64, &format!("spd {nb}"), true);
        check(&random_tridiag(&mut r, &sizes, Kind::Indefinite), 50 + nb as u64, &format!("indefinite {nb}"), true);
        let layers = random_layers(&mut r, nb);
        check(&saddle_tridiag(&mut r, &layers, 0.1), 90 + nb as u64, &format!("saddle {nb}"), true);
    }
}

#[test]
fn uneven_blocks_move_the_middle() {
    // One huge block at the end: the balance puts the middle there.
    let mut r = rng(42);
    let sizes = [2usize, 2, 2, 2, 2, 30];
    let t = random_tridiag(&mut r, &sizes, Kind::Indefinite);
    let f = BlockLdlt::factor(&t, &params(ParPolicy::Auto)).expect("factor");
    assert_eq!(f.middle_block(), 5);
    check(&t, 7, "uneven", false);
}

#[test]
fn continue_counts_zero_pivots_two_sided() {
    // Two equal rows of S in the top chain, the middle and the bottom chain:
    // exactly one zero pivot, and the other eigenvalues' signs.
    for (seed, k) in [(43u64, 1usize), (44, 3), (45, 5)] {
        let mut r = rng(seed);
        let base = random_tridiag(&mut r, &[3, 4, 5, 3, 4, 4, 3], Kind::Indefinite);
        let t = duplicate_index(&base, k, 0, 2);
        let ev = eigenvalues(dense(&t).as_ref());
        let tiny = 1e-12 * ev.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let pos = ev.iter().filter(|v| **v > tiny).count();
        let neg = ev.iter().filter(|v| **v < -tiny).count();
        let cont = FactorParams { on_singular: OnSingular::Continue, ..params(ParPolicy::Auto) };
        let f = BlockLdlt::factor(&t, &cont).expect("two-sided");
        assert_eq!(f.middle_block(), 3);
        let i = f.inertia();
        assert_eq!((i.positive, i.negative, i.zero), (pos, neg, 1), "seed {seed}");
        assert!(i.uncertain >= 1, "a zero pivot is never certain: {i:?}");
        let err = BlockLdlt::factor(&t, &params(ParPolicy::Auto)).expect_err("singular");
        assert!(matches!(err, tridiag::TridiagError::Singular { block, .. } if block == k), "{err:?}");
    }
}

/// `Strategy::Auto` runs the two-sided order from
/// `AUTO_TWO_SIDED_MIN_BLOCKS` blocks on and the sequential one below, and
/// reports the order that ran; the answers are those of the order it chose.
#[test]
fn auto_chooses_by_block_count() {
    use tridiag::AUTO_TWO_SIDED_MIN_BLOCKS;
    let mut r = rng(43);
    for nb in [1, 4, AUTO_TWO_SIDED_MIN_BLOCKS - 1, AUTO_TWO_SIDED_MIN_BLOCKS, 40] {
        let sizes = random_sizes(&mut r, nb, 2, 6);
        let t = random_tridiag(&mut r, &sizes, Kind::Indefinite);
        let auto =
            BlockLdlt::factor(&t, &FactorParams { strategy: Strategy::Auto, ..Default::default() }).expect("auto");
        let expected = if nb >= AUTO_TWO_SIDED_MIN_BLOCKS { Strategy::TwoSided } else { Strategy::Sequential };
        assert_eq!(auto.strategy(), expected, "{nb} blocks");
        assert_eq!(Strategy::Auto.resolve(nb), expected);
        let same = BlockLdlt::factor(&t, &FactorParams { strategy: expected, ..Default::default() }).expect("factor");
        assert_eq!(auto.middle_block(), same.middle_block(), "{nb} blocks");
        assert_eq!(auto.inertia(), same.inertia(), "{nb} blocks");
        let b = random_mat(&mut rng(nb as u64), auto.dim(), 2);
        // The same order on the same matrix: the same operations, bit for bit.
        assert_eq!(auto.solve(b.as_ref()).expect("solve"), same.solve(b.as_ref()).expect("solve"), "{nb} blocks");
    }
}
