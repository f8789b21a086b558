//! Reductions over dense matrices that vectorise: largest entry, sums of
//! squares, largest column norm.
//!
//! Each runs over column slices with four independent accumulators, so
//! the loop is not one serial chain of `f64::max` (whose NaN handling does
//! not vectorise) or of additions. faer's `norm_max` and `norm_l2` are
//! overflow-safe and NaN-aware, and cost several times more on the small
//! blocks a block elimination scans once per block.
//!
//! Comparisons are `>`: a NaN entry is skipped, not propagated. Callers
//! refuse non-finite input before it reaches them
//! ([`crate::Block::first_non_finite`]).
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
/// `1e154` (use faer's `norm_l2` where that matters).
pub fn sum_sq(m: MatRef<'_, f64>) -> f64 {
    columns(m, sum_sq_slice).sum()
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
fn columns<'a>(m: MatRef<'a, f64>, f: fn(&[f64]) -> f64) -> impl Iterator<Item = f64> + 'a {
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
