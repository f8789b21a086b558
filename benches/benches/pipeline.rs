//! The whole pipeline on tanh networks with cross-entropy (input 5, 3
//! classes): derivative blocks, factorization, solve, HVP and end to end,
//! over depth, width and batch, with the baselines measured in the same run
//! (dense Hessian and solve, CG and MINRES on the HVP, plain Bunch–Kaufman of
//! the same block sizes, GEMM), and a sweep over `eps` of hinv against the
//! Krylov solvers at equal accuracy on a curvier (gain 2) network. The
//! width and batch sweeps (`grid::SWEEP_WIDTHS`, `grid::SWEEP_BATCHES`)
//! add their points outside the grid measured end to end and dense only.
//!
//! `HINV_BENCH=quick` (default) runs a subset in about six minutes on two
//! cores; `HINV_BENCH=full` the whole grid. Iteration counts, residuals and
//! sizes go to `target/hinv-bench/pipeline.json`; the model files of the
//! reference configuration to `target/hinv-bench/model/` (for timing the
//! `hinv solve` binary). `HINV_BENCH_ONLY=<label>` keeps only matching
//! configurations (`eps` for the sweep). `cargo xtask bench` runs this and
//! writes the report.

use std::collections::BTreeSet;
use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode};
use faer::{Mat, MatRef};
use hinv::reference::{self, DenseLimit};
use hinv::Curvature;
use hinv_benches::grid::{Config, Mode};
use hinv_benches::kernels::{gemm, random_mat, random_sym, BunchKaufman};
use hinv_benches::side::{output_dir, SideFile};
use serde_json::json;

/// The regularisation of the grid (the demo's).
const EPS: f64 = 1e-3;
/// Relative residual the Krylov baselines must reach.
const KRYLOV_TOL: f64 = 1e-8;
/// Gain of the parameters in the `eps` sweep: the default initialisation
/// gives an almost vanishing Hessian, on which every solver is trivial.
const SWEEP_GAIN: f64 = 2.0;

fn group<'a>(c: &'a mut Criterion, name: &str, mode: Mode) -> BenchmarkGroup<'a, WallTime> {
    let (samples, warm, meas) = mode.timing();
    let mut g = c.benchmark_group(name);
    // Flat sampling: the slow cases (dense, deep factorizations) then run
    // `samples` iterations instead of criterion's linear ramp of 55.
    g.sample_size(samples).warm_up_time(warm).measurement_time(meas).sampling_mode(SamplingMode::Flat);
    g
}

/// A fixed random right-hand side of unit norm. Not the gradient: it
/// vanishes with depth at the default initialisation (every solver would
/// then stop at iteration zero).
fn unit_rhs(p: usize) -> Vec<f64> {
    let v = random_mat(99, p, 1);
    let n = v.col(0).norm_l2();
    v.col(0).iter().map(|x| x / n).collect()
}

fn rel_residual(curv: &Curvature, eps: f64, b: &[f64], x: &[f64]) -> f64 {
    let ax = curv.shifted_hvp(eps, x).expect("hvp");
    let r: f64 = b.iter().zip(&ax).map(|(bi, ai)| (bi - ai).powi(2)).sum::<f64>().sqrt();
    r / b.iter().map(|v| v * v).sum::<f64>().sqrt().max(f64::MIN_POSITIVE)
}

/// Lifted block sizes `n_l = p_l + 2 a_l`.
fn block_sizes(curv: &Curvature) -> Vec<usize> {
    let d = curv.derivatives();
    d.param_sizes.iter().zip(&d.act_sizes[1..]).map(|(p, a)| p + 2 * a).collect()
}

fn krylov_json(r: &hinv::KrylovReport) -> serde_json::Value {
    json!({"iterations": r.iterations, "relative_residual": r.relative_residual,
           "converged": r.converged, "indefinite": r.indefinite})
}

