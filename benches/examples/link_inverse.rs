//! Does `W = E^T S^-1 E` pay when formed as `X^T B^-1 X` with `X = L^-1 P E`
//! (one unit-lower triangular solve, leading zero rows skipped) instead of
//! the full Bunch–Kaufman solve `Z = S^-1 E` the block LDL^T link does now?
//! Blocks `n`, `m = n / 2` identity columns starting at `n / 4`. Min/median
//! wall times of alternating runs, with the block's own factorization and
//! its Schur update `C W C^T` (`r = n`) for scale. Columns: `full` (today),
//! `half` (`W` only, no `Z`), `half_noskip` (the same without skipping the
//! zero rows), `full_skip` (`Z` with the skip, then `L^-T`).
//!
//! The answer (2026-12-01, see CHANGELOG): `half` saves 20-38% of the link
//! at n >= 96, but the backward sweep still needs `Z`, whose `L^-T` then
//! costs more than was saved (factor + first solve slower), and
//! `full_skip` saves 5-17% of the link only from n ~ 224 (~5% of a block's
//! factorization). Neither was landed. What was landed later does without
//! `Z`: the sweeps apply each block's solve in two halves around `B^-1`,
//! so the link keeps `L^-1 P E_cols C^T` (or `L^-1 P E_cols`) alone
//! (`crates/tridiag/src/ldlt/mod.rs`); this example still times the
//! variants above.
//!
//! `cargo run --release -p hinv-benches --example link_inverse [reps [sizes...]]`

use std::time::{Duration, Instant};

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::lblt::{factor, solve};
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::triangular_solve::solve_unit_lower_triangular_in_place;
use faer::perm::PermRef;
use faer::{Accum, Auto, ColRef, Mat, MatMut, MatRef, Par};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Factors {
    l: Mat<f64>,
    sub: Vec<f64>,
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
}

fn params() -> factor::LbltParams {
    factor::LbltParams { pivoting: factor::PivotingStrategy::Partial, ..<factor::LbltParams as Auto<f64>>::auto() }
}

fn factor_block(a: &Mat<f64>) -> Factors {
    let n = a.nrows();
    let mut l = a.clone();
    let (mut sub, mut perm, mut perm_inv) = (vec![0.0; n], vec![0usize; n], vec![0usize; n]);
    let mut mem = MemBuffer::new(factor::cholesky_in_place_scratch::<usize, f64>(n, Par::Seq, params().into()));
    factor::cholesky_in_place(
        l.as_mut(),
        faer::ColMut::from_slice_mut(&mut sub).as_diagonal_mut(),
        &mut perm,
        &mut perm_inv,
        Par::Seq,
        MemStack::new(&mut mem),
        params().into(),
    );
    Factors { l, sub, perm, perm_inv }
}

/// Today's link: `Z = S^-1 E` by a full solve; `W = Z[cols, :]`.
fn full_solve(f: &Factors, c0: usize, m: usize, mem: &mut MemBuffer) -> Mat<f64> {
    let n = f.l.nrows();
    let mut z = Mat::<f64>::zeros(n, m);
    for j in 0..m {
        z[(c0 + j, j)] = 1.0;
    }
    let perm = PermRef::new_checked(&f.perm, &f.perm_inv, n);
    solve::solve_in_place(
        f.l.as_ref(),
        f.l.diagonal(),
        ColRef::from_slice(&f.sub).as_diagonal(),
        perm,
        z.as_mut(),
        Par::Seq,
        MemStack::new(mem),
    );
    z
}

/// `y <- B^-1 x` (rows `from..`), 1x1 and 2x2 pivots as faer stores them.
fn apply_b_inv(f: &Factors, x: MatRef<'_, f64>, mut y: MatMut<'_, f64>, from: usize) {
    let n = f.l.nrows();
    let d = f.l.diagonal();
    // A 2x2 pivot straddling `from` starts one row earlier.
    let mut i = if from > 0 && f.sub[from - 1] != 0.0 { from - 1 } else { from };
    while i < n {
        if f.sub[i] == 0.0 {
            let r = 1.0 / d[i];
            for j in 0..x.ncols() {
                y[(i, j)] = x[(i, j)] * r;
            }
            i += 1;
        } else {
            let (a, b, c) = (d[i], f.sub[i], d[i + 1]);
            let det = a * c - b * b;
            for j in 0..x.ncols() {
                let (u, v) = (x[(i, j)], x[(i + 1, j)]);
                y[(i, j)] = (c * u - b * v) / det;
                y[(i + 1, j)] = (a * v - b * u) / det;
            }
            i += 2;
        }
    }
}

/// The proposal: `X = L^-1 P E` in panels of columns sorted by their first
/// non-zero row, `Y = B^-1 X`, `W = X^T Y` (lower triangle).
fn half_solve(f: &Factors, c0: usize, m: usize, panel: usize, skip: bool) -> Mat<f64> {
    let n = f.l.nrows();
    let mut order: Vec<(usize, usize)> = (0..m).map(|j| (f.perm_inv[c0 + j], j)).collect();
    order.sort_unstable();
    let mut x = Mat::<f64>::zeros(n, m);
    for (s, &(row, _)) in order.iter().enumerate() {
        x[(row, s)] = 1.0;
    }
    let l = f.l.as_ref();
    let mut start = 0;
    while start < m {
        let w = panel.min(m - start);
        let r0 = if skip { order[start].0 } else { 0 };
        let tri = l.submatrix(r0, r0, n - r0, n - r0);
        solve_unit_lower_triangular_in_place(tri, x.as_mut().submatrix_mut(r0, start, n - r0, w), Par::Seq);
        start += w;
    }
    let mut y = Mat::<f64>::zeros(n, m);
    apply_b_inv(f, x.as_ref(), y.as_mut(), 0);
    let mut ws = Mat::<f64>::zeros(m, m);
    triangular::matmul(
        ws.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        x.transpose(),
        BlockStructure::Rectangular,
        y.as_ref(),
        BlockStructure::Rectangular,
        1.0,
        Par::Seq,
    );
    // Back to the original column order (lower triangle of the sorted W).
    let mut w = Mat::<f64>::zeros(m, m);
    for (a, &(_, ja)) in order.iter().enumerate() {
        for (b, &(_, jb)) in order.iter().enumerate().take(a + 1) {
            w[(ja, jb)] = ws[(a, b)];
            w[(jb, ja)] = ws[(a, b)];
        }
    }
    w
}

