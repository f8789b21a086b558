//! Allocation counts of the phases of a solve (derivatives, factor, solve)
//! with the system allocator: where a library user's allocator still works.
//!
//! `cargo run --release -p hinv-benches --example alloc_count`

use std::alloc::System;

use hinv::{Curvature, FactorOptions, SolveOptions};
use netgraph::{Activation, Batch, Network};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn count<T>(f: impl FnOnce() -> T) -> (usize, usize, T) {
    let region = Region::new(GLOBAL);
    let out = f();
    let c = region.change();
    (c.allocations + c.reallocations, c.bytes_allocated, out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let configs = [
        ("demo L30 h10 B2", 30, 10, 2, 5, 3, false),
        ("L256 h8 B2", 256, 8, 2, 5, 3, false),
        ("L16 h32 B2", 16, 32, 2, 8, 4, true),
    ];
    println!("| network | phase | allocations | MB allocated |");
    println!("|---|---|--:|--:|");
    for (label, depth, width, batch, input, classes, bias) in configs {
        let b = Network::builder(input);
        let b = if bias { b } else { b.without_bias() };
        let net = b.dense(width, Activation::Tanh).repeat(depth).cross_entropy(classes)?;
        let params = net.init_params(20240601);
        let data = Batch::random_classification(input, classes, batch, 20240602);
        // Warm: one-time initialisation outside the counts.
        let c0 = Curvature::new(&net, &params, &data)?;
        let _ = c0.factor_route(1e-3, &FactorOptions::default(), None)?;
        let (a, by, curv) = count(|| Curvature::new(&net, &params, &data));
        let curv = curv?;
        println!("| {label} | derivatives | {a} | {:.1} |", by as f64 / 1e6);
        let g = curv.gradient().to_vec();
        let (a, by, f) = count(|| curv.factor_route(1e-3, &FactorOptions::default(), None));
        let f = f?;
        println!("| {label} | factor | {a} | {:.1} |", by as f64 / 1e6);
        let (a, by, _) =
            count(|| f.solve_with(faer::MatRef::from_column_major_slice(&g, g.len(), 1), &SolveOptions::default()));
        println!("| {label} | solve | {a} | {:.1} |", by as f64 / 1e6);
    }
    Ok(())
}
