//! The numbers of docs/spectrum.md:
//!
//! 1. on a network the dense route can check (p ≈ 1k): lambda_min and
//!    lambda_max with and without acceleration (factorizations, error
//!    against faer's dense eigensolver), the exact trust-region step
//!    against a dense secular-equation solve (boundary and hard case);
//! 2. a stochastic Lanczos quadrature (SLQ) estimate of the histogram with
//!    the HVP, against the exact histogram: cost and error;
//! 3. the 256-layer demo-style network (p = 16k): a 64-bin histogram,
//!    lambda_min, a trust-region step, and SLQ at comparable cost.
//!
//! `cargo run --release -p hinv --example spectrum` (add `-- quick` to skip part 3).

use std::time::Instant;

use faer::{Mat, Side};
use hinv::reference::{self, DenseLimit};
use hinv::{Curvature, Histogram, SpectrumOptions, TrustRegionOptions};
use netgraph::{Activation, Batch, Network};

fn curvature(depth: usize, width: usize, gain: f64) -> Curvature {
    let net = Network::builder(5).without_bias().dense(width, Activation::Tanh).repeat(depth).cross_entropy(3).unwrap();
    let mut params = net.init_params(20240601);
    params.scale(gain);
    Curvature::new(&net, &params, &Batch::random_classification(5, 3, 2, 20240602)).unwrap()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Deterministic Rademacher vectors.
fn rademacher(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            if s & 1 == 0 {
                1.0
            } else {
                -1.0
            }
        })
        .collect()
}

/// SLQ: `vectors` Rademacher probes, `steps` Lanczos steps each (full
/// reorthogonalization, so the quadrature is not spoilt by ghost
/// eigenvalues); the Gauss quadrature nodes and weights put `p w_j /
/// vectors` eigenvalues at node `theta_j`, binned on the same edges.
/// Returns the estimated counts and the HVPs spent.
fn slq(curv: &Curvature, edges: &[f64], vectors: usize, steps: usize) -> (Vec<f64>, usize) {
    let n = curv.num_params();
    let mut counts = vec![0.0; edges.len() - 1];
    let mut hvps = 0;
    for k in 0..vectors {
        let mut q0 = rademacher(n, 1 + k as u64);
        let nq = norm(&q0);
        q0.iter_mut().for_each(|x| *x /= nq);
        let mut basis = vec![q0];
        let (mut alpha, mut beta) = (Vec::new(), Vec::new());
        for j in 0..steps.min(n) {
            let mut w = curv.hvp(&basis[j]).unwrap();
            hvps += 1;
            let a = dot(&w, &basis[j]);
            alpha.push(a);
            for _ in 0..2 {
                for q in &basis {
                    let c = dot(q, &w);
                    w.iter_mut().zip(q).for_each(|(wi, qi)| *wi -= c * qi);
                }
            }
            let b = norm(&w);
            if b <= 1e-12 * a.abs().max(1e-300) || j + 1 == steps {
                break;
            }
            beta.push(b);
            w.iter_mut().for_each(|x| *x /= b);
            basis.push(w);
        }
        let m = alpha.len();
        let t = Mat::from_fn(m, m, |i, j| {
            if i == j {
                alpha[i]
            } else if i == j + 1 {
                beta[j]
            } else if j == i + 1 {
                beta[i]
            } else {
                0.0
            }
        });
        let e = t.self_adjoint_eigen(Side::Lower).unwrap();
        for j in 0..m {
            let theta = e.S().column_vector()[j];
            let weight = e.U()[(0, j)].powi(2);
            if let Some(b) = edges.windows(2).position(|w| theta >= w[0] && theta < w[1]) {
                counts[b] += weight * n as f64 / vectors as f64;
            }
        }
    }
    (counts, hvps)
}

/// Total-variation style error: `sum |estimate - exact| / (2 p)`, the
/// fraction of the spectrum put in the wrong bins.
fn misplaced(est: &[f64], exact: &Histogram, p: usize) -> f64 {
    est.iter().zip(&exact.counts).map(|(e, c)| (e - *c as f64).abs()).sum::<f64>() / (2.0 * p as f64)
}

