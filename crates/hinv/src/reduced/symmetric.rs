//! Making blocks that are symmetric in exact arithmetic symmetric in
//! floating point: the fills (`Dx A^-1 Dx^T`, `G^T A^-1 G`) are products
//! symmetric only to rounding, and each block of `R` is judged and
//! balanced as a symmetric matrix.
//!
//! `R`'s blocks are `2a x 2a` (256 x 256 at batch 16 and width 8): an
//! entry-by-entry pass reads the upper triangle a row at a time, across
//! columns, and took 11% of the factorization at L16 h8 B16 (`perf record
//! --call-graph dwarf` on a loop of factorizations). It goes by tiles of
//! [`TILE`] x [`TILE`]: the upper tile is transposed into a buffer, so
//! that both triangles are read and written along contiguous slices.

use faer::MatMut;

/// Columns per tile.
const TILE: usize = 16;

/// `m <- (m + m^T) / 2` for a square `m`. Returns the largest
/// `|m[i, j] - m[j, i]|` it removed (NaN if an off-diagonal pair's
/// difference is: a NaN entry, or equal infinities; the diagonal is not
/// read). Every
/// entry is `0.5 * (lower + upper)`, bit for bit the same whatever the
/// order of the pass.
pub(super) fn symmetrize(mut m: MatMut<'_, f64>) -> f64 {
    let n = m.ncols();
    if m.nrows() != n || m.row_stride() != 1 {
        return symmetrize_by_entries(m);
    }
    let mut deviation = Deviation::default();
    // The upper tile, transposed into a buffer so that both sides are
    // read and written along contiguous slices.
    let mut up = [[0.0f64; TILE]; TILE];
    for j0 in (0..n).step_by(TILE) {
        let w = TILE.min(n - j0);
        let (left, mut right) = m.as_mut().split_at_col_mut(j0 + w);
        // (Contiguous: the row stride is 1.)
        let mut it = left.subcols_mut(j0, w).col_iter_mut().filter_map(|c| c.try_as_col_major_mut());
        let mut cols: [&mut [f64]; TILE] =
            std::array::from_fn(|_| it.next().map_or_else(Default::default, |c| c.as_slice_mut()));
        // Within the diagonal tile: row j0 + b of column j0 + a (lower)
        // against row j0 + a of column j0 + b (upper), b > a.
        for a in 0..w {
            for b in a + 1..w {
                let (lo, up) = (cols[a][j0 + b], cols[b][j0 + a]);
                deviation.add(lo, up);
                let v = 0.5 * (lo + up);
                cols[a][j0 + b] = v;
                cols[b][j0 + a] = v;
            }
        }
        // Below it, a tile of rows i0..i0 + h at a time: the upper entries
        // are rows j0..j0 + w of columns i0..i0 + h.
        for i0 in (j0 + w..n).step_by(TILE) {
            let h = TILE.min(n - i0);
            let mut upper = right.as_mut().subcols_mut(i0 - j0 - w, h);
            for s in 0..h {
                for (t, v) in upper.as_ref().col(s).subrows(j0, w).iter().enumerate() {
                    up[t][s] = *v;
                }
            }
            for (c, row) in cols.iter_mut().zip(up.iter_mut()).take(w) {
                for (lo, u) in c[i0..i0 + h].iter_mut().zip(&mut row[..h]) {
                    deviation.add(*lo, *u);
                    let v = 0.5 * (*lo + *u);
                    *lo = v;
                    *u = v;
                }
            }
            for s in 0..h {
                for (t, v) in upper.as_mut().col_mut(s).subrows_mut(j0, w).iter_mut().enumerate() {
                    *v = up[t][s];
                }
            }
        }
    }
    deviation.value()
}

