//! Benchmarks of the `tridiag` block LDL^T: time against block count
//! (linear) and block size (cubic), the column-range saving of the Schur
//! update, factor throughput against faer's GEMM and Bunch–Kaufman measured in
//! the same run, many right-hand sides, and many small blocks (the shape of
//! hinv's reduced system) against plain Bunch–Kaufman.
//!
//! Throughputs are reported as "elements" = floating-point operations, so
//! criterion's `Gelem/s` reads as GFLOP/s (block LDL^T counted as
//! `sum n_k^3 / 3`, GEMM as `2 n^3`, Bunch–Kaufman as `n^3 / 3`).

use std::hint::black_box;
use std::time::Duration;

use blockmat::{Block, Tridiag};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::lblt::factor;
use faer::linalg::matmul::matmul;
use faer::{Accum, Auto, Mat, Par};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tridiag::{BlockLdlt, FactorParams, ParPolicy, PivotedLu, Strategy};

fn random_mat(rng: &mut ChaCha8Rng, r: usize, c: usize) -> Mat<f64> {
    Mat::from_fn(r, c, |_, _| rng.random_range(-1.0..1.0))
}

fn random_sym(rng: &mut ChaCha8Rng, n: usize) -> Mat<f64> {
    let a = random_mat(rng, n, n);
    Mat::from_fn(n, n, |i, j| a[(i, j)] + a[(j, i)])
}

/// `nb` indefinite blocks of size `n`; sub-diagonal blocks non-zero only in
/// the `range` columns starting at `n / 4` (all columns when `range == n`).
fn tridiag(nb: usize, n: usize, range: usize, seed: u64) -> Tridiag {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = if range == n { 0 } else { n / 4 };
    let diag = (0..nb).map(|_| Block::dense(random_sym(&mut rng, n))).collect();
    let sub = (1..nb)
        .map(|_| {
            if range == 0 {
                return Block::zeros(n, n);
            }
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

fn seq() -> FactorParams {
    FactorParams { par: ParPolicy::Seq, ..Default::default() }
}

fn quick<'a>(c: &'a mut Criterion, name: &str) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_millis(1200));
    g
}

