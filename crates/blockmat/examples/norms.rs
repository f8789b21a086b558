//! faer's `norm_l2` against [`blockmat::reduce::norm_l2`] (a plain sum of
//! squares where that is exact to rounding) on columns of the lengths
//! hinv's solves take norms of (a unit's 65 parameters at width 64, and
//! the parameter counts of the benchmarks' L16 h8, L256 h8 and L16 h64
//! networks): best of 7 rounds of 200 calls, microseconds per call.
//!
//! `cargo run --release -p blockmat --example norms`

use std::hint::black_box;
use std::time::Instant;

fn best_us(mut f: impl FnMut() -> f64) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..200 {
            black_box(f());
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / 200.0);
    }
    best
}

fn main() {
    println!("{:>8} {:>14} {:>18} {:>8}", "length", "faer norm_l2", "reduce::norm_l2", "ratio");
    for n in [65, 1_024, 16_384, 61_952] {
        let m = faer::Mat::<f64>::from_fn(n, 1, |i, _| (i as f64 * 0.37).sin());
        let faer_us = best_us(|| black_box(m.as_ref()).col(0).norm_l2());
        let ours_us = best_us(|| blockmat::reduce::norm_l2(black_box(m.as_ref())));
        let (a, b) = (m.col(0).norm_l2(), blockmat::reduce::norm_l2(m.as_ref()));
        assert!((a - b).abs() <= 1e-14 * a, "the two norms disagree: {a} against {b}");
        println!("{n:>8} {faer_us:>14.2} {ours_us:>18.2} {:>7.1}x", faer_us / ours_us);
    }
}
