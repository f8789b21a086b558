//! The file-driven subcommands: `solve`, `hvp`, `logdet`, `inertia`, `gradient`.

use std::path::Path;

use hinv::{Curvature, HinvError};
use netgraph::{Batch, NetError, Network, Params};
use serde_json::json;
use thiserror::Error;

use super::progress::phase;
use super::{CurvatureArgs, FactorArgs, MemoryArg, ModelArgs};

/// Everything a command can fail with; printed as one line by `main`.
#[derive(Debug, Error)]
pub enum CliError {
    /// From the library.
    #[error(transparent)]
    Hinv(#[from] HinvError),
    /// From reading or writing files.
    #[error(transparent)]
    Net(#[from] NetError),
    /// Writing output or pictures.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A demo check failed (the structured solver disagrees with the dense route).
    #[error("demo check failed: {0}")]
    Check(String),
    /// A flag that does not apply to this model (e.g. a regression's noise
    /// for a classifier).
    #[error("{0}")]
    Usage(String),
}

/// Whether a command's printed answer is within its stated accuracy.
#[derive(Debug)]
pub enum Outcome {
    /// Every number printed or written is within its stated accuracy: exit 0.
    Vouched,
    /// An answer was printed or written that hinv cannot vouch for (asked
    /// for explicitly, or an inertia with uncertain counts): a warning on
    /// stderr and exit status 3.
    Unvouched(String),
}

/// A loaded model: the curvature and how long loading and derivatives took.
pub(super) struct Loaded {
    pub(super) curv: Curvature,
    pub(super) load_s: f64,
    pub(super) derivs_s: f64,
}

/// Reads the spec, weights and batch; returns them and the time it took.
fn read_model(m: &ModelArgs) -> Result<(Network, Params, Batch, f64), CliError> {
    let (res, load_s) = phase("reading files", || -> Result<_, NetError> {
        let net = netgraph::load_spec(&m.spec)?;
        let params = netgraph::load_weights(&net, &m.weights)?;
        let batch = netgraph::load_batch(&net, &m.inputs, &m.targets)?;
        Ok((net, params, batch))
    });
    let (net, params, batch) = res?;
    Ok((net, params, batch, load_s))
}

pub(super) fn load(c: &CurvatureArgs) -> Result<Loaded, CliError> {
    let (net, params, batch, load_s) = read_model(&c.model)?;
    // Refused before the passes allocate the derivative blocks.
    let opts = hinv::CurvatureOptions { memory_limit: Some(memory_limit(&c.memory)), kind: c.curvature };
    let (curv, derivs_s) = phase("derivative blocks", || Curvature::new_with(&net, &params, &batch, &opts));
    Ok(Loaded { curv: curv?, load_s, derivs_s })
}

/// The memory budget of a command: the flag, or the memory available now.
fn memory_limit(m: &MemoryArg) -> u64 {
    m.memory_limit.unwrap_or_else(netgraph::memory::default_limit)
}

/// Factor options for a command: the elimination asked for, and the
/// memory limit from the flag or the memory available now.
pub(super) fn factor_options(c: &FactorArgs, allow_singular: bool) -> hinv::FactorOptions {
    hinv::FactorOptions {
        allow_singular,
        memory_limit: Some(memory_limit(&c.curvature.memory)),
        elimination: c.elimination.elimination,
        ..Default::default()
    }
}

/// The library's refusal of `--elimination` with `--route woodbury`
/// (`FactorOptions::check_route`), before the files are read.
fn lifted_only(route: Option<hinv::Route>, elimination: hinv::Elimination) -> Result<(), CliError> {
    Ok(hinv::FactorOptions { elimination, ..Default::default() }.check_route(route)?)
}

/// `H` or `GGN`, for messages.
fn cname(curv: &Curvature) -> &'static str {
    match curv.kind() {
        hinv::CurvatureKind::Hessian => "H",
        hinv::CurvatureKind::GaussNewton => "GGN",
    }
}

pub(super) fn rhs_or_gradient(curv: &Curvature, rhs: Option<&Path>) -> Result<Vec<f64>, CliError> {
    match rhs {
        Some(p) => Ok(netgraph::read_npy_vector(p)?),
        None => Ok(curv.gradient().to_vec()),
    }
}

pub(super) fn write_out(out: Option<&Path>, v: &[f64]) -> Result<(), CliError> {
    if let Some(p) = out {
        netgraph::write_npy_vector(p, v)?;
    }
    Ok(())
}

pub(super) fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

pub(super) fn sizes(curv: &Curvature) -> serde_json::Value {
    let d = curv.derivatives();
    sizes_of(&d.param_sizes, &d.act_sizes)
}

/// Sizes from the parameter counts `p_1..p_L` and activation sizes `a_0..a_L`.
fn sizes_of(param_sizes: &[usize], act_sizes: &[usize]) -> serde_json::Value {
    json!({
        "params": param_sizes.iter().sum::<usize>(),
        "layers": param_sizes.len(),
        "lifted_dim": param_sizes.iter().zip(&act_sizes[1..]).map(|(p, a)| p + 2 * a).sum::<usize>(),
        "batch_activations": act_sizes[0],
    })
}

pub(super) fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn solve(
    c: &FactorArgs,
    route: Option<hinv::Route>,
    rhs: Option<&Path>,
    eps: f64,
    out: Option<&Path>,
    tolerance: Option<f64>,
    accept_inexact: bool,
) -> Result<Outcome, CliError> {
    let m = &c.curvature.model;
    lifted_only(route, c.elimination.elimination)?;
    let l = load(&c.curvature)?;
    let g = rhs_or_gradient(&l.curv, rhs)?;
    let (f, factor_s) = phase("factorization", || l.curv.factor_route(eps, &factor_options(c, false), route));
    let f = f?;
    let defaults = hinv::SolveOptions::default();
    let opts = hinv::SolveOptions { tolerance: tolerance.unwrap_or(defaults.tolerance), accept_inexact, ..defaults };
    let (sol, solve_s) = phase("solve", || f.solve_with(faer::MatRef::from_column_major_slice(&g, g.len(), 1), &opts));
    let sol = sol?;
    let (x, report): (Vec<f64>, _) = (sol.x.col(0).iter().copied().collect(), sol.report);
    // One HVP checks the answer: cheap next to the factorization.
    let (hx, check_s) = phase("residual check", || l.curv.shifted_hvp(eps, &x));
    let hx = hx?;
    let r: Vec<f64> = g.iter().zip(&hx).map(|(a, b)| a - b).collect();
    let rel = norm(&r) / norm(&g).max(f64::MIN_POSITIVE);
    write_out(out, &x)?;
    // Next to a solve, the inertia the factorization already holds: no
    // second elimination to certify it (`hinv inertia` runs those, where
    // they cost less than `factor`'s SECOND_OPINION_LIMIT).
    let inertia = f.inertia_from_pivots();
    if m.json {
        print_json(&json!({
            "command": "solve",
            "curvature": l.curv.kind(),
            "route": f.route(),
            "elimination": f.as_lifted().map(|f| f.elimination()),
            "eps": eps,
            "sizes": sizes(&l.curv),
            "timings_s": {"load": l.load_s, "derivatives": l.derivs_s, "factor": factor_s, "solve": solve_s, "check": check_s},
            "relative_residual": rel,
            "tolerance": opts.tolerance,
            "solve_report": report,
            "inertia": inertia,
            "solution_norm": norm(&x),
            "out": out.map(|p| p.display().to_string()),
        }));
    } else {
        let c = cname(&l.curv);
        println!("solved ({c} + {eps:e} I) x = rhs for {} parameters (the Newton step is -x)", l.curv.num_params());
        println!("  relative residual ||rhs - ({c} + eps I) x|| / ||rhs|| = {rel:.3e}");
        println!(
            "  backward error {:.3e} (tolerance {:.1e}) after {} refinement step(s) with the exact HVP, {:?} elimination",
            report.backward_error, opts.tolerance, report.refinements, report.method
        );
        println!("  inertia of {c} + eps I: {} ({:?} route)", inertia_text(&inertia), f.route());
        println!("  time: derivatives {:.3} s, factor {factor_s:.3} s, solve {solve_s:.3} s", l.derivs_s);
        if let Some(p) = out {
            println!("  wrote {}", p.display());
        }
    }
    if report.within_tolerance {
        Ok(Outcome::Vouched)
    } else {
        Ok(Outcome::Unvouched(format!(
            "the solution's backward error {:.2e} is above the tolerance {:.2e} (written because of --accept-inexact)",
            report.backward_error, opts.tolerance
        )))
    }
}

/// `P positive, N negative, Z zero`, with the uncertainty when there is one.
fn inertia_text(i: &hinv::Inertia) -> String {
    format!("{} positive, {} negative, {} zero{}", i.positive, i.negative, i.zero, uncertainty_text(i))
}

/// ` (each count uncertain by up to N)`, or nothing for a certified inertia.
fn uncertainty_text(i: &hinv::Inertia) -> String {
    if i.uncertain > 0 {
        format!(" (each count uncertain by up to {})", i.uncertain)
    } else {
        String::new()
    }
}

/// The outcome of an inertia-like answer; `elimination`: the lifted
/// system's, when that route ran.
fn inertia_outcome(i: &hinv::Inertia, elimination: Option<hinv::Elimination>) -> Outcome {
    if i.is_certified() {
        return Outcome::Vouched;
    }
    // After the parameters-first elimination a count may have been left
    // uncertain rather than checked by a second elimination costing
    // hundreds of factorizations (wide layers): the interleaved one runs
    // that check (within the memory limit).
    let interleaved = if elimination == Some(hinv::Elimination::ParametersFirst) {
        ", or pass --elimination interleaved, which checks the count by factoring the whole lifted system \
         (on wide layers hundreds of times the time and memory of this factorization)"
    } else {
        ""
    };
    Outcome::Unvouched(format!(
        "the inertia is not certified: each count may be off by up to {} (eigenvalues too close to the shift for \
         this factorization to sign them); move the shift or eps away from the spectrum{interleaved}",
        i.uncertain
    ))
}

pub fn hvp(c: &CurvatureArgs, rhs: Option<&Path>, out: Option<&Path>) -> Result<Outcome, CliError> {
    let m = &c.model;
    let l = load(c)?;
    let v = rhs_or_gradient(&l.curv, rhs)?;
    let (hv, hvp_s) = phase("Hessian-vector product", || l.curv.hvp(&v));
    let hv = hv?;
    write_out(out, &hv)?;
    if m.json {
        print_json(&json!({
            "command": "hvp",
            "curvature": l.curv.kind(),
            "sizes": sizes(&l.curv),
            "timings_s": {"load": l.load_s, "derivatives": l.derivs_s, "hvp": hvp_s},
            "result_norm": norm(&hv),
            "v_dot_hv": v.iter().zip(&hv).map(|(a, b)| a * b).sum::<f64>(),
            "out": out.map(|p| p.display().to_string()),
        }));
    } else {
        let c = cname(&l.curv);
        println!(
            "{c} v for {} parameters: ||{c} v|| = {:.6e}, v.{c} v = {:.6e}",
            l.curv.num_params(),
            norm(&hv),
            v.iter().zip(&hv).map(|(a, b)| a * b).sum::<f64>()
        );
        println!("  time: derivatives {:.3} s, hvp {hvp_s:.3} s", l.derivs_s);
        if let Some(p) = out {
            println!("  wrote {}", p.display());
        }
    }
    Ok(Outcome::Vouched)
}

pub fn logdet(c: &FactorArgs, route: Option<hinv::Route>, eps: f64) -> Result<Outcome, CliError> {
    let m = &c.curvature.model;
    lifted_only(route, c.elimination.elimination)?;
    let l = load(&c.curvature)?;
    let (f, factor_s) = phase("factorization", || l.curv.factor_route(eps, &factor_options(c, true), route));
    let f = f?;
    // The factorization gives the inertia; the determinant is a second,
    // pivoted elimination (Factorization::log_det), timed on its own.
    let (det, logdet_s) = phase("log-determinant", || f.log_det());
    let det = det?;
    let (log_abs_det, sign) = (det.log_abs, det.sign);
    if m.json {
        print_json(&json!({
            "command": "logdet",
            "curvature": l.curv.kind(),
            "route": f.route(),
            "elimination": f.as_lifted().map(|f| f.elimination()),
            "eps": eps,
            "sizes": sizes(&l.curv),
            "timings_s": {"load": l.load_s, "derivatives": l.derivs_s, "factor": factor_s, "log_det": logdet_s},
            "log_abs_det": log_abs_det,
            "sign": sign,
            "inertia": f.inertia(),
        }));
    } else {
        println!(
            "log|det({} + {eps:e} I)| = {log_abs_det:.12e} (sign {sign:+}, {:?} route)",
            cname(&l.curv),
            f.route()
        );
        println!("  time: derivatives {:.3} s, factor {factor_s:.3} s, log-det {logdet_s:.3} s", l.derivs_s);
    }
    Ok(Outcome::Vouched)
}

pub fn inertia(c: &FactorArgs, route: Option<hinv::Route>, shift: f64) -> Result<Outcome, CliError> {
    let m = &c.curvature.model;
    lifted_only(route, c.elimination.elimination)?;
    if !shift.is_finite() {
        return Err(HinvError::InvalidNumber { what: "the shift", value: shift, expected: "a finite number" }.into());
    }
    let l = load(&c.curvature)?;
    let (f, factor_s) = phase("factorization", || l.curv.factor_route(-shift, &factor_options(c, true), route));
    let f = f?;
    let i = f.inertia();
    if m.json {
        print_json(&json!({
            "command": "inertia",
            "curvature": l.curv.kind(),
            "route": f.route(),
            "elimination": f.as_lifted().map(|f| f.elimination()),
            "shift": shift,
            "sizes": sizes(&l.curv),
            "timings_s": {"load": l.load_s, "derivatives": l.derivs_s, "factor": factor_s},
            "below": i.negative,
            "at": i.zero,
            "above": i.positive,
            "uncertain": i.uncertain,
            "certified": i.is_certified(),
        }));
    } else {
        let unc =
            if i.uncertain > 0 { format!(" (each count uncertain by up to {})", i.uncertain) } else { String::new() };
        println!(
            "eigenvalues of {}: {} below {shift:e}, {} at it, {} above{unc}",
            cname(&l.curv),
            i.negative,
            i.zero,
            i.positive
        );
        println!("  time: derivatives {:.3} s, factor {factor_s:.3} s", l.derivs_s);
    }
    Ok(inertia_outcome(&i, f.as_lifted().map(|f| f.elimination())))
}

/// The gradient alone needs one forward and one backward pass, not the
/// derivative blocks (whose `A_l` alone hold `sum_l p_l^2` entries).
pub fn gradient(m: &ModelArgs, out: Option<&Path>) -> Result<Outcome, CliError> {
    let (net, params, batch, load_s) = read_model(m)?;
    let (res, grad_s) = phase("gradient", || net.gradient(&params, &batch));
    let (loss, g) = res?;
    if let Some((index, &value)) = g.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(HinvError::Overflow { what: hinv::OverflowSite::Gradient { index }, value }.into());
    }
    write_out(out, &g)?;
    if m.json {
        print_json(&json!({
            "command": "gradient",
            "sizes": sizes_of(&net.param_counts(), &net.act_sizes(batch.batch_size())),
            "timings_s": {"load": load_s, "gradient": grad_s},
            "loss": loss,
            "gradient_norm": norm(&g),
            "out": out.map(|p| p.display().to_string()),
        }));
    } else {
        println!("loss = {loss:.12e}, ||gradient|| = {:.6e} ({} parameters)", norm(&g), g.len());
        if let Some(p) = out {
            println!("  wrote {}", p.display());
        }
    }
    Ok(Outcome::Vouched)
}

