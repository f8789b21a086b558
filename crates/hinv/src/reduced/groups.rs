//! The groups of a layer's parameters on which its `A_l` is block
//! diagonal, read off the block structure the layer reported.
//!
//! A dense layer's `A_l` couples only the weights (and bias) of one output
//! unit (`netgraph`'s `unitwise_hessian`): with a bias its flat order puts
//! all weights before all biases, so the unit groups are not contiguous and
//! come from the 2x2 grid of block-diagonal blocks. A layer whose `A_l`
//! has no structure `blockmat` can show (a user layer, the cross-entropy
//! loss) is one group, factored densely.

use blockmat::Block;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};

use super::pack::Ragged;
use super::part::low_rank_stats;
pub(crate) use super::part::Part;

/// Parameter groups of one layer: `members[g]` are the flat indices of
/// group `g` (increasing), `blocks[g]` the block of `A_l` on them.
#[derive(Debug, Clone)]
pub(crate) struct Groups<'a> {
    pub(crate) members: Ragged,
    pub(crate) blocks: Vec<GroupBlock<'a>>,
}

/// Groups this large are read in place from the layer's blocks, not
/// copied: they may be eliminated on a small subspace
/// (`super::projected`), which reads each entry once or twice; a copy of a
/// first layer's `785 x 785` unit blocks would cost more than that.
pub(crate) const IN_PLACE_MIN: usize = 64;

