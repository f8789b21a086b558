//! The floor under one block of the chain at large batches: the three
//! dense kernels a block of size `n` with a coupling of `r` rows costs
//! however its overheads are trimmed (faer's Bunch–Kaufman of the block,
//! the triangular solve `L^-1 P E C^T` on `r` columns, the lower triangle
//! of the update `V^T B^-1 V`), each timed hot (best of many runs), with a
//! GEMM of the update's shape and faer's `L D L^T` without pivoting (what
//! fixed pivots could reach) for reference. hinv's reduced system at
//! batch `B` and width `h` has blocks of `n = 2 B h` and couplings of
//! `r = B h` (L16 h8 B16: 256 and 128).
//!
//! ```sh
//! cargo run --release -p tridiag --example link_kernels -- 256 128
//! ```

use std::time::Instant;

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::lblt::factor;
use faer::linalg::cholesky::ldlt::factor as ldlt;
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::triangular_solve::solve_unit_lower_triangular_in_place;
use faer::{Accum, Auto, Mat, Par};
use rand::{Rng, SeedableRng};

/// Best time of `f` over 50 runs.
fn best(mut f: impl FnMut()) -> f64 {
    let mut b = f64::INFINITY;
    for _ in 0..50 {
        let t = Instant::now();
        f();
        b = b.min(t.elapsed().as_secs_f64());
    }
    b
}

/// faer's Bunch–Kaufman as tridiag calls it, with its buffers.
struct BunchKaufman {
    params: factor::LbltParams,
    mem: MemBuffer,
    sub: Vec<f64>,
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
}

impl BunchKaufman {
    /// Best time of factoring a copy of `m` into `f` (left holding the factors).
    fn best(&mut self, m: &Mat<f64>, f: &mut Mat<f64>) -> f64 {
        best(|| {
            f.copy_from(m);
            self.sub.fill(0.0);
            factor::cholesky_in_place(
                f.as_mut(),
                faer::ColMut::from_slice_mut(&mut self.sub).as_diagonal_mut(),
                &mut self.perm,
                &mut self.perm_inv,
                Par::Seq,
                MemStack::new(&mut self.mem),
                self.params.into(),
            );
        })
    }
}

