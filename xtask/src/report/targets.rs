//! The targets of issue 6 next to the measured values. The reference
//! figures are those of the original Python implementation (PyTorch,
//! float64, 2 threads) quoted in the issue; the verdicts are computed.

use std::fmt::Write as _;

use super::data::{add, div, ratio, time, Data};

/// One row: what, the reference or requirement, the measurement, the verdict.
struct Row {
    what: String,
    reference: String,
    measured: String,
    met: Option<bool>,
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "not measured",
    }
}

/// A "speed-up against a reference of `ref_s` seconds" row (the lower end
/// of a quoted range, so the ratio is conservative).
fn speedup(what: &str, ref_text: &str, ref_s: f64, needed: f64, t: Option<f64>) -> Row {
    let r = t.map(|t| ref_s / t);
    Row {
        what: what.into(),
        reference: format!("{ref_text}; need ≥ {needed:.0}x"),
        measured: format!("{} ({} faster)", time(t), ratio(r)),
        met: r.map(|r| r >= needed),
    }
}

/// Writes the targets table.
pub fn section(md: &mut String, d: &Data<'_>) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let r = "L256_h8_B2";
    let demo = "L30_h10_B2";
    rows.push(speedup("derivative blocks, L=256 h=8 B=2", "Python 2.0 s", 2.0, 100.0, d.t("derivatives", r)));
    rows.push(speedup(
        "factorization + solve, L=256 h=8 B=2",
        "Python 8–9 s",
        8.0,
        100.0,
        add(d.t("factor", r), d.t("solve", r)),
    ));
    rows.push(speedup(
        "end to end (blocks + factor + solve), L=256",
        "Python 10–11 s",
        10.0,
        100.0,
        d.t("end_to_end", r),
    ));
    let cli = d.cli.and_then(|c| c["median_s"].as_f64());
    rows.push(Row {
        what: "`hinv solve` binary, L=256, wall clock incl. start-up and file I/O".into(),
        reference: "≤ 0.1 s".into(),
        measured: format!(
            "{} median of {} runs (min {})",
            time(cli),
            d.cli.and_then(|c| c["runs"].as_u64()).unwrap_or(0),
            time(d.cli.and_then(|c| c["min_s"].as_f64()))
        ),
        met: cli.map(|t| t <= 0.1),
    });
    rows.push(speedup("one HVP, L=256 h=8 B=2", "Python 2.2 s", 2.2, 1000.0, d.t("hvp", r)));
    rows.push(speedup(
        "demo (L=30 h=10 B=2): derivative blocks",
        "Python 0.2–0.3 s",
        0.2,
        100.0,
        d.t("derivatives", demo),
    ));
    rows.push(speedup(
        "demo: factorization + solve",
        "Python 0.4–1.5 s",
        0.4,
        100.0,
        add(d.t("factor", demo), d.t("solve", demo)),
    ));
    for w in [8, 16] {
        if let Some((s, n)) = d.depth_slope("end_to_end", w, 64, 1024) {
            let hi = d.depth_sweep(w).iter().map(|c| c.depth).max().unwrap_or(0);
            rows.push(Row {
                what: format!("slope of end-to-end time in depth, h={w}, L=64…{hi} ({n} points)"),
                reference: "0.9 – 1.1 (Python: 1.3)".into(),
                measured: format!("{s:.3}"),
                met: Some((0.9..=1.1).contains(&s) && n >= 3),
            });
        }
    }
    rows.push(dense_row(d));
    rows.extend(factor_rows(d));

    writeln!(md, "## Targets (issue 6)\n")?;
    writeln!(md, "| target | reference / requirement | measured | verdict |\n|---|---|---|---|")?;
    for r in &rows {
        writeln!(md, "| {} | {} | {} | {} |", r.what, r.reference, r.measured, verdict(r.met))?;
    }
    writeln!(
        md,
        "\nSpeed-ups against a quoted range use its lower end (the conservative ratio). The Python reference \
         was not re-run here: its figures are those quoted in the issue for this kind of machine.\n"
    )?;
    Ok(())
}

/// At L=64, h=16, B=2: hinv end to end against the dense route with its
/// derivative blocks, measured when it fitted, otherwise extrapolated as `c p^3`.
fn dense_row(d: &Data<'_>) -> Row {
    let label = "L64_h16_B2";
    let hinv = d.t("end_to_end", label);
    let p = d.cfg(64, 16, 2).map(|c| c.params as f64);
    let (dense, how) = match d.dense_route(label) {
        Some(t) => (Some(t), "measured".to_string()),
        None => match (d.dense_cubic_fit(), p) {
            (Some((c, n, pmax)), Some(p)) => {
                (Some(c * p.powi(3)), format!("extrapolated as c·p³ from {n} measured sizes up to p={pmax}"))
            }
            _ => (None, "not measured".into()),
        },
    };
    let r = div(dense, hinv);
    Row {
        what: format!("L=64 h=16 B=2 (p={}): dense route incl. derivatives / hinv end to end", p.unwrap_or(0.0)),
        reference: "≥ 100x".into(),
        measured: format!("{} vs {} = {} ({how})", time(dense), time(hinv), ratio(r)),
        met: r.map(|r| r >= 100.0),
    }
}

