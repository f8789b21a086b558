//! Matrix-free Hessian products: a layer's share of `H v` computed from its
//! weights and activations instead of its five formed blocks.
//!
//! Pearlmutter's product (ALGORITHM.md) reads every layer's `Dx`, `Dz`, `A`,
//! `G` and `E` once forward and once backward. For a dense layer of width
//! `h` reading `m` inputs those hold about `B h m + h m^2 + B h m^2` numbers
//! (`A` per unit, `G` dense), while the same products follow from `W`
//! (`h x m`), the layer's input (`B x m`) and three `B x h` vectors: at
//! depth, an HVP over the formed blocks no longer fits in cache and runs
//! at the speed of memory, not of arithmetic. A layer that can say its
//! products in closed form implements [`LayerProduct`] and returns it from
//! [`crate::Layer::product`]; any other layer's products use its blocks.

use std::sync::Arc;

use faer::linalg::matmul::matmul;
use faer::reborrow::{IntoConst, ReborrowMut};
use faer::{Accum, MatMut, MatRef, Par};

use crate::activation::Activation;
use crate::coupling::UnitCoupling;

/// One layer's products with the five blocks of ALGORITHM.md, for one
/// column (all vectors flat; activations row-major `batch x features`,
/// parameters in the layer's own order).
///
/// Both methods must equal the blocks' products to rounding: the
/// factorization reads the blocks, but every solve is refined, and its
/// backward error measured, with this product. A large mismatch makes
/// refinement stall and the solve be refused; a small one would be
/// solved for as if it were the Hessian. [`crate::check_layer`] compares
/// a layer's products with finite differences. `t_in` is `None` for a
/// network's first layer, whose input is data: its `Dz`, `G` and `E` terms
/// are absent and `s_in` is not asked for.
///
/// Lengths: `v` and `hv` hold the layer's `p_l` parameters, `t_in` and
/// `s_in` its `a_(l-1)` inputs, `t_out` and `s` its `a_l` outputs, and
/// `scratch` at least [`LayerProduct::scratch_len`] entries. hinv's
/// Hessian-vector product passes exactly these; called directly with
/// other lengths, the built-in products panic (index out of bounds), as
/// the built-in layers do.
pub trait LayerProduct: Send + Sync + std::fmt::Debug {
    /// Entries of scratch the methods need.
    fn scratch_len(&self) -> usize;
    /// `t_out = Dx v + Dz t_in` (overwritten).
    fn tangent(&self, v: &[f64], t_in: Option<&[f64]>, t_out: &mut [f64], scratch: &mut [f64]);
    /// `hv += A v + G t_in + Dx^T s`, and `s_in = G^T v + E t_in + Dz^T s`
    /// (overwritten) when asked for.
    fn adjoint(
        &self,
        v: &[f64],
        t_in: Option<&[f64]>,
        s: &[f64],
        hv: &mut [f64],
        s_in: Option<&mut [f64]>,
        scratch: &mut [f64],
    );
    /// The same layer's products with `A`, `G` and `E` dropped, its blocks
    /// in the generalized Gauss–Newton matrix ([`crate::GgnDerivatives`]);
    /// `None` (the default) when it cannot give them, and the Gauss–Newton
    /// products then read the blocks.
    fn gauss_newton(&self) -> Option<Arc<dyn LayerProduct>> {
        None
    }
    /// The layer's `G` by its units' factors, when it is that of a linear
    /// map ([`UnitCoupling`]); `None` (the default) when it is not, and
    /// solvers read the formed block. Like the products, it must equal the
    /// block to rounding: hinv's parameters-first elimination forms
    /// `G^T A^-1 G` and `A^-1 G` through it.
    fn unit_coupling(&self) -> Option<UnitCoupling> {
        None
    }
}

/// A dense (or residual) layer `z -> act(z W^T + b) (+ z)` at one point:
/// with `u = z W^T + b`, `d = act'(u)`, `c = b_out * act''(u)` and
/// `beta = b_out * act'(u)` (all `batch x out`), and the tangent of the
/// pre-activations `du = z V^T + v_b + t_in W^T`:
///
/// - `t_out = d * du (+ t_in)`;
/// - with `alpha = c * du + d * s`: `hv_W += alpha^T z + beta^T t_in`,
///   `hv_b += colsum(alpha)`, `s_in = alpha W + beta V (+ s)`.
///
/// These are `Dx`, `Dz`, `A`, `G` and `E` of `dense.rs` multiplied out.
#[derive(Debug, Clone)]
pub(crate) struct DenseProduct {
    /// `W`, `z`, `d`, `c` and `beta`, row-major, back to back: one
    /// allocation without faer's column padding, so that a deep network's
    /// products stay in cache (each layer's are read twice per product).
    data: Vec<f64>,
    batch: usize,
    inp: usize,
    out: usize,
    bias: bool,
    residual: bool,
}

