//! The generalized Gauss–Newton curvature `GGN = J^T Lambda J` and its two
//! exact routes: the lifted block-tridiagonal system (the Hessian's, with
//! the Gauss–Newton blocks of `netgraph::ggn`) and the Woodbury route
//! through the explicit `a_o x p` Jacobian (`a_o` = batch x outputs), which
//! is cheaper when `a_o` is small next to the layers' blocks.
//!
//! With `U = J^T R` (`Lambda = R R^T`, so `GGN = U U^T`) and
//! `K = delta I + U^T U` (`a_o x a_o`, Cholesky `K = L L^T`):
//!
//! - `(GGN + delta I)^-1 = (I - U K^-1 U^T) / delta`;
//! - `log det(GGN + delta I) = (p - a_o) log delta + 2 sum log L_ii`
//!   (the matrix determinant lemma, `det(delta I_p + U U^T) =
//!   delta^(p - a_o) det(K)`).
//!
//! Both only ever touch `U`, never `Lambda^-1` (singular for softmax).

use std::sync::Arc;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par, Side};
use serde::Serialize;
use tridiag::{Inertia, SignedLogDet};

use crate::curvature::Curvature;
use crate::error::{check_vector, DenseFailure, DenseMatrix, HinvError, Result};
use crate::factor::{Elimination, FactorOptions, Factorization, Solution, SolveMethod, SolveOptions, SolveReport};

/// Which curvature a [`Curvature`] holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CurvatureKind {
    /// The Hessian of the batch loss (the default).
    #[default]
    Hessian,
    /// The generalized Gauss–Newton matrix `J^T Lambda J` (for softmax
    /// cross-entropy, the Fisher), positive semi-definite.
    #[serde(rename = "ggn")]
    GaussNewton,
}

impl std::fmt::Display for CurvatureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CurvatureKind::Hessian => "Hessian",
            CurvatureKind::GaussNewton => "Gauss-Newton",
        })
    }
}

impl std::str::FromStr for CurvatureKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "hessian" | "h" => Ok(CurvatureKind::Hessian),
            "ggn" | "gauss-newton" | "gaussnewton" | "fisher" => Ok(CurvatureKind::GaussNewton),
            _ => Err(format!("`{s}` is not a curvature: use hessian or ggn")),
        }
    }
}

/// An exact route to `(C + delta I)^-1` and its determinant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// The lifted block-tridiagonal system, factored layer by layer.
    Lifted,
    /// The Woodbury identity through the explicit Jacobian (Gauss–Newton,
    /// `delta > 0` only).
    Woodbury,
}

/// Predicted costs (floating-point operations) of the two routes, for one
/// factorization and its determinant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RouteCosts {
    /// The lifted route: per layer `n_l^3` with `n_l = p_l + 2 a_l` (the
    /// block LDLᵀ, `n^3/3`, plus the pivoted elimination that gives the
    /// determinant, about `2 n^3 / 3`).
    pub lifted: f64,
    /// The Woodbury route: the Jacobian (`2 a_l p_l a_o` per layer, unless
    /// already formed), `U^T U` (`p a_o^2`) and its Cholesky (`a_o^3 / 3`).
    /// `None` for the Hessian.
    pub woodbury: Option<f64>,
}

impl RouteCosts {
    /// The cheaper route.
    pub fn cheaper(&self) -> Route {
        match self.woodbury {
            Some(w) if w < self.lifted => Route::Woodbury,
            _ => Route::Lifted,
        }
    }
}

/// `delta I + U U^T` factored by the Woodbury identity; see the module
/// documentation.
#[derive(Debug)]
pub struct WoodburyFactorization {
    u: Arc<Mat<f64>>,
    /// Lower Cholesky factor of `K = delta I + U^T U`.
    l: Mat<f64>,
    delta: f64,
    /// `||GGN + delta I||_2 = delta + lambda_max(U^T U)`.
    norm: f64,
}

