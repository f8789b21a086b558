//! One direction of block elimination: a run of blocks, each coupled to the
//! next, the last one coupled to the block where the elimination stops.
//!
//! The sequential factorization is one top-down chain ending at the last
//! block; the two-sided one is a top-down and a bottom-up chain meeting at a
//! middle block. Going bottom-up, block `k + 1` couples to block `k` through
//! `sub[k]^T`, so its coupling is the transpose of the top-down one.

use std::ops::Range;

use blockmat::Block;

use faer::dyn_stack::{DynArray, MemStack, StackReq};
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::{temp_mat_scratch, temp_mat_zeroed};
use faer::mat::AsMatMut;
use faer::reborrow::*;
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::dense_lblt::DenseLblt;
use crate::error::TridiagError;
use crate::input::{
    column, coupling, diagonal_block, max_abs, max_abs_slice, owned_coupling, owned_diagonal_block, Coupling, FroNorm,
};
use crate::params::{FactorParams, OnSingular};
use crate::pivots::{BlockDiagnostics, ZeroPivot};
use crate::workspace::{grow, Workspace};

/// The block's share of the off-diagonal factor `X = B^-1 L^-1 P E_cols C^T`
/// of the block LDLᵀ (`S = P^T L B L^T P` the block's Bunch–Kaufman
/// factors), in whichever of two forms is cheaper to build: with the
/// update `-C S^-1[cols, cols] C^T = -X^T B X` for the next block, it
/// costs one triangular solve with `L` instead of a whole solve with `S`.
/// The rows of `L^-1 P E_cols` above the first pivot that `cols` reach
/// are zero, so only rows `start..` are kept and worked on.
#[derive(Debug, Clone)]
enum Inverse {
    /// `V = (L^-1 P E_cols C^T)[start..]`, `n - start x |rows|`: what the
    /// next block's rows need when they are fewer than the columns. `C`
    /// itself is in `V`: not kept (about two megabytes of hinv's reduced
    /// system at batch 16).
    Rows { start: usize, v: Mat<f64> },
    /// `W = (L^-1 P E_cols)[start..]`, `n - start x |cols|`, applied with
    /// `C`: narrow columns (the interleaved system's top-down couplings).
    Cols { start: usize, w: Mat<f64>, coupling: Coupling },
}

impl Inverse {
    /// The block rows the factor covers: `start..` (`start` and length).
    fn span(&self) -> (usize, usize) {
        match self {
            Inverse::Rows { start, v } => (*start, v.nrows()),
            Inverse::Cols { start, w, .. } => (*start, w.nrows()),
        }
    }
}

/// Coupling of a chain block to the next block (rows `rows` of the next
/// block, columns `cols` of this one), with its share of the off-diagonal
/// factor.
#[derive(Debug, Clone)]
struct Link {
    rows: Range<usize>,
    cols: Range<usize>,
    inverse: Inverse,
}

/// Flops of the two forms of [`Inverse`] on `len` rows, a coupling `r x m`:
/// true when [`Inverse::Rows`] is the cheaper.
fn rows_cheaper(len: usize, r: usize, m: usize) -> bool {
    let (len, r, m) = (len as f64, r as f64, m as f64);
    let rows = len * len * r + len * r * r;
    let cols = len * len * m + len * m * m + 2.0 * r * m * m + r * r * m;
    rows <= cols
}

impl Link {
    /// Stack [`Link::new`] needs for a block of size `n` and a coupling of
    /// up to `r x m`.
    fn scratch(n: usize, r: usize, m: usize) -> StackReq {
        temp_mat_scratch::<f64>(n, r.max(m))
            .and(temp_mat_scratch::<f64>(m, m))
            .and(temp_mat_scratch::<f64>(r, m))
            .and(StackReq::new::<usize>(n))
    }

