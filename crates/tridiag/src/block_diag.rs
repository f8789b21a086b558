//! Independent symmetric blocks: a block-diagonal matrix, each block
//! factored by Bunch–Kaufman (a 1x1 block is its own pivot).
//!
//! This is the special case of [`crate::BlockLdlt`] without couplings, for
//! callers that eliminate a block-diagonal part of a larger system first
//! (hinv eliminates each layer's parameters unit by unit before the
//! block-tridiagonal rest). Many small blocks are the common case, so no
//! `blockmat` input is built and the blocks are factored in parallel.

use std::cell::RefCell;

use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::{Mat, MatMut, Par};
use rayon::prelude::*;

use crate::dense_lblt::DenseLblt;
use crate::error::TridiagError;
use crate::input::check_symmetric;
use crate::ldlt::certify::local;
use crate::ldlt::chain::{check_zero_pivot, factor_block, factor_block_scratch, pivot_policy};
use crate::params::FactorParams;
use crate::pivots::{scan, BlockDiagnostics, Inertia};
use crate::workspace::grow;

/// One factored block.
#[derive(Debug, Clone)]
enum Factor {
    /// A 1x1 block: its (possibly replaced) pivot.
    Scalar(f64),
    Dense(DenseLblt),
}

/// A factored symmetric block-diagonal matrix: inertia, `log|det|` and
/// solves block by block.
///
/// ```
/// use faer::mat;
/// use tridiag::{BlockDiagLdlt, FactorParams};
/// let blocks = vec![mat![[2.0, 1.0], [1.0, -3.0]], mat![[4.0]]];
/// let f = BlockDiagLdlt::factor(blocks, &FactorParams::default()).unwrap();
/// let i = f.inertia();
/// assert_eq!((i.positive, i.negative, i.uncertain), (2, 1, 0));
/// let mut rhs = mat![[8.0]];
/// f.solve_block_in_place(1, rhs.as_mut()).unwrap();
/// assert_eq!(rhs[(0, 0)], 2.0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct BlockDiagLdlt {
    factors: Vec<Factor>,
    diagnostics: Vec<BlockDiagnostics>,
    inertia: Inertia,
    log_abs_det: f64,
    det_sign: f64,
}

impl BlockDiagLdlt {
    /// Factors every block (only the lower triangles are read after the
    /// symmetry check), in parallel across blocks.
    ///
    /// # Errors
    /// [`TridiagError::ShapeMismatch`] for a non-square block,
    /// [`TridiagError::NonFinite`], [`TridiagError::NotSymmetric`] (to
    /// `params.symmetry_tol`), and [`TridiagError::Singular`] for a zero
    /// pivot unless `params.on_singular` is [`crate::OnSingular::Continue`];
    /// `block` in them is the index in `blocks`.
    pub fn factor(blocks: Vec<Mat<f64>>, params: &FactorParams) -> Result<BlockDiagLdlt, TridiagError> {
        // One scratch for the largest block, per thread: nothing but the
        // factors is allocated per block.
        let req = blocks.iter().fold(StackReq::EMPTY, |r, m| r.or(factor_block_scratch(m.nrows(), Par::Seq)));
        let one = |mem: &mut MemBuffer, (k, m): (usize, Mat<f64>)| factor_one(k, m, params, MemStack::new(mem));
        // Rayon only pays when there is work to split: a few hundred tiny
        // blocks cost less than the task overhead.
        let work: usize = blocks.iter().map(|m| m.nrows().pow(3)).sum();
        let done: Vec<_> = if work > 1 << 18 && rayon::current_num_threads() > 1 {
            blocks.into_par_iter().enumerate().map_init(|| MemBuffer::new(req), one).collect()
        } else {
            let mut mem = MemBuffer::new(req);
            blocks.into_iter().enumerate().map(|b| one(&mut mem, b)).collect()
        };
        let mut out = BlockDiagLdlt { det_sign: 1.0, ..BlockDiagLdlt::default() };
        for r in done {
            let (f, d) = r?;
            out.inertia += d.inertia;
            out.log_abs_det += d.log_abs_det;
            out.det_sign *= d.det_sign;
            out.factors.push(f);
            out.diagnostics.push(d);
        }
        if out.inertia.zero > 0 {
            out.log_abs_det = f64::NEG_INFINITY;
            out.det_sign = 0.0;
        }
        Ok(out)
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.factors.len()
    }

    /// True when there is no block.
    pub fn is_empty(&self) -> bool {
        self.factors.is_empty()
    }

