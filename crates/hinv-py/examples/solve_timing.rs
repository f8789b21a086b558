//! The Rust side of the Python overhead measurement (`bench/solve_overhead.py`
//! runs both): times `Factorization::solve` on a deterministic problem that
//! the Python script rebuilds identically, and the copy of its input.
//!
//! `cargo run --release -p hinv-py --example solve_timing -- WIDTH DEPTH BATCH REPS`

use std::time::Instant;

use faer::Mat;
use hinv::Curvature;
use netgraph::{Activation, Batch, Network, Targets};

/// Inputs `x[i][j] = sin(7 i + 3 j + 1)` and classes `i mod classes`, as in the Python script.
fn batch(n: usize, d: usize, classes: usize) -> Batch {
    let x = Mat::from_fn(n, d, |i, j| ((7 * i + 3 * j + 1) as f64).sin());
    Batch::new(x, Targets::Classes((0..n).map(|i| i % classes).collect())).expect("a valid batch")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), hinv::HinvError> {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("integer arguments")).collect();
    let [width, depth, n, reps] = args[..] else {
        eprintln!("usage: solve_timing WIDTH DEPTH BATCH REPS");
        std::process::exit(2);
    };
    let (input, classes) = (16, 10);
    let net = Network::builder(input).dense(width, Activation::Tanh).repeat(depth).cross_entropy(classes)?;
    let mut params = net.init_params(0);
    params.scale(2.0);
    let curv = Curvature::new(&net, &params, &batch(n, input, classes))?;
    let f = curv.factor(1e-3)?;
    let g = curv.gradient();
    let _ = f.solve(g)?; // warm-up
    let (mut solve, mut copy) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        let x = f.solve(g)?;
        solve.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let c = std::hint::black_box(g.to_vec());
        copy.push(t.elapsed().as_secs_f64());
        std::hint::black_box((x, c));
    }
    println!(
        "{{\"params\": {}, \"loss\": {:.17e}, \"solve_s\": {:.6e}, \"copy_s\": {:.6e}}}",
        curv.num_params(),
        curv.loss(),
        median(solve),
        median(copy)
    );
    Ok(())
}
