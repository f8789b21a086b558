//! `hinv spectrum` and `hinv trust-region`.

use std::fmt::Write as _;
use std::path::Path;

use hinv::{HinvError, Histogram, SpectrumOptions, TrustRegionOptions};
use serde_json::json;

use super::commands::{factor_options, load, norm, print_json, rhs_or_gradient, sizes, write_out, CliError, Outcome};
use super::progress::phase;
use super::FactorArgs;

/// Which bins `hinv spectrum` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// Equal bins over [lambda_min, lambda_max].
    Linear,
    /// Bins equal on a symmetric-log axis (fine near zero).
    Symlog,
    /// Both (twice the factorizations).
    Both,
}

pub struct SpectrumRequest<'a> {
    pub bins: usize,
    pub scale: Scale,
    pub edges: Option<&'a [f64]>,
    pub zero_tol: f64,
    pub nearest: Option<f64>,
    pub k: usize,
    pub svg: Option<&'a Path>,
}

fn edges_text(h: &Histogram) -> String {
    let width = h.counts.iter().copied().max().unwrap_or(1).max(1);
    let mut s = String::new();
    for (i, c) in h.counts.iter().enumerate() {
        let bar = "#".repeat((40 * c).div_ceil(width));
        let unc = if h.uncertain[i] > 0 { format!(" ±{}", h.uncertain[i]) } else { String::new() };
        let _ = writeln!(s, "  [{:>+12.5e}, {:>+12.5e})  {c:>7}{unc}  {bar}", h.edges[i], h.edges[i + 1]);
    }
    s
}

