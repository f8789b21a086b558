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
use faer::{Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::dense_lblt::{factor_in_place, solve_in_place, DenseLblt};
use crate::error::TridiagError;
use crate::input::check_symmetric;
use crate::ldlt::certify::{local, margin, uncertain};
use crate::ldlt::chain::{check_zero_pivot, factor_block_scratch, pivot_policy};
use crate::params::{FactorParams, ParPolicy};
use crate::pivots::{scan, BlockDiagnostics, Inertia};
use crate::small_lblt;
use crate::workspace::grow;

/// A factored symmetric block-diagonal matrix: inertia, `log|det|` and
/// solves block by block.
///
/// Every block's factors live in one buffer, and the pivot structures,
/// permutations and pivots of all blocks in three more: a layer of hinv
/// has one block per output unit, a few dozen numbers each, and a few
/// allocations per block cost more than factoring it.
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
    /// Block `k`'s factors (column-major, `n_k x n_k`) at `starts[k].0`; a
    /// 1x1 block holds its (possibly replaced) pivot.
    factors: Vec<f64>,
    /// Sub-diagonals of the blocks' `B`, block `k`'s at `starts[k].1`.
    subdiag: Vec<f64>,
    /// Each block's permutation then its inverse, block `k`'s at `2 starts[k].1`.
    perms: Vec<usize>,
    /// The pivots' eigenvalues, block `k`'s at `starts[k].1`.
    pivots: Vec<f64>,
    /// `(sum of n_i^2, sum of n_i)` over the blocks before `k`; one more
    /// entry than blocks.
    starts: Vec<(usize, usize)>,
    diagnostics: Vec<BlockDiagnostics>,
    inertia: Inertia,
    log_abs_det: f64,
    det_sign: f64,
}

impl BlockDiagLdlt {
    /// Factors every block (only the lower triangles are read after the
    /// symmetry check), in parallel across blocks. The blocks are copied
    /// into one buffer; [`BlockDiagLdlt::factor_packed`] takes them packed.
    ///
    /// # Errors
    /// [`TridiagError::ShapeMismatch`] for a non-square block,
    /// [`TridiagError::NonFinite`], [`TridiagError::NotSymmetric`] (to
    /// `params.symmetry_tol`), and [`TridiagError::Singular`] for a zero
    /// pivot unless `params.on_singular` is [`crate::OnSingular::Continue`];
    /// `block` in them is the index in `blocks`.
    pub fn factor(blocks: Vec<Mat<f64>>, params: &FactorParams) -> Result<BlockDiagLdlt, TridiagError> {
        let mut sizes = Vec::with_capacity(blocks.len());
        for m in &blocks {
            let (r, c) = m.shape();
            if r != c {
                return Err(TridiagError::ShapeMismatch {
                    op: "factor (diagonal block must be square)",
                    expected: (r, r),
                    found: (r, c),
                });
            }
            sizes.push(r);
        }
        let mut data = Vec::with_capacity(sizes.iter().map(|n| n * n).sum());
        for m in &blocks {
            for j in 0..m.ncols() {
                data.extend(m.col(j).iter().copied());
            }
        }
        drop(blocks);
        BlockDiagLdlt::factor_packed(data, &sizes, params)
    }

