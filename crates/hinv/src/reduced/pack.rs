//! A layer's many small lists and matrices, each kind in one allocation.
//!
//! The parameters-first elimination keeps, per layer and unit group, the
//! group's parameter indices, the rows of `Dx_l` it touches, its explicit
//! inverse and its multipliers: at width 8, about thirty pieces of a few
//! hundred bytes each. As separate allocations they cost an allocator call
//! each (a third of them aligned ones, which the system allocator serves
//! slowly) and land wherever the allocator puts them, so a solve over a
//! deep network chases pointers through memory no prefetcher follows.
//! Packed back to back, a layer's pieces are read as a few sequential
//! streams.

use faer::{MatMut, MatRef};

/// Lists of indices stored back to back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Ragged {
    data: Vec<usize>,
    /// `starts[i]..starts[i + 1]` is list `i`; one more entry than lists.
    starts: Vec<usize>,
}

impl Ragged {
    pub(super) fn with_capacity(entries: usize, lists: usize) -> Ragged {
        let mut starts = Vec::with_capacity(lists + 1);
        starts.push(0);
        Ragged { data: Vec::with_capacity(entries), starts }
    }

    pub(super) fn push(&mut self, list: &[usize]) {
        self.data.extend_from_slice(list);
        self.starts.push(self.data.len());
    }

    pub(super) fn push_iter(&mut self, list: impl IntoIterator<Item = usize>) {
        self.data.extend(list);
        self.starts.push(self.data.len());
    }

    pub(super) fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    pub(super) fn iter(&self) -> impl ExactSizeIterator<Item = &[usize]> + '_ {
        self.starts.windows(2).map(|w| &self.data[w[0]..w[1]])
    }

    /// Indices stored, over all lists.
    pub(super) fn entries(&self) -> usize {
        self.data.len()
    }

    /// The longest list: what a buffer shared by all of them must hold.
    pub(super) fn widest(&self) -> usize {
        self.starts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
    }
}

/// Small dense matrices stored back to back, column-major and unpadded;
/// an entry may be absent.
#[derive(Debug, Clone, Default)]
pub(super) struct MatPack {
    data: Vec<f64>,
    /// `(start, rows, cols)` of each matrix, `None` for an absent one.
    index: Vec<Option<(usize, usize, usize)>>,
}

impl MatPack {
    pub(super) fn with_capacity(entries: usize, count: usize) -> MatPack {
        MatPack { data: Vec::with_capacity(entries), index: Vec::with_capacity(count) }
    }

    /// Appends a copy of `m`.
    pub(super) fn push(&mut self, m: MatRef<'_, f64>) {
        let start = self.data.len();
        for j in 0..m.ncols() {
            match m.col(j).try_as_col_major() {
                Some(c) => self.data.extend_from_slice(c.as_slice()),
                None => self.data.extend(m.col(j).iter().copied()),
            }
        }
        self.index.push(Some((start, m.nrows(), m.ncols())));
    }

    /// Appends `m[rows, :]`.
    pub(super) fn push_gathered(&mut self, m: MatRef<'_, f64>, rows: &[usize]) {
        let start = self.data.len();
        for j in 0..m.ncols() {
            let col = m.col(j);
            self.data.extend(rows.iter().map(|&i| col[i]));
        }
        self.index.push(Some((start, rows.len(), m.ncols())));
    }

    /// Appends the `n x n` identity.
    pub(super) fn push_identity(&mut self, n: usize) {
        let start = self.data.len();
        self.data.resize(start + n * n, 0.0);
        for i in 0..n {
            self.data[start + i * (n + 1)] = 1.0;
        }
        self.index.push(Some((start, n, n)));
    }

    /// Empties the pack, keeping its storage for the next layer's pieces.
    pub(super) fn clear(&mut self) {
        self.data.clear();
        self.index.clear();
    }

    /// Room for `entries` more numbers and `count` more matrices.
    pub(super) fn reserve(&mut self, entries: usize, count: usize) {
        self.data.reserve(entries);
        self.index.reserve(count);
    }

    /// Appends an absent entry.
    pub(super) fn push_none(&mut self) {
        self.index.push(None);
    }

    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// Numbers stored, over all matrices.
    pub(super) fn entries(&self) -> usize {
        self.data.len()
    }

    /// Matrix `i` (`None` when absent or out of range).
    pub(super) fn get(&self, i: usize) -> Option<MatRef<'_, f64>> {
        let (s, r, c) = (*self.index.get(i)?)?;
        Some(MatRef::from_column_major_slice(&self.data[s..s + r * c], r, c))
    }

    /// Matrix `i`, writable.
    pub(super) fn get_mut(&mut self, i: usize) -> Option<MatMut<'_, f64>> {
        let (s, r, c) = (*self.index.get(i)?)?;
        Some(MatMut::from_column_major_slice_mut(&mut self.data[s..s + r * c], r, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ragged_lists_read_back() {
        let lists = [vec![3, 1], vec![], vec![7, 8, 9]];
        let mut r = Ragged::with_capacity(0, 0);
        r.push(&lists[0]);
        r.push(&lists[1]);
        r.push_iter(7..10);
        assert_eq!(r.len(), 3);
        assert_eq!(r.iter().collect::<Vec<_>>(), lists.iter().map(Vec::as_slice).collect::<Vec<_>>());
        assert_eq!(r.widest(), 3);
        assert_eq!(Ragged::with_capacity(4, 4).widest(), 0);
    }

    #[test]
    fn packed_matrices_read_back() {
        let a = faer::Mat::from_fn(3, 2, |i, j| (i + 10 * j) as f64);
        let b = faer::Mat::from_fn(2, 4, |i, j| (i * j) as f64 - 1.0);
        let mut p = MatPack::with_capacity(0, 0);
        p.push(a.as_ref());
        p.push_none();
        p.push(b.as_ref().transpose());
        p.push_gathered(a.as_ref(), &[2, 0]);
        p.push_identity(3);
        assert_eq!((p.len(), p.entries()), (5, 6 + 8 + 4 + 9));
        assert_eq!(p.get(4).unwrap(), faer::Mat::<f64>::identity(3, 3).as_ref());
        assert_eq!(p.get(3).unwrap(), faer::mat![[2.0, 12.0], [0.0, 10.0]].as_ref());
        assert_eq!(p.get(0).unwrap(), a.as_ref());
        assert!(p.get(1).is_none() && p.get(5).is_none());
        p.get_mut(2).unwrap()[(3, 1)] = 5.0;
        let mut bt = b.transpose().to_owned();
        bt[(3, 1)] = 5.0;
        assert_eq!(p.get(2).unwrap(), bt.as_ref());
        p.clear();
        assert_eq!((p.len(), p.entries()), (0, 0));
        p.push(a.as_ref());
        assert_eq!(p.get(0).unwrap(), a.as_ref());
    }
}