    /// Builds the link's factor and writes the lower triangle of the
    /// update `-C S^-1[cols, cols] C^T` for the next block into `upd`
    /// (`|rows| x |rows|`). The factor is the only allocation (the link
    /// keeps it, and `coupling` only in the columns form); `stack` holds
    /// [`Link::scratch`].
    fn new(lblt: &DenseLblt, coupling: Coupling, par: Par, upd: MatMut<'_, f64>, stack: &mut MemStack) -> Link {
        let n = lblt.dim();
        let (rows, cols) = (coupling.rows.clone(), coupling.cols.clone());
        let c = coupling.view();
        let (r, m) = (c.nrows(), c.ncols());
        let (perm, perm_inv) = lblt.perm();
        let first = cols.clone().map(|i| perm_inv[i]).min().unwrap_or(n);
        let start = lblt.pivot_start(first);
        let len = n - start;
        // Only the lower triangle of `upd` is computed, and only it is read
        // ([`add_lower`]).
        let inverse = if rows_cheaper(len, r, m) {
            // `(P E_cols C^T)[start..]`, written once: row `i` is column
            // `perm[start + i] - cols.start` of `C` (`NONE`: zero). Zeroing
            // the kept factor first and copying rows into it was a second
            // pass over it, with strided writes.
            const NONE: usize = usize::MAX;
            let (source, stack) =
                stack.make_with(len, |i| perm[start + i].checked_sub(cols.start).filter(|&j| j < m).unwrap_or(NONE));
            let mut v = Mat::<f64>::from_fn(len, r, |i, k| if source[i] == NONE { 0.0 } else { c[(k, source[i])] });
            lblt.lower_solve_from(start, v.as_mut(), par);
            let (mut bv, _) = copy_to_stack(v.as_ref(), stack);
            let mut bv = MatMut::from_column_major_slice_mut(&mut bv, len, r);
            lblt.pivot_solve_from(start, bv.rb_mut());
            lower_product(upd, v.transpose(), bv.rb(), par);
            Inverse::Rows { start, v }
        } else {
            let mut w = Mat::<f64>::zeros(len, m);
            for j in 0..m {
                w[(perm_inv[cols.start + j] - start, j)] = 1.0;
            }
            lblt.lower_solve_from(start, w.as_mut(), par);
            let (mut bw, stack) = copy_to_stack(w.as_ref(), stack);
            let mut bw = MatMut::from_column_major_slice_mut(&mut bw, len, m);
            lblt.pivot_solve_from(start, bw.rb_mut());
            // S^-1[cols, cols] = W^T B^-1 W (its lower triangle, mirrored),
            // then C times it: `n m^2` against the `n^2 m` a second
            // triangular solve for the whole `S^-1 E_cols` would cost.
            let (mut inv, stack) = temp_mat_zeroed::<f64, _, _>(m, m, stack);
            let mut inv = inv.as_mat_mut();
            lower_product(inv.rb_mut(), w.transpose(), bw.rb(), par);
            for j in 1..m {
                for i in 0..j {
                    inv[(i, j)] = inv[(j, i)];
                }
            }
            let (mut cw, _) = temp_mat_zeroed::<f64, _, _>(r, m, stack);
            let mut cw = cw.as_mat_mut();
            matmul(cw.rb_mut(), Accum::Replace, c, inv.rb(), -1.0, par);
            lower_product(upd, cw.rb(), c.transpose(), par);
            Inverse::Cols { start, w, coupling }
        };
        Link { rows, cols, inverse }
    }
}

/// A copy of `m` (column-major, unpadded) on `stack`, written in one pass:
/// zeroing a buffer only to overwrite it costs a pass over `n x r` entries
/// (a quarter megabyte per block of hinv's reduced system at batch 16).
fn copy_to_stack<'s>(m: MatRef<'_, f64>, stack: &'s mut MemStack) -> (DynArray<'s, f64>, &'s mut MemStack) {
    stack.collect_aligned(64, m.col_iter().flat_map(|c| c.iter().copied()))
}

/// `dst += upd`, lower triangles only, and the largest entry of `upd`'s:
/// the factorization reads only the lower triangle of a block, and
/// [`Link::new`] writes only that of the update (no pass to clear the
/// rest).
fn add_lower(mut dst: MatMut<'_, f64>, upd: MatRef<'_, f64>) -> f64 {
    let mut big = 0.0f64;
    for j in 0..upd.ncols() {
        let u = &column(upd, j)[j..];
        big = big.max(max_abs_slice(u));
        let d = dst.rb_mut().col_mut(j).try_as_col_major_mut().expect("blocks are column-major").as_slice_mut();
        for (d, u) in d[j..].iter_mut().zip(u) {
            *d += u;
        }
    }
    big
}

