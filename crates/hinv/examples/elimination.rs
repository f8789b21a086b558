//! The two block eliminations of the lifted system side by side: which one
//! `Elimination::Auto` picks, its growth, and the time to factor and solve
//! with each, and the end-to-end time (derivative blocks, factorization
//! and first solve) of `Auto`'s choice, on the configurations of issue 12
//! (tanh, cross-entropy).
//!
//! `cargo run --release -p hinv --example elimination [label filter]`

use std::time::Instant;

use hinv::{Curvature, Elimination, FactorOptions};
use netgraph::{Activation, Batch, Network};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // (label, depth, width, batch, input, classes, bias)
    let configs = [
        ("demo L30 h10 B2", 30, 10, 2, 5, 3, false),
        ("L256 h8 B2", 256, 8, 2, 5, 3, false),
        ("L16 h32 B2 (in 8, 4 classes)", 16, 32, 2, 8, 4, true),
        ("L16 h8 B16", 16, 8, 16, 5, 3, true),
        ("L16 h4 B2", 16, 4, 2, 5, 3, true),
        ("L64 h4 B4", 64, 4, 4, 5, 3, true),
        ("L16 h16 B2", 16, 16, 2, 5, 3, true),
        ("L4 h32 B8 in 784", 4, 32, 8, 784, 10, true),
        ("L4 h32 B8 in 32", 4, 32, 8, 32, 10, true),
    ];
    println!(
        "| network | p | auto picks | derivatives | factor interleaved | factor params-first | solve interleaved | solve params-first | ratio | end to end (auto) |"
    );
    println!("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|");
    // An optional argument keeps only the configurations whose label contains it.
    let only = std::env::args().nth(1).unwrap_or_default();
    for (label, depth, width, batch, input, classes, bias) in configs {
        if !label.contains(&only) {
            continue;
        }
        let b = Network::builder(input);
        let b = if bias { b } else { b.without_bias() };
        let net = b.dense(width, Activation::Tanh).repeat(depth).cross_entropy(classes)?;
        let params = net.init_params(20240601);
        let data = Batch::random_classification(input, classes, batch, 20240602);
        // Derivative blocks (Curvature::new), median of 5: with the
        // factorization and the first solve, the end-to-end time.
        let mut td = Vec::new();
        for _ in 0..5 {
            let t0 = Instant::now();
            drop(Curvature::new(&net, &params, &data)?);
            td.push(t0.elapsed().as_secs_f64());
        }
        let derivatives = median(td);
        let curv = Curvature::new(&net, &params, &data)?;
        let g = curv.gradient().to_vec();
        let auto = curv.factor(1e-3)?.elimination();
        let forced = FactorOptions { elimination: Elimination::ParametersFirst, ..FactorOptions::default() };
        let growth = curv.factor_with(1e-3, &forced)?.growth().unwrap_or(f64::NAN);
        let mut times = Vec::new();
        let widest = curv.derivatives().param_sizes.iter().max().copied().unwrap_or(0);
        for e in [Elimination::Interleaved, Elimination::ParametersFirst] {
            let skip = std::env::args().nth(2).is_some_and(|a| a == "pf");
            if e == Elimination::Interleaved && (widest > 4000 || skip) {
                // A dense Bunch–Kaufman of a block this size takes minutes.
                times.push((f64::NAN, f64::NAN));
                continue;
            }
            let opts = FactorOptions { elimination: e, ..FactorOptions::default() };
            let reps = 5;
            let (mut tf, mut ts) = (Vec::new(), Vec::new());
            for _ in 0..reps {
                let t0 = Instant::now();
                let f = curv.factor_with(1e-3, &opts)?;
                tf.push(t0.elapsed().as_secs_f64());
                let t0 = Instant::now();
                let _ = f.solve(&g)?;
                ts.push(t0.elapsed().as_secs_f64());
            }
            times.push((median(tf), median(ts)));
        }
        let (i, r) = (times[0], times[1]);
        let picked = if auto == Elimination::Interleaved { i } else { r };
        println!(
            "| {label} | {} | {auto:?} (growth {growth:.1e}) | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.1}x | {:.1} ms |",
            curv.num_params(),
            derivatives * 1e3,
            i.0 * 1e3,
            r.0 * 1e3,
            i.1 * 1e3,
            r.1 * 1e3,
            (i.0 + i.1) / (r.0 + r.1),
            (derivatives + picked.0 + picked.1) * 1e3
        );
    }
    Ok(())
}
