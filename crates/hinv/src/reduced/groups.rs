//! The groups of a layer's parameters on which its `A_l` is block
//! diagonal, read off the block structure the layer reported.
//!
//! A dense layer's `A_l` couples only the weights (and bias) of one output
//! unit (`netgraph`'s `unitwise_hessian`): with a bias its flat order puts
//! all weights before all biases, so the unit groups are not contiguous and
//! come from the 2x2 grid of block-diagonal blocks. A layer whose `A_l`
//! has no structure `blockmat` can show (a user layer, the cross-entropy
//! loss) is one group, factored densely.

use blockmat::Block;
use faer::Mat;

/// Parameter groups of one layer: `members[g]` are the flat indices of
/// group `g` (increasing), `blocks[g]` the dense block of `A_l` on them.
#[derive(Debug, Clone)]
pub(crate) struct Groups {
    pub(crate) members: Vec<Vec<usize>>,
    pub(crate) blocks: Vec<Mat<f64>>,
}

impl Groups {
    /// The groups of `a` (square, `p x p`).
    pub(crate) fn of(a: &Block) -> Groups {
        let p = a.nrows();
        match a {
            Block::Zero { .. } => singletons(p, 0.0),
            Block::Identity { scale, .. } => singletons(p, *scale),
            Block::Diag(d) if d.blocks().iter().all(|b| b.nrows() == b.ncols()) => {
                let mut out = Groups { members: Vec::new(), blocks: Vec::new() };
                let mut at = 0;
                for b in d.blocks() {
                    let n = b.nrows();
                    if b.is_zero() {
                        out.extend(singletons(n, 0.0), at);
                    } else {
                        out.members.push((at..at + n).collect());
                        out.blocks.push(b.to_dense());
                    }
                    at += n;
                }
                out
            }
            Block::Grid(_) => grid_of_diagonals(a).unwrap_or_else(|| whole(a)),
            _ => whole(a),
        }
    }

    fn extend(&mut self, other: Groups, offset: usize) {
        self.members.extend(other.members.into_iter().map(|m| m.into_iter().map(|i| i + offset).collect()));
        self.blocks.extend(other.blocks);
    }

    /// Number of parameters covered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.members.iter().map(Vec::len).sum()
    }
}

fn singletons(p: usize, value: f64) -> Groups {
    Groups {
        members: (0..p).map(|i| vec![i]).collect(),
        blocks: (0..p).map(|_| Mat::from_fn(1, 1, |_, _| value)).collect(),
    }
}

fn whole(a: &Block) -> Groups {
    Groups { members: vec![(0..a.nrows()).collect()], blocks: vec![a.to_dense()] }
}

/// A square grid whose every cell is block diagonal with the same number
/// `k` of parts (or zero): group `g` gathers part `g` of every grid row.
fn grid_of_diagonals(a: &Block) -> Option<Groups> {
    let grid = a.as_grid()?;
    let r = grid.block_rows();
    if grid.block_cols() != r || grid.row_sizes() != grid.col_sizes() {
        return None;
    }
    let cell = |i: usize, j: usize| grid.get(i, j);
    // Part sizes along each grid row, from the diagonal cells.
    let mut sizes: Vec<Vec<usize>> = Vec::with_capacity(r);
    for i in 0..r {
        let d = cell(i, i)?.as_diag()?;
        if d.blocks().iter().any(|b| b.nrows() != b.ncols()) {
            return None;
        }
        sizes.push(d.blocks().iter().map(Block::nrows).collect());
    }
    let k = sizes.first()?.len();
    if sizes.iter().any(|s| s.len() != k) {
        return None;
    }
    for i in 0..r {
        for j in 0..r {
            let c = cell(i, j)?;
            if c.is_zero() {
                continue;
            }
            let d = c.as_diag()?;
            if d.len() != k || d.blocks().iter().enumerate().any(|(g, b)| b.shape() != (sizes[i][g], sizes[j][g])) {
                return None;
            }
        }
    }
    let row_offsets = blockmat::offsets(grid.row_sizes());
    let part_offsets: Vec<Vec<usize>> = sizes.iter().map(|s| blockmat::offsets(s)).collect();
    let mut out = Groups { members: Vec::with_capacity(k), blocks: Vec::with_capacity(k) };
    for g in 0..k {
        let mut members = Vec::new();
        let mut local = Vec::with_capacity(r);
        for i in 0..r {
            local.push(members.len());
            let start = row_offsets[i] + part_offsets[i][g];
            members.extend(start..start + sizes[i][g]);
        }
        let mut m = Mat::<f64>::zeros(members.len(), members.len());
        for i in 0..r {
            for j in 0..r {
                let c = cell(i, j)?;
                if c.is_zero() {
                    continue;
                }
                let part = &c.as_diag()?.blocks()[g];
                let (ni, nj) = (sizes[i][g], sizes[j][g]);
                m.as_mut().submatrix_mut(local[i], local[j], ni, nj).copy_from(part.to_dense());
            }
        }
        out.members.push(members);
        out.blocks.push(m);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netgraph::{Activation, Batch, Network};

    /// The groups must reproduce `A_l` exactly (every entry inside a group's
    /// block, zero outside), whatever structure the layer reported.
    fn check(a: &Block) -> usize {
        let g = Groups::of(a);
        let dense = a.to_dense();
        let p = dense.nrows();
        assert_eq!(g.len(), p);
        let mut owner = vec![usize::MAX; p];
        for (k, m) in g.members.iter().enumerate() {
            for &i in m {
                assert_eq!(owner[i], usize::MAX, "parameter {i} in two groups");
                owner[i] = k;
            }
        }
        for i in 0..p {
            for j in 0..p {
                if owner[i] != owner[j] {
                    assert_eq!(dense[(i, j)], 0.0, "({i}, {j}) couples two groups");
                }
            }
        }
        for (k, m) in g.members.iter().enumerate() {
            for (a, &i) in m.iter().enumerate() {
                for (b, &j) in m.iter().enumerate() {
                    assert_eq!(g.blocks[k][(a, b)], dense[(i, j)]);
                }
            }
        }
        g.members.len()
    }

    #[test]
    fn dense_layers_split_into_units_with_and_without_bias() {
        for bias in [false, true] {
            let b = Network::builder(3).dense(4, Activation::Tanh).dense(5, Activation::Tanh);
            let b = if bias { b } else { b.without_bias() };
            let net = b.cross_entropy(3).unwrap();
            let mut params = net.init_params(1);
            params.scale(2.0);
            let batch = Batch::random_classification(3, 3, 4, 2);
            let d = net.derivatives(&params, &batch).unwrap();
            // Hidden dense layers: one group per output unit.
            assert_eq!(check(&d.layers[0].a), 4);
            assert_eq!(check(&d.layers[1].a), 5);
            // The cross-entropy layer couples its units: at least one group.
            assert!(check(&d.layers[2].a) >= 1);
        }
    }

    #[test]
    fn structureless_blocks_are_one_group_and_zero_blocks_singletons() {
        let m = Mat::from_fn(3, 3, |i, j| (i + j) as f64);
        assert_eq!(check(&Block::dense(m)), 1);
        assert_eq!(check(&Block::zeros(4, 4)), 4);
        assert_eq!(check(&Block::scaled_identity(2, 3.0)), 2);
    }
}
