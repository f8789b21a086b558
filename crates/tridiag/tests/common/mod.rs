//! Test matrices (random SPD, indefinite, saddle-point, ill-conditioned
//! block-tridiagonal) and dense oracles shared by the integration tests.
#![allow(dead_code)]

use blockmat::{Block, Tridiag};
use faer::{Mat, MatRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Deterministic generator for a test case.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Entries uniform in [-1, 1].
pub fn random_mat(rng: &mut ChaCha8Rng, r: usize, c: usize) -> Mat<f64> {
    Mat::from_fn(r, c, |_, _| rng.random_range(-1.0..1.0))
}

/// `A + A^T + shift I`.
pub fn random_sym(rng: &mut ChaCha8Rng, n: usize, shift: f64) -> Mat<f64> {
    let a = random_mat(rng, n, n);
    Mat::from_fn(n, n, |i, j| a[(i, j)] + a[(j, i)] + if i == j { shift } else { 0.0 })
}

/// Uneven block sizes in `lo..=hi`.
pub fn random_sizes(rng: &mut ChaCha8Rng, count: usize, lo: usize, hi: usize) -> Vec<usize> {
    (0..count).map(|_| rng.random_range(lo..=hi)).collect()
}

/// What kind of matrix [`random_tridiag`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Strictly block-diagonally dominant with a positive diagonal: SPD.
    Spd,
    /// Random symmetric blocks, no shift: indefinite.
    Indefinite,
}

/// A dense symmetric block-tridiagonal matrix with the given block sizes.
pub fn random_tridiag(rng: &mut ChaCha8Rng, sizes: &[usize], kind: Kind) -> Tridiag {
    let nb = sizes.len();
    let sub: Vec<Block> = (1..nb).map(|k| Block::dense(random_mat(rng, sizes[k], sizes[k - 1]))).collect();
    let diag = (0..nb)
        .map(|k| {
            // Row sums of |off-diagonal| are below 2 n_k (own block) plus the
            // neighbours' sizes (entries in [-1, 1]): this shift makes every
            // row strictly dominant, hence SPD.
            let shift = match kind {
                Kind::Spd => {
                    1.0 + 2.0 * sizes[k] as f64
                        + if k > 0 { sizes[k - 1] as f64 } else { 0.0 }
                        + if k + 1 < nb { sizes[k + 1] as f64 } else { 0.0 }
                }
                Kind::Indefinite => 0.0,
            };
            Block::dense(random_sym(rng, sizes[k], shift))
        })
        .collect();
    Tridiag::symmetric(diag, sub).expect("generator builds consistent shapes")
}

/// Layer sizes `(p_l, a_l)` of a saddle-point matrix.
pub fn random_layers(rng: &mut ChaCha8Rng, count: usize) -> Vec<(usize, usize)> {
    (0..count).map(|_| (rng.random_range(1..=6), rng.random_range(1..=4))).collect()
}

/// The lifted Hessian system of ALGORITHM.md: diagonal block
/// `[[A + eps I, 0, Dx^T], [0, E, -I], [Dx, -I, 0]]` (sizes `(p, a, a)`) and
/// sub-diagonal block `[[0, G, 0], [0, 0, 0], [0, Dz, 0]]`, built as grids of
/// dense, zero and identity blocks so that the coupling is the y range.
pub fn saddle_tridiag(rng: &mut ChaCha8Rng, layers: &[(usize, usize)], eps: f64) -> Tridiag {
    let nb = layers.len();
    let diag = (0..nb)
        .map(|l| {
            let (p, a) = layers[l];
            let dx = random_mat(rng, a, p);
            let e = if l + 1 < nb { Block::dense(random_sym(rng, a, 0.0)) } else { Block::zeros(a, a) };
            Block::grid(vec![
                vec![
                    Block::dense(random_sym(rng, p, eps)),
                    Block::zeros(p, a),
                    Block::dense(dx.transpose().to_owned()),
                ],
                vec![Block::zeros(a, p), e, Block::scaled_identity(a, -1.0)],
                vec![Block::dense(dx), Block::scaled_identity(a, -1.0), Block::zeros(a, a)],
            ])
            .expect("consistent grid")
        })
        .collect();
    let sub = (1..nb)
        .map(|l| {
            let (p, a) = layers[l];
            let (pp, ap) = layers[l - 1];
            Block::grid(vec![
                vec![Block::zeros(p, pp), Block::dense(random_mat(rng, p, ap)), Block::zeros(p, ap)],
                vec![Block::zeros(a, pp), Block::zeros(a, ap), Block::zeros(a, ap)],
                vec![Block::zeros(a, pp), Block::dense(random_mat(rng, a, ap)), Block::zeros(a, ap)],
            ])
            .expect("consistent grid")
        })
        .collect();
    Tridiag::symmetric(diag, sub).expect("consistent tridiagonal")
}

