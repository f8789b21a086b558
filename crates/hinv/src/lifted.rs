//! Assembly of the lifted system of ALGORITHM.md from the derivative blocks:
//! the 3x3 grid `K` of layer-structured blocks (used for pictures and as the
//! oracle of the interleaving) and its symmetric block-tridiagonal
//! interleaving `u_l = (x_l, y_l, z_l)` `K'`, which `tridiag` factors.

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
    lifted_tridiag_scaled(d, eps, 1.0)
}

/// The lifted system of `c (H + eps I)`: `A_l`, `G_l`, `E_l` and `eps`
/// scaled by `c`, `Dx_l`, `Dz_l` and the identities as they are. Every term
/// of ALGORITHM.md's `H` holds exactly one of `A`, `G`, `E`, so this is the
/// lifted system of `c H + c eps I` with the same `(y, z)` block. Where the
/// curvature vanishes (`||H||` many orders below the `-I` blocks) it keeps
/// the curvature from drowning in the structural part's rounding.
pub(crate) fn lifted_tridiag_scaled(d: &Derivatives, eps: f64, c: f64) -> Result<Tridiag> {
    let scaled = |b: &Block| if c == 1.0 { b.clone() } else { b.scale(c) };
    let nl = d.layers.len();
    let mut diag = Vec::with_capacity(nl);
    let mut sub = Vec::with_capacity(nl.saturating_sub(1));
    for l in 0..nl {
        let blocks = &d.layers[l];
        let p = d.param_sizes[l];
        let a = out_size(d, l);
        let e_next = match d.layers.get(l + 1) {
            Some(next) => scaled(&next.e),
            None => Block::zeros(a, a),
        };
        let dx = blocks.dx.clone();
        diag.push(Block::grid(vec![
            vec![shifted_a(&scaled(&blocks.a), c * eps), Block::zeros(p, a), dx.transpose()],
            vec![Block::zeros(a, p), e_next, Block::scaled_identity(a, -1.0)],
            vec![dx, Block::scaled_identity(a, -1.0), Block::zeros(a, a)],
        ])?);
        if l > 0 {
            let (pp, ap) = (d.param_sizes[l - 1], out_size(d, l - 1));
            sub.push(Block::grid(vec![
                vec![Block::zeros(p, pp), scaled(&blocks.g), Block::zeros(p, ap)],
                vec![Block::zeros(a, pp), Block::zeros(a, ap), Block::zeros(a, ap)],
                vec![Block::zeros(a, pp), blocks.dz.clone(), Block::zeros(a, ap)],
            ])?);
        }
    }
    Ok(Tridiag::symmetric(diag, sub)?)
}

/// Offsets of each layer's `x_l` in the unknowns of `K'`.
pub(crate) fn x_offsets(d: &Derivatives) -> Vec<usize> {
    let mut at = 0;
    (0..d.layers.len())
        .map(|l| {
            let here = at;
            at += d.param_sizes[l] + 2 * out_size(d, l);
            here
        })
        .collect()
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
