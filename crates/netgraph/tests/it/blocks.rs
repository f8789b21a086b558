//! Every layer type's closed-form blocks against finite differences, and
//! against hand-derived values for the identity and square activations.

use crate::common;

use common::{rng, uniform_mat, uniform_vec};
use faer::Mat;
use netgraph::{check_layer, Activation, Dense, Layer, LossKind, LossLayer, Targets};

/// Central differences with `h = 1e-5` on unit-scale data err by about
/// `h^2 |f'''| + eps |f| / h ~ 1e-10`; on the `(1 + |fd|)` scale of
/// `Mismatch::error`, `1e-6` leaves four orders of margin yet catches any
/// wrong formula (those show errors of order 1e-2 or more).
const TOL: f64 = 1e-6;
/// Weights scaled up 4x saturate tanh/sigmoid and make square's values
/// large: third derivatives grow, so the differences lose about two digits.
const TOL_ILL: f64 = 1e-4;

fn check(layer: &dyn Layer, seed: u64, wscale: f64, tol: f64, targets: &Targets, batch: usize) {
    let mut r = rng(seed);
    let x = uniform_vec(&mut r, layer.num_params(), wscale);
    let z = uniform_mat(&mut r, batch, layer.in_features(), 1.5);
    let b = uniform_vec(&mut r, layer.output_len(batch), 1.0);
    let res = check_layer(layer, &x, z.as_ref(), targets, &b, 1e-5).unwrap();
    let worst = res.worst().unwrap();
    assert!(res.max_error() < tol, "{}: seed {seed}, worst {worst:?}", layer.name());
    // Every block was compared (none empty for these sizes).
    assert!(res.per_block.iter().all(|(_, m)| m.is_some()), "{}", layer.name());
}

#[test]
fn dense_and_residual_blocks_match_finite_differences() {
    let none = Targets::Classes(vec![]);
    // PyTorch's softplus with parameters too: with threshold 0.5 and beta 3
    // many pre-activations fall on the linear branch.
    let softplus = |beta, threshold| Activation::Softplus(netgraph::Softplus::new(beta, threshold).unwrap());
    for act in Activation::ALL.into_iter().chain([softplus(2.0, 20.0), softplus(3.0, 0.5)]) {
        for bias in [false, true] {
            for seed in 0..3 {
                check(&Dense::new(3, 4, act, bias), seed, 0.8, TOL, &none, 3);
                check(&Dense::residual(3, act, bias), 10 + seed, 0.8, TOL, &none, 2);
            }
            check(&Dense::new(2, 3, act, bias), 99, 4.0, TOL_ILL, &none, 4);
        }
    }
}

#[test]
fn loss_blocks_match_finite_differences() {
    for bias in [false, true] {
        for seed in 0..3 {
            let ce = LossLayer::new(3, 4, bias, LossKind::CrossEntropy);
            check(&ce, seed, 1.0, TOL, &Targets::Classes(vec![0, 3, 1]), 3);
            let mse = LossLayer::new(3, 2, bias, LossKind::Mse);
            let t = uniform_mat(&mut rng(seed + 50), 3, 2, 1.0);
            check(&mse, seed, 1.0, TOL, &Targets::Values(t), 3);
        }
        // Large logits: softmax nearly one-hot, its Jacobian tiny and ill-scaled.
        let ce = LossLayer::new(2, 3, bias, LossKind::CrossEntropy);
        check(&ce, 7, 6.0, TOL_ILL, &Targets::Classes(vec![2, 0, 1, 1]), 4);
    }
}

/// A dense layer with one thing wrong: its `E` scaled by `e_scale`, or its
/// matrix-free products taken from another layer.
#[derive(Debug)]
struct Tampered {
    inner: Dense,
    e_scale: f64,
    products_of: Option<Dense>,
}

