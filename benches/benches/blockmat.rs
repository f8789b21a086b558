//! Block-diagonal times a block of right-hand sides, structured against the
//! dense product of the same matrix, in one criterion group per size.

use std::hint::black_box;
use std::time::Duration;

use blockmat::Block;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rand_mat(rng: &mut ChaCha8Rng, r: usize, c: usize) -> Mat<f64> {
    Mat::from_fn(r, c, |_, _| rng.random_range(-1.0..1.0))
}

fn block_diag_times_rhs(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut group = c.benchmark_group("block_diag_mul");
    group.sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    // (number of blocks, block size, right-hand sides)
    for (nb, bs, k) in [(64, 16, 1), (64, 16, 16), (16, 64, 16), (128, 8, 16)] {
        let a = Block::block_diag((0..nb).map(|_| Block::dense(rand_mat(&mut rng, bs, bs))).collect());
        let dense = a.to_dense();
        let n = nb * bs;
        let x = rand_mat(&mut rng, n, k);
        let mut out = Mat::zeros(n, k);
        let label = format!("{nb}x{bs}x{bs}_rhs{k}");
        group.bench_function(BenchmarkId::new("structured", &label), |b| {
            b.iter(|| {
                out.fill(0.0);
                a.mul_add_to(out.as_mut(), black_box(x.as_ref()), 1.0).unwrap();
            })
        });
        group.bench_function(BenchmarkId::new("dense", &label), |b| {
            b.iter(|| matmul(out.as_mut(), Accum::Replace, dense.as_ref(), black_box(x.as_ref()), 1.0, Par::Seq))
        });
    }
    group.finish();
}

criterion_group!(benches, block_diag_times_rhs);
criterion_main!(benches);