/// `m <- (m + m^T) / 2 + eps I`, the entries of `(m + m^T) / 2` below
/// [`negligible_next_to`] set to zero: a group block ready for its pivots.
///
/// Deep networks whose activations vanish (tanh at PyTorch's
/// initialisation, hundreds of layers) leave `A_l` with subnormal entries,
/// and the processor computes the group's inverse and every product with
/// it in microcode (docs/benchmarks.md, "Cutting the subnormal cost").
/// `A_l` enters `H` as a block of its own, so the cut changes `H + eps I`
/// by less than `eps_mach |eps| / 4` in norm, and the group's block by
/// less than `eps_mach / 4` of its own largest entry: within the rounding
/// its factorization is certified against (`8 eps_mach n` of it), and
/// refinement, whose products read the blocks as they are, sees it as
/// such rounding. With `eps = 0` nothing is cut.
pub(super) fn symmetrize_shifted(mut m: MatMut<'_, f64>, eps: f64) {
    symmetrize(m.as_mut());
    let n = m.nrows().min(m.ncols());
    // The shifted block's largest entry (NaN passes: refused later).
    let mut big = 0.0f64;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            big = big.max((m[(i, j)] + if i == j { eps } else { 0.0 }).abs());
        }
    }
    let cut = negligible_next_to(eps, big, n);
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            if m[(i, j)].abs() < cut {
                m[(i, j)] = 0.0;
            }
        }
    }
    for i in 0..n {
        m[(i, i)] += eps;
    }
}

/// Entries of an `n x n` block of `H` below this, all set to zero, change
/// `H + eps I` by less than `eps_mach |eps| / 4` in norm and the shifted
/// block, whose largest entry is `big`, by less than `eps_mach big / 4`
/// (at most `n^2` entries: Frobenius norm below `n` times the cut).
pub(super) fn negligible_next_to(eps: f64, big: f64, n: usize) -> f64 {
    f64::EPSILON * eps.abs().min(big) / (4.0 * n.max(1) as f64)
}

/// The largest `|lo - up|` seen, NaN if any was: kept as a maximum and
/// a flag, so that the loops over a tile's rows stay free of branches.
#[derive(Default)]
struct Deviation {
    largest: f64,
    nan: bool,
}

impl Deviation {
    fn add(&mut self, lo: f64, up: f64) {
        let d = (lo - up).abs();
        self.largest = if d > self.largest { d } else { self.largest };
        self.nan |= d.is_nan();
    }

    fn value(&self) -> f64 {
        if self.nan {
            f64::NAN
        } else {
            self.largest
        }
    }
}

/// [`symmetrize`] entry by entry, for strided views.
fn symmetrize_by_entries(mut m: MatMut<'_, f64>) -> f64 {
    let mut deviation = Deviation::default();
    for j in 0..m.ncols() {
        for i in j + 1..m.nrows() {
            let (lo, up) = (m[(i, j)], m[(j, i)]);
            deviation.add(lo, up);
            let v = 0.5 * (lo + up);
            m[(i, j)] = v;
            m[(j, i)] = v;
        }
    }
    deviation.value()
}

#[cfg(test)]
mod tests {
    use super::{negligible_next_to, symmetrize, symmetrize_by_entries, symmetrize_shifted};
    use faer::Mat;