    /// Numbers of positive, negative and zero eigenvalues, with `uncertain`
    /// the pivots within their block's rounding bound (the same local bound
    /// as [`crate::BlockLdlt::uncertain_pivots`]; the blocks are exact
    /// inputs, so nothing is inherited).
    pub fn inertia(&self) -> Inertia {
        let uncertain = self
            .diagnostics
            .iter()
            .map(|d| {
                let e = local(d);
                d.pivots.iter().filter(|m| m.abs().partial_cmp(&e) != Some(std::cmp::Ordering::Greater)).count()
            })
            .sum();
        Inertia { uncertain, ..self.inertia }
    }

    /// How far the smallest pivot clears its block's rounding bound; see
    /// [`crate::BlockLdlt::pivot_margin`].
    pub fn pivot_margin(&self) -> f64 {
        self.diagnostics
            .iter()
            .flat_map(|d| {
                let e = local(d);
                d.pivots.iter().map(move |p| p.abs() / e)
            })
            .fold(f64::INFINITY, |m, r| if r.is_nan() { 0.0 } else { m.min(r) })
    }

    /// `log|det|` (`-inf` when a pivot was zero).
    pub fn log_abs_det(&self) -> f64 {
        self.log_abs_det
    }

    /// Sign of the determinant (0 when a pivot was zero).
    pub fn det_sign(&self) -> f64 {
        self.det_sign
    }

    /// Per-block pivot diagnostics.
    pub fn diagnostics(&self) -> &[BlockDiagnostics] {
        &self.diagnostics
    }

    /// `rhs <- B_k^-1 rhs` for block `k`.
    ///
    /// # Errors
    /// [`TridiagError::ShapeMismatch`] when `k` is out of range or `rhs` has
    /// not the block's size in rows, [`TridiagError::SolveSingular`] when the
    /// block has a zero pivot.
    pub fn solve_block_in_place(&self, k: usize, mut rhs: MatMut<'_, f64>) -> Result<(), TridiagError> {
        let (Some(f), Some(d)) = (self.factors.get(k), self.diagnostics.get(k)) else {
            return Err(TridiagError::ShapeMismatch {
                op: "solve_block_in_place (block index)",
                expected: (self.len(), 0),
                found: (k, 0),
            });
        };
        if rhs.nrows() != d.size {
            return Err(TridiagError::ShapeMismatch {
                op: "solve_block_in_place",
                expected: (d.size, rhs.ncols()),
                found: (rhs.nrows(), rhs.ncols()),
            });
        }
        if d.inertia.zero > 0 {
            return Err(TridiagError::SolveSingular { zero_pivots: d.inertia.zero, first_block: k });
        }
        match f {
            Factor::Scalar(v) => rhs *= faer::Scale(1.0 / v),
            Factor::Dense(l) => SOLVE_SCRATCH.with_borrow_mut(|mem| {
                let stack = grow(mem, DenseLblt::solve_scratch(l.dim(), rhs.ncols(), Par::Seq));
                l.solve_in_place(rhs, Par::Seq, stack);
            }),
        }
        Ok(())
    }
}

thread_local! {
    /// Scratch of [`BlockDiagLdlt::solve_block_in_place`], kept per thread
    /// (it grows to the largest block times right-hand side solved there):
    /// callers solve block by block, thousands of small solves per use,
    /// and allocating each one's scratch cost more than the solve.
    static SOLVE_SCRATCH: RefCell<MemBuffer> = RefCell::new(MemBuffer::new(StackReq::EMPTY));
}

/// Checks and factors block `k`.
fn factor_one(
    k: usize,
    m: Mat<f64>,
    params: &FactorParams,
    stack: &mut MemStack,
) -> Result<(Factor, BlockDiagnostics), TridiagError> {
    let (r, c) = m.shape();
    if r != c {
        return Err(TridiagError::ShapeMismatch {
            op: "factor (diagonal block must be square)",
            expected: (r, r),
            found: (r, c),
        });
    }
    if !m.is_all_finite() {
        return Err(TridiagError::NonFinite { what: "diagonal", block: k });
    }
    if r != 1 {
        let big = check_symmetric(m.as_ref(), k, params.symmetry_tol)?;
        let (l, d) = factor_block(m, big, None, k, Par::Seq, params, stack)?;
        return Ok((Factor::Dense(l), d));
    }
    // A 1x1 block: no faer call (hinv's parameters are often decoupled
    // one by one, thousands of them).
    let scale = m[(0, 0)].abs();
    let (threshold, replace) = pivot_policy(params, 1, scale);
    let (mut d, mut e) = ([m[(0, 0)]], [0.0]);
    let (mut diag, zero) = scan(&mut d, &mut e, threshold, replace);
    diag.scale = scale;
    check_zero_pivot(zero, k, threshold, params)?;
    Ok((Factor::Scalar(d[0]), diag))
}