    /// [`BlockDiagLdlt::factor`] for blocks stored back to back in `data`:
    /// block `k` is `sizes[k] x sizes[k]`, column-major, right after block
    /// `k - 1`. They are factored in place.
    ///
    /// ```
    /// use tridiag::{BlockDiagLdlt, FactorParams};
    /// // [[2, 1], [1, -3]] and [[4]].
    /// let f = BlockDiagLdlt::factor_packed(vec![2.0, 1.0, 1.0, -3.0, 4.0], &[2, 1], &FactorParams::default())
    ///     .unwrap();
    /// assert_eq!((f.inertia().positive, f.inertia().negative), (2, 1));
    /// ```
    ///
    /// # Errors
    /// As [`BlockDiagLdlt::factor`]; [`TridiagError::ShapeMismatch`] when
    /// `data` does not hold `sum sizes[k]^2` numbers.
    pub fn factor_packed(
        mut data: Vec<f64>,
        sizes: &[usize],
        params: &FactorParams,
    ) -> Result<BlockDiagLdlt, TridiagError> {
        let mut starts = Vec::with_capacity(sizes.len() + 1);
        let (mut sq, mut lin) = (0usize, 0usize);
        for &n in sizes {
            starts.push((sq, lin));
            // Sizes no buffer could hold must not wrap around into a
            // plausible total.
            sq = n.checked_mul(n).and_then(|n2| sq.checked_add(n2)).unwrap_or(usize::MAX);
            lin = lin.saturating_add(n);
        }
        starts.push((sq, lin));
        if data.len() != sq {
            return Err(TridiagError::ShapeMismatch {
                op: "factor_packed (numbers for the blocks' sizes)",
                expected: (sq, 1),
                found: (data.len(), 1),
            });
        }
        let mut subdiag = vec![0.0; lin];
        let mut perms = vec![0usize; 2 * lin];
        let mut pivots = vec![0.0; lin];
        // One scratch for the largest block, per thread: nothing but the
        // factors is allocated per block.
        let req = sizes.iter().fold(StackReq::EMPTY, |r, &n| r.or(factor_block_scratch(n, Par::Seq)));
        // Rayon only pays when there is work to split: a few hundred tiny
        // blocks cost less than the task overhead. `Seq` means one thread.
        let work: usize = sizes.iter().map(|n| n.pow(3)).sum();
        let mut diagnostics = Vec::with_capacity(sizes.len());
        if work > 1 << 18 && params.par != ParPolicy::Seq && rayon::current_num_threads() > 1 {
            let mut pieces = Vec::with_capacity(sizes.len());
            let mut bufs = Buffers { data: &mut data, subdiag: &mut subdiag, perms: &mut perms, pivots: &mut pivots };
            for (k, &n) in sizes.iter().enumerate() {
                pieces.push((k, bufs.split_off(n)));
            }
            let done: Vec<_> = pieces
                .into_par_iter()
                .map_init(|| MemBuffer::new(req), |mem, (k, b)| factor_one(k, b, params, MemStack::new(mem)))
                .collect();
            for r in done {
                diagnostics.push(r?);
            }
        } else {
            let mut mem = MemBuffer::new(req);
            let mut bufs = Buffers { data: &mut data, subdiag: &mut subdiag, perms: &mut perms, pivots: &mut pivots };
            for (k, &n) in sizes.iter().enumerate() {
                diagnostics.push(factor_one(k, bufs.split_off(n), params, MemStack::new(&mut mem))?);
            }
        }
        let mut out = BlockDiagLdlt {
            factors: data,
            subdiag,
            perms,
            pivots,
            starts,
            diagnostics: Vec::new(),
            inertia: Inertia::default(),
            log_abs_det: 0.0,
            det_sign: 1.0,
        };
        for d in &diagnostics {
            out.inertia += d.inertia;
            out.log_abs_det += d.log_abs_det;
            out.det_sign *= d.det_sign;
        }
        out.diagnostics = diagnostics;
        if out.inertia.zero > 0 {
            out.log_abs_det = f64::NEG_INFINITY;
            out.det_sign = 0.0;
        }
        Ok(out)
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.diagnostics.len()
    }

