//! Bunch–Kaufman for small blocks, written out: a parameter group of a
//! narrow layer is 4–16 unknowns, where faer's kernel spends its time in
//! dispatch rather than arithmetic. Under callgrind, `one_solve 256 8 2`
//! spent 17.0M instructions factoring and scanning its 2049 unit blocks
//! of 8 (8.3k each, for an elimination of under 200 multiply-adds), and
//! 11.6M with this kernel. The factors are stored exactly as faer stores
//! its own (`P^T L B L^T P`: `L` strictly below the
//! diagonal, `B`'s diagonal on it, its sub-diagonal apart with a non-zero
//! entry marking each `2 x 2` pivot, the permutation and its inverse), so
//! every reader of [`crate::dense_lblt`]'s factors reads these too.
//!
//! The pivoting is faer's partial (Bunch–Kaufman) pivoting, with
//! `alpha = (1 + sqrt 17) / 8`, and every entry is rounded as faer's
//! kernel rounds it (its scaled 2x2 inverse, its fused multiply-adds), so
//! where faer runs its AVX2 kernels (pulp's V3 level, which has FMA) the
//! factors equal faer's to the bit: the kernel changes the cost, not one
//! number of the results.

use faer::reborrow::*;
use faer::{MatMut, MatRef};

/// Largest block factored here instead of by faer. Per block of
/// `BlockDiagLdlt::factor_packed` (the pivot scan and checks included),
/// best of five alternating runs of this kernel's build and faer's: 0.33
/// against 0.54 us at n = 4, 0.67 against 1.31 at 8, 1.92 against 2.86 at
/// 16, 6.39 against 10.10 at 32; at 48, where both builds run faer's,
/// 17.0 and 20.2, this machine's noise (`cargo run --release -p tridiag
/// --example unit_blocks`). Solves stay with faer's kernel, faster than a
/// written-out one on the many right-hand sides the callers solve at once.
pub(crate) const SMALL_MAX: usize = 32;

/// Bunch–Kaufman's pivot threshold, `(1 + sqrt 17) / 8`.
const ALPHA: f64 = 0.640_388_203_202_207_6;

/// Column `j` of a column-major block, as a slice.
fn col<'a>(a: &'a mut MatMut<'_, f64>, j: usize) -> &'a mut [f64] {
    a.rb_mut().col_mut(j).try_as_col_major_mut().expect("a column-major block").as_slice_mut()
}

/// Factors the symmetric `a` (lower triangle read; column-major, which
/// every block of this crate is) in place. `subdiag` (`n` entries, zeroed
/// by the caller) receives `B`'s sub-diagonal, `perm` and `perm_inv` (`n`
/// each) the permutation: row `i` of `P x` is row `perm[i]` of `x`. `n` is
/// at most [`SMALL_MAX`].
pub(crate) fn factor(a: MatMut<'_, f64>, subdiag: &mut [f64], perm: &mut [usize], perm_inv: &mut [usize]) {
    pulp::Arch::new().dispatch(Kernel { a, subdiag, perm, perm_inv });
}

/// [`factor`], compiled under the best instruction set the machine has
/// (AVX2 here), as faer's kernels are. Built for the baseline (SSE2), a
/// first version of this kernel made the factorization of `phase_times
/// 256 8 2` 1.5x slower (21.1–21.9 against 13.7–14.7 ms in three
/// alternating pairs), though alone it ran faster than faer's, and under
/// `perf record` the pivot scan after it took 9x its share of the samples:
/// most likely the penalty baseline code pays while the upper halves of
/// the vector registers are dirty (this machine has no hardware counters
/// to confirm it). Dispatched, the factorization is faster than with
/// faer's kernel (docs/benchmarks.md, "Small-block kernels").
struct Kernel<'a, 'b> {
    a: MatMut<'a, f64>,
    subdiag: &'b mut [f64],
    perm: &'b mut [usize],
    perm_inv: &'b mut [usize],
}

