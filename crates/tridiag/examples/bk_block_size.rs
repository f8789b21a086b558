//! Times faer's Bunch–Kaufman (classic partial pivoting, as `tridiag`
//! calls it) on a random symmetric block for several panel widths,
//! alternating them so that the machine's drift hits all alike. It backs
//! the panel width `tridiag` picks per block size (`dense_lblt.rs`).
//!
//! ```sh
//! cargo run --release -p tridiag --example bk_block_size -- 96 256 512
//! ```

use std::time::Instant;

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::lblt::factor;
use faer::{Auto, Mat, Par};
use rand::{Rng, SeedableRng};

const PANELS: [usize; 4] = [16, 24, 32, 64];
const ROUNDS: usize = 3;

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|s| s.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![96, 256, 512] } else { sizes };
    for n in sizes {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(n as u64);
        let r = Mat::<f64>::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0));
        let s = Mat::from_fn(n, n, |i, j| r[(i, j)] + r[(j, i)]);
        let reps = (2e8 / (n as f64).powi(3)).clamp(1.0, 200.0) as usize;
        let mut best = [f64::INFINITY; PANELS.len()];
        for _ in 0..ROUNDS {
            for (slot, &block_size) in PANELS.iter().enumerate() {
                best[slot] = best[slot].min(time(&s, block_size, reps));
            }
        }
        let flops = (n as f64).powi(3) / 3.0;
        let line: Vec<String> = PANELS
            .iter()
            .zip(best)
            .map(|(b, t)| format!("panel {b}: {:.1} us ({:.1} GFLOP/s)", t * 1e6, flops / t / 1e9))
            .collect();
        println!("n = {n}: {}", line.join(", "));
    }
}

/// Best-of-`reps` seconds for one factorization of a copy of `s`.
fn time(s: &Mat<f64>, block_size: usize, reps: usize) -> f64 {
    let n = s.nrows();
    let params = factor::LbltParams {
        pivoting: factor::PivotingStrategy::Partial,
        block_size,
        ..<factor::LbltParams as Auto<f64>>::auto()
    };
    let mut mem = MemBuffer::new(factor::cholesky_in_place_scratch::<usize, f64>(n, Par::Seq, params.into()));
    let (mut sub, mut perm, mut perm_inv) = (vec![0.0; n], vec![0usize; n], vec![0usize; n]);
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let mut m = s.clone();
        sub.iter_mut().for_each(|v| *v = 0.0);
        let t = Instant::now();
        factor::cholesky_in_place(
            m.as_mut(),
            faer::ColMut::from_slice_mut(&mut sub).as_diagonal_mut(),
            &mut perm,
            &mut perm_inv,
            Par::Seq,
            MemStack::new(&mut mem),
            params.into(),
        );
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}
