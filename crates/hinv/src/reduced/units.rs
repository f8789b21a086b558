//! The fills of a dense layer's `G` through its units' factors.
//!
//! Eliminating layer `l`'s parameters fills `R` with `G^T A^-1 G` (on
//! `y_{l-1}`) and `Dx A^-1 G` (the coupling). Formed densely, `A^-1 G` is
//! `p_l x a_{l-1}` and `G^T A^-1 G` costs `2 batch^2 in^3 out` flops: at
//! width 32 and beyond, most of the factorization. A dense layer's `G`
//! is, for unit `k` and sample `s` ([`netgraph::UnitCoupling`]),
//!
//! ```text
//! G_k^s = c_sk z~_s w_k^T + beta_sk J        (J = [I; 0]: the unit's weights)
//! ```
//!
//! so with `X_k = (A_k + eps I)^-1`, `P_k = X_k Z~^T` and `Xj_k = X_k J`
//! (the unit's inverse on its weights' columns),
//!
//! ```text
//! X_k G_k^t = c_tk P_kt w_k^T + beta_tk Xj_k
//! (G^T A^-1 G)_st = sum_k  c_sk c_tk (z~_s . P_kt) w_k w_k^T
//!                        + c_sk beta_tk w_k P_ks[:in]^T + beta_sk c_tk P_kt[:in] w_k^T
//!                        + beta_sk beta_tk Xj_k[:in, :]
//! ```
//!
//! The first three terms are one product with `W` per sample and that
//! product's transpose (`2 batch^2 in^2 out` flops), the last one product
//! of the stacked `Xj_k` with the `out x batch^2` products of `beta`
//! (`2 batch^2 in^2 out`): `in / 2` times fewer flops than the dense route, and nothing of size `p_l x a_{l-1}` is
//! formed. `Dx A^-1 G` follows from the multipliers `m = X_k Dx[r, k]^T`
//! already at hand: row `r`, sample `t`: `c_tk (m . z~_t) w_k + beta_tk m[:in]`.

use blockmat::reduce::norm_l2;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use netgraph::UnitCoupling;
use tridiag::TridiagError;

use super::fills::Fills;
use super::group_solver::GroupSolver;
use super::multipliers::{Multipliers, Scratch};
use super::pack::Ragged;

/// Layers whose `G` has fewer entries than this are eliminated through the
/// formed `G`, whose products are then a few small calls. Measured in
/// instructions of `Factorization::new` (`one_solve` under callgrind, one
/// thread, against `540bdd0`'s formed route; docs/benchmarks.md): with the
/// check that the factors agree with `G` ([`agrees_with`]), the factors'
/// route took 5% fewer at L16 h16 B4 (`p a_{l-1}` = 16384) and 2% more at
/// L16 h24 B2 (27648), 7% fewer at L16 h16 B8 (32768), 18% at h32 B2; in
/// a build without the check and with the threshold overridden (not
/// kept), 2–7% more at h16 B2 (8192), h8 B16, h8 B8 and the demo.
pub(super) const MIN_ENTRIES: usize = 1 << 15;

/// A layer through the factors' route whose `G` has fewer entries than this
/// keeps `A^-1 G` formed for its solves (written from the factors: no more
/// flops); from this size on (`>=`) it solves through the factors. One
/// product with the formed matrix costs fewer instructions than the
/// factors' three small ones and a second application of `A_l^-1` at L16
/// h24 B2 (27648 entries: a refined solve 15.3M instructions formed, 17.4M
/// through the factors); at L16 h32 B2 (65536) the two cost the same
/// (26.4M formed, 26.0M through the factors), and the factors' route
/// stores 0.5 MB a layer less; at width 64 the formed `A^-1 G` (4 MB a
/// layer) is read from memory, and the factors' route is the faster
/// (docs/benchmarks.md).
pub(super) const SOLVE_FACTORS_MIN: usize = 1 << 16;

