//! `R`, the Schur complement left by the layers' eliminations, assembled
//! from their pieces as a block-tridiagonal matrix.

use blockmat::{Block, Side, Tridiag};
use faer::Mat;
use netgraph::Derivatives;
use tridiag::TridiagError;

use super::layers::map_layers;
use super::multipliers::Scratch;
use super::Pieces;

/// `R` from the layers' pieces, as its blocks: each layer's diagonal
/// block, balanced (`sigma` the balancing), and `couplings[l]`, the
/// coupling of block `l + 1`'s `z` rows to block `l`'s `y` columns (scaled
/// as the blocks were balanced). The diagonal blocks are finished in
/// parallel when `split` (at L256 h8 B2 and at L16 h8 B16 finishing them
/// took 0.8 ms on one thread, between two parallel phases).
pub(super) struct Assembled {
    pub(super) diag: Vec<Mat<f64>>,
    pub(super) couplings: Vec<Mat<f64>>,
    pub(super) sigma: Vec<f64>,
}

pub(super) fn assemble(
    d: &Derivatives,
    pieces: &mut [Pieces],
    split: bool,
    symmetry_tol: f64,
) -> Result<Assembled, TridiagError> {
    let nl = pieces.len();
    // Layer l's block holds the fill of layer l + 1's `G` on its `y`
    // unknowns: taken out first, so that each block is finished on its own.
    let yfills: Vec<Option<Mat<f64>>> = pieces.iter_mut().map(|p| p.yfill.take()).collect();
    let yscales: Vec<f64> = pieces.iter().map(|p| p.y_scale).collect();
    let finish = |l: usize, p: &mut Pieces| {
        let next = (l + 1 < nl).then(|| (&d.layers[l + 1].e, yfills[l + 1].as_ref()));
        let mut m =
            finish_block(l, d.act_sizes[l + 1], std::mem::replace(&mut p.block, Mat::new()), next, symmetry_tol)?;
        let sigma = balance(m.as_mut(), d.act_sizes[l + 1], p.z_scale, yscales.get(l + 1).copied().unwrap_or(0.0));
        Ok::<_, TridiagError>((m, sigma))
    };
    let (diag, sigma): (Vec<Mat<f64>>, Vec<f64>) =
        map_layers(split, pieces.iter_mut().collect(), Scratch::default, |_, l, p| finish(l, p))?.into_iter().unzip();
    let couplings = (1..nl)
        .map(|l| {
            let (a, ap) = (d.act_sizes[l + 1], d.act_sizes[l]);
            let mut c = pieces[l].coupling.take().unwrap_or_else(|| Mat::zeros(a, ap));
            // Rows `z_l` scaled by `sigma_l`, columns `y_{l-1}` by `1 / sigma_{l-1}`.
            c *= faer::Scale(sigma[l] / sigma[l - 1]);
            c
        })
        .collect();
    Ok(Assembled { diag, couplings, sigma })
}

/// The block-tridiagonal matrix of [`assemble`]'s blocks (`couplings[l]`
/// between blocks `l + 1` and `l`).
pub(super) fn tridiagonal(diag: Vec<Mat<f64>>, couplings: Vec<Mat<f64>>) -> Result<Tridiag, TridiagError> {
    let nl = diag.len();
    let mut sub = Vec::with_capacity(couplings.len());
    for (l, c) in couplings.into_iter().enumerate() {
        let (a, ap) = (diag[l + 1].nrows() / 2, diag[l].nrows() / 2);
        let shape = TridiagError::ShapeMismatch { op: "reduced coupling", expected: (a, ap), found: c.shape() };
        if c.shape() != (a, ap) {
            return Err(shape);
        }
        // `[[0, C], [0, 0]]`: the `z_l` rows, the `y_{l-1}` columns. An
        // upper bidiagonal of two zero blocks holds it in two short lists
        // (a grid takes five), and `tridiag` takes the dense leaf as the
        // coupling without copying it.
        let placed = Block::bidiag(Side::Upper, vec![Block::zeros(a, ap), Block::zeros(a, ap)], vec![Block::dense(c)]);
        sub.push(placed.map_err(|_| shape)?);
    }
    Tridiag::symmetric(diag.into_iter().map(Block::dense).collect(), sub).map_err(|_| TridiagError::ShapeMismatch {
        op: "reduced system (diagonal and coupling blocks)",
        expected: (nl, nl),
        found: (nl, nl.saturating_sub(1)),
    })
}

