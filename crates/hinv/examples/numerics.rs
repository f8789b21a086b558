//! The numerical-stability study of docs/numerics.md: the structured solve
//! of `(H + eps I) x = g` against the dense route, for tanh, GELU and ReLU
//! networks of depth 8 to 256, at the default initialisation and at gain 2,
//! for `eps` from 1 down to 1e-12.
//!
//! For every network the dense Hessian is formed once from exact HVPs and
//! diagonalised (`H = U diag(lambda) U^T`); the reference solution of every
//! `eps` is then `U diag(1 / (lambda + eps)) U^T g`, refined twice against
//! the dense `H`, and the reference
//! log-determinant, inertia and condition number come from the eigenvalues.
//! Measured per `eps`:
//!
//! - backward error `||g - (H + eps I) x|| / (||H + eps I||_2 ||x|| + ||g||)`
//!   with the dense `H`, of the raw solve (`solve_raw`) and of the default,
//!   auto-refined solve (`solve_with_report`), and the refinement steps taken;
//! - forward error `||x - x_ref|| / ||x_ref||`, also divided by
//!   `cond(H + eps I) * eps_mach` (what a backward-stable solver attains);
//! - relative error of `log|det(H + eps I)|`, agreement of the inertia;
//! - pivot growth: the largest pivot magnitude over all blocks divided by
//!   `||H + eps I||_2`, and the smallest pivot and largest per-block
//!   condition estimate;
//! - whether the default singularity threshold (`singular_tol = eps_mach`)
//!   reports `Singular` (the measurements use `singular_tol = 0`).
//!
//! Run: `cargo run --release -p hinv --example numerics` (a few minutes on
//! two cores); `NUMERICS_QUICK=1` runs the two smallest depths only. Prints
//! markdown tables, and writes every measurement to `numerics.csv` in the
//! current directory.

use std::fmt::Write as _;
use std::time::Instant;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par, Side};
use hinv::{Curvature, DenseLimit, FactorOptions, HinvError, Refinement};
use netgraph::{Activation, Batch, LayerSpec, LossSpec, Network};

const U: f64 = f64::EPSILON;

