//! The tables of `docs/benchmarks.md`: phases, where the time goes, depth
//! slopes, Krylov baselines, the `eps` sweep and factorization throughput.

use std::fmt::Write as _;

use serde_json::Value;

use super::data::{add, div, ratio, time, Data};

/// Per-configuration medians of every phase, with the dense route.
pub fn phases(md: &mut String, d: &Data<'_>) -> anyhow::Result<()> {
    writeln!(md, "## Phases\n")?;
    writeln!(
        md,
        "`solve (raw)` is `solve_with` without refinement (`max_refinements: 0`, `accept_inexact`): both \
         stages' sweeps and the one HVP that scores the answer; `solve` includes the automatic refinement \
         (one HVP when none is needed); `end to end` is `Curvature::new` + \
         `factor` + `solve`, including the first solve's estimate of `‖H + eps I‖` (power iteration on the \
         HVP). `dense` is `reference::hessian` + `reference::solve` (LU), its ratio adds the derivative blocks.\n"
    )?;
    writeln!(
        md,
        "| config | p | n | derivatives | factor | solve (raw) | solve | HVP | end to end | dense | dense / hinv |"
    )?;
    writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")?;
    for c in &d.cfgs {
        let l = &c.label;
        let e2e = d.t("end_to_end", l);
        writeln!(
            md,
            "| {l} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.params,
            c.block,
            time(d.t("derivatives", l)),
            time(d.t("factor", l)),
            time(d.t("solve_raw", l)),
            time(d.t("solve", l)),
            time(d.t("hvp", l)),
            time(e2e),
            time(d.t("dense", l)),
            ratio(div(d.dense_route(l), e2e)),
        )?;
    }
    writeln!(md)?;
    Ok(())
}

/// Shares of the end-to-end time at the reference configuration, and the
/// `hinv solve` binary's own phase timings.
pub fn time_split(md: &mut String, d: &Data<'_>) -> anyhow::Result<()> {
    let l = "L256_h8_B2";
    let Some(e2e) = d.t("end_to_end", l) else { return Ok(()) };
    writeln!(md, "## Where the time goes (L=256, h=8, B=2)\n")?;
    writeln!(md, "| phase | median | share of end to end |\n|---|--:|--:|")?;
    let mut accounted = 0.0;
    for phase in ["derivatives", "factor", "solve"] {
        let t = d.t(phase, l);
        accounted += t.unwrap_or(0.0);
        writeln!(md, "| {phase} | {} | {:.0}% |", time(t), 100.0 * t.unwrap_or(f64::NAN) / e2e)?;
    }
    writeln!(
        md,
        "| rest (allocation, first-solve norm estimate) | {} | {:.0}% |",
        time(Some((e2e - accounted).max(0.0))),
        100.0 * (e2e - accounted).max(0.0) / e2e
    )?;
    writeln!(md, "| **end to end** | {} | 100% |\n", time(Some(e2e)))?;
    if let Some(cli) = d.cli {
        let wall = cli["last_wall_s"].as_f64();
        let phases = &cli["last_output"]["timings_s"];
        if let Some(obj) = phases.as_object() {
            writeln!(
                md,
                "The `hinv solve` binary on the same model: its `--json` phase timings and the wall clock of \
                 its last run (median of all runs: {}):\n",
                time(cli["median_s"].as_f64())
            )?;
            writeln!(md, "| phase | time |\n|---|--:|")?;
            let mut sum = 0.0;
            for (k, v) in obj {
                sum += v.as_f64().unwrap_or(0.0);
                writeln!(md, "| {k} | {} |", time(v.as_f64()))?;
            }
            let rest = wall.map(|w| (w - sum).max(0.0));
            writeln!(md, "| process start-up, parsing, exit | {} |", time(rest))?;
            writeln!(md, "| **wall clock (last run)** | {} |\n", time(wall))?;
        }
        writeln!(md, "Command: `{}`\n", cli["command"].as_str().unwrap_or("?"))?;
    }
    Ok(())
}

/// Fitted slopes of time against depth.
pub fn slopes(md: &mut String, d: &Data<'_>) -> anyhow::Result<()> {
    writeln!(md, "## Depth scaling\n")?;
    writeln!(md, "Least-squares slope of log time against log depth, batch 2.\n")?;
    writeln!(md, "| phase | h=8, L=64…1024 | h=8, L=8…1024 | h=16, L=64…1024 | h=16, all L |\n|---|--:|--:|--:|--:|")?;
    let fmt = |s: Option<(f64, usize)>| s.map_or("—".to_string(), |(s, n)| format!("{s:.3} ({n} pts)"));
    for phase in ["derivatives", "factor", "solve_raw", "solve", "hvp", "end_to_end"] {
        writeln!(
            md,
            "| {phase} | {} | {} | {} | {} |",
            fmt(d.depth_slope(phase, 8, 64, 1024)),
            fmt(d.depth_slope(phase, 8, 1, 1024)),
            fmt(d.depth_slope(phase, 16, 64, 1024)),
            fmt(d.depth_slope(phase, 16, 1, 1024)),
        )?;
    }
    writeln!(md)?;
    Ok(())
}