pub fn spectrum(c: &FactorArgs, req: &SpectrumRequest<'_>) -> Result<Outcome, CliError> {
    let m = &c.curvature.model;
    if !(req.zero_tol.is_finite() && req.zero_tol >= 0.0) {
        return Err(HinvError::InvalidNumber {
            what: "--zero-tol",
            value: req.zero_tol,
            expected: "a finite number >= 0",
        }
        .into());
    }
    let l = load(&c.curvature)?;
    let opts = SpectrumOptions { factor: factor_options(c, true), ..SpectrumOptions::default() };
    let mut warnings = Vec::new();
    let ((lmin, lmax), ext_s) = phase("extreme eigenvalues", || (l.curv.lambda_min(&opts), l.curv.lambda_max(&opts)));
    let (lmin, lmax) = (lmin?, lmax?);
    for e in [&lmin, &lmax] {
        if !e.converged {
            let end = if e.end == hinv::End::Min { "min" } else { "max" };
            warnings.push(format!("the bracket of lambda_{end} [{:e}, {:e}] missed the tolerance", e.lower, e.upper));
        }
    }
    let scale = lmin.range.norm.max(lmax.value.abs()).max(lmin.value.abs());
    let zt = req.zero_tol * scale;
    // Negative / near-zero / positive: one histogram of three bins.
    let pad = scale.max(1.0);
    let sign_edges = [lmin.lower - pad, -zt, zt, lmax.upper + pad];
    let sign_edges: Vec<f64> = if zt > 0.0 { sign_edges.to_vec() } else { vec![sign_edges[0], 0.0, sign_edges[3]] };
    let (signs, signs_s) = phase("sign counts", || l.curv.histogram(&sign_edges, &opts));
    let signs = signs?;
    let (negative, near_zero, positive) = match signs.counts.as_slice() {
        [n, z, p] => (*n, *z, *p),
        [n, p] => (*n, 0, *p),
        _ => (0, 0, 0),
    };
    if !signs.certified {
        warnings.push("the negative / near-zero / positive counts are not all certified".into());
    }
    let lo = lmin.lower - 1e-9 * scale;
    let hi = lmax.upper + 1e-9 * scale;
    let linear_edges: Vec<f64> = match req.edges {
        Some(e) => e.to_vec(),
        None => (0..=req.bins).map(|i| lo + (hi - lo) * i as f64 / req.bins as f64).collect(),
    };
    let linthresh = (1e-6 * scale).max(f64::MIN_POSITIVE);
    let want_linear = req.edges.is_some() || req.scale != Scale::Symlog;
    let want_symlog = req.edges.is_none() && req.scale != Scale::Linear;
    let (hists, hist_s) = phase("histogram", || -> Result<_, HinvError> {
        let lin = if want_linear { Some(l.curv.histogram(&linear_edges, &opts)?) } else { None };
        let sym = if want_symlog {
            Some(l.curv.histogram(&hinv::symlog_edges(lo, hi, req.bins, linthresh), &opts)?)
        } else {
            None
        };
        Ok((lin, sym))
    });
    let (lin, sym) = hists?;
    for h in [&lin, &sym].into_iter().flatten() {
        if !h.certified {
            warnings.push("some histogram counts are uncertain (marked ±)".into());
        }
    }
    // Every warning so far is a count left uncertain (a bracket stops where
    // its counts do): on wide layers the default elimination may leave
    // counts uncertain that the interleaved one checks.
    if !warnings.is_empty() && c.elimination.elimination != hinv::Elimination::Interleaved {
        warnings.push("on wide layers --elimination interleaved may certify these counts, at a higher cost".into());
    }
    let pairs = match req.nearest {
        Some(sigma) => {
            let (r, s) = phase("shift-invert eigenpairs", || l.curv.eigenpairs_near(sigma, req.k, &opts));
            let r = r?;
            if !r.verified {
                warnings.push(format!(
                    "the {} eigenpairs near {sigma:e} are not verified by the counts ({} eigenvalue(s) in [{:e}, {:e}))",
                    req.k, r.count_in_interval, r.lower, r.upper
                ));
            }
            Some((r, s))
        }
        None => None,
    };
    if let Some(p) = req.svg {
        let svg = render_svg(lin.as_ref(), sym.as_ref(), linthresh, (negative, near_zero, positive), zt);
        std::fs::write(p, svg).map_err(|source| CliError::Io { path: p.display().to_string(), source })?;
    }
    let factorizations = lmin.factorizations
        + lmax.factorizations
        + signs.factorizations
        + lin.as_ref().map_or(0, |h| h.factorizations)
        + sym.as_ref().map_or(0, |h| h.factorizations)
        + pairs.as_ref().map_or(0, |p| p.0.factorizations);
    if m.json {
        print_json(&json!({
            "command": "spectrum",
            // The elimination every count's factorization was asked for.
            "elimination": opts.factor.elimination,
            "sizes": sizes(&l.curv),
            "timings_s": {"load": l.load_s, "derivatives": l.derivs_s, "extremes": ext_s, "signs": signs_s,
                          "histogram": hist_s, "eigenpairs": pairs.as_ref().map(|p| p.1)},
            "lambda_min": lmin,
            "lambda_max": lmax,
            "zero_tolerance": zt,
            "negative": negative, "near_zero": near_zero, "positive": positive,
            "histogram": lin,
            "histogram_symlog": sym,
            "eigenpairs": pairs.as_ref().map(|p| &p.0),
            "factorizations": factorizations,
            "svg": req.svg.map(|p| p.display().to_string()),
        }));
    } else {
        println!("spectrum of H ({} parameters), {factorizations} factorizations", l.curv.num_params());
        for e in [&lmin, &lmax] {
            let end = if e.end == hinv::End::Min { "min" } else { "max" };
            println!(
                "  lambda_{end} = {:+.12e}, certified in [{:+.12e}, {:+.12e}] ({:?}, {} factorizations, multiplicity {})",
                e.value, e.lower, e.upper, e.method, e.factorizations, e.multiplicity
            );
        }
        println!("  {negative} negative (< -{zt:.2e}), {near_zero} near zero, {positive} positive (> {zt:.2e})");
        if let Some(h) = &lin {
            println!("  histogram ({} bins, linear):", h.counts.len());
            print!("{}", edges_text(h));
        }
        if let Some(h) = &sym {
            println!("  histogram ({} bins, symmetric-log, linear within {linthresh:.1e}):", h.counts.len());
            print!("{}", edges_text(h));
        }
        if let Some((r, _)) = &pairs {
            println!(
                "  {} eigenpairs nearest {:e} (shift-invert, {} solves):",
                r.values.len(),
                r.requested_shift,
                r.solves
            );
            for (v, res) in r.values.iter().zip(&r.residuals) {
                println!("    {v:+.12e}   ||Hv - lambda v|| = {res:.2e}");
            }
        }
        println!("  time: derivatives {:.3} s, extremes {ext_s:.3} s, histogram {hist_s:.3} s", l.derivs_s);
        if let Some(p) = req.svg {
            println!("  wrote {}", p.display());
        }
    }
    if warnings.is_empty() {
        Ok(Outcome::Vouched)
    } else {
        Ok(Outcome::Unvouched(warnings.join("; ")))
    }
}