/// Every phase and baseline of one configuration.
fn bench_config(g: &mut BenchmarkGroup<'_, WallTime>, cfg: Config, mode: Mode, side: &mut SideFile) {
    let (net, batch) = (cfg.network(), cfg.data());
    let params = cfg.params(&net, 1.0);
    let curv = Curvature::new(&net, &params, &batch).expect("curvature");
    let p = curv.num_params();
    let rhs = unit_rhs(p);
    let id = cfg.label();
    let max_iter = 4 * p;

    g.bench_function(BenchmarkId::new("derivatives", &id), |b| {
        b.iter(|| Curvature::new(black_box(&net), &params, &batch).expect("curvature"))
    });
    g.bench_function(BenchmarkId::new("factor", &id), |b| b.iter(|| curv.factor(black_box(EPS)).expect("factor")));
    // `Factorization::log_det`'s first call (it keeps its answer), on a
    // fresh factorization made outside the timing.
    g.bench_function(BenchmarkId::new("log_det", &id), |b| {
        // (By reference: the factorization is dropped outside the timing.)
        b.iter_batched_ref(
            || curv.factor(EPS).expect("factor"),
            |f| f.log_det().expect("log-det"),
            criterion::BatchSize::LargeInput,
        )
    });
    let f = curv.factor(EPS).expect("factor");
    // The first refined solve also estimates ||H + eps I|| (cached after).
    let sol = f.solve_with(MatRef::from_column_major_slice(&rhs, p, 1), &hinv::SolveOptions::default()).expect("solve");
    let (x, report): (Vec<f64>, _) = (sol.x.col(0).iter().copied().collect(), sol.report);
    // The solve without refinement: both stages' sweeps (the parameters',
    // `R`'s, including its blocks eliminated in closed form, which
    // `block_ldlt()` does not hold) and the one HVP that scores the answer.
    // (Any tolerance is met, so the block answer stands: no pivoted
    // fallback, whose factorization and correction the default one may
    // call for.)
    let raw = hinv::SolveOptions { max_refinements: 0, accept_inexact: true, tolerance: f64::MAX };
    g.bench_function(BenchmarkId::new("solve_raw", &id), |b| {
        b.iter(|| f.solve_with(black_box(MatRef::from_column_major_slice(&rhs, p, 1)), &raw).expect("solve"))
    });
    g.bench_function(BenchmarkId::new("solve", &id), |b| b.iter(|| f.solve(black_box(&rhs)).expect("solve")));
    g.bench_function(BenchmarkId::new("hvp", &id), |b| b.iter(|| curv.hvp(black_box(&rhs)).expect("hvp")));
    bench_end_to_end(g, &cfg, &rhs);

    let cg = curv.conjugate_gradient(EPS, &rhs, KRYLOV_TOL, max_iter).expect("cg");
    g.bench_function(BenchmarkId::new("cg", &id), |b| {
        b.iter(|| curv.conjugate_gradient(EPS, black_box(&rhs), KRYLOV_TOL, max_iter).expect("cg"))
    });
    let mr = curv.minres(EPS, &rhs, KRYLOV_TOL, max_iter).expect("minres");
    g.bench_function(BenchmarkId::new("minres", &id), |b| {
        b.iter(|| curv.minres(EPS, black_box(&rhs), KRYLOV_TOL, max_iter).expect("minres"))
    });

    // Plain Bunch–Kaufman of every lifted block size: what the block LDL^T
    // costs at least, so the ratio is the recursion's overhead.
    let sizes = block_sizes(&curv);
    let mut mats: Vec<Mat<f64>> = sizes.iter().enumerate().map(|(l, &n)| random_sym(l as u64, n)).collect();
    let mut scratch: Vec<BunchKaufman> = sizes.iter().map(|&n| BunchKaufman::new(n)).collect();
    g.bench_function(BenchmarkId::new("bk_sum", &id), |b| {
        b.iter_batched_ref(
            || mats.clone(),
            |ms| ms.iter_mut().zip(scratch.iter_mut()).for_each(|(m, s)| s.factor(m)),
            BatchSize::LargeInput,
        )
    });
    mats.clear();

    let dense = bench_dense(g, &curv, &id, &rhs, &x, mode);

    let hidden_n = sizes.get(1).copied().unwrap_or(sizes[0]);
    side.insert(
        id,
        json!({
            "depth": cfg.depth, "width": cfg.width, "batch": cfg.batch, "params": p,
            "lifted_dim": f.lifted_dim(), "block_sizes": sizes, "hidden_block": hidden_n,
            "factor_flops": block_sizes(&curv).iter().map(|&n| (n as f64).powi(3) / 3.0).sum::<f64>(),
            "eps": EPS, "hinv_relative_residual": rel_residual(&curv, EPS, &rhs, &x),
            "hinv_backward_error": report.backward_error, "hinv_refinement_steps": report.refinements,
            "cg": krylov_json(&cg), "minres": krylov_json(&mr), "dense": dense,
        }),
    );
}

/// `end_to_end`: derivative blocks, factorization and refined solve, from
/// the network and batch.
fn bench_end_to_end(g: &mut BenchmarkGroup<'_, WallTime>, cfg: &Config, rhs: &[f64]) {
    let (net, batch) = (cfg.network(), cfg.data());
    let params = cfg.params(&net, 1.0);
    g.bench_function(BenchmarkId::new("end_to_end", cfg.label()), |b| {
        b.iter(|| {
            let c = Curvature::new(black_box(&net), &params, &batch).expect("curvature");
            let f = c.factor(EPS).expect("factor");
            f.solve(rhs).expect("solve")
        })
    });
}

