//! Turning the `blockmat` input into dense blocks: shape, symmetry and
//! finiteness checks, and the restricted coupling blocks `C_k`.

use std::ops::Range;

use blockmat::{Block, PlacedDense, Tridiag};
use faer::reborrow::*;
use faer::{Mat, MatMut, MatRef};

use crate::error::TridiagError;
use crate::workspace::Workspace;

/// The part of sub-diagonal block `k` (at `(k + 1, k)`) that is not
/// structurally zero: `c = sub[k][rows, cols]`.
#[derive(Debug, Clone)]
pub(crate) struct Coupling {
    /// Columns of block `k` it touches.
    pub(crate) cols: Range<usize>,
    /// Rows of block `k + 1` it touches.
    pub(crate) rows: Range<usize>,
    /// The dense `|rows| x |cols|` restriction, stored transposed when
    /// `transposed` (a bottom-up chain's coupling is the input's
    /// transpose: kept as the input gave it, not copied).
    c: Mat<f64>,
    transposed: bool,
    /// Its Frobenius norm.
    pub(crate) norm: f64,
}

impl Coupling {
    /// The `|rows| x |cols|` restriction.
    pub(crate) fn view(&self) -> MatRef<'_, f64> {
        if self.transposed {
            self.c.transpose()
        } else {
            self.c.as_ref()
        }
    }
}

pub(crate) use blockmat::reduce::{max_abs, max_abs_slice};

/// What the checks of a diagonal block measured on their one pass over
/// it, for the factorization to reuse.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scales {
    /// Largest `|d[i, j]|`.
    pub(crate) max_abs: f64,
    /// Frobenius norm.
    pub(crate) norm: f64,
}

/// Frobenius norm of `m` ([`blockmat::reduce::norm_l2`]: a plain sum of
/// squares that vectorises where it is exact to rounding, several times
/// cheaper than faer's `norm_l2` on small blocks).
pub(crate) fn norm_fro(m: faer::MatRef<'_, f64>) -> f64 {
    blockmat::reduce::norm_l2(m)
}

/// A Frobenius norm accumulated block by block as `scale * sqrt(ssq)`
/// (LAPACK's `lassq`, on the blocks' norms): neither a square nor the sum
/// overflows, for a division per block where `hypot` cost ~1% of
/// factoring small blocks.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FroNorm {
    scale: f64,
    ssq: f64,
}

impl FroNorm {
    /// Adds `weight` times the square of `norm` (a block counted `weight`
    /// times).
    pub(crate) fn add(&mut self, norm: f64, weight: f64) {
        self.add_scaled(norm, weight);
    }

    /// Adds another accumulated norm.
    pub(crate) fn merge(&mut self, other: FroNorm) {
        self.add_scaled(other.scale, other.ssq);
    }

    /// `self += scale^2 ssq`.
    fn add_scaled(&mut self, scale: f64, ssq: f64) {
        if scale == 0.0 || ssq == 0.0 {
            return;
        }
        if scale > self.scale {
            self.ssq = ssq + self.ssq * (self.scale / scale).powi(2);
            self.scale = scale;
        } else {
            self.ssq += ssq * (scale / self.scale).powi(2);
        }
    }

    /// The norm.
    pub(crate) fn value(self) -> f64 {
        self.scale * self.ssq.sqrt()
    }
}

/// Column `j` as a slice. Every matrix this crate builds is an owned faer
/// `Mat` (column-major, unit row stride), or a view into one (a workspace
/// buffer's corner, a column range).
pub(crate) fn column(m: faer::MatRef<'_, f64>, j: usize) -> &[f64] {
    m.col(j).try_as_col_major().expect("owned faer matrices are column-major").as_slice()
}

/// Diagonal block `k` as a dense symmetric matrix (newly allocated: the
/// factorizations factor it in place and keep it).
pub(crate) fn diagonal_block(t: &Tridiag, k: usize, symmetry_tol: f64) -> Result<(Mat<f64>, Scales), TridiagError> {
    let n = t.diag()[k].nrows();
    let mut d = Mat::zeros(n, n);
    let scales = diagonal_block_into(t, k, symmetry_tol, d.as_mut())?;
    Ok((d, scales))
}

/// Diagonal block `k` written into `out` (`n_k x n_k`), checked.
pub(crate) fn diagonal_block_into(
    t: &Tridiag,
    k: usize,
    symmetry_tol: f64,
    out: MatMut<'_, f64>,
) -> Result<Scales, TridiagError> {
    block_into(&t.diag()[k], k, symmetry_tol, out)
}

