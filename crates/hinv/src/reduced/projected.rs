//! Large parameter groups of low rank, eliminated on a small subspace.
//!
//! A dense layer's unit block is `A_g = U^T C U` with `U` the layer's
//! inputs (one row per sample, bias column included), so its rank is at
//! most the batch size, and `Dx` touches the group through rows of the
//! same `U` (scaled by the activation's slope). For a first layer reading
//! hundreds of pixels the group has `n = in + 1` parameters but rank
//! `r <= batch`: with `Q` an orthonormal basis of the touched rows of `Dx`
//! (`n x r`, from a QR), and `A_g = Q (Q^T A_g Q) Q^T` verified,
//!
//! ```text
//! (A_g + eps I)^-1 = Q T^-1 Q^T + (I - Q Q^T) / eps,    T = Q^T A_g Q + eps I
//! inertia(A_g + eps I) = inertia(T) + (n - r) x sign(eps)
//! ```
//!
//! (the `n - r` directions orthogonal to `Q` see `eps` alone), so the group
//! costs a `r x r` factorization instead of a `n x n` one. Nothing is
//! assumed of the layer: the identity is checked on the block itself, and a
//! group whose residual `||A_g - Q Q^T A_g Q Q^T||` is not at rounding
//! level, or too close to `|eps|` to leave the `eps` eigenvalues certain,
//! is factored densely as before.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use tridiag::{BlockDiagLdlt, FactorParams, TridiagError};

use super::groups::GroupBlock;
#[cfg(test)]
use super::groups::Part;

/// A residual above this fraction of `||A_g||_F` is not rounding: the
/// block is not of the rank its `Dx` rows span (a layer whose second
/// derivatives reach directions its first derivatives do not).
const MAX_RELATIVE_RESIDUAL: f64 = 1e-12;

/// The `eps` eigenvalues (and `T`'s pivots) must clear the residual by this
/// factor, as the certificate's other margins do
/// ([`crate::factor`]'s parity margin).
pub(super) const MARGIN: f64 = 1e3;

/// Groups smaller than this are never projected: the dense factorization
/// is as cheap as the QR and the check.
pub(crate) const MIN_SIZE: usize = 16;

/// Whether a group of `n` parameters whose `Dx` rows span rank `r` is worth
/// projecting. Measured in instructions for a whole solve of 16 tanh
/// layers (callgrind, one thread): unit blocks of 33 at rank 2 cost 18%
/// less projected, 17 at rank 2 6% less, 16 at rank 4 and 25 at rank 6
/// about 2% more; a first layer's 785 at rank 8 many times less.
pub(crate) fn worth_projecting(n: usize, r: usize) -> bool {
    n >= MIN_SIZE && (8 * r <= n || (n >= 64 && 4 * r <= n))
}

/// A group eliminated on the range of `q`.
#[derive(Debug)]
pub(super) struct Projection {
    /// Orthonormal basis of the touched `Dx` rows, `n x r`.
    pub(super) q: Mat<f64>,
    /// Bound on `||A_g - Q Q^T A_g Q Q^T||_2` (the measured Frobenius norm
    /// plus its own rounding).
    pub(super) residual: f64,
}

impl Projection {
    /// Number of the group's eigenvalues equal to `eps` up to `residual`.
    pub(super) fn eps_directions(&self) -> usize {
        self.q.nrows() - self.q.ncols()
    }
}

