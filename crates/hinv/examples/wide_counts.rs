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
    if interleaved {
        let opts = FactorOptions { allow_singular: true, elimination: Elimination::Interleaved, ..Default::default() };
        for t in [-1e-3, 1e-3, 1e-2] {
            let clock = Instant::now();
            let i = curv.factor_with(-t, &opts).map(|f| f.inertia());
            match i {
                Ok(i) => println!(
                    "interleaved: eigenvalues below {t:e}: {} (uncertain by {}), {:.1} s",
                    i.negative,
                    i.uncertain,
                    clock.elapsed().as_secs_f64()
                ),
                Err(err) => println!("interleaved count below {t:e}: {err}"),
            }
        }
        return;
    }
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
    for t in [-1e-3, 1e-3, 1e-2] {
        let clock = Instant::now();
        match curv.count_eigenvalues_below(t) {
            Ok(c) => println!(
                "eigenvalues below {t:e}: {} (uncertain by {}), {:.3} s",
                c.count,
                c.uncertain,
                clock.elapsed().as_secs_f64()
            ),
            Err(err) => println!("count below {t:e}: {err}"),
        }
    }
}