/// Balances a finished block `[[P, -I], [-I, Q]]` (`z` then `y`, `a` each)
/// by the congruence `diag(sigma I, I / sigma)`, `sigma` a power of two
/// (so exact, and the `-I` stays): `P` is multiplied by `sigma^2`, `Q`
/// divided by it, so that their scales (the larger of the largest entry
/// and the error scale the elimination left, `z_scale` and `y_scale`) meet
/// at their geometric mean. A block with a zero part is left as it is.
/// Returns `sigma`.
fn balance(mut m: faer::MatMut<'_, f64>, a: usize, z_scale: f64, y_scale: f64) -> f64 {
    let p = blockmat::reduce::max_abs(m.as_ref().submatrix(0, 0, a, a)).max(z_scale);
    let q = blockmat::reduce::max_abs(m.as_ref().submatrix(a, a, a, a)).max(y_scale);
    if !(p > 0.0 && q > 0.0 && p.is_finite() && q.is_finite()) {
        return 1.0;
    }
    // `sigma^4 = q / p`.
    // (Clamped to `sigma^2` within `2^+-128`, enough for the `1e-26` ratios
    // of vanishing layers, so that couplings scaled by `sigma_l /
    // sigma_{l-1}` stay far from overflow.)
    let k = (0.25 * (q.log2() - p.log2())).round().clamp(-64.0, 64.0) as i32;
    if k == 0 {
        return 1.0;
    }
    let sigma = 2f64.powi(k);
    let mut zz = m.as_mut().submatrix_mut(0, 0, a, a);
    zz *= faer::Scale(sigma * sigma);
    let mut yy = m.as_mut().submatrix_mut(a, a, a, a);
    yy *= faer::Scale(1.0 / (sigma * sigma));
    sigma
}

