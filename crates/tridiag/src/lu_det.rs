//! `log|det|` of a symmetric block-tridiagonal matrix by Gaussian
//! elimination with partial pivoting across block boundaries, after a
//! symmetric equilibration.
//!
//! Block LDLᵀ pivots only inside each Schur complement. When the leading
//! (or trailing) principal submatrices are nearly singular while the whole
//! matrix is not, its Schur complements grow and the log-determinant, a sum
//! of the logs of every pivot, loses up to `u * growth` in absolute terms;
//! refinement repairs solves but cannot repair a determinant. Partial
//! pivoting on the rows of two consecutive block rows is Gaussian
//! elimination with partial pivoting of the whole matrix (rows outside the
//! band are zero in the pivot column), which is backward stable in
//! practice. Equilibrating first (Ruiz's scaling, `S A S` with every row
//! maximum near one) keeps partial pivoting from being fooled by rows of
//! wildly different scales, as the lifted Hessian system has when its
//! activations grow geometrically with depth (docs/numerics.md).
//!
//! The sweep keeps a window of two block rows: the `n_k` rows left over
//! from block row `k` (not yet used as pivots) and block row `k + 1`.
//! Work is `~ 8 n^3` flops per block of size `n` (a tall panel LU, a
//! triangular solve and one product), memory two windows; nothing is kept,
//! so this is a determinant, not a solver.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::factor::PartialPivLuParams;
use faer::linalg::lu::partial_pivoting::factor::{lu_in_place, lu_in_place_scratch};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::solve_unit_lower_triangular_in_place;
use faer::reborrow::*;
use faer::{Accum, Auto, Mat, Par};

use crate::error::TridiagError;
use crate::input::{coupling, diagonal_block, Coupling};
use crate::params::ParPolicy;

/// A determinant as `sign * exp(log_abs)`, which neither overflows nor
/// underflows for the sizes block-tridiagonal matrices reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignedLogDet {
    /// `log|det|`, `-inf` for an exactly singular matrix.
    pub log_abs: f64,
    /// `+1`, `-1`, or `0` for an exactly singular matrix.
    pub sign: f64,
}

/// Most sweeps of the equilibration. Ruiz's iteration halves the log of
/// every row maximum's distance from one per sweep; entries within a factor
/// of two of one are all partial pivoting needs.
const RUIZ_SWEEPS: usize = 20;

/// `log|det t|` and its sign by block-tridiagonal Gaussian elimination with
/// partial pivoting (see the module documentation for why it is more
/// accurate than [`crate::BlockLdlt::log_abs_det`] on ill-conditioned
/// input). `symmetry_tol` is the relative tolerance of the symmetry check,
/// as in [`crate::FactorParams`].
///
/// ```
/// use blockmat::{Block, Tridiag};
/// use faer::mat;
///
/// // [[0, 1], [1, 0]] in 1x1 blocks: no block pivot exists, but the
/// // matrix is fine (det = -1).
/// let t = Tridiag::symmetric(vec![Block::dense(mat![[0.0]]), Block::dense(mat![[0.0]])], vec![Block::dense(mat![[1.0]])])?;
/// let d = tridiag::log_det_pivoted(&t, tridiag::ParPolicy::Seq, 1e-14)?;
/// assert_eq!((d.log_abs, d.sign), (0.0, -1.0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`TridiagError::NonFinite`], [`TridiagError::NotSymmetric`] and
/// [`TridiagError::ShapeMismatch`], as [`crate::BlockLdlt::factor`]. An
/// exactly singular matrix is not an error: it gives `log_abs = -inf`,
/// `sign = 0`.
pub fn log_det_pivoted(t: &blockmat::Tridiag, par: ParPolicy, symmetry_tol: f64) -> Result<SignedLogDet, TridiagError> {
    let nb = t.len();
    let mut diag = Vec::with_capacity(nb);
    for k in 0..nb {
        diag.push(diagonal_block(t, k, symmetry_tol)?);
    }
    let mut subs = Vec::with_capacity(nb.saturating_sub(1));
    for k in 0..nb.saturating_sub(1) {
        subs.push(coupling(t, k, symmetry_tol)?);
    }
    let log_scale = equilibrate(&mut diag, &mut subs);
    let mut det = eliminate(&diag, &subs, par);
    if det.sign != 0.0 {
        // det(S A S) = det(A) prod s_i^2.
        det.log_abs -= 2.0 * log_scale;
    }
    Ok(det)
}