impl WoodburyFactorization {
    fn new(u: Arc<Mat<f64>>, delta: f64) -> Result<WoodburyFactorization> {
        if !(delta.is_finite() && delta > 0.0) {
            return Err(HinvError::InvalidNumber {
                what: "the shift of the Woodbury route",
                value: delta,
                expected: "a finite number above 0 (use the lifted route otherwise)",
            });
        }
        let ao = u.ncols();
        let mut k = Mat::<f64>::zeros(ao, ao);
        matmul(k.as_mut(), Accum::Replace, u.transpose(), u.as_ref(), 1.0, Par::Seq);
        let mu_max = if ao == 0 {
            0.0
        } else {
            k.self_adjoint_eigenvalues(Side::Lower)
                .map_err(|_| HinvError::Dense {
                    matrix: DenseMatrix::WoodburyGram,
                    n: ao,
                    failure: DenseFailure::NoConvergence,
                })?
                .into_iter()
                .fold(0.0f64, f64::max)
        };
        for i in 0..ao {
            k[(i, i)] += delta;
        }
        // K = delta I + U^T U has every eigenvalue >= delta > 0, so the
        // Cholesky factorization exists in exact arithmetic; it fails only
        // where delta is below the rounding of U^T U (K numerically
        // singular), and then this route cannot give an answer.
        let llt = k.llt(Side::Lower).map_err(|_| HinvError::IllConditioned {
            eps: delta,
            backward_error: f64::INFINITY,
            tolerance: SolveOptions::default().tolerance,
            iterations: 0,
        })?;
        Ok(WoodburyFactorization { l: llt.L().to_owned(), u, delta, norm: delta + mu_max })
    }

    /// `delta`.
    pub fn eps(&self) -> f64 {
        self.delta
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.u.nrows()
    }

    /// `(delta I + U U^T) x`, the exact product.
    fn apply(&self, x: MatRef<'_, f64>) -> Mat<f64> {
        let ao = self.u.ncols();
        let mut t = Mat::<f64>::zeros(ao, x.ncols());
        matmul(t.as_mut(), Accum::Replace, self.u.transpose(), x, 1.0, Par::Seq);
        let mut y = x.to_owned() * faer::Scale(self.delta);
        matmul(y.as_mut(), Accum::Add, self.u.as_ref(), t.as_ref(), 1.0, Par::Seq);
        y
    }

    /// `(I - U K^-1 U^T) g / delta`.
    fn apply_inverse(&self, g: MatRef<'_, f64>) -> Mat<f64> {
        let ao = self.u.ncols();
        let mut t = Mat::<f64>::zeros(ao, g.ncols());
        matmul(t.as_mut(), Accum::Replace, self.u.transpose(), g, 1.0, Par::Seq);
        let l = self.l.as_ref();
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(l, t.as_mut(), Par::Seq);
        faer::linalg::triangular_solve::solve_upper_triangular_in_place(l.transpose(), t.as_mut(), Par::Seq);
        let mut x = g.to_owned();
        matmul(x.as_mut(), Accum::Add, self.u.as_ref(), t.as_ref(), -1.0, Par::Seq);
        x * faer::Scale(1.0 / self.delta)
    }

    fn backward_error(&self, g: MatRef<'_, f64>, x: MatRef<'_, f64>) -> (Mat<f64>, f64) {
        let ax = self.apply(x);
        let r = Mat::from_fn(g.nrows(), g.ncols(), |i, j| g[(i, j)] - ax[(i, j)]);
        let worst = crate::factor::backward_error(g, x, r.as_ref(), self.norm);
        (r, worst)
    }

