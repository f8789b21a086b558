//! Block elimination: one chain top-down, or two chains meeting in the middle.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::Par;

use super::chain::{factor_block, factor_block_scratch, Chain};
use super::BlockLdlt;
use crate::error::TridiagError;
use crate::input::{diagonal_block, owned_diagonal_block};
use crate::params::{FactorParams, OnSingular, Strategy};
use crate::pivots::Inertia;

impl BlockLdlt {
    /// Factors a symmetric block-tridiagonal matrix.
    ///
    /// A [`blockmat::Tridiag`] built with [`blockmat::Tridiag::symmetric`] is
    /// used as is; one with stored super-diagonal blocks is accepted when
    /// each equals the transpose of its sub-diagonal block (to
    /// `params.symmetry_tol`), else [`TridiagError::NotSymmetric`]. Diagonal
    /// blocks are checked for symmetry the same way.
    ///
    /// # Errors
    /// [`TridiagError::NonFinite`], [`TridiagError::NotSymmetric`],
    /// [`TridiagError::ShapeMismatch`] (non-square diagonal block), and
    /// [`TridiagError::Singular`] for a zero pivot unless
    /// `params.on_singular` is [`OnSingular::Continue`]. With
    /// [`Strategy::TwoSided`] the block named by `Singular` is where the
    /// two-sided elimination broke down, which may differ from the
    /// sequential one.
    pub fn factor(t: &blockmat::Tridiag, params: &FactorParams) -> Result<BlockLdlt, TridiagError> {
        BlockLdlt::eliminate(t, Vec::new(), Vec::new(), params)
    }

    /// [`BlockLdlt::factor`] of a matrix the caller gives away: its dense
    /// diagonal blocks are factored in place instead of being copied first
    /// (the copy is ~12% of factoring many small blocks). The result is the
    /// same, bit for bit, and so are the errors: every diagonal block is
    /// still checked for shape, finiteness and symmetry. Blocks of other
    /// kinds (identity, grid, ...) are densified as by `factor`. A
    /// symmetric input gives its couplings away too: one that is a single
    /// dense leaf in structural zeros ([`blockmat::Block::into_dense_leaf`])
    /// is kept as it is, not densified and copied (hinv's reduced system
    /// builds its couplings so).
    ///
    /// ```
    /// use blockmat::{Block, Tridiag};
    /// use tridiag::{BlockLdlt, FactorParams};
    /// let d = faer::mat![[2.0, 1.0], [1.0, -3.0]];
    /// let t = Tridiag::symmetric(vec![Block::dense(d.clone()), Block::dense(d)], vec![Block::identity(2)]).unwrap();
    /// let borrowed = BlockLdlt::factor(&t, &FactorParams::default()).unwrap();
    /// let owned = BlockLdlt::factor_owned(t, &FactorParams::default()).unwrap();
    /// assert_eq!(owned.log_abs_det(), borrowed.log_abs_det());
    /// assert_eq!(owned.inertia(), borrowed.inertia());
    /// ```
    ///
    /// # Errors
    /// As [`BlockLdlt::factor`].
    pub fn factor_owned(mut t: blockmat::Tridiag, params: &FactorParams) -> Result<BlockLdlt, TridiagError> {
        let owned = t.take_diag().into_iter().map(Some).collect();
        // A stored super-diagonal is checked against the sub-diagonal as
        // read from `t`, so only a symmetric input gives its couplings away.
        let owned_sub = if t.is_symmetric() { t.take_sub().into_iter().map(Some).collect() } else { Vec::new() };
        BlockLdlt::eliminate(&t, owned, owned_sub, params)
    }

