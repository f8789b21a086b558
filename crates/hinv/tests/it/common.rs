//! Shared helpers of the `hinv` integration tests: random networks and an
//! independent dense Hessian assembled from ALGORITHM.md's matrix formula.

#![allow(dead_code)]

use blockmat::{Block, Side};
use faer::linalg::solvers::Solve;
use faer::Mat;
use netgraph::{Activation, Batch, Derivatives, LayerSpec, LossSpec, Network, Params};

pub const ACTIVATIONS: [Activation; Activation::ALL.len()] = Activation::ALL;

/// A network of `depth` hidden layers of width `width` (every third one
/// residual when `residual`), with the given activation and loss.
pub fn network(
    input: usize,
    width: usize,
    depth: usize,
    act: Activation,
    bias: bool,
    residual: bool,
    mse: bool,
) -> Network {
    let mut layers = Vec::new();
    for l in 0..depth {
        if residual && l % 3 == 2 {
            layers.push(LayerSpec::Residual { activation: act, bias });
        } else {
            layers.push(LayerSpec::Dense { out: width, activation: act, bias });
        }
    }
    let loss = if mse { LossSpec::Mse { outputs: 2, bias } } else { LossSpec::CrossEntropy { classes: 3, bias } };
    Network::new(input, layers, loss).expect("valid test network")
}

pub fn batch_for(net: &Network, input: usize, batch: usize, mse: bool, seed: u64) -> Batch {
    let _ = net;
    if mse {
        Batch::random_regression(input, 2, batch, seed)
    } else {
        Batch::random_classification(input, 3, batch, seed)
    }
}

pub fn params(net: &Network, gain: f64, seed: u64) -> Params {
    let mut p = net.init_params(seed);
    p.scale(gain);
    p
}

/// `H = A + G P M^-1 Dx + (G P M^-1 Dx)^T + Dx^T M^-T P^T E P M^-1 Dx`, all
/// dense: an oracle independent of the Pearlmutter sweeps and of the lifted
/// solve (it shares only the derivative blocks, which netgraph checks
/// against finite differences).
pub fn dense_formula_hessian(d: &Derivatives) -> Mat<f64> {
    let nl = d.layers.len();
    let ins: Vec<usize> = (0..nl).map(|l| d.act_sizes[l]).collect();
    let outs: Vec<usize> = (0..nl).map(|l| d.act_sizes[l + 1]).collect();
    let a = Block::block_diag(d.layers.iter().map(|b| b.a.clone()).collect()).to_dense();
    let dx = Block::block_diag(d.layers.iter().map(|b| b.dx.clone()).collect()).to_dense();
    let g = Block::block_diag(d.layers.iter().map(|b| b.g.clone()).collect()).to_dense();
    let e = Block::block_diag(d.layers.iter().map(|b| b.e.clone()).collect()).to_dense();
    let m = Block::unit_bidiag(Side::Lower, &outs, (1..nl).map(|l| Block::Dense(-d.layers[l].dz.to_dense())).collect())
        .unwrap()
        .to_dense();
    // (P y)_l = y_{l-1}: rows partitioned by the layers' inputs, columns by their outputs.
    let p = Block::bidiag(
        Side::Lower,
        (0..nl).map(|l| Block::zeros(ins[l], outs[l])).collect(),
        (1..nl).map(|l| Block::identity(ins[l])).collect(),
    )
    .unwrap()
    .to_dense();
    let minv_dx = m.partial_piv_lu().solve(&dx);
    let pm = &p * &minv_dx;
    let gpm = &g * &pm;
    &a + &gpm + gpm.transpose() + pm.transpose() * &e * &pm
}

pub fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

pub fn rel_diff(a: &[f64], b: &[f64]) -> f64 {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    norm(&d) / norm(b).max(f64::MIN_POSITIVE)
}

pub fn mat_vec(h: &Mat<f64>, v: &[f64]) -> Vec<f64> {
    let x = Mat::from_fn(v.len(), 1, |i, _| v[i]);
    let y = h * &x;
    y.col(0).iter().copied().collect()
}

/// A deterministic pseudo-random vector.
pub fn test_vector(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}
