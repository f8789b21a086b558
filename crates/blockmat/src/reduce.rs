//! Reductions over dense matrices that vectorise: largest entry, sums of
//! squares, the Frobenius norm, largest column norm.
//!
//! Each runs over column slices with four independent accumulators, so
//! the loop is not one serial chain of `f64::max` (whose NaN handling does
//! not vectorise) or of additions. faer's `norm_max` and `norm_l2` are
//! NaN-aware and cost several times more on the small blocks a block
//! elimination scans once per block, and on long vectors ([`norm_l2`]).
//!
//! The largest-entry reductions compare with `>`: a NaN entry is skipped,
//! not propagated. Callers refuse non-finite input before it reaches them
//! ([`crate::Block::first_non_finite`]); [`norm_l2`] alone propagates a
//! NaN, for callers that test the norm itself.
//!
//! ```
//! use blockmat::reduce;
//! let m = faer::mat![[1.0, -4.0], [2.0, 2.0]];
//! assert_eq!(reduce::max_abs(m.as_ref()), 4.0);
//! assert_eq!(reduce::sum_sq(m.as_ref()), 25.0);
//! assert_eq!(reduce::max_col_norm(m.as_ref()), 20f64.sqrt());
//! ```

use faer::MatRef;

/// Largest `|m[i, j]|` (0 for an empty matrix).
pub fn max_abs(m: MatRef<'_, f64>) -> f64 {
    columns(m, max_abs_slice).fold(0.0, |a, b| if b > a { b } else { a })
}

/// `sum m[i, j]^2`, plainly: it overflows beyond entries of about
/// `1e154` (use [`norm_l2`] where that matters).
pub fn sum_sq(m: MatRef<'_, f64>) -> f64 {
    // (From +0: an empty `f64` sum is -0, whose square root is -0.)
    columns(m, sum_sq_slice).fold(0.0, |a, b| a + b)
}

/// The Frobenius norm (a column's Euclidean norm), from [`sum_sq`] where
/// that is exact to rounding, else from the entries divided by the
/// largest one.
///
/// faer's `norm_l2` scales as it sums, which costs: 20 times this on a
/// column of 61 952 (179 against 9 µs; 10x at 65 entries;
/// `cargo run --release -p blockmat --example norms`), the length of a
/// solve's vectors at 16 layers of width 64, of which a refined solve
/// takes a dozen norms.
///
/// ```
/// use blockmat::reduce::norm_l2;
/// let m = faer::mat![[3.0], [4.0]];
/// assert_eq!(norm_l2(m.as_ref()), 5.0);
/// // Squares beyond the double range take the scaled route.
/// let big = faer::mat![[3e200], [4e200]];
/// assert!((norm_l2(big.as_ref()) - 5e200).abs() <= 1e-15 * 5e200);
/// let tiny = faer::mat![[3e-200], [4e-200]];
/// assert!((norm_l2(tiny.as_ref()) - 5e-200).abs() <= 1e-15 * 5e-200);
/// ```
pub fn norm_l2(m: MatRef<'_, f64>) -> f64 {
    norm_from_sum_sq(m, sum_sq(m), None)
}

/// [`norm_l2`] of `m` from its plain sum of squares `sum` ([`sum_sq`]) and,
/// when known, its largest `|m[i, j]|` `max` ([`max_abs`]), for a caller
/// that computed them anyway.
pub fn norm_from_sum_sq(m: MatRef<'_, f64>, sum: f64, max: Option<f64>) -> f64 {
    debug_assert!(max.is_none_or(|v| v >= 0.0 || v.is_nan()), "max is a largest magnitude, not {max:?}");
    // Below MIN_POSITIVE / EPSILON the squares that underflowed (each below
    // MIN_POSITIVE) may weigh more than a rounding error of the sum; a NaN
    // or an overflow is not finite. Both go to the scaled sum.
    if sum.is_finite()
        && (sum >= f64::MIN_POSITIVE / f64::EPSILON || sum == 0.0 && max.unwrap_or_else(|| max_abs(m)) == 0.0)
    {
        return sum.sqrt();
    }
    // (faer's `norm_l2` would do, but on a row-major view it overflows:
    // 1e160 in a transposed 1x1 matrix has norm `inf` in faer 0.24.)
    let max = max.unwrap_or_else(|| max_abs(m));
    if max == 0.0 || max.is_infinite() || sum.is_nan() {
        // Zeros, an infinite entry, or a NaN (which `max_abs` skips).
        return if sum.is_nan() { f64::NAN } else { max };
    }
    let scaled: f64 = columns(m, |c| c.iter().map(|x| (x / max) * (x / max)).sum()).sum();
    max * scaled.sqrt()
}

