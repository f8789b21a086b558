//! A piece of a group's block of `A_l` as the layer stored it, dense or
//! low-rank, and what the elimination needs of a low-rank one without
//! forming it: columns, products, magnitude and symmetry.

use blockmat::{Block, LowRank};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// A piece of a group's block as the layer stored it: dense, or low-rank
/// factors (a wide layer's `Z^T diag(c) Z`, never formed densely here).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part<'a> {
    Dense(MatRef<'a, f64>),
    LowRank(&'a LowRank),
}

impl<'a> Part<'a> {
    /// The piece a leaf is, `None` for other blocks.
    pub(super) fn of(b: &'a Block) -> Option<Part<'a>> {
        match (b.as_dense(), b.as_low_rank()) {
            (Some(m), _) => Some(Part::Dense(m.as_ref())),
            (_, Some(l)) => Some(Part::LowRank(l)),
            _ => None,
        }
    }

    pub(super) fn shape(&self) -> (usize, usize) {
        match self {
            Part::Dense(m) => m.shape(),
            Part::LowRank(l) => (l.left().nrows(), l.right().nrows()),
        }
    }

    /// Columns `start..start + out.ncols()` into `out` (cut to the piece by
    /// the caller).
    pub(super) fn columns_into(&self, start: usize, mut out: MatMut<'_, f64>) {
        let w = out.ncols();
        match self {
            Part::Dense(m) => out.copy_from(m.subcols(start, w)),
            Part::LowRank(l) => {
                let shaped = l.write_columns_to(start, out);
                debug_assert!(shaped.is_ok(), "buffers are cut to the piece's shape");
            }
        }
    }

    /// `out += self q` (cut to the piece by the caller).
    pub(super) fn mul_add(&self, q: MatRef<'_, f64>, out: MatMut<'_, f64>) {
        match self {
            Part::Dense(m) => matmul(out, Accum::Add, *m, q, 1.0, Par::Seq),
            Part::LowRank(l) => {
                let shaped = l.mul_add_to(out, q, 1.0);
                debug_assert!(shaped.is_ok(), "buffers are cut to the piece's shape");
            }
        }
    }

    /// The piece as a dense matrix.
    pub(super) fn to_owned(self) -> Mat<f64> {
        let (r, c) = self.shape();
        let mut m = Mat::<f64>::zeros(r, c);
        self.columns_into(0, m.as_mut());
        m
    }
}

/// Largest `|a[i, j]|` and largest `|a[i, j] - a[j, i]|` of a square
/// low-rank piece `L C R^T`, formed a panel of columns at a time (`O(n^2 r)`
/// flops, nothing of size `n^2` stored). With `R = L` the asymmetry is the
/// core's, carried through `L`: bounded by `|C - C^T|_max (max_i ||L_i||_1)^2`.
pub(super) fn low_rank_stats(l: &LowRank) -> (f64, f64) {
    let n = l.left().nrows();
    let part = Part::LowRank(l);
    let panel = 64.min(n.max(1));
    let mut buf = Mat::<f64>::zeros(n, panel);
    let mut big = 0.0f64;
    let symmetric_factors = l.left() == l.right();
    let mut dev = 0.0f64;
    let mut mirror = if symmetric_factors { Mat::<f64>::zeros(0, 0) } else { Mat::<f64>::zeros(n, panel) };
    // Its columns are the piece's rows (the factors copied: `O(n r)`).
    let transposed = (!symmetric_factors).then(|| l.transpose());
    for start in (0..n).step_by(panel) {
        let w = panel.min(n - start);
        let mut p = buf.as_mut().subcols_mut(0, w);
        part.columns_into(start, p.as_mut());
        big = big.max(p.norm_max());
        if let Some(t) = &transposed {
            let mut m = mirror.as_mut().subcols_mut(0, w);
            Part::LowRank(t).columns_into(start, m.as_mut());
            for j in 0..w {
                for i in 0..n {
                    dev = dev.max((p[(i, j)] - m[(i, j)]).abs());
                }
            }
        }
    }
    if symmetric_factors {
        let c = l.core();
        let core_dev = (0..c.nrows())
            .flat_map(|i| (0..c.ncols()).map(move |j| (i, j)))
            .map(|(i, j)| (c[(i, j)] - c[(j, i)]).abs())
            .fold(0.0f64, f64::max);
        let row = (0..n).map(|i| l.left().row(i).iter().map(|v| v.abs()).sum::<f64>()).fold(0.0f64, f64::max);
        dev = core_dev * row * row;
    }
    (big, dev)
}
