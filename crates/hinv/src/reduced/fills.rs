//! What a layer's `G` fills into `R` (`G^T A^-1 G` on `y_{l-1}`, `Dx A^-1 G`
//! coupling `z_l` to it) and the scales of their errors, by either route:
//! through the formed `A^-1 G` here, or through a dense layer's units'
//! factors ([`super::units::fills`]).

use blockmat::reduce::{max_abs, max_col_norm};
use blockmat::Block;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use tridiag::TridiagError;

use super::group_solver::GroupSolver;
use super::multipliers::{DxPieces, Multipliers, Scratch};
use super::pack::Ragged;

/// What layer `l`'s `G` fills into `R`, and the scales of its errors
/// (through the units' factors, `units::fills`, or the formed `G`,
/// [`formed_fills`]).
pub(super) struct Fills {
    /// `G^T A^-1 G` (`a_{l-1}` square, symmetric).
    pub(super) y: Mat<f64>,
    /// `Dx A^-1 G` (`a_l x a_{l-1}`).
    pub(super) cf: Mat<f64>,
    /// Largest `|G_ij|`.
    pub(super) g_max: f64,
    /// Largest column norm of `G`, or a bound on it from magnitudes
    /// before cancellation (the units' route sums those).
    pub(super) g_col_norm: f64,
    /// Largest column norm of `A^-1 G`, or a bound on it alike.
    pub(super) xg_col_norm: f64,
    /// `A^-1 G` formed (`p_l x a_{l-1}`), when asked for, divided by
    /// `xg_scale`.
    pub(super) xg: Option<Mat<f64>>,
    /// A power of two: `A^-1 G = xg_scale xg`.
    pub(super) xg_scale: f64,
}

/// The fills of a layer's formed `G`, through the formed `A^-1 G` (kept
/// for the solves). Without a `solver` (a zero pivot) `G` stands in for
/// `A^-1 G`: the elimination is refused anyway.
pub(super) fn formed_fills(
    g: &Block,
    solver: Option<&GroupSolver<'_>>,
    members: &Ragged,
    dx: &DxPieces,
    xdx: &Multipliers,
    scratch: &mut Scratch,
) -> Result<Fills, TridiagError> {
    let g = g.dense_view();
    let g: &Mat<f64> = &g;
    let g_max = max_abs(g.as_ref());
    // The products on `gs = G / down` (`down` a power of two), their
    // results scaled back; `A^-1 G` stays scaled up for the solves' products
    // (`xg_scale`, below).
    let mut fills_of = |gs: &Mat<f64>, down: f64| -> Result<Fills, TridiagError> {
        let mut xg = gs.clone();
        if let Some(s) = solver {
            s.apply(members, xg.as_mut(), scratch.reserve(members.widest(), g.ncols()))?;
        }
        let mut y = Mat::<f64>::zeros(g.ncols(), g.ncols());
        matmul(y.as_mut(), Accum::Replace, gs.transpose(), xg.as_ref(), 1.0, Par::Seq);
        super::symmetrize(y.as_mut());
        let mut cf = xdx.dx_times(dx, members, xg.as_ref(), scratch);
        // (Norms of the scaled blocks, scaled back: their squares
        // underflow too.)
        let (g_col_norm, xg_col_norm) = (down * max_col_norm(gs.as_ref()), down * max_col_norm(xg.as_ref()));
        if down != 1.0 {
            // (`down * down` itself may underflow: twice instead.)
            y *= faer::Scale(down);
            y *= faer::Scale(down);
            cf *= faer::Scale(down);
        }
        Ok(Fills { y, cf, g_max, g_col_norm, xg_col_norm, xg: Some(xg), xg_scale: down })
    };
    // A vanishing G (deep networks at initialisation: entries down to the
    // subnormal range) makes every product underflow, which the processor
    // computes in microcode: they run on G scaled up by a power of two,
    // exactly, so that only their results can underflow (rounded once, or
    // twice for `G^T A^-1 G`, where the unscaled products underflowed
    // term by term).
    let (up, down) = unit_scale(g_max);
    if up != 1.0 {
        let mut f = fills_of(&(g * faer::Scale(up)), down)?;
        // Scaled up, the products with a nearly singular group's inverse
        // may overflow (or give NaN) where the unscaled ones would not:
        // those run then.
        let finite = f.y.is_all_finite() && f.cf.is_all_finite() && f.xg_col_norm.is_finite();
        if let Some(xg) = f.xg.as_mut().filter(|xg| finite && xg.is_all_finite()) {
            // `A^-1 G` kept with its largest entry near one where it is
            // larger (of order `1 / eps`), but no smaller than unscaled: the
            // solves' products keep the headroom the plain ones had, and
            // no entry falls below where it was.
            let j = max_abs(xg.as_ref()).log2().floor().clamp(0.0, -down.log2());
            if j > 0.0 {
                *xg *= faer::Scale(2f64.powi(-(j as i32)));
                f.xg_scale = down * 2f64.powi(j as i32);
            }
            return Ok(f);
        }
    }
    fills_of(g, 1.0)
}

