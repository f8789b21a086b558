//! [`Factorization::solve_shifted`]: solves with `H + eps' I`, using the
//! factorization of `H + eps I` as a preconditioner.
//!
//! Write `K = H + eps I` and `A = H + eps' I = K + delta I`. Both are
//! polynomials in `H`, so they commute and `K^-1 A = I + delta K^-1` is
//! symmetric, with eigenvalues `(lambda_i + eps') / (lambda_i + eps)`.
//! Plain iterative refinement, `x += K^-1 (b - A x)`, is the Richardson
//! iteration on that operator: its error shrinks by
//! `rho = |delta| / min_i |lambda_i + eps|` per step and it diverges for
//! `rho >= 1`, which a shift of the size of the smallest eigenvalue of
//! `K` already reaches. MINRES on `K^-1 A d = K^-1 r` uses the same one
//! solve with the factors per iteration, minimises the residual over the
//! Krylov space that contains every Richardson iterate, and converges for
//! any nonsingular `A` (the operator may be indefinite: eigenvalues of `H`
//! between `-eps'` and `-eps` give it negative eigenvalues, which rules out
//! CG). Its speed depends on how the ratios above cluster, not on `rho`
//! alone. Measured (`cargo run -p hinv --example shifted_study`,
//! docs/numerics.md, "Shifted solves"): at rho = 0.14 refinement needs 9
//! solves and MINRES 12, at rho = 0.7 refinement 57 and MINRES 21, and
//! from rho = 1.4 on refinement diverges while MINRES converges up to
//! rho = 7 (demo network) within [`SHIFT_BUDGET`]. One method that works
//! on both sides of rho = 1 is worth the few extra solves at small rho.
//!
//! MINRES runs as the inner solver of a refinement with the exact
//! Hessian-vector product: it only brings the residual in the
//! preconditioned norm down by [`INNER_RTOL`] (its recurrences drift with
//! the rounding of the preconditioner's solves), and each outer step
//! measures the true residual `b - A x` and its backward error against
//! `A`, as [`Factorization::solve_with`] does, so the accuracy contract is
//! the same. That also lets the inner iteration apply `K^-1` by one raw
//! sweep of the block LDLᵀ (no HVP, no refinement), about a third of a
//! refined solve: it solves with a slightly perturbed `K`, which only
//! slows the outer steps; where it slows them below a digit per step
//! (block growth), the refined solves take over.

use faer::{Mat, MatRef};

use super::solve::operator_norm_estimate;
use super::{Factorization, Solution, SolveMethod, SolveOptions, SolveReport};
use crate::curvature::hvp_many;
use crate::error::{check_vector, HinvError, Result};

/// Each inner MINRES run stops once its (preconditioned) residual has
/// shrunk by this factor, and the outer refinement with the exact HVP
/// takes it from there: two outer steps usually reach the default
/// tolerance. Measured with `cargo run -p hinv --example shifted_study`
/// (solves with the factors on the shallower demo network at rho 0.14 /
/// 1.4 / 7): 1e-4: 15 / 21 / 44; 1e-6: 12 / 18 / 42; 1e-8: 14 / 20 / 35;
/// 1e-10: 16 / 24 / 41; 1e-13: 9 / 14 / 48 (a tight target sometimes
/// saves an outer step, sometimes stalls on the rounding of the
/// preconditioner's solves). Measured with refined solves as the
/// preconditioner; raw sweeps gave the same counts at 1e-6.
const INNER_RTOL: f64 = 1e-6;

/// An outer step with raw block sweeps must shrink the true residual at
/// least this much, or the rest of the solve uses refined solves: MINRES
/// brings its own residual down by [`INNER_RTOL`], so a step that gains
/// less than one digit is limited by the sweeps' accuracy, not by the
/// shift.
const RAW_MIN_CONTRACTION: f64 = 0.1;

/// Outer refinement aims this many times below the tolerance, as
/// [`Factorization::solve_with`] does, so that the forward error is that
/// of a solve with a fresh factorization.
const REFINE_MARGIN: f64 = 16.0;