/// Whether a Krylov run reached its tolerance (CG on an indefinite
/// operator did not solve anything, whatever its residual).
fn converged(k: &Value) -> bool {
    k["converged"].as_bool() == Some(true) && k["indefinite"].as_bool() != Some(true)
}

fn krylov_cell(k: &Value) -> String {
    let it = k["iterations"].as_u64().unwrap_or(0);
    if k["indefinite"].as_bool() == Some(true) {
        format!("{it} (indefinite: stopped)")
    } else if k["converged"].as_bool() == Some(true) {
        format!("{it}")
    } else {
        format!("{it} (not converged, {:.1e})", k["relative_residual"].as_f64().unwrap_or(f64::NAN))
    }
}

/// CG and MINRES on the grid (default initialisation).
pub fn krylov(md: &mut String, d: &Data<'_>) -> anyhow::Result<()> {
    writeln!(md, "## Against CG and MINRES on the grid\n")?;
    writeln!(
        md,
        "`eps = {}`, right-hand side a fixed random unit vector (the gradient vanishes with depth at this \
         initialisation). CG stops at the first direction of negative curvature when `H + eps I` is \
         indefinite (marked: it has then not solved the system, and no ratio is given); MINRES does not \
         need definiteness. hinv = factor + solve; the derivative blocks, shared by all three, are excluded.\n",
        d.eps()
    )?;
    writeln!(md, "| config | hinv | CG iterations | CG | CG / hinv | MINRES iterations | MINRES | MINRES / hinv |")?;
    writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|")?;
    for c in d.cfgs.iter().filter(|c| !c.sweep_only) {
        let l = &c.label;
        let hinv = add(d.t("factor", l), d.t("solve", l));
        let (cg, mr) = (d.t("cg", l), d.t("minres", l));
        let solved = |k: &Value, t: Option<f64>| t.filter(|_| converged(k));
        writeln!(
            md,
            "| {l} | {} | {} | {} | {} | {} | {} | {} |",
            time(hinv),
            krylov_cell(&c.raw["cg"]),
            time(cg),
            ratio(div(solved(&c.raw["cg"], cg), hinv)),
            krylov_cell(&c.raw["minres"]),
            time(mr),
            ratio(div(solved(&c.raw["minres"], mr), hinv)),
        )?;
    }
    writeln!(md)?;
    Ok(())
}

/// hinv against CG and MINRES over `eps` on the gain-2 network.
pub fn eps_sweep(md: &mut String, d: &Data<'_>) -> anyhow::Result<()> {
    let s = d.eps_sweep();
    let Some(rows) = s["rows"].as_array() else { return Ok(()) };
    writeln!(md, "## Where hinv beats CG: the `eps` sweep\n")?;
    writeln!(
        md,
        "{} with its parameters scaled by {} (p = {}, eigenvalues of H in [{:.3e}, {:.3e}]): hinv \
         (factor + refined solve) against CG and MINRES to relative residual {:.0e}, at most {} \
         iterations. The derivative blocks (shared) are excluded. A Krylov solver that stops early or \
         does not converge has not reached equal accuracy: hinv wins those rows outright. `cond · u` \
         (u = 2.2e-16) is the relative residual a backward-stable solve can be expected to reach: where \
         it exceeds the tolerance, no method working in double precision meets it reliably.\n",
        s["config"].as_str().unwrap_or("?"),
        s["gain"],
        s["params"],
        s["lambda_min"].as_f64().unwrap_or(f64::NAN),
        s["lambda_max"].as_f64().unwrap_or(f64::NAN),
        s["tolerance"].as_f64().unwrap_or(f64::NAN),
        s["max_iterations"],
    )?;
    writeln!(
        md,
        "| eps | cond(H + eps I) | cond · u | eigenvalues < -eps | hinv | hinv residual | CG iterations | CG | MINRES iterations | MINRES | fastest at equal accuracy |"
    )?;
    writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")?;
    for r in rows {
        let label = r["label"].as_str().unwrap_or("?");
        let hinv = d.id(&format!("pipeline_eps/hinv/{label}"));
        let cg = d.id(&format!("pipeline_eps/cg/{label}"));
        let mr = d.id(&format!("pipeline_eps/minres/{label}"));
        let ok = converged;
        let mut best = ("hinv", hinv.unwrap_or(f64::INFINITY));
        for (name, t, k) in [("CG", cg, &r["cg"]), ("MINRES", mr, &r["minres"])] {
            if let Some(t) = t.filter(|_| ok(k)) {
                if t < best.1 {
                    best = (name, t);
                }
            }
        }
        let cond = r["condition"].as_f64().unwrap_or(f64::NAN);
        let hinv_res = r["hinv_relative_residual"].as_f64().unwrap_or(f64::NAN);
        let winner = match (best.0, best_krylov(cg, mr, r, hinv)) {
            ("hinv", Some(x)) => format!("**hinv** ({} faster than the best converged Krylov run)", ratio(Some(x))),
            ("hinv", None) if hinv_res <= d.krylov_tol() => "**hinv** (no Krylov run converged)".to_string(),
            ("hinv", None) => {
                "**hinv** (no Krylov run converged; hinv at the rounding floor, not at the tolerance)".into()
            }
            (other, _) => format!("{other} ({} faster than hinv)", ratio(div(hinv, Some(best.1)))),
        };
        writeln!(
            md,
            "| {label} | {cond:.2e} | {:.0e} | {} | {} | {hinv_res:.1e} | {} | {} | {} | {} | {winner} |",
            cond * f64::EPSILON,
            r["negative_eigenvalues"],
            time(hinv),
            krylov_cell(&r["cg"]),
            time(cg),
            krylov_cell(&r["minres"]),
            time(mr),
        )?;
    }
    writeln!(md)?;
    Ok(())
}