/// A layer's diagonal block of `R` from its fill `m` (`2a x 2a`, the fill
/// `Dx A^-1 Dx^T` in its `z` corner): `-fill` there, `-I` between `z` and
/// `y`, and, below a next layer, that layer's `E - G^T A^-1 G` on `y`
/// (`next`: its `E` and its fill `G^T A^-1 G`, when it has one).
///
/// `E` and the fills are symmetric to rounding: judged, as the
/// interleaved elimination judges `E`, against the block's own scale (at
/// least the `-I`'s 1, `symmetry_tol` times it), the block is symmetrised,
/// so that [`balance`] cannot make that rounding look like asymmetry. Only
/// its `y` corner needs it: the `z` fill arrives symmetrised and the `-I`
/// blocks are exact (a pass over the whole block was a quarter of the
/// work at L16 h8 B16's blocks of 256 for nothing).
fn finish_block(
    l: usize,
    a: usize,
    mut m: Mat<f64>,
    next: Option<(&Block, Option<&Mat<f64>>)>,
    symmetry_tol: f64,
) -> Result<Mat<f64>, TridiagError> {
    if m.shape() != (2 * a, 2 * a) {
        return Err(TridiagError::ShapeMismatch {
            op: "reduced system (a layer's block)",
            expected: (2 * a, 2 * a),
            found: m.shape(),
        });
    }
    let mut zz = m.as_mut().submatrix_mut(0, 0, a, a);
    zz *= faer::Scale(-1.0);
    for i in 0..a {
        m[(a + i, i)] = -1.0;
        m[(i, a + i)] = -1.0;
    }
    if let Some((e, fill)) = next {
        let mut yy = m.as_mut().submatrix_mut(a, a, a, a);
        e.write_dense_to(yy.as_mut()).map_err(|_| TridiagError::ShapeMismatch {
            op: "reduced system (E of the next layer)",
            expected: (a, a),
            found: e.shape(),
        })?;
        if let Some(y) = fill {
            yy -= y;
        }
    }
    let big = blockmat::reduce::max_abs(m.as_ref().submatrix(0, 0, a, a));
    let mut yy = m.as_mut().submatrix_mut(a, a, a, a);
    let tolerance = symmetry_tol * big.max(blockmat::reduce::max_abs(yy.as_ref())).max(1.0);
    let deviation = super::symmetrize(yy.as_mut());
    // (A NaN passes here: the factorization refuses non-finite blocks.)
    if deviation > tolerance {
        return Err(TridiagError::NotSymmetric { row: l, col: l, deviation, tolerance });
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::{balance, finish_block};
    use blockmat::Block;
    use faer::Mat;
    use tridiag::TridiagError;

    /// A finished block is exactly symmetric when its `z` fill arrives
    /// symmetric and the next layer's `E` and fill are symmetric to
    /// rounding: only the `y` corner is symmetrised, and judged against
    /// the block's scale (the `z` fill's largest entry counts).
    #[test]
    fn finishing_symmetrises_the_y_corner_and_judges_it() {
        let a = 3;
        let fill = Mat::from_fn(a, a, |i, j| 100.0 + (i + j) as f64);
        let mut m = Mat::<f64>::zeros(2 * a, 2 * a);
        m.as_mut().submatrix_mut(0, 0, a, a).copy_from(&fill);
        let e = |off: f64| Block::dense(Mat::from_fn(a, a, |i, j| if (i, j) == (0, 1) { 0.5 + off } else { 0.5 }));
        let y = Mat::from_fn(a, a, |i, j| 0.25 * (i * j) as f64);
        let tol = 1e-14;
        // Off by 1e-13 at scale 102 (the fill's largest): rounding.
        let done = finish_block(0, a, m.clone(), Some((&e(1e-13), Some(&y))), tol).unwrap();
        assert!(done == done.transpose().to_owned(), "{done:?}");
        assert_eq!(done[(0, a)], -1.0);
        assert_eq!(done[(1, 1)], -102.0);
        assert!((done[(a, a + 1)] - 0.5).abs() < 1e-13 && done[(a, a + 1)] != 0.5);
        // Off by 1e-10: refused, at the block's scale.
        match finish_block(4, a, m, Some((&e(1e-10), Some(&y))), tol) {
            Err(TridiagError::NotSymmetric { row: 4, col: 4, tolerance, .. }) => assert_eq!(tolerance, tol * 104.0),
            other => panic!("{other:?}"),
        }
    }

    /// `[[P, -I], [-I, Q]]` with `P` of order `p` and `Q` of order `q`.
    fn block(a: usize, p: f64, q: f64) -> Mat<f64> {
        Mat::from_fn(2 * a, 2 * a, |i, j| match (i < a, j < a) {
            (true, true) => p * (1.0 + ((i * 3 + j * 3) % 7) as f64 / 7.0),
            (false, false) => q * (1.0 - ((i + j) % 5) as f64 / 5.0),
            _ if i.abs_diff(j) == a => -1.0,
            _ => 0.0,
        })
    }

    /// The balancing is the congruence `diag(sigma I, I / sigma)` bit for
    /// bit (powers of two), keeps the `-I`, and brings the scales of `P`
    /// and `Q` within a factor 4 of each other (one step of `sigma`
    /// moves their ratio by 16); error scales count as scales, and a block
    /// with a zero part is left alone.
    #[test]
    fn balancing_is_an_exact_congruence_that_meets_the_scales() {
        let a = 5;
        for (p, q, z_scale, y_scale) in [(1e12, 1e-14, 0.0, 0.0), (1e-3, 1e5, 0.0, 0.0), (1.0, 1e-14, 1e8, 0.0)] {
            let m = block(a, p, q);
            let mut b = m.clone();
            let sigma = balance(b.as_mut(), a, z_scale, y_scale);
            assert_eq!(sigma, 2f64.powi(sigma.log2() as i32), "a power of two");
            let s = |i: usize| if i < a { sigma } else { 1.0 / sigma };
            for j in 0..2 * a {
                for i in 0..2 * a {
                    assert_eq!(b[(i, j)].to_bits(), (s(i) * m[(i, j)] * s(j)).to_bits(), "({i}, {j})");
                }
            }
            let (pb, qb) = (
                blockmat::reduce::max_abs(b.as_ref().submatrix(0, 0, a, a)).max(sigma * sigma * z_scale),
                blockmat::reduce::max_abs(b.as_ref().submatrix(a, a, a, a)).max(y_scale / (sigma * sigma)),
            );
            assert!(pb <= 4.0 * qb && qb <= 4.0 * pb, "{p:e} {q:e}: {pb:e} against {qb:e}");
        }
        let mut b = block(a, 1e12, 0.0);
        assert_eq!(balance(b.as_mut(), a, 0.0, 0.0), 1.0);
        assert!(b == block(a, 1e12, 0.0));
    }
}