/// Whether group `k` of `members` is exactly unit `k`'s parameters, for
/// every unit (the groups of a dense layer's `A`, unless the layer
/// reported another structure).
pub(super) fn units_are_groups(u: &UnitCoupling, members: &Ragged) -> bool {
    members.len() == u.units()
        && members
            .iter()
            .enumerate()
            .all(|(k, m)| m.len() == u.unit_params() && m.iter().copied().eq(u.unit_indices(k)))
}

/// Whether `u` is the layer's formed `G` entry by entry, to the rounding of
/// `c w z + beta` summed in either order. The factors come from the
/// layer's products, which a user layer writes; the rest of hinv (the
/// interleaved elimination, the certificate's second opinion, the
/// reference routes) reads the block, so the factors are used only where
/// they say the same matrix. Reading `G` once costs `p_l a_{l-1}`
/// comparisons, against `2 batch in` times that for the formed route's
/// fills.
pub(super) fn agrees_with(u: &UnitCoupling, g: &blockmat::Block) -> bool {
    if u.shape() != g.shape() {
        return false;
    }
    let g = g.dense_view();
    let (batch, inp, units, n) = (u.batch(), u.inputs(), u.units(), u.unit_params());
    let (w, c, beta) = (u.w(), u.c(), u.beta());
    let mut zt = vec![1.0; n];
    for t in 0..batch {
        zt[..inp].iter_mut().enumerate().for_each(|(i, v)| *v = u.z()[(t, i)]);
        for j in 0..inp {
            let col = g.col(t * inp + j);
            let Some(col) = col.try_as_col_major() else { return false };
            let col = col.as_slice();
            // A boolean reduction without branches (a float one would
            // not vectorise); a NaN strays.
            let mut bad = false;
            for k in 0..units {
                let (cw, b) = (c[(t, k)] * w[(k, j)], beta[(t, k)]);
                let g = &col[k * inp..(k + 1) * inp];
                // The rank-one term alone but on the diagonal entry `j`:
                // two runs without a per-entry test, which vectorise.
                bad |= rank_one_strays(&g[..j], &zt[..j], cw) | rank_one_strays(&g[j + 1..], &zt[j + 1..inp], cw);
                let rank_one = cw * zt[j];
                bad |= strays(g[j] - rank_one - b, rank_one.abs() + b.abs());
                if u.has_bias() {
                    bad |= strays(col[units * inp + k] - cw, cw.abs());
                }
            }
            if bad {
                return false;
            }
        }
    }
    true
}

/// How far `c w z + beta`, summed in either order, may stray from the
/// formed entry, relative to its terms' magnitudes.
const AGREEMENT: f64 = 4.0 * f64::EPSILON;

/// Whether a deviation exceeds the rounding of terms of magnitude
/// `magnitude`, or is NaN: the negated comparison is false for a NaN in
/// one instruction, where `is_nan() ||` cost 3M more at L16 h32 B2.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
#[inline(always)]
fn strays(deviation: f64, magnitude: f64) -> bool {
    !(deviation.abs() <= AGREEMENT * magnitude)
}

/// Whether some `g_i` strays from `cw z_i`.
#[inline(always)]
fn rank_one_strays(g: &[f64], z: &[f64], cw: f64) -> bool {
    g.iter().zip(z).fold(false, |bad, (&g, &z)| {
        let rank_one = cw * z;
        bad | strays(g - rank_one, rank_one.abs())
    })
}