/// Diagonal block `b` (block `k`) written into `out`, checked.
fn block_into(b: &Block, k: usize, symmetry_tol: f64, mut out: MatMut<'_, f64>) -> Result<Scales, TridiagError> {
    check_square(b.shape())?;
    write(b, out.rb_mut());
    check_diagonal(out.rb(), k, symmetry_tol)
}

/// [`TridiagError::ShapeMismatch`] unless a diagonal block's shape is square.
fn check_square((r, c): (usize, usize)) -> Result<(), TridiagError> {
    if r != c {
        return Err(TridiagError::ShapeMismatch {
            op: "factor (diagonal block must be square)",
            expected: (r, r),
            found: (r, c),
        });
    }
    Ok(())
}

/// The checks every dense diagonal block passes: finite, symmetric. One
/// pass finds the largest entry and the sum of squares; a NaN or an
/// infinity makes the sum non-finite, so only then (or when the sum
/// overflowed on finite entries) is every entry tested.
fn check_diagonal(d: MatRef<'_, f64>, k: usize, symmetry_tol: f64) -> Result<Scales, TridiagError> {
    let (max_abs, sum) = blockmat::reduce::max_abs_and_sum_sq(d);
    if !sum.is_finite() && !d.is_all_finite() {
        return Err(TridiagError::NonFinite { what: "diagonal", block: k });
    }
    check_symmetric_against(d, k, symmetry_tol * max_abs)?;
    Ok(Scales { max_abs, norm: blockmat::reduce::norm_from_sum_sq(d, sum, Some(max_abs)) })
}

/// Diagonal block `k` given by value (moved out of the input): a dense
/// block is checked like [`diagonal_block`]'s copy and returned as is, so
/// that the factorization overwrites the caller's storage instead of a copy
/// (the copy, its zeroing and page faults cost ~12% of factoring hinv's
/// reduced system). Any other block is densified.
pub(crate) fn owned_diagonal_block(b: Block, k: usize, symmetry_tol: f64) -> Result<(Mat<f64>, Scales), TridiagError> {
    match b {
        Block::Dense(d) => {
            check_square(d.shape())?;
            let scales = check_diagonal(d.as_ref(), k, symmetry_tol)?;
            Ok((d, scales))
        }
        b => {
            let n = b.nrows();
            let mut d = Mat::zeros(n, n);
            let scales = block_into(&b, k, symmetry_tol, d.as_mut())?;
            Ok((d, scales))
        }
    }
}

/// `out <- b` (dense); `out` has `b`'s shape by construction.
fn write(b: &Block, out: MatMut<'_, f64>) {
    let shaped = b.write_dense_to(out);
    debug_assert!(shaped.is_ok(), "buffers are cut to the block's shape");
}

/// Refuses diagonal block `k` when it differs from its transpose by more
/// than `symmetry_tol` times its largest entry; returns that entry.
pub(crate) fn check_symmetric(d: faer::MatRef<'_, f64>, k: usize, symmetry_tol: f64) -> Result<f64, TridiagError> {
    let big = max_abs(d);
    check_symmetric_against(d, k, symmetry_tol * big)?;
    Ok(big)
}

/// Refuses diagonal block `k` when it differs from its transpose by more
/// than `tolerance`.
fn check_symmetric_against(d: faer::MatRef<'_, f64>, k: usize, tolerance: f64) -> Result<(), TridiagError> {
    // No deviation exceeds an infinite (or NaN) tolerance: nothing to read.
    if tolerance == f64::INFINITY || tolerance.is_nan() {
        return Ok(());
    }
    let deviation = asymmetry(d);
    if deviation > tolerance {
        return Err(TridiagError::NotSymmetric { row: k, col: k, deviation, tolerance });
    }
    Ok(())
}

