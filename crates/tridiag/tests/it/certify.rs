//! The inertia certificate: whenever `uncertain_pivots` is 0 the block
//! inertia equals the dense eigenvalues' one, and otherwise it is off by at
//! most that many; swept from well-conditioned to singular.

use crate::common;

use common::*;
use tridiag::{BlockLdlt, FactorParams, OnSingular};

#[test]
fn certified_inertia_is_exact_and_uncertainty_covers_the_error() {
    let params = FactorParams { on_singular: OnSingular::Continue, singular_tol: 0.0, ..FactorParams::default() };
    let (mut certified, mut uncertain, mut decided) = (0, 0, 0);
    for seed in 0..40u64 {
        let mut r = rng(500 + seed);
        let layers = random_layers(&mut r, 2 + seed as usize % 6);
        let t = saddle_tridiag(&mut r, &layers, 0.0);
        let n: usize = layers.iter().map(|(p, a)| p + 2 * a).sum();
        // Shift one eigenvalue to rel * scale from zero: cond from 1e2 to 1e18.
        let rel = 10f64.powi(-2 - (seed as i32 % 17));
        let t = ill_conditioned(&t, (seed as usize * 7) % n, rel);
        let ev = eigenvalues(dense(&t).as_ref());
        let (pos, neg) = eigen_inertia(&ev);
        let f = BlockLdlt::factor(&t, &params).unwrap();
        let i = f.inertia();
        let u = f.uncertain_pivots();
        assert_eq!(i.total(), n, "seed {seed}: counts must sum to the dimension");
        let off = i.negative.abs_diff(neg).max(i.positive.abs_diff(pos));
        // The dense eigenvalues are themselves only accurate to
        // ~ n u ||S||: an eigenvalue that close to zero has no reliable
        // reference sign, so such cases only check the bound loosely.
        let scale = ev.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let ambiguous = ev.iter().any(|v| v.abs() <= 1e3 * n as f64 * f64::EPSILON * scale);
        decided += usize::from(!ambiguous);
        if u == 0 {
            certified += 1;
            if !ambiguous {
                assert_eq!(off, 0, "seed {seed} (rel {rel:e}): certified inertia {i:?} but dense ({neg}, {pos})");
            }
        } else {
            uncertain += 1;
            if !ambiguous {
                assert!(off <= u, "seed {seed}: off by {off}, uncertain {u}");
            }
        }
    }
    // The sweep must decide enough certified cases to mean anything (the
    // rounding-only certificate flags few on these random matrices).
    assert!(certified >= 10 && decided >= 15, "certified {certified}, uncertain {uncertain}, decided {decided}");
    // An exactly singular matrix: its near-zero pivot is never certain.
    let mut r = rng(9);
    let layers = random_layers(&mut r, 4);
    let t = duplicate_index(&saddle_tridiag(&mut r, &layers, 0.1), 1, 0, 1);
    let f = BlockLdlt::factor(&t, &params).unwrap();
    assert!(f.uncertain_pivots() >= 1, "a singular matrix must not be certified: {:?}", f.inertia());
}