/// Linear in the block count: time per block should stay flat.
fn block_count(c: &mut Criterion) {
    let mut g = quick(c, "tridiag/factor_vs_blocks");
    let n = 128;
    for nb in [4usize, 8, 16, 32] {
        let t = tridiag(nb, n, n / 4, 1);
        g.throughput(Throughput::Elements((nb * n * n * n / 3) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(nb), &t, |b, t| {
            b.iter(|| BlockLdlt::factor(black_box(t), &seq()).expect("factor"))
        });
    }
    g.finish();
}

/// Cubic in the block size (coupling a quarter of the columns).
fn block_size(c: &mut Criterion) {
    let mut g = quick(c, "tridiag/factor_vs_block_size");
    for n in [64usize, 128, 256, 512] {
        let t = tridiag(4, n, n / 4, 2);
        g.throughput(Throughput::Elements((4 * n * n * n / 3) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &t, |b, t| {
            b.iter(|| BlockLdlt::factor(black_box(t), &seq()).expect("factor"))
        });
        g.bench_with_input(BenchmarkId::new("owned", n), &t, |b, t| {
            b.iter_batched(
                || t.clone(),
                |t| BlockLdlt::factor_owned(t, &seq()).expect("factor"),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// The Schur update costs `O(n^2 |r|)`: with `range = 0` (decoupled blocks)
/// as the baseline, the difference is the update's cost.
fn update_range(c: &mut Criterion) {
    let mut g = quick(c, "tridiag/factor_vs_coupling_range");
    let n = 384;
    for range in [0usize, 16, 64, 192, 384] {
        let t = tridiag(4, n, range, 3);
        g.bench_with_input(BenchmarkId::from_parameter(range), &t, |b, t| {
            b.iter(|| BlockLdlt::factor(black_box(t), &seq()).expect("factor"))
        });
    }
    g.finish();
}

/// Block LDL^T against its two building blocks at the same size, same run.
fn throughput(c: &mut Criterion) {
    let mut g = quick(c, "tridiag/gflops");
    for n in [128usize, 256, 512] {
        let nb = 4;
        let t = tridiag(nb, n, n / 4, 4);
        g.throughput(Throughput::Elements((nb * n * n * n / 3) as u64));
        g.bench_with_input(BenchmarkId::new("block_ldlt", n), &t, |b, t| {
            b.iter(|| BlockLdlt::factor(black_box(t), &seq()).expect("factor"))
        });

        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (a, bm) = (random_mat(&mut rng, n, n), random_mat(&mut rng, n, n));
        let mut out = Mat::<f64>::zeros(n, n);
        g.throughput(Throughput::Elements((2 * n * n * n) as u64));
        g.bench_function(BenchmarkId::new("faer_gemm", n), |b| {
            b.iter(|| matmul(out.as_mut(), Accum::Replace, a.as_ref(), bm.as_ref(), 1.0, Par::Seq))
        });

        let s = random_sym(&mut rng, n);
        let params: factor::LbltParams = factor::LbltParams {
            pivoting: factor::PivotingStrategy::Partial,
            ..<factor::LbltParams as Auto<f64>>::auto()
        };
        let mut mem = MemBuffer::new(factor::cholesky_in_place_scratch::<usize, f64>(n, Par::Seq, params.into()));
        let (mut sub, mut perm, mut pinv) = (vec![0.0; n], vec![0usize; n], vec![0usize; n]);
        g.throughput(Throughput::Elements((n * n * n / 3) as u64));
        g.bench_function(BenchmarkId::new("faer_bunch_kaufman", n), |b| {
            b.iter_batched_ref(
                || s.clone(),
                |m| {
                    sub.fill(0.0);
                    factor::cholesky_in_place(
                        m.as_mut(),
                        faer::ColMut::from_slice_mut(&mut sub).as_diagonal_mut(),
                        &mut perm,
                        &mut pinv,
                        Par::Seq,
                        MemStack::new(&mut mem),
                        params.into(),
                    );
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// Many right-hand sides: sequential columns against rayon column splitting.
fn many_rhs(c: &mut Criterion) {
    let mut g = quick(c, "tridiag/solve");
    let (nb, n) = (16, 128);
    let t = tridiag(nb, n, n / 4, 6);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (label, par) in [("seq", ParPolicy::Seq), ("auto", ParPolicy::Auto)] {
        let f = BlockLdlt::factor(&t, &FactorParams { par, ..Default::default() }).expect("factor");
        for k in [1usize, 64] {
            let rhs = random_mat(&mut rng, nb * n, k);
            g.throughput(Throughput::Elements(k as u64));
            g.bench_with_input(BenchmarkId::new(label, k), &rhs, |b, rhs| {
                b.iter_batched_ref(
                    || rhs.clone(),
                    |x| f.solve_in_place(x.as_mut()).expect("solve"),
                    criterion::BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

/// Sequential elimination against the two-sided one (its two chains on two
/// rayon threads), factor and a 16-column solve.
fn two_sided(c: &mut Criterion) {
    let mut g = quick(c, "tridiag/two_sided");
    for (nb, n) in [(16usize, 32usize), (16, 128), (8, 384)] {
        let t = tridiag(nb, n, n / 4, 8);
        let rhs = random_mat(&mut ChaCha8Rng::seed_from_u64(9), nb * n, 16);
        let variants = [
            ("sequential", FactorParams { par: ParPolicy::Seq, ..Default::default() }),
            ("two_sided_seq", FactorParams { par: ParPolicy::Seq, strategy: Strategy::TwoSided, ..Default::default() }),
            (
                "two_sided_par",
                // `Rayon(2)`: `Auto` would keep the 16 x 32 system on one thread.
                FactorParams { par: ParPolicy::Rayon(2), strategy: Strategy::TwoSided, ..Default::default() },
            ),
        ];
        for (label, params) in variants {
            let id = format!("{nb}x{n}");
            g.bench_with_input(BenchmarkId::new(format!("factor/{label}"), &id), &t, |b, t| {
                b.iter(|| BlockLdlt::factor(black_box(t), &params).expect("factor"))
            });
            let f = BlockLdlt::factor(&t, &params).expect("factor");
            g.bench_with_input(BenchmarkId::new(format!("solve16/{label}"), &id), &rhs, |b, rhs| {
                b.iter_batched_ref(
                    || rhs.clone(),
                    |x| f.solve_in_place(x.as_mut()).expect("solve"),
                    criterion::BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

/// Many small blocks, the shape of hinv's reduced system (`n = 2a`, a
/// coupling `a` wide): per-block overhead, allocation included, shows here,
/// not in the large-block groups. Block LDL^T and the pivoted LU (factor,
/// one-column solve) against the sum of plain faer Bunch–Kaufman
/// factorizations of the same blocks, in the same run.
fn small_blocks(c: &mut Criterion) {
    let mut g = quick(c, "tridiag/small_blocks");
    for (nb, n) in [(256usize, 16usize), (64, 20), (16, 64)] {
        let id = format!("{nb}x{n}");
        let t = tridiag(nb, n, n / 2, 10);
        g.bench_with_input(BenchmarkId::new("block_ldlt", &id), &t, |b, t| {
            b.iter(|| BlockLdlt::factor(black_box(t), &seq()).expect("factor"))
        });
        // The same factorization of a matrix given away (its diagonal blocks
        // factored in place); the clone is set-up, not timed.
        g.bench_with_input(BenchmarkId::new("block_ldlt_owned", &id), &t, |b, t| {
            b.iter_batched(
                || t.clone(),
                |t| BlockLdlt::factor_owned(t, &seq()).expect("factor"),
                criterion::BatchSize::LargeInput,
            )
        });
        let f = BlockLdlt::factor(&t, &seq()).expect("factor");
        let rhs = random_mat(&mut ChaCha8Rng::seed_from_u64(11), nb * n, 1);
        g.bench_with_input(BenchmarkId::new("block_ldlt_solve", &id), &rhs, |b, rhs| {
            b.iter_batched_ref(
                || rhs.clone(),
                |x| f.solve_in_place(x.as_mut()).expect("solve"),
                criterion::BatchSize::SmallInput,
            )
        });
        g.bench_with_input(BenchmarkId::new("pivoted_lu", &id), &t, |b, t| {
            b.iter(|| PivotedLu::factor(black_box(t), ParPolicy::Seq, 1e-12).expect("factor"))
        });
        let lu = PivotedLu::factor(&t, ParPolicy::Seq, 1e-12).expect("factor");
        g.bench_with_input(BenchmarkId::new("pivoted_lu_solve", &id), &rhs, |b, rhs| {
            b.iter_batched_ref(
                || rhs.clone(),
                |x| lu.solve_in_place(x.as_mut()).expect("solve"),
                criterion::BatchSize::SmallInput,
            )
        });
        // The baseline: the same number of blocks of the same size, each
        // factored by faer alone into preallocated buffers.
        let blocks: Vec<Mat<f64>> = (0..nb).map(|k| random_sym(&mut ChaCha8Rng::seed_from_u64(k as u64), n)).collect();
        let params: factor::LbltParams = factor::LbltParams {
            pivoting: factor::PivotingStrategy::Partial,
            ..<factor::LbltParams as Auto<f64>>::auto()
        };
        let mut mem = MemBuffer::new(factor::cholesky_in_place_scratch::<usize, f64>(n, Par::Seq, params.into()));
        let (mut sub, mut perm, mut pinv) = (vec![0.0; n], vec![0usize; n], vec![0usize; n]);
        g.bench_function(BenchmarkId::new("faer_bunch_kaufman_sum", &id), |b| {
            b.iter_batched_ref(
                || blocks.clone(),
                |ms| {
                    for m in ms.iter_mut() {
                        sub.fill(0.0);
                        factor::cholesky_in_place(
                            m.as_mut(),
                            faer::ColMut::from_slice_mut(&mut sub).as_diagonal_mut(),
                            &mut perm,
                            &mut pinv,
                            Par::Seq,
                            MemStack::new(&mut mem),
                            params.into(),
                        );
                    }
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, block_count, block_size, update_range, throughput, many_rhs, two_sided, small_blocks);
criterion_main!(benches);