impl DenseProduct {
    /// The products at weights `w` (row-major `out x in`, as the layer's
    /// parameters), input `z`, pre-activations `u = z W^T + b` (`batch x
    /// out`) and `b_out` (row-major `batch x out`); `None` when a stored number is
    /// not finite: the blocks then decide (and the caller refuses them).
    pub(crate) fn new(
        w: &[f64],
        z: MatRef<'_, f64>,
        u: MatRef<'_, f64>,
        b_out: &[f64],
        act: Activation,
        bias: bool,
        residual: bool,
    ) -> Option<DenseProduct> {
        let ((batch, inp), out) = (z.shape(), u.ncols());
        let mut data = Vec::with_capacity(out * inp + batch * (inp + 3 * out));
        data.extend_from_slice(&w[..out * inp]);
        data.extend((0..batch).flat_map(|s| (0..inp).map(move |j| z[(s, j)])));
        let start = data.len();
        data.resize(start + 3 * batch * out, 0.0);
        let (d, rest) = data[start..].split_at_mut(batch * out);
        let (c, beta) = rest.split_at_mut(batch * out);
        for i in 0..batch * out {
            let (_, d1, d2) = act.eval(u[(i / out, i % out)]);
            (d[i], c[i], beta[i]) = (d1, b_out[i] * d2, b_out[i] * d1);
        }
        let finite = data.iter().all(|v| v.is_finite());
        finite.then_some(DenseProduct { data, batch, inp, out, bias, residual })
    }

    fn sizes(&self) -> (usize, usize, usize) {
        (self.batch, self.inp, self.out)
    }

    /// `W`, `z`, `d`, `c` and `beta`.
    fn parts(&self) -> [MatRef<'_, f64>; 5] {
        let (batch, inp, out) = self.sizes();
        let (w, rest) = self.data.split_at(out * inp);
        let (z, rest) = rest.split_at(batch * inp);
        let (d, rest) = rest.split_at(batch * out);
        let (c, beta) = rest.split_at(batch * out);
        [
            MatRef::from_row_major_slice(w, out, inp),
            MatRef::from_row_major_slice(z, batch, inp),
            MatRef::from_row_major_slice(d, batch, out),
            MatRef::from_row_major_slice(c, batch, out),
            MatRef::from_row_major_slice(beta, batch, out),
        ]
    }

    /// `du = z V^T + v_b + t_in W^T` into `du` (`batch x out`).
    fn pre_tangent(&self, v: &[f64], t_in: Option<&[f64]>, mut du: MatMut<'_, f64>) {
        let (batch, inp, out) = self.sizes();
        let [w, z, ..] = self.parts();
        let vw = MatRef::from_row_major_slice(&v[..out * inp], out, inp);
        matmul(du.rb_mut(), Accum::Replace, z, vw.transpose(), 1.0, Par::Seq);
        if let Some(t) = t_in {
            let t = MatRef::from_row_major_slice(t, batch, inp);
            matmul(du.rb_mut(), Accum::Add, t, w.transpose(), 1.0, Par::Seq);
        }
        if self.bias {
            let vb = &v[out * inp..out * inp + out];
            for s in 0..batch {
                for (k, b) in vb.iter().enumerate() {
                    du[(s, k)] += b;
                }
            }
        }
    }
}

impl LayerProduct for DenseProduct {
    fn scratch_len(&self) -> usize {
        let (batch, _, out) = self.sizes();
        batch * out
    }

    /// `c = beta = 0`: `A`, `G` and `E` vanish with them, `Dx` and `Dz`
    /// keep `d`.
    fn gauss_newton(&self) -> Option<Arc<dyn LayerProduct>> {
        let (batch, inp, out) = self.sizes();
        let mut ggn = self.clone();
        let start = out * inp + batch * inp + batch * out;
        ggn.data[start..].fill(0.0);
        Some(Arc::new(ggn))
    }

    /// `W`, the input, `c` and `beta` copied out: `G` of `dense.rs`.
    fn unit_coupling(&self) -> Option<UnitCoupling> {
        let [w, z, _, c, beta] = self.parts();
        UnitCoupling::new(w.to_owned(), z.to_owned(), c.to_owned(), beta.to_owned(), self.bias).ok()
    }