    /// `(GGN + delta I)^-1 G` for a matrix of right-hand sides, refined with
    /// the exact product `delta x + U (U^T x)` until the backward error meets
    /// `opts.tolerance` (as [`Factorization::solve_with`]).
    pub fn solve_with(&self, g: MatRef<'_, f64>, opts: &SolveOptions) -> Result<Solution> {
        check_vector("the right-hand side", g, self.num_params())?;
        let mut x = self.apply_inverse(g);
        let (mut r, mut be) = self.backward_error(g, x.as_ref());
        let initial = be;
        let mut refinements = 0;
        while be > opts.tolerance / 16.0 && refinements < opts.max_refinements {
            let xn = &x + &self.apply_inverse(r.as_ref());
            let (rn, ben) = self.backward_error(g, xn.as_ref());
            refinements += 1;
            // backward_error maps NaN to infinity, so this also stops on NaN.
            if ben >= be {
                break;
            }
            (x, r, be) = (xn, rn, ben);
        }
        let within = be <= opts.tolerance;
        if !within && !opts.accept_inexact {
            return Err(HinvError::IllConditioned {
                eps: self.delta,
                backward_error: be,
                tolerance: opts.tolerance,
                iterations: refinements,
            });
        }
        let report = SolveReport {
            method: SolveMethod::Woodbury,
            refinements,
            initial_backward_error: initial,
            backward_error: be,
            within_tolerance: within,
        };
        Ok(Solution { x, report })
    }

    /// `log det(GGN + delta I)` by the determinant lemma (always positive
    /// definite: sign +1), accurate to about `u cond(K)` relative.
    pub fn log_det(&self) -> SignedLogDet {
        let (p, ao) = (self.u.nrows() as f64, self.u.ncols() as f64);
        let chol: f64 = (0..self.l.nrows()).map(|i| self.l[(i, i)].ln()).sum();
        SignedLogDet { log_abs: (p - ao) * self.delta.ln() + 2.0 * chol, sign: 1.0 }
    }

    /// The inertia of `GGN + delta I = delta I + U U^T`: all `p` eigenvalues
    /// are at least `delta > 0` for the `U` this factorization holds (a sum
    /// of a positive multiple of the identity and a Gram matrix), so the
    /// count is certain by construction.
    pub fn inertia(&self) -> Inertia {
        Inertia { positive: self.num_params(), negative: 0, zero: 0, uncertain: 0 }
    }
}

/// A factorization of `C + eps I` by one of the exact routes.
#[derive(Debug)]
pub struct CurvatureFactor {
    inner: Inner,
    /// The curvature is a Gauss–Newton matrix (positive semi-definite by
    /// construction).
    psd: bool,
}

#[derive(Debug)]
enum Inner {
    Lifted(Box<Factorization>),
    Woodbury(WoodburyFactorization),
}

impl CurvatureFactor {
    /// Which route.
    pub fn route(&self) -> Route {
        match &self.inner {
            Inner::Lifted(_) => Route::Lifted,
            Inner::Woodbury(_) => Route::Woodbury,
        }
    }
    /// The lifted factorization, when that route was taken.
    pub fn as_lifted(&self) -> Option<&Factorization> {
        match &self.inner {
            Inner::Lifted(f) => Some(f),
            Inner::Woodbury(_) => None,
        }
    }
    /// The shift `eps`.
    pub fn eps(&self) -> f64 {
        match &self.inner {
            Inner::Lifted(f) => f.eps(),
            Inner::Woodbury(f) => f.eps(),
        }
    }
    /// `(C + eps I)^-1 G` with a report; see [`Factorization::solve_with`].
    pub fn solve_with(&self, g: MatRef<'_, f64>, opts: &SolveOptions) -> Result<Solution> {
        match &self.inner {
            Inner::Lifted(f) => f.solve_with(g, opts),
            Inner::Woodbury(f) => f.solve_with(g, opts),
        }
    }
    /// `(C + eps I)^-1 g` for one vector, at the default tolerance.
    pub fn solve(&self, g: &[f64]) -> Result<Vec<f64>> {
        let s = self.solve_with(MatRef::from_column_major_slice(g, g.len(), 1), &SolveOptions::default())?;
        Ok(s.x.col(0).iter().copied().collect())
    }
    /// `log|det(C + eps I)|` and its sign.
    pub fn log_det(&self) -> Result<SignedLogDet> {
        match &self.inner {
            Inner::Lifted(f) => f.log_det(),
            Inner::Woodbury(f) => Ok(f.log_det()),
        }
    }
    /// The inertia of `C + eps I`, with its certificate.
    ///
    /// For a Gauss–Newton curvature and `eps > 0` the answer is known by
    /// construction: `J^T Lambda J + eps I` with `Lambda_s` positive
    /// semi-definite has every eigenvalue at least `eps` (up to the rounding
    /// of forming `Lambda`, `O(u ||GGN||)`, which the condition
    /// `eps >= 64 u ||GGN + eps I||` dominates). The lifted factorization's
    /// own count is then only checked for consistency (no negative or zero
    /// pivot beyond its uncertain ones), and its uncertainty, which comes
    /// from the cluster of zero eigenvalues of `GGN` near `-eps`, is lifted.
    pub fn inertia(&self) -> Inertia {
        self.certified(false)
    }

