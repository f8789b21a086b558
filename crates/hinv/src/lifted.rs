//! Assembly of the lifted system of ALGORITHM.md from the derivative blocks:
//! the 3x3 grid `K` of layer-structured blocks (used for pictures and as the
//! oracle of the interleaving) and two symmetric block-tridiagonal
//! interleavings of it, which `tridiag` factors: ALGORITHM.md's
//! `u_l = (x_l, y_l, z_l)` and the shifted `u_l = (y_{l-1}, x_l, z_l)`.

use blockmat::{Block, Side, Tridiag};
use faer::Mat;
use netgraph::Derivatives;

use crate::error::Result;

/// `A_l + eps I` as a dense block: the factorization densifies each
/// diagonal block anyway, so keeping `A_l`'s structure here would buy nothing.
fn shifted_a(a: &Block, eps: f64) -> Block {
    let mut m: Mat<f64> = a.to_dense();
    for i in 0..m.nrows() {
        m[(i, i)] += eps;
    }
    Block::dense(m)
}

/// Size of the activation output of layer `l` (0-based): `a_{l+1}` in the
/// 1-based notation of ALGORITHM.md.
fn out_size(d: &Derivatives, l: usize) -> usize {
    d.act_sizes[l + 1]
}

/// The interleaved lifted system `K'`: block `l` couples `(x_l, y_l, z_l)`.
///
/// Diagonal block `l` is the grid `[[A_l + eps I, 0, Dx_l^T], [0, E_{l+1}, -I],
/// [Dx_l, -I, 0]]` and sub-diagonal block `(l, l-1)` is `[[0, G_l, 0], [0, 0, 0],
/// [0, Dz_l, 0]]`, so its column support is the `y` range of layer `l - 1`,
/// which is what lets the factorization carry only an `a x a` matrix.
pub fn lifted_tridiag(d: &Derivatives, eps: f64) -> Result<Tridiag> {
    let nl = d.layers.len();
    let mut diag = Vec::with_capacity(nl);
    let mut sub = Vec::with_capacity(nl.saturating_sub(1));
    for l in 0..nl {
        let blocks = &d.layers[l];
        let p = d.param_sizes[l];
        let a = out_size(d, l);
        let e_next = match d.layers.get(l + 1) {
            Some(next) => next.e.clone(),
            None => Block::zeros(a, a),
        };
        let dx = blocks.dx.clone();
        diag.push(Block::grid(vec![
            vec![shifted_a(&blocks.a, eps), Block::zeros(p, a), dx.transpose()],
            vec![Block::zeros(a, p), e_next, Block::scaled_identity(a, -1.0)],
            vec![dx, Block::scaled_identity(a, -1.0), Block::zeros(a, a)],
        ])?);
        if l > 0 {
            let (pp, ap) = (d.param_sizes[l - 1], out_size(d, l - 1));
            sub.push(Block::grid(vec![
                vec![Block::zeros(p, pp), blocks.g.clone(), Block::zeros(p, ap)],
                vec![Block::zeros(a, pp), Block::zeros(a, ap), Block::zeros(a, ap)],
                vec![Block::zeros(a, pp), blocks.dz.clone(), Block::zeros(a, ap)],
            ])?);
        }
    }
    Ok(Tridiag::symmetric(diag, sub)?)
}

/// Which symmetric permutation of `K` is handed to the block factorization.
///
/// Both are block-tridiagonal with the same block sizes (up to one block of
/// `a_L` at the end), the same log-determinant and the same inertia; they
/// differ in how much the Schur complements grow (docs/numerics.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Layout {
    /// ALGORITHM.md's `u_l = (x_l, y_l, z_l)`: off-diagonal blocks
    /// `[[0, G_l, 0], [0, 0, 0], [0, Dz_l, 0]]`, each block regularised by
    /// its own `-I` between `y_l` and `z_l`.
    Interleaved,
    /// `u_0 = (x_0, z_0)`, `u_l = (y_{l-1}, x_l, z_l)`, and a last block
    /// `y_{L-1}`: off-diagonal blocks are a bare `-I` between `z_{l-1}` and
    /// `y_{l-1}`, so the carried update is `-W` with no `G`, `Dz` factors and
    /// the pivots grow far less; but a block is exactly singular when a
    /// unit is dead for a sample (ReLU, saturated activations), since its
    /// row of `Dx_l` and `Dz_l` then vanishes.
    Shifted,
}

/// [`lifted_tridiag`] or [`lifted_tridiag_shifted`].
pub fn lifted_tridiag_with(d: &Derivatives, eps: f64, layout: Layout) -> Result<Tridiag> {
    match layout {
        Layout::Interleaved => lifted_tridiag(d, eps),
        Layout::Shifted => lifted_tridiag_shifted(d, eps),
    }
}

/// Offsets of each layer's `x_l` in the unknowns of a layout.
pub(crate) fn x_offsets(d: &Derivatives, layout: Layout) -> Vec<usize> {
    let nl = d.layers.len();
    let mut out = Vec::with_capacity(nl);
    let mut at = 0;
    for l in 0..nl {
        let (p, a) = (d.param_sizes[l], out_size(d, l));
        match layout {
            Layout::Interleaved => {
                out.push(at);
                at += p + 2 * a;
            }
            Layout::Shifted => {
                let y_prev = if l == 0 { 0 } else { out_size(d, l - 1) };
                out.push(at + y_prev);
                at += y_prev + p + a;
            }
        }
    }
    out
}

