//! Turning the `blockmat` input into dense blocks: shape, symmetry and
//! finiteness checks, and the restricted coupling blocks `C_k`.

use std::ops::Range;

use blockmat::{Block, Tridiag};
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
/// `Mat` (column-major, unit row stride), or a view into one (a workspace
/// buffer's corner, a column range).
pub(crate) fn column(m: faer::MatRef<'_, f64>, j: usize) -> &[f64] {
    m.col(j).try_as_col_major().expect("owned faer matrices are column-major").as_slice()
}

/// Diagonal block `k` as a dense symmetric matrix (newly allocated: the
/// factorizations factor it in place and keep it).
pub(crate) fn diagonal_block(t: &Tridiag, k: usize, symmetry_tol: f64) -> Result<Mat<f64>, TridiagError> {
    let n = t.diag()[k].nrows();
    let mut d = Mat::zeros(n, n);
    diagonal_block_into(t, k, symmetry_tol, d.as_mut())?;
    Ok(d)
}

/// Diagonal block `k` written into `out` (`n_k x n_k`), checked.
pub(crate) fn diagonal_block_into(
    t: &Tridiag,
    k: usize,
    symmetry_tol: f64,
    mut out: MatMut<'_, f64>,
) -> Result<(), TridiagError> {
    let b = &t.diag()[k];
    let (r, c) = b.shape();
    if r != c {
        return Err(TridiagError::ShapeMismatch {
            op: "factor (diagonal block must be square)",
            expected: (r, r),
            found: (r, c),
        });
    }
    write(b, out.rb_mut());
    if !out.is_all_finite() {
        return Err(TridiagError::NonFinite { what: "diagonal", block: k });
    }
    check_symmetric(out.rb(), k, symmetry_tol)
}

/// `out <- b` (dense); `out` has `b`'s shape by construction.
fn write(b: &Block, out: MatMut<'_, f64>) {
    let shaped = b.write_dense_to(out);
    debug_assert!(shaped.is_ok(), "buffers are cut to the block's shape");
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

/// Diagonal block `k` written into `out`, unchecked: for a second pass
/// over blocks that [`diagonal_block_into`] has already validated.
pub(crate) fn diagonal_block_unchecked(t: &Tridiag, k: usize, out: MatMut<'_, f64>) {
    write(&t.diag()[k], out);
}

/// A sub-diagonal block (or a view of it) with its structural support.
pub(crate) struct Supported<M> {
    /// Rows of block `k + 1` it touches.
    pub(crate) rows: Range<usize>,
    /// Columns of block `k` it touches.
    pub(crate) cols: Range<usize>,
    pub(crate) m: M,
}

/// Sub-diagonal block `k` densified into `ws`, with its structural
/// support `(rows, cols)`; `None` when it is structurally zero. Checked
/// (finite, equal to the transpose of a stored super-diagonal block) when
/// `symmetry_tol` is given, as on the first pass over the input.
pub(crate) fn sub_block<'w>(
    t: &Tridiag,
    k: usize,
    symmetry_tol: Option<f64>,
    ws: &'w mut Workspace,
) -> Result<Option<Supported<MatMut<'w, f64>>>, TridiagError> {
    let s = &t.sub()[k];
    let mut dense = ws.dense_buffer(s.nrows(), s.ncols());
    write(s, dense.rb_mut());
    if let Some(tol) = symmetry_tol {
        if !dense.is_all_finite() {
            return Err(TridiagError::NonFinite { what: "sub-diagonal", block: k });
        }
        if let Some(sup) = t.sup() {
            check_transpose(&sup[k], dense.rb(), k, tol)?;
        }
    }
    let (Some(rows), Some(cols)) = (s.row_support(), s.col_support()) else { return Ok(None) };
    Ok(Some(Supported { rows, cols, m: dense }))
}

/// The coupling of sub-diagonal block `k`, `None` when it is structurally
/// zero; transposed, as seen from block `k + 1` (`sub[k]^T` coupling it to
/// block `k`). The block is densified into `ws`; the restriction `c` is
/// the only allocation (the factorization keeps it).
pub(crate) fn coupling(
    t: &Tridiag,
    k: usize,
    symmetry_tol: f64,
    ws: &mut Workspace,
    transpose: bool,
) -> Result<Option<Coupling>, TridiagError> {
    let Some(Supported { rows, cols, m: dense }) = sub_block(t, k, Some(symmetry_tol), ws)? else { return Ok(None) };
    let c = dense.rb().submatrix(rows.start, cols.start, rows.len(), cols.len());
    Ok(Some(if transpose {
        Coupling { cols: rows, rows: cols, c: c.transpose().to_owned() }
    } else {
        Coupling { cols, rows, c: c.to_owned() }
    }))
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
