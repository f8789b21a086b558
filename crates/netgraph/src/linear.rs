//! Kernels shared by every layer built on a linear map `u = z W^T + b`
//! (flat parameters: `W` row-major `out x in`, then the bias).

use blockmat::Block;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The weight matrix viewed in place (`x` holds at least `out * inp` entries).
pub(crate) fn weights(x: &[f64], out: usize, inp: usize) -> MatRef<'_, f64> {
    MatRef::from_row_major_slice(&x[..out * inp], out, inp)
}

/// `u = z W^T + b` (`batch x out`).
pub(crate) fn affine(x: &[f64], z: MatRef<'_, f64>, out: usize, bias: bool) -> Mat<f64> {
    let inp = z.ncols();
    let mut u = Mat::zeros(z.nrows(), out);
    matmul(u.as_mut(), Accum::Replace, z, weights(x, out, inp).transpose(), 1.0, Par::Seq);
    if bias {
        let b = &x[out * inp..out * inp + out];
        for k in 0..out {
            for s in 0..z.nrows() {
                u[(s, k)] += b[k];
            }
        }
    }
    u
}

/// The gradient of `sum_{s,k} delta_sk u_sk` with respect to `(W, b)`:
/// `delta^T z` flattened row-major, then the column sums of `delta`.
pub(crate) fn param_grad(delta: MatRef<'_, f64>, z: MatRef<'_, f64>, bias: bool) -> Vec<f64> {
    let (out, inp) = (delta.ncols(), z.ncols());
    let mut g = vec![0.0; out * inp + if bias { out } else { 0 }];
    // The product lands in the flat vector itself: no matrix to copy from.
    let gw = MatMut::from_row_major_slice_mut(&mut g[..out * inp], out, inp);
    matmul(gw, Accum::Replace, delta.transpose(), z, 1.0, Par::Seq);
    if bias {
        for (k, v) in g[out * inp..].iter_mut().enumerate() {
            *v = (0..delta.nrows()).map(|s| delta[(s, k)]).sum::<f64>();
        }
    }
    g
}

/// `delta W` (`batch x in`), row-major: the input gradient for output
/// sensitivities `delta`, in the crate's flattening of activations.
pub(crate) fn input_grad(x: &[f64], delta: MatRef<'_, f64>, inp: usize) -> Vec<f64> {
    let (batch, out) = (delta.nrows(), delta.ncols());
    let mut r = vec![0.0; batch * inp];
    let view = MatMut::from_row_major_slice_mut(&mut r, batch, inp);
    matmul(view, Accum::Replace, delta, weights(x, out, inp), 1.0, Par::Seq);
    r
}

/// PyTorch's `nn.Linear` default: `W` and `b` uniform in `(-1/sqrt(in), 1/sqrt(in))`.
pub(crate) fn init_linear(rng: &mut ChaCha8Rng, out: &mut [f64], inp: usize) {
    let bound = 1.0 / (inp.max(1) as f64).sqrt();
    for v in out.iter_mut() {
        *v = rng.random_range(-bound..bound);
    }
}

/// A dense `Dx` with at least this many entries is stored by its non-zero
/// row vectors instead ([`unitwise_jacobian`]).
const STRUCTURED_JACOBIAN_MIN: usize = 1 << 16;

/// Whether [`unitwise_jacobian`] stores `Dx` by its row vectors.
pub(crate) fn structured_jacobian(batch: usize, out: usize, params: usize) -> bool {
    batch.saturating_mul(out).saturating_mul(params) >= STRUCTURED_JACOBIAN_MIN
}

/// `Dx = d u / d x` scaled by the slopes `d1` (`batch x out`): row
/// `(s, k)` holds `d1_sk z_s` on unit `k`'s weights and `d1_sk` on its
/// bias, zero elsewhere. Dense for small layers; otherwise a grid over the
/// samples of block-diagonal rows (one `1 x in` row vector per unit, kept
/// as rank-one factors, and the bias slopes), which stores about
/// `batch out in` numbers instead of `batch out^2 in` (a 784-input first
/// layer: 51 MB at batch 8).
pub(crate) fn unitwise_jacobian(d1: MatRef<'_, f64>, z: MatRef<'_, f64>, bias: bool) -> Block {
    let (batch, out, inp) = (z.nrows(), d1.ncols(), z.ncols());
    let p = out * inp + if bias { out } else { 0 };
    if !structured_jacobian(batch, out, p) {
        let mut dx = Mat::<f64>::zeros(batch * out, p);
        for s in 0..batch {
            for k in 0..out {
                let row = s * out + k;
                for j in 0..inp {
                    dx[(row, k * inp + j)] = d1[(s, k)] * z[(s, j)];
                }
                if bias {
                    dx[(row, out * inp + k)] = d1[(s, k)];
                }
            }
        }
        return Block::dense(dx);
    }
    let rows = (0..batch)
        .map(|s| {
            // Each unit's row `d1_sk z_s^T` as the factors `[d1_sk] [1] z_s^T`:
            // faer pads an owned matrix's columns to eight entries, so a
            // dense `1 x in` row would take eight times its numbers.
            let units = (0..out).map(|k| {
                let (left, core) = (Mat::from_fn(1, 1, |_, _| d1[(s, k)]), Mat::<f64>::identity(1, 1));
                let row = Block::low_rank(left, core, Mat::from_fn(inp, 1, |j, _| z[(s, j)]));
                row.expect("1 x 1 factors of a rank-one row")
            });
            let mut row = vec![Block::block_diag(units.collect())];
            if bias {
                row.push(Block::block_diag(
                    (0..out).map(|k| Block::dense(Mat::from_fn(1, 1, |_, _| d1[(s, k)]))).collect(),
                ));
            }
            row
        })
        .collect();
    // Every sample's row has the same blocks, so the grid is consistent.
    Block::grid(rows).expect("every sample contributes blocks of the same shapes")
}

