//! Krylov baselines on the Hessian-vector product: conjugate gradients (for
//! positive definite `H + eps I`) and MINRES (for any symmetric one).
//! They are what a user would otherwise run, so benchmarks and tests compare
//! the exact solver against them at equal accuracy.

use serde::Serialize;

use crate::curvature::Curvature;
use crate::error::Result;

/// Result of a Krylov solve.
#[derive(Debug, Clone, Serialize)]
pub struct KrylovReport {
    /// The approximate solution.
    #[serde(skip)]
    pub x: Vec<f64>,
    /// Operator applications (iterations) used.
    pub iterations: usize,
    /// True relative residual `||b - A x|| / ||b||`, recomputed at the end.
    pub relative_residual: f64,
    /// Whether the requested tolerance was reached.
    pub converged: bool,
    /// Whether CG met a direction of non-positive curvature (the operator is
    /// not positive definite, so its answer is meaningless).
    pub indefinite: bool,
}

pub(crate) fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    y.iter_mut().zip(x).for_each(|(yi, xi)| *yi += a * xi);
}

fn true_residual(op: &mut impl FnMut(&[f64]) -> Result<Vec<f64>>, b: &[f64], x: &[f64]) -> Result<f64> {
    let ax = op(x)?;
    let r: Vec<f64> = b.iter().zip(&ax).map(|(bi, ai)| bi - ai).collect();
    Ok(norm(&r) / norm(b).max(f64::MIN_POSITIVE))
}

/// Conjugate gradients for `A x = b`, `A` symmetric positive definite, from
/// `x = 0`, until `||r|| <= tol ||b||` or `max_iter` iterations.
pub fn conjugate_gradient(
    mut op: impl FnMut(&[f64]) -> Result<Vec<f64>>,
    b: &[f64],
    tol: f64,
    max_iter: usize,
) -> Result<KrylovReport> {
    let n = b.len();
    let bnorm = norm(b);
    let mut x = vec![0.0; n];
    if bnorm == 0.0 {
        return Ok(KrylovReport { x, iterations: 0, relative_residual: 0.0, converged: true, indefinite: false });
    }
    let mut r = b.to_vec();
    let mut p = r.clone();
    let mut rr = dot(&r, &r);
    let mut it = 0;
    let mut indefinite = false;
    while it < max_iter && rr.sqrt() > tol * bnorm {
        let ap = op(&p)?;
        let pap = dot(&p, &ap);
        it += 1;
        if pap <= 0.0 {
            indefinite = true;
            break;
        }
        let alpha = rr / pap;
        axpy(&mut x, alpha, &p);
        axpy(&mut r, -alpha, &ap);
        let rr_new = dot(&r, &r);
        let beta = rr_new / rr;
        rr = rr_new;
        p.iter_mut().zip(&r).for_each(|(pi, ri)| *pi = ri + beta * *pi);
    }
    let relative_residual = true_residual(&mut op, b, &x)?;
    Ok(KrylovReport { x, iterations: it, relative_residual, converged: relative_residual <= tol, indefinite })
}

/// MINRES (Paige and Saunders) for `A x = b`, `A` symmetric (possibly
/// indefinite), from `x = 0`, until the residual estimate is at most
/// `tol ||b||` or `max_iter` iterations.
pub fn minres(
    mut op: impl FnMut(&[f64]) -> Result<Vec<f64>>,
    b: &[f64],
    tol: f64,
    max_iter: usize,
) -> Result<KrylovReport> {
    let n = b.len();
    let beta1 = norm(b);
    let mut x = vec![0.0; n];
    if beta1 == 0.0 {
        return Ok(KrylovReport { x, iterations: 0, relative_residual: 0.0, converged: true, indefinite: false });
    }
    let (mut r1, mut r2, mut y) = (b.to_vec(), b.to_vec(), b.to_vec());
    let (mut w, mut w2) = (vec![0.0; n], vec![0.0; n]);
    let (mut oldb, mut beta, mut dbar, mut epsln, mut phibar) = (0.0, beta1, 0.0, 0.0, beta1);
    let (mut cs, mut sn) = (-1.0f64, 0.0f64);
    let mut it = 0;
    while it < max_iter {
        it += 1;
        let v: Vec<f64> = y.iter().map(|yi| yi / beta).collect();
        y = op(&v)?;
        if it >= 2 {
            axpy(&mut y, -beta / oldb, &r1);
        }
        let alfa = dot(&v, &y);
        axpy(&mut y, -alfa / beta, &r2);
        r1 = std::mem::replace(&mut r2, y.clone());
        oldb = beta;
        beta = norm(&y);
        let oldeps = epsln;
        let delta = cs * dbar + sn * alfa;
        let gbar = sn * dbar - cs * alfa;
        epsln = sn * beta;
        dbar = -cs * beta;
        let gamma = (gbar * gbar + beta * beta).sqrt().max(f64::EPSILON);
        cs = gbar / gamma;
        sn = beta / gamma;
        let phi = cs * phibar;
        phibar *= sn;
        let w1 = std::mem::replace(&mut w2, w.clone());
        for i in 0..n {
            w[i] = (v[i] - oldeps * w1[i] - delta * w2[i]) / gamma;
        }
        axpy(&mut x, phi, &w);
        if phibar <= tol * beta1 || beta == 0.0 {
            break;
        }
    }
    let relative_residual = true_residual(&mut op, b, &x)?;
    Ok(KrylovReport { x, iterations: it, relative_residual, converged: relative_residual <= tol, indefinite: false })
}

impl Curvature {
    /// Conjugate gradients on `(H + eps I) x = b` with the exact HVP.
    pub fn conjugate_gradient(&self, eps: f64, b: &[f64], tol: f64, max_iter: usize) -> Result<KrylovReport> {
        crate::error::check_vector(
            "the right-hand side",
            faer::MatRef::from_column_major_slice(b, b.len(), 1),
            self.num_params(),
        )?;
        conjugate_gradient(|v| self.shifted_hvp(eps, v), b, tol, max_iter)
    }

    /// MINRES on `(H + eps I) x = b` with the exact HVP.
    pub fn minres(&self, eps: f64, b: &[f64], tol: f64, max_iter: usize) -> Result<KrylovReport> {
        crate::error::check_vector(
            "the right-hand side",
            faer::MatRef::from_column_major_slice(b, b.len(), 1),
            self.num_params(),
        )?;
        minres(|v| self.shifted_hvp(eps, v), b, tol, max_iter)
    }

    /// `(H + eps I) v`.
    pub fn shifted_hvp(&self, eps: f64, v: &[f64]) -> Result<Vec<f64>> {
        let mut hv = self.hvp(v)?;
        axpy(&mut hv, eps, v);
        Ok(hv)
    }
}