/// `dense`: the dense Hessian and its LU solve, when `p` is at most
/// [`Mode::dense_max_params`]; its difference to hinv's solution `x` for
/// the side file (`null` when skipped).
fn bench_dense(
    g: &mut BenchmarkGroup<'_, WallTime>,
    curv: &Curvature,
    id: &str,
    rhs: &[f64],
    x: &[f64],
    mode: Mode,
) -> serde_json::Value {
    if curv.num_params() > mode.dense_max_params() {
        return serde_json::Value::Null;
    }
    let limit = DenseLimit::default();
    let h = reference::hessian(curv, limit).expect("dense hessian");
    let xd = reference::solve(h.as_ref(), EPS, rhs).expect("dense solve");
    let diff = x.iter().zip(&xd).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt()
        / xd.iter().map(|v| v * v).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    drop(h);
    g.bench_function(BenchmarkId::new("dense", id), |b| {
        b.iter(|| {
            let h = reference::hessian(curv, limit).expect("dense hessian");
            reference::solve(h.as_ref(), EPS, black_box(rhs)).expect("dense solve")
        })
    });
    json!({"relative_difference_to_hinv": diff})
}

/// A point of the width or batch sweep outside the full grid: derivative
/// blocks, end to end and the dense route (where it fits) only.
fn bench_sweep_point(g: &mut BenchmarkGroup<'_, WallTime>, cfg: Config, mode: Mode, side: &mut SideFile) {
    let (net, batch) = (cfg.network(), cfg.data());
    let params = cfg.params(&net, 1.0);
    let curv = Curvature::new(&net, &params, &batch).expect("curvature");
    let p = curv.num_params();
    let rhs = unit_rhs(p);
    let id = cfg.label();
    g.bench_function(BenchmarkId::new("derivatives", &id), |b| {
        b.iter(|| Curvature::new(black_box(&net), &params, &batch).expect("curvature"))
    });
    bench_end_to_end(g, &cfg, &rhs);
    let x = curv.factor(EPS).expect("factor").solve(&rhs).expect("solve");
    let dense = bench_dense(g, &curv, &id, &rhs, &x, mode);
    let sizes = block_sizes(&curv);
    side.insert(
        id,
        json!({
            "depth": cfg.depth, "width": cfg.width, "batch": cfg.batch, "params": p, "sweep_only": true,
            "block_sizes": sizes, "hidden_block": sizes.get(1).copied().unwrap_or(sizes[0]),
            "factor_flops": sizes.iter().map(|&n| (n as f64).powi(3) / 3.0).sum::<f64>(),
            "eps": EPS, "hinv_relative_residual": rel_residual(&curv, EPS, &rhs, &x), "dense": dense,
        }),
    );
}

/// Sequential GEMM of every hidden lifted block size met in the grid.
fn bench_gemm(c: &mut Criterion, sizes: &BTreeSet<usize>, mode: Mode) {
    let mut g = group(c, "pipeline_gemm", mode);
    for &n in sizes {
        let (a, b) = (random_mat(1, n, n), random_mat(2, n, n));
        let mut out = Mat::zeros(n, n);
        g.bench_function(BenchmarkId::from_parameter(n), |bch| bch.iter(|| gemm(&mut out, black_box(&a), &b)));
    }
    g.finish();
}

/// The `eps` of the sweep: 1e-1 down to 1e-8 (every decade in full mode),
/// where `H + eps I` is indefinite for the gain-2 network, then shifts
/// `eps = -lambda_min * s` that make it positive definite with a condition
/// number growing as `s -> 1`, where CG applies at all: the crossover
/// between hinv and CG lies among them.
fn sweep_eps(mode: Mode, lambda_min: f64) -> Vec<f64> {
    let (decades, shifts): (Vec<i32>, &[f64]) = match mode {
        Mode::Quick => (vec![1, 4, 8], &[10.0, 2.0, 1.1, 1.01, 1.001]),
        Mode::Full => ((1..=8).collect(), &[10.0, 2.0, 1.1, 1.01, 1.001, 1.0001]),
    };
    let mut eps: Vec<f64> = decades.into_iter().map(|k| 10f64.powi(-k)).collect();
    if lambda_min < 0.0 {
        eps.splice(0..0, shifts.iter().map(|s| -lambda_min * s));
    }
    eps
}