/// The fastest converged Krylov time over hinv's, `None` when none converged.
fn best_krylov(cg: Option<f64>, mr: Option<f64>, r: &Value, hinv: Option<f64>) -> Option<f64> {
    let ok = converged;
    let best = [(cg, &r["cg"]), (mr, &r["minres"])]
        .into_iter()
        .filter_map(|(t, k)| t.filter(|_| ok(k)))
        .fold(None, |acc: Option<f64>, t| Some(acc.map_or(t, |a| a.min(t))));
    div(best, hinv)
}

/// Factorization GFLOP/s against GEMM and plain Bunch–Kaufman.
pub fn throughput(md: &mut String, d: &Data<'_>) -> anyhow::Result<()> {
    writeln!(md, "## Factorization throughput\n")?;
    writeln!(
        md,
        "Flops counted as `sum_l n_l^3 / 3` for both the block LDLᵀ and the plain Bunch–Kaufman \
         factorizations of random symmetric matrices of the same sizes (`bk_sum`); GEMM (`2 n^3`, \
         sequential faer `matmul`) at the hidden block size. Blocks from n = 1024 run faer's kernels on \
         both cores (`ParPolicy::Auto`); the baselines are sequential. `log-det` is the first call \
         of `Factorization::log_det` on a fresh factorization: through the parameters-first \
         elimination (`R` pivoted across its blocks: the short rest kept behind its closed-form \
         blocks, else all of it, the layers eliminated again) where its growth allows, else \
         `tridiag::PivotedLu` on the whole lifted system.\n"
    )?;
    writeln!(
        md,
        "| config | n | GFLOP | factor | GFLOP/s | plain BK sum | GFLOP/s | factor / BK | GEMM GFLOP/s | factor / GEMM | log-det | log-det / factor |"
    )?;
    writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")?;
    for c in d.cfgs.iter().filter(|c| !c.sweep_only) {
        let l = &c.label;
        let (f, bk) = (d.t("factor", l), d.t("bk_sum", l));
        let gf = |t: Option<f64>| t.map(|t| c.flops / t * 1e-9);
        let gemm = d.id(&format!("pipeline_gemm/{}", c.block)).map(|t| 2.0 * (c.block as f64).powi(3) / t * 1e-9);
        let g1 = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
        writeln!(
            md,
            "| {l} | {} | {:.4} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.block,
            c.flops * 1e-9,
            time(f),
            g1(gf(f)),
            time(bk),
            g1(gf(bk)),
            ratio(div(f, bk)),
            g1(gemm),
            div(gf(f), gemm).map_or("—".to_string(), |r| format!("{:.0}%", r * 100.0)),
            time(d.t("log_det", l)),
            ratio(div(d.t("log_det", l), f)),
        )?;
    }
    writeln!(md)?;
    let tri: Vec<String> = [128, 256, 512]
        .iter()
        .filter_map(|n| {
            let gf = |name: &str, flops: f64| d.id(&format!("tridiag_gflops/{name}/{n}")).map(|t| flops / t * 1e-9);
            let nf = *n as f64;
            Some(format!(
                "| {n} | {:.1} | {:.1} | {:.1} |",
                gf("block_ldlt", 4.0 * nf.powi(3) / 3.0)?,
                gf("faer_bunch_kaufman", nf.powi(3) / 3.0)?,
                gf("faer_gemm", 2.0 * nf.powi(3))?
            ))
        })
        .collect();
    if !tri.is_empty() {
        writeln!(
            md,
            "From the `tridiag` bench of this run (4 synthetic blocks, a quarter of the columns coupled), GFLOP/s:\n"
        )?;
        writeln!(md, "| n | block LDLᵀ | faer Bunch–Kaufman | faer GEMM |\n|--:|--:|--:|--:|")?;
        for r in tri {
            writeln!(md, "{r}")?;
        }
        writeln!(md)?;
    }
    Ok(())
}
