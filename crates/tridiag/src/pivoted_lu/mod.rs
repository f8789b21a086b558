//! Gaussian elimination with partial pivoting across block boundaries of
//! a symmetric block-tridiagonal matrix, after a symmetric equilibration:
//! [`PivotedLu`] keeps the factors and solves; [`log_det_pivoted`] runs the
//! same elimination for its determinant alone and keeps no factor.
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
//!
//! Submodules: `source` (the input densified and equilibrated on demand),
//! `panel` (one panel LU and the running determinant), `solve` (the
//! sweeps of a solve). Buffers sized once for the largest block serve
//! every block: the factorization allocates only the factors it keeps, a
//! solve a fixed number of buffers.

mod panel;
mod solve;
mod source;

use faer::linalg::matmul::matmul;
use faer::reborrow::*;
use faer::{Accum, Mat};

use crate::error::TridiagError;
use crate::params::ParPolicy;
use panel::{panel_step, Accumulator, PivotScratch};
use source::Source;

/// A determinant as `sign * exp(log_abs)`, which neither overflows nor
/// underflows for the sizes block-tridiagonal matrices reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignedLogDet {
    /// `log|det|`, `-inf` for an exactly singular matrix.
    pub log_abs: f64,
    /// `+1`, `-1`, or `0` for an exactly singular matrix.
    pub sign: f64,
}

/// `log|det t|` and its sign by block-tridiagonal Gaussian elimination with
/// partial pivoting (see the module documentation for why it is more
/// accurate than [`crate::BlockLdlt::log_abs_det`] on ill-conditioned
/// input). `symmetry_tol` is the relative tolerance of the symmetry check,
/// as in [`crate::FactorParams`]. The determinant is bit for bit that of
/// [`PivotedLu::factor`], which also keeps the factors; this keeps none
/// and allocates only buffers for the largest block.
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
    // Allocating and filling the kept factors was about a third of the
    // determinant's time on `R` at L16 h8 B16 (blocks of 256).
    Ok(PivotedLu::run(t, par, symmetry_tol, Keep::Determinant)?.log_det())
}