/// `Q` and `T = Q^T A Q + eps I` for the symmetric group block `a`
/// (`n x n`, without `eps`) whose `Dx` rows are `d` (`r x n`), or `None`
/// when the block is not of that rank to rounding, or when `eps` or a
/// pivot of `T` does not clear the residual by [`MARGIN`] (the residual
/// is a perturbation the pivots' own certificate does not see).
pub(super) fn project(
    a: &GroupBlock<'_>,
    d: MatRef<'_, f64>,
    eps: f64,
    params: &FactorParams,
) -> Option<(Projection, Mat<f64>)> {
    let (n, r) = (a.size(), d.nrows());
    if !worth_projecting(n, r) || eps == 0.0 || !eps.is_finite() {
        return None;
    }
    let q = d.transpose().to_owned().qr().compute_thin_Q();
    let mut aq = Mat::<f64>::zeros(n, r);
    a.mul_into(q.as_ref(), aq.as_mut());
    // A - (A Q) Q^T, a panel of columns at a time: `A = A Q Q^T` implies
    // `A = Q Q^T A Q Q^T` by symmetry.
    let panel = 64.min(n);
    let mut e = Mat::<f64>::zeros(n, panel);
    let mut residual_sq = 0.0f64;
    let mut a_sq = 0.0f64;
    for start in (0..n).step_by(panel) {
        let w = panel.min(n - start);
        let mut ep = e.as_mut().subcols_mut(0, w);
        a.columns_into(start, ep.as_mut());
        a_sq += ep.as_ref().squared_norm_l2();
        matmul(ep.as_mut(), Accum::Add, aq.as_ref(), q.as_ref().subrows(start, w).transpose(), -1.0, Par::Seq);
        residual_sq += ep.as_ref().squared_norm_l2();
    }
    let a_norm = a_sq.sqrt();
    // The products' own rounding: r terms per entry of `A Q Q^T`.
    let residual = residual_sq.sqrt() + 4.0 * (r as f64 + 2.0) * f64::EPSILON * a_norm;
    // A NaN residual (overflow) is refused too.
    let low_rank = residual <= MAX_RELATIVE_RESIDUAL * a_norm.max(f64::MIN_POSITIVE);
    if !low_rank || eps.abs() < MARGIN * residual {
        return None;
    }
    let mut t = Mat::<f64>::zeros(r, r);
    matmul(t.as_mut(), Accum::Replace, q.transpose(), aq.as_ref(), 1.0, Par::Seq);
    super::symmetrize_shifted(t.as_mut(), eps);
    let alone = BlockDiagLdlt::factor(vec![t.clone()], params).ok()?;
    let certain = alone.inertia().uncertain == 0 && alone.inertia().zero == 0;
    if !certain || alone.diagnostics().iter().any(|g| g.min_pivot < MARGIN * residual) {
        return None;
    }
    Some((Projection { q, residual }, t))
}

/// `block <- (A_g + eps I)^-1 block` for a projected group `g`, whose
/// `T` is block `g` of `ldlt`; `scratch` has at least `r` rows and the
/// block's columns.
pub(super) fn solve(
    p: &Projection,
    g: usize,
    eps: f64,
    ldlt: &BlockDiagLdlt,
    mut block: MatMut<'_, f64>,
    scratch: MatMut<'_, f64>,
) -> Result<(), TridiagError> {
    let mut y = scratch.submatrix_mut(0, 0, p.q.ncols(), block.ncols());
    matmul(y.as_mut(), Accum::Replace, p.q.transpose(), block.as_ref(), 1.0, Par::Seq);
    // (I - Q Q^T) b / eps, then + Q T^-1 Q^T b.
    matmul(block.as_mut(), Accum::Add, p.q.as_ref(), y.as_ref(), -1.0, Par::Seq);
    block *= faer::Scale(1.0 / eps);
    ldlt.solve_block_in_place(g, y.as_mut())?;
    matmul(block.as_mut(), Accum::Add, p.q.as_ref(), y.as_ref(), 1.0, Par::Seq);
    Ok(())
}

