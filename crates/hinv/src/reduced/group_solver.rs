//! How each parameter group of one layer's `A_l + eps I` is applied
//! inverted: an explicit inverse for small groups, the Bunch–Kaufman
//! factors for large ones, or the projection of a large group of low rank
//! ([`super::projected`]).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, Par};
use tridiag::{BlockDiagLdlt, TridiagError};

use super::multipliers::{consecutive, gather_rows, put_rows, Scratch};
use super::pack::{MatPack, Ragged};
use super::projected::{self, Projection};

/// Groups up to this size get an explicit inverse: one product with it
/// costs less than the calls of a triangular solve, and refinement with the
/// exact HVP absorbs its slightly larger error. Larger groups (a first
/// layer reading hundreds of inputs) keep their factors: forming the
/// inverse would double their cost.
pub(super) const EXPLICIT_INVERSE_MAX: usize = 64;

/// Every small group's inverse, from its factors (absent for large or
/// projected ones), packed in one buffer.
pub(super) fn inverses(
    members: &Ragged,
    projections: &[Option<Projection>],
    ldlt: &BlockDiagLdlt,
) -> Result<MatPack, TridiagError> {
    let small = |(rows, p): (&[usize], &Option<Projection>)| rows.len() <= EXPLICIT_INVERSE_MAX && p.is_none();
    let entries = members.iter().zip(projections).filter(|&g| small(g)).map(|(r, _)| r.len() * r.len()).sum();
    let mut out = MatPack::with_capacity(entries, members.len());
    for (g, group) in members.iter().zip(projections).enumerate() {
        if !small(group) {
            out.push_none();
            continue;
        }
        let n = group.0.len();
        out.push_identity(n);
        let inv = out.get_mut(g).expect("just pushed");
        ldlt.inverse_into(g, inv)?;
    }
    Ok(out)
}

/// How each group of one layer's `A_l + eps I` is inverted: an explicit
/// inverse, its Bunch–Kaufman factors, or on its projection.
pub(super) struct GroupSolver<'a> {
    pub(super) inverses: &'a MatPack,
    pub(super) projections: &'a [Option<Projection>],
    pub(super) ldlt: &'a BlockDiagLdlt,
    pub(super) eps: f64,
}

