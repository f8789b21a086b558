//! The two orders of the block elimination side by side on hinv's own
//! systems: `Strategy::Sequential` (top-down) and the default
//! `Strategy::Auto`, which on these networks (10 layers and more) is
//! `Strategy::TwoSided`: two chains on two threads meeting in the middle.
//! Rounds alternate the two, so the machine's drift hits both alike; the
//! minimum and median factorization times are printed with the inertia
//! each reports (and how many of its counts it could not certify).
//!
//! `cargo run --release -p hinv --example strategy [rounds]`

use std::time::Instant;

use hinv::{Curvature, FactorOptions, Strategy};
use netgraph::{Activation, Batch, Network};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    // (label, depth, width, batch)
    let configs = [("demo L30 h10 B2", 30, 10, 2), ("L256 h8 B2", 256, 8, 2), ("L16 h8 B16", 16, 8, 16)];
    println!(
        "| network | sequential min / median | auto (two-sided) min / median | inertia (sequential) | inertia (auto) |"
    );
    println!("|---|--:|--:|---|---|");
    for (label, depth, width, batch) in configs {
        let net = Network::builder(5).without_bias().dense(width, Activation::Tanh).repeat(depth).cross_entropy(3)?;
        let params = net.init_params(20240601);
        let data = Batch::random_classification(5, 3, batch, 20240602);
        let curv = Curvature::new(&net, &params, &data)?;
        let strategies = [Strategy::Sequential, Strategy::Auto];
        let mut times = [Vec::new(), Vec::new()];
        let mut inertia = [String::new(), String::new()];
        for _ in 0..rounds {
            for (slot, &strategy) in strategies.iter().enumerate() {
                let opts = FactorOptions { strategy, ..FactorOptions::default() };
                let t = Instant::now();
                let f = curv.factor_with(1e-3, &opts)?;
                times[slot].push(t.elapsed().as_secs_f64() * 1e3);
                let i = f.inertia();
                inertia[slot] = format!("{} / {} / {} ({} uncertain)", i.positive, i.negative, i.zero, i.uncertain);
            }
        }
        let stats = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            format!("{:.2} / {:.2} ms", v[0], v[v.len() / 2])
        };
        let (seq, two) = (stats(&mut times[0]), stats(&mut times[1]));
        println!("| {label} | {seq} | {two} | {} | {} |", inertia[0], inertia[1]);
    }
    Ok(())
}