impl pulp::WithSimd for Kernel<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Kernel { a, subdiag, perm, perm_inv } = self;
        // Buffers sized for the block, as in `inverse`.
        match a.nrows() {
            0..=8 => factor_sized::<8>(a, subdiag, perm, perm_inv),
            9..=16 => factor_sized::<16>(a, subdiag, perm, perm_inv),
            _ => factor_sized::<SMALL_MAX>(a, subdiag, perm, perm_inv),
        }
    }
}

#[inline(always)]
fn factor_sized<const N: usize>(
    mut a: MatMut<'_, f64>,
    subdiag: &mut [f64],
    perm: &mut [usize],
    perm_inv: &mut [usize],
) {
    let n = a.nrows();
    debug_assert!(n <= N && a.ncols() == n && subdiag.len() == n && perm.len() == n);
    perm.iter_mut().enumerate().for_each(|(i, p)| *p = i);
    // The pivot columns before the update, and their multipliers.
    let (mut c0, mut c1) = ([0.0f64; N], [0.0f64; N]);
    let (mut l0, mut l1) = ([0.0f64; N], [0.0f64; N]);
    let mut k = 0;
    while k < n {
        let ck = &col(&mut a, k)[k..];
        let (imax, colmax) =
            ck.iter().enumerate().skip(1).fold((k, 0.0), |m, (i, v)| if v.abs() > m.1 { (k + i, v.abs()) } else { m });
        let absakk = ck[0].abs();
        // A zero column (or the last one) needs neither a swap nor an update.
        if colmax == 0.0 {
            k += 1;
            continue;
        }
        let (two, kp) = if absakk >= ALPHA * colmax {
            (false, k)
        } else {
            // Row `imax` of the trailing matrix, its diagonal left out.
            let left = (k..imax).map(|j| a[(imax, j)].abs()).fold(0.0, f64::max);
            let rowmax = col(&mut a, imax)[imax + 1..].iter().map(|v| v.abs()).fold(left, f64::max);
            // faer's test for keeping the diagonal pivot, `|a_kk| >=
            // alpha rowmax^2 / colmax`: stricter than LAPACK's `alpha
            // colmax^2 / rowmax` (rowmax >= colmax), and as stable, since
            // what it rejects goes to the other two standard choices.
            if absakk >= (ALPHA * rowmax) * (rowmax / colmax) {
                (false, k)
            } else if a[(imax, imax)].abs() >= ALPHA * rowmax {
                (false, imax)
            } else {
                (true, imax)
            }
        };
        let target = if two { k + 1 } else { k };
        if kp != target {
            swap_symmetric(a.rb_mut(), target, kp);
            perm.swap(target, kp);
        }
        if two {
            let (p, b, q) = (a[(k, k)], a[(k + 1, k)], a[(k + 1, k + 1)]);
            // E^-1 = t / |b| [[q', -s], [-s, p']] with p' = p / |b|,
            // q' = q / |b|, s = b / |b|: scaled so that |b|^2 never forms,
            // and rounded as faer's kernel rounds it (so that both agree
            // to the last bit where they pivot alike).
            let binv = b.abs().recip();
            let (pp, qq, s) = (p * binv, q * binv, b * binv);
            let d = (pp * qq - 1.0).recip() * binv;
            c0[k + 2..n].copy_from_slice(&col(&mut a, k)[k + 2..]);
            c1[k + 2..n].copy_from_slice(&col(&mut a, k + 1)[k + 2..]);
            for i in k + 2..n {
                l0[i] = (c0[i] * qq - c1[i] * s) * d;
                l1[i] = (c1[i] * pp - c0[i] * s) * d;
            }
            for j in k + 2..n {
                let (w0, w1) = (-l0[j], -l1[j]);
                let cj = &mut col(&mut a, j)[j..];
                for ((x, u), v) in cj.iter_mut().zip(&c0[j..n]).zip(&c1[j..n]) {
                    *x = v.mul_add(w1, u.mul_add(w0, *x));
                }
            }
            col(&mut a, k)[k + 2..].copy_from_slice(&l0[k + 2..n]);
            col(&mut a, k + 1)[k + 2..].copy_from_slice(&l1[k + 2..n]);
            subdiag[k] = b;
            a[(k + 1, k)] = 0.0;
            k += 2;
        } else {
            let inv = a[(k, k)].recip();
            c0[k + 1..n].copy_from_slice(&col(&mut a, k)[k + 1..]);
            for i in k + 1..n {
                l0[i] = c0[i] * inv;
            }
            for j in k + 1..n {
                // A fused multiply-add with the multiplier of column j, as
                // faer's kernel rounds it.
                let w = -l0[j];
                let cj = &mut col(&mut a, j)[j..];
                for (x, u) in cj.iter_mut().zip(&c0[j..n]) {
                    *x = u.mul_add(w, *x);
                }
            }
            col(&mut a, k)[k + 1..].copy_from_slice(&l0[k + 1..n]);
            k += 1;
        }
    }
    for (i, &p) in perm.iter().enumerate() {
        perm_inv[p] = i;
    }
}

