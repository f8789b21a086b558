//! Iterative refinement against the caller's own operator.

use faer::{Mat, MatMut, MatRef};

use super::BlockLdlt;
use crate::error::TridiagError;
use crate::params::{RefineParams, RefineReport};

impl BlockLdlt {
    /// Solves `S x = rhs` and refines `x` with residuals computed by
    /// `apply(x, out)`, which must overwrite `out` (`dim x k`, zeroed on entry)
    /// with `S x` for the operator `S` that was factored (or a nearby one:
    /// refinement then converges to the solution of the operator applied).
    ///
    /// Stops when every column's backward error
    /// `||S x - b||_2 / (||S||_F ||x||_2 + ||b||_2)` is at most the target, or
    /// after `max_iterations` corrections; the best iterate is returned.
    ///
    /// # Errors
    /// As [`BlockLdlt::solve_in_place`].
    pub fn solve_refined(
        &self,
        rhs: MatRef<'_, f64>,
        apply: impl Fn(MatRef<'_, f64>, MatMut<'_, f64>),
        params: &RefineParams,
    ) -> Result<(Mat<f64>, RefineReport), TridiagError> {
        let mut x = self.solve(rhs)?;
        let mut resid = Mat::<f64>::zeros(rhs.nrows(), rhs.ncols());
        let mut err = self.residual(rhs, x.as_ref(), &apply, &mut resid);
        let mut iterations = 0;
        while err > params.target_backward_error && iterations < params.max_iterations {
            iterations += 1;
            self.solve_in_place(resid.as_mut())?;
            let candidate = &x + &resid;
            let cand_err = self.residual(rhs, candidate.as_ref(), &apply, &mut resid);
            // Refinement in working precision stalls at the rounding level;
            // a step that does not help is the signal to stop (`residual`
            // never returns NaN).
            if cand_err >= err {
                break;
            }
            x = candidate;
            err = cand_err;
        }
        let converged = err <= params.target_backward_error;
        Ok((x, RefineReport { iterations, backward_error: err, converged }))
    }

    /// Writes `b - S x` into `resid` and returns the largest column backward error.
    fn residual(
        &self,
        b: MatRef<'_, f64>,
        x: MatRef<'_, f64>,
        apply: &impl Fn(MatRef<'_, f64>, MatMut<'_, f64>),
        resid: &mut Mat<f64>,
    ) -> f64 {
        resid.fill(0.0);
        apply(x, resid.as_mut());
        let mut worst = 0.0f64;
        for j in 0..b.ncols() {
            let mut rn = 0.0;
            for i in 0..b.nrows() {
                let r = b[(i, j)] - resid[(i, j)];
                resid[(i, j)] = r;
                rn += r * r;
            }
            let denom = self.norm_fro * x.col(j).norm_l2() + b.col(j).norm_l2();
            let e = if denom > 0.0 { rn.sqrt() / denom } else { rn.sqrt() };
            // NaN must not look like convergence.
            worst = if e.is_nan() { f64::INFINITY } else { worst.max(e) };
        }
        worst
    }
}