impl Layer for Tampered {
    fn name(&self) -> String {
        "tampered".into()
    }
    fn in_features(&self) -> usize {
        self.inner.in_features()
    }
    fn out_features(&self) -> usize {
        self.inner.out_features()
    }
    fn num_params(&self) -> usize {
        self.inner.num_params()
    }
    fn init(&self, rng: &mut rand_chacha::ChaCha8Rng, out: &mut [f64]) {
        self.inner.init(rng, out)
    }
    fn forward(&self, x: &[f64], z: faer::MatRef<'_, f64>, t: &Targets) -> Mat<f64> {
        self.inner.forward(x, z, t)
    }
    fn vjp(&self, x: &[f64], z: faer::MatRef<'_, f64>, t: &Targets, b: &[f64]) -> (Vec<f64>, Vec<f64>) {
        self.inner.vjp(x, z, t, b)
    }
    fn blocks(&self, x: &[f64], z: faer::MatRef<'_, f64>, t: &Targets, b: &[f64]) -> netgraph::LayerBlocks {
        let mut bl = self.inner.blocks(x, z, t, b);
        bl.e = blockmat::Block::dense(bl.e.to_dense() * faer::Scale(self.e_scale));
        bl
    }
    fn product(
        &self,
        x: &[f64],
        z: faer::MatRef<'_, f64>,
        t: &Targets,
        b: &[f64],
    ) -> Option<std::sync::Arc<dyn netgraph::LayerProduct>> {
        self.products_of.as_ref().and_then(|other| other.product(x, z, t, b))
    }
}

fn check_tampered(layer: &Tampered, seed: u64) -> netgraph::LayerCheck {
    let mut r = rng(seed);
    let x = uniform_vec(&mut r, layer.num_params(), 1.0);
    let z = uniform_mat(&mut r, 2, 3, 1.0);
    let b = uniform_vec(&mut r, 4, 1.0);
    check_layer(layer, &x, z.as_ref(), &Targets::Classes(vec![]), &b, 1e-5).unwrap()
}

#[test]
fn a_wrong_block_is_reported() {
    // A layer whose E is off by a factor must fail the check: the checker can fail.
    let layer = Tampered { inner: Dense::new(3, 2, Activation::Tanh, true), e_scale: 1.01, products_of: None };
    let res = check_tampered(&layer, 3);
    let worst = res.worst().unwrap();
    assert_eq!(worst.block, "E");
    assert!(worst.error > 1e-4, "{worst:?}");
}

#[test]
fn a_wrong_product_is_reported() {
    // Blocks of a tanh layer, matrix-free products of a sigmoid one: the
    // blocks pass and the products must not.
    let layer = Tampered {
        inner: Dense::new(3, 2, Activation::Tanh, true),
        e_scale: 1.0,
        products_of: Some(Dense::new(3, 2, Activation::Sigmoid, true)),
    };
    let res = check_tampered(&layer, 5);
    let names: Vec<&str> = res.per_block.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["Dx", "Dz", "A", "G", "E", "vjp_x", "vjp_z", "product_tangent", "product_adjoint"]);
    let blocks_worst = res.per_block[..7].iter().filter_map(|(_, m)| m.as_ref()).fold(0.0f64, |w, m| w.max(m.error));
    assert!(blocks_worst < TOL, "the blocks are right: {blocks_worst:e}");
    for (name, m) in &res.per_block[7..] {
        let m = m.as_ref().expect("compared");
        assert!(m.error > 1e-2, "{name}: {m:?}");
    }
}

fn dense_of(layer: &dyn Layer, x: &[f64], z: &Mat<f64>, b: &[f64]) -> [Mat<f64>; 5] {
    let bl = layer.blocks(x, z.as_ref(), &Targets::Classes(vec![]), b);
    [bl.dx.to_dense(), bl.dz.to_dense(), bl.a.to_dense(), bl.g.to_dense(), bl.e.to_dense()]
}

fn assert_mat(name: &str, m: &Mat<f64>, expected: &[&[f64]]) {
    assert_eq!(m.nrows(), expected.len(), "{name} rows");
    for (i, row) in expected.iter().enumerate() {
        assert_eq!(m.ncols(), row.len(), "{name} cols");
        for (j, &v) in row.iter().enumerate() {
            // Hand values are small integers: only rounding separates them.
            assert!((m[(i, j)] - v).abs() < 1e-12, "{name}[{i},{j}] = {} != {v}", m[(i, j)]);
        }
    }
}

