//! Gaussian elimination with partial pivoting across block boundaries of
//! a symmetric block-tridiagonal matrix, after a symmetric equilibration:
//! [`PivotedLu`] keeps the factors and solves; [`log_det_pivoted`] is its
//! determinant.
//!
//! Block LDLᵀ pivots only inside each Schur complement. When the leading
//! (or trailing) principal submatrices are nearly singular while the whole
//! matrix is not, its Schur complements grow: the log-determinant, a sum of
//! the logs of every pivot, loses up to `u * growth`, and solves carry a
//! backward error that refinement stops contracting beyond `cond ≈ 1e8`.
//! Partial pivoting on the rows of two consecutive block rows is Gaussian
//! elimination with partial pivoting of the whole matrix (rows outside the
//! band are zero in the pivot column), which is backward stable in
//! practice, so solves with it are as accurate as a dense LU.
//! Equilibrating first (Ruiz's scaling, `S A S` with every row maximum near
//! one) keeps partial pivoting from being fooled by rows of wildly
//! different scales, as the lifted Hessian system has when its activations
//! grow geometrically with depth (docs/numerics.md).
//!
//! The sweep keeps a window of two block rows: the `n_k` rows left over
//! from block row `k` (not yet used as pivots) and block row `k + 1`, and
//! exploits that block row `k + 1` meets block column `k` only in the
//! coupling's column support (see [`PivotedLu::factor`]). Work per block of
//! size `n` with a coupling of width `a` is an `n x (n - a)` LU plus
//! `O(n^2 a)`, about the block LDLᵀ's; the factors take about as much
//! memory as the block LDLᵀ's, and the input blocks are densified on
//! demand.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::factor::PartialPivLuParams;
use faer::linalg::lu::partial_pivoting::factor::{lu_in_place, lu_in_place_scratch};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::{solve_unit_lower_triangular_in_place, solve_upper_triangular_in_place};
use faer::reborrow::*;
use faer::{Accum, Auto, Mat, Par};

use crate::error::TridiagError;
use crate::input::{
    column, coupling, coupling_unchecked, diagonal_block, diagonal_block_unchecked, max_abs_slice, Coupling,
};
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
/// every row maximum's distance from one per sweep; row maxima within a
/// factor of four of one are all partial pivoting needs (two sweeps on the
/// Hessian systems measured).
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
    Ok(PivotedLu::factor(t, par, symmetry_tol)?.log_det())
}

/// The input blocks, densified and scaled on demand: keeping them all
/// dense would double the memory of the factorization and, on the machines
/// measured, cost more in first-touch page faults than the elimination.
struct Source<'a> {
    t: &'a blockmat::Tridiag,
    symmetry_tol: f64,
    offsets: Vec<usize>,
    /// The symmetric scaling `S` (one factor per row).
    scale: Vec<f64>,
    /// Every block has passed the input checks once.
    checked: bool,
}

