//! `hinv demo`: the reference demonstration. A 30-layer tanh network (input
//! 5, hidden 10, 3 classes, batch 2, no bias, eps 1e-3) solved by the
//! structured route and by the dense route, then the same comparison on the
//! network with its weights scaled up, where `H` is indefinite and
//! ill-conditioned (the reference configuration alone is nearly trivial:
//! its Hessian almost vanishes, so `x ~ g / eps`).

use std::path::Path;

use hinv::reference::{self, DenseLimit};
use hinv::{Curvature, Inertia};
use netgraph::{Activation, Batch, Network};
use serde::Serialize;
use serde_json::json;

use super::commands::CliError;
use super::progress::phase;

/// One demo configuration.
struct Case {
    name: &'static str,
    gain: f64,
    eps: f64,
    /// Largest relative error against the dense solve that counts as agreement.
    bar: f64,
}

const INPUT: usize = 5;
const HIDDEN: usize = 10;
const DEPTH: usize = 30;
const CLASSES: usize = 3;
const BATCH: usize = 2;
const SEED: u64 = 20240601;

#[derive(Debug, Serialize)]
struct CaseReport {
    name: &'static str,
    gain: f64,
    eps: f64,
    params: usize,
    layers: usize,
    lifted_dim: usize,
    timings_s: Timings,
    relative_error_vs_dense: f64,
    cond_h: f64,
    cond_h_eps: f64,
    log_abs_det: f64,
    log_abs_det_dense: f64,
    inertia: Inertia,
    inertia_dense: Inertia,
    count_threshold: f64,
    eigenvalues_below: usize,
    eigenvalues_below_dense: usize,
}

#[derive(Debug, Serialize)]
struct Timings {
    derivatives: f64,
    factor: f64,
    solve: f64,
    hvp: f64,
    log_det: f64,
    count: f64,
    dense_hessian: f64,
    dense_solve: f64,
    dense_eigen: f64,
}

fn network() -> Result<Network, CliError> {
    Ok(Network::builder(INPUT).without_bias().dense(HIDDEN, Activation::Tanh).repeat(DEPTH).cross_entropy(CLASSES)?)
}

fn run_case(case: &Case) -> Result<(CaseReport, Curvature), CliError> {
    let net = network()?;
    let mut params = net.init_params(SEED);
    params.scale(case.gain);
    let batch = Batch::random_classification(INPUT, CLASSES, BATCH, SEED + 1);

    let (curv, t_derivs) = phase("derivative blocks", || Curvature::new(&net, &params, &batch));
    let curv = curv?;
    let g = curv.gradient().to_vec();
    let (f, t_factor) = phase("factorization", || curv.factor(case.eps));
    let f = f?;
    let (x, t_solve) = phase("solve", || f.solve(&g));
    let x = x?;
    let (_hv, t_hvp) = phase("Hessian-vector product", || curv.hvp(&g));
    let (log_det, t_log_det) = phase("log-determinant", || f.log_det());
    let log_abs_det = log_det?.log_abs;

    let (h, t_dense_h) = phase("dense Hessian", || reference::hessian(&curv, DenseLimit::default()));
    let h = h?;
    let (xd, t_dense_solve) = phase("dense solve", || reference::solve(h.as_ref(), case.eps, &g));
    let xd = xd?;
    let (spec, t_eigen) = phase("dense eigenvalues", || reference::spectrum(h.as_ref()));
    let spec = spec?;

    let threshold = count_threshold(&spec.eigenvalues, case.eps);
    let (below, t_count) = phase("eigenvalue count", || curv.count_eigenvalues_below(threshold));
    let diff: f64 = x.iter().zip(&xd).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
    let rel = diff / xd.iter().map(|v| v * v).sum::<f64>().sqrt();
    // Eigenvalues closer to -eps than this are reported as zeros by both routes.
    let tol = 1e-12 * spec.eigenvalues.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let report = CaseReport {
        name: case.name,
        gain: case.gain,
        eps: case.eps,
        params: curv.num_params(),
        layers: curv.num_layers(),
        lifted_dim: f.lifted_dim(),
        timings_s: Timings {
            derivatives: t_derivs,
            factor: t_factor,
            solve: t_solve,
            hvp: t_hvp,
            log_det: t_log_det,
            count: t_count,
            dense_hessian: t_dense_h,
            dense_solve: t_dense_solve,
            dense_eigen: t_eigen,
        },
        relative_error_vs_dense: rel,
        cond_h: spec.condition(0.0),
        cond_h_eps: spec.condition(case.eps),
        log_abs_det,
        log_abs_det_dense: spec.log_det(case.eps).log_abs,
        inertia: f.inertia(),
        inertia_dense: spec.inertia(case.eps, tol),
        count_threshold: threshold,
        eigenvalues_below: below?.count,
        eigenvalues_below_dense: spec.count_below(threshold),
    };
    Ok((report, curv))
}