#[test]
fn square_activation_hand_values() {
    // phi = b (W.z)^2 with W = [1, 2], z = [3, -1], b = 0.5, so W.z = 1:
    // Dx = 2 (W.z) z, Dz = 2 (W.z) W, A = 2 b z z^T,
    // G[j, j'] = 2 b W_j' z_j + 2 b (W.z) delta, E = 2 b W^T W.
    let layer = Dense::new(2, 1, Activation::Square, false);
    let z = Mat::from_fn(1, 2, |_, j| [3.0, -1.0][j]);
    let [dx, dz, a, g, e] = dense_of(&layer, &[1.0, 2.0], &z, &[0.5]);
    assert_mat("Dx", &dx, &[&[6.0, -2.0]]);
    assert_mat("Dz", &dz, &[&[2.0, 4.0]]);
    assert_mat("A", &a, &[&[9.0, -3.0], &[-3.0, 1.0]]);
    assert_mat("G", &g, &[&[4.0, 6.0], &[-1.0, -1.0]]);
    assert_mat("E", &e, &[&[1.0, 2.0], &[2.0, 4.0]]);
}

#[test]
fn identity_activation_hand_values() {
    // A linear layer with bias, out = 2, in = 1, one sample z = 2, b = (1, -1):
    // x = (W00, W10, b0, b1) = (3, 4, 0.5, 0.5). Dx = [[z, 0, 1, 0], [0, z, 0, 1]],
    // Dz = W, A = 0, E = 0, G[(k, 0), 0] = b_k (the delta term), bias rows 0.
    let layer = Dense::new(1, 2, Activation::Identity, true);
    let z = Mat::from_fn(1, 1, |_, _| 2.0);
    let [dx, dz, a, g, e] = dense_of(&layer, &[3.0, 4.0, 0.5, 0.5], &z, &[1.0, -1.0]);
    assert_mat("Dx", &dx, &[&[2.0, 0.0, 1.0, 0.0], &[0.0, 2.0, 0.0, 1.0]]);
    assert_mat("Dz", &dz, &[&[3.0], &[4.0]]);
    assert_mat("A", &a, &[&[0.0; 4], &[0.0; 4], &[0.0; 4], &[0.0; 4]]);
    assert_mat("G", &g, &[&[1.0], &[-1.0], &[0.0], &[0.0]]);
    assert_mat("E", &e, &[&[0.0]]);
    // A residual identity layer adds I to Dz only.
    let res = Dense::residual(1, Activation::Identity, false);
    let [_, dz, _, _, _] = dense_of(&res, &[3.0], &z, &[1.0]);
    assert_mat("Dz residual", &dz, &[&[4.0]]);
}

#[test]
fn cross_entropy_hand_values() {
    // Zero weights: p = (1/2, 1/2), loss = ln 2, dL/du = p - e_y,
    // Hessian in u = (diag p - p p^T) = [[1/4, -1/4], [-1/4, 1/4]].
    let layer = LossLayer::new(1, 2, false, LossKind::CrossEntropy);
    let z = Mat::from_fn(1, 1, |_, _| 2.0);
    let t = Targets::Classes(vec![1]);
    let out = layer.forward(&[0.0, 0.0], z.as_ref(), &t);
    assert!((out[(0, 0)] - std::f64::consts::LN_2).abs() < 1e-15);
    let bl = layer.blocks(&[0.0, 0.0], z.as_ref(), &t, &[1.0]);
    assert_mat("Dx", &bl.dx.to_dense(), &[&[1.0, -1.0]]);
    // A = H (x) z z^T with z^2 = 4.
    assert_mat("A", &bl.a.to_dense(), &[&[1.0, -1.0], &[-1.0, 1.0]]);
    // G[k, 0] = g_k + (H W)_k z = g_k since W = 0.
    assert_mat("G", &bl.g.to_dense(), &[&[0.5], &[-0.5]]);
}