fn main() {
    let args: Result<Vec<usize>, _> = std::env::args().skip(1).map(|s| s.parse()).collect();
    let Ok(args) = args else {
        eprintln!("usage: link_kernels [n] [r] (block size and coupling rows; 256 128 by default)");
        std::process::exit(2);
    };
    let (n, r) = (args.first().copied().unwrap_or(256), args.get(1).copied().unwrap_or(128));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(n as u64);
    let g = Mat::<f64>::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0));
    let s = Mat::from_fn(n, n, |i, j| g[(i, j)] + g[(j, i)]);
    // As tridiag calls it (dense_lblt.rs): classic partial pivoting, panels of 24.
    let params = factor::LbltParams {
        pivoting: factor::PivotingStrategy::Partial,
        block_size: if n > 64 && n < 1024 { 24 } else { <factor::LbltParams as Auto<f64>>::auto().block_size },
        ..<factor::LbltParams as Auto<f64>>::auto()
    };
    let mem = MemBuffer::new(factor::cholesky_in_place_scratch::<usize, f64>(n, Par::Seq, params.into()));
    let mut bunch_kaufman = BunchKaufman { params, mem, sub: vec![0.0; n], perm: vec![0; n], perm_inv: vec![0; n] };
    let mut f = s.clone();
    let bk = bunch_kaufman.best(&s, &mut f);
    let c = Mat::<f64>::from_fn(n, r, |_, _| rng.random_range(-1.0..1.0));
    let mut v = c.clone();
    let copy = best(|| v.copy_from(&c));
    // The solve overwrites its right-hand side, so each run copies it in
    // first; the best copy alone is taken off (a difference of two minima:
    // a few microseconds either way).
    let trsm = best(|| {
        v.copy_from(&c);
        solve_unit_lower_triangular_in_place(f.as_ref(), v.as_mut(), Par::Seq);
    }) - copy;
    let mut u = Mat::<f64>::zeros(r, r);
    let lower = best(|| {
        let structure = BlockStructure::TriangularLower;
        let rect = BlockStructure::Rectangular;
        triangular::matmul(
            u.as_mut(),
            structure,
            Accum::Replace,
            v.transpose(),
            rect,
            c.as_ref(),
            rect,
            -1.0,
            Par::Seq,
        );
    });
    let gemm = best(|| matmul(u.as_mut(), Accum::Replace, v.transpose(), c.as_ref(), -1.0, Par::Seq));
    // What a factorization with fixed pivots could reach: faer's L D L^T
    // without pivoting on a quasi-definite block of the shape that rotating
    // each pair `(z_i, y_i)` of `[[Z, -I], [-I, Y]]` by 45 degrees gives,
    // `[[-I + small, small], [small, I + small]]` (here random entries
    // within +-0.02, whose halves' norms stay near 2 sigma sqrt(n / 2), 0.26
    // at n = 256 and 0.37 at 512, below the shifts' 1: the signs of `D`
    // are checked below), against Bunch–Kaufman of the same block.
    let h = n / 2;
    let zy = Mat::<f64>::from_fn(n, n, |_, _| rng.random_range(-0.01..0.01));
    let sym = |i: usize, j: usize| zy[(i, j)] + zy[(j, i)];
    let q = Mat::<f64>::from_fn(n, n, |i, j| match (i < h, j < h) {
        (true, true) => sym(i, j) - if i == j { 1.0 } else { 0.0 },
        (false, false) => sym(i, j) + if i == j { 1.0 } else { 0.0 },
        _ => sym(i, j),
    });
    let ldlt_params = <ldlt::LdltParams as Auto<f64>>::auto();
    let mut ldlt_mem = MemBuffer::new(ldlt::cholesky_in_place_scratch::<f64>(n, Par::Seq, ldlt_params.into()));
    let mut g2 = q.clone();
    let unpivoted = best(|| {
        g2.copy_from(&q);
        ldlt::cholesky_in_place(
            g2.as_mut(),
            Default::default(),
            Par::Seq,
            MemStack::new(&mut ldlt_mem),
            ldlt_params.into(),
        )
        .expect("a quasi-definite block has non-zero pivots");
    });
    let signs_ok = (0..n).all(|i| (g2[(i, i)] < 0.0) == (i < h));
    assert!(signs_ok, "the block is not quasi-definite: D's signs do not split at n / 2");
    let bk_same = bunch_kaufman.best(&q, &mut f);
    let (nf, rf) = (n as f64, r as f64);
    let rate = |flops: f64, t: f64| flops / t / 1e9;
    println!("n = {n}, r = {r}, best of 50, one thread:");
    println!("  Bunch-Kaufman of the block     {:8.1} us  {:5.1} GFLOP/s", bk * 1e6, rate(nf.powi(3) / 3.0, bk));
    println!("  triangular solve, {r} columns   {:8.1} us  {:5.1} GFLOP/s", trsm * 1e6, rate(nf * nf * rf, trsm));
    println!("  lower triangle of the update   {:8.1} us  {:5.1} GFLOP/s", lower * 1e6, rate(rf * rf * nf, lower));
    println!("  (GEMM of the update's shape    {:8.1} us  {:5.1} GFLOP/s)", gemm * 1e6, rate(2.0 * rf * rf * nf, gemm));
    println!("  one block's floor              {:8.1} us", (bk + trsm + lower) * 1e6);
    println!("  a quasi-definite block of the same size:");
    println!(
        "    Bunch-Kaufman                {:8.1} us  {:5.1} GFLOP/s",
        bk_same * 1e6,
        rate(nf.powi(3) / 3.0, bk_same)
    );
    println!(
        "    L D L^T without pivoting     {:8.1} us  {:5.1} GFLOP/s",
        unpivoted * 1e6,
        rate(nf.powi(3) / 3.0, unpivoted)
    );
}