struct Row {
    act: &'static str,
    gain: f64,
    depth: usize,
    params: usize,
    /// `||H||_2`.
    norm: f64,
    eps: f64,
    cond: f64,
    raw_be: f64,
    raw_fe: f64,
    ref_be: f64,
    ref_fe: f64,
    iterations: usize,
    logdet_rel: f64,
    /// The same for the sum over block pivots (`block_log_abs_det`).
    logdet_block_rel: f64,
    inertia_ok: bool,
    growth: f64,
    min_pivot: f64,
    max_block_cond: f64,
    default_singular: bool,
    /// An error instead of a solution (overflow, singular even at tol 0).
    failure: Option<String>,
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn rel_diff(a: &[f64], b: &[f64]) -> f64 {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    norm(&d) / norm(b)
}

/// The dense `H` and its eigendecomposition.
struct Dense {
    h: Mat<f64>,
    u: Mat<f64>,
    lambda: Vec<f64>,
    /// Eigenvalues alone, for the log-determinant: faer's eigenvalue-only
    /// solver resolves the tiny eigenvalues of vanishing-curvature Hessians
    /// to `u ||H||`, while the eigenvalues that come with the eigenvectors
    /// were measured off by ~5e-17 absolute at `||H|| = 3e-12` (a relative
    /// log-det error of 1.8e-6 at eps = 1e-12, which a dense LU of
    /// `H + eps I` does not confirm).
    values: hinv::Spectrum,
}

impl Dense {
    fn new(curv: &Curvature) -> Dense {
        let h = curv.dense_hessian(DenseLimit::default()).expect("the dense route fits");
        let evd = h.self_adjoint_eigen(Side::Lower).expect("eigendecomposition converges");
        let u = evd.U().to_owned();
        let lambda: Vec<f64> = evd.S().column_vector().iter().copied().collect();
        let values = Curvature::spectrum(&h).expect("eigenvalues converge");
        Dense { h, u, lambda, values }
    }
    /// The reference solution: the eigendecomposition solve, refined twice
    /// against the dense `H` (the computed eigenvectors are orthogonal only
    /// to `O(p u)`, which alone limits the plain solve to about `1e-12`
    /// relative error even when `H + eps I` is perfectly conditioned).
    fn solve(&self, eps: f64, g: &[f64]) -> Vec<f64> {
        let mut x = self.eigen_solve(eps, g);
        for _ in 0..2 {
            let r = self.residual(eps, g, &x);
            let dx = self.eigen_solve(eps, &r);
            x.iter_mut().zip(&dx).for_each(|(a, b)| *a += b);
        }
        x
    }
    fn residual(&self, eps: f64, g: &[f64], x: &[f64]) -> Vec<f64> {
        let p = g.len();
        let xm = Mat::from_fn(p, 1, |i, _| x[i]);
        let mut hx = Mat::zeros(p, 1);
        matmul(hx.as_mut(), Accum::Replace, self.h.as_ref(), xm.as_ref(), 1.0, Par::Seq);
        (0..p).map(|i| g[i] - hx[(i, 0)] - eps * x[i]).collect()
    }
    fn eigen_solve(&self, eps: f64, g: &[f64]) -> Vec<f64> {
        let p = g.len();
        let gm = Mat::from_fn(p, 1, |i, _| g[i]);
        let mut c = Mat::zeros(p, 1);
        matmul(c.as_mut(), Accum::Replace, self.u.transpose(), gm.as_ref(), 1.0, Par::Seq);
        for i in 0..p {
            c[(i, 0)] /= self.lambda[i] + eps;
        }
        let mut x = Mat::zeros(p, 1);
        matmul(x.as_mut(), Accum::Replace, self.u.as_ref(), c.as_ref(), 1.0, Par::Seq);
        x.col(0).iter().copied().collect()
    }
    fn op_norm(&self, eps: f64) -> f64 {
        self.lambda.iter().map(|l| (l + eps).abs()).fold(0.0, f64::max)
    }
    fn backward_error(&self, eps: f64, g: &[f64], x: &[f64]) -> f64 {
        let r = self.residual(eps, g, x);
        norm(&r) / (self.op_norm(eps) * norm(x) + norm(g))
    }
}

fn network(act: Activation, depth: usize, width: usize) -> Network {
    let layers = (0..depth).map(|_| LayerSpec::Dense { out: width, activation: act, bias: false }).collect();
    Network::new(width, layers, LossSpec::CrossEntropy { classes: 3, bias: false }).expect("a valid network")
}

fn study(act: Activation, name: &'static str, gain: f64, depth: usize, width: usize, eps_list: &[f64]) -> Vec<Row> {
    let net = network(act, depth, width);
    let mut params = net.init_params(depth as u64);
    params.scale(gain);
    let batch = Batch::random_classification(width, 3, 4, 7);
    let curv = match Curvature::new(&net, &params, &batch) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name} gain {gain} depth {depth}: {e}");
            return Vec::new();
        }
    };
    let dense = Dense::new(&curv);
    let g = curv.gradient().to_vec();
    let p = g.len();
    let mut rows = Vec::new();
    for &eps in eps_list {
        let cond = {
            let abs: Vec<f64> = dense.lambda.iter().map(|l| (l + eps).abs()).collect();
            abs.iter().copied().fold(0.0, f64::max) / abs.iter().copied().fold(f64::INFINITY, f64::min)
        };
        let default_singular = matches!(curv.factor(eps), Err(HinvError::Singular { .. }));
        let mut opts = FactorOptions { refinement: Refinement::Off, ..FactorOptions::default() };
        opts.tridiag.singular_tol = 0.0;
        let mut row = Row {
            act: name,
            gain,
            depth,
            params: p,
            norm: dense.op_norm(0.0),
            eps,
            cond,
            raw_be: f64::NAN,
            raw_fe: f64::NAN,
            ref_be: f64::NAN,
            ref_fe: f64::NAN,
            iterations: 0,
            logdet_rel: f64::NAN,
            logdet_block_rel: f64::NAN,
            inertia_ok: false,
            growth: f64::NAN,
            min_pivot: f64::NAN,
            max_block_cond: f64::NAN,
            default_singular,
            failure: None,
        };
        let f = match curv.factor_with(eps, &opts) {
            Ok(f) => f,
            Err(e) => {
                row.failure = Some(e.to_string());
                rows.push(row);
                continue;
            }
        };
        let x_ref = dense.solve(eps, &g);
        let diags = f.block_ldlt().diagnostics();
        row.growth = diags.iter().map(|d| d.max_pivot).fold(0.0, f64::max) / dense.op_norm(eps);
        row.min_pivot = diags.iter().map(|d| d.min_pivot).fold(f64::INFINITY, f64::min);
        row.max_block_cond = diags.iter().map(|d| d.cond_estimate).fold(0.0, f64::max);
        let ld_ref = dense.values.log_abs_det(eps);
        row.logdet_rel = (f.log_abs_det() - ld_ref).abs() / ld_ref.abs().max(1.0);
        row.logdet_block_rel = (f.block_log_abs_det() - ld_ref).abs() / ld_ref.abs().max(1.0);
        let tol = p as f64 * U * dense.op_norm(0.0);
        let (mut pos, mut neg, mut zero) = (0, 0, 0);
        for l in &dense.lambda {
            let v = l + eps;
            if v.abs() <= tol {
                zero += 1;
            } else if v > 0.0 {
                pos += 1;
            } else {
                neg += 1;
            }
        }
        let i = f.inertia();
        // Eigenvalues within rounding of -eps may fall either way.
        let ambiguous = dense.lambda.iter().filter(|l| (*l + eps).abs() <= tol).count();
        row.inertia_ok = (i.positive as i64 - pos as i64).unsigned_abs() as usize <= ambiguous
            && (i.negative as i64 - neg as i64).unsigned_abs() as usize <= ambiguous
            && i.positive + i.negative + i.zero == pos + neg + zero;
        match f.solve_raw(faer::MatRef::from_column_major_slice(&g, p, 1)) {
            Ok(x) => {
                let x: Vec<f64> = x.col(0).iter().copied().collect();
                row.raw_be = dense.backward_error(eps, &g, &x);
                row.raw_fe = rel_diff(&x, &x_ref);
            }
            Err(e) => row.failure = Some(e.to_string()),
        }
        let threshold = 64.0 * U;
        match f.solve_refined(&g, threshold, 5) {
            Ok((x, rep)) => {
                row.ref_be = dense.backward_error(eps, &g, &x);
                row.ref_fe = rel_diff(&x, &x_ref);
                row.iterations = rep.iterations;
            }
            Err(e) => row.failure = Some(e.to_string()),
        }
        rows.push(row);
    }
    rows
}