#[test]
fn structure_is_block_diagonal_over_samples_and_units() {
    let layer = Dense::new(3, 4, Activation::Tanh, true);
    let mut r = rng(1);
    let x = uniform_vec(&mut r, layer.num_params(), 1.0);
    let z = uniform_mat(&mut r, 5, 3, 1.0);
    let b = uniform_vec(&mut r, 20, 1.0);
    let bl = layer.blocks(&x, z.as_ref(), &Targets::Classes(vec![]), &b);
    match (&bl.dz, &bl.e) {
        (blockmat::Block::Diag(dz), blockmat::Block::Diag(e)) => {
            assert_eq!(dz.len(), 5);
            assert_eq!(e.len(), 5);
            assert_eq!(dz.blocks()[0].shape(), (4, 3));
            assert_eq!(e.blocks()[0].shape(), (3, 3));
        }
        other => panic!("Dz and E should be block-diagonal, found {} and {}", other.0.kind(), other.1.kind()),
    }
    assert_eq!(bl.a.kind(), "grid");
    assert_eq!(bl.a.shape(), (16, 16));
    let nobias = Dense::new(3, 4, Activation::Tanh, false);
    let bl = nobias.blocks(&x[..12], z.as_ref(), &Targets::Classes(vec![]), &b);
    assert_eq!(bl.a.kind(), "block-diagonal");
}

/// A first layer's blocks skip the input derivatives: `Dx` and `A` are
/// exactly those of [`Layer::blocks`] (the same arithmetic, so equal to the
/// last bit), `Dz`, `G` and `E` zero blocks of the same shapes.
#[test]
fn first_blocks_keep_dx_and_a_and_drop_the_input_derivatives() {
    let layers: Vec<(Box<dyn Layer>, Targets)> = vec![
        (Box::new(Dense::new(3, 4, Activation::Tanh, true)), Targets::Classes(vec![])),
        (Box::new(Dense::residual(3, Activation::Gelu, false)), Targets::Classes(vec![])),
        (Box::new(LossLayer::new(3, 4, true, LossKind::CrossEntropy)), Targets::Classes(vec![0, 3])),
        (Box::new(LossLayer::new(3, 2, false, LossKind::Mse)), Targets::Values(uniform_mat(&mut rng(5), 2, 2, 1.0))),
    ];
    for (layer, targets) in layers {
        let mut r = rng(3);
        let x = uniform_vec(&mut r, layer.num_params(), 0.8);
        let z = uniform_mat(&mut r, 2, layer.in_features(), 1.5);
        let b = uniform_vec(&mut r, layer.output_len(2), 1.0);
        let all = layer.blocks(&x, z.as_ref(), &targets, &b);
        let first = layer.first_blocks(&x, z.as_ref(), &targets, &b);
        assert_eq!(first.dx.to_dense(), all.dx.to_dense(), "{}", layer.name());
        assert_eq!(first.a.to_dense(), all.a.to_dense(), "{}", layer.name());
        for ((name, f), (_, a)) in first
            .named()
            .into_iter()
            .zip(all.named())
            .skip(3)
            .chain(first.named().into_iter().zip(all.named()).skip(1).take(1))
        {
            assert_eq!(f.shape(), a.shape(), "{}: {name}", layer.name());
            assert!(f.to_dense().norm_max() == 0.0, "{}: {name}", layer.name());
            assert!(a.to_dense().norm_max() > 0.0, "{}: {name} is not a test", layer.name());
        }
    }
}