    fn tangent(&self, v: &[f64], t_in: Option<&[f64]>, t_out: &mut [f64], _scratch: &mut [f64]) {
        let (batch, inp, out) = self.sizes();
        let mut du = MatMut::from_row_major_slice_mut(t_out, batch, out);
        self.pre_tangent(v, t_in, du.rb_mut());
        let [_, _, d, ..] = self.parts();
        let t_in = t_in.map(|t| MatRef::from_row_major_slice(t, batch, inp));
        for s in 0..batch {
            for k in 0..out {
                let skip = match (self.residual, t_in) {
                    (true, Some(t)) => t[(s, k)],
                    _ => 0.0,
                };
                du[(s, k)] = d[(s, k)] * du[(s, k)] + skip;
            }
        }
    }

    fn adjoint(
        &self,
        v: &[f64],
        t_in: Option<&[f64]>,
        s: &[f64],
        hv: &mut [f64],
        s_in: Option<&mut [f64]>,
        scratch: &mut [f64],
    ) {
        let (batch, inp, out) = self.sizes();
        let mut alpha = MatMut::from_row_major_slice_mut(&mut scratch[..batch * out], batch, out);
        self.pre_tangent(v, t_in, alpha.rb_mut());
        let [w, z, d, c, beta] = self.parts();
        let s = MatRef::from_row_major_slice(s, batch, out);
        for i in 0..batch {
            for k in 0..out {
                alpha[(i, k)] = c[(i, k)] * alpha[(i, k)] + d[(i, k)] * s[(i, k)];
            }
        }
        let alpha = alpha.into_const();
        let t_in = t_in.map(|t| MatRef::from_row_major_slice(t, batch, inp));
        let (hw, hb) = hv.split_at_mut(out * inp);
        let mut hw = MatMut::from_row_major_slice_mut(hw, out, inp);
        matmul(hw.rb_mut(), Accum::Add, alpha.transpose(), z, 1.0, Par::Seq);
        if let Some(t) = t_in {
            matmul(hw, Accum::Add, beta.transpose(), t, 1.0, Par::Seq);
        }
        if self.bias {
            for (k, h) in hb[..out].iter_mut().enumerate() {
                *h += (0..batch).map(|i| alpha[(i, k)]).sum::<f64>();
            }
        }
        if let Some(s_in) = s_in {
            let mut s_in = MatMut::from_row_major_slice_mut(s_in, batch, inp);
            matmul(s_in.rb_mut(), Accum::Replace, alpha, w, 1.0, Par::Seq);
            let vw = MatRef::from_row_major_slice(&v[..out * inp], out, inp);
            matmul(s_in.rb_mut(), Accum::Add, beta, vw, 1.0, Par::Seq);
            if self.residual {
                s_in += s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use faer::Mat;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use crate::batch::Targets;
    use crate::{Activation, Dense, Layer, LayerBlocks};

    fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
        (0..n).map(|_| rng.random_range(-1.5..1.5)).collect()
    }

    fn times(block: &blockmat::Block, v: &[f64], transposed: bool) -> Vec<f64> {
        let v = faer::MatRef::from_column_major_slice(v, v.len(), 1);
        let out = if transposed { block.tmul_dense(v) } else { block.mul_dense(v) };
        out.expect("shapes from the layer").col(0).iter().copied().collect()
    }

    fn add(a: &mut [f64], b: &[f64]) {
        a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
    }

    /// Largest `|a - b|` over `max(1, max |b|)`.
    fn diff(a: &[f64], b: &[f64]) -> f64 {
        let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// The closed forms against the formed blocks' products, for every
    /// activation, dense and residual layers with and without bias, as a
    /// first layer and as a hidden one. Both sides sum `O(in + batch)`
    /// products of the same unit-scale numbers in different orders, so they
    /// agree to a few hundred ulps of the result's scale: 1e-13.
    #[test]
    fn closed_forms_equal_the_blocks_products() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut worst = 0.0f64;
        for act in Activation::ALL {
            for &(inp, out, batch, bias, residual) in
                &[(3, 5, 1, false, false), (4, 2, 3, true, false), (6, 6, 4, true, true), (5, 5, 2, false, true)]
            {
                let layer = if residual { Dense::residual(inp, act, bias) } else { Dense::new(inp, out, act, bias) };
                let out = layer.out_features();
                let p = layer.num_params();
                let x = random(&mut rng, p);
                let z = Mat::from_fn(batch, inp, |_, _| rng.random_range(-1.5..1.5));
                let b_out = random(&mut rng, batch * out);
                let targets = Targets::Classes(vec![]);
                for first in [true, false] {
                    let blocks: LayerBlocks = if first {
                        layer.first_blocks(&x, z.as_ref(), &targets, &b_out)
                    } else {
                        layer.blocks(&x, z.as_ref(), &targets, &b_out)
                    };
                    let m = layer.product(&x, z.as_ref(), &targets, &b_out).expect("a dense layer has products");
                    let mut scratch = vec![f64::NAN; m.scratch_len()];
                    let (v, t_in, s) =
                        (random(&mut rng, p), random(&mut rng, batch * inp), random(&mut rng, batch * out));
                    let t_in = (!first).then_some(&t_in[..]);

                    let mut expected = times(&blocks.dx, &v, false);
                    if let Some(t) = t_in {
                        add(&mut expected, &times(&blocks.dz, t, false));
                    }
                    let mut t_out = vec![f64::NAN; batch * out];
                    m.tangent(&v, t_in, &mut t_out, &mut scratch);
                    worst = worst.max(diff(&t_out, &expected));

                    let start = random(&mut rng, p);
                    let mut expected = start.clone();
                    add(&mut expected, &times(&blocks.a, &v, false));
                    add(&mut expected, &times(&blocks.dx, &s, true));
                    let mut expected_in = times(&blocks.dz, &s, true);
                    if let Some(t) = t_in {
                        add(&mut expected, &times(&blocks.g, t, false));
                        add(&mut expected_in, &times(&blocks.g, &v, true));
                        add(&mut expected_in, &times(&blocks.e, t, false));
                    }
                    let mut hv = start;
                    let mut s_in = vec![f64::NAN; batch * inp];
                    m.adjoint(&v, t_in, &s, &mut hv, (!first).then_some(&mut s_in[..]), &mut scratch);
                    worst = worst.max(diff(&hv, &expected));
                    if !first {
                        worst = worst.max(diff(&s_in, &expected_in));
                    }
                    assert!(worst <= 1e-13, "{} first {first}: {worst:e}", layer.name());
                }
            }
        }
        assert!(worst > 0.0, "the two routes compute in different orders");
    }

    /// The Gauss–Newton form keeps `Dx` and `Dz` and drops `A`, `G` and
    /// `E`: its tangent is the layer's, its adjoint `Dx^T s` and `Dz^T s`
    /// alone, to rounding (1e-13 as above).
    #[test]
    fn gauss_newton_form_drops_the_second_derivatives() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for layer in [Dense::new(4, 3, Activation::Tanh, true), Dense::residual(3, Activation::Sigmoid, false)] {
            let (inp, out, batch, p) = (layer.in_features(), layer.out_features(), 3, layer.num_params());
            let x = random(&mut rng, p);
            let z = Mat::from_fn(batch, inp, |_, _| rng.random_range(-1.5..1.5));
            let b_out = random(&mut rng, batch * out);
            let targets = Targets::Classes(vec![]);
            let blocks = layer.blocks(&x, z.as_ref(), &targets, &b_out);
            let full = layer.product(&x, z.as_ref(), &targets, &b_out).expect("a dense layer has products");
            let m = full.gauss_newton().expect("a dense layer has a Gauss-Newton form");
            let mut scratch = vec![0.0; m.scratch_len()];
            let (v, t_in, s) = (random(&mut rng, p), random(&mut rng, batch * inp), random(&mut rng, batch * out));
            let (mut t_full, mut t_ggn) = (vec![0.0; batch * out], vec![0.0; batch * out]);
            full.tangent(&v, Some(&t_in), &mut t_full, &mut scratch);
            m.tangent(&v, Some(&t_in), &mut t_ggn, &mut scratch);
            assert_eq!(t_full, t_ggn, "{}: the tangent is the layer's", layer.name());
            let (mut hv, mut s_in) = (vec![0.0; p], vec![0.0; batch * inp]);
            m.adjoint(&v, Some(&t_in), &s, &mut hv, Some(&mut s_in), &mut scratch);
            assert!(diff(&hv, &times(&blocks.dx, &s, true)) <= 1e-13, "{}", layer.name());
            assert!(diff(&s_in, &times(&blocks.dz, &s, true)) <= 1e-13, "{}", layer.name());
        }
    }

    /// A non-finite stored number leaves the products to the blocks.
    #[test]
    fn non_finite_points_have_no_products() {
        let layer = Dense::new(2, 3, Activation::Tanh, true);
        let x = vec![0.5; layer.num_params()];
        let z = Mat::from_fn(2, 2, |i, j| if (i, j) == (1, 0) { f64::NAN } else { 0.3 });
        let targets = Targets::Classes(vec![]);
        assert!(layer.product(&x, z.as_ref(), &targets, &[1.0; 6]).is_none());
        let z = Mat::from_fn(2, 2, |_, _| 0.3);
        assert!(layer.product(&x, z.as_ref(), &targets, &[1.0; 6]).is_some());
    }
}
