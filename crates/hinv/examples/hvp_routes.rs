//! The two routes of a Hessian-vector product, in one process: dense
//! layers multiplied from their weights and activations
//! (`netgraph::LayerProduct`, what `Curvature::new` uses) against the same
//! point's formed blocks (`Curvature::from_derivatives`, which reads them).
//! Prints the fastest and the median time of each over `ROUNDS` alternating
//! calls, their ratio, and the largest difference of the results relative to their largest entry.
//!
//! `cargo run --release -p hinv --example hvp_routes [depth width batch]...`
//! (default: the benchmark grid's L64, L256 and L1024 at h=8 B=2, L16 h8
//! B16, L16 h32 B2 and the demo's L30 h10 B2; tanh, cross-entropy, no bias).

use std::time::Instant;

use hinv::Curvature;
use netgraph::{Activation, Batch, Network};

const ROUNDS: usize = 200;

fn fastest_and_median(mut t: Vec<f64>) -> (f64, f64) {
    t.sort_by(f64::total_cmp);
    (t[0], t[t.len() / 2])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args().skip(1).map(|s| s.parse()).collect::<Result<_, _>>()?;
    let configs: Vec<[usize; 3]> = if args.is_empty() {
        vec![[64, 8, 2], [256, 8, 2], [1024, 8, 2], [16, 8, 16], [16, 32, 2], [30, 10, 2]]
    } else if args.len() % 3 == 0 {
        args.chunks(3).map(|c| [c[0], c[1], c[2]]).collect()
    } else {
        return Err("usage: hvp_routes [depth width batch]...".into());
    };
    println!("| network | p | blocks: fastest / median | weights: fastest / median | blocks / weights (medians) | largest relative difference |");
    println!("|---|--:|--:|--:|--:|--:|");
    for [depth, width, batch] in configs {
        let net = Network::builder(5).without_bias().dense(width, Activation::Tanh).repeat(depth).cross_entropy(3)?;
        let params = net.init_params(20240601);
        let data = Batch::random_classification(5, 3, batch, 20240602);
        let free = Curvature::new(&net, &params, &data)?;
        let blocks = Curvature::from_derivatives(free.derivatives().clone())?;
        // A fixed vector without structure (a deep network's gradient
        // vanishes in its first layers).
        let v: Vec<f64> = (0..free.num_params()).map(|i| (i as f64 * 0.618_033_988_7).fract() - 0.5).collect();
        let (mut tb, mut tf) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
        let mut diff = 0.0f64;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let hb = blocks.hvp(&v)?;
            tb.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            let hf = free.hvp(&v)?;
            tf.push(t.elapsed().as_secs_f64() * 1e6);
            let scale = hb.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(f64::MIN_POSITIVE);
            diff = diff.max(hb.iter().zip(&hf).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale);
        }
        let ((bmin, bmed), (fmin, fmed)) = (fastest_and_median(tb), fastest_and_median(tf));
        println!(
            "| L{depth} h{width} B{batch} | {} | {bmin:.0} / {bmed:.0} µs | {fmin:.0} / {fmed:.0} µs | {:.1}x | {diff:.1e} |",
            free.num_params(),
            bmed / fmed
        );
    }
    Ok(())
}
