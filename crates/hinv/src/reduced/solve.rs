//! Solving through the factored elimination: the right-hand side reduced
//! onto `R`'s unknowns layer by layer, a solve with `R`, and each layer's
//! parameters read back.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use tridiag::TridiagError;

use super::layers::{map_layers, split_rows};
use super::multipliers::Scratch;
use super::{InputCoupling, Reduced};

/// A product with a layer's `G` refused its shapes (`R`'s rows and the
/// coupling disagree, which the factorization rules out), with the shapes
/// it names.
fn units_shape_error(e: netgraph::NetError) -> TridiagError {
    let (expected, found) = match e {
        netgraph::NetError::Shape { expected, found, .. } => (expected, found),
        _ => ((0, 0), (0, 0)),
    };
    TridiagError::ShapeMismatch { op: "a layer's G by its units' factors", expected, found }
}

impl Reduced {
    /// `(H + eps I)^-1 g` for the columns of `g` (`p x k`, the layers'
    /// parameters stacked), through `R`.
    pub(crate) fn solve(&self, g: MatRef<'_, f64>) -> Result<Mat<f64>, TridiagError> {
        let k = g.ncols();
        let mut t = g.to_owned();
        let mut r = Mat::<f64>::zeros(self.r_dim(), k);
        let width = self.layers.iter().map(|e| e.xdx.widest_rows().max(e.members.widest())).max().unwrap_or(0);
        let scratch = || Scratch::new(width, k);
        // Each layer reads and writes its own rows (of `t`: its parameters;
        // of `r`: `y_{l-1}` and `z_l`, which follow each other), so the
        // layers split across threads as the eliminations did.
        let split = self.par.split_work(self.substitution_flops(k));
        let pbounds = blockmat::offsets(&self.layers.iter().map(|e| e.g.shape().0).collect::<Vec<_>>());
        let rbounds: Vec<usize> = std::iter::once(0)
            .chain(self.layers.iter().zip(&self.offsets).map(|(e, off)| off + e.xdx.acts()))
            .collect();
        let rows: Vec<_> = split_rows(t.as_mut(), &pbounds).into_iter().zip(split_rows(r.as_mut(), &rbounds)).collect();
        map_layers(split, rows, scratch, |scratch, l, (mut tl, rl)| {
            let e = &self.layers[l];
            let gl = g.subrows(pbounds[l], tl.nrows());
            // y_{l-1}: -G_l^T A_l^-1 g_l; z_l: -Dx_l A_l^-1 g_l.
            let ap = e.g.shape().1;
            debug_assert_eq!(rl.nrows(), ap + e.xdx.acts(), "layer {l}'s rows of R");
            let (mut y, z) = rl.split_at_row_mut(ap);
            e.xdx.sub_transposed(&e.members, gl, z, scratch);
            if let InputCoupling::Formed { m, scale } = &e.g {
                matmul(y.as_mut(), Accum::Add, m.transpose(), gl, -scale, Par::Seq);
            }
            e.solver().apply(&e.members, tl.as_mut(), scratch)?;
            if let InputCoupling::Units(u) = &e.g {
                u.tmul_add(tl.as_ref(), y, -1.0).map_err(units_shape_error)?;
            }
            Ok(())
        })?;
        // `S R S` was factored: `R^-1 = S (S R S)^-1 S`.
        self.scale_by_balance(r.as_mut());
        self.decoupled.solve_in_place(&self.ldlt, r.as_mut())?;
        self.scale_by_balance(r.as_mut());
        let r = r.as_ref();
        map_layers(split, split_rows(t.as_mut(), &pbounds), scratch, |scratch, l, mut xl| {
            let e = &self.layers[l];
            e.xdx.sub(&e.members, r.subrows(self.offsets[l], e.xdx.acts()), xl.as_mut(), scratch);
            if l == 0 {
                return Ok(());
            }
            let ap = e.g.shape().1;
            let y = r.subrows(self.offsets[l - 1] + ap, ap);
            match &e.g {
                InputCoupling::Zero { .. } => {}
                InputCoupling::Formed { m, scale } => matmul(xl, Accum::Add, m.as_ref(), y, -scale, Par::Seq),
                InputCoupling::Units(u) => {
                    // `A^-1 G y` in the scratch's units' buffer rather than
                    // a `p_l x k` matrix allocated per layer and solve.
                    let (p, mut buf) = (xl.nrows(), scratch.take_units(xl.nrows() * k));
                    let mut v = MatMut::from_column_major_slice_mut(&mut buf[..p * k], p, k);
                    v.fill(0.0);
                    let applied = u
                        .mul_add(y, v.as_mut(), 1.0)
                        .map_err(units_shape_error)
                        .and_then(|()| e.solver().apply(&e.members, v.as_mut(), scratch));
                    if applied.is_ok() {
                        xl -= &v;
                    }
                    scratch.restore_units(buf);
                    applied?;
                }
            }
            Ok::<_, TridiagError>(())
        })?;
        Ok(t)
    }

