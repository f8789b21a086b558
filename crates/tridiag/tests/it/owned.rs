//! `BlockLdlt::factor_owned` (diagonal blocks factored in place, not
//! copied) against `BlockLdlt::factor` on the same input: the same numbers
//! bit for bit (the same kernels run on the same values) and the same
//! errors, for every strategy and with dense and structured diagonal blocks,
//! and with couplings that are one dense leaf (taken, not copied) or not.

use crate::common;

use blockmat::{Block, Side, Tridiag};
use common::*;
use faer::Mat;
use rand_chacha::ChaCha8Rng;
use tridiag::{BlockLdlt, FactorParams, OnSingular, ParPolicy, Strategy, TridiagError};

fn variants() -> Vec<FactorParams> {
    let mut v = Vec::new();
    for strategy in [Strategy::Sequential, Strategy::TwoSided] {
        for par in [ParPolicy::Seq, ParPolicy::Auto, ParPolicy::Rayon(2)] {
            v.push(FactorParams { strategy, par, ..Default::default() });
        }
    }
    v
}

/// Exact equality of everything a factorization reports, and of a solve.
fn assert_same(t: &Tridiag, params: &FactorParams, label: &str) {
    let borrowed = BlockLdlt::factor(t, params).expect("factor");
    let owned = BlockLdlt::factor_owned(t.clone(), params).expect("factor_owned");
    let ctx = format!("{label} {:?} {:?}", params.strategy, params.par);
    assert_eq!(owned.inertia(), borrowed.inertia(), "{ctx}");
    assert_eq!(owned.log_abs_det().to_bits(), borrowed.log_abs_det().to_bits(), "{ctx}");
    assert_eq!(owned.det_sign(), borrowed.det_sign(), "{ctx}");
    assert_eq!(owned.norm_fro().to_bits(), borrowed.norm_fro().to_bits(), "{ctx}");
    assert_eq!(owned.diagnostics(), borrowed.diagnostics(), "{ctx}");
    assert_eq!(owned.middle_block(), borrowed.middle_block(), "{ctx}");
    if borrowed.inertia().zero == 0 {
        let b = random_mat(&mut rng(7), t.diag().iter().map(Block::nrows).sum(), 3);
        let (x, y) = (borrowed.solve(b.as_ref()).expect("solve"), owned.solve(b.as_ref()).expect("solve"));
        let same = (0..x.ncols()).all(|j| (0..x.nrows()).all(|i| x[(i, j)].to_bits() == y[(i, j)].to_bits()));
        assert!(same, "{ctx}: solutions differ");
    }
}

#[test]
fn same_factors_as_borrowed() {
    let mut r = rng(3);
    for &nb in &[1usize, 2, 3, 5, 12] {
        let sizes = random_sizes(&mut r, nb, 1, 9);
        let spd = random_tridiag(&mut r, &sizes, Kind::Spd);
        let indefinite = random_tridiag(&mut r, &sizes, Kind::Indefinite);
        // Grid diagonal blocks (the owned path densifies those).
        let layers = random_layers(&mut r, nb);
        let saddle = saddle_tridiag(&mut r, &layers, 0.1);
        for params in variants() {
            assert_same(&spd, &params, &format!("spd {nb}"));
            assert_same(&indefinite, &params, &format!("indefinite {nb}"));
            assert_same(&saddle, &params, &format!("saddle {nb}"));
        }
    }
    // Singular, counted rather than refused.
    let sizes = random_sizes(&mut r, 6, 2, 6);
    let t = random_tridiag(&mut r, &sizes, Kind::Indefinite);
    let singular = ill_conditioned(&t, 4, 0.0);
    for params in variants() {
        assert_same(&singular, &FactorParams { on_singular: OnSingular::Continue, ..params }, "singular");
    }
    let empty = Tridiag::symmetric(Vec::new(), Vec::new()).expect("empty");
    assert_eq!(BlockLdlt::factor_owned(empty, &FactorParams::default()).expect("empty").dim(), 0);
}

