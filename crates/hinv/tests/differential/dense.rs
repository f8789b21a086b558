//! The dense reference, built without the lifted system: `H` column by
//! column from the exact Hessian-vector product (checked against central
//! differences of the gradient), its eigenvalues from faer's
//! eigenvalue-only symmetric solver, and solves by faer's partial-pivoting
//! LU of `H + eps I`, refined with residuals computed in twice the working
//! precision so that the reference is accurate to `u` for the stored `H`
//! whenever `u cond < 1`.

use faer::linalg::solvers::Solve;
use faer::{Mat, Side};
use hinv::Curvature;
use netgraph::{Batch, Network, Params};

use super::adapter;

/// Unit roundoff of f64 as the issue writes it (`f64::EPSILON`).
pub const U: f64 = f64::EPSILON;

/// The dense Hessian of one network and what is known of its accuracy.
pub struct Reference {
    /// Parameters.
    pub p: usize,
    /// `H` from exact HVPs, symmetrised.
    pub h: Mat<f64>,
    /// Estimate of `||H - H_exact||_2`: the Frobenius norm of the
    /// antisymmetric part of the HVP matrix. Column `j` is one HVP of
    /// `e_j`, so entries `(i, j)` and `(j, i)` come from different sweeps
    /// and their rounding errors are unrelated; the symmetrised matrix's
    /// error has about the antisymmetric part's size, and the Frobenius
    /// norm bounds the 2-norm.
    pub dh: f64,
    /// Eigenvalues of `H`, increasing.
    pub eig: Vec<f64>,
    /// `||H||_2`.
    pub norm_h: f64,
    /// `max |H_fd - H|` against central differences of the gradient, and
    /// `max |H|`.
    pub fd_diff: f64,
    /// `max |H|`.
    pub max_abs_h: f64,
}

impl Reference {
    /// Whether the finite-difference Hessian agrees. Central differences
    /// with netgraph's step `h = 1e-5 max(1, |x_i|)` carry a truncation
    /// error `h^2 |f'''| / 6` and a rounding error `u |g| / h`, about
    /// `1e-10 |f'''| + 2e-11 |g|`: 1e-7 absolute covers third derivatives
    /// up to 1e3 and gradients up to 1e4, and 1e-4 relative to `max |H|`
    /// the networks with larger ones. A wrong block would be off by O(1).
    pub fn fd_agrees(&self) -> bool {
        self.fd_diff <= 1e-4 * self.max_abs_h + 1e-7
    }
    /// Whether the finite-difference check resolves `H` (its tolerance is
    /// at most 1e-2 of `max |H|`).
    pub fn fd_meaningful(&self) -> bool {
        self.max_abs_h >= 1e-5
    }
}

/// The dense reference of a network.
pub fn reference(curv: &Curvature, net: &Network, params: &Params, batch: &Batch) -> Reference {
    let p = adapter::num_params(curv);
    let mut raw = Mat::<f64>::zeros(p, p);
    let chunk = 128;
    let mut c0 = 0;
    while c0 < p {
        let nc = chunk.min(p - c0);
        let e = Mat::from_fn(p, nc, |i, j| if i == c0 + j { 1.0 } else { 0.0 });
        raw.as_mut().subcols_mut(c0, nc).copy_from(adapter::hvp_columns(curv, e.as_ref()));
        c0 += nc;
    }
    let h = Mat::from_fn(p, p, |i, j| 0.5 * (raw[(i, j)] + raw[(j, i)]));
    let dh = Mat::from_fn(p, p, |i, j| 0.5 * (raw[(i, j)] - raw[(j, i)])).norm_l2();
    let mut eig = h.self_adjoint_eigenvalues(Side::Lower).expect("the symmetric eigensolver converges");
    eig.sort_by(f64::total_cmp);
    let norm_h = eig[0].abs().max(eig[p - 1].abs());
    let max_abs_h = h.norm_max();
    let fd = net.dense_hessian_fd(params, batch).expect("finite differences of a finite network");
    let mut fd_diff = (&fd - &h).norm_max();
    let r = Reference { p, h, dh, eig, norm_h, fd_diff, max_abs_h };
    if !r.fd_agrees() {
        fd_diff = fd_recheck(&r, &fd, net, params, batch);
    }
    Reference { fd_diff, ..r }
}