/// Most solves with the factorization per right-hand side before
/// [`HinvError::ShiftTooFar`]. The shifts that converge in
/// `cargo run -p hinv --example shifted_study` need 12 to 21 solves (36
/// for a shift at rho = 3 in tests/it/shifted.rs); 40 raw block sweeps (plus
/// the outer steps' HVPs) cost 0.3 to 1 times a fresh factorization and
/// solve on the networks measured there (docs/numerics.md, "Shifted
/// solves"), so a refusal costs at most about one refactorization, and
/// the error then says to refactor rather than iterate on.
pub const SHIFT_BUDGET: usize = 40;

/// One column's outcome.
struct Column {
    x: Vec<f64>,
    backward_error: f64,
    initial_backward_error: f64,
    solves: usize,
    /// Some inner run used up the budget before converging.
    exhausted: bool,
}

impl Factorization {
    /// `(H + shifted_eps I)^-1 G`, preconditioned by this factorization of
    /// `H + eps I`: for a nearby shift (a damping schedule, a
    /// Levenberg–Marquardt or trust-region update of `eps`) without a new
    /// factorization.
    ///
    /// MINRES on `(H + eps I)^-1 (H + eps' I)`, each iteration one sweep
    /// of the block LDLᵀ (refined solves where the sweeps lose accuracy),
    /// inside a refinement with the exact Hessian-vector product (module
    /// docs). The accuracy contract is
    /// [`Factorization::solve_with`]'s: every column reaches a normwise
    /// backward error against `H + eps' I` of at most `opts.tolerance`, or
    /// the call fails, unless `opts.accept_inexact` (then
    /// [`SolveReport::within_tolerance`] says so). `opts.max_refinements`
    /// bounds the outer steps (at least one is taken);
    /// [`SolveReport::refinements`] counts the solves with the
    /// factorization, at most [`SHIFT_BUDGET`] per column.
    ///
    /// How far the shift may go depends on the spectrum, not on
    /// `|eps' - eps|` alone: with `rho = |eps' - eps| / min_i |lambda_i +
    /// eps|`, `rho < 1` converges in a few iterations, and beyond that
    /// MINRES still converges quickly while few eigenvalues lie near
    /// `-eps` (measurements in docs/numerics.md).
    ///
    /// # Errors
    /// [`HinvError::ShiftTooFar`] when the budget runs out before the
    /// tolerance (factor at `eps'` instead);
    /// [`HinvError::IllConditioned`] (with `eps = shifted_eps`) when the
    /// iteration converged but stalled above the tolerance, as a fresh
    /// factorization would; [`HinvError::InvalidNumber`] for a shift or
    /// tolerance that is not finite; shape and finiteness errors of `G`;
    /// the errors of [`Factorization::solve_with`] (a singular `H + eps I`
    /// cannot precondition).
    ///
    /// # Example
    /// ```
    /// use hinv::{Curvature, SolveMethod, SolveOptions};
    /// use netgraph::{Activation, Batch, Network};
    ///
    /// let net = Network::builder(3).dense(4, Activation::Tanh).repeat(2).cross_entropy(2)?;
    /// let curv = Curvature::new(&net, &net.init_params(0), &Batch::random_classification(3, 2, 5, 1))?;
    /// let g = curv.gradient();
    /// let f = curv.factor(1e-1)?;
    /// // (H + 0.12 I)^-1 g with the factors of H + 0.1 I.
    /// let s = f.solve_shifted(0.12, faer::MatRef::from_column_major_slice(g, g.len(), 1), &SolveOptions::default())?;
    /// assert_eq!(s.report.method, SolveMethod::Shifted);
    /// assert!(s.report.backward_error <= SolveOptions::default().tolerance);
    /// // The residual against H + 0.12 I, by the exact HVP.
    /// let x: Vec<f64> = s.x.col(0).iter().copied().collect();
    /// let hx = curv.hvp(&x)?;
    /// let r = (0..x.len()).map(|i| (g[i] - hx[i] - 0.12 * x[i]).powi(2)).sum::<f64>().sqrt();
    /// let g_norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    /// assert!(r <= 1e-12 * g_norm);
    /// # Ok::<(), hinv::HinvError>(())
    /// ```
    pub fn solve_shifted(&self, shifted_eps: f64, g: MatRef<'_, f64>, opts: &SolveOptions) -> Result<Solution> {
        if !(opts.tolerance.is_finite() && opts.tolerance > 0.0) {
            return Err(HinvError::InvalidNumber {
                what: "the solve tolerance",
                value: opts.tolerance,
                expected: "a finite backward error above 0 (e.g. 1.4e-14, the default)",
            });
        }
        if !shifted_eps.is_finite() {
            return Err(HinvError::InvalidNumber {
                what: "the shifted eps",
                value: shifted_eps,
                expected: "a finite number",
            });
        }
        check_vector("the right-hand side", g, self.num_params())?;
        // `||H + eps' I||` for the backward error, as solve_with measures it.
        let norm = operator_norm_estimate(&self.derivs, shifted_eps)?;
        let mut x = Mat::zeros(g.nrows(), g.ncols());
        let (mut worst, mut initial, mut solves, mut exhausted) = (0.0f64, 0.0f64, 0, false);
        for j in 0..g.ncols() {
            let col = self.shifted_column(g.col(j).iter().copied().collect(), shifted_eps, norm, opts)?;
            for (i, v) in col.x.iter().enumerate() {
                x[(i, j)] = *v;
            }
            worst = worst.max(col.backward_error);
            initial = initial.max(col.initial_backward_error);
            solves += col.solves;
            exhausted |= col.exhausted;
        }
        let within_tolerance = worst <= opts.tolerance;
        if !within_tolerance && !opts.accept_inexact {
            return Err(if exhausted {
                HinvError::ShiftTooFar {
                    eps: self.eps,
                    shifted_eps,
                    backward_error: worst,
                    tolerance: opts.tolerance,
                    iterations: solves,
                }
            } else {
                HinvError::IllConditioned {
                    eps: shifted_eps,
                    backward_error: worst,
                    tolerance: opts.tolerance,
                    iterations: solves,
                }
            });
        }
        let report = SolveReport {
            method: SolveMethod::Shifted,
            refinements: solves,
            initial_backward_error: initial,
            backward_error: worst,
            within_tolerance,
        };
        Ok(Solution { x, report })
    }