/// The Frobenius norm reported (a plain sum of squares of the blocks, the
/// couplings twice) against the dense matrix's: both sum the same squares
/// in different orders, a few rounding errors apart.
#[test]
fn norm_matches_dense() {
    let mut r = rng(5);
    let sizes = random_sizes(&mut r, 9, 1, 12);
    let layers = random_layers(&mut r, 7);
    for t in [random_tridiag(&mut r, &sizes, Kind::Indefinite), saddle_tridiag(&mut r, &layers, 0.1)] {
        let expected = dense(&t).norm_l2();
        for params in variants() {
            let f = BlockLdlt::factor_owned(t.clone(), &params).expect("factor");
            assert!((f.norm_fro() - expected).abs() <= 1e-13 * expected, "{} vs {expected}", f.norm_fro());
        }
    }
}

/// `t` with diagonal block `k` replaced by `d`.
fn with_diag(t: &Tridiag, k: usize, d: Block) -> Tridiag {
    let mut diag = t.diag().to_vec();
    diag[k] = d;
    Tridiag::new(diag, t.sub().to_vec(), t.sub().iter().map(Block::transpose).collect()).expect("same shapes")
}

/// Both entry points refuse the same input with the same error, whichever
/// chain (top, middle, bottom) meets the bad block.
#[test]
fn same_errors_as_borrowed() {
    let mut r = rng(9);
    let sizes = [4usize, 3, 5, 4, 3];
    let t = random_tridiag(&mut r, &sizes, Kind::Indefinite);
    for k in 0..sizes.len() {
        let n = sizes[k];
        let mut nan = t.diag()[k].to_dense();
        nan[(n - 1, 0)] = f64::NAN;
        let mut asym = t.diag()[k].to_dense();
        asym[(n - 1, 0)] += 1.0;
        let bad = [
            (with_diag(&t, k, Block::dense(nan)), "nan"),
            (with_diag(&t, k, Block::dense(asym)), "asymmetric"),
            (with_diag(&t, k, Block::scaled_identity(n, f64::INFINITY)), "infinite identity"),
        ];
        for (bad, label) in bad {
            for params in variants() {
                let e = BlockLdlt::factor(&bad, &params).expect_err(label);
                let e_owned = BlockLdlt::factor_owned(bad.clone(), &params).expect_err(label);
                assert_eq!(e_owned, e, "{label} block {k}");
                assert!(
                    matches!(e, TridiagError::NonFinite { block, .. } | TridiagError::NotSymmetric { row: block, .. } if block == k),
                    "{label} block {k}: {e:?}"
                );
            }
        }
    }
}

/// A non-square diagonal block (only a general tridiagonal can hold one),
/// dense or structured; first, so that it is met before any coupling (whose
/// shape check would fire first otherwise).
#[test]
fn non_square_diagonal_block() {
    let mut r = rng(11);
    let d1 = random_sym(&mut r, 4, 0.0);
    for d0 in [Block::dense(random_mat(&mut r, 2, 4)), Block::zeros(2, 4)] {
        let diag = vec![d0, Block::dense(d1.clone()), Block::dense(Mat::identity(4, 4))];
        let sub = vec![Block::zeros(4, 4), Block::zeros(4, 4)];
        let sup = vec![Block::zeros(2, 4), Block::zeros(4, 4)];
        let t = Tridiag::new(diag, sub, sup).expect("consistent shapes");
        for params in variants() {
            let e = BlockLdlt::factor(&t, &params).expect_err("non-square");
            assert_eq!(BlockLdlt::factor_owned(t.clone(), &params).expect_err("non-square"), e);
            assert!(matches!(e, TridiagError::ShapeMismatch { found: (2, 4), .. }), "{e:?}");
        }
    }
}