/// Up to this size the update is a plain product: faer's triangular one
/// costs ~24k instructions at 8 x 8 (inner 16) against ~2k for the plain
/// one (callgrind, L16 h4 B2: 6.24M instructions in all against 5.88M);
/// at 16 the two break even, at 128 the triangular one saves 5%.
const FULL_PRODUCT_MAX: usize = 16;

/// The lower triangle of `-a b` into `dst` (Bunch–Kaufman reads only the
/// lower triangle, so the upper one is not computed beyond small sizes).
fn lower_product(dst: MatMut<'_, f64>, a: MatRef<'_, f64>, b: MatRef<'_, f64>, par: Par) {
    if dst.nrows() <= FULL_PRODUCT_MAX {
        matmul(dst, Accum::Replace, a, b, -1.0, par);
        return;
    }
    triangular::matmul(
        dst,
        BlockStructure::TriangularLower,
        Accum::Replace,
        a,
        BlockStructure::Rectangular,
        b,
        BlockStructure::Rectangular,
        -1.0,
        par,
    );
}

/// A `-C W C^T` update waiting to be added to the next block: rows touched
/// and the update itself (its lower triangle: the upper one is not
/// written, see [`add_lower`]).
pub(crate) type Pending = Option<(Range<usize>, Mat<f64>)>;

/// The factored blocks of one elimination direction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chain {
    blocks: Vec<DenseLblt>,
    /// Original block index of each chain block, in elimination order.
    pub(crate) index: Vec<usize>,
    /// Rows of each chain block inside the chain's slice of the right-hand side.
    ranges: Vec<Range<usize>>,
    links: Vec<Option<Link>>,
}

/// What factoring a chain produced besides the chain itself.
pub(crate) struct ChainOutput {
    pub(crate) diagnostics: Vec<BlockDiagnostics>,
    /// The update for the block the chain ends at.
    pub(crate) pending: Pending,
    /// Frobenius norm of the input blocks seen (couplings twice).
    pub(crate) norm: FroNorm,
}

/// Stack [`factor_block`] needs for a block of size `n`.
pub(crate) fn factor_block_scratch(n: usize, par: Par) -> StackReq {
    DenseLblt::factor_scratch(n, par)
}

/// Factors one Schur complement: `s` (whose largest entry is `s_max`, as
/// its input checks measured it) plus the pending updates, with the
/// singular-pivot policy applied. Returns its factors and diagnostics;
/// `stack` holds [`factor_block_scratch`].
pub(crate) fn factor_block<'a>(
    mut s: Mat<f64>,
    s_max: f64,
    pending: impl IntoIterator<Item = (Range<usize>, MatRef<'a, f64>)>,
    block: usize,
    par: Par,
    params: &FactorParams,
    stack: &mut MemStack,
) -> Result<(DenseLblt, BlockDiagnostics), TridiagError> {
    let n = s.nrows();
    // The scale of the terms before they cancel: a Schur complement that
    // cancels to rounding noise must look singular, not be judged against
    // the noise itself.
    debug_assert_eq!(s_max, max_abs(s.as_ref()), "the scale of the block as given");
    let mut scale = s_max;
    for (rows, upd) in pending {
        let view = s.as_mut().submatrix_mut(rows.start, rows.start, rows.len(), rows.len());
        scale = scale.max(add_lower(view, upd));
    }
    let (threshold, replace) = pivot_policy(params, n, scale);
    let (lblt, mut diag, zero) = DenseLblt::factor(s, par, threshold, replace, stack);
    diag.scale = scale;
    check_zero_pivot(zero, block, threshold, params)?;
    Ok((lblt, diag))
}

