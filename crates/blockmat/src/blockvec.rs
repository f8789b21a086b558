//! Block vectors (a column of blocks, several right-hand-side columns
//! allowed) and their interleaving: `R` parts, each split into `L` pieces,
//! become `L` parts of `R` pieces each, and back.

use faer::{Mat, MatRef};

use crate::block::offsets;
use crate::error::{BlockError, Result};

/// A dense matrix whose rows are partitioned into parts: a column of
/// blocks, one column per right-hand side.
#[derive(Debug, Clone)]
pub struct BlockVec {
    data: Mat<f64>,
    parts: Vec<usize>,
}

impl BlockVec {
    /// Wraps `data` with the row partition `parts`.
    ///
    /// # Errors
    /// [`BlockError::ShapeMismatch`] when `parts` does not sum to the rows of `data`.
    pub fn new(data: Mat<f64>, parts: Vec<usize>) -> Result<BlockVec> {
        let total: usize = parts.iter().sum();
        if total != data.nrows() {
            return Err(BlockError::ShapeMismatch {
                op: "BlockVec::new",
                left: (total, data.ncols()),
                right: (data.nrows(), data.ncols()),
            });
        }
        Ok(BlockVec { data, parts })
    }

    /// Stacks dense parts, which must all have the same number of columns.
    ///
    /// # Errors
    /// [`BlockError::ShapeMismatch`] naming the first part and the offending one.
    pub fn from_parts(parts: &[MatRef<'_, f64>]) -> Result<BlockVec> {
        let ncols = parts.first().map_or(0, |p| p.ncols());
        for p in parts {
            if p.ncols() != ncols {
                return Err(BlockError::ShapeMismatch {
                    op: "BlockVec::from_parts",
                    left: (parts[0].nrows(), ncols),
                    right: (p.nrows(), p.ncols()),
                });
            }
        }
        let sizes: Vec<usize> = parts.iter().map(|p| p.nrows()).collect();
        let mut data = Mat::zeros(sizes.iter().sum(), ncols);
        let mut r = 0;
        for p in parts {
            data.as_mut().subrows_mut(r, p.nrows()).copy_from(p);
            r += p.nrows();
        }
        Ok(BlockVec { data, parts: sizes })
    }

    /// The whole matrix.
    pub fn data(&self) -> MatRef<'_, f64> {
        self.data.as_ref()
    }
    /// The whole matrix, owned.
    pub fn into_mat(self) -> Mat<f64> {
        self.data
    }
    /// Sizes of the parts.
    pub fn parts(&self) -> &[usize] {
        &self.parts
    }
    /// Part `i`, `None` when out of range.
    pub fn part(&self, i: usize) -> Option<MatRef<'_, f64>> {
        let size = *self.parts.get(i)?;
        let start: usize = self.parts[..i].iter().sum();
        Some(self.data.as_ref().subrows(start, size))
    }
    /// Number of parts.
    pub fn len(&self) -> usize {
        self.parts.len()
    }
    /// True when there are no parts.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
    /// Number of right-hand-side columns.
    pub fn ncols(&self) -> usize {
        self.data.ncols()
    }

    /// Interleaves: part `i` splits into pieces of sizes `pieces[i]` (all of
    /// the same length `L`), and part `k` of the result is piece `k` of every
    /// part, in order. This is the row permutation of the blockwise
    /// transpose ([`crate::interleave`]), with `pieces` taken from a
    /// [`crate::Nesting`].
    ///
    /// ```
    /// use blockmat::BlockVec;
    /// use faer::Mat;
    /// let v = BlockVec::new(Mat::from_fn(5, 1, |i, _| i as f64), vec![2, 3]).unwrap();
    /// let w = v.interleave(&[vec![1, 1], vec![2, 1]]).unwrap();
    /// assert_eq!(w.parts(), &[3, 2]);
    /// assert_eq!(w.data()[(1, 0)], 2.0); // piece 0 of part 1 follows piece 0 of part 0
    /// assert_eq!(w.deinterleave(&[vec![1, 1], vec![2, 1]]).unwrap().data(), v.data());
    /// ```
    ///
    /// # Errors
    /// [`BlockError::PartitionMismatch`] when the pieces do not split the parts.
    pub fn interleave(&self, pieces: &[Vec<usize>]) -> Result<BlockVec> {
        let perm = interleave_permutation(pieces)?;
        let sums: Vec<usize> = pieces.iter().map(|p| p.iter().sum()).collect();
        if sums != self.parts {
            return Err(BlockError::PartitionMismatch { op: "interleave", left: self.parts.clone(), right: sums });
        }
        Ok(BlockVec { data: self.permuted(&perm.runs, false), parts: perm.level_sizes })
    }

    /// The inverse of [`BlockVec::interleave`] with the same `pieces`.
    ///
    /// # Errors
    /// [`BlockError::PartitionMismatch`] when this vector's parts are not the
    /// interleaved sizes of `pieces`.
    pub fn deinterleave(&self, pieces: &[Vec<usize>]) -> Result<BlockVec> {
        let perm = interleave_permutation(pieces)?;
        if perm.level_sizes != self.parts {
            return Err(BlockError::PartitionMismatch {
                op: "deinterleave",
                left: self.parts.clone(),
                right: perm.level_sizes,
            });
        }
        let sums = pieces.iter().map(|p| p.iter().sum()).collect();
        Ok(BlockVec { data: self.permuted(&perm.runs, true), parts: sums })
    }

    /// Copies each run of rows `(from, to, len)` (or `(to, from, len)` when
    /// `inverse`) into a new matrix.
    fn permuted(&self, runs: &[(usize, usize, usize)], inverse: bool) -> Mat<f64> {
        let mut out = Mat::zeros(self.data.nrows(), self.data.ncols());
        for &(from, to, len) in runs {
            let (src, dst) = if inverse { (to, from) } else { (from, to) };
            out.as_mut().subrows_mut(dst, len).copy_from(self.data.as_ref().subrows(src, len));
        }
        out
    }
}

