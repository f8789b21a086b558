//! Per-block overhead of `tridiag::BlockLdlt::factor` on a shared, loaded
//! machine: each case is factored many times, alternating the borrowed and
//! the owned entry point, then solved twice for one column (the first solve
//! completes the links' inverses), and the minimum and median wall times
//! are printed
//! (the minimum is what an undisturbed run costs; criterion's means move by
//! +-30% here while other builds run).
//!
//! `cargo run --release -p hinv-benches --example factor_overhead [reps [cases...]]`

use std::time::{Duration, Instant};

use blockmat::{Block, Tridiag};
use faer::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tridiag::{BlockLdlt, FactorParams, ParPolicy};

fn random_mat(rng: &mut ChaCha8Rng, r: usize, c: usize) -> Mat<f64> {
    Mat::from_fn(r, c, |_, _| rng.random_range(-1.0..1.0))
}

/// `nb` random symmetric indefinite blocks of size `n`, coupled through
/// `range` columns starting at `n / 4` (the `tridiag` bench's matrices).
fn tridiag(nb: usize, n: usize, range: usize, seed: u64) -> Tridiag {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = if range == n { 0 } else { n / 4 };
    let diag = (0..nb)
        .map(|_| {
            let a = random_mat(&mut rng, n, n);
            Block::dense(Mat::from_fn(n, n, |i, j| a[(i, j)] + a[(j, i)]))
        })
        .collect();
    let sub = (1..nb)
        .map(|_| {
            Block::grid(vec![vec![
                Block::zeros(n, start),
                Block::dense(random_mat(&mut rng, n, range)),
                Block::zeros(n, n - start - range),
            ]])
            .expect("consistent grid")
        })
        .collect();
    Tridiag::symmetric(diag, sub).expect("consistent tridiagonal")
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    (v[0].as_secs_f64() * 1e6, v[v.len() / 2].as_secs_f64() * 1e6)
}

fn main() {
    let reps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(40);
    // Cases named (`256x16`, ...) after the count, or all.
    let only: Vec<String> = std::env::args().skip(2).collect();
    let params = FactorParams { par: ParPolicy::Seq, ..Default::default() };
    let cases = [
        (256usize, 16usize, 8usize),
        (64, 20, 10),
        (16, 64, 32),
        (16, 256, 128),
        (4, 64, 16),
        (4, 128, 32),
        (4, 256, 64),
        (4, 512, 128),
    ];
    println!(
        "{:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "case", "factor min", "median", "owned min", "median", "1st solve", "median", "2nd solve", "median"
    );
    println!("{:>10} (microseconds; solves of one column after a borrowed factorization)", "");
    for (nb, n, range) in cases {
        if !only.is_empty() && !only.contains(&format!("{nb}x{n}")) {
            continue;
        }
        let t = tridiag(nb, n, range, 10);
        let r = reps.max(4) * 64 / n.max(64);
        let rhs = random_mat(&mut ChaCha8Rng::seed_from_u64(11), nb * n, 1);
        let (mut borrowed, mut owned, mut first, mut again) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..r {
            let start = Instant::now();
            let f = std::hint::black_box(BlockLdlt::factor(&t, &params).expect("factor"));
            borrowed.push(start.elapsed());
            let mut x = rhs.clone();
            let start = Instant::now();
            f.solve_in_place(x.as_mut()).expect("solve");
            first.push(start.elapsed());
            let mut x = rhs.clone();
            let start = Instant::now();
            f.solve_in_place(x.as_mut()).expect("solve");
            again.push(start.elapsed());
            drop(f);
            let given = t.clone(); // OWNED
            let start = Instant::now(); // OWNED
            std::hint::black_box(BlockLdlt::factor_owned(given, &params).expect("factor")); // OWNED
            owned.push(start.elapsed()); // OWNED
        }
        let (bmin, bmed) = stats(borrowed);
        let (omin, omed) = if owned.is_empty() { (f64::NAN, f64::NAN) } else { stats(owned) };
        let ((fmin, fmed), (amin, amed)) = (stats(first), stats(again));
        println!(
            "{:>10} {bmin:>10.1} {bmed:>10.1} {omin:>10.1} {omed:>10.1} {fmin:>10.1} {fmed:>10.1} {amin:>10.1} {amed:>10.1}",
            format!("{nb}x{n}")
        );
    }
}