/// The zero-pivot threshold of a block of size `n` and `scale`, and the
/// value a zero pivot is replaced by when the factorization continues.
pub(crate) fn pivot_policy(params: &FactorParams, n: usize, scale: f64) -> (f64, Option<f64>) {
    let threshold = params.singular_tol * n as f64 * scale;
    let replace = match params.on_singular {
        OnSingular::Error => None,
        // Any non-zero replacement keeps the other eigenvalues on their side
        // of zero (interlacing); sqrt(eps) of the block's scale keeps the
        // carried update (~ 1/delta) representable without swamping the next
        // block in rounding.
        OnSingular::Continue => Some(if scale > 0.0 { f64::EPSILON.sqrt() * scale } else { 1.0 }),
    };
    (threshold, replace)
}

/// [`TridiagError::Singular`] for the first zero pivot of `block`, unless
/// the factorization continues past zero pivots.
pub(crate) fn check_zero_pivot(
    zero: ZeroPivot,
    block: usize,
    threshold: f64,
    params: &FactorParams,
) -> Result<(), TridiagError> {
    match (zero, params.on_singular) {
        (Some((pivot, magnitude)), OnSingular::Error) => {
            Err(TridiagError::Singular { block, pivot, magnitude, threshold })
        }
        _ => Ok(()),
    }
}