/// Entries whose squares under- or overflow (a square of 1e-170 is 0, of
/// 1e170 infinite): the reported norm is still the scaled one, for both
/// entry points. Diagonal blocks (1x1 pivots only, no product of two
/// entries) and a structurally zero coupling keep the factorization itself
/// representable; the oracle is the same norm at scale 1 times the scale
/// (rounding of two summation orders apart).
#[test]
fn norm_of_extreme_entries() {
    for scale in [1e-170, 1e170] {
        let block =
            |k: usize| Block::dense(Mat::from_fn(5, 5, |i, j| if i == j { (k + i + 1) as f64 * scale } else { 0.0 }));
        let t = Tridiag::symmetric(vec![block(0), block(5), block(10)], vec![Block::zeros(5, 5), Block::zeros(5, 5)])
            .expect("consistent");
        let expected = (1..=15).map(|v| (v * v) as f64).sum::<f64>().sqrt() * scale;
        for params in variants() {
            for f in [
                BlockLdlt::factor(&t, &params).expect("factor"),
                BlockLdlt::factor_owned(t.clone(), &params).expect("factor"),
            ] {
                assert!(
                    (f.norm_fro() / expected - 1.0).abs() <= 1e-14,
                    "scale {scale:e}: {:e} vs {expected:e}",
                    f.norm_fro()
                );
            }
        }
    }
}

/// How a coupling `C` (`a x b`) sits in its `2a x 2b` sub-diagonal block.
#[derive(Debug, Clone, Copy)]
enum Placement {
    /// `[[0, C], [0, 0]]` as an upper bidiagonal (hinv's reduced system).
    Bidiag,
    /// The same as a grid.
    Grid,
    /// A second dense leaf beside it: densified, not taken.
    TwoLeaves,
    /// The whole block dense.
    Dense,
}

fn placed(c: Mat<f64>, p: Placement) -> Block {
    let (a, b) = c.shape();
    let z = || Block::zeros(a, b);
    match p {
        Placement::Bidiag => Block::bidiag(Side::Upper, vec![z(), z()], vec![Block::dense(c)]).expect("shapes"),
        Placement::Grid => Block::grid(vec![vec![z(), Block::dense(c)], vec![z(), z()]]).expect("shapes"),
        Placement::TwoLeaves => {
            let other = Mat::from_fn(a, b, |i, j| 0.25 * c[(i, j)] - 0.5);
            Block::grid(vec![vec![z(), Block::dense(c)], vec![Block::dense(other), z()]]).expect("shapes")
        }
        Placement::Dense => {
            let mut m = Mat::<f64>::zeros(2 * a, 2 * b);
            m.as_mut().submatrix_mut(0, b, a, b).copy_from(&c);
            Block::dense(m)
        }
    }
}

/// A system of blocks `2 a_k` coupled through `a_{k+1} x a_k` couplings.
fn reduced_like(r: &mut ChaCha8Rng, halves: &[usize], p: Placement, bad: Option<usize>) -> Tridiag {
    let diag = halves.iter().map(|&a| Block::dense(random_sym(r, 2 * a, 0.0))).collect();
    let sub = (1..halves.len())
        .map(|k| {
            let mut c = random_mat(r, halves[k], halves[k - 1]);
            if bad == Some(k - 1) {
                c[(halves[k] - 1, 0)] = f64::NAN;
            }
            placed(c, p)
        })
        .collect();
    Tridiag::symmetric(diag, sub).expect("consistent")
}

#[test]
fn couplings_taken_or_densified_give_the_same_factors() {
    let mut r = rng(13);
    let halves = [3usize, 4, 2, 5, 3, 4];
    for p in [Placement::Bidiag, Placement::Grid, Placement::TwoLeaves, Placement::Dense] {
        let t = reduced_like(&mut r, &halves, p, None);
        for params in variants() {
            assert_same(&t, &params, &format!("{p:?}"));
        }
    }
}

/// A NaN in a coupling: the same error from both entry points, naming the
/// coupling's block, whichever chain (top-down or, transposed, bottom-up)
/// meets it.
#[test]
fn a_non_finite_coupling_is_refused_alike() {
    let mut r = rng(17);
    let halves = [3usize, 4, 2, 5, 3];
    for p in [Placement::Bidiag, Placement::Grid, Placement::TwoLeaves, Placement::Dense] {
        for k in 0..halves.len() - 1 {
            let t = reduced_like(&mut r, &halves, p, Some(k));
            for params in variants() {
                let e = BlockLdlt::factor(&t, &params).expect_err("nan coupling");
                assert_eq!(BlockLdlt::factor_owned(t.clone(), &params).expect_err("nan coupling"), e, "{p:?} {k}");
                assert_eq!(e, TridiagError::NonFinite { what: "sub-diagonal", block: k }, "{p:?} {k} {params:?}");
            }
        }
    }
}