    /// True when there is no block.
    pub fn is_empty(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// Numbers of positive, negative and zero eigenvalues, with `uncertain`
    /// the pivots within their block's rounding bound (the same local bound
    /// as [`crate::BlockLdlt::uncertain_pivots`]; the blocks are exact
    /// inputs, so nothing is inherited).
    pub fn inertia(&self) -> Inertia {
        let uncertain = self.diagnostics.iter().enumerate().map(|(k, d)| uncertain(self.pivots(k), local(d))).sum();
        Inertia { uncertain, ..self.inertia }
    }

    /// How far the smallest pivot clears its block's rounding bound; see
    /// [`crate::BlockLdlt::pivot_margin`].
    pub fn pivot_margin(&self) -> f64 {
        self.diagnostics.iter().enumerate().map(|(k, d)| margin(self.pivots(k), local(d))).fold(f64::INFINITY, f64::min)
    }

    /// `log|det|` (`-inf` when a pivot was zero).
    pub fn log_abs_det(&self) -> f64 {
        self.log_abs_det
    }

    /// Sign of the determinant (0 when a pivot was zero).
    pub fn det_sign(&self) -> f64 {
        self.det_sign
    }

    /// Per-block pivot diagnostics (their `pivots` are empty: see
    /// [`BlockDiagLdlt::pivots`]).
    pub fn diagnostics(&self) -> &[BlockDiagnostics] {
        &self.diagnostics
    }

    /// The eigenvalues of block `k`'s 1x1 and 2x2 pivots, signed, in pivot
    /// order (before any zero pivot was replaced); empty when `k` is out
    /// of range.
    pub fn pivots(&self, k: usize) -> &[f64] {
        match (self.starts.get(k), self.diagnostics.get(k)) {
            (Some(&(_, lin)), Some(d)) => &self.pivots[lin..lin + d.size],
            _ => &[],
        }
    }

    /// `out <- B_k^-1`, block `k`'s inverse (`out` of the block's size).
    /// Up to 32 rows it is written out from the factors, about half the
    /// work of solving with the identity (4.2k against 8.1k instructions
    /// for an 8x8 block, `one_solve 256 8 2` under callgrind); above, it is
    /// that solve.
    ///
    /// # Errors
    /// As [`BlockDiagLdlt::solve_block_in_place`], for `out`'s shape too;
    /// `out` is left as it was.
    ///
    /// ```
    /// use tridiag::{BlockDiagLdlt, FactorParams};
    /// let f = BlockDiagLdlt::factor_packed(vec![2.0, 1.0, 1.0, -3.0], &[2], &FactorParams::default()).unwrap();
    /// let mut inv = faer::Mat::<f64>::zeros(2, 2);
    /// f.inverse_into(0, inv.as_mut()).unwrap();
    /// let s = faer::mat![[2.0, 1.0], [1.0, -3.0]];
    /// assert!((&inv * &s - faer::Mat::<f64>::identity(2, 2)).norm_max() < 1e-15);
    /// ```
    pub fn inverse_into(&self, k: usize, mut out: MatMut<'_, f64>) -> Result<(), TridiagError> {
        // Every check before `out` is written: an error leaves it as it was.
        let n = self.block(k, "inverse_into (block index)")?.size;
        if out.shape() != (n, n) {
            return Err(TridiagError::ShapeMismatch { op: "inverse_into", expected: (n, n), found: out.shape() });
        }
        self.check_solvable(k)?;
        if n <= 1 || n > small_lblt::SMALL_MAX {
            out.fill(0.0);
            out.as_mut().diagonal_mut().column_vector_mut().fill(1.0);
            return self.solve_block_in_place(k, out);
        }
        let (factors, subdiag, perms) = self.factors_of(k);
        small_lblt::inverse(factors, subdiag, perms, out);
        Ok(())
    }

    /// `rhs <- B_k^-1 rhs` for block `k`.
    ///
    /// # Errors
    /// [`TridiagError::ShapeMismatch`] when `k` is out of range or `rhs` has
    /// not the block's size in rows, [`TridiagError::SolveSingular`] when the
    /// block has a zero pivot.
    pub fn solve_block_in_place(&self, k: usize, mut rhs: MatMut<'_, f64>) -> Result<(), TridiagError> {
        let n = self.block(k, "solve_block_in_place (block index)")?.size;
        if rhs.nrows() != n {
            return Err(TridiagError::ShapeMismatch {
                op: "solve_block_in_place",
                expected: (n, rhs.ncols()),
                found: (rhs.nrows(), rhs.ncols()),
            });
        }
        self.check_solvable(k)?;
        let (factors, subdiag, perms) = self.factors_of(k);
        if n == 1 {
            rhs *= faer::Scale(1.0 / factors[(0, 0)]);
            return Ok(());
        }
        SOLVE_SCRATCH.with_borrow_mut(|mem| {
            let stack = grow(mem, DenseLblt::solve_scratch(n, rhs.ncols(), Par::Seq));
            solve_in_place(factors, subdiag, perms, rhs, Par::Seq, stack);
        });
        Ok(())
    }

    /// Block `k`'s diagnostics, or the error naming `op` when `k` is out
    /// of range.
    fn block(&self, k: usize, op: &'static str) -> Result<&BlockDiagnostics, TridiagError> {
        self.diagnostics.get(k).ok_or(TridiagError::ShapeMismatch { op, expected: (self.len(), 0), found: (k, 0) })
    }

    /// The error of a solve with block `k` (in range) when it has a zero pivot.
    fn check_solvable(&self, k: usize) -> Result<(), TridiagError> {
        match self.diagnostics[k].inertia.zero {
            0 => Ok(()),
            zero_pivots => Err(TridiagError::SolveSingular { zero_pivots, first_block: k }),
        }
    }

    /// Block `k`'s (in range) factors, sub-diagonal of `B` and
    /// permutations, as [`factor_in_place`] wrote them.
    fn factors_of(&self, k: usize) -> (MatRef<'_, f64>, &[f64], &[usize]) {
        let (n, (sq, lin)) = (self.diagnostics[k].size, self.starts[k]);
        (
            MatRef::from_column_major_slice(&self.factors[sq..sq + n * n], n, n),
            &self.subdiag[lin..lin + n],
            &self.perms[2 * lin..2 * (lin + n)],
        )
    }
}

thread_local! {
    /// Scratch of [`BlockDiagLdlt::solve_block_in_place`], kept per thread
    /// (it grows to the largest block times right-hand side solved there):
    /// callers solve block by block, thousands of small solves per use,
    /// and allocating each one's scratch cost more than the solve.
    static SOLVE_SCRATCH: RefCell<MemBuffer> = RefCell::new(MemBuffer::new(StackReq::EMPTY));
}

/// One block's shares of the packed buffers of [`BlockDiagLdlt`].
struct Buffers<'a> {
    data: &'a mut [f64],
    subdiag: &'a mut [f64],
    perms: &'a mut [usize],
    pivots: &'a mut [f64],
}