    /// [`CurvatureFactor::inertia`] without a second elimination (see
    /// [`Factorization::inertia_from_pivots`]).
    pub fn inertia_from_pivots(&self) -> Inertia {
        self.certified(true)
    }

    fn certified(&self, from_pivots: bool) -> Inertia {
        let i = match &self.inner {
            Inner::Lifted(f) if from_pivots => f.inertia_from_pivots(),
            Inner::Lifted(f) => f.inertia(),
            Inner::Woodbury(f) => f.inertia(),
        };
        let eps = self.eps();
        let p = i.positive + i.negative + i.zero;
        let consistent = i.negative <= i.uncertain && i.zero <= i.uncertain;
        if !(self.psd && eps > 0.0 && consistent) {
            return i;
        }
        // Only the PSD shortcut needs the norm: on the lifted route its
        // estimate costs 8 products with the curvature, as much as a
        // refined solve (a Hessian's inertia never takes the shortcut).
        let norm = match &self.inner {
            // Without a norm (an overflow) the shortcut is not taken.
            Inner::Lifted(f) => f.norm_estimate().unwrap_or(f64::INFINITY),
            Inner::Woodbury(f) => f.norm,
        };
        if eps >= 64.0 * f64::EPSILON * norm {
            return Inertia { positive: p, negative: 0, zero: 0, uncertain: 0 };
        }
        i
    }
}

impl Curvature {
    /// `U = J^T R` (`p x a_o`, `GGN = U U^T`), formed once and kept;
    /// `None` for the Hessian.
    pub fn ggn_factor_u(&self) -> Result<Option<Arc<Mat<f64>>>> {
        let Some(g) = self.ggn_parts() else { return Ok(None) };
        if let Some(u) = g.u.get() {
            return Ok(Some(Arc::clone(u)));
        }
        let jt = self.ggn_jacobian_t()?.unwrap_or_else(|| Mat::zeros(0, 0));
        // U = J^T R with R = diag(R_s) block-diagonal over the samples: one
        // small product per sample, written straight into U's columns.
        let roots = &g.output.lambda_sqrt;
        let rows: usize = roots.iter().map(|r| r.nrows()).sum();
        let cols: usize = roots.iter().map(|r| r.ncols()).sum();
        if rows != jt.ncols() {
            return Err(HinvError::InconsistentBlocks {
                layer: self.num_layers(),
                block: "R (the square root of Lambda over all samples)",
                expected: (jt.ncols(), cols),
                found: (rows, cols),
            });
        }
        let mut u = Mat::<f64>::zeros(jt.nrows(), cols);
        let (mut row, mut col) = (0, 0);
        for r in roots {
            let (k, c) = (r.nrows(), r.ncols());
            matmul(
                u.as_mut().subcols_mut(col, c),
                Accum::Replace,
                jt.as_ref().subcols(row, k),
                r.as_ref(),
                1.0,
                Par::Seq,
            );
            (row, col) = (row + k, col + c);
        }
        Ok(Some(Arc::clone(g.u.get_or_init(|| Arc::new(u)))))
    }