/// Symmetric Ruiz equilibration in place: returns `sum_i log s_i`.
fn equilibrate(diag: &mut [Mat<f64>], subs: &mut [Option<Coupling>]) -> f64 {
    let sizes: Vec<usize> = diag.iter().map(Mat::nrows).collect();
    let offsets = blockmat::offsets(&sizes);
    let total = offsets[sizes.len()];
    let mut log_scale = 0.0;
    let mut row_max = vec![0.0f64; total];
    let mut factor = vec![1.0f64; total];
    for _ in 0..RUIZ_SWEEPS {
        row_max.iter_mut().for_each(|r| *r = 0.0);
        for (k, d) in diag.iter().enumerate() {
            // Symmetric: the maximum of column j is that of row j.
            let rows = &mut row_max[offsets[k]..offsets[k + 1]];
            for (j, r) in rows.iter_mut().enumerate() {
                *r = r.max(max_abs_slice(column(d.as_ref(), j)));
            }
        }
        for (k, c) in subs.iter().enumerate() {
            let Some(c) = c else { continue };
            let (rows_at, cols_at) = (offsets[k + 1] + c.rows.start, offsets[k] + c.cols.start);
            for j in 0..c.c.ncols() {
                let col = column(c.c.as_ref(), j);
                let mut m = row_max[cols_at + j];
                for (r, v) in row_max[rows_at..rows_at + col.len()].iter_mut().zip(col) {
                    *r = r.max(v.abs());
                    m = m.max(v.abs());
                }
                row_max[cols_at + j] = m;
            }
        }
        let mut done = true;
        for (f, &r) in factor.iter_mut().zip(&row_max) {
            // A zero row means a singular matrix; leave it for the
            // elimination to find.
            *f = if r > 0.0 { 1.0 / r.sqrt() } else { 1.0 };
            done &= (0.25..=4.0).contains(&r) || r == 0.0;
        }
        if done {
            break;
        }
        for (k, d) in diag.iter_mut().enumerate() {
            let s = &factor[offsets[k]..offsets[k + 1]];
            scale(d, s, s);
        }
        for (k, c) in subs.iter_mut().enumerate() {
            let Some(c) = c else { continue };
            let (rows_at, cols_at) = (offsets[k + 1] + c.rows.start, offsets[k] + c.cols.start);
            let (r, cl) = (c.c.nrows(), c.c.ncols());
            scale(&mut c.c, &factor[rows_at..rows_at + r], &factor[cols_at..cols_at + cl]);
        }
        log_scale += factor.iter().map(|f| f.ln()).sum::<f64>();
    }
    log_scale
}

