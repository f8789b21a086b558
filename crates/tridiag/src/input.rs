//! Turning the `blockmat` input into dense blocks: shape, symmetry and
//! finiteness checks, and the restricted coupling blocks `C_k`.

use std::ops::Range;

use blockmat::{Block, Tridiag};
use faer::Mat;

use crate::error::TridiagError;

/// The part of sub-diagonal block `k` (at `(k + 1, k)`) that is not
/// structurally zero: `c = sub[k][rows, cols]`.
#[derive(Debug, Clone)]
pub(crate) struct Coupling {
    /// Columns of block `k` it touches.
    pub(crate) cols: Range<usize>,
    /// Rows of block `k + 1` it touches.
    pub(crate) rows: Range<usize>,
    /// The dense `|rows| x |cols|` restriction.
    pub(crate) c: Mat<f64>,
}

/// Largest absolute entry (0 for an empty matrix).
pub(crate) fn max_abs(m: faer::MatRef<'_, f64>) -> f64 {
    (0..m.ncols()).map(|j| max_abs_slice(column(m, j))).fold(0.0, f64::max)
}

/// Largest `|v|` of a slice, with four independent maxima so that the
/// loop vectorises (a single running `f64::max` is a serial chain).
pub(crate) fn max_abs_slice(v: &[f64]) -> f64 {
    let mut m = [0.0f64; 4];
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        for (mi, ci) in m.iter_mut().zip(c) {
            let a = ci.abs();
            *mi = if a > *mi { a } else { *mi };
        }
    }
    let tail = chunks.remainder().iter().fold(0.0f64, |a, b| a.max(b.abs()));
    m.iter().fold(tail, |a, &b| a.max(b))
}

/// Column `j` as a slice. Every matrix this crate builds is an owned faer
/// `Mat` (column-major, unit row stride), or a column range of one.
pub(crate) fn column(m: faer::MatRef<'_, f64>, j: usize) -> &[f64] {
    m.col(j).try_as_col_major().expect("owned faer matrices are column-major").as_slice()
}

/// Diagonal block `k` as a dense symmetric matrix.
pub(crate) fn diagonal_block(t: &Tridiag, k: usize, symmetry_tol: f64) -> Result<Mat<f64>, TridiagError> {
    let b = &t.diag()[k];
    let (r, c) = b.shape();
    if r != c {
        return Err(TridiagError::ShapeMismatch {
            op: "factor (diagonal block must be square)",
            expected: (r, r),
            found: (r, c),
        });
    }
    let d = b.to_dense();
    if !d.is_all_finite() {
        return Err(TridiagError::NonFinite { what: "diagonal", block: k });
    }
    check_symmetric(d.as_ref(), k, symmetry_tol)?;
    Ok(d)
}

/// Refuses diagonal block `k` when it differs from its transpose by more
/// than `symmetry_tol` times its largest entry.
pub(crate) fn check_symmetric(d: faer::MatRef<'_, f64>, k: usize, symmetry_tol: f64) -> Result<(), TridiagError> {
    let tolerance = symmetry_tol * max_abs(d);
    let deviation = asymmetry(d);
    if deviation > tolerance {
        return Err(TridiagError::NotSymmetric { row: k, col: k, deviation, tolerance });
    }
    Ok(())
}

/// Largest `|d[i, j] - d[j, i]|` of a square column-major matrix, walking
/// columns as slices (this check runs on every block of every
/// factorization).
fn asymmetry(d: faer::MatRef<'_, f64>) -> f64 {
    let mut dev = 0.0f64;
    for j in 0..d.ncols() {
        let cj = column(d, j);
        for (i, &v) in cj.iter().enumerate().skip(j + 1) {
            let a = (v - column(d, i)[j]).abs();
            dev = if a > dev { a } else { dev };
        }
    }
    dev
}

/// Diagonal block `k` as a dense matrix, unchecked: for a second pass over
/// blocks that [`diagonal_block`] has already validated.
pub(crate) fn diagonal_block_unchecked(t: &Tridiag, k: usize) -> Mat<f64> {
    t.diag()[k].to_dense()
}

/// The coupling of sub-diagonal block `k`, unchecked: for a second pass
/// over blocks that [`coupling`] has already validated.
pub(crate) fn coupling_unchecked(t: &Tridiag, k: usize) -> Option<Coupling> {
    let s = &t.sub()[k];
    restrict(s, &s.to_dense())
}

/// The coupling of sub-diagonal block `s` given its dense form: the
/// restriction to its structural support, `None` when it has none.
fn restrict(s: &Block, dense: &Mat<f64>) -> Option<Coupling> {
    let (cols, rows) = (s.col_support()?, s.row_support()?);
    let c = dense.as_ref().submatrix(rows.start, cols.start, rows.len(), cols.len()).to_owned();
    Some(Coupling { cols, rows, c })
}

/// The coupling of sub-diagonal block `k`, `None` when it is structurally zero.
pub(crate) fn coupling(t: &Tridiag, k: usize, symmetry_tol: f64) -> Result<Option<Coupling>, TridiagError> {
    let s = &t.sub()[k];
    let dense = s.to_dense();
    if !dense.is_all_finite() {
        return Err(TridiagError::NonFinite { what: "sub-diagonal", block: k });
    }
    if let Some(sup) = t.sup() {
        check_transpose(&sup[k], &dense, k, symmetry_tol)?;
    }
    Ok(restrict(s, &dense))
}

/// A stored super-diagonal block must be the transpose of the sub-diagonal one.
fn check_transpose(sup: &Block, sub: &Mat<f64>, k: usize, symmetry_tol: f64) -> Result<(), TridiagError> {
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
    let scale = max_abs(u.as_ref()).max(max_abs(sub.as_ref()));
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