    /// `J^T` (`p x a_o`), the Jacobian of the loss layer's outputs on the
    /// batch, for a Gauss–Newton curvature; `None` for the Hessian.
    pub fn ggn_jacobian_t(&self) -> Result<Option<Mat<f64>>> {
        let Some(g) = self.ggn_parts() else { return Ok(None) };
        let d = self.derivatives();
        Ok(Some(netgraph::ggn::jacobian_t(&d.layers, &d.param_sizes, &g.output)?))
    }

    /// The predicted cost of each route (see [`RouteCosts`]).
    pub fn route_costs(&self) -> RouteCosts {
        let d = self.derivatives();
        let nl = d.layers.len();
        let mut lifted = 0.0;
        for l in 0..nl {
            let n = (d.param_sizes[l] + 2 * d.act_sizes[l + 1]) as f64;
            lifted += n * n * n;
        }
        let woodbury = self.ggn_parts().map(|g| {
            let ao = g.output.len() as f64;
            let p = self.num_params() as f64;
            let jac: f64 = if g.u.get().is_some() {
                0.0
            } else {
                (0..nl).map(|l| 2.0 * (d.act_sizes[l + 1] * d.param_sizes[l]) as f64 * ao).sum()
            };
            jac + p * ao * ao + ao * ao * ao / 3.0
        });
        RouteCosts { lifted, woodbury }
    }

    /// Factors `C + eps I` by `route`, or by the cheaper route when `None`
    /// (the Woodbury route only for a Gauss–Newton curvature and `eps > 0`,
    /// and only when `opts.elimination` is [`Elimination::Auto`]: an
    /// elimination asked for is an elimination of the lifted system).
    ///
    /// # Errors
    /// [`HinvError::EliminationWithoutLiftedSystem`] for a forced Woodbury
    /// route with an elimination other than [`Elimination::Auto`]. A forced
    /// Woodbury route returns [`HinvError::IllConditioned`] where
    /// `eps` is below the rounding of `U^T U` (then `delta I + U^T U` is
    /// numerically singular); with `None` the lifted route is taken instead.
    pub fn factor_route(&self, eps: f64, opts: &FactorOptions, route: Option<Route>) -> Result<CurvatureFactor> {
        opts.check_route(route)?;
        let chosen = match route {
            Some(r) => r,
            None if eps > 0.0 && opts.elimination == Elimination::Auto => self.route_costs().cheaper(),
            None => Route::Lifted,
        };
        let inner = match chosen {
            Route::Lifted => Inner::Lifted(Box::new(self.factor_with(eps, opts)?)),
            Route::Woodbury => match self.factor_woodbury(eps) {
                Ok(w) => Inner::Woodbury(w),
                // eps below the rounding of U^T U: the route chosen by cost
                // gives way to the lifted one, which still applies.
                Err(HinvError::IllConditioned { .. }) if route.is_none() => {
                    Inner::Lifted(Box::new(self.factor_with(eps, opts)?))
                }
                Err(e) => return Err(e),
            },
        };
        Ok(CurvatureFactor { inner, psd: self.kind() == CurvatureKind::GaussNewton })
    }

    /// The Woodbury factorization of `GGN + delta I` (`delta > 0`).
    ///
    /// # Errors
    /// [`HinvError::WrongCurvature`] for a Hessian curvature,
    /// [`HinvError::InvalidNumber`] for `delta <= 0`.
    pub fn factor_woodbury(&self, delta: f64) -> Result<WoodburyFactorization> {
        let Some(u) = self.ggn_factor_u()? else {
            return Err(HinvError::WrongCurvature {
                what: "the Woodbury route",
                needs: CurvatureKind::GaussNewton,
                found: self.kind(),
                hint:
                    "use the lifted route (Curvature::factor), or build the curvature with CurvatureKind::GaussNewton",
            });
        };
        WoodburyFactorization::new(u, delta)
    }
}