/// Swaps unknowns `p < q` of the lower triangle in place: rows and columns
/// of the trailing matrix, and the rows of the multipliers left of them.
fn swap_symmetric(mut a: MatMut<'_, f64>, p: usize, q: usize) {
    let n = a.nrows();
    for j in 0..p {
        col(&mut a, j).swap(p, q);
    }
    let t = a[(p, p)];
    a[(p, p)] = a[(q, q)];
    a[(q, q)] = t;
    for i in p + 1..q {
        let t = a[(i, p)];
        a[(i, p)] = a[(q, i)];
        a[(q, i)] = t;
    }
    for i in q + 1..n {
        let t = a[(i, p)];
        a[(i, p)] = a[(i, q)];
        a[(i, q)] = t;
    }
}

/// `out <- S^-1` (`n x n`, `n` at most [`SMALL_MAX`]) from the factors
/// [`factor`] (or faer) wrote, as `P^T X^T B^-1 X P` with `X = L^-1`:
/// about `n^3 / 2` multiply-adds, against `2 n^3` for solving with the
/// identity, and in one pass instead of `n` columns of faer's calls.
pub(crate) fn inverse(factors: MatRef<'_, f64>, subdiag: &[f64], perms: &[usize], out: MatMut<'_, f64>) {
    pulp::Arch::new().dispatch(Inverse { factors, subdiag, perms, out });
}

struct Inverse<'a, 'b> {
    factors: MatRef<'a, f64>,
    subdiag: &'b [f64],
    perms: &'b [usize],
    out: MatMut<'a, f64>,
}

impl pulp::WithSimd for Inverse<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Inverse { factors, subdiag, perms, out } = self;
        // Buffers sized for the block (up to a power of two), not for
        // SMALL_MAX: zeroing 16 KB per 8x8 inverse cost more than it.
        match factors.nrows() {
            0..=4 => inverse_sized::<4>(factors, subdiag, perms, out),
            5..=8 => inverse_sized::<8>(factors, subdiag, perms, out),
            9..=16 => inverse_sized::<16>(factors, subdiag, perms, out),
            _ => inverse_sized::<SMALL_MAX>(factors, subdiag, perms, out),
        }
    }
}