/// The interleaving permutation described by nested pieces.
pub(crate) struct Interleaving {
    /// Runs `(original start, interleaved start, length)`.
    pub(crate) runs: Vec<(usize, usize, usize)>,
    /// Sizes of the `L` interleaved parts.
    pub(crate) level_sizes: Vec<usize>,
}

/// Validates `pieces` (equal lengths) and computes its runs.
pub(crate) fn interleave_permutation(pieces: &[Vec<usize>]) -> Result<Interleaving> {
    let levels = pieces.first().map_or(0, Vec::len);
    for p in pieces {
        if p.len() != levels {
            return Err(BlockError::PartitionMismatch { op: "interleave", left: pieces[0].clone(), right: p.clone() });
        }
    }
    let level_sizes: Vec<usize> = (0..levels).map(|k| pieces.iter().map(|p| p[k]).sum()).collect();
    let part_starts = offsets(&pieces.iter().map(|p| p.iter().sum()).collect::<Vec<_>>());
    let mut runs = Vec::with_capacity(levels * pieces.len());
    let mut to = 0;
    for k in 0..levels {
        for (i, p) in pieces.iter().enumerate() {
            let from = part_starts[i] + p[..k].iter().sum::<usize>();
            runs.push((from, to, p[k]));
            to += p[k];
        }
    }
    Ok(Interleaving { runs, level_sizes })
}

/// The interleaving as an index map: entry `new` is the original index of
/// the row that moves to position `new` (so `(P v)[new] = v[perm[new]]`).
///
/// # Errors
/// [`BlockError::PartitionMismatch`] when the pieces have different lengths.
pub fn interleave_indices(pieces: &[Vec<usize>]) -> Result<Vec<usize>> {
    let perm = interleave_permutation(pieces)?;
    let mut out = Vec::with_capacity(perm.runs.iter().map(|r| r.2).sum());
    for (from, _, len) in perm.runs {
        out.extend(from..from + len);
    }
    Ok(out)
}
