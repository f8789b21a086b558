//! Compares two interleavings of the same lifted system `K` as block LDLᵀ
//! inputs: ALGORITHM.md's `u_l = (x_l, y_l, z_l)` (what `hinv` factors) and
//! the shifted grouping `u_l = (y_{l-1}, x_l, z_l)`, whose off-diagonal
//! blocks are a bare `-I` between `z_{l-1}` and `y_{l-1}`. Both are
//! symmetric permutations of `K`, so they share log-determinant and
//! inertia; they differ in pivot growth. Prints, per network and eps, the
//! log-det error of each against the dense eigenvalues, and whether the
//! shifted grouping broke down (an exactly singular block, as ReLU's dead
//! units produce). Both columns are the sums over block pivots
//! (`block_log_abs_det`); the last column is what `log_abs_det` reports,
//! partial pivoting across blocks, which needs neither. Evidence for
//! docs/numerics.md.
//!
//! ```sh
//! cargo run --release -p hinv --example layouts
//! ```

use hinv::{Curvature, DenseLimit, FactorOptions, Layout, LayoutChoice};
use netgraph::{Activation, Batch, LayerSpec, LossSpec, Network};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "| activation | gain | eps | cond(H + eps I) | block pivots, ALGORITHM.md layout | block pivots, shifted layout | pivoted across blocks |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|");
    let fixed = |layout| FactorOptions { layout: LayoutChoice::Fixed(layout), ..FactorOptions::default() };
    for (i, &act) in [Activation::Tanh, Activation::Gelu, Activation::SOFTPLUS, Activation::Identity, Activation::Relu]
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
                let f = curv.factor_with(eps, &fixed(Layout::Interleaved))?;
                let (standard, pivoted) = (rel(f.block_log_abs_det()), rel(f.log_abs_det()));
                let shifted = match curv.factor_with(eps, &fixed(Layout::Shifted)) {
                    Ok(f) => format!("{:.1e}", rel(f.block_log_abs_det())),
                    // An exact zero pivot here is a breakdown of the block
                    // elimination, not a zero eigenvalue of H + eps I.
                    Err(hinv::HinvError::Singular { block, .. }) => format!("breaks down (block {block})"),
                    Err(e) => return Err(e.into()),
                };
                println!(
                    "| {act:?} | {gain} | {eps:e} | {:.1e} | {standard:.1e} | {shifted} | {pivoted:.1e} |",
                    spec.condition(eps)
                );
            }
        }
    }
    Ok(())
}