/// The shifted interleaving of `K` (see [`Layout::Shifted`]).
pub fn lifted_tridiag_shifted(d: &Derivatives, eps: f64) -> Result<Tridiag> {
    let nl = d.layers.len();
    // Column sizes of block `l`, which block `l + 1` couples into.
    let cols = |l: usize| {
        if l == 0 {
            vec![d.param_sizes[0], out_size(d, 0)]
        } else {
            vec![out_size(d, l - 1), d.param_sizes[l], out_size(d, l)]
        }
    };
    // Block (l, l-1): `-I` from `z_{l-1}` (last column part of block l - 1)
    // into `y_{l-1}` (first row part of block l), zero elsewhere.
    let coupling = |l: usize, rows: &[usize]| -> Result<Block> {
        let c = cols(l - 1);
        let grid = rows
            .iter()
            .enumerate()
            .map(|(ri, &rs)| {
                c.iter()
                    .enumerate()
                    .map(|(ci, &cs)| {
                        if ri == 0 && ci + 1 == c.len() {
                            Block::scaled_identity(rs, -1.0)
                        } else {
                            Block::zeros(rs, cs)
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(Block::grid(grid)?)
    };
    let mut diag = Vec::with_capacity(nl + 1);
    let mut sub = Vec::with_capacity(nl);
    for l in 0..nl {
        let b = &d.layers[l];
        let a = out_size(d, l);
        if l == 0 {
            diag.push(Block::grid(vec![
                vec![shifted_a(&b.a, eps), b.dx.transpose()],
                vec![b.dx.clone(), Block::zeros(a, a)],
            ])?);
        } else {
            diag.push(Block::grid(vec![
                vec![b.e.clone(), b.g.transpose(), b.dz.transpose()],
                vec![b.g.clone(), shifted_a(&b.a, eps), b.dx.transpose()],
                vec![b.dz.clone(), b.dx.clone(), Block::zeros(a, a)],
            ])?);
            sub.push(coupling(l, &[out_size(d, l - 1), d.param_sizes[l], a])?);
        }
    }
    if nl > 0 {
        // The last `y` (0-based `y_{L-1}`, the loss output) has no layer
        // after it to supply an `E` (`E_{L+1} = 0` in ALGORITHM.md's
        // 1-based numbering), so its block is zero.
        let a = out_size(d, nl - 1);
        diag.push(Block::zeros(a, a));
        sub.push(coupling(nl, &[a])?);
    }
    Ok(Tridiag::symmetric(diag, sub)?)
}

/// The lifted system before interleaving: the 3x3 grid
/// `K = [[A + eps I, G P, Dx^T], [P^T G^T, P^T E P, -M^T], [Dx, -M, 0]]`
/// whose nine blocks are block-diagonal or block-bidiagonal over the layers.
pub fn lifted_grid(d: &Derivatives, eps: f64) -> Result<Block> {
    let nl = d.layers.len();
    let ps = &d.param_sizes;
    let outs: Vec<usize> = (0..nl).map(|l| out_size(d, l)).collect();
    let neg_i = |l: usize| Block::scaled_identity(outs[l], -1.0);
    let layer = |l: usize| &d.layers[l];

    let a_eps = Block::block_diag((0..nl).map(|l| shifted_a(&layer(l).a, eps)).collect());
    let gp = Block::bidiag(
        Side::Lower,
        (0..nl).map(|l| Block::zeros(ps[l], outs[l])).collect(),
        (1..nl).map(|l| layer(l).g.clone()).collect(),
    )?;
    let gp_t = Block::bidiag(
        Side::Upper,
        (0..nl).map(|l| Block::zeros(outs[l], ps[l])).collect(),
        (1..nl).map(|l| layer(l).g.transpose()).collect(),
    )?;
    let dx_t = Block::block_diag((0..nl).map(|l| layer(l).dx.transpose()).collect());
    let dx = Block::block_diag((0..nl).map(|l| layer(l).dx.clone()).collect());
    let pep = Block::block_diag(
        (0..nl)
            .map(|l| match d.layers.get(l + 1) {
                Some(next) => next.e.clone(),
                None => Block::zeros(outs[l], outs[l]),
            })
            .collect(),
    );
    let neg_m =
        Block::bidiag(Side::Lower, (0..nl).map(neg_i).collect(), (1..nl).map(|l| layer(l).dz.clone()).collect())?;
    let neg_mt =
        Block::bidiag(Side::Upper, (0..nl).map(neg_i).collect(), (1..nl).map(|l| layer(l).dz.transpose()).collect())?;
    let zero = Block::block_diag((0..nl).map(|l| Block::zeros(outs[l], outs[l])).collect());
    Ok(Block::grid(vec![vec![a_eps, gp, dx_t], vec![gp_t, pep, neg_mt], vec![dx, neg_m, zero]])?)
}