/// A negative threshold for the eigenvalue count that sits in the widest gap
/// of the dense spectrum below zero, so that the count is well defined (the
/// near-zero cluster of `H`'s eigenvalues makes a count below 0 itself
/// meaningless); `-eps / 2` when no gap is found.
fn count_threshold(ev: &[f64], eps: f64) -> f64 {
    let scale = ev.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut best = (-eps / 2.0, 0.0);
    for w in ev.windows(2) {
        let (mid, gap) = (0.5 * (w[0] + w[1]), w[1] - w[0]);
        if mid < -1e-6 * scale && gap > best.1 {
            best = (mid, gap);
        }
    }
    best.0
}

fn check(r: &CaseReport, bar: f64) -> Vec<String> {
    let mut bad = Vec::new();
    // NaN must fail too, hence `within` rather than a negated `>`.
    let within = |x: f64, bar: f64| x <= bar;
    if !within(r.relative_error_vs_dense, bar) {
        bad.push(format!("{}: relative error {:.3e} above {bar:.0e}", r.name, r.relative_error_vs_dense));
    }
    let ld_rel = (r.log_abs_det - r.log_abs_det_dense).abs() / r.log_abs_det_dense.abs().max(1.0);
    if !within(ld_rel, 1e-9) {
        bad.push(format!("{}: log-det differs from the dense one by {ld_rel:.3e} (relative)", r.name));
    }
    if r.eigenvalues_below != r.eigenvalues_below_dense {
        bad.push(format!(
            "{}: {} eigenvalues below {:e}, dense {}",
            r.name, r.eigenvalues_below, r.count_threshold, r.eigenvalues_below_dense
        ));
    }
    if (r.inertia.positive, r.inertia.negative, r.inertia.zero)
        != (r.inertia_dense.positive, r.inertia_dense.negative, r.inertia_dense.zero)
        || !r.inertia.is_certified()
    {
        bad.push(format!("{}: inertia {:?} differs from the dense {:?}", r.name, r.inertia, r.inertia_dense));
    }
    bad
}

fn print_case(r: &CaseReport, bar: f64) {
    let t = &r.timings_s;
    let ms = |s: f64| s * 1e3;
    println!("== {} (weights x {}, eps = {:e})", r.name, r.gain, r.eps);
    println!(
        "   sizes: {} parameters, {} layers, lifted system {} x {}",
        r.params, r.layers, r.lifted_dim, r.lifted_dim
    );
    println!(
        "   hinv:  derivative blocks {:7.2} ms | factor {:7.2} ms | solve {:7.2} ms | hvp {:6.2} ms | log-det {:6.2} ms",
        ms(t.derivatives),
        ms(t.factor),
        ms(t.solve),
        ms(t.hvp),
        ms(t.log_det)
    );
    println!(
        "   dense: Hessian {:9.2} ms | solve  {:7.2} ms | eigenvalues {:7.2} ms",
        ms(t.dense_hessian),
        ms(t.dense_solve),
        ms(t.dense_eigen)
    );
    println!("   cond(H) = {:.3e}, cond(H + eps I) = {:.3e}", r.cond_h, r.cond_h_eps);
    println!(
        "   ||x - x_dense|| / ||x_dense|| = {:.3e}   (bar {bar:.0e}) {}",
        r.relative_error_vs_dense,
        if r.relative_error_vs_dense <= bar { "ok" } else { "FAIL" }
    );
    println!(
        "   log|det(H + eps I)|: hinv {:.12e}, dense {:.12e} (relative difference {:.1e}, bar 1e-9)",
        r.log_abs_det,
        r.log_abs_det_dense,
        (r.log_abs_det - r.log_abs_det_dense).abs() / r.log_abs_det_dense.abs().max(1.0)
    );
    println!(
        "   inertia (+, -, 0):   hinv ({}, {}, {}), dense ({}, {}, {})",
        r.inertia.positive,
        r.inertia.negative,
        r.inertia.zero,
        r.inertia_dense.positive,
        r.inertia_dense.negative,
        r.inertia_dense.zero
    );
    println!(
        "   eigenvalues of H below {:.4e}: hinv {} (one factorization, {:.2} ms), dense {}",
        r.count_threshold,
        r.eigenvalues_below,
        ms(t.count),
        r.eigenvalues_below_dense
    );
}

/// Pictures of the non-zero pattern of `K` and of its interleaved form
/// `K'`, for the demo network and for a 4-layer version of it (where the
/// blocks are large enough to see).
fn write_pictures(curv: &Curvature, eps: f64, dir: &Path) -> Result<Vec<String>, CliError> {
    let io = |path: &Path, e: std::io::Error| CliError::Io { path: path.display().to_string(), source: e };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let small_net =
        Network::builder(INPUT).without_bias().dense(HIDDEN, Activation::Tanh).repeat(3).cross_entropy(CLASSES)?;
    let small = Curvature::new(
        &small_net,
        &small_net.init_params(SEED),
        &Batch::random_classification(INPUT, CLASSES, BATCH, SEED + 1),
    )?;
    let mut written = Vec::new();
    for (c, suffix) in [(curv, ""), (&small, "_4layers")] {
        let k = c.lifted_grid(eps)?;
        let kp = blockmat::Block::Tridiag(c.lifted_tridiag(eps)?);
        let layers = c.num_layers();
        for (name, block, title) in [
            ("K", &k, format!("K, {layers} layers: unknowns (x, y, z), each split by layer")),
            ("K_interleaved", &kp, format!("K' = P K P^T, {layers} layers: unknowns (x_l, y_l, z_l) per layer")),
        ] {
            let path = dir.join(format!("{name}{suffix}.svg"));
            // About 900 pixels across, whatever the size of the system.
            let cell = 900.0 / block.nrows().max(1) as f64;
            let opts = blockmat::SvgOptions { cell, ..Default::default() }.with_partition_of(block).with_title(title);
            std::fs::write(&path, block.pattern().to_svg(&opts)).map_err(|e| io(&path, e))?;
            written.push(path.display().to_string());
        }
    }
    Ok(written)
}

