//! Hessian-vector products against the dense formula Hessian and against
//! finite differences of the exact gradient.

use crate::common;

use common::*;
use hinv::Curvature;
use netgraph::Activation;

/// Every activation, both losses, with and without bias and residual
/// layers, batch 1..8 and depth 1..40, at the default point and with weights
/// scaled up (gain 2.5) where the Hessian is far from zero.
///
/// Tolerance 1e-12 relative to `||H v||`, times the cancellation factor
/// `kappa = ||H||_F ||v|| / ||H v||` (1 when `H v` does not cancel): both
/// sides compute the same sums of products of the same blocks in a different
/// order, so they differ by a few ulps of `||H|| ||v||` per layer. Only the
/// square activation at gain 2.5 (values squared at every layer) shows
/// `kappa > 1` here.
#[test]
fn hvp_matches_dense_formula_everywhere() {
    let shapes = [(1usize, 1usize), (2, 3), (5, 8), (12, 2), (40, 2)];
    let mut worst: f64 = 0.0;
    for (ai, &act) in ACTIVATIONS.iter().enumerate() {
        for &(depth, batch) in &shapes {
            for &(bias, mse, residual) in &[(false, false, false), (true, true, true), (true, false, true)] {
                // Squares compound doubly exponentially with depth: at gain 2.5
                // a 5-layer square network's activations reach 1e30 and no
                // dense oracle is meaningful; gain 1.5 keeps them finite-sized.
                let high = if act == Activation::Square { 1.5 } else { 2.5 };
                for &gain in &[1.0, high] {
                    let seed = (ai * 1000 + depth * 10 + batch) as u64;
                    let net = network(4, 5, depth, act, bias, residual, mse);
                    let p = params(&net, gain, seed);
                    let b = batch_for(&net, 4, batch, mse, seed + 1);
                    let curv = match Curvature::new(&net, &p, &b) {
                        Ok(c) => c,
                        // Deep square networks overflow: that must be an
                        // error naming the non-finite value, never a NaN result.
                        Err(hinv::HinvError::Overflow { .. }) if act == Activation::Square => continue,
                        Err(e) => panic!("{act:?} depth {depth}: {e}"),
                    };
                    let h = dense_formula_hessian(curv.derivatives());
                    let v = test_vector(curv.num_params(), seed + 2);
                    let hv = curv.hvp(&v).unwrap();
                    let expected = mat_vec(&h, &v);
                    if norm(&expected) < 1e-300 {
                        continue;
                    }
                    let err = rel_diff(&hv, &expected);
                    let kappa = (h.norm_l2() * norm(&v) / norm(&expected)).max(1.0);
                    worst = worst.max(err / kappa);
                    assert!(
                        err <= 1e-12 * kappa,
                        "{act:?} depth {depth} batch {batch} bias {bias} mse {mse} residual {residual} gain {gain}: {err:e} (kappa {kappa:e})"
                    );
                }
            }
        }
    }
    eprintln!("worst relative HVP error: {worst:e}");
}

/// The dense formula itself against central differences of the exact
/// gradient (netgraph's independent route). Finite differences carry an
/// error of order `h^2 f''' + eps_mach / h` ~ 1e-7 relative at h ~ 1e-5,
/// so 1e-5 leaves a margin while still catching any wrong block.
#[test]
fn dense_formula_matches_finite_differences() {
    for (ai, &act) in ACTIVATIONS.iter().enumerate() {
        for &(bias, mse) in &[(false, false), (true, true)] {
            let net = network(3, 4, 3, act, bias, true, mse);
            let p = params(&net, 2.0, ai as u64);
            let b = batch_for(&net, 3, 3, mse, 7);
            let curv = Curvature::new(&net, &p, &b).unwrap();
            let h = dense_formula_hessian(curv.derivatives());
            let fd = net.dense_hessian_fd(&p, &b).unwrap();
            let diff = (&h - &fd).norm_l2();
            let rel = diff / fd.norm_l2().max(1e-12);
            assert!(rel <= 1e-5, "{act:?} bias {bias} mse {mse}: {rel:e}");
        }
    }
}

/// Several columns at once give the same as one at a time (bitwise
/// identical is not promised, so compare to 1e-14 relative).
#[test]
fn hvp_many_matches_columns() {
    let net = network(4, 6, 6, netgraph::Activation::Tanh, true, true, false);
    let p = params(&net, 2.0, 3);
    let b = batch_for(&net, 4, 3, false, 4);
    let curv = Curvature::new(&net, &p, &b).unwrap();
    let n = curv.num_params();
    let cols: Vec<Vec<f64>> = (0..3).map(|k| test_vector(n, 100 + k)).collect();
    let m = faer::Mat::from_fn(n, 3, |i, j| cols[j][i]);
    let hm = curv.hvp_many(m.as_ref()).unwrap();
    for (j, c) in cols.iter().enumerate() {
        let one = curv.hvp(c).unwrap();
        let col: Vec<f64> = hm.col(j).iter().copied().collect();
        assert!(rel_diff(&col, &one) <= 1e-14);
    }
}

/// Dense layers multiply from their weights and activations
/// (`netgraph::LayerProduct`); the same blocks wrapped by
/// `Curvature::from_derivatives` multiply through the formed blocks. The
/// two routes sum the same products in different orders, layer after
/// layer, so they agree to a few ulps of `||H|| ||v||` per layer: 1e-12
/// relative, as in `hvp_matches_dense_formula_everywhere` (the kappa there
/// is 1 for these activations and gains). Several columns, as an owned
/// matrix and as a view whose rows are not contiguous.
#[test]
fn matrix_free_products_match_the_blocks() {
    for (ai, &act) in ACTIVATIONS.iter().enumerate().filter(|(_, a)| **a != Activation::Square) {
        for &(depth, batch, bias, residual, mse) in
            &[(1, 1, false, false, false), (6, 3, true, true, false), (9, 2, true, false, true)]
        {
            let net = network(4, 5, depth, act, bias, residual, mse);
            let p = params(&net, 2.0, ai as u64 + 40);
            let b = batch_for(&net, 4, batch, mse, ai as u64 + 41);
            let curv = Curvature::new(&net, &p, &b).unwrap();
            assert!(curv.derivatives().product(0).is_some(), "dense layers have matrix-free products");
            let blocks = Curvature::from_derivatives(curv.derivatives().clone()).unwrap();
            assert!(blocks.derivatives().product(0).is_none(), "from_derivatives reads the blocks");
            let n = curv.num_params();
            let rows = faer::Mat::from_fn(3, n, |j, i| test_vector(n, 200 + j as u64)[i]);
            let strided = rows.transpose();
            let owned = strided.to_owned();
            let expected = blocks.hvp_many(owned.as_ref()).unwrap();
            for got in [curv.hvp_many(owned.as_ref()).unwrap(), curv.hvp_many(strided).unwrap()] {
                for j in 0..3 {
                    let (g, e): (Vec<f64>, Vec<f64>) =
                        (got.col(j).iter().copied().collect(), expected.col(j).iter().copied().collect());
                    let err = rel_diff(&g, &e);
                    assert!(err <= 1e-12, "{act:?} depth {depth} batch {batch} column {j}: {err:e}");
                }
            }
        }
    }
}