fn sci(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{x:.1e}")
    }
}

fn main() {
    let quick = std::env::var_os("NUMERICS_QUICK").is_some();
    let eps_list: Vec<f64> = (0..=12).map(|k| 10f64.powi(-k)).collect();
    // (depth, width): p stays below ~2500 so the dense route takes seconds.
    let shapes: &[(usize, usize)] =
        if quick { &[(8, 8), (32, 6)] } else { &[(8, 8), (32, 6), (64, 5), (128, 4), (256, 3)] };
    let acts = [(Activation::Tanh, "tanh"), (Activation::Gelu, "gelu"), (Activation::Relu, "relu")];
    let mut rows = Vec::new();
    let t0 = Instant::now();
    for &(act, name) in &acts {
        for gain in [1.0, 2.0] {
            for &(depth, width) in shapes {
                let t = Instant::now();
                let r = study(act, name, gain, depth, width, &eps_list);
                eprintln!(
                    "{name} gain {gain} depth {depth} width {width}: p = {}, {:.1} s",
                    r.first().map_or(0, |r| r.params),
                    t.elapsed().as_secs_f64()
                );
                rows.extend(r);
            }
        }
    }
    eprintln!("total {:.1} s", t0.elapsed().as_secs_f64());

    let mut csv = String::from(
        "act,gain,depth,params,eps,cond,raw_be,raw_fe,refined_be,refined_fe,iterations,logdet_rel,logdet_block_rel,inertia_ok,growth,min_pivot,max_block_cond,default_singular,failure\n",
    );
    for r in &rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{:e},{:e},{:e},{:e},{:e},{:e},{},{:e},{:e},{},{:e},{:e},{:e},{},{}",
            r.act,
            r.gain,
            r.depth,
            r.params,
            r.eps,
            r.cond,
            r.raw_be,
            r.raw_fe,
            r.ref_be,
            r.ref_fe,
            r.iterations,
            r.logdet_rel,
            r.logdet_block_rel,
            r.inertia_ok,
            r.growth,
            r.min_pivot,
            r.max_block_cond,
            r.default_singular,
            r.failure.as_deref().unwrap_or("").replace(',', ";")
        );
    }
    std::fs::write("numerics.csv", csv).expect("write numerics.csv");

    // Summary: one row per network. "Accepted" rows are the eps the default
    // factorization accepts (the others it refuses with `Singular`): what a
    // user of the tool gets. The last columns cover every eps, factored
    // with `singular_tol = 0`.
    println!("| act | gain | depth | p | ‖H‖ | default Singular at eps ≤ | raw BE | refined BE | refined FE/(cond u) | steps | log-det rel err | inertia | raw BE, all eps | refined FE/(cond u), all eps | log-det rel err, all eps | growth, all eps |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut i = 0;
    while i < rows.len() {
        let (a, g, d) = (rows[i].act, rows[i].gain, rows[i].depth);
        let group: Vec<&Row> = rows[i..].iter().take_while(|r| r.act == a && r.gain == g && r.depth == d).collect();
        i += group.len();
        let max_over = |acc: bool, f: &dyn Fn(&Row) -> f64| {
            group
                .iter()
                .filter(|r| !acc || !r.default_singular)
                .map(|r| f(r))
                .filter(|v| v.is_finite())
                .fold(f64::NAN, f64::max)
        };
        let sing = group.iter().filter(|r| r.default_singular).map(|r| r.eps).fold(f64::NAN, f64::max);
        let bad_inertia = group.iter().filter(|r| !r.default_singular && r.failure.is_none() && !r.inertia_ok).count();
        let failures = group.iter().filter(|r| r.failure.is_some()).count();
        println!(
            "| {a} | {g} | {d} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            group[0].params,
            sci(group[0].norm),
            if sing.is_nan() { "never".to_string() } else { format!("{sing:.0e}") },
            sci(max_over(true, &|r| r.raw_be)),
            sci(max_over(true, &|r| r.ref_be)),
            sci(max_over(true, &|r| r.ref_fe / (r.cond * U))),
            max_over(true, &|r| r.iterations as f64),
            sci(max_over(true, &|r| r.logdet_rel)),
            if bad_inertia == 0 { "agrees".to_string() } else { format!("{bad_inertia} off") },
            sci(max_over(false, &|r| r.raw_be)),
            sci(max_over(false, &|r| r.ref_fe / (r.cond * U))),
            sci(max_over(false, &|r| r.logdet_rel)),
            sci(max_over(false, &|r| r.growth))
                + &if failures > 0 { format!(" ({failures} failed)") } else { String::new() },
        );
    }

    // Accuracy against the condition number, over every network and eps
    // (factored with `singular_tol = 0`).
    println!(
        "\n| cond(H + eps I) | cases | raw BE | raw FE | refined FE | log-det rel err | block-pivot log-det rel err | inertia off |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let decade = |r: &Row| r.cond.log10().floor() as i32;
    let measured: Vec<&Row> = rows.iter().filter(|r| r.failure.is_none() && r.raw_be.is_finite()).collect();
    let (lo, hi) = measured.iter().fold((i32::MAX, i32::MIN), |(lo, hi), r| (lo.min(decade(r)), hi.max(decade(r))));
    for k in lo..=hi {
        let b: Vec<&&Row> = measured.iter().filter(|r| decade(r) == k).collect();
        if b.is_empty() {
            continue;
        }
        let worst = |f: &dyn Fn(&Row) -> f64| b.iter().map(|r| f(r)).fold(f64::NAN, f64::max);
        println!(
            "| 1e{k} .. 1e{} | {} | {} | {} | {} | {} | {} | {} |",
            k + 1,
            b.len(),
            sci(worst(&|r| r.raw_be)),
            sci(worst(&|r| r.raw_fe)),
            sci(worst(&|r| r.ref_fe)),
            sci(worst(&|r| r.logdet_rel)),
            sci(worst(&|r| r.logdet_block_rel)),
            b.iter().filter(|r| !r.inertia_ok).count(),
        );
    }

    // Full sweeps of the deepest gain-2 networks.
    let deepest = rows.iter().map(|r| r.depth).max().unwrap_or(0);
    for (act, depth) in [("tanh", deepest), ("gelu", deepest), ("relu", deepest), ("relu", 8)] {
        println!("\n#### {act}, gain 2, depth {depth}\n");
        println!("| eps | cond | raw BE | raw FE | refined BE | refined FE | steps | log-det rel err | inertia | growth | min pivot | max block cond | default Singular |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for r in rows.iter().filter(|r| r.act == act && r.gain == 2.0 && r.depth == depth) {
            if let Some(f) = &r.failure {
                println!("| {:.0e} | {} | {f} |||||||||||", r.eps, sci(r.cond));
                continue;
            }
            println!(
                "| {:.0e} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.eps,
                sci(r.cond),
                sci(r.raw_be),
                sci(r.raw_fe),
                sci(r.ref_be),
                sci(r.ref_fe),
                r.iterations,
                sci(r.logdet_rel),
                if r.inertia_ok { "agrees" } else { "off" },
                sci(r.growth),
                sci(r.min_pivot),
                sci(r.max_block_cond),
                if r.default_singular { "yes" } else { "no" },
            );
        }
    }
}