    /// Refinement of one column with MINRES corrections.
    fn shifted_column(&self, b: Vec<f64>, shifted_eps: f64, norm: f64, opts: &SolveOptions) -> Result<Column> {
        let n = b.len();
        let b_norm = l2(&b);
        let mut x = vec![0.0; n];
        let mut r = b.clone();
        let backward_error = |r: &[f64], x: &[f64]| {
            let denom = norm * l2(x) + b_norm;
            let be = if denom > 0.0 { l2(r) / denom } else { 0.0 };
            if be.is_nan() {
                f64::INFINITY
            } else {
                be
            }
        };
        let mut out = Column {
            x: Vec::new(),
            backward_error: backward_error(&r, &x),
            initial_backward_error: f64::NAN,
            solves: 0,
            exhausted: false,
        };
        let aim = opts.tolerance / REFINE_MARGIN;
        let mut steps = 0;
        let mut precond = if self.ldlt_broke_down() { Precond::Refined } else { Precond::Raw };
        while out.backward_error > aim && steps < opts.max_refinements.max(1) && out.solves < SHIFT_BUDGET {
            let left = SHIFT_BUDGET - out.solves;
            let (d, used, inner) = match self.minres_shifted(&r, shifted_eps - self.eps, left, precond) {
                // Raw block sweeps that overflow: the refined solves fall
                // back to the pivoted elimination.
                Err(HinvError::Overflow { .. }) if precond == Precond::Raw => {
                    precond = Precond::Refined;
                    continue;
                }
                other => other?,
            };
            out.solves += used;
            out.exhausted |= inner == Inner::Exhausted;
            if used == 0 {
                break;
            }
            steps += 1;
            let cand: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a + b).collect();
            let hx = hvp_many(&self.derivs, MatRef::from_column_major_slice(&cand, n, 1))?;
            let cand_r: Vec<f64> = (0..n).map(|i| b[i] - hx[(i, 0)] - shifted_eps * cand[i]).collect();
            let be = backward_error(&cand_r, &cand);
            if out.initial_backward_error.is_nan() {
                out.initial_backward_error = be;
            }
            let contraction = l2(&cand_r) / l2(&r);
            // Raw sweeps solve a slightly different `K`: when that costs
            // more than a factor RAW_MIN_CONTRACTION per outer step (block
            // growth, docs/numerics.md), go on with refined solves. (An
            // inner run that used up the budget explains a poor step by
            // itself.)
            let was_raw = precond == Precond::Raw;
            if was_raw && inner != Inner::Exhausted && (contraction.is_nan() || contraction > RAW_MIN_CONTRACTION) {
                precond = Precond::Refined;
            }
            // As in solve_with: only a step that shrinks the residual
            // itself is progress. After raw sweeps, refined solves get
            // their turn; an exhausted budget ends the loop.
            let progress = contraction < 1.0;
            if !progress {
                if was_raw || inner == Inner::Exhausted {
                    continue;
                }
                break;
            }
            (x, r, out.backward_error) = (cand, cand_r, be);
        }
        if out.initial_backward_error.is_nan() {
            out.initial_backward_error = out.backward_error;
        }
        out.x = x;
        Ok(out)
    }

    /// MINRES ([`crate::minres`]) for `A d = r` on the symmetric operator
    /// `T = K^-1 A = I + delta K^-1` and right-hand side `K^-1 r`, with at
    /// most `max_solves` solves with the factors. Returns the correction,
    /// the solves used and whether the preconditioned residual shrank by
    /// [`INNER_RTOL`], or else whether the budget ran out.
    fn minres_shifted(
        &self,
        r: &[f64],
        delta: f64,
        max_solves: usize,
        precond: Precond,
    ) -> Result<(Vec<f64>, usize, Inner)> {
        let n = r.len();
        // Refined solves apply the factors to within the default backward
        // error; a near-singular `K` still returns its best solution, and
        // the outer refinement judges the result.
        let refined = SolveOptions { accept_inexact: true, ..SolveOptions::default() };
        let mut solves = 0;
        let mut kinv = |v: &[f64]| -> Result<Vec<f64>> {
            solves += 1;
            let v = MatRef::from_column_major_slice(v, n, 1);
            let x = match precond {
                Precond::Raw => self.solve_ldlt(v)?,
                Precond::Refined => self.solve_with(v, &refined)?.x,
            };
            Ok(x.col(0).iter().copied().collect())
        };
        // One solve for the right-hand side and one for minres's final
        // true residual.
        if max_solves < 3 {
            return Ok((vec![0.0; n], 0, Inner::Exhausted));
        }
        let c = kinv(r)?;
        let max_iter = max_solves - 2;
        let rep = crate::krylov::minres(
            |v| Ok(v.iter().zip(kinv(v)?).map(|(v, kv)| v + delta * kv).collect()),
            &c,
            INNER_RTOL,
            max_iter,
        )?;
        let outcome = if rep.converged {
            Inner::Converged
        } else if rep.iterations >= max_iter {
            Inner::Exhausted
        } else {
            Inner::Stalled
        };
        Ok((rep.x, solves, outcome))
    }
}

/// How the factors are applied inside MINRES.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precond {
    /// One sweep of the block LDLᵀ (no HVP): the cheap default. It
    /// solves with a slightly perturbed `K`, which the inner MINRES does
    /// not see and the outer refinement corrects.
    Raw,
    /// [`Factorization::solve_with`]: refined with the HVP, and the
    /// pivoted elimination where the block LDLᵀ broke down or lost
    /// accuracy; about three times the cost of a raw sweep.
    Refined,
}

/// How an inner MINRES run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inner {
    Converged,
    /// It stopped early short of its target (rounding, or a singular `A`).
    Stalled,
    /// The budget of solves ran out.
    Exhausted,
}

fn l2(a: &[f64]) -> f64 {
    crate::krylov::norm(a)
}