impl<'a> Buffers<'a> {
    /// The shares of the next block, of size `n`; `self` keeps the rest.
    fn split_off(&mut self, n: usize) -> Buffers<'a> {
        let (data, rest) = std::mem::take(&mut self.data).split_at_mut(n * n);
        self.data = rest;
        let (subdiag, rest) = std::mem::take(&mut self.subdiag).split_at_mut(n);
        self.subdiag = rest;
        let (perms, rest) = std::mem::take(&mut self.perms).split_at_mut(2 * n);
        self.perms = rest;
        let (pivots, rest) = std::mem::take(&mut self.pivots).split_at_mut(n);
        self.pivots = rest;
        Buffers { data, subdiag, perms, pivots }
    }
}

/// The checks of a small packed block (`n x n`, column-major, `n` at most
/// [`small_lblt::SMALL_MAX`]) in one pass over its pairs of entries: finite
/// ([`TridiagError::NonFinite`]), then symmetric to `symmetry_tol` times its
/// largest entry ([`TridiagError::NotSymmetric`]), which it returns. The
/// same errors, in the same order, as `is_all_finite` then
/// [`check_symmetric`], in one call instead of three (`one_solve 256 8 2`
/// under callgrind: 1.3M fewer instructions over its 2049 units of 8).
fn small_checks(a: &[f64], n: usize, k: usize, symmetry_tol: f64) -> Result<f64, TridiagError> {
    let (mut big, mut dev, mut finite) = (0.0f64, 0.0f64, true);
    for j in 0..n {
        let d = a[j * n + j];
        finite &= d.is_finite();
        big = if d.abs() > big { d.abs() } else { big };
        for i in j + 1..n {
            // a[i, j] below the diagonal against its mirror a[j, i].
            let (x, y) = (a[j * n + i], a[i * n + j]);
            finite &= x.is_finite() & y.is_finite();
            let m = x.abs().max(y.abs());
            big = if m > big { m } else { big };
            let e = (x - y).abs();
            dev = if e > dev { e } else { dev };
        }
    }
    if !finite {
        return Err(TridiagError::NonFinite { what: "diagonal", block: k });
    }
    // A 1x1 block has no symmetry to check (nor had it before this pass,
    // whatever `symmetry_tol`).
    let tolerance = symmetry_tol * big;
    if n > 1 && dev > tolerance {
        return Err(TridiagError::NotSymmetric { row: k, col: k, deviation: dev, tolerance });
    }
    Ok(big)
}

/// Checks and factors block `k` in place, in its shares of the buffers.
fn factor_one(
    k: usize,
    b: Buffers<'_>,
    params: &FactorParams,
    stack: &mut MemStack,
) -> Result<BlockDiagnostics, TridiagError> {
    let Buffers { data: a, subdiag, perms, pivots } = b;
    let n = subdiag.len();
    let checked = if n <= small_lblt::SMALL_MAX { Some(small_checks(a, n, k, params.symmetry_tol)?) } else { None };
    let mut m = MatMut::from_column_major_slice_mut(a, n, n);
    if checked.is_none() && !m.is_all_finite() {
        return Err(TridiagError::NonFinite { what: "diagonal", block: k });
    }
    if n != 1 {
        let scale = match checked {
            Some(scale) => scale,
            None => check_symmetric(m.as_ref(), k, params.symmetry_tol)?,
        };
        let (threshold, replace) = pivot_policy(params, n, scale);
        let (mut diag, zero) = factor_in_place(m, subdiag, perms, pivots, Par::Seq, threshold, replace, stack);
        diag.scale = scale;
        check_zero_pivot(zero, k, threshold, params)?;
        return Ok(diag);
    }
    // A 1x1 block: no faer call (hinv's parameters are often decoupled
    // one by one, thousands of them).
    let scale = m[(0, 0)].abs();
    let (threshold, replace) = pivot_policy(params, 1, scale);
    let (mut d, mut e) = ([m[(0, 0)]], [0.0]);
    let (mut diag, zero) = scan(&mut d, &mut e, threshold, replace, pivots);
    diag.scale = scale;
    check_zero_pivot(zero, k, threshold, params)?;
    m[(0, 0)] = d[0];
    Ok(diag)
}