/// Largest entry below which [`unit_scale`] scales: products of two
/// such entries (with `A^-1` of order `1/eps` between them) stay normal
/// numbers above it.
const SCALE_BELOW: f64 = 1e-100;

/// `(2^k, 2^-k)` bringing `max` (a largest magnitude) up to order one when
/// it is positive and below [`SCALE_BELOW`], with `k <= 1000` so that both
/// are normal numbers; `(1, 1)` otherwise (ordinary blocks keep their
/// numbers bit for bit).
fn unit_scale(max: f64) -> (f64, f64) {
    if !(max > 0.0 && max < SCALE_BELOW) {
        return (1.0, 1.0);
    }
    let k = (-max.log2().floor()).min(1000.0) as i32;
    (2f64.powi(k), 2f64.powi(-k))
}

#[cfg(test)]
mod tests {
    use netgraph::{Activation, Batch, Network};
    use tridiag::FactorParams;

    use super::super::multipliers::Scratch;
    use super::super::{eliminate, InputCoupling};
    use super::unit_scale;

    /// A layer whose `G` is `2^-350` times another's (all else equal)
    /// fills `R` with exactly `2^-700` times its `G^T A^-1 G` and keeps
    /// `2^-350` times its `A^-1 G`, as a scaled-up matrix and its power
    /// of two (scaling by powers of two is exact):
    /// the products ran on `G` scaled up, and each result was scaled back
    /// by the right power; so is its coupling `Dz - Dx A^-1 G` where `Dz`
    /// is zero.
    #[test]
    fn a_vanishing_g_fills_as_a_scaled_copy() {
        let net = Network::builder(5).dense(6, Activation::Tanh).repeat(3).cross_entropy(3).unwrap();
        let d = net.derivatives(&net.init_params(5), &Batch::random_classification(5, 3, 3, 6)).unwrap();
        let mut tiny = d.clone();
        tiny.forget_products();
        let l = 1;
        tiny.layers[l].g = tiny.layers[l].g.scale(2f64.powi(-350));
        let (fp, mut s) = (FactorParams::default(), Scratch::default());
        let (eps, down) = (1e-2, 2f64.powi(-350));
        let mut formed = d.clone();
        formed.forget_products();
        let plain = eliminate(&formed, l, eps, &fp, &mut s).unwrap();
        let small = eliminate(&tiny, l, eps, &fp, &mut s).unwrap();
        let (y, ys) = (plain.yfill.unwrap(), small.yfill.unwrap());
        assert!(ys == &(&y * faer::Scale(down)) * faer::Scale(down), "G^T A^-1 G");
        let (InputCoupling::Formed { m: xg, scale: 1.0 }, InputCoupling::Formed { m: xs, scale }) =
            (&plain.elim.g, &small.elim.g)
        else {
            panic!("a small layer's A^-1 G is formed, an ordinary one unscaled");
        };
        // Kept scaled up, for the solves' products.
        assert!(*scale < 1e-100 && xs.norm_max() > 1e-3, "A^-1 G kept at {:e} times {scale:e}", xs.norm_max());
        assert!(xs * faer::Scale(*scale) == xg * faer::Scale(down), "A^-1 G");
        // Where `Dz` is zero (across samples) the coupling is the fill
        // alone, scaled like `A^-1 G`; elsewhere the fill is below `Dz`'s
        // rounding.
        let (dz, c, cs) = (d.layers[l].dz.to_dense(), plain.coupling.unwrap(), small.coupling.unwrap());
        let want =
            faer::Mat::from_fn(
                dz.nrows(),
                dz.ncols(),
                |i, j| {
                    if dz[(i, j)] == 0.0 {
                        c[(i, j)] * down
                    } else {
                        dz[(i, j)]
                    }
                },
            );
        assert!(cs == want, "Dz - Dx A^-1 G");
        assert!(c != dz && (0..dz.ncols()).any(|j| (0..dz.nrows()).any(|i| dz[(i, j)] == 0.0 && c[(i, j)] != 0.0)));
    }

