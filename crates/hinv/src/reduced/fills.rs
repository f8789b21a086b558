//! What a layer's `G` fills into `R` (`G^T A^-1 G` on `y_{l-1}`, `Dx A^-1 G`
//! coupling `z_l` to it) and the scales of their errors, by either route:
//! through the formed `A^-1 G` here, or through a dense layer's units'
//! factors ([`super::units::fills`]).

use blockmat::reduce::{max_abs, max_col_norm};
use blockmat::Block;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use tridiag::TridiagError;

use super::group_solver::GroupSolver;
use super::multipliers::{DxPieces, Multipliers, Scratch};
use super::pack::Ragged;

/// What layer `l`'s `G` fills into `R`, and the scales of its errors
/// (through the units' factors, `units::fills`, or the formed `G`,
/// [`formed_fills`]).
pub(super) struct Fills {
    /// `G^T A^-1 G` (`a_{l-1}` square, symmetric).
    pub(super) y: Mat<f64>,
    /// `Dx A^-1 G` (`a_l x a_{l-1}`).
    pub(super) cf: Mat<f64>,
    /// Largest `|G_ij|`.
    pub(super) g_max: f64,
    /// Largest column norm of `G`, or a bound on it from magnitudes
    /// before cancellation (the units' route sums those).
    pub(super) g_col_norm: f64,
    /// Largest column norm of `A^-1 G`, or a bound on it alike.
    pub(super) xg_col_norm: f64,
    /// `A^-1 G` formed (`p_l x a_{l-1}`), when asked for.
    pub(super) xg: Option<Mat<f64>>,
}

/// The fills of a layer's formed `G`, through the formed `A^-1 G` (kept
/// for the solves). Without a `solver` (a zero pivot) `G` stands in for
/// `A^-1 G`: the elimination is refused anyway.
pub(super) fn formed_fills(
    g: &Block,
    solver: Option<&GroupSolver<'_>>,
    members: &Ragged,
    dx: &DxPieces,
    xdx: &Multipliers,
    scratch: &mut Scratch,
) -> Result<Fills, TridiagError> {
    let g = g.dense_view();
    let g: &Mat<f64> = &g;
    let mut xg = g.clone();
    if let Some(s) = solver {
        s.apply(members, xg.as_mut(), scratch.reserve(members.widest(), g.ncols()))?;
    }
    let mut y = Mat::<f64>::zeros(g.ncols(), g.ncols());
    matmul(y.as_mut(), Accum::Replace, g.transpose(), xg.as_ref(), 1.0, Par::Seq);
    super::symmetrize(y.as_mut());
    let cf = xdx.dx_times(dx, members, xg.as_ref(), scratch);
    Ok(Fills {
        y,
        cf,
        g_max: max_abs(g.as_ref()),
        g_col_norm: max_col_norm(g.as_ref()),
        xg_col_norm: max_col_norm(xg.as_ref()),
        xg: Some(xg),
    })
}