/// Central differences straddle a kink (ReLU at a pre-activation within
/// the step of 0) and then see the jump of the gradient divided by the
/// step, however right `H` is. The columns that disagree are differenced
/// again with a step 100 times smaller (1e-7: rounding `u |g| / h` stays
/// near 2e-9 |g|, inside the tolerance); an entry counts as agreeing when
/// either step agrees, since a wrong derivative block disagrees with both
/// (seed 1, networks 43 and 319: 4e2 and 1e3 with the wide step).
fn fd_recheck(r: &Reference, fd: &Mat<f64>, net: &Network, params: &Params, batch: &Batch) -> f64 {
    let tol = 1e-4 * r.max_abs_h + 1e-7;
    let mut worst = 0.0f64;
    for j in 0..r.p {
        let col_bad = (0..r.p).any(|i| (fd[(i, j)] - r.h[(i, j)]).abs() > tol);
        if !col_bad {
            worst = worst.max((0..r.p).map(|i| (fd[(i, j)] - r.h[(i, j)]).abs()).fold(0.0, f64::max));
            continue;
        }
        let step = 1e-7 * params.as_slice()[j].abs().max(1.0);
        let mut q = params.clone();
        q.as_mut_slice()[j] += step;
        let (_, gp) = net.gradient(&q, batch).expect("a finite network");
        q.as_mut_slice()[j] -= 2.0 * step;
        let (_, gm) = net.gradient(&q, batch).expect("a finite network");
        for i in 0..r.p {
            let fine = (gp[i] - gm[i]) / (2.0 * step);
            let d = (fd[(i, j)] - r.h[(i, j)]).abs().min((fine - r.h[(i, j)]).abs());
            worst = worst.max(d);
        }
    }
    worst
}

/// What the spectrum says about `H + eps I`.
#[derive(Debug, Clone)]
pub struct Spectral {
    /// `||H + eps I||_2 = max |lambda_i + eps|`.
    pub norm_a: f64,
    /// `cond_2(H + eps I)`, infinite when some `lambda_i + eps` is exactly 0.
    pub cond: f64,
    /// How far a dense eigenvalue may be from the exact one: the
    /// eigensolver's backward error (`P u ||H||`, the bound) plus
    /// the uncertainty of `H` itself (Weyl).
    pub tol: f64,
    /// Eigenvalues of `H + eps I` surely above zero, surely below, and
    /// within `tol` of zero (the sign the dense route cannot decide).
    pub sure_pos: usize,
    /// See `sure_pos`.
    pub sure_neg: usize,
    /// See `sure_pos`.
    pub ambiguous: usize,
    /// `sum log|lambda_i + eps|`, the reference log-determinant.
    pub log_det: f64,
    /// `sum ||H + eps I|| / |lambda_i + eps|` (between `cond` and
    /// `P cond`): the first-order change of the log-determinant, relative
    /// to a perturbation of norm `||H + eps I||` (Weyl, term by term).
    pub kappa_sum: f64,
    /// Estimated error of `log_det` from the eigenvalues' own error
    /// (`tol` in each term), capped: only meaningful when not ambiguous.
    pub log_det_est: f64,
}

/// The spectrum of `H + eps I`.
pub fn spectral(r: &Reference, eps: f64) -> Spectral {
    let shifted: Vec<f64> = r.eig.iter().map(|l| l + eps).collect();
    let norm_a = shifted.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let min_a = shifted.iter().fold(f64::INFINITY, |m, v| m.min(v.abs()));
    let cond = if min_a == 0.0 { f64::INFINITY } else { norm_a / min_a };
    let tol = r.p as f64 * U * r.norm_h + r.dh;
    let sure_pos = shifted.iter().filter(|&&v| v > tol).count();
    let sure_neg = shifted.iter().filter(|&&v| v < -tol).count();
    let ambiguous = r.p - sure_pos - sure_neg;
    let log_det = shifted.iter().map(|v| v.abs().ln()).sum();
    let kappa_sum = shifted.iter().map(|v| norm_a / v.abs()).sum();
    let log_det_est = shifted.iter().map(|v| (tol / v.abs()).min(1.0)).sum();
    Spectral { norm_a, cond, tol, sure_pos, sure_neg, ambiguous, log_det, kappa_sum, log_det_est }
}

/// `b - (H + eps I) x`, each entry accumulated with error-free
/// transformations (Ogita, Rump and Oishi's Dot2): as accurate as if
/// computed in twice the working precision, so the residual of the stored
/// `H` is not hidden under the rounding of its own product.
pub fn residual(h: &Mat<f64>, eps: f64, x: &[f64], b: &[f64]) -> Vec<f64> {
    let p = x.len();
    (0..p)
        .map(|i| {
            // H is symmetric: row i is column i, contiguous.
            let col = h.col(i);
            let (mut s, mut c) = (b[i], 0.0f64);
            let mut add = |a: f64, y: f64| {
                let prod = -a * y;
                let prod_err = (-a).mul_add(y, -prod);
                let t = s + prod;
                let z = t - s;
                let sum_err = (s - (t - z)) + (prod - z);
                s = t;
                c += sum_err + prod_err;
            };
            for j in 0..p {
                add(col[j], x[j]);
            }
            add(eps, x[i]);
            s + c
        })
        .collect()
}

/// Euclidean norm, scaled by the largest entry so that it overflows only
/// when the norm itself does: a solution of a numerically singular system
/// may have entries near `1e222`, whose squares overflow (seed 7,
/// `--max-params 4000`, case 751). NaN if an entry is NaN, `inf` if one is
/// infinite.
pub fn norm(v: &[f64]) -> f64 {
    let scale = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if scale == 0.0 || !scale.is_finite() || v.iter().any(|x| x.is_nan()) {
        return v.iter().map(|x| x * x).sum::<f64>().sqrt();
    }
    scale * v.iter().map(|x| (x / scale) * (x / scale)).sum::<f64>().sqrt()
}