    /// Where the scaled-up products would overflow (a group's inverse
    /// `I / eps` with `eps` near the underflow threshold), the fills run on
    /// `G` as it is: `A^-1 G` is kept unscaled.
    #[test]
    fn an_overflowing_scale_falls_back_to_the_plain_products() {
        let net = Network::builder(5).dense(6, Activation::Tanh).repeat(3).cross_entropy(3).unwrap();
        let mut d = net.derivatives(&net.init_params(5), &Batch::random_classification(5, 3, 1, 6)).unwrap();
        d.forget_products();
        let l = 1;
        d.layers[l].g = d.layers[l].g.scale(2f64.powi(-350));
        // `A_l = 0`: every group's pivots are `eps`, exactly.
        d.layers[l].a = d.layers[l].a.scale(0.0);
        let (fp, mut s) = (FactorParams::default(), Scratch::default());
        let scale_at = |eps: f64, s: &mut Scratch| match eliminate(&d, l, eps, &fp, s).unwrap().elim.g {
            InputCoupling::Formed { scale, .. } => scale,
            _ => panic!("a small layer's A^-1 G is formed"),
        };
        assert!(scale_at(1e-2, &mut s) < 1e-100, "scaled at an ordinary eps");
        assert_eq!(scale_at(1e-306, &mut s), 1.0, "unscaled where scaling would overflow");
    }

    /// A solve through a layer whose `A^-1 G` is kept scaled applies its
    /// power of two: the factorization alone (no refinement, which would
    /// repair a wrong coupling through the exact products) meets the dense
    /// solve of the same `H`, whose `G` is `2^-350` times the network's.
    #[test]
    fn solves_apply_the_kept_scale() {
        use crate::reference::{self, DenseLimit};
        use crate::{Curvature, Elimination, FactorOptions, SolveOptions};
        let net = Network::builder(5).dense(6, Activation::Tanh).repeat(3).cross_entropy(3).unwrap();
        let mut d = net.derivatives(&net.init_params(5), &Batch::random_classification(5, 3, 3, 6)).unwrap();
        d.forget_products();
        d.layers[1].g = d.layers[1].g.scale(2f64.powi(-350));
        let curv = Curvature::from_derivatives(d).unwrap();
        let eps = 1e-2;
        let opts = FactorOptions { elimination: Elimination::ParametersFirst, ..FactorOptions::default() };
        let f = curv.factor_with(eps, &opts).unwrap();
        // (Its layer 1 keeps `A^-1 G` scaled: `a_vanishing_g_fills_as_a_scaled_copy`.)
        assert_eq!(f.elimination(), Elimination::ParametersFirst);
        let g: Vec<f64> = (0..curv.num_params()).map(|i| ((i * 37 % 11) as f64 - 5.0) / 5.0).collect();
        let raw = SolveOptions { max_refinements: 0, accept_inexact: true, ..SolveOptions::default() };
        let solution = f.solve_with(faer::MatRef::from_column_major_slice(&g, g.len(), 1), &raw).unwrap();
        // (A block answer off by more than the tolerance would be replaced
        // by the pivoted elimination's, which never reads `A^-1 G`.)
        assert_eq!(solution.report.method, crate::SolveMethod::BlockLdlt);
        let x = solution.x;
        let h = reference::hessian(&curv, DenseLimit::default()).unwrap();
        let want = reference::solve(h.as_ref(), eps, &g).unwrap();
        let err = (0..want.len()).map(|i| (x[(i, 0)] - want[i]).powi(2)).sum::<f64>().sqrt()
            / want.iter().map(|v| v * v).sum::<f64>().sqrt();
        // The parameters-first raw solve carries about eps_mach times its
        // growth (2.4e4 here) times cond(H + eps I), a few units: 1.2e-11
        // measured, the same bit for bit with the scaling switched off.
        // A coupling applied without its power of two misses by far more.
        assert!(err < 1e-10, "raw solve off by {err:e}");
    }

    /// Ordinary magnitudes are left alone; a tiny or subnormal largest
    /// entry is brought to order one, by at most `2^1000`.
    #[test]
    fn unit_scale_leaves_ordinary_blocks_alone() {
        for m in [0.0, 1e-100, 1.0, 1e300, f64::NAN, f64::INFINITY] {
            assert_eq!(unit_scale(m), (1.0, 1.0), "{m:e}");
        }
        let (up, down) = unit_scale(3e-120);
        assert!((1.0..2.0).contains(&(3e-120 * up)) && up * down == 1.0);
        let (up, down) = unit_scale(5e-324);
        assert_eq!((up, down), (2f64.powi(1000), 2f64.powi(-1000)));
    }
}