/// Largest Euclidean norm of a column, from plain sums of squares (see
/// [`sum_sq`]).
pub fn max_col_norm(m: MatRef<'_, f64>) -> f64 {
    columns(m, sum_sq_slice).fold(0.0, |a, b| if b > a { b } else { a }).sqrt()
}

/// [`max_abs`] and [`sum_sq`] in one pass: a check that needs both (a
/// block's scale and its Frobenius norm, and, from the sum's finiteness,
/// that no entry is NaN or infinite) reads the matrix once.
pub fn max_abs_and_sum_sq(m: MatRef<'_, f64>) -> (f64, f64) {
    let mut copy = Vec::new();
    let (mut big, mut sq) = (0.0f64, 0.0f64);
    for j in 0..m.ncols() {
        let (b, s) = match m.col(j).try_as_col_major() {
            Some(c) => max_abs_and_sum_sq_slice(c.as_slice()),
            None => {
                copy.clear();
                copy.extend(m.col(j).iter().copied());
                max_abs_and_sum_sq_slice(&copy)
            }
        };
        big = if b > big { b } else { big };
        sq += s;
    }
    (big, sq)
}

/// [`max_abs_slice`] and [`sum_sq_slice`] in one pass.
pub fn max_abs_and_sum_sq_slice(v: &[f64]) -> (f64, f64) {
    let (mut m, mut s) = ([0.0f64; 4], [0.0f64; 4]);
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        for ((mi, si), ci) in m.iter_mut().zip(&mut s).zip(c) {
            let a = ci.abs();
            *mi = if a > *mi { a } else { *mi };
            *si += ci * ci;
        }
    }
    let rest = chunks.remainder();
    let tail = rest.iter().fold(0.0f64, |a, b| if b.abs() > a { b.abs() } else { a });
    let tail_sq: f64 = rest.iter().map(|x| x * x).sum();
    (m.iter().fold(tail, |a, &b| if b > a { b } else { a }), (s[0] + s[1]) + (s[2] + s[3]) + tail_sq)
}

/// Largest `|v_i|` of a slice.
pub fn max_abs_slice(v: &[f64]) -> f64 {
    let mut m = [0.0f64; 4];
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        for (mi, ci) in m.iter_mut().zip(c) {
            let a = ci.abs();
            *mi = if a > *mi { a } else { *mi };
        }
    }
    let tail = chunks.remainder().iter().fold(0.0f64, |a, b| if b.abs() > a { b.abs() } else { a });
    m.iter().fold(tail, |a, &b| if b > a { b } else { a })
}

/// `sum v_i^2` of a slice.
pub fn sum_sq_slice(v: &[f64]) -> f64 {
    let mut s = [0.0f64; 4];
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        for (si, ci) in s.iter_mut().zip(c) {
            *si += ci * ci;
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|x| x * x).sum();
    (s[0] + s[1]) + (s[2] + s[3]) + tail
}