/// The Gauss–Newton line: the scaled-up network's GGN by hinv's automatic
/// route against the dense GGN (solve and log-det), and its inertia.
#[derive(Debug, Serialize)]
struct GgnReport {
    route: hinv::Route,
    relative_error_vs_dense: f64,
    log_abs_det: f64,
    log_abs_det_dense: f64,
    inertia: Inertia,
    time_s: f64,
    dense_time_s: f64,
}

fn run_ggn(eps: f64) -> Result<GgnReport, CliError> {
    let net = network()?;
    let mut params = net.init_params(SEED);
    params.scale(2.5);
    let batch = Batch::random_classification(INPUT, CLASSES, BATCH, SEED + 1);
    let opts = hinv::CurvatureOptions { kind: hinv::CurvatureKind::GaussNewton, ..Default::default() };
    let t = std::time::Instant::now();
    let curv = Curvature::new_with(&net, &params, &batch, &opts)?;
    let g = curv.gradient().to_vec();
    let f = curv.factor_route(eps, &hinv::FactorOptions::default(), None)?;
    let x = f.solve(&g)?;
    let log_abs_det = f.log_det()?.log_abs;
    let time_s = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let h = reference::hessian(&curv, DenseLimit::default())?;
    let xd = reference::solve(h.as_ref(), eps, &g)?;
    let spec = reference::spectrum(h.as_ref())?;
    let dense_time_s = t.elapsed().as_secs_f64();
    let diff: f64 = x.iter().zip(&xd).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
    let rel = diff / xd.iter().map(|v| v * v).sum::<f64>().sqrt();
    Ok(GgnReport {
        route: f.route(),
        relative_error_vs_dense: rel,
        log_abs_det,
        log_abs_det_dense: spec.log_det(eps).log_abs,
        inertia: f.inertia(),
        time_s,
        dense_time_s,
    })
}

/// Runs the demonstration; fails if the structured and dense routes disagree.
pub fn run(out_dir: &Path, json_out: bool) -> Result<(), CliError> {
    let cases = [
        Case { name: "reference", gain: 1.0, eps: 1e-3, bar: 1e-10 },
        Case { name: "scaled-up", gain: 2.5, eps: 1e-3, bar: 1e-6 },
    ];
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    let mut pictures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let (r, curv) = run_case(case)?;
        if i == 0 {
            pictures = write_pictures(&curv, case.eps, out_dir)?;
        }
        failures.extend(check(&r, case.bar));
        reports.push(r);
    }
    let ggn = run_ggn(1e-3)?;
    let ggn_ld = (ggn.log_abs_det - ggn.log_abs_det_dense).abs() / ggn.log_abs_det_dense.abs().max(1.0);
    if !(ggn.relative_error_vs_dense <= 1e-8
        && ggn_ld <= 1e-9
        && ggn.inertia.negative == 0
        && ggn.inertia.is_certified())
    {
        failures.push(format!(
            "ggn: relative error {:.3e}, log-det {ggn_ld:.3e}, inertia {:?}",
            ggn.relative_error_vs_dense, ggn.inertia
        ));
    }
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"cases": reports, "ggn": ggn, "pictures": pictures}))
                .unwrap_or_default()
        );
    } else {
        println!(
            "hinv demo: {DEPTH}-layer tanh network, input {INPUT}, hidden {HIDDEN}, {CLASSES} classes, batch {BATCH}, no bias, seed {SEED}"
        );
        println!("x = (H + eps I)^-1 g, g the gradient; the dense route forms H from exact HVPs.\n");
        for (r, c) in reports.iter().zip(&cases) {
            print_case(r, c.bar);
            println!();
        }
        println!(
            "== GGN (scaled-up, eps = 1e-3, {:?} route): ||x - x_dense||/||x_dense|| = {:.3e}, log|det| {:.12e} vs dense {:.12e}, inertia ({}, {}, {}), certified positive definite; {:.2} ms vs dense {:.2} ms\n",
            ggn.route,
            ggn.relative_error_vs_dense,
            ggn.log_abs_det,
            ggn.log_abs_det_dense,
            ggn.inertia.positive,
            ggn.inertia.negative,
            ggn.inertia.zero,
            ggn.time_s * 1e3,
            ggn.dense_time_s * 1e3
        );
        for p in &pictures {
            println!("wrote {p}");
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::Check(failures.join("; ")))
    }
}