/// The fills of `u` (whose units are `solver`'s groups, [`units_are_groups`])
/// with the multipliers `xdx` of the same layer, and `A^-1 G` formed if
/// `form` (for the solves of a layer below [`SOLVE_FACTORS_MIN`]).
pub(super) fn fills(
    u: &UnitCoupling,
    solver: &GroupSolver<'_>,
    xdx: &Multipliers,
    form: bool,
    scratch: &mut Scratch,
) -> Result<Fills, TridiagError> {
    let (batch, inp, units, n) = (u.batch(), u.inputs(), u.units(), u.unit_params());
    let (w, c, beta) = (u.w(), u.c(), u.beta());
    let a_in = batch * inp;
    // `Z~^T` (`n x batch`): each sample's input, then 1 for the bias.
    let zt = Mat::from_fn(n, batch, |i, s| if i < inp { u.z()[(s, i)] } else { 1.0 });
    let mut p = Mat::<f64>::zeros(n, batch);
    let mut tmp = Mat::<f64>::zeros(n, batch);
    let mut zp = Mat::<f64>::zeros(batch, batch);
    // Every unit's `Xj_k` (`n x in`), one column each: the `beta beta` term
    // is one product with them. Both it and that product's `beta_terms` are
    // written whole before they are read, so they come from the scratch
    // uncleared (`stacked` is 2 MB per layer at width 64).
    let (stacked, beta_terms) = scratch.units(n * inp * (units + batch * batch)).split_at_mut(n * inp * units);
    // Rows `s out + k`, columns `t in + j`: the factor `F` of `W^T F`.
    let mut f = Mat::<f64>::zeros(batch * units, a_in);
    let mut xg_sq = vec![0.0f64; a_in];
    let mut xj_norm = vec![0.0f64; inp];
    let mut cf = Mat::<f64>::zeros(xdx.acts(), a_in);
    let mut alpha = Mat::<f64>::zeros(batch, xdx.widest_rows());
    let mut xg = form.then(|| Mat::<f64>::zeros(u.shape().0, a_in));
    for ((k, (rows, m)), xj_slice) in xdx.groups().enumerate().zip(stacked.chunks_exact_mut(n * inp)) {
        p.copy_from(&zt);
        solver.solve_with(k, p.as_mut(), tmp.as_mut())?;
        solver.inverse_columns(k, MatMut::from_column_major_slice_mut(xj_slice, n, inp))?;
        let xj = MatRef::from_column_major_slice(xj_slice, n, inp);
        matmul(zp.as_mut(), Accum::Replace, zt.transpose(), p.as_ref(), 1.0, Par::Seq);
        xj_norm.iter_mut().enumerate().for_each(|(j, v)| *v = norm_l2(xj.col(j).as_mat()));
        if let Some(xg) = xg.as_mut() {
            write_unit_columns(u, k, p.as_ref(), xj, xg.as_mut());
        }
        for t in 0..batch {
            let (ct, bt, p_norm) = (c[(t, k)], beta[(t, k)], norm_l2(p.col(t).as_mat()));
            for j in 0..inp {
                let cw = ct * w[(k, j)];
                // The magnitudes the column sums before it cancels: what
                // its rounding scales with, and a bound on its norm.
                let bound = cw.abs() * p_norm + bt.abs() * xj_norm[j];
                xg_sq[t * inp + j] += bound * bound;
            }
            for s in 0..batch {
                let (cs, half) = (c[(s, k)], 0.5 * c[(s, k)] * ct * zp[(s, t)]);
                let row = s * units + k;
                for j in 0..inp {
                    f[(row, t * inp + j)] = half * w[(k, j)] + cs * bt * p[(j, s)];
                }
            }
        }
        let mut alpha = alpha.as_mut().subcols_mut(0, rows.len());
        matmul(alpha.as_mut(), Accum::Replace, zt.transpose(), m, 1.0, Par::Seq);
        for t in 0..batch {
            let (ct, bt) = (c[(t, k)], beta[(t, k)]);
            for j in 0..inp {
                let (wj, mut dst) = (w[(k, j)], cf.as_mut().col_mut(t * inp + j));
                for (a, &r) in rows.iter().enumerate() {
                    // Added: a row of `Dx` touching several groups sums their shares.
                    dst[r] += ct * alpha[(t, a)] * wj + bt * m[(j, a)];
                }
            }
        }
    }
    let mut y = Mat::<f64>::zeros(a_in, a_in);
    for s in 0..batch {
        let dst = y.as_mut().subrows_mut(s * inp, inp);
        matmul(dst, Accum::Replace, w.transpose(), f.as_ref().subrows(s * units, units), 1.0, Par::Seq);
    }
    // `Y + Y^T` in place (a copy of `Y` was `a_{l-1}^2` per layer).
    for j in 0..a_in {
        for i in j..a_in {
            let sum = y[(i, j)] + y[(j, i)];
            y[(i, j)] = sum;
            y[(j, i)] = sum;
        }
    }
    let products = Mat::from_fn(units, batch * batch, |k, st| beta[(st % batch, k)] * beta[(st / batch, k)]);
    let stacked = MatRef::from_column_major_slice(stacked, n * inp, units);
    let mut terms = MatMut::from_column_major_slice_mut(beta_terms, n * inp, batch * batch);
    matmul(terms.as_mut(), Accum::Replace, stacked, products.as_ref(), 1.0, Par::Seq);
    for (st, term) in beta_terms.chunks_exact(n * inp).enumerate() {
        let (s, t) = (st % batch, st / batch);
        let term = MatRef::from_column_major_slice(term, n, inp).subrows(0, inp);
        let mut block = y.as_mut().submatrix_mut(s * inp, t * inp, inp, inp);
        block += term;
    }
    super::symmetrize(y.as_mut());
    let (g_max, g_col_norm) = g_scales(u, zt.as_ref());
    let xg_col_norm = xg_sq.into_iter().fold(0.0f64, f64::max).sqrt();
    Ok(Fills { y, cf, g_max, g_col_norm, xg_col_norm, xg, xg_scale: 1.0 })
}

