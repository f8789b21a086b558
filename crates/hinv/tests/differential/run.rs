//! One network through the library and the dense reference: its cases,
//! each judged by the rules of [`super::checks`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use netgraph::{Batch, Network, Params};

use super::adapter;
use super::cases::{draw_eps, net_case, NetCase, EPS_PER_NET};
use super::checks::{
    fail, judge_answer, judge_count, judge_inertia, judge_log_det, judge_refusal, CaseResult, Context, Failure,
    FailureKind, SolveOutcome, Verdict,
};
use super::dense::{self, DenseLu, DenseSolution, U};

/// The spectrum class of a network's `H`, for the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Curv {
    /// Nonsingular, `||H|| >= 1e-6`.
    Regular,
    /// Some eigenvalue of `H` within its error bound of zero.
    Singular,
    /// `||H|| < 1e-6`, nonsingular.
    Vanishing,
}

impl Curv {
    /// Name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Curv::Regular => "regular H",
            Curv::Singular => "singular H",
            Curv::Vanishing => "vanishing H",
        }
    }
}

/// One network and its cases.
#[derive(Debug, Clone)]
pub struct NetOutcome {
    /// The network.
    pub net: NetCase,
    /// Parameters.
    pub p: usize,
    /// `||H||_2`.
    pub norm_h: f64,
    /// Eigenvalues of `H`, increasing (for reports).
    pub eig: Vec<f64>,
    /// Class of the spectrum of `H`.
    pub curv: Curv,
    /// Why no case ran (the network overflows at its weights).
    pub skipped: Option<String>,
    /// `max |H_fd - H_hvp|`, `max |H|`, and whether that check resolves `H`.
    pub fd: Option<(f64, f64, bool)>,
    /// Its cases.
    pub cases: Vec<CaseResult>,
    /// Failures not tied to one case (reference, panic).
    pub failures: Vec<Failure>,
    /// Wall time.
    pub seconds: f64,
}

