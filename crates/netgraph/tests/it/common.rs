//! Helpers shared by the integration tests: seeded random data and the
//! dense assembly of the Hessian from the blocks (ALGORITHM.md's formula).

#![allow(dead_code)]

use faer::linalg::solvers::Solve;
use faer::Mat;
use netgraph::Derivatives;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded generator.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform entries in `(-scale, scale)`.
pub fn uniform_vec(rng: &mut ChaCha8Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

/// A `rows x cols` matrix with uniform entries in `(-scale, scale)`.
pub fn uniform_mat(rng: &mut ChaCha8Rng, rows: usize, cols: usize, scale: f64) -> Mat<f64> {
    let v = uniform_vec(rng, rows * cols, scale);
    Mat::from_fn(rows, cols, |i, j| v[i * cols + j])
}

/// Places `blocks` on the diagonal of a dense matrix.
fn block_diag(blocks: &[Mat<f64>]) -> Mat<f64> {
    let (r, c) = blocks.iter().fold((0, 0), |(r, c), b| (r + b.nrows(), c + b.ncols()));
    let mut out = Mat::zeros(r, c);
    let (mut r0, mut c0) = (0, 0);
    for b in blocks {
        out.as_mut().submatrix_mut(r0, c0, b.nrows(), b.ncols()).copy_from(b);
        r0 += b.nrows();
        c0 += b.ncols();
    }
    out
}

/// `H = A + G P M^-1 Dx + (.)^T + Dx^T M^-T P^T E P M^-1 Dx`, everything dense.
pub fn assemble_hessian(d: &Derivatives) -> Mat<f64> {
    let nl = d.layers.len();
    let a = &d.act_sizes;
    let dx = block_diag(&d.layers.iter().map(|l| l.dx.to_dense()).collect::<Vec<_>>());
    let am = block_diag(&d.layers.iter().map(|l| l.a.to_dense()).collect::<Vec<_>>());
    let g = block_diag(&d.layers.iter().map(|l| l.g.to_dense()).collect::<Vec<_>>());
    let e = block_diag(&d.layers.iter().map(|l| l.e.to_dense()).collect::<Vec<_>>());
    // Offsets of y (sizes a_1..a_L) and of P y (sizes a_0..a_{L-1}).
    let ny: usize = a[1..].iter().sum();
    let np: usize = a[..nl].iter().sum();
    let off_y: Vec<usize> = (0..=nl).map(|l| a[1..1 + l].iter().sum()).collect();
    let off_p: Vec<usize> = (0..=nl).map(|l| a[..l].iter().sum()).collect();
    let mut m = Mat::<f64>::identity(ny, ny);
    let mut p = Mat::<f64>::zeros(np, ny);
    for l in 1..nl {
        // Block (l, l-1) of M is -Dz of layer l+1 (0-based l).
        let dz = d.layers[l].dz.to_dense();
        let mut blk = m.as_mut().submatrix_mut(off_y[l], off_y[l - 1], dz.nrows(), dz.ncols());
        blk.copy_from(&(-&dz));
        // (P y)_l = y_{l-1}: rows of layer l's input, columns of y_{l-1}.
        for i in 0..a[l] {
            p[(off_p[l] + i, off_y[l - 1] + i)] = 1.0;
        }
    }
    let t = m.partial_piv_lu().solve(&dx);
    let k = &p * &t;
    let gk = &g * &k;
    &am + &gk + gk.transpose() + k.transpose() * &e * &k
}

/// Largest absolute entry.
pub fn max_abs(m: &Mat<f64>) -> f64 {
    let mut x = 0.0f64;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            x = x.max(m[(i, j)].abs());
        }
    }
    x
}
