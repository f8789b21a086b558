//! `R`, the Schur complement left by the layers' eliminations, assembled
//! from their pieces as a block-tridiagonal matrix.

use blockmat::{Block, Tridiag};
use faer::Mat;
use netgraph::Derivatives;
use tridiag::TridiagError;

use super::layers::map_layers;
use super::multipliers::Scratch;
use super::Pieces;

/// `R` from the layers' pieces. The diagonal blocks are finished in
/// parallel when `split` (at L256 h8 B2 and at L16 h8 B16 finishing them
/// took 0.8 ms on one thread, between two parallel phases); only the moves
/// into the tridiagonal are sequential.
pub(super) fn assemble(d: &Derivatives, pieces: &mut [Pieces], split: bool) -> Result<Tridiag, TridiagError> {
    let nl = pieces.len();
    // Layer l's block holds the fill of layer l + 1's `G` on its `y`
    // unknowns: taken out first, so that each block is finished on its own.
    let yfills: Vec<Option<Mat<f64>>> = pieces.iter_mut().map(|p| p.yfill.take()).collect();
    let finish = |l: usize, p: &mut Pieces| {
        let next = (l + 1 < nl).then(|| (&d.layers[l + 1].e, yfills[l + 1].as_ref()));
        finish_block(d.act_sizes[l + 1], std::mem::replace(&mut p.block, Mat::new()), next).map(Block::dense)
    };
    let diag = map_layers(split, pieces.iter_mut().collect(), Scratch::default, |_, l, p| finish(l, p))?;
    let mut sub = Vec::with_capacity(nl.saturating_sub(1));
    for l in 1..nl {
        let (a, ap) = (d.act_sizes[l + 1], d.act_sizes[l]);
        let c = pieces[l].coupling.take().unwrap_or_else(|| Mat::zeros(a, ap));
        let grid = Block::grid(vec![
            vec![Block::zeros(a, ap), Block::dense(c)],
            vec![Block::zeros(a, ap), Block::zeros(a, ap)],
        ]);
        // Every piece has the shapes of its layer, so the grid is consistent.
        sub.push(grid.map_err(|_| TridiagError::ShapeMismatch {
            op: "reduced coupling",
            expected: (a, ap),
            found: (a, ap),
        })?);
    }
    Tridiag::symmetric(diag, sub).map_err(|_| TridiagError::ShapeMismatch {
        op: "reduced system (diagonal and coupling blocks)",
        expected: (nl, nl),
        found: (nl, nl.saturating_sub(1)),
    })
}

/// A layer's diagonal block of `R` from its fill `m` (`2a x 2a`, the fill
/// `Dx A^-1 Dx^T` in its `z` corner): `-fill` there, `-I` between `z` and
/// `y`, and, below a next layer, that layer's `E - G^T A^-1 G` on `y`
/// (`next`: its `E` and its fill `G^T A^-1 G`, when it has one).
fn finish_block(
    a: usize,
    mut m: Mat<f64>,
    next: Option<(&Block, Option<&Mat<f64>>)>,
) -> Result<Mat<f64>, TridiagError> {
    if m.shape() != (2 * a, 2 * a) {
        return Err(TridiagError::ShapeMismatch {
            op: "reduced system (a layer's block)",
            expected: (2 * a, 2 * a),
            found: m.shape(),
        });
    }
    let mut zz = m.as_mut().submatrix_mut(0, 0, a, a);
    zz *= faer::Scale(-1.0);
    for i in 0..a {
        m[(a + i, i)] = -1.0;
        m[(i, a + i)] = -1.0;
    }
    if let Some((e, fill)) = next {
        let mut yy = m.as_mut().submatrix_mut(a, a, a, a);
        e.write_dense_to(yy.as_mut()).map_err(|_| TridiagError::ShapeMismatch {
            op: "reduced system (E of the next layer)",
            expected: (a, a),
            found: e.shape(),
        })?;
        if let Some(y) = fill {
            yy -= y;
        }
    }
    Ok(m)
}
