//! The SVG plots of the report: time against depth with the fitted slope,
//! hinv against the dense and Krylov routes, GFLOP/s against block size, and
//! the `eps` sweep.

use std::path::Path;

use crate::plot::{loglog, Chart, Series, Style};
use crate::results::loglog_fit;

use super::data::{add, Data};

/// Draws every plot into `img`; returns `(file name, caption)` pairs.
pub fn draw(img: &Path, d: &Data<'_>) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    out.push(depth(img, d)?);
    out.push(baselines(img, d)?);
    out.push(gflops(img, d)?);
    if let Some(f) = eps(img, d)? {
        out.push(f);
    }
    Ok(out)
}

fn sweep(d: &Data<'_>, phase: &str, width: usize) -> Vec<(f64, f64)> {
    d.depth_sweep(width).iter().filter_map(|c| Some((c.depth as f64, d.t(phase, &c.label)?))).collect()
}

fn depth(img: &Path, d: &Data<'_>) -> anyhow::Result<(String, String)> {
    let mut series = Vec::new();
    for (phase, name) in [
        ("end_to_end", "end to end"),
        ("derivatives", "derivatives"),
        ("factor", "factor"),
        ("solve", "solve"),
        ("hvp", "HVP"),
    ] {
        series.push(Series::line(format!("{name}, h=8"), sweep(d, phase, 8)));
    }
    series.push(Series::line("end to end, h=16", sweep(d, "end_to_end", 16)));
    let e2e: Vec<(f64, f64)> = sweep(d, "end_to_end", 8).into_iter().filter(|p| p.0 >= 64.0).collect();
    let mut title = "Time against depth (B = 2)".to_string();
    if let Some((s, c)) = loglog_fit(&e2e) {
        let fit = e2e.iter().map(|&(x, _)| (x, (c + s * x.ln()).exp())).collect();
        series.push(Series::styled(format!("fit L ≥ 64, h=8: slope {s:.3}"), fit, Style::Crosses));
        title = format!("Time against depth (B = 2), end-to-end slope {s:.2}");
    }
    let file = "depth.svg";
    loglog(&img.join(file), &Chart { title: &title, x_label: "depth L", y_label: "seconds" }, &series)?;
    Ok((file.into(), title))
}

fn baselines(img: &Path, d: &Data<'_>) -> anyhow::Result<(String, String)> {
    let mut cfgs: Vec<_> = d.depth_sweep(8).into_iter().chain(d.depth_sweep(16)).collect();
    cfgs.sort_by_key(|c| c.params);
    let pts = |f: &dyn Fn(&str) -> Option<f64>| -> Vec<(f64, f64)> {
        cfgs.iter().filter_map(|c| Some((c.params as f64, f(&c.label)?))).collect()
    };
    let series = vec![
        Series::line("hinv end to end", pts(&|l| d.t("end_to_end", l))),
        Series::line("dense Hessian + LU (+ derivatives)", pts(&|l| d.dense_route(l))),
        Series::line("CG (+ derivatives)", pts(&|l| add(d.t("cg", l), d.t("derivatives", l)))),
        Series::line("MINRES (+ derivatives)", pts(&|l| add(d.t("minres", l), d.t("derivatives", l)))),
    ];
    let title = "hinv against the dense route and Krylov (depth sweeps, h = 8 and 16, eps = 1e-3)";
    let file = "baselines.svg";
    loglog(&img.join(file), &Chart { title, x_label: "parameters p", y_label: "seconds" }, &series)?;
    Ok((file.into(), title.into()))
}

fn gflops(img: &Path, d: &Data<'_>) -> anyhow::Result<(String, String)> {
    let mut cfgs: Vec<_> = d.cfgs.iter().filter(|c| c.depth == 16 && c.batch == 2).collect();
    cfgs.sort_by_key(|c| c.block);
    let rate = |phase: &str| -> Vec<(f64, f64)> {
        cfgs.iter().filter_map(|c| Some((c.block as f64, c.flops / d.t(phase, &c.label)? * 1e-9))).collect()
    };
    let gemm: Vec<(f64, f64)> = cfgs
        .iter()
        .filter_map(|c| {
            let n = c.block as f64;
            Some((n, 2.0 * n.powi(3) / d.id(&format!("pipeline_gemm/{}", c.block))? * 1e-9))
        })
        .collect();
    let series = vec![
        Series::line("block LDLᵀ (L = 16)", rate("factor")),
        Series::line("plain Bunch–Kaufman, same sizes", rate("bk_sum")),
        Series::line("GEMM (sequential)", gemm),
    ];
    let title = "Factorization GFLOP/s against the hidden block size n = h² + 4h";
    let file = "gflops.svg";
    loglog(&img.join(file), &Chart { title, x_label: "block size n", y_label: "GFLOP/s" }, &series)?;
    Ok((file.into(), title.into()))
}

fn eps(img: &Path, d: &Data<'_>) -> anyhow::Result<Option<(String, String)>> {
    let Some(rows) = d.eps_sweep()["rows"].as_array() else { return Ok(None) };
    // Only runs that reached the tolerance: a Krylov solver that stopped
    // early has not solved the system, whatever its time.
    let pts = |solver: &str| -> Vec<(f64, f64)> {
        rows.iter()
            .filter(|r| {
                let k = &r[solver];
                k.is_null() || (k["converged"].as_bool() == Some(true) && k["indefinite"].as_bool() != Some(true))
            })
            .filter_map(|r| {
                let t = d.id(&format!("pipeline_eps/{solver}/{}", r["label"].as_str()?))?;
                Some((r["eps"].as_f64()?, t))
            })
            .collect()
    };
    let series = vec![
        Series::line("hinv factor + solve", pts("hinv")),
        Series::line("CG", pts("cg")),
        Series::line("MINRES", pts("minres")),
    ];
    let title = "Time to relative residual 1e-8 against eps, converged runs only (gain-2 demo network)";
    let file = "eps.svg";
    loglog(&img.join(file), &Chart { title, x_label: "eps", y_label: "seconds" }, &series)?;
    Ok(Some((file.into(), title.into())))
}