/// Layers reading at least this many inputs, and at least four times as
/// many as the batch has samples, keep their units' weight blocks
/// `Z^T diag(c_k) Z` as low-rank factors (`in x batch`) instead of dense
/// `in x in` matrices: a first layer reading 784 pixels would otherwise
/// store 32 blocks of 785 x 785 (158 MB at batch 8) of rank at most 8.
pub const LOW_RANK_MIN_INPUTS: usize = 64;

/// Whether [`unitwise_hessian`] stores the weight blocks as factors.
pub(crate) fn low_rank_units(inp: usize, batch: usize) -> bool {
    inp >= LOW_RANK_MIN_INPUTS && inp >= 4 * batch
}

/// `A = d2/dx dx of sum_{s,k} c_sk u_sk(x)`-type Hessians that are
/// block-diagonal over output units: unit `k` owns `sum_s c_sk z~_s z~_s^T`
/// with `z~_s = (z_s, 1)` when there is a bias.
///
/// Without a bias the result is `Diag_k(in x in)`. With a bias the flat order
/// puts all of `W` before the bias, so the result is the 2x2 grid
/// `[[Diag_k(in x in), Diag_k(in x 1)], [Diag_k(1 x in), Diag_k(1 x 1)]]`.
/// The `in x in` blocks are low-rank leaves `Z^T diag(c_k) Z` for wide
/// inputs ([`LOW_RANK_MIN_INPUTS`]), dense otherwise.
pub(crate) fn unitwise_hessian(z: MatRef<'_, f64>, c: MatRef<'_, f64>, bias: bool) -> Block {
    let (batch, inp, out) = (z.nrows(), z.ncols(), c.ncols());
    let factors = low_rank_units(inp, batch).then(|| z.transpose().to_owned());
    let mut ww = Vec::with_capacity(out);
    let mut cols = Vec::with_capacity(out);
    let mut rows = Vec::with_capacity(out);
    let mut scalars = Vec::with_capacity(out);
    let mut scaled = Mat::<f64>::zeros(batch, inp);
    for k in 0..out {
        for j in 0..inp {
            for s in 0..batch {
                scaled[(s, j)] = c[(s, k)] * z[(s, j)];
            }
        }
        match &factors {
            Some(zt) => {
                let core = Mat::from_fn(batch, batch, |s, t| if s == t { c[(s, k)] } else { 0.0 });
                let unit = Block::low_rank(zt.clone(), core, zt.clone());
                ww.push(unit.expect("Z^T is in x batch and the core batch x batch"));
            }
            None => {
                let mut a = Mat::<f64>::zeros(inp, inp);
                matmul(a.as_mut(), Accum::Replace, z.transpose(), scaled.as_ref(), 1.0, Par::Seq);
                ww.push(Block::dense(a));
            }
        }
        if bias {
            let col = Mat::from_fn(inp, 1, |j, _| (0..batch).map(|s| scaled[(s, j)]).sum::<f64>());
            rows.push(Block::dense(col.transpose().to_owned()));
            cols.push(Block::dense(col));
            scalars.push(Block::dense(Mat::from_fn(1, 1, |_, _| (0..batch).map(|s| c[(s, k)]).sum::<f64>())));
        }
    }
    if !bias {
        return Block::block_diag(ww);
    }
    Block::grid(vec![
        vec![Block::block_diag(ww), Block::block_diag(cols)],
        vec![Block::block_diag(rows), Block::block_diag(scalars)],
    ])
    // Every unit contributes blocks of the same shapes, so the grid is consistent.
    .expect("unit blocks share their shapes")
}
