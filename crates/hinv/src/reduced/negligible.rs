//! Entries too small to matter, dropped before a block is factored.
//!
//! A deep network at PyTorch's initialisation (tanh, no bias) lets its
//! activations shrink geometrically with depth: past a few hundred layers
//! the unit blocks of `A_l` and the fills in `R`'s blocks hold entries
//! near `1e-300` beside the `eps` on their diagonal or the `-I` between
//! `z` and `y`. A pivoted factorization multiplies such entries together,
//! and every product that lands below the normal range of doubles
//! (gradual underflow) costs this processor a microcode assist, tens of
//! times an ordinary operation: `cargo run --release -p hinv --example
//! phase_times -- 1024 8 2` eliminated the first 256 layers at about twice
//! the time per layer of the rest.
//!
//! Flushing all arithmetic to zero would need the processor's control
//! register, which safe Rust cannot set. Instead each block about to be
//! factored drops the entries below `EPSILON^2` times its largest entry:
//! the change to the block is at most `n EPSILON^2 max|block|` in any
//! norm, `EPSILON` times less than the rounding its own pivoted
//! factorization commits anyway (backward error a modest multiple of
//! `n EPSILON max|block|`) and that every certificate built on the
//! factorization already allows for. So the answers, the inertia and the
//! determinant keep the accuracy they state, and a block of tiny entries
//! with nothing larger beside it is left as it is (its own scale is tiny):
//! the rule is relative, never an absolute cut-off.

use faer::MatMut;

/// Relative size below which an entry is dropped: `EPSILON^2` (about
/// `4.9e-32`) of the block's largest entry.
pub(super) const RELATIVE: f64 = f64::EPSILON * f64::EPSILON;

/// Sets to zero every entry of `m` whose magnitude is below [`RELATIVE`]
/// times the largest of `m`. Symmetric matrices stay exactly symmetric
/// (an entry and its mirror are dropped together); NaN and infinite
/// entries are left for the factorization's checks to refuse. Returns the
/// number of entries dropped.
pub(super) fn drop_negligible(mut m: MatMut<'_, f64>) -> usize {
    let largest = blockmat::reduce::max_abs(m.as_ref());
    let below = RELATIVE * largest;
    // An empty or zero block, or (`below` not finite) a NaN or an
    // infinite entry: nothing to judge against.
    if largest == 0.0 || !below.is_finite() {
        return 0;
    }
    let mut dropped = 0;
    for j in 0..m.ncols() {
        for v in m.as_mut().col_mut(j).iter_mut() {
            if v.abs() < below && *v != 0.0 {
                *v = 0.0;
                dropped += 1;
            }
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::{drop_negligible, RELATIVE};
    use faer::Mat;

    #[test]
    fn drops_only_entries_negligible_against_the_block() {
        // A unit block of a vanishing layer: eps on the diagonal, products
        // of tiny activations elsewhere.
        let mut m = Mat::from_fn(4, 4, |i, j| if i == j { 1e-3 } else { 1e-300 * (1 + i + j) as f64 });
        assert_eq!(drop_negligible(m.as_mut()), 12);
        assert!(m == Mat::from_fn(4, 4, |i, j| if i == j { 1e-3 } else { 0.0 }));

        // Relative, not absolute: a block of tiny entries keeps them, and
        // an entry just above the bar stays while one just below goes.
        let tiny = Mat::from_fn(3, 3, |i, j| 1e-300 * (1.0 + (i * 3 + j) as f64));
        let mut t = tiny.clone();
        assert_eq!(drop_negligible(t.as_mut()), 0);
        assert!(t == tiny);
        let mut edge = Mat::from_fn(1, 3, |_, j| [1.0, RELATIVE, 0.99 * RELATIVE][j]);
        assert_eq!(drop_negligible(edge.as_mut()), 1);
        assert_eq!((edge[(0, 1)], edge[(0, 2)]), (RELATIVE, 0.0));

        // Nothing to judge against: zero, NaN and infinite blocks stay.
        for bad in [0.0, f64::NAN, f64::INFINITY] {
            let mut b = Mat::from_fn(2, 2, |i, j| if i == j { bad } else { 1e-300 });
            assert_eq!(drop_negligible(b.as_mut()), 0);
            assert_eq!(b[(0, 1)], 1e-300);
        }
        let mut empty = Mat::<f64>::zeros(0, 3);
        assert_eq!(drop_negligible(empty.as_mut()), 0);
    }
}