    /// `rows <- S rows` for the balancing `S` of `R`'s blocks (exact:
    /// powers of two).
    fn scale_by_balance(&self, mut rows: MatMut<'_, f64>) {
        for (l, &sigma) in self.sigma.iter().enumerate() {
            if sigma != 1.0 {
                let a = (self.offsets[l + 1] - self.offsets[l]) / 2;
                let mut z = rows.as_mut().subrows_mut(self.offsets[l], a);
                z *= faer::Scale(sigma);
                let mut y = rows.as_mut().subrows_mut(self.offsets[l] + a, a);
                y *= faer::Scale(1.0 / sigma);
            }
        }
    }

    /// What the two substitutions of a solve on `k` columns cost, roughly,
    /// in flops: per layer and column, a product with each stored
    /// multiplier both ways (`A^-1 Dx^T` on the rows each group touches),
    /// with `A^-1 G` (formed: `2 p_l a_{l-1}` each way; through the units'
    /// factors: three small products each way, and a second application of
    /// `A_l^-1`), one application of `A_l^-1` (counted as products with
    /// explicit inverses, `2 n_g^2` per group), and a fixed cost for the
    /// calls. With it, L256 h8 B2 (2.0e6) and L16 h32 B2 (2.5e6) split
    /// and the demo (3.8e5) and L16 h8 B16 (6.2e5) do not: at `051e0b2`,
    /// whose estimate counted every row of `Dx` for each group (1.3–1.7x
    /// this at these sizes), forcing the split of the last two gained
    /// nothing in `phase_times` (and lost at L16 h8 B4).
    fn substitution_flops(&self, k: usize) -> f64 {
        const PER_LAYER: usize = 2048;
        let per_column: usize = self
            .layers
            .iter()
            .map(|e| {
                let apply = 2 * e.members.iter().map(|m| m.len() * m.len()).sum::<usize>();
                let (g, applies) = match &e.g {
                    InputCoupling::Zero { .. } => (0, 1),
                    InputCoupling::Formed { m, .. } => (4 * m.nrows() * m.ncols(), 1),
                    InputCoupling::Units(u) => (12 * u.batch() * u.shape().0, 2),
                };
                PER_LAYER + 4 * e.xdx.entries() + g + applies * apply
            })
            .sum();
        (per_column * k) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reduced::Reduced;
    use netgraph::{Activation, Batch, Network};
    use tridiag::{FactorParams, ParPolicy};

    /// A solve runs its substitutions split across threads or in order,
    /// with the same kernels on each layer: on one factorization the two
    /// give the same solution bit for bit. Since that cannot see a layer
    /// handed the wrong rows (both paths would share it), the solution is
    /// also checked against the exact HVP, on a network whose
    /// `cond(H + eps I)` (checked, from the dense Hessian) is below 1e4 and
    /// whose elimination grew its entries less than 1e4-fold: a backward
    /// stable solve then leaves a residual of a few `u cond growth`, far
    /// below 1e-6, while a misplaced row leaves one of order `||g||`.
    /// Run on a pool of two threads, so that the split runs whatever
    /// `RAYON_NUM_THREADS` says.
    #[test]
    fn split_and_ordered_substitutions_agree() {
        let net = Network::builder(5).dense(6, Activation::Tanh).repeat(7).cross_entropy(3).unwrap();
        let (params, data) = (net.init_params(7), Batch::random_classification(5, 3, 3, 8));
        let curv = crate::Curvature::new(&net, &params, &data).unwrap();
        let (eps, p) = (0.1, net.num_params());
        let h = crate::reference::hessian(&curv, crate::reference::DenseLimit::default()).unwrap();
        let cond = crate::reference::spectrum(h.as_ref()).unwrap().condition(eps);
        assert!(cond < 1e4, "cond(H + eps I) = {cond:e}");
        let d = curv.derivatives();
        let params = FactorParams { par: ParPolicy::Seq, ..FactorParams::default() };
        let mut r = Reduced::factor(d, eps, &params, false).unwrap().unwrap();
        assert!(r.growth() < 1e4, "growth {:e}", r.growth());
        // Blocks balanced by different powers of two (couplings rescaled,
        // and solves scaling in and out): a wrong scaling anywhere leaves
        // a residual of order `||g||`.
        assert!(r.sigma.windows(2).any(|w| w[0] != w[1]) && r.sigma.iter().any(|&s| s != 1.0), "{:?}", r.sigma);
        let g = Mat::from_fn(p, 2, |i, j| ((i * 3 + j * 5) % 7) as f64 - 3.0);
        let ordered = r.solve(g.as_ref()).unwrap();
        r.par = ParPolicy::Rayon(2);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let split = pool.install(|| r.solve(g.as_ref())).unwrap();
        assert!(ordered == split, "split and ordered substitutions differ");
        let hx = crate::curvature::hvp_many(d, split.as_ref()).unwrap();
        let residual = (&g - &hx - &split * faer::Scale(eps)).norm_max();
        assert!(residual <= 1e-6 * g.norm_max(), "residual {residual:e}");
    }

    /// Layers whose `A^-1 G` is applied through their units' factors share
    /// one buffer across the ordered substitution, which each layer must
    /// clear: the solution of a network with two such layers (width 64),
    /// in order on one thread, meets the exact HVP as in
    /// `split_and_ordered_substitutions_agree` (a stale buffer leaves a
    /// residual of order `||g||`).
    #[test]
    fn ordered_substitution_through_two_unit_layers() {
        let net = Network::builder(5).dense(64, Activation::Tanh).repeat(3).cross_entropy(3).unwrap();
        let (params, data) = (net.init_params(3), Batch::random_classification(5, 3, 2, 4));
        let d = net.derivatives(&params, &data).unwrap();
        let eps = 0.1;
        let params = FactorParams { par: ParPolicy::Seq, ..FactorParams::default() };
        let r = Reduced::factor(&d, eps, &params, false).unwrap().unwrap();
        let units = r.layers.iter().filter(|e| matches!(e.g, InputCoupling::Units(_))).count();
        assert_eq!(units, 2, "layers solved through their units' factors");
        let g = Mat::from_fn(net.num_params(), 2, |i, j| ((i * 3 + j * 5) % 7) as f64 - 3.0);
        let x = r.solve(g.as_ref()).unwrap();
        let hx = crate::curvature::hvp_many(&d, x.as_ref()).unwrap();
        let residual = (&g - &hx - &x * faer::Scale(eps)).norm_max();
        assert!(residual <= 1e-6 * g.norm_max(), "residual {residual:e}, growth {:e}", r.growth());
    }

    /// The substitutions' estimate puts the networks `substitution_flops`
    /// names on the sides of the split threshold it says (the bench's
    /// networks: tanh, 5 inputs, 3 classes, no bias, one right-hand side).
    #[test]
    fn split_estimate_sides() {
        let sides = [((256, 8, 2), true), ((16, 32, 2), true), ((30, 10, 2), false), ((16, 8, 16), false)];
        for ((depth, width, batch), split) in sides {
            let net = Network::builder(5).without_bias().dense(width, Activation::Tanh).repeat(depth).cross_entropy(3);
            let net = net.unwrap();
            let data = Batch::random_classification(5, 3, batch, 20240602);
            let d = net.derivatives(&net.init_params(20240601), &data).unwrap();
            let r = Reduced::factor(&d, 1e-3, &FactorParams::default(), true).unwrap().unwrap();
            let flops = r.substitution_flops(1);
            assert_eq!(flops >= ParPolicy::MIN_SPLIT_FLOPS, split, "L{depth} h{width} B{batch}: {flops:e}");
        }
    }
}