/// Factorization against the sum of plain Bunch–Kaufman factorizations of
/// its block sizes, over all configurations.
fn factor_rows(d: &Data<'_>) -> Vec<Row> {
    let mut ratios: Vec<(f64, String)> = d
        .cfgs
        .iter()
        .filter_map(|c| Some((div(d.t("factor", &c.label), d.t("bk_sum", &c.label))?, c.label.clone())))
        .collect();
    if ratios.is_empty() {
        return Vec::new();
    }
    ratios.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (worst, wl) = ratios[ratios.len() - 1].clone();
    let (best, bl) = ratios[0].clone();
    let median = ratios[ratios.len() / 2].0;
    let at_ref = div(d.t("factor", "L256_h8_B2"), d.t("bk_sum", "L256_h8_B2"));
    vec![Row {
        what: "factorization / sum of plain faer Bunch–Kaufman of the same (interleaved) block sizes".into(),
        reference: "≤ 1.0x (issue 12; issue 6 asked 1.5x)".into(),
        measured: format!(
            "median {} over {} configs; best {} ({bl}), worst {} ({wl}); {} at L=256 h=8",
            ratio(Some(median)),
            ratios.len(),
            ratio(Some(best)),
            ratio(Some(worst)),
            ratio(at_ref)
        ),
        met: Some(worst <= 1.0),
    }]
}

/// The end-to-end targets of issue 12 against the original Python
/// implementation (derivative setup + solve, PyTorch float64, 2 threads),
/// measured side by side in the issue: hinv's in-process end to end
/// (derivative blocks + factorization + solve).
pub fn section_engine(md: &mut String, d: &Data<'_>) -> anyhow::Result<()> {
    let rows = [
        ("demo, L=30 h=10 B=2", "L30_h10_B2", "0.88 s", 0.88, 100.0),
        ("L=64 h=8 B=2", "L64_h8_B2", "1.59 s", 1.59, 100.0),
        ("L=256 h=8 B=2", "L256_h8_B2", "11.1 s", 11.1, 200.0),
        (
            "L=16 h=32 B=2 (the issue's: input 8, 4 classes, bias; here input 5, 3 classes)",
            "L16_h32_B2",
            "5.7 s",
            5.7,
            100.0,
        ),
        ("L=16 h=8 B=16", "L16_h8_B16", "0.52 s", 0.52, 100.0),
    ];
    writeln!(md, "## Targets (issue 12)\n")?;
    writeln!(md, "| network | original | hinv end to end | speed-up | need | verdict |\n|---|--:|--:|--:|--:|---|")?;
    for (what, label, orig, orig_s, need) in rows {
        let t = d.t("end_to_end", label);
        let r = t.map(|t| orig_s / t);
        writeln!(
            md,
            "| {what} | {orig} | {} | {} | ≥ {need:.0}x | {} |",
            time(t),
            ratio(r),
            verdict(r.map(|r| r >= need))
        )?;
    }
    writeln!(
        md,
        "\nThe original's times are those measured in the issue on this machine, not re-run here. The \
         factorization target is in the table above.\n"
    )?;
    Ok(())
}

/// Facts for closing the gap on the end-to-end target at the reference
/// configuration, all computed from this run's medians.
pub fn gaps(md: &mut String, d: &Data<'_>) -> anyhow::Result<()> {
    let l = "L256_h8_B2";
    let (Some(e2e), Some(factor), Some(c)) = (d.t("end_to_end", l), d.t("factor", l), d.cfg(256, 8, 2)) else {
        return Ok(());
    };
    writeln!(md, "## Closing the gap (computed from this run)\n")?;
    let budget = 0.1;
    writeln!(
        md,
        "- End to end at L=256, h=8, B=2 takes {} against a budget of {} (the 100x target); the \
         factorization is {:.0}% of it.",
        time(Some(e2e)),
        time(Some(budget)),
        100.0 * factor / e2e
    )?;
    if let Some(bk) = d.t("bk_sum", l) {
        writeln!(
            md,
            "- Plain Bunch–Kaufman of the same {} (interleaved) blocks takes {}: the factorization \
             spends {} ({:.0}% of its time) beyond that (negative: less than that; the parameters-first \
             elimination factors blocks of `2 a_l` after each unit's parameters).",
            c.depth + 1,
            time(Some(bk)),
            time(Some(factor - bk)),
            100.0 * (factor - bk) / factor
        )?;
        let gemm = d.id(&format!("pipeline_gemm/{}", c.block)).map(|t| 2.0 * (c.block as f64).powi(3) / t);
        if let Some(g) = gemm {
            writeln!(
                md,
                "- At n = {} even the plain Bunch–Kaufman runs at {:.1} GFLOP/s, {:.0}% of GEMM's {:.1}: \
                 blocks this small are bound by per-call overhead, not arithmetic, so fewer and cheaper \
                 calls (reused buffers, batched small factorizations) matter more than faster kernels.",
                c.block,
                c.flops / bk * 1e-9,
                100.0 * c.flops / bk / g,
                g * 1e-9
            )?;
        }
    }
    if let Some(cli) = d.cli {
        let ph = &cli["last_output"]["timings_s"];
        let phases: f64 = ph.as_object().map_or(0.0, |o| o.values().filter_map(|v| v.as_f64()).sum());
        writeln!(
            md,
            "- The `hinv solve` binary: median wall clock {}; in its last run ({}) the phases it times sum \
             to {}, its factorization alone {} against {} in the warmed-up benchmark process: a fresh \
             process also pays its first touches of memory (in 2 MiB pages, with the binary's mimalloc; \
             \"The library and the binary's allocator\" below measures them).",
            time(cli["median_s"].as_f64()),
            time(cli["last_wall_s"].as_f64()),
            time(Some(phases)),
            time(ph["factor"].as_f64()),
            time(Some(factor)),
        )?;
    }
    writeln!(md)?;
    Ok(())
}