impl<'a> Source<'a> {
    fn new(t: &'a blockmat::Tridiag, symmetry_tol: f64) -> Source<'a> {
        let sizes: Vec<usize> = t.diag().iter().map(|b| b.nrows()).collect();
        let offsets = blockmat::offsets(&sizes);
        let scale = vec![1.0; offsets[sizes.len()]];
        Source { t, symmetry_tol, offsets, scale, checked: false }
    }

    fn len(&self) -> usize {
        self.t.len()
    }

    fn size(&self, k: usize) -> usize {
        if k < self.len() {
            self.offsets[k + 1] - self.offsets[k]
        } else {
            0
        }
    }

    /// Diagonal block `k` of `S A S`, validated on the first pass only.
    fn diag(&self, k: usize) -> Result<Mat<f64>, TridiagError> {
        let mut d = if self.checked {
            diagonal_block_unchecked(self.t, k)
        } else {
            diagonal_block(self.t, k, self.symmetry_tol)?
        };
        let s = &self.scale[self.offsets[k]..self.offsets[k + 1]];
        scale(&mut d, s, s);
        Ok(d)
    }

    /// The coupling of sub-diagonal block `k` of `S A S`.
    fn coupling(&self, k: usize) -> Result<Option<Coupling>, TridiagError> {
        if k + 1 >= self.len() {
            return Ok(None);
        }
        let mut c = if self.checked { coupling_unchecked(self.t, k) } else { coupling(self.t, k, self.symmetry_tol)? };
        if let Some(c) = &mut c {
            let (rows_at, cols_at) = (self.offsets[k + 1] + c.rows.start, self.offsets[k] + c.cols.start);
            let (r, n) = (c.c.nrows(), c.c.ncols());
            scale(&mut c.c, &self.scale[rows_at..rows_at + r], &self.scale[cols_at..cols_at + n]);
        }
        Ok(c)
    }

    /// Symmetric Ruiz equilibration: multiplies `scale` until every row
    /// maximum of `S A S` is within a factor of four of one.
    fn equilibrate(&mut self) -> Result<(), TridiagError> {
        let mut row_max = vec![0.0f64; self.scale.len()];
        for _ in 0..RUIZ_SWEEPS {
            row_max.iter_mut().for_each(|r| *r = 0.0);
            for k in 0..self.len() {
                let d = self.diag(k)?;
                // Symmetric: the maximum of column j is that of row j.
                let rows = &mut row_max[self.offsets[k]..self.offsets[k + 1]];
                for (j, r) in rows.iter_mut().enumerate() {
                    *r = r.max(max_abs_slice(column(d.as_ref(), j)));
                }
                let Some(c) = self.coupling(k)? else { continue };
                let (rows_at, cols_at) = (self.offsets[k + 1] + c.rows.start, self.offsets[k] + c.cols.start);
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
            self.checked = true;
            // A zero row means a singular matrix; leave it for the
            // elimination to find.
            if row_max.iter().all(|&r| (0.25..=4.0).contains(&r) || r == 0.0) {
                break;
            }
            for (s, &r) in self.scale.iter_mut().zip(&row_max) {
                if r > 0.0 {
                    *s /= r.sqrt();
                }
            }
        }
        Ok(())
    }
}

/// `m[i, j] *= rows[i] * cols[j]`, one factor at a time: for a subnormal
/// row maximum the factors are ~1e155 each and their product would
/// overflow while the scaled entry is ~1.
fn scale(m: &mut Mat<f64>, rows: &[f64], cols: &[f64]) {
    for (j, &cj) in cols.iter().enumerate() {
        let col = m.as_mut().col_mut(j).try_as_col_major_mut().expect("faer's Mat is column-major").as_slice_mut();
        for (v, &ri) in col.iter_mut().zip(rows) {
            *v = *v * ri * cj;
        }
    }
}

/// faer's defaults for the panel LU.
fn lu_params() -> faer::Spec<PartialPivLuParams, f64> {
    <PartialPivLuParams as Auto<f64>>::auto().into()
}

/// Running product of pivots and permutation signs.
struct Accumulator {
    det: SignedLogDet,
    /// Panel column of the first exactly zero pivot.
    zero_at: usize,
}

impl Accumulator {
    /// Records a row (or column) permutation of the given parity.
    fn parity(&mut self, odd: bool) {
        if odd {
            self.det.sign = -self.det.sign;
        }
    }

    /// Records the diagonal of `U`; false on an exactly zero pivot, whose
    /// column it keeps in `zero_at`.
    fn pivots(&mut self, u: faer::MatRef<'_, f64>) -> bool {
        for i in 0..u.ncols() {
            let v = u[(i, i)];
            if v == 0.0 {
                self.zero_at = i;
                self.det = SignedLogDet { log_abs: f64::NEG_INFINITY, sign: 0.0 };
                return false;
            }
            self.det.log_abs += v.abs().ln();
            self.parity(v < 0.0);
        }
        true
    }
}

/// Buffers reused by every panel.
struct PivotScratch {
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
    tmp: Mat<f64>,
    mem: MemBuffer,
}

/// Partial-pivoting LU of the first `cols` columns of `w` (over all its
/// rows), applied to the columns right of them: row interchanges,
/// `U12 = L11^-1 A12`, `A22 -= L21 U12`. Returns the row order (row `i` of
/// the result is row `order[i]` of the input), or `None` on an exactly
/// zero pivot.
fn panel_step(
    mut w: faer::MatMut<'_, f64>,
    cols: usize,
    acc: &mut Accumulator,
    par: Par,
    piv: &mut PivotScratch,
) -> Option<Vec<usize>> {
    let m = w.nrows();
    if cols == 0 {
        return Some((0..m).collect());
    }
    piv.perm.resize(m, 0);
    piv.perm_inv.resize(m, 0);
    let (mut panel, mut rest) = w.rb_mut().split_at_col_mut(cols);
    let need = lu_in_place_scratch::<usize, f64>(m, cols, par, lu_params());
    if need.size_bytes() > piv.mem.len() {
        piv.mem = MemBuffer::new(need);
    }
    let (info, p) =
        lu_in_place(panel.rb_mut(), &mut piv.perm, &mut piv.perm_inv, par, MemStack::new(&mut piv.mem), lu_params());
    let order = p.arrays().0.to_vec();
    acc.parity(info.transposition_count % 2 == 1);
    if !acc.pivots(panel.rb().subrows(0, cols)) {
        return None;
    }
    if rest.ncols() > 0 {
        piv.tmp.resize_with(m, rest.ncols(), |_, _| 0.0);
        faer::perm::permute_rows(piv.tmp.as_mut(), rest.rb(), p);
        rest.copy_from(&piv.tmp);
        let (l11, l21) = panel.rb().split_at_row(cols);
        let (mut u12, mut a22) = rest.split_at_row_mut(cols);
        solve_unit_lower_triangular_in_place(l11, u12.rb_mut(), par);
        matmul(a22.rb_mut(), Accum::Add, l21, u12.rb(), -1.0, par);
    }
    Some(order)
}

/// The coupling of block `k` to block `k + 1` as seen from block row `k`:
/// its column support `J = [c0, e)` in block `k` (empty at `n0` when there
/// is none) and `C = sub[k][:, J]^T` (`|J| x n1`), so that block
/// `(k, k + 1)` is `E_J C`.
fn support(c: &Option<Coupling>, n0: usize, n1: usize) -> (std::ops::Range<usize>, Mat<f64>) {
    match c {
        Some(c) => {
            let mut m = Mat::zeros(c.cols.len(), n1);
            m.as_mut().subcols_mut(c.rows.start, c.rows.len()).copy_from(c.c.transpose());
            (c.cols.clone(), m)
        }
        None => (n0..n0, Mat::zeros(0, n1)),
    }
}

/// The factors of one block column `k`.
#[derive(Debug, Clone)]
struct Step {
    /// Column order of block `k` in phase 1: the columns outside `J`, then `J`.
    order: Vec<usize>,
    /// Phase 1's row order of the `n_k` window rows.
    rows1: Vec<usize>,
    /// Phase 1's window after elimination, `n_k x (n_k + |J|)`: `L` in the
    /// first `free` columns, `U` in the first `free` rows (the last `|J|`
    /// columns are `U`'s part in block column `k + 1`, in the row space of
    /// `c`).
    top: Mat<f64>,
    /// `C_k` (`|J| x n_{k+1}`): block `(k, k + 1)` is `E_J C_k`.
    c: Mat<f64>,
    /// Phase 2's row order of the `|J| + n_{k+1}` window rows.
    rows2: Vec<usize>,
    /// Phase 2's `L` (`(|J| + n_{k+1}) x |J|`, `U11` in its top square).
    l2: Mat<f64>,
    /// Phase 2's `U` right of the panel: block column `k + 1`, then the
    /// part in block column `k + 2` in the row space of `C_{k+1}`.
    u2: Mat<f64>,
}

/// The pivoted LU factors of the equilibrated matrix `S A S`, with its
/// determinant; solves with any number of right-hand sides.
///
/// ```
/// use blockmat::{Block, Tridiag};
/// use faer::mat;
///
/// // [[0, 1], [1, 0]] in 1x1 blocks: no block pivot exists (block LDLᵀ
/// // fails), but partial pivoting across the blocks solves it.
/// let t = Tridiag::symmetric(vec![Block::dense(mat![[0.0]]), Block::dense(mat![[0.0]])], vec![Block::dense(mat![[1.0]])])?;
/// let lu = tridiag::PivotedLu::factor(&t, tridiag::ParPolicy::Seq, 1e-14)?;
/// let x = lu.solve(mat![[2.0], [3.0]].as_ref())?;
/// assert_eq!((x[(0, 0)], x[(1, 0)]), (3.0, 2.0));
/// assert_eq!((lu.log_det().log_abs, lu.log_det().sign), (0.0, -1.0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PivotedLu {
    steps: Vec<Step>,
    offsets: Vec<usize>,
    scale: Vec<f64>,
    det: SignedLogDet,
    /// The block column whose elimination met an exactly zero pivot.
    singular_at: Option<(usize, usize)>,
    par: ParPolicy,
}

impl PivotedLu {
    /// Equilibrates `t` and eliminates it with partial pivoting across
    /// blocks. `symmetry_tol` is the relative tolerance of the symmetry
    /// check, as in [`crate::FactorParams`].
    ///
    /// Step `k` eliminates block column `k`. Its rows are the `n_k` rows
    /// of block row `k` not yet used as pivots (`left`) and block row
    /// `k + 1`, which is zero in block column `k` outside the column
    /// support `J` of `sub[k]`, so it runs in two phases:
    ///
    /// 1. the columns outside `J`, with the leftover rows alone;
    /// 2. the `|J|` columns of `J` (the `y` unknowns of the Hessian system,
    ///    a small part of the block), with the rows still unpivoted and
    ///    block row `k + 1`.
    ///
    /// Block `(k, k + 1)` is `E_J C_k`, and row operations keep every row's
    /// part in block column `k + 1` in the row space of `C_k` until block
    /// row `k + 1` joins: `left` carries it as `X` (`n_k x |J|`, the real
    /// part being `X C_k`), so phase 1 works on `|J|` columns instead of
    /// `n_{k+1}`, and phase 2 carries block column `k + 2` the same way.
    ///
    /// # Errors
    /// [`TridiagError::NonFinite`], [`TridiagError::NotSymmetric`] and
    /// [`TridiagError::ShapeMismatch`], as [`crate::BlockLdlt::factor`]. An
    /// exactly singular matrix is not an error: its determinant is
    /// `log_abs = -inf`, `sign = 0`, and solves fail.
    pub fn factor(t: &blockmat::Tridiag, par: ParPolicy, symmetry_tol: f64) -> Result<PivotedLu, TridiagError> {
        let mut src = Source::new(t, symmetry_tol);
        src.equilibrate()?;
        let mut lu = PivotedLu {
            steps: Vec::with_capacity(src.len()),
            offsets: src.offsets.clone(),
            scale: Vec::new(),
            det: SignedLogDet { log_abs: 0.0, sign: 1.0 },
            singular_at: None,
            par,
        };
        lu.eliminate(&src)?;
        if lu.det.sign != 0.0 {
            // det(S A S) = det(A) prod s_i^2.
            lu.det.log_abs -= 2.0 * src.scale.iter().map(|s| s.ln()).sum::<f64>();
        }
        lu.scale = src.scale;
        Ok(lu)
    }

