//! The evidence of a 30-layer tanh network of width 10 (input 5, 3 classes,
//! no bias, p = 3000) over a batch of 32, by hinv's routes and by the dense
//! route (dense GGN from exact products, Cholesky), with timings.
//!
//! `cargo run --release -p hinv --example laplace_evidence`

use std::time::Instant;

use faer::Side;
use hinv::laplace::{Laplace, LaplaceOptions};
use hinv::{DenseLimit, Route};
use netgraph::{Activation, Batch, Network};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let net = Network::builder(5).without_bias().dense(10, Activation::Tanh).repeat(30).cross_entropy(3)?;
    let mut params = net.init_params(20240601);
    params.scale(2.0);
    let batch = Batch::random_classification(5, 3, 32, 20240602);
    let delta = 1.0;
    let t = Instant::now();
    let lap = Laplace::new(&net, &params, &batch, &LaplaceOptions::default())?;
    let t_derivs = t.elapsed().as_secs_f64();
    let costs = lap.curvature().route_costs();
    println!(
        "p = {}, predicted flops: lifted {:.3e}, woodbury {:.3e}",
        params.len(),
        costs.lifted,
        costs.woodbury.unwrap_or(f64::NAN)
    );
    let mut results = Vec::new();
    for route in [None, Some(Route::Lifted), Some(Route::Woodbury)] {
        let l = Laplace::new(&net, &params, &batch, &LaplaceOptions { route, ..Default::default() })?;
        let t = Instant::now();
        let ev = l.evidence(delta)?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "route {:?} -> {:?}: evidence {:.15e} in {:.4} s (+ derivative blocks {t_derivs:.4} s)",
            route, ev.route, ev.log_marginal_likelihood, secs
        );
        results.push((ev.log_marginal_likelihood, secs + t_derivs));
    }
    // The dense route: dense GGN (exact products of unit vectors), Cholesky.
    let t = Instant::now();
    let g = lap.curvature().dense_hessian(DenseLimit::default())?;
    let s = lap.scale();
    let p = params.len();
    let post = faer::Mat::from_fn(p, p, |i, j| s * g[(i, j)] + if i == j { delta } else { 0.0 });
    let l = post.llt(Side::Lower).map_err(|e| format!("{e:?}"))?;
    let log_det: f64 = 2.0 * (0..p).map(|i| l.L()[(i, i)].ln()).sum::<f64>();
    let theta_sq: f64 = params.as_slice().iter().map(|v| v * v).sum();
    let ln2pi = (2.0 * std::f64::consts::PI).ln();
    let pf = p as f64;
    let log_prior = 0.5 * pf * delta.ln() - 0.5 * pf * ln2pi - 0.5 * delta * theta_sq;
    let dense = lap.log_likelihood() + log_prior - 0.5 * log_det + 0.5 * pf * ln2pi;
    let t_dense = t.elapsed().as_secs_f64() + t_derivs;
    println!(
        "dense: evidence {dense:.15e} in {t_dense:.4} s (GGN from products + Cholesky, derivative blocks included)"
    );
    for (name, (ev, secs)) in ["auto", "lifted", "woodbury"].iter().zip(&results) {
        println!(
            "{name}: relative difference {:.2e}, speed-up {:.1}x",
            (ev - dense).abs() / dense.abs(),
            t_dense / secs
        );
    }
    Ok(())
}