/// hinv (factor + refined solve) against CG and MINRES to relative residual
/// 1e-8 over [`sweep_eps`], with cond(H + eps I) from the spectrum.
fn bench_eps_sweep(c: &mut Criterion, mode: Mode, side: &mut SideFile) {
    let cfg = Config::DEMO;
    let (net, batch) = (cfg.network(), cfg.data());
    let params = cfg.params(&net, SWEEP_GAIN);
    let curv = Curvature::new(&net, &params, &batch).expect("curvature");
    let p = curv.num_params();
    let rhs = unit_rhs(p);
    let h = reference::hessian(&curv, DenseLimit::default()).expect("dense hessian");
    let spec = reference::spectrum(h.as_ref()).expect("spectrum");
    drop(h);
    let max_iter = match mode {
        Mode::Quick => p,
        Mode::Full => 5 * p,
    };
    let mut g = group(c, "pipeline_eps", mode);
    let mut rows = Vec::new();
    for eps in sweep_eps(mode, spec.eigenvalues.first().copied().unwrap_or(0.0)) {
        let label = format!("{eps:.4e}");
        let f = curv.factor(eps).expect("factor");
        let x = f.solve(&rhs).expect("solve");
        let cg = curv.conjugate_gradient(eps, &rhs, KRYLOV_TOL, max_iter).expect("cg");
        let mr = curv.minres(eps, &rhs, KRYLOV_TOL, max_iter).expect("minres");
        rows.push(json!({
            "eps": eps, "label": label, "condition": spec.condition(eps),
            "negative_eigenvalues": f.inertia().negative,
            "hinv_relative_residual": rel_residual(&curv, eps, &rhs, &x),
            "cg": krylov_json(&cg), "minres": krylov_json(&mr),
        }));
        g.bench_function(BenchmarkId::new("hinv", &label), |b| {
            b.iter(|| curv.factor(black_box(eps)).expect("factor").solve(&rhs).expect("solve"))
        });
        g.bench_function(BenchmarkId::new("cg", &label), |b| {
            b.iter(|| curv.conjugate_gradient(black_box(eps), &rhs, KRYLOV_TOL, max_iter).expect("cg"))
        });
        g.bench_function(BenchmarkId::new("minres", &label), |b| {
            b.iter(|| curv.minres(black_box(eps), &rhs, KRYLOV_TOL, max_iter).expect("minres"))
        });
    }
    g.finish();
    let (lo, hi) = (spec.eigenvalues.first().copied(), spec.eigenvalues.last().copied());
    side.insert(
        "eps_sweep",
        json!({"config": cfg.label(), "gain": SWEEP_GAIN, "params": p, "max_iterations": max_iter,
               "tolerance": KRYLOV_TOL, "lambda_min": lo, "lambda_max": hi, "rows": rows}),
    );
}

/// The model files of the reference configuration, for timing `hinv solve`.
fn write_reference_model() -> std::path::PathBuf {
    let cfg = Config::REFERENCE;
    let (net, batch) = (cfg.network(), cfg.data());
    let params = cfg.params(&net, 1.0);
    let dir = output_dir().join("model");
    std::fs::create_dir_all(&dir).expect("model directory");
    netgraph::save_spec(&net, dir.join("net.json")).expect("spec");
    netgraph::save_weights(&net, &params, dir.join("net.safetensors"), netgraph::Dtype::F64).expect("weights");
    netgraph::save_batch(&batch, dir.join("inputs.npy"), dir.join("targets.npy")).expect("batch");
    dir
}

fn main() {
    let mode = Mode::from_env();
    let mut c = Criterion::default().configure_from_args();
    let mut side = SideFile::new();
    side.insert("mode", json!(mode.name()));
    side.insert("dense_max_params", json!(mode.dense_max_params()));
    side.insert("model_dir", json!(write_reference_model()));

    // `HINV_BENCH_ONLY=L256_h8_B2` (or `eps`) restricts the run, set-up
    // included, to matching configurations: for profiling one case.
    let only = std::env::var("HINV_BENCH_ONLY").ok();
    let keep = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let configs: Vec<Config> = mode.configs().into_iter().filter(|c| keep(&c.label())).collect();
    let mut g = group(&mut c, "pipeline", mode);
    for &cfg in &configs {
        bench_config(&mut g, cfg, mode, &mut side);
    }
    for cfg in mode.sweep_configs().into_iter().filter(|c| keep(&c.label())) {
        bench_sweep_point(&mut g, cfg, mode, &mut side);
    }
    g.finish();
    let hidden: BTreeSet<usize> = configs.iter().map(|c| c.width * c.width + 2 * c.batch * c.width).collect();
    bench_gemm(&mut c, &hidden, mode);
    if keep("eps") {
        bench_eps_sweep(&mut c, mode, &mut side);
    }

    // A restricted run must not overwrite the side file of a whole one.
    let path = side.write(if only.is_some() { "pipeline_partial" } else { "pipeline" }).expect("side file");
    eprintln!("pipeline: side file {}", path.display());
    c.final_summary();
}