/// `t + sigma I` (same structure, the shift added to every diagonal block).
pub fn shifted(t: &Tridiag, sigma: f64) -> Tridiag {
    let diag = t
        .diag()
        .iter()
        .map(|d| {
            let mut m = d.to_dense();
            for i in 0..m.nrows() {
                m[(i, i)] += sigma;
            }
            Block::dense(m)
        })
        .collect();
    Tridiag::symmetric(diag, t.sub().to_vec()).expect("same shapes")
}

/// Shifts `t` so that its eigenvalue of index `j` (ascending) lands at
/// `rel * ||t||_2`: the result has condition number about `1 / rel`.
pub fn ill_conditioned(t: &Tridiag, j: usize, rel: f64) -> Tridiag {
    let ev = eigenvalues(dense(t).as_ref());
    let norm = ev.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    shifted(t, rel * norm - ev[j])
}

/// The dense matrix.
pub fn dense(t: &Tridiag) -> Mat<f64> {
    Block::Tridiag(t.clone()).to_dense()
}

/// Ascending eigenvalues of a symmetric matrix.
pub fn eigenvalues(s: MatRef<'_, f64>) -> Vec<f64> {
    let mut ev = s.self_adjoint_eigenvalues(faer::Side::Lower).expect("eigen solver converges");
    ev.sort_by(|a, b| a.total_cmp(b));
    ev
}

/// `(positive, negative)` counts of the eigenvalues.
pub fn eigen_inertia(ev: &[f64]) -> (usize, usize) {
    (ev.iter().filter(|v| **v > 0.0).count(), ev.iter().filter(|v| **v < 0.0).count())
}

/// `(log|det|, sign)` from the eigenvalues.
pub fn eigen_slogdet(ev: &[f64]) -> (f64, f64) {
    let ld = ev.iter().map(|v| v.abs().ln()).sum();
    let sign = ev.iter().fold(1.0, |s, v| s * v.signum());
    (ld, sign)
}

/// `log|det|` from a dense partial-pivoting LU (a second, independent oracle).
pub fn lu_log_abs_det(s: MatRef<'_, f64>) -> f64 {
    let lu = s.partial_piv_lu();
    let u = lu.U();
    (0..u.nrows()).map(|i| u[(i, i)].abs().ln()).sum()
}

/// Largest column backward error `||S x - b|| / (||S||_F ||x|| + ||b||)`.
pub fn backward_error(s: MatRef<'_, f64>, x: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    let r = s * x - b;
    let ns = s.norm_l2();
    (0..b.ncols()).map(|j| r.col(j).norm_l2() / (ns * x.col(j).norm_l2() + b.col(j).norm_l2())).fold(0.0, f64::max)
}

/// Makes index `j` of block `k` a copy of index `i` (row and column of `S`),
/// so that `S` has two equal rows: singular, and so is every Schur
/// complement `S_k` (its rows `i`, `j` stay equal through the update).
pub fn duplicate_index(t: &Tridiag, k: usize, i: usize, j: usize) -> Tridiag {
    let mut diag: Vec<Mat<f64>> = t.diag().iter().map(Block::to_dense).collect();
    let mut sub: Vec<Mat<f64>> = t.sub().iter().map(Block::to_dense).collect();
    let d = &mut diag[k];
    for c in 0..d.ncols() {
        d[(j, c)] = d[(i, c)];
    }
    for r in 0..d.nrows() {
        d[(r, j)] = d[(r, i)];
    }
    if k > 0 {
        let s = &mut sub[k - 1];
        for c in 0..s.ncols() {
            s[(j, c)] = s[(i, c)];
        }
    }
    if let Some(s) = sub.get_mut(k) {
        for r in 0..s.nrows() {
            s[(r, j)] = s[(r, i)];
        }
    }
    Tridiag::symmetric(diag.into_iter().map(Block::dense).collect(), sub.into_iter().map(Block::dense).collect())
        .expect("same shapes")
}