/// Today's `Z = S^-1 E` with the lower solve's leading zero rows skipped:
/// `X` as in [`half_solve`], `Y = B^-1 X`, `Z = P^T L^-T Y` (columns unsorted).
fn full_skip(f: &Factors, c0: usize, m: usize, panel: usize) -> Mat<f64> {
    let n = f.l.nrows();
    let mut order: Vec<(usize, usize)> = (0..m).map(|j| (f.perm_inv[c0 + j], j)).collect();
    order.sort_unstable();
    let mut x = Mat::<f64>::zeros(n, m);
    for (s, &(row, _)) in order.iter().enumerate() {
        x[(row, s)] = 1.0;
    }
    let l = f.l.as_ref();
    let mut start = 0;
    while start < m {
        let w = panel.min(m - start);
        let r0 = order[start].0;
        let tri = l.submatrix(r0, r0, n - r0, n - r0);
        solve_unit_lower_triangular_in_place(tri, x.as_mut().submatrix_mut(r0, start, n - r0, w), Par::Seq);
        start += w;
    }
    let mut y = Mat::<f64>::zeros(n, m);
    apply_b_inv(f, x.as_ref(), y.as_mut(), 0);
    faer::linalg::triangular_solve::solve_unit_upper_triangular_in_place(l.transpose(), y.as_mut(), Par::Seq);
    let mut z = Mat::<f64>::zeros(n, m);
    for (s, &(_, j)) in order.iter().enumerate() {
        for i in 0..n {
            z[(f.perm[i], j)] = y[(i, s)];
        }
    }
    z
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    (v[0].as_secs_f64() * 1e6, v[v.len() / 2].as_secs_f64() * 1e6)
}

fn main() {
    let reps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(30);
    println!(
        "{:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  (min us; median in parentheses)",
        "n", "factor", "update", "full", "half", "half_noskip", "full_skip", "max|dW|", "max|dZ|"
    );
    let sizes: Vec<usize> = std::env::args().skip(2).filter_map(|s| s.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![32, 64, 128, 256, 512] } else { sizes };
    for n in sizes {
        let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
        let a = Mat::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0));
        let s = Mat::from_fn(n, n, |i, j| a[(i, j)] + a[(j, i)]);
        let c = Mat::from_fn(n, n / 2, |_, _| rng.random_range(-1.0..1.0));
        let (m, c0) = (n / 2, n / 4);
        let f = factor_block(&s);
        let mut mem = MemBuffer::new(solve::solve_in_place_scratch::<usize, f64>(n, m, Par::Seq));
        let z = full_solve(&f, c0, m, &mut mem);
        let w = half_solve(&f, c0, m, 32, true);
        let dw = (0..m)
            .flat_map(|j| (0..m).map(move |i| (i, j)))
            .fold(0.0f64, |d, (i, j)| d.max((w[(i, j)] - z[(c0 + i, j)]).abs() / z.norm_max()));
        let z2 = full_skip(&f, c0, m, 32);
        let dz = (&z2 - &z).norm_max() / z.norm_max();
        let (mut tf, mut tu, mut t_full, mut t_half, mut t_noskip, mut t_fs) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let r = (reps * 256 / n).max(5);
        let mut upd = Mat::<f64>::zeros(n, n);
        let mut cw = Mat::<f64>::zeros(n, m);
        for _ in 0..r {
            let t = Instant::now();
            std::hint::black_box(factor_block(&s));
            tf.push(t.elapsed());
            let t = Instant::now();
            matmul(cw.as_mut(), Accum::Replace, c.as_ref(), w.as_ref(), 1.0, Par::Seq);
            triangular::matmul(
                upd.as_mut(),
                BlockStructure::TriangularLower,
                Accum::Replace,
                cw.as_ref(),
                BlockStructure::Rectangular,
                c.transpose(),
                BlockStructure::Rectangular,
                -1.0,
                Par::Seq,
            );
            tu.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(full_solve(&f, c0, m, &mut mem));
            t_full.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(half_solve(&f, c0, m, 32, true));
            t_half.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(half_solve(&f, c0, m, m, false));
            t_noskip.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(full_skip(&f, c0, m, 32));
            t_fs.push(t.elapsed());
        }
        let (f0, _) = stats(tf);
        let (u0, _) = stats(tu);
        let (a0, a1) = stats(t_full);
        let (b0, b1) = stats(t_half);
        let (c0_, _) = stats(t_noskip);
        let (d0, d1) = stats(t_fs);
        println!(
            "{n:>5} {f0:>10.1} {u0:>10.1} {a0:>7.1}({a1:.0}) {b0:>7.1}({b1:.0}) {c0_:>10.1} {d0:>7.1}({d1:.0}) {dw:>10.1e} {dz:>10.1e}"
        );
    }
}
