//! The phases of `hinv solve`, timed through the library in one process:
//! medians over repeated runs of the derivative blocks, the factorization,
//! the first refined solve (which also estimates `||H + eps I||`), a solve
//! on the same factorization, the block sweeps over the factored `R` alone
//! (the blocks the block LDLᵀ factored: not the leading ones eliminated in
//! closed form),
//! one HVP, the first `inertia` and `log_det` calls, each on a fresh
//! factorization (either may run a second elimination, which it keeps),
//! and end to end (a
//! fresh `Curvature`, factorization and first
//! solve of a random right-hand side, dropped inside the timing, as
//! `cargo xtask bench` measures it), and the block system's smallest pivot
//! margin over its certificate's bound. For before/after comparisons of the engine, where
//! criterion's whole grid is too slow and a fresh process measures the
//! allocator as much as the code (`examples/allocator.rs` does that).
//!
//! `cargo run --release -p hinv --example phase_times -- L h B [reps [gain [eps]]]`
//! (tanh layers of width `h` on 5 inputs, cross-entropy over 3 classes, no
//! bias, batch `B`; the same networks as `cargo xtask bench`, whose
//! initialisation `gain` multiplies: at PyTorch's (gain 1) a deep network's
//! activations and second derivatives fall below the normal range of
//! doubles, at gain 1.73 they stay in it; `eps` defaults to 1e-3, a
//! negative one shifts into the spectrum as counting eigenvalues does).

use std::time::Instant;

use hinv::{Curvature, SolveOptions};
use netgraph::{Activation, Batch, Network};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: phase_times L h B [reps [gain [eps]]] (L, h, B and reps whole numbers, gain and eps numbers)";
    let whole = |i: usize, default: usize| args.get(i).map_or(Ok(default), |s| s.parse::<usize>().map_err(|_| usage));
    let (depth, width, batch) = match args.len() {
        3..=6 => (whole(0, 0)?, whole(1, 0)?, whole(2, 0)?),
        _ => return Err(usage.into()),
    };
    let reps = whole(3, 20)?.max(1);
    let gain: f64 = args.get(4).map_or(Ok(1.0), |s| s.parse().map_err(|_| usage))?;
    let eps: f64 = args.get(5).map_or(Ok(1e-3), |s| s.parse().map_err(|_| usage))?;
    let net = Network::builder(5).without_bias().dense(width, Activation::Tanh).repeat(depth).cross_entropy(3)?;
    let mut params = net.init_params(20240601);
    params.scale(gain);
    let data = Batch::random_classification(5, 3, batch, 20240602);
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let mut times: [Vec<f64>; 9] = Default::default();
    let mut refinements = 0;
    let mut elimination = None;
    let mut growth = None;
    // The smallest margin of a pivot of the block system over its
    // certificate's bound: a parameters-first count stands alone from
    // 1000 times the growth (docs/numerics.md).
    let mut margin = f64::NAN;
    // How many blocks the block LDLᵀ factored: after the parameters-first
    // elimination, `R`'s blocks (one per layer) but the leading ones that
    // decouple, which it eliminates in closed form.
    let mut factored = 0;
    // A fixed random unit vector, like the bench's right-hand side.
    let n = net.num_params();
    let unit: Vec<f64> = (0..n).map(|i| (i as f64 * 0.754_877_666).fract() - 0.5).collect();
    let norm = unit.iter().map(|v| v * v).sum::<f64>().sqrt();
    let unit: Vec<f64> = unit.iter().map(|v| v / norm).collect();
    for _ in 0..reps {
        let t = Instant::now();
        let curv = Curvature::new(&net, &params, &data)?;
        times[0].push(ms(t));
        let g = curv.gradient().to_vec();
        let rhs = faer::MatRef::from_column_major_slice(&g, g.len(), 1);
        let t = Instant::now();
        let f = curv.factor(eps)?;
        times[1].push(ms(t));
        let t = Instant::now();
        let first = f.solve_with(rhs, &SolveOptions::default())?;
        times[2].push(ms(t));
        refinements = refinements.max(first.report.refinements);
        elimination = Some(f.elimination());
        growth = f.growth();
        margin = f.block_ldlt().pivot_margin();
        factored = f.block_ldlt().block_sizes().len();
        let t = Instant::now();
        std::hint::black_box(f.solve_with(rhs, &SolveOptions::default())?);
        times[3].push(ms(t));
        // A right-hand side for the block system the elimination factored.
        let lifted = faer::Mat::<f64>::from_fn(f.block_ldlt().dim(), 1, |i, _| g[i % g.len()]);
        let t = Instant::now();
        std::hint::black_box(f.block_ldlt().solve(lifted.as_ref())?);
        times[4].push(ms(t));
        let t = Instant::now();
        std::hint::black_box(curv.hvp(&g)?);
        times[5].push(ms(t));
        // Each on a factorization of its own: either may run a second
        // elimination that the other would then reuse.
        drop(f);
        for (slot, query) in [(7, 0), (8, 1)] {
            let f = curv.factor(eps)?;
            let t = Instant::now();
            if query == 0 {
                std::hint::black_box(f.inertia());
            } else {
                std::hint::black_box(f.log_det()?);
            }
            times[slot].push(ms(t));
        }
        drop(curv);
        let t = Instant::now();
        {
            let c = Curvature::new(&net, &params, &data)?;
            let f = c.factor(eps)?;
            std::hint::black_box(f.solve(&unit)?);
        }
        times[6].push(ms(t));
    }
    let [deriv, factor, first, solve, sweeps, hvp, e2e, inertia, log_det] = times.map(median);
    // How far the network's numbers sink: arithmetic on products of
    // entries below 1e-154 leaves the normal range of doubles (subnormal
    // numbers, slow on x86), which bends the time against depth.
    let d = net.derivatives(&params, &data)?;
    let (mut smallest, mut tiny, mut nonzero) = (f64::INFINITY, 0usize, 0usize);
    for b in &d.layers {
        for block in b.named().map(|(_, block)| block.to_dense()) {
            for v in block.col_iter().flat_map(|c| c.iter().map(|v| v.abs())).filter(|&v| v > 0.0) {
                smallest = smallest.min(v);
                nonzero += 1;
                tiny += usize::from(v < 1e-154);
            }
        }
    }
    println!("derivative blocks: {tiny} of {nonzero} non-zero entries below 1e-154, smallest {smallest:.1e}");
    println!(
        "L{depth} h{width} B{batch} gain {gain} eps {eps:e}, medians of {reps} (ms): derivatives {deriv:.3}, factor {factor:.3}, \
         first solve {first:.3}, solve {solve:.3}, sweeps over R {sweeps:.3}, HVP {hvp:.3}, inertia {inertia:.3}, \
         log-det {log_det:.3}, end to end {e2e:.3}; \
         at most {refinements} refinements, elimination {elimination:?}, growth {}, pivot margin {margin:.1e}, \
         blocks factored {factored} (of {} layers)",
        growth.map_or("none".to_string(), |g| format!("{g:.1e}")),
        net.num_layers()
    );
    Ok(())
}