/// Unit `k`'s rows of `A^-1 G`: in column `(t, j)`, `c_tk w_kj P_kt +
/// beta_tk Xj_k[:, j]`, the weights' rows a slice of the column.
fn write_unit_columns(u: &UnitCoupling, k: usize, p: MatRef<'_, f64>, xj: MatRef<'_, f64>, mut xg: MatMut<'_, f64>) {
    let (inp, units) = (u.inputs(), u.units());
    for t in 0..u.batch() {
        let (ct, bt) = (u.c()[(t, k)], u.beta()[(t, k)]);
        let pt = p.col(t).try_as_col_major().expect("an owned matrix").as_slice();
        for j in 0..inp {
            let cw = ct * u.w()[(k, j)];
            let xj_j = xj.col(j).try_as_col_major().expect("a packed column").as_slice();
            let mut col = xg.as_mut().col_mut(t * inp + j);
            let dst = col.as_mut().try_as_col_major_mut().expect("an owned matrix").as_slice_mut();
            dst[k * inp..(k + 1) * inp]
                .iter_mut()
                .zip(pt.iter().zip(xj_j))
                .for_each(|(d, (p, x))| *d = cw * p + bt * x);
            if u.has_bias() {
                dst[units * inp + k] = cw * pt[inp] + bt * xj_j[inp];
            }
        }
    }
}

/// Largest `|G_ij|`, and a bound on the column norms of `G` from its
/// factors (`|c_tk w_kj| ||z~_t|| + |beta_tk|` per unit): in column
/// `(t, j)`, unit `k`'s entries are `c_tk w_kj z~_t[i]`, plus `beta_tk` at
/// `i = j`.
fn g_scales(u: &UnitCoupling, zt: faer::MatRef<'_, f64>) -> (f64, f64) {
    let (w, c, beta) = (u.w(), u.c(), u.beta());
    let (mut g_max, mut col_sq_max) = (0.0f64, 0.0f64);
    for t in 0..u.batch() {
        let zt_t = zt.col(t);
        let z_norm = norm_l2(zt_t.as_mat());
        // The two largest `|z~_t[i]|`, and where the largest is: the
        // largest off the identity's entry in each column.
        let (mut first, mut second, mut at) = (0.0f64, 0.0f64, usize::MAX);
        for (i, v) in zt_t.iter().map(|v| v.abs()).enumerate() {
            if v > first {
                (second, first, at) = (first, v, i);
            } else if v > second {
                second = v;
            }
        }
        for j in 0..u.inputs() {
            let off = if at == j { second } else { first };
            let mut col_sq = 0.0;
            for k in 0..u.units() {
                let (cw, b) = (c[(t, k)] * w[(k, j)], beta[(t, k)]);
                g_max = g_max.max(cw.abs() * off).max((cw * zt_t[j] + b).abs());
                let bound = cw.abs() * z_norm + b.abs();
                col_sq += bound * bound;
            }
            col_sq_max = col_sq_max.max(col_sq);
        }
    }
    (g_max, col_sq_max.sqrt())
}