/// A standard normal vector (Box-Muller), the random right-hand side.
fn random_rhs(n: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<f64> {
    use rand::Rng;
    (0..n)
        .map(|_| {
            let u: f64 = 1.0 - rng.random::<f64>();
            let v: f64 = rng.random::<f64>();
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect()
}

/// Everything about one case a further check (the binary) needs.
pub struct CaseInputs<'a> {
    /// The network case.
    pub net_case: &'a NetCase,
    /// Its network, weights, batch.
    pub net: &'a Network,
    /// Weights.
    pub params: &'a Params,
    /// Batch.
    pub batch: &'a Batch,
    /// Case index.
    pub index: usize,
    /// Check context.
    pub ctx: Context<'a>,
    /// The gradient.
    pub g: &'a [f64],
    /// Its dense solution.
    pub dense_g: &'a DenseSolution,
    /// `log|det|` from the dense LU.
    pub lu_log_det: f64,
}

/// An extra check run on the first case of selected networks.
pub type Hook<'h> = &'h (dyn Fn(&CaseInputs<'_>) -> Vec<Failure> + Sync);

/// Runs network `index` of run `seed` and all its cases; panics in the
/// library become failures.
pub fn run_network(seed: u64, index: usize, max_params: usize, hook: Option<Hook<'_>>) -> NetOutcome {
    let start = Instant::now();
    let net_case = net_case(seed, index, max_params);
    let mut out = NetOutcome {
        net: net_case.clone(),
        p: 0,
        norm_h: 0.0,
        eig: Vec::new(),
        curv: Curv::Regular,
        skipped: None,
        fd: None,
        cases: Vec::new(),
        failures: Vec::new(),
        seconds: 0.0,
    };
    let res = catch_unwind(AssertUnwindSafe(|| run_inner(&net_case, &mut out, hook)));
    if let Err(e) = res {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        out.failures.push(fail(FailureKind::Panic, msg));
    }
    out.seconds = start.elapsed().as_secs_f64();
    out
}

fn run_inner(nc: &NetCase, out: &mut NetOutcome, hook: Option<Hook<'_>>) {
    let net = nc.network();
    let params = nc.params(&net);
    let batch = nc.batch();
    let curv = match adapter::curvature(&net, &params, &batch) {
        Ok(c) => c,
        Err(e) => {
            out.skipped = Some(e);
            return;
        }
    };
    let r = dense::reference(&curv, &net, &params, &batch);
    out.p = r.p;
    out.norm_h = r.norm_h;
    out.eig = r.eig.clone();
    let tol_h = r.p as f64 * U * r.norm_h + r.dh;
    out.curv = if r.eig.iter().any(|l| l.abs() <= tol_h) {
        Curv::Singular
    } else if r.norm_h < 1e-6 {
        Curv::Vanishing
    } else {
        Curv::Regular
    };
    // Units killed without a bias sit exactly at the ReLU's kink, where
    // central differences straddle it (and the Hessian is the library's
    // convention, act'(0) = 0): no finite-difference check there.
    let at_kink = !nc.dead.is_empty() && !nc.bias;
    out.fd = Some((r.fd_diff, r.max_abs_h, r.fd_meaningful() && !at_kink));
    if !at_kink && !r.fd_agrees() {
        out.failures.push(fail(
            FailureKind::Reference,
            format!("max |H_fd - H_hvp| = {:.2e}, max |H| = {:.2e}", r.fd_diff, r.max_abs_h),
        ));
    }
    let g = adapter::gradient(&curv);
    for (k, &kind) in nc.eps_kinds.iter().enumerate() {
        let index = EPS_PER_NET * nc.index + k;
        let mut rng = nc.eps_rng(k);
        let (eps, _target, threshold) = draw_eps(kind, &r.eig, &mut rng);
        let b = random_rhs(r.p, &mut rng);
        let s = dense::spectral(&r, eps);
        let ctx = Context { r: &r, s: &s, eps };
        let lu = DenseLu::new(&r.h, eps);
        let dense_sol = [lu.solve(&r.h, eps, &g), lu.solve(&r.h, eps, &b)];
        let mut failures = Vec::new();

        let rhs: [&[f64]; 2] = [&g, &b];
        let names = ["gradient", "random rhs"];
        let answers = adapter::hinv_solve(&curv, eps, &rhs);
        let mut solves = Vec::with_capacity(2);
        for (j, a) in answers.into_iter().enumerate() {
            match a {
                Ok(a) => {
                    let (o, f) = judge_answer(
                        &ctx,
                        &a.x,
                        rhs[j],
                        &dense_sol[j],
                        a.reported_backward_error,
                        a.iterations,
                        names[j],
                    );
                    failures.extend(f);
                    solves.push(o);
                }
                Err(e) => {
                    failures.extend(judge_refusal(&ctx, e.kind, &e.message, &dense_sol[j], names[j]));
                    solves.push(SolveOutcome::Refused { kind: e.kind, message: e.message });
                }
            }
        }
        let refused: Vec<bool> = solves.iter().map(|o| matches!(o, SolveOutcome::Refused { .. })).collect();
        if refused[0] != refused[1] && dense::norm(&g) > 0.0 && s.ambiguous == 0 {
            failures.push(fail(
                FailureKind::InconsistentRefusal,
                format!("cond {:.2e}: gradient {}, random rhs {}", s.cond, verb(refused[0]), verb(refused[1])),
            ));
        }

        let inertia = match adapter::hinv_inertia(&curv, eps) {
            Ok(i) => {
                let (v, f) = judge_inertia(&ctx, i, "inertia");
                failures.extend(f);
                v
            }
            Err(e) => {
                failures.push(fail(FailureKind::QueryError, format!("inertia: {}", e.message)));
                Verdict::Wrong
            }
        };
        let log_det = match adapter::hinv_logdet(&curv, eps) {
            Ok((ld, sign)) => {
                let (v, f) = judge_log_det(&ctx, ld, sign, lu.log_det, "log-det");
                failures.extend(f);
                v
            }
            Err(e) => {
                failures.push(fail(FailureKind::QueryError, format!("log-det: {}", e.message)));
                None
            }
        };
        let count = match adapter::hinv_count_below(&curv, threshold) {
            Ok((c, unc, impossible)) => {
                let (v, f) = judge_count(&r, threshold, c, unc, impossible.as_deref(), "count below");
                failures.extend(f);
                v
            }
            Err(e) => {
                failures.push(fail(FailureKind::QueryError, format!("count below {threshold:e}: {}", e.message)));
                Verdict::Wrong
            }
        };
        if k == 0 {
            if let Some(hook) = hook {
                let inputs = CaseInputs {
                    net_case: nc,
                    net: &net,
                    params: &params,
                    batch: &batch,
                    index,
                    ctx: Context { r: &r, s: &s, eps },
                    g: &g,
                    dense_g: &dense_sol[0],
                    lu_log_det: lu.log_det,
                };
                failures.extend(hook(&inputs));
            }
        }
        let solves: [SolveOutcome; 2] = solves.try_into().expect("two right-hand sides");
        out.cases.push(CaseResult {
            index,
            eps_kind: kind,
            eps,
            threshold,
            spectral: s,
            solves,
            inertia,
            count,
            log_det,
            failures,
        });
    }
}

fn verb(refused: bool) -> &'static str {
    if refused {
        "refused"
    } else {
        "answered"
    }
}