impl Chain {
    /// Number of blocks in the chain.
    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Factors blocks `order` (original indices, consecutive, increasing
    /// when `down`, decreasing otherwise), each coupled to the next and the
    /// last to the block after it. `offsets` are the original block offsets
    /// and `base` the first row of the chain's slice of a right-hand side.
    ///
    /// `owned` is empty, or holds the diagonal blocks of `order` (in that
    /// order) moved out of `t`: those are factored in place, not copied.
    /// `owned_sub` likewise holds the couplings of `order`'s blocks to the
    /// next (`sub[k]` going down, `sub[k - 1]` going up) when they were
    /// moved out of a symmetric `t`: a dense one is kept, not copied.
    ///
    /// One [`Workspace`], sized for the largest block, serves every block:
    /// what is allocated per block is what the chain keeps (the factors,
    /// the link's part of the inverse and, in its columns form, the
    /// coupling, the diagnostics), and a borrowed coupling's copy, which
    /// the rows form drops once its factor holds it.
    pub(crate) fn factor(
        t: &blockmat::Tridiag,
        owned: &mut [Option<Block>],
        owned_sub: &mut [Option<Block>],
        order: &[usize],
        down: bool,
        offsets: &[usize],
        base: usize,
        par_of: impl Fn(usize) -> Par,
        params: &FactorParams,
    ) -> Result<(Chain, ChainOutput), TridiagError> {
        let mut chain = Chain {
            blocks: Vec::with_capacity(order.len()),
            index: Vec::with_capacity(order.len()),
            ranges: Vec::with_capacity(order.len()),
            links: Vec::with_capacity(order.len()),
        };
        let mut out =
            ChainOutput { diagnostics: Vec::with_capacity(order.len()), pending: None, norm: FroNorm::default() };
        let mut ws = chain_workspace(t, order, !owned_sub.is_empty() && owned_sub.iter().all(Option::is_some), &par_of);
        // Rows of the next block that `ws.pending` updates.
        let mut pending: Option<Range<usize>> = None;
        for (i, &k) in order.iter().enumerate() {
            let (d, scales) = match owned.get_mut(i).and_then(Option::take) {
                Some(b) => owned_diagonal_block(b, k, params.symmetry_tol)?,
                None => diagonal_block(t, k, params.symmetry_tol)?,
            };
            out.norm.add(scales.norm, 1.0);
            let n = d.nrows();
            let par = par_of(n);
            let upd = pending.take().map(|rows| {
                let len = rows.len();
                (rows, ws.pending.as_ref().submatrix(0, 0, len, len))
            });
            let stack = grow(&mut ws.mem, factor_block_scratch(n, par));
            let (lblt, mut diag) = factor_block(d, scales.max_abs, upd, k, par, params, stack)?;
            // Going up, block k couples to k - 1 through sub[k - 1]^T.
            let sub = if down { k } else { k - 1 };
            let c = match owned_sub.get_mut(i).and_then(Option::take) {
                Some(b) => owned_coupling(b, sub, &mut ws, !down)?,
                None => coupling(t, sub, params.symmetry_tol, &mut ws, !down)?,
            };
            let link = c.map(|c| {
                out.norm.add(c.norm, 2.0);
                diag.coupling = Some(c.cols.clone());
                let (r, m) = (c.rows.len(), c.cols.len());
                let rows = c.rows.clone();
                if ws.pending.nrows() < r {
                    ws.pending = Mat::zeros(r, r);
                }
                let stack = grow(&mut ws.mem, Link::scratch(n, r, m));
                let link = Link::new(&lblt, c, par, ws.pending.as_mut().submatrix_mut(0, 0, r, r), stack);
                pending = Some(rows);
                link
            });
            chain.index.push(k);
            chain.ranges.push(offsets[k] - base..offsets[k + 1] - base);
            chain.links.push(link);
            chain.blocks.push(lblt);
            out.diagnostics.push(diag);
        }
        out.pending = pending.map(|rows| {
            let len = rows.len();
            (rows, ws.pending.as_ref().submatrix(0, 0, len, len).to_owned())
        });
        Ok((chain, out))
    }

    /// Scratch for the sweeps over `ncols` columns.
    pub(crate) fn scratch(&self, ncols: usize, par_of: &impl Fn(usize) -> Par) -> StackReq {
        let width = self.width();
        self.blocks.iter().fold(StackReq::EMPTY, |req, b| {
            let n = b.dim();
            let solve = DenseLblt::solve_scratch(n, ncols, par_of(n)).or(DenseLblt::half_scratch(n, ncols));
            req.or(temp_mat_scratch::<f64>(n, ncols).and(temp_mat_scratch::<f64>(width, ncols)).and(solve))
        })
    }

    /// Forward sweep on the chain's slice `part`: a linked block gets
    /// `u_j = B_j^-1 L_j^-1 P_j w_j` and subtracts `X_j^T L_j^-1 P_j w_j =
    /// (B_j X_j)^T u_j` from the next block (the last into `to_end`, the end
    /// block's rows); a block without a coupling is solved outright.
    pub(crate) fn forward(
        &self,
        mut part: MatMut<'_, f64>,
        mut to_end: MatMut<'_, f64>,
        par_of: &impl Fn(usize) -> Par,
        stack: &mut MemStack,
    ) {
        let len = self.len();
        let k = part.ncols();
        for j in 0..len {
            let lblt = &self.blocks[j];
            let par = par_of(lblt.dim());
            let next = self.ranges.get(j + 1).cloned();
            let (mut cur, nxt) = two_blocks_mut(part.rb_mut(), self.ranges[j].clone(), next);
            let Some(link) = &self.links[j] else {
                lblt.solve_in_place(cur.rb_mut(), par, stack);
                continue;
            };
            lblt.forward_half(cur.rb_mut(), par, stack);
            lblt.pivot_solve_from(0, cur.rb_mut());
            let dst = match nxt {
                Some(n) => n,
                None => to_end.rb_mut(),
            };
            let dst = dst.subrows_mut(link.rows.start, link.rows.len());
            let (start, len) = link.inverse.span();
            let u = cur.rb().subrows(start, len);
            match &link.inverse {
                Inverse::Rows { v, .. } => matmul(dst, Accum::Add, v.transpose(), u, -1.0, par),
                Inverse::Cols { w, coupling, .. } => {
                    let (mut t, _) = temp_mat_zeroed::<f64, _, _>(w.ncols(), k, stack);
                    let mut t = t.as_mat_mut();
                    matmul(t.rb_mut(), Accum::Replace, w.transpose(), u, 1.0, par);
                    matmul(dst, Accum::Add, coupling.view(), t.rb(), -1.0, par);
                }
            }
        }
    }

    /// Backward sweep: `x_j = P_j^T L_j^-T (u_j - X_j x_{j+1})` for the
    /// linked blocks, with `end` the solution on the block the chain ends
    /// at; `stack` holds [`Chain::scratch`].
    pub(crate) fn backward(
        &self,
        mut part: MatMut<'_, f64>,
        end: MatRef<'_, f64>,
        par_of: &impl Fn(usize) -> Par,
        stack: &mut MemStack,
    ) {
        let k = part.ncols();
        for j in (0..self.len()).rev() {
            let Some(link) = &self.links[j] else { continue };
            let lblt = &self.blocks[j];
            let par = par_of(lblt.dim());
            let next = self.ranges.get(j + 1).cloned();
            let (mut cur, nxt) = two_blocks_mut(part.rb_mut(), self.ranges[j].clone(), next);
            let src = match &nxt {
                Some(n) => n.rb(),
                None => end,
            };
            let next_rows = src.subrows(link.rows.start, link.rows.len());
            let (start, len) = link.inverse.span();
            let (mut t, stack) = temp_mat_zeroed::<f64, _, _>(len, k, stack);
            let mut t = t.as_mat_mut();
            match &link.inverse {
                Inverse::Rows { v, .. } => matmul(t.rb_mut(), Accum::Replace, v.as_ref(), next_rows, 1.0, par),
                Inverse::Cols { w, coupling, .. } => {
                    let (mut s, _) = temp_mat_zeroed::<f64, _, _>(w.ncols(), k, &mut *stack);
                    let mut s = s.as_mat_mut();
                    matmul(s.rb_mut(), Accum::Replace, coupling.view().transpose(), next_rows, 1.0, par);
                    matmul(t.rb_mut(), Accum::Replace, w.as_ref(), s.rb(), 1.0, par);
                }
            }
            lblt.pivot_solve_from(start, t.rb_mut());
            let mut tail = cur.rb_mut().subrows_mut(start, len);
            tail -= t.rb();
            lblt.backward_half(cur, par, stack);
        }
    }

    /// Widest side of any coupling (the sweeps' temporaries).
    pub(crate) fn width(&self) -> usize {
        self.links.iter().flatten().map(|l| l.cols.len().max(l.rows.len())).max().unwrap_or(0)
    }
}

/// The workspace of a chain over `order`: sized for its largest block (the
/// factor kernel's scratch, then the link's solve and `C W`), its widest
/// sub-diagonal block (none when the couplings are all `owned`: a dense
/// one is taken as it is, any other grows the buffer when it comes) and
/// its largest carried update.
fn chain_workspace(t: &blockmat::Tridiag, order: &[usize], owned: bool, par_of: &impl Fn(usize) -> Par) -> Workspace {
    let size = |k: usize| t.diag()[k].nrows();
    let (mut stack, mut dense, mut widest) = (StackReq::EMPTY, (0, 0), 0);
    for &k in order {
        let n = size(k);
        let par = par_of(n);
        stack = stack.or(factor_block_scratch(n, par));
        // The couplings touching block k: sub[k] going down, sub[k - 1] going up.
        for s in [k.checked_sub(1), Some(k)].into_iter().flatten().filter_map(|j| t.sub().get(j)) {
            let (r, c) = s.shape();
            dense = (dense.0.max(r), dense.1.max(c));
            widest = widest.max(r).max(c);
            stack = stack.or(Link::scratch(n, r.max(c), r.max(c)));
        }
    }
    Workspace::new(stack, if owned { (0, 0) } else { dense }, widest)
}

/// Disjoint mutable views of rows `a` and (if given) `b` of `m`.
fn two_blocks_mut(
    m: MatMut<'_, f64>,
    a: Range<usize>,
    b: Option<Range<usize>>,
) -> (MatMut<'_, f64>, Option<MatMut<'_, f64>>) {
    match b {
        None => (m.subrows_mut(a.start, a.len()), None),
        Some(b) if b.start >= a.end => {
            let (head, tail) = m.split_at_row_mut(a.end);
            (head.subrows_mut(a.start, a.len()), Some(tail.subrows_mut(b.start - a.end, b.len())))
        }
        Some(b) => {
            let (head, tail) = m.split_at_row_mut(a.start);
            (tail.subrows_mut(0, a.len()), Some(head.subrows_mut(b.start, b.len())))
        }
    }
}