#[cfg(test)]
mod tests {
    use faer::Mat;
    use netgraph::{Activation, Batch, Network};
    use tridiag::FactorParams;

    use super::super::multipliers::Scratch;
    use super::super::{eliminate, InputCoupling, Reduced};

    /// Each hidden layer's fills through its units' factors against the
    /// formed `G`'s (the same derivatives with their products forgotten),
    /// and a solve through each: with and without a bias, batch 1 to 5,
    /// widths where the groups have explicit inverses and where they are
    /// projected (64 inputs at batch 2: low-rank unit blocks), residual
    /// layers, and a network far from its initialisation (a sigmoid at
    /// gain 3). The two routes sum the same products in different orders,
    /// so they differ by rounding: a few hundred `u` of each fill's error
    /// scale (the bound the certificate uses), at most `1e-12` of it; so
    /// do the `A^-1 G` written from the factors for a smaller layer's
    /// solves, and the solves through them or through the factors.
    #[test]
    fn unit_fills_match_the_formed_route() {
        let cases = [
            (true, 4, 24, Activation::Tanh, 1e-3),
            (false, 1, 36, Activation::Tanh, 1e-3),
            (true, 5, 20, Activation::Sigmoid, 1e-1),
            (false, 2, 64, Activation::Tanh, 1e-2),
            (true, 8, 16, Activation::Softplus(netgraph::Softplus::default()), 1.0),
        ];
        for (case, &(bias, batch, width, act, eps)) in cases.iter().enumerate() {
            let mut b = Network::builder(5);
            if !bias {
                b = b.without_bias();
            }
            let net = b.dense(width, act).repeat(2).residual(act).dense(width, act).cross_entropy(3).unwrap();
            let mut params = net.init_params(case as u64 + 3);
            if case == 2 {
                params.scale(3.0);
            }
            let fp = FactorParams::default();
            let mut s = Scratch::default();
            // A small layer's G is used formed.
            if case == 0 {
                let net = Network::builder(5).dense(8, act).repeat(2).cross_entropy(3).unwrap();
                let d = net.derivatives(&net.init_params(1), &Batch::random_classification(5, 3, batch, 2)).unwrap();
                let small = eliminate(&d, 1, eps, &fp, &mut s).unwrap();
                assert!(matches!(small.elim.g, InputCoupling::Formed { .. }), "a small layer's G is formed");
            }
            let data = Batch::random_classification(5, 3, batch, 11 + case as u64);
            let d = net.derivatives(&params, &data).unwrap();
            let mut formed = d.clone();
            formed.forget_products();
            // The factors agree with the formed block; factors that do not
            // (a tampered `beta`, one relative ulp-scale change too large to
            // be rounding; another batch's shape) are refused.
            let u = d.product(1).and_then(|p| p.unit_coupling()).expect("a dense layer's factors");
            assert!(super::agrees_with(&u, &d.layers[1].g), "case {case}: the factors are G's");
            let tampered = u.beta().to_owned() * faer::Scale(1.0 + 1e-13);
            let tampered =
                netgraph::UnitCoupling::new(u.w().to_owned(), u.z().to_owned(), u.c().to_owned(), tampered, bias);
            assert!(!super::agrees_with(&tampered.unwrap(), &d.layers[1].g), "case {case}: tampered beta");
            let (zs, cs, bs) =
                (u.z().subrows(0, batch - 1), u.c().subrows(0, batch - 1), u.beta().subrows(0, batch - 1));
            if batch > 1 {
                let fewer =
                    netgraph::UnitCoupling::new(u.w().to_owned(), zs.to_owned(), cs.to_owned(), bs.to_owned(), bias);
                assert!(!super::agrees_with(&fewer.unwrap(), &d.layers[1].g), "case {case}: another shape");
            }
            // One entry of G off by far more than rounding is found wherever
            // it sits in a unit's rows (the first, the diagonal and its
            // neighbours, the last input, the bias), for the first, a middle
            // and the last input
            // and unit of the last sample.
            let g = d.layers[1].g.to_dense();
            let delta = 1e-10 * g.norm_max();
            let (inp, units, t) = (u.inputs(), u.units(), batch - 1);
            for j in [0, inp / 2, inp - 1] {
                for k in [0, units / 2, units - 1] {
                    let mut rows = vec![k * inp, k * inp + j, k * inp + inp - 1];
                    // Next to the diagonal, where the runs around it end.
                    rows.extend(
                        [j.checked_sub(1), (j + 1 < inp).then_some(j + 1)].into_iter().flatten().map(|i| k * inp + i),
                    );
                    if bias {
                        rows.push(units * inp + k);
                    }
                    for r in rows {
                        let mut off = g.clone();
                        off[(r, t * inp + j)] += delta;
                        let off = blockmat::Block::dense(off);
                        assert!(!super::agrees_with(&u, &off), "case {case}: G off at ({r}, {})", t * inp + j);
                    }
                }
            }
            // Layer 1 has no G, the loss layer no unit factors.
            let mut through_units = false;
            for l in 1..d.layers.len() - 1 {
                let units = eliminate(&d, l, eps, &fp, &mut s).unwrap();
                let dense = eliminate(&formed, l, eps, &fp, &mut s).unwrap();
                let (p, a) = units.elim.g.shape();
                match (&units.elim.g, &dense.elim.g) {
                    (InputCoupling::Units(_), InputCoupling::Formed { .. }) => {
                        assert!(p * a >= super::SOLVE_FACTORS_MIN, "case {case} layer {l}: solved through units")
                    }
                    // Written from the factors for the solves: the formed route's `A^-1 G` to rounding.
                    (InputCoupling::Formed { m: xu, scale: 1.0 }, InputCoupling::Formed { m: xd, scale: 1.0 }) => {
                        assert!(p * a < super::SOLVE_FACTORS_MIN, "case {case} layer {l}: formed for the solves");
                        let err = (xu - xd).norm_max();
                        assert!(err <= 1e-12 * xd.norm_max(), "case {case} layer {l}: A^-1 G off by {err:e}");
                    }
                    _ => panic!("case {case} layer {l}: the formed route's G is formed"),
                }
                through_units |= matches!(units.elim.g, InputCoupling::Units(_));
                let close = |a: f64, b: f64, what: &str| {
                    assert!(
                        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()),
                        "case {case} layer {l} {what}: {a:e} vs {b:e}"
                    );
                };
                // The units' route scales its errors by the magnitudes it
                // sums (a bound on the norms the formed route measures).
                let at_least = |a: f64, b: f64, what: &str| {
                    assert!(a >= b * (1.0 - 1e-12), "case {case} layer {l} {what}: {a:e} below {b:e}");
                };
                at_least(units.y_scale, dense.y_scale, "y scale");
                at_least(units.z_scale, dense.z_scale, "z scale");
                close(units.growth, dense.growth, "growth");
                let (y, yd) = (units.yfill.as_ref().unwrap(), dense.yfill.as_ref().unwrap());
                let (c, cd) = (units.coupling.as_ref().unwrap(), dense.coupling.as_ref().unwrap());
                let y_err = (y - yd).norm_max();
                let c_err = (c - cd).norm_max();
                assert!(y_err <= 1e-12 * dense.y_scale, "case {case} layer {l}: G^T A^-1 G off by {y_err:e}");
                assert!(c_err <= 1e-12 * dense.z_scale.max(1.0), "case {case} layer {l}: coupling off by {c_err:e}");
                assert!(y_err > 0.0 || y.norm_max() == 0.0, "case {case} layer {l}: the two routes are distinct");
            }
            // Only the widest layers' solves go through the factors.
            assert_eq!(through_units, width == 64, "case {case}: solves through the units' factors");
            // The solves differ by the fills' rounding, amplified by the
            // conditioning of the lifted system: compared against each
            // other's scale, with the exact HVP's residual as the judge.
            let rhs = Mat::from_fn(net.num_params(), 2, |i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
            let xu = Reduced::factor(&d, eps, &fp, true).unwrap().unwrap().solve(rhs.as_ref()).unwrap();
            let xd = Reduced::factor(&formed, eps, &fp, true).unwrap().unwrap().solve(rhs.as_ref()).unwrap();
            let hx = crate::curvature::hvp_many(&d, xu.as_ref()).unwrap();
            let residual = (&rhs - &hx - &xu * faer::Scale(eps)).norm_max();
            let diff = (&xu - &xd).norm_max();
            assert!(diff <= 1e-6 * xd.norm_max(), "case {case}: solves differ by {diff:e} of {:e}", xd.norm_max());
            assert!(residual <= 1e-6 * rhs.norm_max(), "case {case}: residual {residual:e}");
        }
    }
}