/// `||x - y|| / ||y||` (`||x - y||` when `y = 0`).
pub fn rel_diff(x: &[f64], y: &[f64]) -> f64 {
    let d: Vec<f64> = x.iter().zip(y).map(|(a, b)| a - b).collect();
    let ny = norm(y);
    if ny > 0.0 {
        norm(&d) / ny
    } else {
        norm(&d)
    }
}

/// Normwise backward error `||b - (H + eps I) x|| / (||H + eps I|| ||x|| + ||b||)`
/// with the dense `H`; `inf` for a solution with a non-finite entry.
///
/// It does not change when `x` and `b` are scaled together, so both are
/// first divided by a power of two (exactly) near their largest entry: a
/// finite solution whose residual or norms would overflow unscaled (a
/// numerically singular system's, `||x|| = 1.8e222`) is then scored, not
/// turned into `inf / inf = NaN`.
pub fn backward_error(h: &Mat<f64>, eps: f64, norm_a: f64, x: &[f64], b: &[f64]) -> f64 {
    if x.iter().chain(b).any(|v| !v.is_finite()) {
        return f64::INFINITY;
    }
    let top = x.iter().chain(b).fold(0.0f64, |m, v| m.max(v.abs()));
    if top == 0.0 {
        return 0.0;
    }
    // 2^-floor(log2 top): a power of two, so the scaling rounds nothing
    // (short of subnormals, far below the residual's rounding here); the
    // clamp keeps it finite for a subnormal `top`.
    let inv = 2f64.powi((-(top.log2().floor() as i32)).clamp(-1020, 1020));
    let (xs, bs): (Vec<f64>, Vec<f64>) = (x.iter().map(|v| v * inv).collect(), b.iter().map(|v| v * inv).collect());
    let r = residual(h, eps, &xs, &bs);
    let denom = norm_a * norm(&xs) + norm(&bs);
    if denom > 0.0 {
        norm(&r) / denom
    } else {
        0.0
    }
}

/// The dense LU of `H + eps I`, for several right-hand sides.
pub struct DenseLu {
    lu: faer::linalg::solvers::PartialPivLu<f64>,
    /// `log|det|` from the pivots of `U`: a second reference for the
    /// log-determinant, by another algorithm than the eigenvalues.
    pub log_det: f64,
}

/// A dense solution.
pub struct DenseSolution {
    /// The solution, refined.
    pub x: Vec<f64>,
    /// Its estimated relative error (for the stored `H`): the size of the
    /// last refinement correction, `inf` when refinement diverged.
    pub est: f64,
    /// The forward error of the plain LU solve (no refinement) against `x`:
    /// what a dense solver achieves on this system.
    pub lu_fe: f64,
}

impl DenseLu {
    /// Factors `H + eps I`.
    pub fn new(h: &Mat<f64>, eps: f64) -> DenseLu {
        let mut a = h.clone();
        for i in 0..a.nrows() {
            a[(i, i)] += eps;
        }
        let lu = a.partial_piv_lu();
        let u = lu.U();
        let log_det = (0..u.nrows()).map(|i| u[(i, i)].abs().ln()).sum();
        DenseLu { lu, log_det }
    }

    fn solve_raw(&self, b: &[f64]) -> Vec<f64> {
        let rhs = Mat::from_fn(b.len(), 1, |i, _| b[i]);
        self.lu.solve(&rhs).col(0).iter().copied().collect()
    }

    /// `(H + eps I)^-1 b` by LU, then up to four steps of refinement with
    /// twice-precise residuals (each gains `-log10(u cond)` digits while
    /// `u cond < 1`).
    pub fn solve(&self, h: &Mat<f64>, eps: f64, b: &[f64]) -> DenseSolution {
        let x0 = self.solve_raw(b);
        if x0.iter().any(|v| !v.is_finite()) {
            return DenseSolution { x: x0, est: f64::INFINITY, lu_fe: f64::INFINITY };
        }
        let mut x = x0.clone();
        let mut last = f64::INFINITY;
        let mut est = f64::INFINITY;
        for _ in 0..4 {
            let r = residual(h, eps, &x, b);
            let dx = self.solve_raw(&r);
            let step = norm(&dx) / norm(&x).max(f64::MIN_POSITIVE);
            if !step.is_finite() || step >= last {
                // Not contracting: the reference is no better than the last step.
                est = est.max(last);
                break;
            }
            x.iter_mut().zip(&dx).for_each(|(a, d)| *a += d);
            est = step;
            last = step;
            if step <= U {
                break;
            }
        }
        if norm(b) == 0.0 {
            est = 0.0;
        }
        let lu_fe = rel_diff(&x0, &x);
        DenseSolution { x, est, lu_fe }
    }
}