#[inline(always)]
fn inverse_sized<const N: usize>(factors: MatRef<'_, f64>, subdiag: &[f64], perms: &[usize], mut out: MatMut<'_, f64>) {
    let n = factors.nrows();
    debug_assert!(n <= N && perms.len() == 2 * n && out.nrows() == n && out.ncols() == n);
    let f = factors.try_as_col_major().expect("a column-major block");
    // Column j of X = L^-1 (zero above row j), and of Y = B^-1 X.
    let mut x = [[0.0f64; N]; N];
    let mut y = [[0.0f64; N]; N];
    for (j, xj) in x.iter_mut().enumerate().take(n) {
        let xj = &mut xj[..n];
        xj[j] = 1.0;
        for c in j..n {
            let (head, tail) = xj.split_at_mut(c + 1);
            let v = head[c];
            tail.iter_mut().zip(&f.col(c).as_slice()[c + 1..]).for_each(|(t, l)| *t -= l * v);
        }
    }
    let d = factors.diagonal().column_vector();
    let mut i = 0;
    while i < n {
        if subdiag[i] == 0.0 || i + 1 == n {
            let inv = d[i].recip();
            for j in 0..n {
                y[j][i] = x[j][i] * inv;
            }
            i += 1;
        } else {
            // As faer inverts a 2x2 pivot: scaled by its off-diagonal.
            let e_inv = subdiag[i].recip();
            let (p, q) = (e_inv * d[i], e_inv * d[i + 1]);
            let denom = (p * q - 1.0).recip();
            for j in 0..n {
                let (u, v) = (x[j][i] * e_inv, x[j][i + 1] * e_inv);
                y[j][i] = (q * u - v) * denom;
                y[j][i + 1] = (p * v - u) * denom;
            }
            i += 2;
        }
    }
    // (X^T Y)[a, b] for a >= b, the other half by symmetry, each written
    // to its permuted place. X's column a vanishes above row a.
    let perm = &perms[..n];
    for b in 0..n {
        for a in b..n {
            let v: f64 = x[a][a..n].iter().zip(&y[b][a..n]).map(|(u, w)| u * w).sum();
            out[(perm[a], perm[b])] = v;
            out[(perm[b], perm[a])] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense_lblt::{solve_in_place, DenseLblt};
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::prelude::Solve;
    use faer::{Mat, Par};
    use rand::{Rng, SeedableRng};

    /// `P^T L B L^T P` from the factors.
    fn reconstruct(f: faer::MatRef<'_, f64>, subdiag: &[f64], perm: &[usize]) -> Mat<f64> {
        let n = f.nrows();
        let l = Mat::from_fn(n, n, |i, j| {
            if i == j {
                1.0
            } else if i > j {
                f[(i, j)]
            } else {
                0.0
            }
        });
        let b = Mat::from_fn(n, n, |i, j| match i.abs_diff(j) {
            0 => f[(i, i)],
            1 => subdiag[i.min(j)],
            _ => 0.0,
        });
        let s = &l * &b * l.transpose();
        let mut out = Mat::zeros(n, n);
        for i in 0..n {
            for j in 0..n {
                out[(perm[i], perm[j])] = s[(i, j)];
            }
        }
        out
    }

    fn random_sym(n: usize, seed: u64, zero_diagonal: bool) -> Mat<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let a = Mat::<f64>::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0));
        Mat::from_fn(n, n, |i, j| if zero_diagonal && i == j { 0.0 } else { a[(i, j)] + a[(j, i)] })
    }

    /// The factors reproduce the matrix, faer's solve with them agrees with
    /// its LU,
    /// and the pivots of `B` carry the matrix's inertia (Sylvester), on
    /// random, zero-diagonal (all 2x2 pivots), singular and tiny blocks.
    #[test]
    fn factors_reproduce_solve_and_keep_the_inertia() {
        let mut two_by_two = 0;
        for n in 0..=SMALL_MAX {
            for (seed, zero_diagonal) in [(1, false), (2, true), (3, false)] {
                let mut s = random_sym(n, seed + 10 * n as u64, zero_diagonal);
                if seed == 3 && n > 2 {
                    // Rank deficient: two equal rows and columns.
                    for j in 0..n {
                        s[(1, j)] = s[(0, j)];
                    }
                    for i in 0..n {
                        s[(i, 1)] = s[(i, 0)];
                    }
                    s[(1, 1)] = s[(0, 0)];
                }
                let mut f = s.clone();
                let (mut sub, mut perm, mut inv) = (vec![0.0; n], vec![0; n], vec![0; n]);
                factor(f.as_mut(), &mut sub, &mut perm, &mut inv);
                two_by_two += sub.iter().filter(|&&v| v != 0.0).count();
                let back = reconstruct(f.as_ref(), &sub, &perm);
                // Bunch–Kaufman is backward stable with growth at most
                // 2.57 per step: on these O(1) entries the reconstruction
                // is exact to a few hundred ulps at n = 32.
                let scale = s.norm_max().max(1.0);
                assert!((&back - &s).norm_max() <= 1e-13 * scale, "n = {n}, seed {seed}: reconstruction");
                assert!(inv.iter().enumerate().all(|(i, &p)| perm[p] == i), "n = {n}: perm_inv");
                if seed == 3 || n == 0 {
                    continue;
                }
                let rhs = Mat::<f64>::from_fn(n, 3, |i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
                let mut x = rhs.clone();
                let perms: Vec<usize> = perm.iter().chain(&inv).copied().collect();
                // faer's solve, which every block's solve runs, reads them.
                let mut mem = MemBuffer::new(DenseLblt::solve_scratch(n, 3, Par::Seq));
                solve_in_place(f.as_ref(), &sub, &perms, x.as_mut(), Par::Seq, MemStack::new(&mut mem));
                let lu = s.partial_piv_lu().solve(&rhs);
                // Random blocks of condition up to ~1e4 here: agreement to
                // cond * u * n, with margin.
                assert!((&x - &lu).norm_max() <= 1e-9 * lu.norm_max().max(1.0), "n = {n}, seed {seed}: solve");
                let eig = s.self_adjoint_eigenvalues(faer::Side::Lower).expect("eigenvalues");
                let neg_eig = eig.iter().filter(|&&v| v < 0.0).count();
                let b = Mat::from_fn(n, n, |i, j| match i.abs_diff(j) {
                    0 => f[(i, i)],
                    1 => sub[i.min(j)],
                    _ => 0.0,
                });
                let neg_piv =
                    b.self_adjoint_eigenvalues(faer::Side::Lower).expect("pivots").iter().filter(|&&v| v < 0.0).count();
                assert_eq!(neg_piv, neg_eig, "n = {n}, seed {seed}: inertia");
            }
        }
        assert!(two_by_two > 100, "the cases must exercise 2x2 pivots ({two_by_two})");
    }

    /// The inverse from the factors times the matrix is the identity, on
    /// the same kinds of blocks, 2x2 pivots included.
    #[test]
    fn inverse_inverts() {
        for n in 1..=SMALL_MAX {
            for (seed, zero_diagonal) in [(4, false), (5, true)] {
                let s = random_sym(n, seed + 10 * n as u64, zero_diagonal);
                let mut f = s.clone();
                let (mut sub, mut perm, mut inv) = (vec![0.0; n], vec![0; n], vec![0; n]);
                factor(f.as_mut(), &mut sub, &mut perm, &mut inv);
                let perms: Vec<usize> = perm.iter().chain(&inv).copied().collect();
                let mut out = Mat::<f64>::zeros(n, n);
                inverse(f.as_ref(), &sub, &perms, out.as_mut());
                let err = (&out * &s - Mat::<f64>::identity(n, n)).norm_max();
                // Random blocks of condition up to ~1e4: the residual of an
                // inverse is bounded by a few n u cond.
                assert!(err <= 1e-9, "n = {n}, seed {seed}: |S^-1 S - I| = {err:e}");
            }
        }
    }

    /// Non-finite entries (a Schur complement that overflowed) neither
    /// panic nor stall the kernel: it finishes, and the pivots carry them
    /// for the scan to report.
    #[test]
    fn non_finite_entries_finish() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            for (i, j) in [(0, 0), (3, 1), (7, 7)] {
                let mut s = random_sym(8, 6, false);
                s[(i, j)] = bad;
                s[(j, i)] = bad;
                let (mut sub, mut perm, mut inv) = (vec![0.0; 8], vec![0; 8], vec![0; 8]);
                factor(s.as_mut(), &mut sub, &mut perm, &mut inv);
                let finite = (0..8).all(|k| s[(k, k)].is_finite()) && sub.iter().all(|v| v.is_finite());
                assert!(!finite, "{bad} at ({i}, {j}): a non-finite pivot must show");
                assert!(inv.iter().enumerate().all(|(k, &p)| perm[p] == k), "a permutation still");
            }
        }
    }

    /// A block of small integers, zeros among them at `density`: ties in
    /// the pivot search, zero columns and zero diagonals.
    fn integer_sym(n: usize, seed: u64, density: f64) -> Mat<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let values = [1.0, -1.0, 2.0, -2.0, 0.5, 3.0, -3.0];
        let a = Mat::<f64>::from_fn(n, n, |_, _| {
            if rng.random_range(0.0..1.0) < density {
                values[rng.random_range(0..values.len())]
            } else {
                0.0
            }
        });
        Mat::from_fn(n, n, |i, j| if i >= j { a[(i, j)] } else { a[(j, i)] })
    }

    /// The factors equal faer's own, to the bit where faer fuses its
    /// multiply-adds (pulp's V3 level: AVX2 and FMA; its scalar fallback
    /// does not fuse them), on random and zero-diagonal blocks, on integer
    /// blocks with ties and zero columns, and with non-finite entries.
    #[test]
    fn factors_equal_faers() {
        use faer::linalg::cholesky::lblt::factor as ffactor;
        #[cfg(target_arch = "x86_64")]
        let fused = pulp::x86::V3::try_new().is_some();
        #[cfg(not(target_arch = "x86_64"))]
        let fused = false;
        let mut cases = Vec::new();
        for n in 1..=SMALL_MAX {
            let seed = 10 * n as u64;
            cases.push(random_sym(n, seed + 7, false));
            cases.push(random_sym(n, seed + 8, true));
            for (i, density) in [0.1, 0.4, 1.0].into_iter().enumerate() {
                cases.push(integer_sym(n, seed + i as u64, density));
            }
            let mut bad = random_sym(n, seed + 9, false);
            let j = n / 2;
            bad[(n - 1, j)] = f64::NAN;
            bad[(j, n - 1)] = f64::NAN;
            cases.push(bad);
        }
        for s in cases {
            let n = s.nrows();
            let (mut f, mut g) = (s.clone(), s.clone());
            let (mut sub, mut perm, mut inv) = (vec![0.0; n], vec![0; n], vec![0; n]);
            factor(f.as_mut(), &mut sub, &mut perm, &mut inv);
            let (mut gsub, mut gperm, mut ginv) = (vec![0.0; n], vec![0usize; n], vec![0usize; n]);
            let params = crate::dense_lblt::lblt_params(n);
            let mut mem = MemBuffer::new(ffactor::cholesky_in_place_scratch::<usize, f64>(n, Par::Seq, params.into()));
            ffactor::cholesky_in_place(
                g.as_mut(),
                faer::ColMut::from_slice_mut(&mut gsub).as_diagonal_mut(),
                &mut gperm,
                &mut ginv,
                Par::Seq,
                MemStack::new(&mut mem),
                params.into(),
            );
            assert_eq!(perm, gperm, "n = {n}: pivot order");
            assert_eq!(inv, ginv, "n = {n}: inverse permutation");
            // Entries compared bit for bit (NaN equal to NaN), or, without
            // fused multiply-adds, to a few ulps of these O(1) entries.
            let same = |a: f64, b: f64| {
                a.to_bits() == b.to_bits() || (!fused && (a - b).abs() <= 1e-13) || (a.is_nan() && b.is_nan())
            };
            for j in 0..n {
                for i in j..n {
                    assert!(same(f[(i, j)], g[(i, j)]), "n = {n}: entry ({i}, {j}) {} vs {}", f[(i, j)], g[(i, j)]);
                }
                assert!(same(sub[j], gsub[j]), "n = {n}: sub-diagonal {j}");
            }
        }
    }
}