/// `hinv laplace`: the evidence at one prior precision or the one that
/// maximizes it, and the predictive of new inputs.
pub fn laplace(a: &super::LaplaceArgs) -> Result<Outcome, CliError> {
    use hinv::laplace::{Laplace, LaplaceOptions, Likelihood};
    let m = &a.model;
    lifted_only(a.route.get(), a.elimination.elimination)?;
    let (net, params, batch, load_s) = read_model(m)?;
    let likelihood = match net.spec().map(|s| s.loss) {
        Some(netgraph::LossSpec::Mse { .. }) => {
            Some(Likelihood::Regression { sigma_noise: a.sigma_noise.unwrap_or(1.0) })
        }
        _ => None,
    };
    // A flag this model does not use is refused, not ignored.
    if likelihood.is_none() && a.sigma_noise.is_some() {
        return Err(CliError::Usage(
            "--sigma-noise is the noise of a regression (mse) likelihood; this network's loss is cross_entropy".into(),
        ));
    }
    if likelihood.is_some() && a.samples > 0 {
        return Err(CliError::Usage(
            "--samples draws class probabilities: a cross_entropy network's only (this one is mse)".into(),
        ));
    }
    let opts = LaplaceOptions {
        curvature: a.curvature,
        likelihood,
        route: a.route.get(),
        memory_limit: Some(memory_limit(&a.memory)),
        elimination: a.elimination.elimination,
    };
    let (lap, derivs_s) = phase("derivative blocks", || Laplace::new(&net, &params, &batch, &opts));
    let lap = lap?;
    let (ev, search, evidence_s) = match &a.optimize {
        Some(range) => {
            let (lo, hi) = (range.first().copied().unwrap_or(f64::NAN), range.get(1).copied().unwrap_or(f64::NAN));
            let (r, t) = phase("prior precision search", || lap.optimize_prior_precision(lo, hi, 1e-6));
            let r = r?;
            (r.best.clone(), Some(r), t)
        }
        None => {
            let (r, t) = phase("evidence", || lap.evidence(a.prior_precision));
            (r?, None, t)
        }
    };
    let delta = ev.prior_precision;
    let mut pred = None;
    let mut predict_s = 0.0;
    if let Some(path) = &a.test_inputs {
        let inputs = netgraph::load_inputs(&net, path)?;
        let (p, t) = phase("predictive", || lap.predictive(delta, &inputs));
        let p = p?;
        predict_s = t;
        if let Some(out) = &a.out {
            let flat: Vec<f64> = p.covariance.iter().flatten().flatten().copied().collect();
            netgraph::write_npy_vector(out, &flat)?;
        }
        pred = Some(p);
    }
    let probit = pred.as_ref().filter(|_| matches!(lap.likelihood(), Likelihood::Classification)).map(|p| p.probit());
    let sampled = match (&pred, a.samples) {
        (Some(p), n) if n > 0 && matches!(lap.likelihood(), Likelihood::Classification) => {
            Some(p.sample_probabilities(n, 0)?)
        }
        _ => None,
    };
    let c = cname(lap.curvature());
    if m.json {
        print_json(&json!({
            "command": "laplace",
            "curvature": lap.curvature().kind(),
            "elimination": opts.elimination,
            "likelihood": lap.likelihood(),
            "sizes": sizes(lap.curvature()),
            "timings_s": {"load": load_s, "derivatives": derivs_s, "evidence": evidence_s, "predictive": predict_s},
            "evidence": ev,
            "search": search.as_ref().map(|s| json!({"evaluations": s.evaluations, "at_boundary": s.at_boundary})),
            "predictive": pred,
            "probit": probit,
            "sampled": sampled,
        }));
    } else {
        println!(
            "Laplace approximation with the {c} curvature ({} parameters, {:?} route)",
            lap.curvature().num_params(),
            ev.route
        );
        if let Some(s) = &search {
            println!(
                "  prior precision maximizing the evidence: {delta:.6e} ({} factorizations{})",
                s.evaluations,
                if s.at_boundary { ", at the end of the interval: widen it" } else { "" }
            );
        }
        println!("  log marginal likelihood = {:.12e} at prior precision {delta:e}", ev.log_marginal_likelihood);
        println!(
            "  log p(D|theta) = {:.12e}, log p(theta) = {:.12e}, log det(posterior precision) = {:.12e}",
            ev.log_likelihood, ev.log_prior, ev.log_det_posterior_precision
        );
        if let Some(p) = &pred {
            for (s, (mu, cov)) in p.mean.iter().zip(&p.covariance).enumerate().take(5) {
                let var: Vec<String> = (0..mu.len()).map(|k| format!("{:.6e}", cov[k][k])).collect();
                println!("  test sample {s}: output variances [{}]", var.join(", "));
                if let Some(pr) = &probit {
                    let v: Vec<String> = pr[s].iter().map(|x| format!("{x:.6}")).collect();
                    println!("    probit probabilities [{}]", v.join(", "));
                }
            }
            if p.mean.len() > 5 {
                println!("  ... ({} test samples; --json prints all)", p.mean.len());
            }
        }
        println!("  time: derivatives {derivs_s:.3} s, evidence {evidence_s:.3} s, predictive {predict_s:.3} s");
    }
    if search.as_ref().is_some_and(|s| s.at_boundary) {
        return Ok(Outcome::Unvouched(
            "the evidence is largest at an end of the --optimize interval: the maximum may lie outside it".into(),
        ));
    }
    Ok(Outcome::Vouched)
}
