//! The file-driven subcommands: `solve`, `hvp`, `logdet`, `inertia`, `gradient`.

use std::path::Path;

use hinv::{Curvature, HinvError};
use netgraph::{Batch, NetError, Network, Params};
use serde_json::json;
use thiserror::Error;

use super::progress::phase;
use super::ModelArgs;

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

pub(super) fn load(m: &ModelArgs) -> Result<Loaded, CliError> {
    let (net, params, batch, load_s) = read_model(m)?;
    // Refused before the passes allocate the derivative blocks.
    let opts = hinv::CurvatureOptions { memory_limit: Some(memory_limit(m)) };
    let (curv, derivs_s) = phase("derivative blocks", || Curvature::new_with(&net, &params, &batch, &opts));
    Ok(Loaded { curv: curv?, load_s, derivs_s })
}

/// The memory budget of a command: the flag, or the memory available now.
fn memory_limit(m: &ModelArgs) -> u64 {
    m.memory_limit.unwrap_or_else(netgraph::memory::default_limit)
}

/// Factor options for a command: the memory limit from the flag, or the
/// memory available now.
pub(super) fn factor_options(m: &ModelArgs, allow_singular: bool) -> hinv::FactorOptions {
    hinv::FactorOptions { allow_singular, memory_limit: Some(memory_limit(m)), ..Default::default() }
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
    m: &ModelArgs,
    rhs: Option<&Path>,
    eps: f64,
    out: Option<&Path>,
    tolerance: Option<f64>,
    accept_inexact: bool,
) -> Result<Outcome, CliError> {
    let l = load(m)?;
    let g = rhs_or_gradient(&l.curv, rhs)?;
    let (f, factor_s) = phase("factorization", || l.curv.factor_with(eps, &factor_options(m, false)));
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
    let inertia = f.inertia();
    if m.json {
        print_json(&json!({
            "command": "solve",
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
        println!("solved (H + {eps:e} I) x = rhs for {} parameters (the Newton step is -x)", l.curv.num_params());
        println!("  relative residual ||rhs - (H + eps I) x|| / ||rhs|| = {rel:.3e}");
        println!(
            "  backward error {:.3e} (tolerance {:.1e}) after {} refinement step(s) with the exact HVP, {:?} elimination",
            report.backward_error, opts.tolerance, report.refinements, report.method
        );
        println!("  inertia of H + eps I: {}", inertia_text(&inertia));
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

/// The outcome of an inertia-like answer.
fn inertia_outcome(i: &hinv::Inertia) -> Outcome {
    if i.is_certified() {
        Outcome::Vouched
    } else {
        Outcome::Unvouched(format!(
            "the inertia is not certified: each count may be off by up to {} (eigenvalues too close to the shift for \
             this factorization to sign them); move the shift or eps away from the spectrum",
            i.uncertain
        ))
    }
}

pub fn hvp(m: &ModelArgs, rhs: Option<&Path>, out: Option<&Path>) -> Result<Outcome, CliError> {
    let l = load(m)?;
    let v = rhs_or_gradient(&l.curv, rhs)?;
    let (hv, hvp_s) = phase("Hessian-vector product", || l.curv.hvp(&v));
    let hv = hv?;
    write_out(out, &hv)?;
    if m.json {
        print_json(&json!({
            "command": "hvp",
            "sizes": sizes(&l.curv),
            "timings_s": {"load": l.load_s, "derivatives": l.derivs_s, "hvp": hvp_s},
            "result_norm": norm(&hv),
            "v_dot_hv": v.iter().zip(&hv).map(|(a, b)| a * b).sum::<f64>(),
            "out": out.map(|p| p.display().to_string()),
        }));
    } else {
        println!(
            "H v for {} parameters: ||H v|| = {:.6e}, v.H v = {:.6e}",
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

pub fn logdet(m: &ModelArgs, eps: f64) -> Result<Outcome, CliError> {
    let l = load(m)?;
    let (f, factor_s) = phase("factorization", || l.curv.factor_with(eps, &factor_options(m, true)));
    let f = f?;
    // The factorization gives the inertia; the determinant is a second,
    // pivoted elimination (Factorization::log_det), timed on its own.
    let (det, logdet_s) = phase("log-determinant", || f.log_det());
    let det = det?;
    let (log_abs_det, sign) = (det.log_abs, det.sign);
    if m.json {
        print_json(&json!({
            "command": "logdet",
            "eps": eps,
            "sizes": sizes(&l.curv),
            "timings_s": {"load": l.load_s, "derivatives": l.derivs_s, "factor": factor_s, "log_det": logdet_s},
            "log_abs_det": log_abs_det,
            "sign": sign,
            "inertia": f.inertia(),
        }));
    } else {
        println!("log|det(H + {eps:e} I)| = {log_abs_det:.12e} (sign {sign:+})");
        println!("  time: derivatives {:.3} s, factor {factor_s:.3} s, log-det {logdet_s:.3} s", l.derivs_s);
    }
    Ok(Outcome::Vouched)
}

pub fn inertia(m: &ModelArgs, shift: f64) -> Result<Outcome, CliError> {
    if !shift.is_finite() {
        return Err(HinvError::InvalidNumber { what: "the shift", value: shift, expected: "a finite number" }.into());
    }
    let l = load(m)?;
    let (f, factor_s) = phase("factorization", || l.curv.factor_with(-shift, &factor_options(m, true)));
    let i = f?.inertia();
    if m.json {
        print_json(&json!({
            "command": "inertia",
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
        println!("eigenvalues of H: {} below {shift:e}, {} at it, {} above{unc}", i.negative, i.zero, i.positive);
        println!("  time: derivatives {:.3} s, factor {factor_s:.3} s", l.derivs_s);
    }
    Ok(inertia_outcome(&i))
}

/// The gradient alone needs one forward and one backward pass, not the
/// derivative blocks (whose `A_l` alone hold `sum_l p_l^2` entries).
pub fn gradient(m: &ModelArgs, out: Option<&Path>) -> Result<Outcome, CliError> {
    let (net, params, batch, load_s) = read_model(m)?;
    let (res, grad_s) = phase("gradient", || net.gradient(&params, &batch));
    let (loss, g) = res?;
    if let Some((index, &value)) = g.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(HinvError::Overflow { what: format!("entry {index} of the gradient"), value }.into());
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