    /// A group block keeps every entry at or above the cut and loses those
    /// below it (subnormal ones too), symmetrised first and shifted after;
    /// with `eps = 0` nothing is cut; the cut is `eps_mach / (4 n)` times
    /// the smaller of `|eps|` and the shifted block's largest entry, which
    /// keeps the change's norm below a quarter of `eps_mach` times either.
    #[test]
    fn group_blocks_lose_only_what_the_shift_outweighs() {
        let (eps, n) = (-1e-3, 3);
        // (The shifted block's largest entry, 3, exceeds |eps|.)
        let cut = negligible_next_to(eps, 3.0, n);
        assert_eq!(cut, f64::EPSILON * 1e-3 / 12.0);
        let m = Mat::from_fn(n, n, |i, j| match (i, j) {
            (0, 0) => 1e-310,
            (1, 0) => cut,
            (0, 1) => cut,
            (2, 0) => 0.5 * cut,
            (0, 2) => 0.5 * cut,
            (2, 1) => 2.0,
            (1, 2) => 4.0,
            (1, 1) => -0.99 * cut,
            _ => 5e-300,
        });
        let mut got = m.clone();
        symmetrize_shifted(got.as_mut(), eps);
        let want = Mat::from_fn(n, n, |i, j| match (i, j) {
            (1, 0) | (0, 1) => cut,
            (2, 1) | (1, 2) => 3.0,
            _ if i == j => eps,
            _ => 0.0,
        });
        assert!(got == want, "{got:?}");
        // The change's norm is below eps_mach |eps| / 4 even when every
        // entry sits just under the cut.
        let change = Mat::from_fn(n, n, |_, _| 0.999 * cut);
        assert!(change.norm_l2() < f64::EPSILON * 1e-3 / 4.0);
        let mut kept = m.clone();
        symmetrize_shifted(kept.as_mut(), 0.0);
        assert_eq!(kept[(0, 0)], 1e-310);
        assert_eq!(kept[(2, 0)], 0.5 * cut);
        // A block that `eps` nearly cancels (a_ii = -eps to within
        // rounding, shifted block of order eps_mach |eps|) is cut at its own
        // scale: an entry an eighth of it stays (the cut at eps alone,
        // a sixth of it, would take it), one far below it goes.
        let g = f64::EPSILON * 1e-3 / 2.0;
        let near = Mat::from_fn(n, n, |i, j| match (i, j) {
            (0, 0) | (1, 1) => 1e-3 + g,
            (2, 2) => 1e-3 - g,
            (1, 0) | (0, 1) => g * (1.0 - 1e-3),
            (2, 0) | (0, 2) => g / 8.0,
            _ => 1e-20 * g,
        });
        let mut got = near.clone();
        symmetrize_shifted(got.as_mut(), eps);
        assert_eq!(got[(2, 0)], g / 8.0, "kept at the block's own scale");
        assert_eq!(got[(2, 1)], 0.0);
        assert_eq!(negligible_next_to(eps, g, n), f64::EPSILON * g / 12.0);
    }

    /// The tiled pass equals the entry-by-entry one bit for bit, deviation
    /// included, at every size around the tile's, on a submatrix (unit row
    /// stride, a larger column stride: the tiled path, as for a fill in
    /// the corner of `R`'s block) and on a transposed view (the fallback);
    /// an off-diagonal NaN makes the deviation NaN.
    #[test]
    fn tiles_agree_with_the_entries() {
        for n in [0, 1, 2, 15, 16, 17, 33, 64, 70] {
            let m = Mat::from_fn(n, n, |i, j| ((i * 31 + j * 17) % 23) as f64 * 0.37 - 4.1 + (i as f64) * 1e-9);
            let (mut tiled, mut plain) = (m.clone(), m.clone());
            let (dt, dp) = (symmetrize(tiled.as_mut()), symmetrize_by_entries(plain.as_mut()));
            assert_eq!(dt.to_bits(), dp.to_bits(), "n = {n}");
            assert!(tiled == plain, "n = {n}");
            assert!(tiled == tiled.transpose().to_owned(), "n = {n}");
            let mut t = m.clone();
            let mut p = m.clone();
            assert_eq!(symmetrize(t.as_mut().transpose_mut()).to_bits(), symmetrize_by_entries(p.as_mut()).to_bits());
            assert!(t == p, "transposed view, n = {n}");
            let big = Mat::from_fn(n + 9, n + 7, |i, j| ((i * 13 + j * 29) % 19) as f64 * 0.61 - 5.3);
            let (mut tiled, mut plain) = (big.clone(), big.clone());
            let dt = symmetrize(tiled.as_mut().submatrix_mut(3, 5, n, n));
            assert_eq!(dt.to_bits(), symmetrize_by_entries(plain.as_mut().submatrix_mut(3, 5, n, n)).to_bits());
            assert!(tiled == plain, "submatrix, n = {n}");
        }
        let mut nan = Mat::from_fn(20, 20, |i, j| (i + 2 * j) as f64);
        nan[(3, 18)] = f64::NAN;
        assert!(symmetrize(nan.as_mut()).is_nan());
    }
}
