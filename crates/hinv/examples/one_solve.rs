//! One whole solve, once: the derivative blocks, the factorization (hinv's
//! defaults) and one refined solve of `(H + 1e-3 I) x = g` for a tanh MLP
//! with a cross-entropy loss, nothing else. Made to be profiled: the
//! instruction counts quoted in CHANGELOG.md and docs/benchmarks.md come from
//!
//! ```sh
//! cargo build --release -p hinv --example one_solve
//! RAYON_NUM_THREADS=1 valgrind --tool=callgrind target/release/examples/one_solve 16 8 16
//! ```
//!
//! Arguments: depth, width, batch, then optionally the input size (5),
//! the classes (3) and `bias` (without it, no bias: the benchmark grid's
//! networks).

use hinv::{Curvature, FactorOptions, SolveOptions};
use netgraph::{Activation, Batch, Network};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: Option<usize>| -> Result<usize, String> {
        match args.get(i) {
            Some(s) => s.parse().map_err(|e| format!("argument {} ({s}): {e}", i + 1)),
            None => default.ok_or_else(|| "usage: one_solve DEPTH WIDTH BATCH [INPUT [CLASSES [bias]]]".to_string()),
        }
    };
    let (depth, width, batch) = (number(0, None)?, number(1, None)?, number(2, None)?);
    let (input, classes) = (number(3, Some(5))?, number(4, Some(3))?);
    let bias = args.get(5).is_some_and(|s| s == "bias");
    let builder = Network::builder(input);
    let builder = if bias { builder } else { builder.without_bias() };
    let net = builder.dense(width, Activation::Tanh).repeat(depth).cross_entropy(classes)?;
    let params = net.init_params(20240601);
    let data = Batch::random_classification(input, classes, batch, 20240602);

    let curv = Curvature::new(&net, &params, &data)?;
    let g = curv.gradient().to_vec();
    let f = curv.factor_with(1e-3, &FactorOptions::default())?;
    let rhs = faer::MatRef::from_column_major_slice(&g, g.len(), 1);
    let solved = f.solve_with(rhs, &SolveOptions::default())?;
    println!(
        "p = {}, elimination {:?}, backward error {:.1e} (initial {:.1e}, {} refinements)",
        g.len(),
        f.elimination(),
        solved.report.backward_error,
        solved.report.initial_backward_error,
        solved.report.refinements
    );
    Ok(())
}