/// The block of `A_l` on one group: a 1x1 block, the layer's own dense
/// block, a dense copy, or the pieces of the layer's blocks it is made of,
/// each at its offset in the group. Only a group gathered from several
/// pieces and not large enough to read in place is copied.
#[derive(Debug, Clone)]
pub(crate) enum GroupBlock<'a> {
    Scalar(f64),
    Dense(MatRef<'a, f64>),
    Owned(Mat<f64>),
    Parts { size: usize, parts: Vec<(usize, usize, Part<'a>)> },
}

impl GroupBlock<'_> {
    pub(crate) fn size(&self) -> usize {
        match self {
            GroupBlock::Scalar(_) => 1,
            GroupBlock::Dense(m) => m.nrows(),
            GroupBlock::Owned(m) => m.nrows(),
            GroupBlock::Parts { size, .. } => *size,
        }
    }

    /// The block as a dense matrix.
    #[cfg(test)]
    pub(crate) fn into_owned(self) -> Mat<f64> {
        let n = self.size();
        let mut m = Mat::<f64>::zeros(n, n);
        self.columns_into(0, m.as_mut());
        m
    }

    /// Columns `start..start + out.ncols()` into `out` (`size` rows).
    pub(crate) fn columns_into(&self, start: usize, mut out: MatMut<'_, f64>) {
        let w = out.ncols();
        match self {
            GroupBlock::Scalar(v) => out.fill(*v),
            GroupBlock::Dense(m) => out.copy_from(m.subcols(start, w)),
            GroupBlock::Owned(m) => out.copy_from(m.as_ref().subcols(start, w)),
            GroupBlock::Parts { parts, .. } => {
                out.fill(0.0);
                for &(i, j, p) in parts {
                    let (r, c) = p.shape();
                    let (lo, hi) = (start.max(j), (start + w).min(j + c));
                    if lo < hi {
                        p.columns_into(lo - j, out.as_mut().submatrix_mut(i, lo - start, r, hi - lo));
                    }
                }
            }
        }
    }

    /// `out = block x q` (`size x k`).
    pub(crate) fn mul_into(&self, q: MatRef<'_, f64>, mut out: MatMut<'_, f64>) {
        match self {
            GroupBlock::Scalar(v) => matmul(out, Accum::Replace, MatRef::from_ref(v), q, 1.0, Par::Seq),
            GroupBlock::Dense(m) => matmul(out, Accum::Replace, *m, q, 1.0, Par::Seq),
            GroupBlock::Owned(m) => matmul(out, Accum::Replace, m.as_ref(), q, 1.0, Par::Seq),
            GroupBlock::Parts { parts, .. } => {
                out.fill(0.0);
                for &(i, j, p) in parts {
                    let (r, c) = p.shape();
                    p.mul_add(q.subrows(j, c), out.as_mut().subrows_mut(i, r));
                }
            }
        }
    }

    /// Largest `|b[i, j]|` and largest `|b[i, j] - b[j, i]|`, in one pass
    /// over the stored pieces (a first layer's unit blocks are read from
    /// memory, not cache: each pass costs).
    pub(crate) fn magnitude_and_asymmetry(&self) -> (f64, f64) {
        let parts = match self {
            GroupBlock::Scalar(v) => return (v.abs(), 0.0),
            GroupBlock::Dense(m) => return transpose_deviation(*m, *m),
            GroupBlock::Owned(m) => return transpose_deviation(m.as_ref(), m.as_ref()),
            GroupBlock::Parts { parts, .. } => parts,
        };
        let (mut big, mut dev) = (0.0f64, 0.0f64);
        for &(i, j, p) in parts {
            let (r, c) = p.shape();
            let mirror = if (i, j) == (j, i) && r == c {
                Some(p)
            } else {
                parts.iter().find(|&&(i2, j2, p2)| (i2, j2) == (j, i) && p2.shape() == (c, r)).map(|x| x.2)
            };
            let (b, d) = match (p, mirror) {
                (Part::Dense(p), Some(Part::Dense(mirror))) => transpose_deviation(p, mirror),
                (Part::LowRank(l), Some(Part::LowRank(m))) if std::ptr::eq(l, m) => low_rank_stats(l),
                (p, Some(mirror)) => {
                    // A low-rank piece facing another piece: the layers
                    // never store one, so densifying it is good enough.
                    let (p, mirror) = (p.to_owned(), mirror.to_owned());
                    transpose_deviation(p.as_ref(), mirror.as_ref())
                }
                // No mirror piece: it is zero there.
                (p, None) => {
                    let big = match p {
                        Part::Dense(m) => m.norm_max(),
                        Part::LowRank(_) => p.to_owned().norm_max(),
                    };
                    (big, big)
                }
            };
            big = big.max(b);
            dev = dev.max(d);
        }
        (big, dev)
    }
}

/// Largest `|a[i, j]|` and largest `|a[i, j] - b[j, i]|`, in tiles: a
/// column of `b^T` is a row of
/// `b`, whose entries lie a column apart, and a `785 x 785` unit block read
/// that way misses the cache on every entry. Each tile of `b` is read by
/// columns into a buffer that stays in cache.
fn transpose_deviation(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> (f64, f64) {
    const TILE: usize = 32;
    let same = a.as_ptr() == b.as_ptr()
        && a.shape() == b.shape()
        && (a.row_stride(), a.col_stride()) == (b.row_stride(), b.col_stride());
    if a.nrows() <= TILE && a.ncols() <= TILE {
        // One tile: read directly (a unit block of a narrow layer).
        let (mut big, mut out) = (0.0f64, 0.0f64);
        if same {
            // A block against itself: each pair once, from below the diagonal.
            for j in 0..a.ncols() {
                big = big.max(a[(j, j)].abs());
                for i in j + 1..a.nrows() {
                    let (x, y) = (a[(i, j)], a[(j, i)]);
                    big = big.max(x.abs()).max(y.abs());
                    out = out.max((x - y).abs());
                }
            }
            return (big, out);
        }
        for j in 0..a.ncols() {
            for i in 0..a.nrows() {
                big = big.max(a[(i, j)].abs());
                out = out.max((a[(i, j)] - b[(j, i)]).abs());
            }
        }
        return (big, out);
    }
    let mut buf = [0.0f64; TILE * TILE];
    let mut column = [0.0f64; TILE];
    // Non-finite entries were refused with the derivatives; `>` keeps the
    // loop free of `f64::max`'s NaN handling, which does not vectorise.
    let (mut big, mut out) = (0.0f64, 0.0f64);
    for j0 in (0..a.ncols()).step_by(TILE) {
        let j1 = (j0 + TILE).min(a.ncols());
        // Comparing a block with itself, the tiles below the diagonal see
        // every pair once (and, through `b`, the entries above it).
        let first = if same { j0 } else { 0 };
        for i0 in (first..a.nrows()).step_by(TILE) {
            let i1 = (i0 + TILE).min(a.nrows());
            // buf[(j - j0) TILE + (i - i0)] = b[j, i], transposed in cache.
            for i in i0..i1 {
                let src = contiguous(b.col(i).subrows(j0, j1 - j0), &mut column);
                for (dj, v) in src.iter().enumerate() {
                    buf[dj * TILE + (i - i0)] = *v;
                    if same && v.abs() > big {
                        big = v.abs();
                    }
                }
            }
            for j in j0..j1 {
                let row = &buf[(j - j0) * TILE..(j - j0) * TILE + (i1 - i0)];
                for (v, w) in contiguous(a.col(j).subrows(i0, i1 - i0), &mut column).iter().zip(row) {
                    let d = (v - w).abs();
                    if d > out {
                        out = d;
                    }
                    if v.abs() > big {
                        big = v.abs();
                    }
                }
            }
        }
    }
    (big, out)
}

/// A column segment as a slice: borrowed when stored contiguously (faer's
/// element iterator handles any stride and costs several times more),
/// else copied into `scratch`.
fn contiguous<'s>(c: faer::ColRef<'s, f64>, scratch: &'s mut [f64]) -> &'s [f64] {
    match c.try_as_col_major() {
        Some(c) => c.as_slice(),
        None => {
            let n = c.nrows();
            for (s, v) in scratch[..n].iter_mut().zip(c.iter()) {
                *s = *v;
            }
            &scratch[..n]
        }
    }
}

impl<'a> Groups<'a> {
    /// The groups of `a` (square, `p x p`).
    pub(crate) fn of(a: &'a Block) -> Groups<'a> {
        let p = a.nrows();
        match a {
            Block::Zero { .. } => singletons(p, 0.0),
            Block::Identity { scale, .. } => singletons(p, *scale),
            Block::Diag(d) if d.blocks().iter().all(|b| b.nrows() == b.ncols()) => {
                let mut out = Groups {
                    members: Ragged::with_capacity(p, d.blocks().len()),
                    blocks: Vec::with_capacity(d.blocks().len()),
                };
                let mut at = 0;
                for b in d.blocks() {
                    let n = b.nrows();
                    if b.is_zero() {
                        out.extend(singletons(n, 0.0), at);
                    } else {
                        out.members.push_iter(at..at + n);
                        out.blocks.push(match Part::of(b) {
                            Some(Part::Dense(m)) => GroupBlock::Dense(m),
                            Some(p) if n >= IN_PLACE_MIN => GroupBlock::Parts { size: n, parts: vec![(0, 0, p)] },
                            _ => GroupBlock::Owned(b.to_dense()),
                        });
                    }
                    at += n;
                }
                out
            }
            Block::Grid(_) => grid_of_diagonals(a).unwrap_or_else(|| whole(a)),
            _ => whole(a),
        }
    }

    fn extend(&mut self, other: Groups<'a>, offset: usize) {
        for m in other.members.iter() {
            self.members.push_iter(m.iter().map(|i| i + offset));
        }
        self.blocks.extend(other.blocks);
    }

    /// Number of parameters covered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.members.iter().map(<[usize]>::len).sum()
    }
}

fn singletons<'a>(p: usize, value: f64) -> Groups<'a> {
    let mut members = Ragged::with_capacity(p, p);
    for i in 0..p {
        members.push(&[i]);
    }
    Groups { members, blocks: vec![GroupBlock::Scalar(value); p] }
}

fn whole(a: &Block) -> Groups<'_> {
    let n = a.nrows();
    let block = match Part::of(a) {
        Some(Part::Dense(m)) => GroupBlock::Dense(m),
        Some(p) if n >= IN_PLACE_MIN => GroupBlock::Parts { size: n, parts: vec![(0, 0, p)] },
        _ => GroupBlock::Owned(a.to_dense()),
    };
    let mut members = Ragged::with_capacity(n, 1);
    members.push_iter(0..n);
    Groups { members, blocks: vec![block] }
}

/// A square grid whose every cell is block diagonal with the same number
/// `k` of parts (or zero): group `g` gathers part `g` of every grid row.
fn grid_of_diagonals(a: &Block) -> Option<Groups<'_>> {
    let grid = a.as_grid()?;
    let r = grid.block_rows();
    if grid.block_cols() != r || grid.row_sizes() != grid.col_sizes() {
        return None;
    }
    let cell = |i: usize, j: usize| grid.get(i, j);
    // Part sizes along each grid row, from the diagonal cells.
    let mut sizes: Vec<Vec<usize>> = Vec::with_capacity(r);
    for i in 0..r {
        let d = cell(i, i)?.as_diag()?;
        if d.blocks().iter().any(|b| b.nrows() != b.ncols()) {
            return None;
        }
        sizes.push(d.blocks().iter().map(Block::nrows).collect());
    }
    let k = sizes.first()?.len();
    if sizes.iter().any(|s| s.len() != k) {
        return None;
    }
    for i in 0..r {
        for j in 0..r {
            let c = cell(i, j)?;
            if c.is_zero() {
                continue;
            }
            let d = c.as_diag()?;
            if d.len() != k || d.blocks().iter().enumerate().any(|(g, b)| b.shape() != (sizes[i][g], sizes[j][g])) {
                return None;
            }
        }
    }
    let row_offsets = blockmat::offsets(grid.row_sizes());
    let part_offsets: Vec<Vec<usize>> = sizes.iter().map(|s| blockmat::offsets(s)).collect();
    let mut out =
        Groups { members: Ragged::with_capacity(grid.row_sizes().iter().sum(), k), blocks: Vec::with_capacity(k) };
    // Where each grid row's part of the group starts within the group.
    let mut local = Vec::with_capacity(r);
    for g in 0..k {
        let mut members = Vec::new();
        local.clear();
        for i in 0..r {
            local.push(members.len());
            let start = row_offsets[i] + part_offsets[i][g];
            members.extend(start..start + sizes[i][g]);
        }
        let n = members.len();
        // The group's non-zero pieces, at their offsets in the group.
        let pieces = || {
            (0..r).flat_map(move |i| (0..r).map(move |j| (i, j))).filter_map(|(i, j)| {
                let part = &cell(i, j)?.as_diag()?.blocks()[g];
                (!part.is_zero()).then_some((local[i], local[j], part))
            })
        };
        // Low-rank pieces only on the group's diagonal, where they are
        // their own mirror (the layers store them there).
        let borrowed: Option<Vec<_>> = if n >= IN_PLACE_MIN {
            pieces()
                .map(|(i, j, p)| Part::of(p).filter(|q| i == j || matches!(q, Part::Dense(_))).map(|q| (i, j, q)))
                .collect()
        } else {
            None
        };
        let block = match borrowed {
            Some(parts) => GroupBlock::Parts { size: n, parts },
            None => {
                let mut m = Mat::<f64>::zeros(n, n);
                for (i, j, p) in pieces() {
                    let (ni, nj) = p.shape();
                    let mut dst = m.as_mut().submatrix_mut(i, j, ni, nj);
                    match p.as_dense() {
                        Some(d) => dst.copy_from(d),
                        None => {
                            let shaped = p.write_dense_to(dst);
                            debug_assert!(shaped.is_ok(), "a piece fills its place in the group");
                        }
                    }
                }
                GroupBlock::Owned(m)
            }
        };
        out.members.push(&members);
        out.blocks.push(block);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netgraph::{Activation, Batch, Network};

    /// The groups must reproduce `A_l` exactly (every entry inside a group's
    /// block, zero outside), whatever structure the layer reported.
    fn check(a: &Block) -> usize {
        let g = Groups::of(a);
        let dense = a.to_dense();
        let p = dense.nrows();
        assert_eq!(g.len(), p);
        let mut owner = vec![usize::MAX; p];
        for (k, m) in g.members.iter().enumerate() {
            for &i in m {
                assert_eq!(owner[i], usize::MAX, "parameter {i} in two groups");
                owner[i] = k;
            }
        }
        for i in 0..p {
            for j in 0..p {
                if owner[i] != owner[j] {
                    assert_eq!(dense[(i, j)], 0.0, "({i}, {j}) couples two groups");
                }
            }
        }
        for (k, (m, block)) in g.members.iter().zip(g.blocks).enumerate() {
            let (big, dev) = block.magnitude_and_asymmetry();
            let low_rank = matches!(&block, GroupBlock::Parts { parts, .. }
                if parts.iter().any(|p| matches!(p.2, Part::LowRank(_))));
            let block = block.into_owned();
            assert_eq!(big, block.norm_max(), "group {k}");
            let brute = (0..block.nrows())
                .flat_map(|i| (0..block.ncols()).map(move |j| (i, j)))
                .map(|(i, j)| (block[(i, j)] - block[(j, i)]).abs())
                .fold(0.0f64, f64::max);
            if low_rank {
                // The factors' own asymmetry (none for `Z^T diag(c) Z`); the
                // densified block adds the rounding of its `batch`-term
                // products, a few ulps of its largest entry.
                assert!(dev <= brute && brute <= 16.0 * f64::EPSILON * big, "group {k}: {dev} vs {brute}");
            } else {
                assert_eq!(dev, brute, "group {k}");
            }
            assert_eq!(block.nrows(), m.len(), "group {k}");
            for (a, &i) in m.iter().enumerate() {
                for (b, &j) in m.iter().enumerate() {
                    assert_eq!(block[(a, b)], dense[(i, j)]);
                }
            }
        }
        g.members.len()
    }

    #[test]
    fn dense_layers_split_into_units_with_and_without_bias() {
        for bias in [false, true] {
            let b = Network::builder(3).dense(4, Activation::Tanh).dense(5, Activation::Tanh);
            let b = if bias { b } else { b.without_bias() };
            let net = b.cross_entropy(3).unwrap();
            let mut params = net.init_params(1);
            params.scale(2.0);
            let batch = Batch::random_classification(3, 3, 4, 2);
            let d = net.derivatives(&params, &batch).unwrap();
            // Hidden dense layers: one group per output unit.
            assert_eq!(check(&d.layers[0].a), 4);
            assert_eq!(check(&d.layers[1].a), 5);
            // The cross-entropy layer couples its units: at least one group.
            assert!(check(&d.layers[2].a) >= 1);
        }
    }

    /// Groups of 70 parameters and more are read in place (in pieces when
    /// there is a bias); an asymmetric block is measured as such.
    #[test]
    fn large_groups_are_read_in_place_and_measured_exactly() {
        for bias in [false, true] {
            let b = Network::builder(80).dense(3, Activation::Tanh);
            let b = if bias { b } else { b.without_bias() };
            let net = b.mse(2).unwrap();
            let d = net.derivatives(&net.init_params(5), &Batch::random_regression(80, 2, 5, 6)).unwrap();
            let g = Groups::of(&d.layers[0].a);
            assert!(g.blocks.iter().all(|b| matches!(b, GroupBlock::Parts { .. })), "bias {bias}");
            // 80 inputs at batch 5: the layer stored its weight blocks as factors.
            let low_rank = |b: &GroupBlock<'_>| matches!(b, GroupBlock::Parts { parts, .. } if matches!(parts[0].2, Part::LowRank(_)));
            assert!(g.blocks.iter().all(low_rank), "bias {bias}");
            assert_eq!(check(&d.layers[0].a), 3);
        }
        let mut m = Mat::from_fn(70, 70, |i, j| ((i * j) % 11) as f64 - 5.0);
        m[(3, 60)] += 0.25;
        let whole = Block::dense(m.clone());
        let g = Groups::of(&whole);
        assert_eq!(g.blocks[0].magnitude_and_asymmetry(), (m.norm_max(), 0.25));
        assert_eq!(GroupBlock::Owned(m.clone()).magnitude_and_asymmetry(), (m.norm_max(), 0.25));
        // One tile, compared with itself pair by pair: the largest entry,
        // above the diagonal, counts.
        let mut s = Mat::from_fn(9, 9, |i, j| ((i + j) % 5) as f64 - 2.0);
        s[(1, 7)] = 40.0;
        let dev = (40.0 - s[(7, 1)]).abs();
        assert_eq!(GroupBlock::Owned(s.clone()).magnitude_and_asymmetry(), (40.0, dev));
        assert_eq!(Groups::of(&Block::dense(s)).blocks[0].magnitude_and_asymmetry(), (40.0, dev));
        // Low-rank blocks: with different factors the asymmetry is measured
        // on the formed panels; with equal ones it is bounded through the
        // core's (here 0.5 at (0, 2)).
        let f = |s: usize| Mat::from_fn(70, 3, move |i, j| (((i + 3) * (j + s)) % 7) as f64 - 3.0);
        let core = Mat::from_fn(3, 3, |i, j| {
            if (i, j) == (0, 2) {
                1.5
            } else if i == j {
                2.0
            } else {
                1.0
            }
        });
        for (left, right) in [(f(1), f(2)), (f(1), f(1))] {
            let b = Block::low_rank(left.clone(), core.clone(), right.clone()).unwrap();
            let d = b.to_dense();
            let brute = (0..70)
                .flat_map(|i| (0..70).map(move |j| (i, j)))
                .map(|(i, j)| (d[(i, j)] - d[(j, i)]).abs())
                .fold(0.0f64, f64::max);
            let (big, dev) = Groups::of(&b).blocks[0].magnitude_and_asymmetry();
            assert_eq!(big, d.norm_max());
            assert!(brute > 1.0, "not a test");
            if left == right {
                assert!(dev >= brute, "{dev} < {brute}");
            } else {
                assert_eq!(dev, brute);
            }
        }
    }

    #[test]
    fn structureless_blocks_are_one_group_and_zero_blocks_singletons() {
        let m = Mat::from_fn(3, 3, |i, j| (i + j) as f64);
        assert_eq!(check(&Block::dense(m)), 1);
        assert_eq!(check(&Block::zeros(4, 4)), 4);
        assert_eq!(check(&Block::scaled_identity(2, 3.0)), 2);
    }
}