/// What an elimination keeps: the factors (to solve with) or only the
/// determinant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Factors,
    Determinant,
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
        PivotedLu::run(t, par, symmetry_tol, Keep::Factors)
    }

    /// [`PivotedLu::factor`], keeping the factors or only the determinant.
    fn run(t: &blockmat::Tridiag, par: ParPolicy, symmetry_tol: f64, keep: Keep) -> Result<PivotedLu, TridiagError> {
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
        lu.eliminate(&mut src, keep)?;
        if lu.det.sign != 0.0 {
            // det(S A S) = det(A) prod s_i^2.
            lu.det.log_abs -= 2.0 * src.scale.iter().map(|s| s.ln()).sum::<f64>();
        }
        lu.scale = src.scale;
        Ok(lu)
    }

    fn eliminate(&mut self, src: &mut Source<'_>, keep: Keep) -> Result<(), TridiagError> {
        let nb = src.len();
        let mut acc = Accumulator { det: SignedLogDet { log_abs: 0.0, sign: 1.0 }, zero_at: 0 };
        if nb == 0 {
            self.det = acc.det;
            return Ok(());
        }
        // The two windows, sized once: `left` is at most `n x 2n` and the
        // phase-2 window `w` at most `2n x 3n` (`|J| <= n` each).
        let big = src.largest();
        let mut piv = PivotScratch::new(2 * big, 3 * big);
        let mut left_buf = Mat::<f64>::zeros(big, 2 * big);
        let mut w_buf = Mat::<f64>::zeros(2 * big, 3 * big);
        // Phase 1's window, when its factors are not kept (`n x 2n`).
        let mut top_buf = Mat::<f64>::new();
        if keep == Keep::Determinant {
            top_buf = Mat::zeros(big, 2 * big);
        }
        // `left` = [rows of block row k not yet pivoted over block column k | X].
        let (mut j, mut c) = src.support(0)?;
        let n0 = src.size(0);
        let mut left = left_buf.as_mut().submatrix_mut(0, 0, n0, n0 + j.len());
        left.fill(0.0);
        src.diag_into(0, left.rb_mut().subcols_mut(0, n0))?;
        for (col, i) in j.clone().enumerate() {
            left[(i, n0 + col)] = 1.0;
        }
        for k in 0..nb {
            let (n0, n1) = (src.size(k), src.size(k + 1));
            let kernel = self.par.kernel_par(n0 + n1);
            let s = j.len();
            let free = n0 - s;
            let left = left_buf.as_ref().submatrix(0, 0, n0, n0 + s);
            // Phase 1 on [block column k, free columns first | X].
            let order: Vec<usize> = (0..j.start).chain(j.end..n0).chain(j.clone()).collect();
            acc.parity((s * (n0 - j.end)) % 2 == 1);
            // Block column k in `order`, then X: every entry written, so a
            // kept window is built in one pass rather than zeroed first.
            let window = |i: usize, to: usize| if to < n0 { left[(i, order[to])] } else { left[(i, to)] };
            let mut kept = Mat::<f64>::new();
            let mut top = match keep {
                Keep::Factors => {
                    kept = Mat::from_fn(n0, n0 + s, window);
                    kept.as_mut()
                }
                Keep::Determinant => {
                    let mut top = top_buf.as_mut().submatrix_mut(0, 0, n0, n0 + s);
                    for (to, col) in top.rb_mut().col_iter_mut().enumerate() {
                        col.iter_mut().enumerate().for_each(|(i, v)| *v = window(i, to));
                    }
                    top
                }
            };
            let Some(rows1) = panel_step(top.rb_mut(), free, &mut acc, kernel, &mut piv) else {
                self.singular_at = Some((k, step_order_column(&order, acc.zero_at)));
                break;
            };
            if k + 1 == nb {
                if keep == Keep::Factors {
                    self.steps.push(Step {
                        order,
                        rows1,
                        top: kept,
                        c,
                        rows2: Vec::new(),
                        l2: Mat::new(),
                        u2: Mat::new(),
                    });
                }
                break;
            }
            // Phase 2 on the s unpivoted rows and block row k + 1, over
            // [J | block column k + 1 | X for block column k + 2].
            let (j2, c2) = src.support(k + 1)?;
            let s2 = j2.len();
            let mut w = w_buf.as_mut().submatrix_mut(0, 0, s + n1, s + n1 + s2);
            w.fill(0.0);
            let rest = top.rb().submatrix(free, free, s, s + s);
            w.rb_mut().submatrix_mut(0, 0, s, s).copy_from(rest.subcols(0, s));
            matmul(w.rb_mut().submatrix_mut(0, s, s, n1), Accum::Replace, rest.subcols(s, s), c.as_ref(), 1.0, kernel);
            w.rb_mut().submatrix_mut(s, 0, n1, s).copy_from(c.transpose());
            src.diag_into(k + 1, w.rb_mut().submatrix_mut(s, s, n1, n1))?;
            for (jj, i) in j2.clone().enumerate() {
                w[(s + i, s + n1 + jj)] = 1.0;
            }
            let Some(rows2) = panel_step(w.rb_mut(), s, &mut acc, kernel, &mut piv) else {
                self.singular_at = Some((k, j.start + acc.zero_at));
                break;
            };
            left_buf.as_mut().submatrix_mut(0, 0, n1, n1 + s2).copy_from(w.rb().submatrix(s, s, n1, n1 + s2));
            if keep == Keep::Factors {
                let (l2, u2) = (w.rb().subcols(0, s).to_owned(), w.rb().submatrix(0, s, s, n1 + s2).to_owned());
                self.steps.push(Step { order, rows1, top: kept, c, rows2, l2, u2 });
            }
            (j, c) = (j2, c2);
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
