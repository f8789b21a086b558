//! Compares two interleavings of the same lifted system `K` as block LDLᵀ
//! inputs: ALGORITHM.md's `u_l = (x_l, y_l, z_l)` (what `hinv` factors) and
//! the shifted grouping `u_l = (y_{l-1}, x_l, z_l)`, whose off-diagonal
//! blocks are a bare `-I` between `z_{l-1}` and `y_{l-1}`. Both are
//! symmetric permutations of `K`, so they share log-determinant and
//! inertia; they differ in pivot growth. Prints, per network and eps, the
//! log-det error of each against the dense eigenvalues, and whether the
//! shifted grouping broke down (an exactly singular block, as ReLU's dead
//! units produce). Evidence for docs/numerics.md ("Open points").
//!
//! ```sh
//! cargo run --release -p hinv --example layouts
//! ```

use blockmat::{Block, Tridiag};
use hinv::{Curvature, DenseLimit};
use netgraph::{Activation, Batch, Derivatives, LayerSpec, LossSpec, Network};
use tridiag::{BlockLdlt, FactorParams};

fn shifted_a(a: &Block, eps: f64) -> Block {
    let mut m = a.to_dense();
    for i in 0..m.nrows() {
        m[(i, i)] += eps;
    }
    Block::dense(m)
}

/// The shifted grouping: block 0 is `(x_0, z_0)`, block `l` is
/// `(y_{l-1}, x_l, z_l)`, and a last block holds `y_{L-1}`.
fn shifted_layout(d: &Derivatives, eps: f64) -> blockmat::Result<Tridiag> {
    let nl = d.layers.len();
    let out = |l: usize| d.act_sizes[l + 1];
    // Column sizes of block l, for the coupling into it from block l + 1.
    let cols =
        |l: usize| if l == 0 { vec![d.param_sizes[0], out(0)] } else { vec![out(l - 1), d.param_sizes[l], out(l)] };
    let coupling = |l: usize, rows: &[usize]| -> blockmat::Result<Block> {
        let c = cols(l - 1);
        let grid = rows
            .iter()
            .enumerate()
            .map(|(ri, &rs)| {
                c.iter()
                    .enumerate()
                    .map(|(ci, &cs)| {
                        if ri == 0 && ci + 1 == c.len() {
                            Block::scaled_identity(rs, -1.0)
                        } else {
                            Block::zeros(rs, cs)
                        }
                    })
                    .collect()
            })
            .collect();
        Block::grid(grid)
    };
    let mut diag = Vec::with_capacity(nl + 1);
    let mut sub = Vec::with_capacity(nl);
    for l in 0..nl {
        let b = &d.layers[l];
        let a = out(l);
        if l == 0 {
            diag.push(Block::grid(vec![
                vec![shifted_a(&b.a, eps), b.dx.transpose()],
                vec![b.dx.clone(), Block::zeros(a, a)],
            ])?);
        } else {
            diag.push(Block::grid(vec![
                vec![b.e.clone(), b.g.transpose(), b.dz.transpose()],
                vec![b.g.clone(), shifted_a(&b.a, eps), b.dx.transpose()],
                vec![b.dz.clone(), b.dx.clone(), Block::zeros(a, a)],
            ])?);
            sub.push(coupling(l, &[out(l - 1), d.param_sizes[l], a])?);
        }
    }
    let a = out(nl - 1);
    diag.push(Block::zeros(a, a));
    sub.push(coupling(nl, &[a])?);
    Tridiag::symmetric(diag, sub)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("| activation | gain | eps | cond(H + eps I) | log-det error, ALGORITHM.md layout | log-det error, shifted layout |");
    println!("|---|--:|--:|--:|--:|--:|");
    let params = FactorParams { singular_tol: 0.0, ..FactorParams::default() };
    for (i, &act) in [Activation::Tanh, Activation::Gelu, Activation::Softplus, Activation::Identity, Activation::Relu]
        .iter()
        .enumerate()
    {
        for &gain in &[1.5, 3.0, 6.0] {
            for &eps in &[1e-1, 1e-3, 1e-5] {
                let layers = (0..8).map(|_| LayerSpec::Dense { out: 6, activation: act, bias: true }).collect();
                let net = Network::new(4, layers, LossSpec::CrossEntropy { classes: 3, bias: true })?;
                let mut p = net.init_params(i as u64);
                p.scale(gain);
                let batch = Batch::random_classification(4, 3, 3, 100 + i as u64);
                let curv = Curvature::new(&net, &p, &batch)?;
                let spec = Curvature::spectrum(&curv.dense_hessian(DenseLimit::default())?)?;
                let reference = spec.log_abs_det(eps);
                let rel = |ld: f64| (ld - reference).abs() / reference.abs().max(1.0);
                let standard = rel(curv.factor(eps)?.log_abs_det());
                let shifted = match BlockLdlt::factor(&shifted_layout(curv.derivatives(), eps)?, &params) {
                    Ok(f) => format!("{:.1e}", rel(f.log_abs_det())),
                    Err(e) => format!("breaks down ({})", e.to_string().split(':').next().unwrap_or("")),
                };
                println!("| {act:?} | {gain} | {eps:e} | {:.1e} | {standard:.1e} | {shifted} |", spec.condition(eps));
            }
        }
    }
    Ok(())
}
