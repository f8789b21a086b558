//! Evidence for the uncertainty of counts that skip their second
//! elimination (docs/numerics.md, "Eliminating the parameters first"): on
//! networks wide enough that a count after the parameters-first
//! elimination is never checked by factoring the whole lifted system
//! (beyond `SECOND_OPINION_LIMIT` and `SECOND_OPINION_FLOOR`), every count
//! of the default elimination is compared with the interleaved
//! elimination's, which runs the whole check. The differential test's
//! networks all stay below the floor, so this is the only oracle these
//! counts have: a dense spectrum of their 10^4 parameters is out of reach.
//!
//! A count is *wrong* when the interleaved one is certified and lies
//! farther from the default's than the default's `uncertain`.
//!
//! `cargo run --release -p hinv --example wide_differential -- [cases [seed]]`
//! (default 12 cases, seed 1; a case is about ten interleaved
//! factorizations of a few seconds each at these widths).

use std::time::Instant;

use hinv::{Curvature, Elimination, FactorOptions};
use netgraph::{Activation, Batch, Network, Softplus};

/// A small deterministic generator (xorshift), so that a seed names the
/// same cases on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// The eigenvalue thresholds `t` counted (`H - t I` factored): both signs,
/// from far outside the bulk at zero into it.
const THRESHOLDS: [f64; 10] = [-1e-1, -1e-2, -1e-3, -1e-4, -1e-6, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: wide_differential [cases [seed]] (whole numbers)";
    let cases: usize = args.first().map_or(Ok(12), |s| s.parse().map_err(|_| usage))?;
    let seed: u64 = args.get(1).map_or(Ok(1), |s| s.parse().map_err(|_| usage))?;
    if args.len() > 2 {
        return Err(usage.into());
    }
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let activations = [
        ("tanh", Activation::Tanh),
        ("sigmoid", Activation::Sigmoid),
        ("relu", Activation::Relu),
        ("softplus", Activation::Softplus(Softplus::default())),
        ("gelu", Activation::Gelu),
    ];
    let interleaved =
        FactorOptions { allow_singular: true, elimination: Elimination::Interleaved, ..Default::default() };
    println!("| case | network | t | default count | interleaved count | off by | default s | interleaved s |");
    println!("|--:|---|--:|--:|--:|--:|--:|--:|");
    let (mut compared, mut uncertain, mut wrong, mut unchecked) = (0usize, 0usize, 0usize, 0usize);
    let (mut worst_off, mut worst_ratio, mut sum_unc) = (0usize, 0.0f64, 0usize);
    for case in 0..cases {
        let width = rng.pick(&[48usize, 56, 64]);
        // Beyond the floor of 1e10 flops: three layers of width 48 are not
        // (9e9), four are; at 56 and 64 three suffice. The ratio to `R`'s
        // blocks is above 2000 for all of them.
        let depth = if width == 48 { 4 } else { rng.pick(&[3usize, 4]) };
        let batch = rng.pick(&[1usize, 2]);
        let (act_name, act) = rng.pick(&activations);
        let gain = rng.pick(&[0.5, 1.0, 2.0]);
        let bias = rng.next() % 2 == 0;
        let b = Network::builder(5);
        let b = if bias { b } else { b.without_bias() };
        let net = b.dense(width, act).repeat(depth).cross_entropy(3)?;
        let mut params = net.init_params(seed * 1000 + case as u64);
        params.scale(gain);
        let data = Batch::random_classification(5, 3, batch, seed * 1000 + case as u64 + 500);
        let curv = Curvature::new(&net, &params, &data)?;
        let label = format!("L{depth} h{width} B{batch} {act_name} gain {gain}{}", if bias { " bias" } else { "" });
        for &t in &THRESHOLDS {
            let clock = Instant::now();
            let d = curv.count_eigenvalues_below(t)?;
            let d_s = clock.elapsed().as_secs_f64();
            let clock = Instant::now();
            let i = curv.count_eigenvalues_below_with(t, &interleaved)?;
            let i_s = clock.elapsed().as_secs_f64();
            let off = d.count.abs_diff(i.count);
            let verdict = if i.uncertain > 0 {
                unchecked += 1;
                "(interleaved uncertain)".to_string()
            } else {
                compared += 1;
                if d.uncertain > 0 {
                    uncertain += 1;
                    sum_unc += d.uncertain;
                    worst_ratio = worst_ratio.max(off as f64 / d.uncertain as f64);
                }
                worst_off = worst_off.max(off);
                if off > d.uncertain {
                    wrong += 1;
                    format!("**{off} (wrong)**")
                } else {
                    off.to_string()
                }
            };
            println!(
                "| {case} | {label} | {t:e} | {} ± {} | {} ± {} | {verdict} | {d_s:.3} | {i_s:.2} |",
                d.count, d.uncertain, i.count, i.uncertain
            );
        }
    }
    println!();
    println!(
        "{compared} counts compared against a certified interleaved count ({unchecked} where that one was uncertain too): \
         {wrong} wrong, {uncertain} uncertain (mean uncertainty {:.1}), largest difference {worst_off}, \
         largest difference / uncertainty {worst_ratio:.3}",
        if uncertain > 0 { sum_unc as f64 / uncertain as f64 } else { 0.0 }
    );
    if wrong > 0 {
        return Err(format!("{wrong} counts outside their stated uncertainty").into());
    }
    Ok(())
}