/// Largest `|d[i, j] - d[j, i]|` of a square column-major matrix (this
/// check runs on every block of every factorization). Tiles of `TILE`
/// columns against `TILE` rows: each column slice is taken once per tile,
/// not per entry, and the tile's columns stay in cache while its rows are
/// read across them.
fn asymmetry(d: faer::MatRef<'_, f64>) -> f64 {
    const TILE: usize = 16;
    let n = d.ncols();
    let mut dev = 0.0f64;
    for j0 in (0..n).step_by(TILE) {
        let width = TILE.min(n - j0);
        let cols: [&[f64]; TILE] = std::array::from_fn(|t| if t < width { column(d, j0 + t) } else { &[] });
        for i in j0 + 1..n {
            // d[j, i] for the tile's j < i, against d[i, j] in the tile's columns.
            let row = &column(d, i)[j0..j0 + width.min(i - j0)];
            for (cj, &v) in cols.iter().zip(row) {
                let a = (cj[i] - v).abs();
                dev = if a > dev { a } else { dev };
            }
        }
    }
    dev
}

/// Diagonal block `k` written into `out`, unchecked: for a second pass
/// over blocks that [`diagonal_block_into`] has already validated.
pub(crate) fn diagonal_block_unchecked(t: &Tridiag, k: usize, out: MatMut<'_, f64>) {
    write(&t.diag()[k], out);
}

/// A sub-diagonal block's structural support and the block restricted
/// to it.
pub(crate) struct Supported<M> {
    /// Rows of block `k + 1` it touches.
    pub(crate) rows: Range<usize>,
    /// Columns of block `k` it touches.
    pub(crate) cols: Range<usize>,
    /// The `|rows| x |cols|` restriction.
    pub(crate) m: M,
}

/// Sub-diagonal block `k` restricted to its structural support
/// `(rows, cols)`, densified into `ws`; `None` when it is structurally
/// zero. Only the support is written (a reduced system's coupling fills a
/// quarter of its block). Checked (finite, equal to the transpose of a
/// stored super-diagonal block) when `symmetry_tol` is given, as on the
/// first pass over the input.
pub(crate) fn sub_block<'w>(
    t: &Tridiag,
    k: usize,
    symmetry_tol: Option<f64>,
    ws: &'w mut Workspace,
) -> Result<Option<Supported<MatMut<'w, f64>>>, TridiagError> {
    let s = &t.sub()[k];
    if let (Some(tol), Some(sup)) = (symmetry_tol, t.sup()) {
        // A stored super-diagonal block must mirror all of it, zeros
        // included: the rare input with both stored is densified whole.
        let mut dense = ws.dense_buffer(s.nrows(), s.ncols());
        write(s, dense.rb_mut());
        if !dense.is_all_finite() {
            return Err(TridiagError::NonFinite { what: "sub-diagonal", block: k });
        }
        check_transpose(&sup[k], dense.rb(), k, tol)?;
        let Some((rows, cols)) = s.row_support().zip(s.col_support()) else { return Ok(None) };
        let m = dense.submatrix_mut(rows.start, cols.start, rows.len(), cols.len());
        return Ok(Some(Supported { rows, cols, m }));
    }
    support_window(s, k, symmetry_tol.is_some(), ws)
}

/// `s` restricted to its structural support, densified into `ws` (and
/// checked finite when `check`); `None` when it is structurally zero.
fn support_window<'w>(
    s: &Block,
    k: usize,
    check: bool,
    ws: &'w mut Workspace,
) -> Result<Option<Supported<MatMut<'w, f64>>>, TridiagError> {
    let Some((rows, cols)) = s.row_support().zip(s.col_support()) else { return Ok(None) };
    let mut m = ws.dense_buffer(rows.len(), cols.len());
    let shaped = s.write_window_to(rows.start, cols.start, m.rb_mut());
    debug_assert!(shaped.is_ok(), "the support lies inside the block");
    // Outside its support the block is structurally zero, hence finite.
    if check && !m.is_all_finite() {
        return Err(TridiagError::NonFinite { what: "sub-diagonal", block: k });
    }
    Ok(Some(Supported { rows, cols, m }))
}

/// The coupling of sub-diagonal block `k`, `None` when it is structurally
/// zero; transposed, as seen from block `k + 1` (`sub[k]^T` coupling it to
/// block `k`). The block is densified into `ws`; the restriction `c` is
/// the only allocation (a link keeps it in its columns form).
pub(crate) fn coupling(
    t: &Tridiag,
    k: usize,
    symmetry_tol: f64,
    ws: &mut Workspace,
    transpose: bool,
) -> Result<Option<Coupling>, TridiagError> {
    let Some(Supported { rows, cols, m: c }) = sub_block(t, k, Some(symmetry_tol), ws)? else { return Ok(None) };
    let norm = norm_fro(c.rb());
    Ok(Some(placed(rows, cols, c.to_owned(), transpose, norm)))
}