/// `f` of every column: on its slice when the column is contiguous (an
/// owned faer matrix or a view into one), else on a copy.
fn columns<'a>(m: MatRef<'a, f64>, mut f: impl FnMut(&[f64]) -> f64 + 'a) -> impl Iterator<Item = f64> + 'a {
    let mut copy = Vec::new();
    (0..m.ncols()).map(move |j| match m.col(j).try_as_col_major() {
        Some(c) => f(c.as_slice()),
        None => {
            copy.clear();
            copy.extend(m.col(j).iter().copied());
            f(&copy)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    /// At every scale of the double range, subnormal to near overflow,
    /// against a plain sum of the entries scaled by a power of two (exact)
    /// to near 1, on contiguous and strided views; zero stays zero, a NaN
    /// stays NaN and an infinity infinite.
    #[test]
    fn norm_is_right_at_every_scale() {
        for scale in [1e-310, 1e-300, 1e-160, 1e-140, 1e-10, 1.0, 1e10, 1e140, 1e160, 1e300] {
            for (r, c) in [(1, 1), (5, 1), (33, 4), (1000, 1)] {
                let m = Mat::<f64>::from_fn(r, c, |i, j| scale * (((i * 7 + j * 13) % 11) as f64 - 5.5));
                // 2^k in two halves: 2^1030 alone overflows.
                let k = -(max_abs(m.as_ref()).log2().round() as i32);
                let (s1, s2) = (2f64.powi(k / 2), 2f64.powi(k - k / 2));
                let oracle = m.col_iter().flat_map(|c| c.iter().map(|x| (x * s1 * s2).powi(2)).collect::<Vec<_>>());
                let oracle = oracle.sum::<f64>().sqrt() / s1 / s2;
                for v in [m.as_ref(), m.as_ref().transpose()] {
                    // Two summations in different orders: each within
                    // recursive summation's `n u` of the exact sum.
                    let tol = (r * c) as f64 * f64::EPSILON * oracle;
                    assert!(
                        (norm_l2(v) - oracle).abs() <= tol,
                        "{scale:e} {r}x{c}: {:e} against {oracle:e}",
                        norm_l2(v)
                    );
                }
            }
        }
        // One entry whose square underflows beside normal ones.
        let m = faer::mat![[1e-170], [1.0]];
        assert_eq!(norm_l2(m.as_ref()), 1.0);
        // +0, not -0 (compared bit for bit: `-0.0 == 0.0`).
        for (r, c) in [(4, 2), (0, 0), (3, 0), (0, 3)] {
            assert_eq!(norm_l2(Mat::<f64>::zeros(r, c).as_ref()).to_bits(), 0f64.to_bits(), "{r}x{c}");
        }
        for bad in [[1.0, f64::NAN], [0.0, f64::NAN], [f64::INFINITY, f64::NAN], [1e300, f64::NAN]] {
            assert!(norm_l2(faer::mat![[bad[0]], [bad[1]]].as_ref()).is_nan(), "{bad:?}");
        }
        assert_eq!(norm_l2(faer::mat![[1.0], [f64::NEG_INFINITY]].as_ref()), f64::INFINITY);
        assert_eq!(norm_l2(faer::mat![[1e-320], [0.0]].as_ref()), 1e-320);
    }

    /// Against plain sequential folds, on contiguous and strided views and
    /// every tail length.
    #[test]
    fn reductions_match_sequential_folds() {
        for (r, c) in [(0, 0), (0, 3), (1, 1), (3, 2), (7, 5), (33, 4)] {
            let m = Mat::<f64>::from_fn(r, c, |i, j| ((i * 7 + j * 13) % 11) as f64 - 5.5);
            for v in [m.as_ref(), m.as_ref().transpose()] {
                let big = v.col_iter().flat_map(|c| c.iter().map(|x| x.abs()).collect::<Vec<_>>()).fold(0.0, f64::max);
                let sq: f64 = v.col_iter().flat_map(|c| c.iter().map(|x| x * x).collect::<Vec<_>>()).sum();
                let col = v.col_iter().map(|c| c.iter().map(|x| x * x).sum::<f64>().sqrt()).fold(0.0, f64::max);
                assert_eq!(max_abs(v), big);
                let (fused_big, fused_sq) = max_abs_and_sum_sq(v);
                assert_eq!(fused_big, big);
                assert_eq!(fused_sq, sum_sq(v), "the same sums in the same order");
                // Sums in another order: within a few roundings of the sum.
                assert!((sum_sq(v) - sq).abs() <= 8.0 * f64::EPSILON * sq, "{r}x{c}");
                assert!((max_col_norm(v) - col).abs() <= 8.0 * f64::EPSILON * col, "{r}x{c}");
            }
        }
    }
}
