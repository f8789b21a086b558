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
//! alone. Measured on the demo network: docs/numerics.md, "Shifted solves".
//!
//! MINRES only reaches a relative residual of about `1e-10` in the
//! preconditioned norm, so it runs as the inner solver of a refinement
//! with the exact Hessian-vector product: each outer step measures the
//! true residual `b - A x` and its backward error against `A`, as
//! [`Factorization::solve_with`] does.

use faer::{Mat, MatRef};

use super::solve::operator_norm_estimate;
use super::{Factorization, Solution, SolveMethod, SolveOptions, SolveReport};
use crate::curvature::hvp_many;
use crate::error::{check_vector, HinvError, Result};

/// Each inner MINRES run stops once its (preconditioned) residual has
/// shrunk by this factor: each outer step then gains about ten digits, so
/// two steps usually reach the default tolerance; a tighter target would
/// only fight the rounding of the preconditioner's own solves.
const INNER_RTOL: f64 = 1e-10;

/// Outer refinement aims this many times below the tolerance, as
/// [`Factorization::solve_with`] does, so that the forward error is that
/// of a solve with a fresh factorization.
const REFINE_MARGIN: f64 = 16.0;

/// Most solves with the factorization per right-hand side before
/// [`HinvError::ShiftTooFar`]. One preconditioned iteration costs one
/// refined solve with the factors (a block sweep and an HVP or two); a
/// fresh factorization of the demo network costs about as much as
/// 20 to 40 of them (docs/numerics.md, "Shifted solves"), so beyond this
/// budget refactoring at `eps'` is the cheaper and more accurate answer.
pub const SHIFT_BUDGET: usize = 60;

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
    /// MINRES on `(H + eps I)^-1 (H + eps' I)`, each iteration one solve
    /// with these factors, inside a refinement with the exact
    /// Hessian-vector product (module docs). The accuracy contract is
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
        while out.backward_error > aim && steps < opts.max_refinements.max(1) && out.solves < SHIFT_BUDGET {
            let (d, used, inner) = self.minres_shifted(&r, shifted_eps - self.eps, SHIFT_BUDGET - out.solves)?;
            out.solves += used;
            out.exhausted |= inner == Inner::Exhausted;
            steps += 1;
            let cand: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a + b).collect();
            let hx = hvp_many(&self.derivs, MatRef::from_column_major_slice(&cand, n, 1))?;
            let cand_r: Vec<f64> = (0..n).map(|i| b[i] - hx[(i, 0)] - shifted_eps * cand[i]).collect();
            let be = backward_error(&cand_r, &cand);
            if out.initial_backward_error.is_nan() {
                out.initial_backward_error = be;
            }
            // As in solve_with: only a step that shrinks the residual
            // itself is progress.
            if l2(&cand_r).partial_cmp(&l2(&r)) != Some(std::cmp::Ordering::Less) {
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
    fn minres_shifted(&self, r: &[f64], delta: f64, max_solves: usize) -> Result<(Vec<f64>, usize, Inner)> {
        let n = r.len();
        // The factors are applied to within the default backward error
        // (refined): a rougher operator would break the symmetry the
        // Lanczos recurrence relies on. A near-singular `K` still returns
        // its best solution, and the outer refinement judges the result.
        let inner = SolveOptions { accept_inexact: true, ..SolveOptions::default() };
        let mut solves = 0;
        let mut kinv = |v: &[f64]| -> Result<Vec<f64>> {
            solves += 1;
            let s = self.solve_with(MatRef::from_column_major_slice(v, n, 1), &inner)?;
            Ok(s.x.col(0).iter().copied().collect())
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