/// The coupling of `c` at `(rows, cols)` of its sub-diagonal block, seen
/// from the other side when `transpose`.
fn placed(rows: Range<usize>, cols: Range<usize>, c: Mat<f64>, transpose: bool, norm: f64) -> Coupling {
    if transpose {
        Coupling { cols: rows, rows: cols, c, transposed: true, norm }
    } else {
        Coupling { cols, rows, c, transposed: false, norm }
    }
}

/// Sub-diagonal block `k` given by value (moved out of a symmetric input),
/// checked finite: when it is one dense leaf in structural zeros (hinv's
/// reduced system), that leaf is the coupling, taken without a copy (a
/// bottom-up chain sees it transposed); any other block is densified on
/// its support as [`coupling`] does.
pub(crate) fn owned_coupling(
    b: Block,
    k: usize,
    ws: &mut Workspace,
    transpose: bool,
) -> Result<Option<Coupling>, TridiagError> {
    let (rows, cols, c, norm) = match b.into_dense_leaf() {
        Ok(PlacedDense { rows, cols, m }) => {
            if rows.is_empty() || cols.is_empty() {
                return Ok(None);
            }
            // One pass for both: a NaN or an infinity makes the sum of
            // squares non-finite, so only then is every entry tested.
            let (max_abs, sum) = blockmat::reduce::max_abs_and_sum_sq(m.as_ref());
            if !sum.is_finite() && !m.is_all_finite() {
                return Err(TridiagError::NonFinite { what: "sub-diagonal", block: k });
            }
            let norm = blockmat::reduce::norm_from_sum_sq(m.as_ref(), sum, Some(max_abs));
            (rows, cols, m, norm)
        }
        Err(b) => match support_window(&b, k, true, ws)? {
            Some(Supported { rows, cols, m }) => (rows, cols, m.to_owned(), norm_fro(m.rb())),
            None => return Ok(None),
        },
    };
    Ok(Some(placed(rows, cols, c, transpose, norm)))
}