/// A layer reading many inputs keeps its units' weight blocks as low-rank
/// factors (`Z^T diag(c_k) Z`) and a large `Dx` by its row vectors; they
/// must be the same derivatives (finite differences), and the layer must
/// still store dense blocks when the batch is too large for the factors to
/// pay.
#[test]
fn wide_inputs_keep_unit_blocks_as_factors() {
    let none = Targets::Classes(vec![]);
    let inp = netgraph::LOW_RANK_MIN_INPUTS + 6;
    for bias in [false, true] {
        let layer = Dense::new(inp, 3, Activation::Tanh, bias);
        check(&layer, 4, 0.8, TOL, &none, 3);
        let mse = LossLayer::new(inp, 2, bias, LossKind::Mse);
        check(&mse, 5, 0.8, TOL, &Targets::Values(uniform_mat(&mut rng(6), 3, 2, 1.0)), 3);
        let kinds = |batch: usize| {
            let mut r = rng(7);
            let x = uniform_vec(&mut r, layer.num_params(), 0.8);
            let z = uniform_mat(&mut r, batch, inp, 1.5);
            let b = uniform_vec(&mut r, layer.output_len(batch), 1.0);
            let a = layer.blocks(&x, z.as_ref(), &none, &b).a;
            let units = if bias { a.as_grid().unwrap().blocks()[0].clone() } else { a };
            units.as_diag().unwrap().blocks().iter().map(|u| u.kind()).collect::<Vec<_>>()
        };
        assert_eq!(kinds(3), vec!["low-rank"; 3]);
        // 4 x 18 samples exceed the inputs: dense.
        assert_eq!(kinds(18), vec!["dense"; 3]);
        // Sixteen units at batch 6: Dx (96 x 16 (in + 1)) is stored by its
        // row vectors, and must still be the same derivative.
        let wide = Dense::new(inp, 16, Activation::Tanh, bias);
        check(&wide, 8, 0.8, TOL, &none, 6);
        let mut r = rng(9);
        let x = uniform_vec(&mut r, wide.num_params(), 0.8);
        let z = uniform_mat(&mut r, 6, inp, 1.5);
        let b = uniform_vec(&mut r, wide.output_len(6), 1.0);
        let dx = wide.blocks(&x, z.as_ref(), &none, &b).dx;
        assert_eq!(dx.kind(), "grid");
        // Each unit's row is kept as rank-one factors: a dense `1 x in`
        // row would be padded to eight times its numbers.
        let rows = dx.as_grid().unwrap().blocks()[0].as_diag().unwrap().blocks().iter().map(|u| u.kind());
        assert_eq!(rows.collect::<Vec<_>>(), vec!["low-rank"; 16]);
    }
}

/// A user layer that overrides neither `first_blocks` nor
/// `gauss_newton_blocks` gets the defaults (all five blocks computed, then
/// `A`, `G`, `E` dropped): they agree bit for bit with a dense layer's own
/// override, which computes `Dx` and `Dz` alone, as a hidden and as a first
/// layer, whatever the layer's `E` (here scaled, as the defaults drop it).
#[test]
fn default_gauss_newton_blocks_match_the_dense_override() {
    let none = Targets::Classes(vec![]);
    for (bias, act) in [(true, Activation::Tanh), (false, Activation::Sigmoid)] {
        let layer = Tampered { inner: Dense::new(3, 4, act, bias), e_scale: 3.0, products_of: None };
        let mut r = rng(5);
        let x = uniform_vec(&mut r, layer.num_params(), 0.8);
        let z = uniform_mat(&mut r, 2, 3, 1.5);
        let b = uniform_vec(&mut r, layer.output_len(2), 1.0);
        for first in [false, true] {
            let got = layer.gauss_newton_blocks(&x, z.as_ref(), &none, &b, first);
            let want = layer.inner.gauss_newton_blocks(&x, z.as_ref(), &none, &b, first);
            assert_eq!(got.dx.to_dense(), want.dx.to_dense(), "bias {bias}, first {first}: Dx");
            assert_eq!(got.dz.to_dense(), want.dz.to_dense(), "bias {bias}, first {first}: Dz");
            assert_eq!(got.dz.is_zero(), first, "bias {bias}: Dz is zero exactly for a first layer");
            for (name, g, w) in [("A", &got.a, &want.a), ("G", &got.g, &want.g), ("E", &got.e, &want.e)] {
                assert!(g.is_zero() && w.is_zero(), "bias {bias}, first {first}: {name} is a zero block");
                assert_eq!(g.shape(), w.shape(), "bias {bias}, first {first}: {name}'s shape");
            }
        }
    }
}