    fn eliminate(&mut self, src: &Source<'_>) -> Result<(), TridiagError> {
        let nb = src.len();
        let mut acc = Accumulator { det: SignedLogDet { log_abs: 0.0, sign: 1.0 }, zero_at: 0 };
        let mut piv = PivotScratch {
            perm: Vec::new(),
            perm_inv: Vec::new(),
            tmp: Mat::new(),
            mem: MemBuffer::new(faer::dyn_stack::StackReq::EMPTY),
        };
        if nb == 0 {
            self.det = acc.det;
            return Ok(());
        }
        // `left` = [rows of block row k not yet pivoted over block column k | X].
        let mut next = src.coupling(0)?;
        let (j0, _) = support(&next, src.size(0), src.size(1));
        let mut left = Mat::<f64>::zeros(src.size(0), src.size(0) + j0.len());
        left.as_mut().subcols_mut(0, src.size(0)).copy_from(src.diag(0)?);
        for (j, i) in j0.enumerate() {
            left[(i, src.size(0) + j)] = 1.0;
        }
        for k in 0..nb {
            let (n0, n1) = (src.size(k), src.size(k + 1));
            let kernel = self.par.kernel_par(n0 + n1);
            let (j, c) = support(&next, n0, n1);
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
            let Some(rows1) = panel_step(top.as_mut(), free, &mut acc, kernel, &mut piv) else {
                self.singular_at = Some((k, step_order_column(&order, acc.zero_at)));
                break;
            };
            let mut step = Step { order, rows1, top, c, rows2: Vec::new(), l2: Mat::new(), u2: Mat::new() };
            if k + 1 == nb {
                self.steps.push(step);
                break;
            }
            // Phase 2 on the s unpivoted rows and block row k + 1, over
            // [J | block column k + 1 | X for block column k + 2].
            next = src.coupling(k + 1)?;
            let j2 = next.as_ref().map_or(0..0, |c| c.cols.clone());
            let s2 = j2.len();
            let mut w = Mat::<f64>::zeros(s + n1, s + n1 + s2);
            let rest = step.top.as_ref().submatrix(free, free, s, s + s);
            w.as_mut().submatrix_mut(0, 0, s, s).copy_from(rest.subcols(0, s));
            matmul(
                w.as_mut().submatrix_mut(0, s, s, n1),
                Accum::Replace,
                rest.subcols(s, s),
                step.c.as_ref(),
                1.0,
                kernel,
            );
            w.as_mut().submatrix_mut(s, 0, n1, s).copy_from(step.c.transpose());
            w.as_mut().submatrix_mut(s, s, n1, n1).copy_from(src.diag(k + 1)?);
            for (jj, i) in j2.enumerate() {
                w[(s + i, s + n1 + jj)] = 1.0;
            }
            let Some(rows2) = panel_step(w.as_mut(), s, &mut acc, kernel, &mut piv) else {
                self.singular_at = Some((k, j.start + acc.zero_at));
                break;
            };
            left = w.as_ref().submatrix(s, s, n1, n1 + s2).to_owned();
            step.rows2 = rows2;
            step.l2 = w.as_ref().subcols(0, s).to_owned();
            step.u2 = w.as_ref().submatrix(0, s, s, n1 + s2).to_owned();
            self.steps.push(step);
        }
        self.det = acc.det;
        Ok(())
    }