/// A stored super-diagonal block must be the transpose of the sub-diagonal
/// one (an input with both stored is the rare case: its block is densified
/// anew).
fn check_transpose(sup: &Block, sub: MatRef<'_, f64>, k: usize, symmetry_tol: f64) -> Result<(), TridiagError> {
    let u = sup.to_dense();
    if !u.is_all_finite() {
        return Err(TridiagError::NonFinite { what: "super-diagonal", block: k });
    }
    if u.nrows() != sub.ncols() || u.ncols() != sub.nrows() {
        return Err(TridiagError::ShapeMismatch {
            op: "factor (super-diagonal block vs transposed sub-diagonal)",
            expected: (sub.ncols(), sub.nrows()),
            found: (u.nrows(), u.ncols()),
        });
    }
    let scale = max_abs(u.as_ref()).max(max_abs(sub));
    let mut dev = 0.0f64;
    for j in 0..u.ncols() {
        for i in 0..u.nrows() {
            dev = dev.max((u[(i, j)] - sub[(j, i)]).abs());
        }
    }
    let tolerance = symmetry_tol * scale;
    if dev > tolerance {
        return Err(TridiagError::NotSymmetric { row: k, col: k + 1, deviation: dev, tolerance });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{asymmetry, check_diagonal, norm_fro, FroNorm};
    use crate::error::TridiagError;
    use faer::Mat;

    /// A 7x5 matrix (columns not a multiple of 4 long, so the remainder
    /// loop runs) with entries of mixed signs and magnitudes in [0.5, 3].
    fn base() -> Mat<f64> {
        Mat::from_fn(7, 5, |i, j| {
            (1.0 + ((3 * i + 5 * j) % 6) as f64 * 0.5) * if (i + j) % 3 == 0 { -1.0 } else { 1.0 }
        })
    }

    /// The oracle: the sum of squares in plain scalar order (no entry here
    /// over- or underflows), relative tolerance a few rounding errors of a
    /// 35-term sum.
    #[test]
    fn plain_sum_matches_scalar_sum() {
        let m = base();
        let exact =
            (0..5).flat_map(|j| (0..7).map(move |i| (i, j))).map(|(i, j)| m[(i, j)].powi(2)).sum::<f64>().sqrt();
        assert!((norm_fro(m.as_ref()) - exact).abs() <= 1e-14 * exact);
        assert_eq!(norm_fro(Mat::<f64>::zeros(3, 3).as_ref()), 0.0);
        assert_eq!(norm_fro(Mat::<f64>::zeros(0, 0).as_ref()), 0.0);
    }

    /// Entries whose squares overflow or underflow: the fallback must give
    /// the scaled norm (scaling by a power of two is exact, so the only
    /// difference is rounding of the two summation orders).
    #[test]
    fn huge_and_tiny_entries_fall_back_to_the_scaled_norm() {
        let m = base();
        let reference = norm_fro(m.as_ref());
        for scale in [2f64.powi(600), 2f64.powi(-600), 2f64.powi(1000), 2f64.powi(-1000), 2f64.powi(-520)] {
            let s = Mat::from_fn(7, 5, |i, j| m[(i, j)] * scale);
            let got = norm_fro(s.as_ref());
            assert!(got.is_finite() && got > 0.0, "scale {scale:e}: {got:e}");
            assert!((got / scale - reference).abs() <= 1e-14 * reference, "scale {scale:e}: {got:e}");
        }
        // One huge entry among ordinary ones: the plain sum overflows.
        let mut h = m.clone();
        h[(3, 2)] = 1e300;
        assert!((norm_fro(h.as_ref()) / 1e300 - 1.0).abs() <= 1e-15);
    }

    /// The accumulated norm against the direct one (same squares, other
    /// order), and past the overflow of a square.
    #[test]
    fn accumulated_norm() {
        let norms = [3.0, 0.0, 4.0, 12.0, 1e-3];
        let mut acc = FroNorm::default();
        let mut half = FroNorm::default();
        for (k, &v) in norms.iter().enumerate() {
            if k < 2 {
                acc.add(v, 2.0);
            } else {
                half.add(v, 1.0);
            }
        }
        acc.merge(half);
        let exact = (2.0 * 9.0 + 16.0 + 144.0 + 1e-6f64).sqrt();
        assert!((acc.value() - exact).abs() <= 1e-15 * exact);
        let mut big = FroNorm::default();
        big.add(1e200, 1.0);
        big.add(1e200, 2.0);
        assert!((big.value() / (3f64.sqrt() * 1e200) - 1.0).abs() <= 1e-15);
        assert_eq!(FroNorm::default().value(), 0.0);
    }

    /// The tiled walk against the plain definition, on sizes around the
    /// tile's (16) with one asymmetric pair at a time.
    #[test]
    fn asymmetry_finds_every_pair() {
        for n in [1usize, 5, 16, 17, 33] {
            let sym = Mat::from_fn(n, n, |i, j| ((i * j) % 7) as f64 + (i + j) as f64);
            assert_eq!(asymmetry(sym.as_ref()), 0.0);
            for (i, j) in [(n - 1, 0), (n / 2, n / 3), (0, n - 1)] {
                if i == j {
                    continue;
                }
                let mut a = sym.clone();
                a[(i, j)] += 0.5;
                assert_eq!(asymmetry(a.as_ref()), 0.5, "n {n} ({i}, {j})");
            }
        }
    }

    /// The one-pass check: finite entries whose squares overflow are
    /// accepted with the right scales, and a NaN or an infinity anywhere
    /// is refused, whatever the other entries.
    #[test]
    fn diagonal_checks_measure_and_refuse_in_one_pass() {
        let sym = |v: f64| Mat::from_fn(6, 6, |i, j| v * (1.0 + ((i + j) % 3) as f64));
        for v in [0.0, 1e-200, 1.0, 1e200] {
            let m = sym(v);
            let s = check_diagonal(m.as_ref(), 0, 1e-12).expect("finite and symmetric");
            assert_eq!(s.max_abs, m.norm_max(), "scale {v}");
            // faer's overflow-safe norm: the same up to a few roundings.
            assert!((s.norm - m.norm_l2()).abs() <= 4.0 * f64::EPSILON * m.norm_l2(), "scale {v}");
        }
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            for scale in [1.0, 1e200] {
                let mut m = sym(scale);
                m[(2, 3)] = bad;
                m[(3, 2)] = bad;
                let err = check_diagonal(m.as_ref(), 4, 1e-12).expect_err("non-finite");
                assert_eq!(err, TridiagError::NonFinite { what: "diagonal", block: 4 });
            }
        }
    }
}