#[cfg(test)]
mod zero_tests {
    use faer::Mat;
    use netgraph::{Activation, Batch, Network};
    use tridiag::FactorParams;

    use super::super::multipliers::Scratch;
    use super::super::{eliminate, InputCoupling, Reduced};

    /// The Gauss–Newton matrix's hidden layers have `G = 0` exactly (a
    /// zero block): no fills, `R`'s
    /// coupling is `Dz` itself, and the solves skip `G`. The same
    /// elimination through a dense `G` of zeros fills zeros: the two agree bit for bit on the couplings and to rounding on
    /// the solves (the same pivots; the formed route adds products of zero).
    #[test]
    fn zero_coupling_skips_the_fills() {
        let net = Network::builder(5).dense(16, Activation::Tanh).repeat(3).cross_entropy(3).unwrap();
        let (params, data) = (net.init_params(4), Batch::random_classification(5, 3, 4, 5));
        let d = net.ggn_derivatives(&params, &data).unwrap().derivatives;
        // The same blocks with each hidden `G` a dense matrix of zeros and
        // no products to say so.
        let mut formed = d.clone();
        formed.forget_products();
        let hidden = formed.layers.len() - 1;
        for b in &mut formed.layers[1..hidden] {
            assert!(b.g.is_zero(), "a hidden Gauss-Newton layer's G is a zero block");
            let (p, a) = b.g.shape();
            b.g = blockmat::Block::dense(Mat::zeros(p, a));
        }
        let (fp, eps) = (FactorParams::default(), 1e-2);
        let mut s = Scratch::default();
        for l in 1..d.layers.len() - 1 {
            let zero = eliminate(&d, l, eps, &fp, &mut s).unwrap();
            let dense = eliminate(&formed, l, eps, &fp, &mut s).unwrap();
            assert!(matches!(zero.elim.g, InputCoupling::Zero { .. }), "layer {l}");
            assert!(matches!(dense.elim.g, InputCoupling::Formed { .. }), "layer {l}");
            assert!(zero.yfill.is_none() && dense.yfill.as_ref().unwrap().norm_max() == 0.0, "layer {l}");
            assert_eq!(zero.coupling, dense.coupling, "layer {l}");
            assert_eq!((zero.y_scale, zero.z_scale), (0.0, dense.z_scale), "layer {l}");
        }
        let rhs = Mat::from_fn(net.num_params(), 2, |i, j| ((i * 5 + j) % 9) as f64 - 4.0);
        let xz = Reduced::factor(&d, eps, &fp, true).unwrap().unwrap().solve(rhs.as_ref()).unwrap();
        let xd = Reduced::factor(&formed, eps, &fp, true).unwrap().unwrap().solve(rhs.as_ref()).unwrap();
        let diff = (&xz - &xd).norm_max();
        assert!(diff <= 1e-10 * xd.norm_max(), "solves differ by {diff:e}");
    }
}