    /// Dimension of the matrix.
    pub fn dim(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// `log|det|` and sign of the input matrix (`-inf` and 0 when an
    /// elimination step met an exactly zero pivot).
    pub fn log_det(&self) -> SignedLogDet {
        self.det
    }

    /// The block column whose elimination met an exactly zero pivot
    /// (`None`: the matrix is numerically invertible to this elimination).
    pub fn singular_block(&self) -> Option<usize> {
        self.singular_at.map(|(k, _)| k)
    }

    /// Where the elimination met an exactly zero pivot: the block column
    /// and the column inside it (`None`: numerically invertible to this
    /// elimination).
    pub fn zero_pivot(&self) -> Option<(usize, usize)> {
        self.singular_at
    }

    /// `A^-1 rhs` as a new matrix; see [`PivotedLu::solve_in_place`].
    pub fn solve(&self, rhs: faer::MatRef<'_, f64>) -> Result<Mat<f64>, TridiagError> {
        let mut x = rhs.to_owned();
        self.solve_in_place(x.as_mut())?;
        Ok(x)
    }

    /// Overwrites `rhs` (`dim x m`, any `m`) with `A^-1 rhs`: the row
    /// operations of the elimination applied to `S rhs`, back substitution
    /// with `U`, and the scaling `S` again.
    ///
    /// # Errors
    /// [`TridiagError::ShapeMismatch`] when `rhs` has not `dim` rows,
    /// [`TridiagError::NonFinite`] for NaN or infinite entries,
    /// [`TridiagError::SolveSingular`] when the elimination met an exactly
    /// zero pivot.
    pub fn solve_in_place(&self, mut rhs: faer::MatMut<'_, f64>) -> Result<(), TridiagError> {
        let nb = self.offsets.len() - 1;
        if rhs.nrows() != self.dim() {
            return Err(TridiagError::ShapeMismatch {
                op: "PivotedLu::solve_in_place",
                expected: (self.dim(), rhs.ncols()),
                found: (rhs.nrows(), rhs.ncols()),
            });
        }
        if let Some((first_block, _)) = self.singular_at {
            return Err(TridiagError::SolveSingular { zero_pivots: 1, first_block });
        }
        for k in 0..nb {
            if !rhs.rb().subrows(self.offsets[k], self.size(k)).is_all_finite() {
                return Err(TridiagError::NonFinite { what: "right-hand side", block: k });
            }
        }
        let m = rhs.ncols();
        for (i, &s) in self.scale.iter().enumerate() {
            rhs.rb_mut().row_mut(i).iter_mut().for_each(|v| *v *= s);
        }
        // Forward: y1[k] and y2[k] are the pivot rows' entries of L^-1 P b.
        let mut y1: Vec<Mat<f64>> = Vec::with_capacity(nb);
        let mut y2: Vec<Mat<f64>> = Vec::with_capacity(nb);
        let mut left = rhs.rb().subrows(0, self.size(0)).to_owned();
        for (k, st) in self.steps.iter().enumerate() {
            let par = self.par.kernel_par(self.size(k) + self.size(k + 1));
            let free = st.top.nrows() - st.c.nrows();
            let mut w = permuted(left.as_ref(), &st.rows1);
            forward_panel(w.as_mut(), st.top.as_ref().subcols(0, free), par);
            y1.push(w.as_ref().subrows(0, free).to_owned());
            if k + 1 == nb {
                break;
            }
            let s = st.c.nrows();
            let mut win = Mat::<f64>::zeros(s + self.size(k + 1), m);
            win.as_mut().subrows_mut(0, s).copy_from(w.as_ref().subrows(free, s));
            win.as_mut()
                .subrows_mut(s, self.size(k + 1))
                .copy_from(rhs.rb().subrows(self.offsets[k + 1], self.size(k + 1)));
            let mut win = permuted(win.as_ref(), &st.rows2);
            forward_panel(win.as_mut(), st.l2.as_ref(), par);
            y2.push(win.as_ref().subrows(0, s).to_owned());
            left = win.as_ref().subrows(s, self.size(k + 1)).to_owned();
        }
        // Backward, last block column first; `x` holds the solution of the
        // scaled system in natural order.
        for k in (0..nb).rev() {
            let st = &self.steps[k];
            let par = self.par.kernel_par(self.size(k) + self.size(k + 1));
            let (n0, s) = (st.top.nrows(), st.c.nrows());
            let free = n0 - s;
            // x_J from phase 2: U11 x_J = y2 - U12 x_{k+1} - U13 C_{k+1} x_{k+2}.
            let mut xj = Mat::<f64>::zeros(s, m);
            if k + 1 < nb {
                let n1 = self.size(k + 1);
                xj.copy_from(&y2[k]);
                let x1 = rhs.rb().subrows(self.offsets[k + 1], n1);
                matmul(xj.as_mut(), Accum::Add, st.u2.as_ref().subcols(0, n1), x1, -1.0, par);
                if k + 2 < nb {
                    let c1 = &self.steps[k + 1].c;
                    let mut cx = Mat::<f64>::zeros(c1.nrows(), m);
                    matmul(
                        cx.as_mut(),
                        Accum::Replace,
                        c1.as_ref(),
                        rhs.rb().subrows(self.offsets[k + 2], self.size(k + 2)),
                        1.0,
                        par,
                    );
                    matmul(xj.as_mut(), Accum::Add, st.u2.as_ref().subcols(n1, c1.nrows()), cx.as_ref(), -1.0, par);
                }
                solve_upper_triangular_in_place(st.l2.as_ref().subrows(0, s), xj.as_mut(), par);
            }
            // x_free from phase 1: U11 x_free = y1 - U12 x_J - U13 C_k x_{k+1}.
            let mut xf = y1[k].clone();
            matmul(xf.as_mut(), Accum::Add, st.top.as_ref().submatrix(0, free, free, s), xj.as_ref(), -1.0, par);
            if s > 0 {
                let mut cx = Mat::<f64>::zeros(s, m);
                matmul(
                    cx.as_mut(),
                    Accum::Replace,
                    st.c.as_ref(),
                    rhs.rb().subrows(self.offsets[k + 1], self.size(k + 1)),
                    1.0,
                    par,
                );
                matmul(xf.as_mut(), Accum::Add, st.top.as_ref().submatrix(0, n0, free, s), cx.as_ref(), -1.0, par);
            }
            solve_upper_triangular_in_place(st.top.as_ref().submatrix(0, 0, free, free), xf.as_mut(), par);
            let mut xk = rhs.rb_mut().subrows_mut(self.offsets[k], n0);
            for (i, &to) in st.order.iter().enumerate() {
                let from = if i < free { xf.row(i) } else { xj.row(i - free) };
                xk.rb_mut().row_mut(to).copy_from(from);
            }
        }
        for (i, &s) in self.scale.iter().enumerate() {
            rhs.rb_mut().row_mut(i).iter_mut().for_each(|v| *v *= s);
        }
        Ok(())
    }

    fn size(&self, k: usize) -> usize {
        if k + 1 < self.offsets.len() {
            self.offsets[k + 1] - self.offsets[k]
        } else {
            0
        }
    }
}

/// The column of block `k` that phase 1's panel column `i` eliminates.
fn step_order_column(order: &[usize], i: usize) -> usize {
    order.get(i).copied().unwrap_or(i)
}

/// Rows of `m` in the given order (row `i` of the result is `m[order[i]]`).
fn permuted(m: faer::MatRef<'_, f64>, order: &[usize]) -> Mat<f64> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(order[i], j)])
}

/// Applies a panel's `L` (`rows x cols`, unit lower in its top square) to
/// permuted right-hand-side rows: `y = L11^-1 b1`, `b2 -= L21 y`.
fn forward_panel(mut w: faer::MatMut<'_, f64>, l: faer::MatRef<'_, f64>, par: Par) {
    let cols = l.ncols();
    if cols == 0 {
        return;
    }
    let (mut top, mut rest) = w.rb_mut().split_at_row_mut(cols);
    let (l11, l21) = l.split_at_row(cols);
    solve_unit_lower_triangular_in_place(l11, top.rb_mut(), par);
    matmul(rest.rb_mut(), Accum::Add, l21, top.rb(), -1.0, par);
}
