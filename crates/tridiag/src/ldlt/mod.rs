//! The block LDL^T factorization of a symmetric block-tridiagonal matrix.
//!
//! With diagonal blocks `D_k`, sub-diagonal blocks `B_k` at `(k + 1, k)` and
//! `C_k = B_k[rows_k, cols_k]` their structurally non-zero part,
//!
//! ```text
//! S_0 = D_0,   S_k = P_k^T L_k Δ_k L_k^T P_k   (Bunch–Kaufman, Δ_k of 1x1 and 2x2 pivots)
//! V_k = L_k^-1 P_k E_cols C_k^T   (n_k x |rows_k|)
//! S_{k+1} = D_{k+1} - E_rows V_k^T Δ_k^-1 V_k E_rows^T
//!
//! forward:   u_k = Δ_k^-1 L_k^-1 P_k w_k,   w_{k+1} = b_{k+1} - E_rows V_k^T u_k
//! backward:  x_last = S_last^-1 w_last,
//!            x_k = P_k^T L_k^-T (u_k - Δ_k^-1 V_k x_{k+1}[rows_k])
//! ```
//!
//! which is the block LDLᵀ `[[P^T L, 0], [V^T Δ^-1, I]] diag(Δ, S_{k+1})
//! [[L^T P, Δ^-1 V], [0, I]]` applied block after block. Each `S_k` is
//! factored by pivoted Bunch–Kaufman (the blocks of interest have zero
//! diagonal entries). The update costs one triangular solve with `L_k`
//! (`n_k^2 |rows_k|`) and a symmetric product (`n_k |rows_k|^2`), not a
//! whole solve with `S_k`; the rows of `V_k` above the first pivot that
//! `cols_k` reach are zero and skipped. When the columns are the narrower
//! side (the lifted Hessian's top-down couplings), `W_k = L_k^-1 P_k
//! E_cols` (`n_k x |cols_k|`) replaces `V_k = W_k C_k^T` and the update is
//! `C_k (W_k^T Δ_k^-1 W_k) C_k^T`: the cheaper form is chosen per link.
//! By Haynsworth, `inertia(S) = sum inertia(S_k)` and
//! `det S = prod det S_k`.
//!
//! The two-sided variant runs the same recurrence from both ends (going up,
//! block `k + 1` couples to `k` through `B_k^T`) and meets at a middle block
//! `m`: `S_m = D_m - (update from above) - (update from below)`. Ordering
//! the unknowns as (top, bottom, middle) is a symmetric permutation, so
//! Haynsworth again gives the exact inertia and determinant.

pub(crate) mod certify;
pub(crate) mod chain;
mod factor;
mod solve;

use crate::dense_lblt::DenseLblt;
use crate::params::{ParPolicy, Strategy};
use crate::pivots::{BlockDiagnostics, Inertia};
use chain::Chain;

/// A factored symmetric block-tridiagonal matrix: reusable for any number of
/// right-hand sides, with log-determinant, sign and inertia for free.
#[derive(Debug, Clone)]
pub struct BlockLdlt {
    /// Blocks `0..middle`, eliminated top-down.
    top: Chain,
    /// Blocks `middle + 1..`, eliminated bottom-up (empty when sequential).
    bottom: Chain,
    /// The block both chains end at (`None` only for an empty matrix).
    middle: Option<DenseLblt>,
    middle_index: usize,
    sizes: Vec<usize>,
    offsets: Vec<usize>,
    diagnostics: Vec<BlockDiagnostics>,
    inertia: Inertia,
    log_abs_det: f64,
    det_sign: f64,
    par: ParPolicy,
    strategy: Strategy,
    norm_fro: f64,
}

impl BlockLdlt {
    /// Dimension of the matrix.
    pub fn dim(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// Sizes of the diagonal blocks.
    pub fn block_sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// `log|det S|`, `-inf` when a pivot was zero.
    pub fn log_abs_det(&self) -> f64 {
        self.log_abs_det
    }

    /// Sign of `det S`: `+1`, `-1`, or 0 when a pivot was zero.
    pub fn det_sign(&self) -> f64 {
        self.det_sign
    }

    /// Numbers of positive, negative and zero eigenvalues of `S`, with
    /// `uncertain` from [`BlockLdlt::uncertain_pivots`].
    pub fn inertia(&self) -> Inertia {
        Inertia { uncertain: self.uncertain_pivots().min(self.dim()), ..self.inertia }
    }

    /// Per-block pivot diagnostics, in block order.
    pub fn diagnostics(&self) -> &[BlockDiagnostics] {
        &self.diagnostics
    }

    /// Frobenius norm of the input `S`, used by the backward error.
    pub fn norm_fro(&self) -> f64 {
        self.norm_fro
    }

    /// The order the matrix was factored in ([`Strategy::Auto`] resolved).
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The block where the elimination ended (the last block when
    /// sequential, the meeting block when two-sided).
    pub fn middle_block(&self) -> usize {
        self.middle_index
    }

    /// Rough flops of one sweep pair (forward and backward) on `ncols`
    /// columns: about `4 n^2` per block and column, and the fixed cost of a
    /// block's half dozen kernel calls counted as 2048 more (without it a
    /// solve at L256 h8 B2, 257 blocks of 32, stayed on one thread: 0.45 ms
    /// against 0.28–0.35 ms split).
    fn sweep_flops(&self, ncols: usize) -> f64 {
        self.sizes.iter().map(|&n| (4 * n * n + 2048) as f64).sum::<f64>() * ncols as f64
    }

    /// True when the two chains of a solve on `ncols` columns run on two
    /// threads (two-sided strategy, blocks on both sides of the middle, and
    /// enough work for the policy to split).
    fn parallel_chains(&self, ncols: usize) -> bool {
        self.strategy == Strategy::TwoSided
            && self.top.len() > 0
            && self.bottom.len() > 0
            && self.par.split_work(self.sweep_flops(ncols))
    }

    /// faer parallelism of the kernels on a block of size `n`: sequential
    /// while the two chains occupy the threads, so that nothing nests.
    fn kernel_par(&self, n: usize, chains_parallel: bool) -> faer::Par {
        if chains_parallel {
            faer::Par::Seq
        } else {
            self.par.kernel_par(n)
        }
    }
}