/// The trust-region solution from the dense eigendecomposition (bisection
/// on the secular equation to rounding; boundary cases only).
fn dense_tr(values: &[f64], vectors: &Mat<f64>, g: &[f64], delta: f64) -> (f64, Vec<f64>) {
    let n = g.len();
    let gam: Vec<f64> = (0..n).map(|i| (0..n).map(|r| vectors[(r, i)] * g[r]).sum()).collect();
    let step = |lam: f64| {
        let mut p = vec![0.0; n];
        for i in 0..n {
            let c = -gam[i] / (values[i] + lam);
            p.iter_mut().enumerate().for_each(|(r, pr)| *pr += c * vectors[(r, i)]);
        }
        p
    };
    let (mut lo, mut hi) = ((-values[0]).max(0.0), (-values[0]).max(0.0) + norm(g) / delta + 1.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if norm(&step(mid)) > delta {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let lam = 0.5 * (lo + hi);
    (lam, step(lam))
}

fn part_dense() {
    let curv = curvature(16, 8, 2.0);
    let p = curv.num_params();
    println!("== checkable network: 16 tanh layers of width 8, batch 2, gain 2: p = {p}");
    let t = Instant::now();
    let h = reference::hessian(&curv, DenseLimit { bytes: 1 << 33 }).unwrap();
    let e = h.self_adjoint_eigen(Side::Lower).unwrap();
    let values: Vec<f64> = (0..p).map(|i| e.S().column_vector()[i]).collect();
    let vectors = e.U().to_owned();
    println!("dense Hessian + eigendecomposition: {:.2} s", t.elapsed().as_secs_f64());
    let scale = values[0].abs().max(values[p - 1].abs());
    let neg = curv.count_in(values[0] - scale, 0.0).unwrap();
    println!(
        "negative eigenvalues by count: {} (uncertain {}), dense: {}",
        neg.count,
        neg.uncertain,
        values.iter().filter(|&&l| l < 0.0).count()
    );
    for accelerate in [true, false] {
        let opts = SpectrumOptions { accelerate, ..SpectrumOptions::default() };
        let t = Instant::now();
        let lo = curv.lambda_min(&opts).unwrap();
        let hi = curv.lambda_max(&opts).unwrap();
        let dt = t.elapsed().as_secs_f64();
        for (r, exact) in [(&lo, values[0]), (&hi, values[p - 1])] {
            println!(
                "{:?} {:>12}: {:+.15e} (dense {:+.15e}), |error| / ||H|| = {:.1e}, bracket width / ||H|| = {:.1e}, \
                 {} factorizations, {} solves, converged {}",
                r.end,
                if accelerate { "shift-invert" } else { "bisection" },
                r.value,
                exact,
                (r.value - exact).abs() / scale,
                (r.upper - r.lower) / scale,
                r.factorizations,
                r.solves,
                r.converged
            );
        }
        println!("  both ends: {dt:.3} s");
    }
    let g = curv.gradient().to_vec();
    for delta in [1e-2, 1.0, 100.0] {
        let t = Instant::now();
        let s = curv.trust_region_step(delta, &TrustRegionOptions::default()).unwrap();
        let dt = t.elapsed().as_secs_f64();
        let (lam, pd) = dense_tr(&values, &vectors, &g, delta);
        let diff: Vec<f64> = s.p.iter().zip(&pd).map(|(a, b)| a - b).collect();
        println!(
            "trust region Delta = {delta:e}: {:?}, lambda {:.12e} (dense {lam:.12e}), step relative error {:.1e}, \
             {} factorizations, {dt:.3} s",
            s.kind,
            s.lambda,
            norm(&diff) / norm(&pd),
            s.factorizations
        );
    }
    // The hard case on purpose: g orthogonal to the lambda_min eigenvector.
    let v: Vec<f64> = (0..p).map(|r| vectors[(r, 0)]).collect();
    let c = dot(&v, &g);
    let gh: Vec<f64> = g.iter().zip(&v).map(|(a, b)| a - c * b).collect();
    let perp: f64 = (1..p)
        .map(|i| ((0..p).map(|r| vectors[(r, i)] * gh[r]).sum::<f64>() / (values[i] - values[0])).powi(2))
        .sum::<f64>()
        .sqrt();
    let s = curv.trust_region_step_for(&gh, 2.0 * perp, &TrustRegionOptions::default()).unwrap();
    let off = |x: &[f64]| {
        let c = dot(x, &v);
        x.iter().zip(&v).map(|(a, b)| a - c * b).collect::<Vec<f64>>()
    };
    let (mut pd, hard_lam) = (vec![0.0; p], -values[0]);
    for i in 1..p {
        let gi: f64 = (0..p).map(|r| vectors[(r, i)] * gh[r]).sum();
        let coef = -gi / (values[i] + hard_lam);
        pd.iter_mut().enumerate().for_each(|(r, x)| *x += coef * vectors[(r, i)]);
    }
    let d: Vec<f64> = off(&s.p).iter().zip(&pd).map(|(a, b)| a - b).collect();
    println!(
        "hard case (Delta = 2 ||p_perp||): {:?}, lambda {:.12e} (dense {hard_lam:.12e}), off-eigenvector step \
         relative error {:.1e}, ||p|| / Delta - 1 = {:.1e}, {} factorizations",
        s.kind,
        s.lambda,
        norm(&d) / norm(&pd),
        s.step_norm / (2.0 * perp) - 1.0,
        s.factorizations
    );

    // SLQ against the exact histogram on 32 bins.
    let exact = curv.histogram_bins(32, &SpectrumOptions::default()).unwrap();
    for (vectors, steps) in [(1, 30), (4, 30), (10, 80)] {
        let t = Instant::now();
        let (est, hvps) = slq(&curv, &exact.edges, vectors, steps);
        println!(
            "SLQ {vectors} x {steps}: {hvps} HVPs, {:.3} s, fraction of eigenvalues in the wrong bin {:.3}",
            t.elapsed().as_secs_f64(),
            misplaced(&est, &exact, p)
        );
    }
    // On a symmetric-log axis (fine bins near zero), where most of a
    // network's eigenvalues are.
    let edges = hinv::symlog_edges(exact.edges[0], exact.edges[32], 32, 1e-6 * scale);
    let sym = curv.histogram(&edges, &SpectrumOptions::default()).unwrap();
    for (vectors, steps) in [(4, 30), (10, 80)] {
        let (est, hvps) = slq(&curv, &sym.edges, vectors, steps);
        println!(
            "SLQ {vectors} x {steps} on 32 symmetric-log bins: {hvps} HVPs, fraction in the wrong bin {:.3}",
            misplaced(&est, &sym, p)
        );
    }
    let t = Instant::now();
    let exact = curv.histogram_bins(32, &SpectrumOptions::default()).unwrap();
    println!(
        "exact histogram, 32 bins: {} factorizations, {:.3} s, certified {}",
        exact.factorizations,
        t.elapsed().as_secs_f64(),
        exact.certified
    );
}

fn part_deep() {
    let curv = curvature(256, 8, 2.0);
    let p = curv.num_params();
    println!(
        "== demo-style network: 256 tanh layers of width 8, batch 2, gain 2: p = {p} (rayon threads: {})",
        rayon::current_num_threads()
    );
    let opts = SpectrumOptions::default();
    let t = Instant::now();
    let h = curv.histogram_bins(64, &opts).unwrap();
    let dt = t.elapsed().as_secs_f64();
    println!(
        "64-bin histogram: {dt:.2} s, {} factorizations, certified {}, range [{:.4e}, {:.4e}]",
        h.factorizations, h.certified, h.edges[0], h.edges[64]
    );
    let t = Instant::now();
    let m = curv.lambda_min(&opts).unwrap();
    println!(
        "lambda_min = {:+.12e} in [{:+.12e}, {:+.12e}]: {:.2} s, {} factorizations, {} solves",
        m.value,
        m.lower,
        m.upper,
        t.elapsed().as_secs_f64(),
        m.factorizations,
        m.solves
    );
    let t = Instant::now();
    let s = curv.trust_region_step(0.1, &TrustRegionOptions::default()).unwrap();
    println!(
        "trust region Delta = 0.1: {:?}, lambda {:.6e}, optimality residual {:.1e}, {} factorizations, {:.2} s",
        s.kind,
        s.lambda,
        s.optimality_residual,
        s.factorizations,
        t.elapsed().as_secs_f64()
    );
    for (vectors, steps) in [(4, 30), (10, 80)] {
        let t = Instant::now();
        let (est, hvps) = slq(&curv, &h.edges, vectors, steps);
        println!(
            "SLQ {vectors} x {steps}: {hvps} HVPs, {:.2} s, fraction of eigenvalues in the wrong bin {:.3}",
            t.elapsed().as_secs_f64(),
            misplaced(&est, &h, p)
        );
    }
}

fn main() {
    part_dense();
    if std::env::args().nth(1).as_deref() != Some("quick") {
        part_deep();
    }
}
