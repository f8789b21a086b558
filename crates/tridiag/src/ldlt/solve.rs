//! Forward and backward block sweeps over the stored factors.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::reborrow::*;
use faer::{Mat, MatMut, MatRef};

use super::BlockLdlt;
use crate::dense_lblt::DenseLblt;
use crate::error::TridiagError;

/// Below this many columns per thread, splitting a right-hand side across
/// rayon costs more in scheduling and scratch than it saves.
const MIN_COLS_PER_TASK: usize = 4;

impl BlockLdlt {
    /// Overwrites `rhs` (`dim x k`, any `k`) with `S^-1 rhs`.
    ///
    /// Columns are split across rayon threads when the policy is
    /// [`crate::ParPolicy::Auto`], the two-sided chains are not already
    /// running in parallel, every block is small enough for its kernels to
    /// run sequentially (so threads never nest), and the sweeps have work
    /// worth a thread ([`crate::ParPolicy::split_work`]).
    ///
    /// # Errors
    /// [`TridiagError::ShapeMismatch`] when `rhs` has not `dim` rows,
    /// [`TridiagError::NonFinite`] for NaN or infinite entries,
    /// [`TridiagError::SolveSingular`] when the factorization has zero pivots.
    pub fn solve_in_place(&self, rhs: MatMut<'_, f64>) -> Result<(), TridiagError> {
        self.check_rhs("solve_in_place", rhs.rb())?;
        let max_block = self.sizes.iter().copied().max().unwrap_or(0);
        let threads = rayon::current_num_threads();
        let flops = self.sweep_flops(rhs.ncols());
        if !self.parallel_chains(rhs.ncols())
            && self.par.split_columns(max_block, flops)
            && rhs.ncols() >= 2 * MIN_COLS_PER_TASK
        {
            let chunk = rhs.ncols().div_ceil(threads).max(MIN_COLS_PER_TASK);
            self.solve_split(rhs, chunk);
        } else {
            self.solve_columns(rhs);
        }
        Ok(())
    }

    /// `S^-1 rhs` as a new matrix; see [`BlockLdlt::solve_in_place`].
    pub fn solve(&self, rhs: MatRef<'_, f64>) -> Result<Mat<f64>, TridiagError> {
        let mut x = rhs.to_owned();
        self.solve_in_place(x.as_mut())?;
        Ok(x)
    }

    fn check_rhs(&self, op: &'static str, rhs: MatRef<'_, f64>) -> Result<(), TridiagError> {
        if rhs.nrows() != self.dim() {
            return Err(TridiagError::ShapeMismatch {
                op,
                expected: (self.dim(), rhs.ncols()),
                found: (rhs.nrows(), rhs.ncols()),
            });
        }
        if let Some(first_block) = self.diagnostics.iter().position(|d| d.inertia.zero > 0) {
            return Err(TridiagError::SolveSingular { zero_pivots: self.inertia.zero, first_block });
        }
        for k in 0..self.sizes.len() {
            if !rhs.subrows(self.offsets[k], self.sizes[k]).is_all_finite() {
                return Err(TridiagError::NonFinite { what: "right-hand side", block: k });
            }
        }
        Ok(())
    }

    /// Recursive halving into chunks of at most `chunk` columns.
    fn solve_split(&self, rhs: MatMut<'_, f64>, chunk: usize) {
        if rhs.ncols() <= chunk {
            self.solve_columns(rhs);
            return;
        }
        let mid = rhs.ncols() / 2;
        let (left, right) = rhs.split_at_col_mut(mid);
        rayon::join(|| self.solve_split(left, chunk), || self.solve_split(right, chunk));
    }

    /// The sweeps on one set of columns: both chains forward, the middle
    /// block, both chains backward.
    fn solve_columns(&self, rhs: MatMut<'_, f64>) {
        let m = rhs.ncols();
        let Some(middle) = &self.middle else { return };
        if m == 0 {
            return;
        }
        let chains_parallel = self.parallel_chains(m);
        let kernel = |n: usize| self.kernel_par(n, chains_parallel);
        let mid = self.middle_index;
        let (top_part, rest) = rhs.split_at_row_mut(self.offsets[mid]);
        let (mut mid_part, bottom_part) = rest.split_at_row_mut(self.sizes[mid]);
        let n_mid = self.sizes[mid];

        // Each chain's contribution to the middle block goes to its own
        // buffer, so the two forward sweeps share no memory.
        let forward = |chain: &super::chain::Chain, part: MatMut<'_, f64>| {
            let mut to_mid = Mat::<f64>::zeros(n_mid, m);
            let mut mem = MemBuffer::new(chain.scratch(m, &kernel));
            chain.forward(part, to_mid.as_mut(), &kernel, MemStack::new(&mut mem));
            to_mid
        };
        let (mut top_part, mut bottom_part) = (top_part, bottom_part);
        let (from_top, from_bottom) = if chains_parallel {
            rayon::join(|| forward(&self.top, top_part.rb_mut()), || forward(&self.bottom, bottom_part.rb_mut()))
        } else {
            (forward(&self.top, top_part.rb_mut()), forward(&self.bottom, bottom_part.rb_mut()))
        };
        mid_part += &from_top;
        mid_part += &from_bottom;
        let par = kernel(n_mid);
        let mut mem = MemBuffer::new(DenseLblt::solve_scratch(n_mid, m, par));
        middle.solve_in_place(mid_part.rb_mut(), par, MemStack::new(&mut mem));

        let end = mid_part.rb();
        let backward = |chain: &super::chain::Chain, part: MatMut<'_, f64>| {
            let mut mem = MemBuffer::new(chain.scratch(m, &kernel));
            chain.backward(part, end, &kernel, MemStack::new(&mut mem));
        };
        if chains_parallel {
            rayon::join(|| backward(&self.top, top_part), || backward(&self.bottom, bottom_part));
        } else {
            backward(&self.top, top_part);
            backward(&self.bottom, bottom_part);
        }
    }
}