    /// The elimination behind both entry points: `owned` is empty (every
    /// diagonal block is read from `t`) or holds all of them, moved out;
    /// `owned_sub` likewise for the sub-diagonal blocks.
    fn eliminate(
        t: &blockmat::Tridiag,
        mut owned: Vec<Option<blockmat::Block>>,
        mut owned_sub: Vec<Option<blockmat::Block>>,
        params: &FactorParams,
    ) -> Result<BlockLdlt, TridiagError> {
        let nb = t.len();
        let sizes: Vec<usize> = t.diag().iter().map(|b| b.nrows()).collect();
        let offsets = blockmat::offsets(&sizes);
        let strategy = params.strategy.resolve(nb);
        let mid = match strategy {
            Strategy::TwoSided => balanced_middle(&sizes),
            _ => nb.saturating_sub(1),
        };
        let mut out = BlockLdlt {
            top: Chain::default(),
            bottom: Chain::default(),
            middle: None,
            middle_index: mid,
            sizes,
            offsets,
            diagnostics: Vec::with_capacity(nb),
            inertia: Inertia::default(),
            log_abs_det: 0.0,
            det_sign: 1.0,
            par: params.par,
            strategy,
            norm_fro: 0.0,
        };
        if nb == 0 {
            return Ok(out);
        }
        // The chains' work: about `n^3` per block for its factorization and
        // the update it carries.
        let chain_flops: f64 = out.sizes.iter().map(|&n| (n as f64).powi(3)).sum();
        let parallel = strategy == Strategy::TwoSided && mid > 0 && mid + 1 < nb && params.par.split_work(chain_flops);
        let kernel = |n: usize| if parallel { Par::Seq } else { params.par.kernel_par(n) };
        let top_order: Vec<usize> = (0..mid).collect();
        let bottom_order: Vec<usize> = (mid + 1..nb).rev().collect();
        // The owned blocks split like the work: the two chains (on two
        // threads when parallel) each take theirs, in their elimination order.
        let top_len = mid.min(owned.len());
        let (owned_top, rest) = owned.split_at_mut(top_len);
        let (owned_mid, owned_bottom) = rest.split_at_mut(rest.len().min(1));
        owned_bottom.reverse();
        // The top chain couples through sub[0..mid], the bottom one (going
        // up) through sub[mid..], last first.
        let top_subs = mid.min(owned_sub.len());
        let (sub_top, sub_bottom) = owned_sub.split_at_mut(top_subs);
        sub_bottom.reverse();
        let offsets = &out.offsets;
        let mut run_top = || Chain::factor(t, owned_top, sub_top, &top_order, true, offsets, 0, kernel, params);
        let mut run_bottom = || {
            Chain::factor(t, owned_bottom, sub_bottom, &bottom_order, false, offsets, offsets[mid + 1], kernel, params)
        };
        let (top, bottom) = if parallel { rayon::join(run_top, run_bottom) } else { (run_top(), run_bottom()) };
        let ((top, top_out), (bottom, bottom_out)) = (top?, bottom?);

        let (d, scales) = match owned_mid.first_mut().and_then(Option::take) {
            Some(b) => owned_diagonal_block(b, mid, params.symmetry_tol)?,
            None => diagonal_block(t, mid, params.symmetry_tol)?,
        };
        let mut norm = top_out.norm;
        norm.merge(bottom_out.norm);
        norm.add(scales.norm, 1.0);
        let par = params.par.kernel_par(d.nrows());
        let pending = top_out.pending.iter().chain(&bottom_out.pending).map(|(rows, u)| (rows.clone(), u.as_ref()));
        let mut mem = MemBuffer::new(factor_block_scratch(d.nrows(), par));
        let (middle, mid_diag) = factor_block(d, scales.max_abs, pending, mid, par, params, MemStack::new(&mut mem))?;

        out.diagnostics.extend(top_out.diagnostics);
        out.diagnostics.push(mid_diag);
        out.diagnostics.extend(bottom_out.diagnostics.into_iter().rev());
        for d in &out.diagnostics {
            out.inertia += d.inertia;
            out.log_abs_det += d.log_abs_det;
            out.det_sign *= d.det_sign;
        }
        if out.inertia.zero > 0 {
            out.log_abs_det = f64::NEG_INFINITY;
            out.det_sign = 0.0;
        }
        debug_assert!(params.on_singular == OnSingular::Continue || out.inertia.zero == 0);
        out.top = top;
        out.bottom = bottom;
        out.middle = Some(middle);
        out.norm_fro = norm.value();
        Ok(out)
    }
}

/// The meeting block that best balances the factorization work (`~ n_k^3`)
/// of the two chains.
fn balanced_middle(sizes: &[usize]) -> usize {
    let cost: Vec<f64> = sizes.iter().map(|&n| (n as f64).powi(3)).collect();
    let total: f64 = cost.iter().sum();
    let mut above = 0.0;
    let mut best = (f64::INFINITY, 0);
    for (m, c) in cost.iter().enumerate() {
        let below = total - above - c;
        let imbalance = (above - below).abs();
        if imbalance < best.0 {
            best = (imbalance, m);
        }
        above += c;
    }
    best.1
}
