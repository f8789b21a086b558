//! Shared test helpers: a seeded generator of random nested blocks and
//! dense comparisons.
#![allow(dead_code)]

use blockmat::{Block, Side};
use faer::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded RNG.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A dense matrix with entries uniform in [-1, 1].
pub fn rand_mat(rng: &mut ChaCha8Rng, r: usize, c: usize) -> Mat<f64> {
    Mat::from_fn(r, c, |_, _| rng.random_range(-1.0..1.0))
}

/// Sizes in 0..=3, so empty and 1x1 blocks are common.
pub fn rand_sizes(rng: &mut ChaCha8Rng, n: usize) -> Vec<usize> {
    (0..n).map(|_| rng.random_range(0..=3)).collect()
}

/// A random leaf of shape `r x c` (identity only when square).
pub fn rand_leaf(rng: &mut ChaCha8Rng, r: usize, c: usize) -> Block {
    match rng.random_range(0..5) {
        0 => Block::zeros(r, c),
        1 if r == c => Block::scaled_identity(r, rng.random_range(-2.0..2.0)),
        4 => {
            // A product of rank at most k (k may exceed the shape, or be 0).
            let k = rng.random_range(0..=2);
            let (left, core, right) = (rand_mat(rng, r, k), rand_mat(rng, k, k), rand_mat(rng, c, k));
            Block::low_rank(left, core, right).expect("inner sizes agree")
        }
        _ => Block::dense(rand_mat(rng, r, c)),
    }
}

/// A random block of shape `r x c` nested up to `depth` levels. Structures
/// that need a square block count split rows and columns into the same
/// number of blocks of random sizes; when the sizes cannot be split that
/// way the result is a leaf.
pub fn rand_block(rng: &mut ChaCha8Rng, r: usize, c: usize, depth: usize) -> Block {
    if depth == 0 || rng.random_range(0..3) == 0 {
        return rand_leaf(rng, r, c);
    }
    let l = rng.random_range(1..=3);
    let rows = split(rng, r, l);
    let cols = split(rng, c, l);
    let sub = |rng: &mut ChaCha8Rng, i: usize, j: usize| rand_block(rng, rows[i], cols[j], depth - 1);
    match rng.random_range(0..5) {
        0 => Block::block_diag((0..l).map(|k| sub(rng, k, k)).collect()),
        1 | 2 => {
            let side = if rng.random_bool(0.5) { Side::Lower } else { Side::Upper };
            let diag = (0..l).map(|k| sub(rng, k, k)).collect();
            let off = (1..l)
                .map(|k| match side {
                    Side::Lower => sub(rng, k, k - 1),
                    Side::Upper => sub(rng, k - 1, k),
                })
                .collect();
            Block::bidiag(side, diag, off).unwrap()
        }
        3 => {
            let diag = (0..l).map(|k| sub(rng, k, k)).collect();
            let lower = (1..l).map(|k| sub(rng, k, k - 1)).collect();
            let upper = (1..l).map(|k| sub(rng, k - 1, k)).collect();
            Block::tridiag(diag, lower, upper).unwrap()
        }
        _ => {
            let nrows2 = rng.random_range(1..=3);
            let rows2 = split(rng, r, nrows2);
            let grid =
                rows2.iter().map(|&ri| cols.iter().map(|&cj| rand_block(rng, ri, cj, depth - 1)).collect()).collect();
            Block::grid(grid).unwrap()
        }
    }
}

/// A random square block whose diagonal blocks are square at every level
/// (so it can be solved, given a non-singular diagonal), with well
/// conditioned dense diagonal leaves (`I * 4 + noise`).
pub fn rand_solvable(rng: &mut ChaCha8Rng, n: usize, depth: usize) -> Block {
    if depth == 0 || rng.random_range(0..3) == 0 {
        return match rng.random_range(0..3) {
            0 => Block::scaled_identity(n, rng.random_range(0.5..2.0)),
            _ => Block::dense(Mat::from_fn(n, n, |i, j| if i == j { 4.0 } else { 0.0 }) + rand_mat(rng, n, n)),
        };
    }
    let l = rng.random_range(1..=3);
    let sizes = split(rng, n, l);
    let diag: Vec<Block> = sizes.iter().map(|&s| rand_solvable(rng, s, depth - 1)).collect();
    if rng.random_bool(0.4) {
        return Block::block_diag(diag);
    }
    let side = if rng.random_bool(0.5) { Side::Lower } else { Side::Upper };
    let off = (1..l)
        .map(|k| match side {
            Side::Lower => rand_block(rng, sizes[k], sizes[k - 1], depth - 1),
            Side::Upper => rand_block(rng, sizes[k - 1], sizes[k], depth - 1),
        })
        .collect();
    Block::bidiag(side, diag, off).unwrap()
}

/// The same nesting as `b` (variants and partitions of every structure),
/// with fresh random leaves, so that `b` and the result can be added.
pub fn rand_like(rng: &mut ChaCha8Rng, b: &Block) -> Block {
    match b {
        Block::Zero { rows, cols } => rand_leaf(rng, *rows, *cols),
        Block::Identity { n, .. } => rand_leaf(rng, *n, *n),
        Block::Dense(m) => rand_leaf(rng, m.nrows(), m.ncols()),
        Block::LowRank(_) => rand_leaf(rng, b.nrows(), b.ncols()),
        Block::Diag(d) => Block::block_diag(d.blocks().iter().map(|x| rand_like(rng, x)).collect()),
        Block::Bidiag(bd) => Block::bidiag(
            bd.side(),
            bd.diag().iter().map(|x| rand_like(rng, x)).collect(),
            bd.off().iter().map(|x| rand_like(rng, x)).collect(),
        )
        .unwrap(),
        Block::Tridiag(t) => {
            let diag = t.diag().iter().map(|x| rand_like(rng, x)).collect();
            let sub = t.sub().iter().map(|x| rand_like(rng, x)).collect();
            match t.sup() {
                Some(sup) => Block::tridiag(diag, sub, sup.iter().map(|x| rand_like(rng, x)).collect()).unwrap(),
                None => Block::sym_tridiag(diag, sub).unwrap(),
            }
        }
        Block::Grid(g) => {
            let blocks = g.blocks().iter().map(|x| rand_like(rng, x)).collect();
            Block::Grid(blockmat::Grid::with_sizes(g.row_sizes().to_vec(), g.col_sizes().to_vec(), blocks).unwrap())
        }
    }
}

/// Splits `n` into `l` random non-negative parts.
pub fn split(rng: &mut ChaCha8Rng, n: usize, l: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..l - 1).map(|_| rng.random_range(0..=n)).collect();
    cuts.sort_unstable();
    let mut out = Vec::with_capacity(l);
    let mut prev = 0;
    for c in cuts {
        out.push(c - prev);
        prev = c;
    }
    out.push(n - prev);
    out
}

/// Max-norm of `a - b`, panicking on a shape mismatch.
pub fn max_diff(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    assert_eq!((a.nrows(), a.ncols()), (b.nrows(), b.ncols()), "shapes differ");
    let mut d = 0.0f64;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            d = d.max((a[(i, j)] - b[(i, j)]).abs());
        }
    }
    d
}

/// Dense product.
pub fn dense_mul(a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
    let mut out = Mat::zeros(a.nrows(), b.ncols());
    for i in 0..a.nrows() {
        for j in 0..b.ncols() {
            let mut s = 0.0;
            for k in 0..a.ncols() {
                s += a[(i, k)] * b[(k, j)];
            }
            out[(i, j)] = s;
        }
    }
    out
}
