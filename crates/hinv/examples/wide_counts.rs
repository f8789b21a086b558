//! What the spectral tools certify on a network whose layers are too wide
//! for a count's second elimination (docs/spectrum.md, "Limits"): the
//! extreme eigenvalues' brackets, an 8-bin histogram and three counts,
//! each with its uncertainty and time, at the default elimination.
//!
//! `cargo run --release -p hinv --example wide_counts -- L h B` (the
//! benchmarks' tanh network of depth `L`, width `h`, batch `B`; default
//! `16 64 2`, whose counts skip the second elimination). With a fourth
//! argument `interleaved`, only the three counts, each with
//! `Elimination::Interleaved` (at `16 64 2`: 9 GB and tens of seconds each).

use std::time::Instant;

use hinv::{Curvature, Elimination, FactorOptions, SpectrumOptions};
use netgraph::{Activation, Batch, Network};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let interleaved = args.len() == 4 && args[3] == "interleaved";
    let sizes: Vec<usize> = args.iter().take(3).map(|s| s.parse().expect("L h B: three integers")).collect();
    let (l, h, b) = match (&sizes[..], args.len()) {
        (&[l, h, b], 3) => (l, h, b),
        (&[l, h, b], 4) if interleaved => (l, h, b),
        (_, 0) => (16, 64, 2),
        _ => panic!("arguments: L h B [interleaved], or none for 16 64 2"),
    };
    let net = Network::builder(5).without_bias().dense(h, Activation::Tanh).repeat(l).cross_entropy(3).unwrap();
    let params = net.init_params(20240601);
    let curv = Curvature::new(&net, &params, &Batch::random_classification(5, 3, b, 20240602)).unwrap();
    println!("L{l} h{h} B{b}: {} parameters", curv.num_params());
    // With `interleaved`, the counts alone (each a factorization of the
    // whole lifted system).
    let (elimination, label) =
        if interleaved { (Elimination::Interleaved, "interleaved: ") } else { (Elimination::Auto, "") };
    if !interleaved {
        spectral_tools(&curv);
    }
    let opts = FactorOptions { elimination, ..Default::default() };
    for t in [-1e-3, 1e-3, 1e-2] {
        let clock = Instant::now();
        match curv.count_eigenvalues_below_with(t, &opts) {
            Ok(c) => println!(
                "{label}eigenvalues below {t:e}: {} (uncertain by {}), {:.3} s",
                c.count,
                c.uncertain,
                clock.elapsed().as_secs_f64()
            ),
            Err(err) => println!("{label}count below {t:e}: {err}"),
        }
    }
}

/// The extreme eigenvalues' brackets and an 8-bin histogram, at the
/// default elimination.
fn spectral_tools(curv: &Curvature) {
    let opts = SpectrumOptions::default();
    let clock = Instant::now();
    let ends = [("lambda_min", curv.lambda_min(&opts)), ("lambda_max", curv.lambda_max(&opts))];
    for (name, e) in ends {
        match e {
            Ok(e) => println!(
                "{name} = {:.10e}, bracket width {:.1e} ({:.1e} relative), converged {}, {} factorizations",
                e.value,
                e.upper - e.lower,
                (e.upper - e.lower) / e.value.abs(),
                e.converged,
                e.factorizations
            ),
            Err(err) => println!("{name}: {err}"),
        }
    }
    println!("  both in {:.2} s", clock.elapsed().as_secs_f64());
    let clock = Instant::now();
    match curv.histogram_bins(8, &opts) {
        Ok(hg) => println!(
            "8-bin histogram in {:.2} s: counts {:?}, uncertain {:?}",
            clock.elapsed().as_secs_f64(),
            hg.counts,
            hg.uncertain
        ),
        Err(err) => println!("histogram: {err}"),
    }
}