/// Largest `|v|` of a slice, with four independent maxima so that the
/// loop vectorises (a single running `f64::max` is a serial chain).
fn max_abs_slice(v: &[f64]) -> f64 {
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

/// Column `j` of a column-major matrix as a slice (faer's `Mat` always is).
fn column(m: faer::MatRef<'_, f64>, j: usize) -> &[f64] {
    m.col(j).try_as_col_major().expect("faer's Mat is column-major").as_slice()
}

/// `m[i, j] *= rows[i] * cols[j]`.
fn scale(m: &mut Mat<f64>, rows: &[f64], cols: &[f64]) {
    for (j, &cj) in cols.iter().enumerate() {
        let col = m.as_mut().col_mut(j).try_as_col_major_mut().expect("faer's Mat is column-major").as_slice_mut();
        for (v, &ri) in col.iter_mut().zip(rows) {
            *v *= ri * cj;
        }
    }
}

/// The dense `sub[k]` (at `(k + 1, k)`) from its coupling, or zeros.
fn dense_sub(c: &Option<Coupling>, rows: usize, cols: usize) -> Mat<f64> {
    let mut m = Mat::zeros(rows, cols);
    if let Some(c) = c {
        m.as_mut().submatrix_mut(c.rows.start, c.cols.start, c.rows.len(), c.cols.len()).copy_from(&c.c);
    }
    m
}

/// faer's defaults for the panel LU.
fn lu_params() -> faer::Spec<PartialPivLuParams, f64> {
    <PartialPivLuParams as Auto<f64>>::auto().into()
}

/// Running product of pivots and permutation signs.
struct Accumulator {
    det: SignedLogDet,
}

impl Accumulator {
    /// Records a row (or column) permutation of the given parity.
    fn parity(&mut self, odd: bool) {
        if odd {
            self.det.sign = -self.det.sign;
        }
    }

    /// Records the diagonal of `U`; false on an exactly zero pivot.
    fn pivots(&mut self, u: faer::MatRef<'_, f64>) -> bool {
        for i in 0..u.ncols() {
            let v = u[(i, i)];
            if v == 0.0 {
                self.det = SignedLogDet { log_abs: f64::NEG_INFINITY, sign: 0.0 };
                return false;
            }
            self.det.log_abs += v.abs().ln();
            self.parity(v < 0.0);
        }
        true
    }
}

/// Partial-pivoting LU of the first `w.ncols() - rest` columns of `w`
/// (rows as given), applied to the `rest` columns right of them: row
/// interchanges, `U12 = L11^-1 A12`, `A22 -= L21 U12`. Returns false on an
/// exactly zero pivot.
fn panel_step(
    mut w: faer::MatMut<'_, f64>,
    cols: usize,
    acc: &mut Accumulator,
    par: Par,
    piv: &mut PivotScratch,
) -> bool {
    let m = w.nrows();
    if cols == 0 {
        return true;
    }
    piv.perm.resize(m, 0);
    piv.perm_inv.resize(m, 0);
    let (mut panel, mut rest) = w.rb_mut().split_at_col_mut(cols);
    let mut mem = MemBuffer::new(lu_in_place_scratch::<usize, f64>(m, cols, par, lu_params()));
    let (info, p) =
        lu_in_place(panel.rb_mut(), &mut piv.perm, &mut piv.perm_inv, par, MemStack::new(&mut mem), lu_params());
    acc.parity(info.transposition_count % 2 == 1);
    if !acc.pivots(panel.rb().subrows(0, cols)) {
        return false;
    }
    if rest.ncols() == 0 {
        return true;
    }
    piv.tmp.resize_with(m, rest.ncols(), |_, _| 0.0);
    faer::perm::permute_rows(piv.tmp.as_mut(), rest.rb(), p);
    rest.copy_from(&piv.tmp);
    let (l11, l21) = panel.rb().split_at_row(cols);
    let (mut u12, mut a22) = rest.split_at_row_mut(cols);
    solve_unit_lower_triangular_in_place(l11, u12.rb_mut(), par);
    matmul(a22.rb_mut(), Accum::Add, l21, u12.rb(), -1.0, par);
    true
}

/// Buffers reused by every panel.
struct PivotScratch {
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
    tmp: Mat<f64>,
}

/// The coupling of block `k` to block `k + 1` as seen from block row `k`:
/// its column support `J = [c0, e)` in block `k` and `C = sub[k][:, J]^T`
/// (`|J| x n_{k+1}`), so that block `(k, k + 1)` is `E_J C`.
fn support(subs: &[Option<Coupling>], k: usize, n0: usize, n1: usize) -> (std::ops::Range<usize>, Mat<f64>) {
    match subs.get(k) {
        Some(Some(c)) => {
            (c.cols.clone(), dense_sub(&subs[k], n1, n0).transpose().subrows(c.cols.start, c.cols.len()).to_owned())
        }
        _ => (n0..n0, Mat::zeros(0, n1)),
    }
}

/// The elimination sweep over the (equilibrated) blocks.
///
/// Step `k` eliminates block column `k`. Its rows are the `n_k` rows of
/// block row `k` not yet used as pivots (`left`) and block row `k + 1`,
/// which is zero in block column `k` outside the column support
/// `J = [c0, e)` of `sub[k]`, so it runs in two phases:
///
/// 1. the columns outside `J`, with the leftover rows alone;
/// 2. the `|J|` columns of `J` (the `y` unknowns of the Hessian system, a
///    small part of the block), with the rows still unpivoted and block
///    row `k + 1`.
///
/// Block `(k, k + 1)` is `E_J C_k`, and row operations keep every row's
/// part in block column `k + 1` in the row space of `C_k` until block row
/// `k + 1` joins: `left` carries it as `X` (`n_k x |J|`, the real part
/// being `X C_k`), so phase 1 works on `|J|` columns instead of `n_{k+1}`,
/// and phase 2 carries block column `k + 2` the same way.
fn eliminate(diag: &[Mat<f64>], subs: &[Option<Coupling>], par: ParPolicy) -> SignedLogDet {
    let nb = diag.len();
    let mut acc = Accumulator { det: SignedLogDet { log_abs: 0.0, sign: 1.0 } };
    let size = |k: usize| diag.get(k).map_or(0, Mat::nrows);
    let mut piv = PivotScratch { perm: Vec::new(), perm_inv: Vec::new(), tmp: Mat::new() };
    if nb == 0 {
        return acc.det;
    }
    // `left` = [rows of block row k not yet pivoted over block column k | X].
    let (j0, _) = support(subs, 0, size(0), size(1));
    let mut left = Mat::<f64>::zeros(size(0), size(0) + j0.len());
    left.as_mut().subcols_mut(0, size(0)).copy_from(&diag[0]);
    for (j, i) in j0.clone().enumerate() {
        left[(i, size(0) + j)] = 1.0;
    }
    for k in 0..nb {
        let (n0, n1) = (size(k), size(k + 1));
        let kernel = par.kernel_par(n0 + n1);
        let (j, c) = support(subs, k, n0, n1);
        let s = j.len();
        let free = n0 - s;
        // Phase 1 on [block column k, free columns first | X].
        let order: Vec<usize> = (0..j.start).chain(j.end..n0).chain(j.clone()).collect();
        acc.parity((s * (n0 - j.end)) % 2 == 1);
        let mut top = Mat::<f64>::zeros(n0, n0 + s);
        for (to, &from) in order.iter().enumerate() {
            top.as_mut().col_mut(to).copy_from(left.col(from));
        }
        top.as_mut().subcols_mut(n0, s).copy_from(left.as_ref().subcols(n0, s));
        if !panel_step(top.as_mut(), free, &mut acc, kernel, &mut piv) {
            return acc.det;
        }
        if k + 1 == nb {
            break;
        }
        // Phase 2 on the s unpivoted rows and block row k + 1, over
        // [J | block column k + 1 | X for block column k + 2].
        let (j2, _) = support(subs, k + 1, n1, size(k + 2));
        let s2 = j2.len();
        let mut w = Mat::<f64>::zeros(s + n1, s + n1 + s2);
        let rest = top.as_ref().submatrix(free, free, s, s + s);
        w.as_mut().submatrix_mut(0, 0, s, s).copy_from(rest.subcols(0, s));
        matmul(w.as_mut().submatrix_mut(0, s, s, n1), Accum::Replace, rest.subcols(s, s), c.as_ref(), 1.0, kernel);
        w.as_mut().submatrix_mut(s, 0, n1, s).copy_from(c.transpose());
        w.as_mut().submatrix_mut(s, s, n1, n1).copy_from(&diag[k + 1]);
        for (jj, i) in j2.enumerate() {
            w[(s + i, s + n1 + jj)] = 1.0;
        }
        if !panel_step(w.as_mut(), s, &mut acc, kernel, &mut piv) {
            return acc.det;
        }
        left = w.as_ref().submatrix(s, s, n1, n1 + s2).to_owned();
    }
    acc.det
}
