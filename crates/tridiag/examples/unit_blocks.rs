//! Times `BlockDiagLdlt::factor_packed` on many small random symmetric
//! blocks of one size (a narrow layer's parameter groups), sequentially:
//! the best of several rounds, per block. Build it at two commits and run
//! the binaries in turn to compare kernels (it backs `small_lblt`'s size
//! limit).
//!
//! ```sh
//! cargo run --release -p tridiag --example unit_blocks -- 4 8 16 32 48
//! ```

use std::time::Instant;

use rand::{Rng, SeedableRng};
use tridiag::{BlockDiagLdlt, FactorParams, ParPolicy};

const ROUNDS: usize = 7;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = std::env::args().skip(1).map(|s| s.parse()).collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() { vec![4, 8, 16, 32, 48] } else { sizes };
    // One thread: the kernel's cost, not rayon's.
    let params = FactorParams { par: ParPolicy::Seq, ..FactorParams::default() };
    for n in sizes {
        let count = (40_000 / (n * n)).max(8);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(n as u64);
        let mut data = vec![0.0; count * n * n];
        for block in data.chunks_mut(n * n) {
            for j in 0..n {
                for i in j..n {
                    let v: f64 = rng.random_range(-1.0..1.0);
                    block[i + j * n] = v;
                    block[j + i * n] = v;
                }
            }
        }
        let sizes = vec![n; count];
        let mut best = f64::INFINITY;
        for _ in 0..ROUNDS {
            let input = data.clone();
            let t = Instant::now();
            let f = BlockDiagLdlt::factor_packed(input, &sizes, &params)?;
            best = best.min(t.elapsed().as_secs_f64());
            std::hint::black_box(f);
        }
        println!("n {n:3}: {:.3} us per block ({count} blocks)", best / count as f64 * 1e6);
    }
    Ok(())
}