/// `out <- (A_g + eps I)^-1 [I; 0]`: the first `out.ncols()` columns of a
/// projected group's inverse, `I / eps + Q (T^-1 - I / eps) Q_1^T` with
/// `Q_1^T` the first columns of `Q^T`: one product of inner size `r`,
/// where [`solve`] on the identity makes three.
pub(super) fn inverse_columns(
    p: &Projection,
    g: usize,
    eps: f64,
    ldlt: &BlockDiagLdlt,
    mut out: MatMut<'_, f64>,
) -> Result<(), TridiagError> {
    let cols = out.ncols();
    let q1t = p.q.as_ref().subrows(0, cols).transpose();
    let mut m = q1t.to_owned();
    ldlt.solve_block_in_place(g, m.as_mut())?;
    m -= q1t * faer::Scale(1.0 / eps);
    out.fill(0.0);
    (0..cols).for_each(|j| out[(j, j)] = 1.0 / eps);
    matmul(out.as_mut(), Accum::Add, p.q.as_ref(), m.as_ref(), 1.0, Par::Seq);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rank-`r` block `U^T C U` with `Dx` rows `diag(s) U`, as a dense
    /// layer's unit produces them.
    fn unit(n: usize, r: usize, seed: u64) -> (Mat<f64>, Mat<f64>) {
        let f = |i: usize, j: usize, k: u64| (((i * 7919 + j * 104_729) as u64 * (k + 3)) % 1009) as f64 / 504.5 - 1.0;
        let u = Mat::from_fn(r, n, |i, j| f(i, j, seed));
        let c: Vec<f64> = (0..r).map(|i| if i % 3 == 0 { -1.5 } else { 0.7 + i as f64 }).collect();
        let cu = Mat::from_fn(r, n, |i, j| c[i] * u[(i, j)]);
        let mut a = Mat::<f64>::zeros(n, n);
        matmul(a.as_mut(), Accum::Replace, u.transpose(), cu.as_ref(), 1.0, Par::Seq);
        let d = Mat::from_fn(r, n, |i, j| (0.3 + 0.1 * i as f64) * u[(i, j)]);
        (a, d)
    }

    /// The projected inverse and inertia against a dense factorization of
    /// the same block: both are exact up to rounding of `cond(A + eps I)`
    /// (below 1e6 here), so 1e-9 relative leaves three digits of margin.
    #[test]
    fn projected_inverse_and_inertia_match_the_dense_block() {
        for (n, r, eps) in [(100, 8, 1e-2), (200, 5, -0.5), (80, 20, 3.0)] {
            let (a, d) = unit(n, r, n as u64);
            let (p, t) = project(&GroupBlock::Owned(a.clone()), d.as_ref(), eps, &FactorParams::default())
                .expect("a rank-r block projects");
            assert_eq!(p.eps_directions(), n - r);
            let ldlt = BlockDiagLdlt::factor(vec![t], &FactorParams::default()).unwrap();
            let mut dense = a.clone();
            for i in 0..n {
                dense[(i, i)] += eps;
            }
            let full = BlockDiagLdlt::factor(vec![dense.clone()], &FactorParams::default()).unwrap();
            let mut i = ldlt.inertia();
            if eps > 0.0 {
                i.positive += p.eps_directions();
            } else {
                i.negative += p.eps_directions();
            }
            assert_eq!((i.positive, i.negative, i.zero), (full.inertia().positive, full.inertia().negative, 0));
            let b = Mat::from_fn(n, 3, |i, j| ((i + 2 * j) % 7) as f64 - 3.0);
            let mut x = b.clone();
            let mut scratch = Mat::zeros(n, 3);
            solve(&p, 0, eps, &ldlt, x.as_mut(), scratch.as_mut()).unwrap();
            let resid = &dense * &x - &b;
            assert!(resid.norm_max() <= 1e-9 * b.norm_max() * dense.norm_max().max(1.0) * (1.0 + x.norm_max()));
            // The inverse's leading columns: `(A + eps I) X = [I; 0]` alike.
            let cols = n - 1;
            let mut xj = Mat::from_fn(n, cols, |_, _| f64::NAN);
            inverse_columns(&p, 0, eps, &ldlt, xj.as_mut()).unwrap();
            let mut resid = &dense * &xj;
            (0..cols).for_each(|j| resid[(j, j)] -= 1.0);
            assert!(resid.norm_max() <= 1e-9 * dense.norm_max().max(1.0) * (1.0 + xj.norm_max()));
        }
    }

    /// `Dx A^-1 Dx^T` and `G^T A^-1 G` of layer `l`, from its dense unit
    /// blocks shifted by `eps`.
    fn dense_fills(d: &netgraph::Derivatives, l: usize, eps: f64) -> (Mat<f64>, Mat<f64>) {
        use faer::linalg::solvers::Solve;
        let mut shifted = d.layers[l].a.to_dense();
        for i in 0..shifted.nrows() {
            shifted[(i, i)] += eps;
        }
        let lu = shifted.partial_piv_lu();
        let (dx, g) = (d.layers[l].dx.to_dense(), d.layers[l].g.to_dense());
        (&dx * lu.solve(dx.transpose().to_owned()), g.transpose() * lu.solve(&g))
    }

    /// A dense layer reading 200 inputs at batch 6: every unit's block
    /// (201 parameters, rank 6) is projected, the hidden layer's (5) are
    /// not, and the elimination's fills are those of the dense groups'
    /// elimination to rounding.
    #[test]
    fn a_wide_first_layer_is_projected_unit_by_unit() {
        use netgraph::{Activation, Batch, Network};
        let net = Network::builder(200).dense(4, Activation::Tanh).dense(4, Activation::Tanh).mse(2).unwrap();
        let mut params = net.init_params(3);
        params.scale(2.0);
        let d = net.derivatives(&params, &Batch::random_regression(200, 2, 6, 4)).unwrap();
        let fp = FactorParams::default();
        // One scratch for both layers, as a thread of the factorization uses it.
        let mut s = super::super::multipliers::Scratch::default();
        let first = super::super::eliminate(&d, 0, 1e-2, &fp, &mut s).unwrap();
        assert_eq!(first.elim.projections.iter().flatten().count(), 4);
        let second = super::super::eliminate(&d, 1, 1e-2, &fp, &mut s).unwrap();
        assert_eq!(second.elim.projections.iter().flatten().count(), 0);
        let (want, _) = dense_fills(&d, 0, 1e-2);
        let diff = (first.zfill() - &want).norm_max();
        // cond(A_g + eps I) is about |A_g| / eps ~ 1e3 here: 1e-10 relative
        // leaves a margin of 1e2 over its rounding.
        assert!(diff <= 1e-10 * want.norm_max(), "fill differs by {diff:e} of {:e}", want.norm_max());
    }

    /// Hidden layers of width 20 at batch 2 (unit blocks of 21 parameters,
    /// rank 2) are projected too, with and without bias, for either sign
    /// of `eps`: both fills match the dense elimination's.
    #[test]
    fn narrow_hidden_units_of_low_rank_are_projected() {
        use netgraph::{Activation, Batch, Network};
        for (bias, eps) in [(true, 1e-2), (false, 1e-2), (true, -0.3)] {
            let b = Network::builder(6);
            let b = if bias { b } else { b.without_bias() };
            let net = b.dense(20, Activation::Tanh).repeat(3).cross_entropy(3).unwrap();
            let d = net.derivatives(&net.init_params(5), &Batch::random_classification(6, 3, 2, 6)).unwrap();
            let fp = FactorParams::default();
            let mut s = super::super::multipliers::Scratch::default();
            for l in 1..3 {
                let e = super::super::eliminate(&d, l, eps, &fp, &mut s).unwrap();
                assert_eq!(e.elim.projections.iter().flatten().count(), 20, "layer {l}");
                let (want, want_y) = dense_fills(&d, l, eps);
                // cond(A_g + eps I) <= |A_g| / |eps| ~ 1e2: 1e-11 relative
                // leaves a margin of 1e2 over its rounding.
                let diff = (e.zfill() - &want).norm_max();
                assert!(diff <= 1e-11 * want.norm_max(), "layer {l}: fill differs by {diff:e}");
                let y = e.yfill.expect("a hidden layer has G");
                let diff = (&y - &want_y).norm_max();
                assert!(diff <= 1e-11 * want_y.norm_max(), "layer {l}: G^T A^-1 G differs by {diff:e}");
            }
        }
    }

    /// A block reaching beyond its `Dx` rows (full rank), a shift within
    /// the residual, and a group too small or of too high a rank are all
    /// left to the dense factorization.
    #[test]
    fn refuses_what_it_cannot_vouch_for() {
        let fp = FactorParams::default();
        let (mut a, d) = unit(100, 8, 1);
        assert!(project(&GroupBlock::Owned(a.clone()), d.as_ref(), 0.0, &fp).is_none(), "eps = 0: singular");
        assert!(project(&GroupBlock::Owned(a.clone()), d.as_ref(), 1e-300, &fp).is_none(), "eps below the residual");
        let (small, ds) = unit(MIN_SIZE - 1, 2, 2);
        assert!(project(&GroupBlock::Owned(small), ds.as_ref(), 1.0, &fp).is_none(), "too small to pay");
        let (wide, dw) = unit(100, 30, 3);
        assert!(project(&GroupBlock::Owned(wide), dw.as_ref(), 1.0, &fp).is_none(), "rank too high to pay");
        let (narrow, dn) = unit(24, 4, 4);
        assert!(project(&GroupBlock::Owned(narrow), dn.as_ref(), 1.0, &fp).is_none(), "rank too high for its size");
        a[(5, 5)] += 1e-6;
        assert!(
            project(
                &GroupBlock::Parts { size: 100, parts: vec![(0, 0, Part::Dense(a.as_ref()))] },
                d.as_ref(),
                1.0,
                &fp
            )
            .is_none(),
            "full rank beyond Dx's rows"
        );
    }
}