pub fn trust_region(c: &FactorArgs, rhs: Option<&Path>, radius: f64, out: Option<&Path>) -> Result<Outcome, CliError> {
    let m = &c.curvature.model;
    let l = load(&c.curvature)?;
    let g = rhs_or_gradient(&l.curv, rhs)?;
    let opts = TrustRegionOptions {
        spectrum: SpectrumOptions { factor: factor_options(c, true), ..SpectrumOptions::default() },
        ..TrustRegionOptions::default()
    };
    let (s, tr_s) = phase("trust-region step", || l.curv.trust_region_step_for(&g, radius, &opts));
    let s = s?;
    write_out(out, &s.p)?;
    if m.json {
        print_json(&json!({
            "command": "trust-region",
            "elimination": opts.spectrum.factor.elimination,
            "sizes": sizes(&l.curv),
            "timings_s": {"load": l.load_s, "derivatives": l.derivs_s, "step": tr_s},
            "report": s,
            "gradient_norm": norm(&g),
            "out": out.map(|p| p.display().to_string()),
        }));
    } else {
        println!(
            "trust-region step for {} parameters: min g.p + p.H p / 2 subject to ||p|| <= {radius:e}",
            l.curv.num_params()
        );
        println!("  {:?}: lambda = {:.12e}, ||p|| = {:.12e}", s.kind, s.lambda, s.step_norm);
        if let Some(lm) = s.lambda_min {
            println!("  lambda_min(H) = {lm:+.12e}");
        }
        println!(
            "  model decrease {:.6e} (Cauchy point {:.6e}); ||(H + lambda I) p + g|| / ||g|| = {:.2e}",
            s.model_decrease, s.cauchy_decrease, s.optimality_residual
        );
        println!(
            "  {} factorizations, {} solves; time: derivatives {:.3} s, step {tr_s:.3} s",
            s.factorizations, s.solves, l.derivs_s
        );
        if let Some(p) = out {
            println!("  wrote {}", p.display());
        }
    }
    if s.converged {
        Ok(Outcome::Vouched)
    } else {
        Ok(Outcome::Unvouched(format!(
            "the secular equation did not converge within its budget; the step written is the better of the best \
             iterate and the Cauchy point (||p|| = {:.6e} for radius {radius:e})",
            s.step_norm
        )))
    }
}

/// One histogram panel: bars at equal widths (bin index), edges labelled.
fn panel(out: &mut String, h: &Histogram, y0: f64, title: &str) {
    let (x0, w, ht) = (70.0, 820.0, 220.0);
    let k = h.counts.len().max(1);
    let max = h.counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let _ = writeln!(out, r#"<text x="{x0}" y="{}" font-size="14" font-weight="bold">{title}</text>"#, y0 - 8.0);
    let _ = writeln!(out, r##"<rect x="{x0}" y="{y0}" width="{w}" height="{ht}" fill="none" stroke="#888"/>"##);
    for (i, &c) in h.counts.iter().enumerate() {
        let bh = ht * c as f64 / max;
        let x = x0 + w * i as f64 / k as f64;
        let color = if h.edges[i + 1] <= 0.0 {
            "#c0392b"
        } else if h.edges[i] >= 0.0 {
            "#2e86c1"
        } else {
            "#7d3c98"
        };
        let _ = writeln!(
            out,
            r#"<rect x="{x:.2}" y="{:.2}" width="{:.2}" height="{bh:.2}" fill="{color}"><title>[{:e}, {:e}): {c}</title></rect>"#,
            y0 + ht - bh,
            (w / k as f64 - 1.0).max(0.5),
            h.edges[i],
            h.edges[i + 1]
        );
    }
    let ticks = 6.min(k);
    for t in 0..=ticks {
        let i = t * k / ticks;
        let x = x0 + w * i as f64 / k as f64;
        let _ = writeln!(
            out,
            r##"<line x1="{x:.2}" y1="{}" x2="{x:.2}" y2="{}" stroke="#444"/><text x="{x:.2}" y="{}" font-size="11" text-anchor="middle">{:.3e}</text>"##,
            y0 + ht,
            y0 + ht + 5.0,
            y0 + ht + 18.0,
            h.edges[i]
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-size="11" text-anchor="end">{max}</text><text x="{}" y="{}" font-size="11" text-anchor="end">0</text>"#,
        x0 - 4.0,
        y0 + 10.0,
        x0 - 4.0,
        y0 + ht
    );
}

/// The histogram(s) as a standalone SVG, written by hand (no plotting
/// dependency): one panel per axis, the sign counts called out on top.
fn render_svg(
    lin: Option<&Histogram>,
    sym: Option<&Histogram>,
    linthresh: f64,
    (neg, zero, pos): (usize, usize, usize),
    zt: f64,
) -> String {
    let panels = usize::from(lin.is_some()) + usize::from(sym.is_some());
    let height = 80.0 + 280.0 * panels as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="920" height="{height}" font-family="sans-serif">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r##"<text x="70" y="28" font-size="16">Exact eigenvalue counts of H: <tspan fill="#c0392b">{neg} negative</tspan>, <tspan fill="#7d3c98">{zero} near zero (|lambda| &lt;= {zt:.1e})</tspan>, <tspan fill="#2e86c1">{pos} positive</tspan></text>"##
    );
    let mut y = 70.0;
    if let Some(h) = lin {
        panel(&mut s, h, y, &format!("{} bins, linear axis", h.counts.len()));
        y += 280.0;
    }
    if let Some(h) = sym {
        panel(&mut s, h, y, &format!("{} bins, symmetric-log axis (linear within ±{linthresh:.1e})", h.counts.len()));
    }
    s.push_str("</svg>\n");
    s
}
