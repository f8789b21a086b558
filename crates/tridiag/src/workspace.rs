//! Scratch memory of one elimination, sized once for its largest block and
//! reused by every block, so that a factorization allocates nothing per
//! block beyond the factors it keeps (and a solve nothing per block at all).
//!
//! Two kinds of memory: faer's `MemStack` for the kernels' own scratch and
//! for short-lived temporaries, and dense buffers that outlive one kernel
//! call (an input block being densified, the Schur update carried to the
//! next block), used through views of their top-left corner.

use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::{Mat, MatMut};

/// Reusable memory of an elimination (one per thread).
pub(crate) struct Workspace {
    pub(crate) mem: MemBuffer,
    /// An input block densified (see [`Workspace::dense`]).
    dense: Mat<f64>,
    /// The `-C W C^T` update waiting for the next block.
    pub(crate) pending: Mat<f64>,
}

impl Workspace {
    /// Room for `stack` on the stack, a densified block of up to
    /// `dense.0 x dense.1` and a carried update of up to `pending x pending`.
    pub(crate) fn new(stack: StackReq, dense: (usize, usize), pending: usize) -> Workspace {
        Workspace { mem: buffer(stack), dense: Mat::zeros(dense.0, dense.1), pending: Mat::zeros(pending, pending) }
    }

    /// A `rows x cols` buffer (its contents left over) for densifying an
    /// input block; grown if the workspace was sized for less.
    pub(crate) fn dense_buffer(&mut self, rows: usize, cols: usize) -> MatMut<'_, f64> {
        if rows > self.dense.nrows() || cols > self.dense.ncols() {
            self.dense = Mat::zeros(rows.max(self.dense.nrows()), cols.max(self.dense.ncols()));
        }
        self.dense.as_mut().submatrix_mut(0, 0, rows, cols)
    }
}

/// `mem` as a stack with room for `req`, reallocated only when it has less.
pub(crate) fn grow(mem: &mut MemBuffer, req: StackReq) -> &mut MemStack {
    if req.unaligned_bytes_required() > mem.len() {
        *mem = buffer(req);
    }
    MemStack::new(mem)
}

/// A buffer for `req` whatever its start's alignment (so that [`grow`]
/// can compare any later request with its length alone).
pub(crate) fn buffer(req: StackReq) -> MemBuffer {
    MemBuffer::new(StackReq::new::<u8>(req.unaligned_bytes_required()))
}