impl GroupSolver<'_> {
    /// `block <- A_g^-1 block` for group `g`, with a scratch of at least
    /// the block's shape: an explicit inverse's product cannot run in
    /// place, and a projection needs `Q^T block`.
    pub(super) fn solve_with(
        &self,
        g: usize,
        mut block: MatMut<'_, f64>,
        scratch: MatMut<'_, f64>,
    ) -> Result<(), TridiagError> {
        if let Some(Some(p)) = self.projections.get(g) {
            return projected::solve(p, g, self.eps, self.ldlt, block, scratch);
        }
        match self.inverses.get(g) {
            Some(inv) if inv.nrows() == 1 => {
                let s = inv[(0, 0)];
                block.row_mut(0).iter_mut().for_each(|v| *v *= s);
            }
            Some(inv) => {
                let mut t = scratch.submatrix_mut(0, 0, block.nrows(), block.ncols());
                matmul(t.as_mut(), Accum::Replace, inv, block.as_ref(), 1.0, Par::Seq);
                block.copy_from(t.as_ref());
            }
            None => self.ldlt.solve_block_in_place(g, block)?,
        }
        Ok(())
    }

    /// `out <- (A_g + eps I)^-1 [I; 0]` for group `g`: the first
    /// `out.ncols()` columns of its inverse, copied from the explicit
    /// inverse, formed from a projection, or solved for with the factors.
    pub(super) fn inverse_columns(&self, g: usize, mut out: MatMut<'_, f64>) -> Result<(), TridiagError> {
        if let Some(Some(p)) = self.projections.get(g) {
            return projected::inverse_columns(p, g, self.eps, self.ldlt, out);
        }
        if let Some(inv) = self.inverses.get(g) {
            out.copy_from(inv.subcols(0, out.ncols()));
            return Ok(());
        }
        out.fill(0.0);
        (0..out.ncols()).for_each(|j| out[(j, j)] = 1.0);
        self.ldlt.solve_block_in_place(g, out)
    }

    /// `m <- A^-1 m` group by group (rows of `m` in the layer's flat
    /// order), in `scratch` (room for the largest group).
    pub(super) fn apply(
        &self,
        members: &Ragged,
        mut m: MatMut<'_, f64>,
        scratch: &mut Scratch,
    ) -> Result<(), TridiagError> {
        let (mut buf, mut scratch) = scratch.pair(m.ncols());
        for (g, rows) in members.iter().enumerate() {
            // A dense layer's unit without a bias owns consecutive rows:
            // solved where they are, without the copies out and back.
            if let Some(first) = consecutive(rows) {
                self.solve_with(g, m.as_mut().subrows_mut(first, rows.len()), scratch.as_mut())?;
                continue;
            }
            let mut s = buf.as_mut().subrows_mut(0, rows.len());
            gather_rows(m.as_ref(), rows, s.as_mut());
            self.solve_with(g, s.as_mut(), scratch.as_mut())?;
            put_rows(s.as_ref(), rows, m.as_mut());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::linalg::solvers::Solve;
    use faer::Mat;
    use tridiag::FactorParams;

    /// `apply` and `inverse_columns` against the dense `A^-1`, with groups
    /// of consecutive rows (solved in place), a group with a row apart
    /// (gathered, as a unit with a bias), and a 1x1 group: both paths
    /// (explicit inverses, factors alone) give the same answer.
    #[test]
    fn apply_matches_the_dense_inverse() {
        // Rows 0-2 and 3-5 consecutive; rows 6, 7 and 9 one group; row 8 alone.
        let groups: [&[usize]; 4] = [&[0, 1, 2], &[3, 4, 5], &[6, 7, 9], &[8]];
        let p = 10;
        let mut members = Ragged::with_capacity(p, groups.len());
        let mut dense = Mat::<f64>::zeros(p, p);
        let mut data = Vec::new();
        for (g, rows) in groups.iter().enumerate() {
            members.push(rows);
            let n = rows.len();
            // Symmetric indefinite and well conditioned.
            let b = Mat::<f64>::from_fn(n, n, |i, j| {
                if i == j {
                    [3.0, -2.5, 4.0][(i + g) % 3]
                } else {
                    0.3 / (1.0 + (i + j + g) as f64)
                }
            });
            for (i, &ri) in rows.iter().enumerate() {
                for (j, &rj) in rows.iter().enumerate() {
                    dense[(ri, rj)] = b[(i, j)];
                }
            }
            data.extend(b.col_iter().flat_map(|c| c.iter().copied().collect::<Vec<_>>()));
        }
        let sizes: Vec<usize> = groups.iter().map(|r| r.len()).collect();
        let ldlt = BlockDiagLdlt::factor_packed(data, &sizes, &FactorParams::default()).expect("factor");
        let projections: Vec<Option<Projection>> = groups.iter().map(|_| None).collect();
        let k = 3;
        let rhs = Mat::<f64>::from_fn(p, k, |i, j| ((i * 5 + j * 3) % 7) as f64 - 3.0);
        let oracle = dense.partial_piv_lu().solve(&rhs);
        // With explicit inverses, and with the factors alone.
        for explicit in [true, false] {
            let inverses =
                if explicit { inverses(&members, &projections, &ldlt).expect("inverses") } else { MatPack::default() };
            let solver = GroupSolver { inverses: &inverses, projections: &projections, ldlt: &ldlt, eps: 1.0 };
            let mut m = rhs.clone();
            let mut scratch = Scratch::new(members.widest(), k);
            solver.apply(&members, m.as_mut(), &mut scratch).expect("apply");
            // Well-conditioned 3x3 blocks: a few ulps.
            let err = (&m - &oracle).norm_max();
            assert!(err <= 1e-13 * oracle.norm_max(), "explicit {explicit}: {err:e}");
            // The leading columns of each group's inverse, copied from the
            // explicit inverse or solved for with the factors (a large
            // group's route), against the dense inverse's.
            let inv = dense.partial_piv_lu().solve(Mat::<f64>::identity(p, p));
            for (g, rows) in groups.iter().enumerate() {
                for k in 1..=rows.len() {
                    let mut out = Mat::<f64>::from_fn(rows.len(), k, |_, _| f64::NAN);
                    solver.inverse_columns(g, out.as_mut()).expect("inverse columns");
                    let want = Mat::<f64>::from_fn(rows.len(), k, |i, j| inv[(rows[i], rows[j])]);
                    let err = (&out - &want).norm_max();
                    assert!(err <= 1e-13 * want.norm_max(), "explicit {explicit}, group {g}, {k} columns: {err:e}");
                }
            }
        }
    }
}
