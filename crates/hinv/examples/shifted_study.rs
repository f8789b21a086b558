//! How far a factorization of `H + eps I` carries `H + eps' I`: plain
//! iterative refinement against `Factorization::solve_shifted` (MINRES
//! preconditioned by the factors), as `eps'` moves away from `eps`.
//!
//! `cargo run -p hinv --example shifted_study` (the dev profile builds
//! every crate at opt-level 3). Prints, per network and shift, `rho =
//! |eps' - eps| / min |lambda + eps|` (refinement's contraction factor),
//! the solves with the factors each method needed to reach a backward
//! error of 64 eps_mach, the forward error against a dense solve, and the
//! time of the shifted solve against a fresh factorization plus solve.
//! docs/numerics.md, "Shifted solves", quotes its output.

use std::time::Instant;

use faer::MatRef;
use hinv::reference::{self, DenseLimit};
use hinv::{Curvature, Factorization, HinvError, SolveOptions};
use netgraph::{Activation, Batch, Network};

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Refinement `x += K^-1 (g - A x)` from `x = 0`: the number of solves to
/// reach the tolerance, or `None` when the residual stops shrinking or 60
/// solves pass.
fn richardson(
    curv: &Curvature,
    f: &Factorization,
    shifted: f64,
    g: &[f64],
    a_norm: f64,
) -> hinv::Result<Option<usize>> {
    let tol = SolveOptions::default().tolerance;
    let mut x = vec![0.0; g.len()];
    let mut last = f64::INFINITY;
    for solves in 0..=60 {
        let hx = curv.hvp(&x)?;
        let r: Vec<f64> = (0..x.len()).map(|i| g[i] - hx[i] - shifted * x[i]).collect();
        let rn = norm(&r);
        if rn / (a_norm * norm(&x) + norm(g)) <= tol {
            return Ok(Some(solves));
        }
        if rn >= last {
            return Ok(None);
        }
        last = rn;
        let d = f.solve(&r)?;
        x.iter_mut().zip(&d).for_each(|(x, d)| *x += d);
    }
    Ok(None)
}

fn study(name: &str, curv: &Curvature, eps: f64) -> hinv::Result<()> {
    let h = reference::hessian(curv, DenseLimit::default())?;
    let eig = reference::spectrum(h.as_ref())?.eigenvalues;
    let gap = eig.iter().map(|l| (l + eps).abs()).fold(f64::INFINITY, f64::min);
    let top = eig.iter().map(|l| l.abs()).fold(0.0, f64::max);
    println!(
        "\n{name}: {} parameters, eps = {eps:e}, min |lambda + eps| = {gap:.3e}, max |lambda| = {top:.3e}, {} eigenvalues < -eps",
        curv.num_params(),
        eig.iter().filter(|l| **l < -eps).count()
    );
    let g = curv.gradient().to_vec();
    let t = Instant::now();
    let f = curv.factor(eps)?;
    let _ = f.solve(&g)?;
    let base = t.elapsed().as_secs_f64();
    println!("factor + solve at eps: {:.1} ms", 1e3 * base);
    println!("| eps' | rho | refinement solves | solve_shifted solves | forward error | cond(A) | shifted ms | refactor+solve ms |");
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    for mult in [1.01, 1.1, 1.5, 2.0, 5.0, 10.0, 100.0, 1e3, 1e4] {
        let shifted = eps * mult;
        let a_norm = eig.iter().map(|l| (l + shifted).abs()).fold(0.0, f64::max);
        let a_min = eig.iter().map(|l| (l + shifted).abs()).fold(f64::INFINITY, f64::min);
        let rho = (shifted - eps).abs() / gap;
        let rich = richardson(curv, &f, shifted, &g, a_norm)?;
        let t = Instant::now();
        let res = f.solve_shifted(shifted, MatRef::from_column_major_slice(&g, g.len(), 1), &SolveOptions::default());
        let ts = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let fresh = curv.factor(shifted)?.solve(&g)?;
        let tf = t.elapsed().as_secs_f64();
        let dense = reference::solve(h.as_ref(), shifted, &g)?;
        let (solves, err) = match res {
            Ok(s) => {
                let x: Vec<f64> = s.x.col(0).iter().copied().collect();
                let d: Vec<f64> = x.iter().zip(&dense).map(|(a, b)| a - b).collect();
                (s.report.refinements.to_string(), format!("{:.1e}", norm(&d) / norm(&dense)))
            }
            Err(HinvError::ShiftTooFar { iterations, .. }) => (format!("{iterations} (ShiftTooFar)"), "-".into()),
            Err(e) => return Err(e),
        };
        let d: Vec<f64> = fresh.iter().zip(&dense).map(|(a, b)| a - b).collect();
        let fresh_err = norm(&d) / norm(&dense);
        println!(
            "| {shifted:.3e} | {rho:.2e} | {} | {solves} | {err} (fresh: {fresh_err:.1e}) | {:.1e} | {:.1} | {:.1} |",
            rich.map_or("diverges".to_string(), |s| s.to_string()),
            a_norm / a_min,
            1e3 * ts,
            1e3 * tf
        );
    }
    Ok(())
}

fn main() -> hinv::Result<()> {
    // The README's demo network, 10 layers deep instead of 30 so that the
    // dense oracle stays quick.
    let net = Network::builder(5).without_bias().dense(10, Activation::Tanh).repeat(10).cross_entropy(3)?;
    let mut params = net.init_params(7);
    params.scale(2.0);
    let curv = Curvature::new(&net, &params, &Batch::random_classification(5, 3, 2, 11))?;
    study("tanh 10 x 10, batch 2 (demo, shallower)", &curv, 1e-3)?;

    let net = Network::builder(8).dense(16, Activation::Tanh).repeat(4).cross_entropy(4)?;
    let mut params = net.init_params(3);
    params.scale(1.5);
    let curv = Curvature::new(&net, &params, &Batch::random_classification(8, 4, 16, 5))?;
    study("tanh 4 x 16, batch 16", &curv, 1e-3)?;
    Ok(())
}
