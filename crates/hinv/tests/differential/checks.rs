//! The rules every answer of the library is judged by (the issue "Never
//! a wrong answer"), with the tolerances derived where they are applied;
//! [`super::run`] applies them to one network's cases.

use super::adapter::{LibInertia, RefusalKind};
use super::cases::EpsKind;
use super::dense::{self, DenseSolution, Reference, Spectral, U};

/// What went wrong, one variant per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureKind {
    /// An answer whose forward error exceeds `10 u cond` plus the
    /// reference's own error, and whose backward error exceeds `64 u`.
    WrongSolve,
    /// An answer whose forward error exceeds `10 u cond` (plus the
    /// reference's error) although its backward error is within `64 u`:
    /// the two bars disagree there (`64 u` of backward error allows
    /// `128 u cond` of forward error).
    LooseSolve,
    /// An answer whose backward error (dense `H`) exceeds `64 u` at
    /// `cond <= 1e14`.
    BackwardError,
    /// An answer whose backward error exceeds twice the one the library
    /// reported for it (any `cond`).
    OverstatedAccuracy,
    /// A refusal at `cond <= 1e12`, or up to `1e14` where the dense LU
    /// solved the system to `10 u cond`.
    FalseRefusal,
    /// A refusal that is neither `Singular` nor `IllConditioned`.
    RefusalKind,
    /// One right-hand side answered, the other refused.
    InconsistentRefusal,
    /// `positive + negative + zero != P`, or the lifted system's own
    /// counts contradict Haynsworth's theorem.
    InertiaSum,
    /// Inertia counts outside what the spectrum and the stated uncertainty
    /// allow.
    InertiaWrong,
    /// `log|det|` outside its bound.
    LogDetWrong,
    /// Sign of the determinant against the dense inertia.
    DetSignWrong,
    /// `count_eigenvalues_below` against the spectrum.
    CountWrong,
    /// The inertia, log-determinant or count query returned an error.
    QueryError,
    /// The library panicked.
    Panic,
    /// The exact-HVP Hessian disagrees with finite differences of the
    /// gradient (the derivative blocks are wrong).
    Reference,
    /// The `hinv` binary exited 0 with an answer outside its stated
    /// accuracy, or misreported.
    Binary,
}

impl FailureKind {
    /// Name for tables.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::WrongSolve => "wrong solve (forward and backward error)",
            FailureKind::LooseSolve => "forward error above 10 u cond at backward error <= 64 u",
            FailureKind::BackwardError => "backward error above 64u",
            FailureKind::OverstatedAccuracy => "backward error above the reported one",
            FailureKind::FalseRefusal => "false refusal",
            FailureKind::RefusalKind => "undocumented refusal",
            FailureKind::InconsistentRefusal => "refusal inconsistent between right-hand sides",
            FailureKind::InertiaSum => "impossible inertia counts",
            FailureKind::InertiaWrong => "wrong inertia",
            FailureKind::LogDetWrong => "wrong log-det",
            FailureKind::DetSignWrong => "wrong determinant sign",
            FailureKind::CountWrong => "wrong eigenvalue count",
            FailureKind::QueryError => "query error",
            FailureKind::Panic => "panic",
            FailureKind::Reference => "HVP Hessian vs finite differences",
            FailureKind::Binary => "hinv binary",
        }
    }
}

/// One violated rule.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Which rule.
    pub kind: FailureKind,
    /// The numbers.
    pub detail: String,
}

/// `value <= bound`, false for a NaN value: a NaN answer never passes.
fn within(value: f64, bound: f64) -> bool {
    value <= bound
}

pub(super) fn fail(kind: FailureKind, detail: String) -> Failure {
    Failure { kind, detail }
}

/// The outcome of one solve.
#[derive(Debug, Clone)]
pub enum SolveOutcome {
    /// The library answered.
    Answer {
        /// Forward error against the dense solution (NaN when the dense
        /// system has no unique solution to compare with).
        fe: f64,
        /// Backward error with the dense `H`.
        be: f64,
        /// The backward error the library reported (NaN for the binary
        /// when absent).
        reported_be: f64,
        /// Refinement steps.
        iterations: usize,
        /// Forward error of a plain dense LU solve of the same system.
        lu_fe: f64,
    },
    /// The library refused.
    Refused {
        /// Of which kind.
        kind: RefusalKind,
        /// The message.
        message: String,
    },
}

/// How an inertia (or eigenvalue count) came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Certified, and equal to the dense counts.
    Certified,
    /// Uncertain, and the true counts are within the stated uncertainty.
    Uncertain,
    /// Some dense eigenvalue lies within its error of the threshold: only
    /// the sum and the range were checked.
    Ambiguous,
    /// A rule was violated.
    Wrong,
}

/// One `(network, eps)` case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// `EPS_PER_NET * network + k`.
    pub index: usize,
    /// How `eps` was placed.
    pub eps_kind: EpsKind,
    /// The regularisation.
    pub eps: f64,
    /// The threshold of the eigenvalue count.
    pub threshold: f64,
    /// The spectrum of `H + eps I`.
    pub spectral: Spectral,
    /// Gradient, then random right-hand side.
    pub solves: [SolveOutcome; 2],
    /// The inertia.
    pub inertia: Verdict,
    /// The eigenvalue count.
    pub count: Verdict,
    /// `|log|det| - reference| / max(1, |reference|)` and its bound;
    /// `None` when ambiguous or refused.
    pub log_det: Option<(f64, f64)>,
    /// Rules violated.
    pub failures: Vec<Failure>,
}

/// What the checks of one case need.
pub struct Context<'a> {
    /// The network's reference.
    pub r: &'a Reference,
    /// The spectrum of `H + eps I`.
    pub s: &'a Spectral,
    /// The regularisation.
    pub eps: f64,
}

impl Context<'_> {
    /// The reference's own uncertainty relative to `||H + eps I||`.
    pub fn ref_rel(&self) -> f64 {
        if self.s.norm_a > 0.0 {
            self.r.dh / self.s.norm_a
        } else {
            0.0
        }
    }
}

/// Checks an answer `x` to `(H + eps I) x = b`.
pub fn judge_answer(
    ctx: &Context<'_>,
    x: &[f64],
    b: &[f64],
    d: &DenseSolution,
    reported_be: f64,
    iterations: usize,
    what: &str,
) -> (SolveOutcome, Vec<Failure>) {
    let mut failures = Vec::new();
    let cond = ctx.s.cond;
    let be = dense::backward_error(&ctx.r.h, ctx.eps, ctx.s.norm_a, x, b);
    // The residual is computed twice as precisely as the working precision,
    // so `be` is the backward error for the stored H, which differs from the
    // library's operator by at most `dh`: `be <= be_library + dh / ||A||`.
    let be_bound = 64.0 * U + ctx.ref_rel();
    let be_ok = within(be, be_bound);
    if cond <= 1e14 && !be_ok {
        failures.push(fail(
            FailureKind::BackwardError,
            format!("{what}: backward error {be:.2e} = {:.1} u > 64 u + reference {:.1e}", be / U, ctx.ref_rel()),
        ));
    }
    // The forward error has a reference only when the dense system has
    // one solution: no eigenvalue within its error of -eps, and a finite
    // dense solution. NaN otherwise (left out of the tables).
    let decided = ctx.s.ambiguous == 0 && cond.is_finite() && d.x.iter().all(|v| v.is_finite());
    let fe = if decided { dense::rel_diff(x, &d.x) } else { f64::NAN };
    // A backward-stable solver's forward error is about u cond; the issue
    // allows 10 u cond, plus what the reference itself may be off by: its
    // refinement estimate for the stored H, and the stored H's own
    // uncertainty amplified by cond. A backward error `be` explains a
    // forward error up to `2 be cond` (first order), so an answer within
    // the 64 u backward-error bar may still miss 10 u cond by up to 13x:
    // that is its own kind, `LooseSolve`. The issue asks for 10 u cond up
    // to cond 1e12 and for the backward error alone beyond (seed 1, case
    // 1826: 12 u cond at cond 2.3e12 and backward error 18 u, where a
    // dense LU was 15 times further off).
    let reference = d.est + cond * ctx.ref_rel();
    let fe_bound = 10.0 * U * cond + reference;
    if decided && cond <= 1e12 && !within(fe, fe_bound) {
        failures.push(fail(
            if be_ok { FailureKind::LooseSolve } else { FailureKind::WrongSolve },
            format!(
                "{what}: forward error {fe:.2e} > {fe_bound:.2e} = 10 u cond + reference {reference:.1e} (FE/(u cond) = {:.2e}; a dense LU: {:.2e}); backward error {be:.2e} = {:.1} u, reported {reported_be:.2e}, {iterations} refinement step(s)",
                fe / (U * cond),
                d.lu_fe / (U * cond),
                be / U,
            ),
        ));
    }
    // The library states a backward error with its answer: it measures it
    // with the HVP and an estimate of ||H + eps I|| from below (which can
    // only overstate it); allow a factor 2 and 64 u for the rounding of
    // both residuals.
    let stated = 2.0 * reported_be.max(64.0 * U) + ctx.ref_rel();
    if reported_be.is_finite() && !within(be, stated) {
        failures.push(fail(
            FailureKind::OverstatedAccuracy,
            format!("{what}: backward error {be:.2e} but the library reported {reported_be:.2e}"),
        ));
    }
    (SolveOutcome::Answer { fe, be, reported_be, iterations, lu_fe: d.lu_fe }, failures)
}

/// Checks a refusal.
pub fn judge_refusal(
    ctx: &Context<'_>,
    kind: RefusalKind,
    message: &str,
    d: &DenseSolution,
    what: &str,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    let cond = ctx.s.cond;
    if kind == RefusalKind::Other {
        failures.push(fail(FailureKind::RefusalKind, format!("{what}: cond {cond:.2e}: {message}")));
    }
    // An eigenvalue within its own error of -eps: the system may be
    // singular, and refusing is right.
    if ctx.s.ambiguous > 0 {
        return failures;
    }
    if cond <= 1e12 {
        failures.push(fail(FailureKind::FalseRefusal, format!("{what}: refused at cond {cond:.2e}: {message}")));
    } else if cond <= 1e14 {
        // Judged only when the reference resolves the dense LU's error.
        let bar = 10.0 * U * cond;
        if d.lu_fe <= bar && d.est <= 0.1 * bar {
            failures.push(fail(
                FailureKind::FalseRefusal,
                format!(
                    "{what}: refused at cond {cond:.2e} where a dense LU reaches forward error {:.2e} <= 10 u cond: {message}",
                    d.lu_fe
                ),
            ));
        }
    }
    failures
}

/// Whether counts `(positive, negative)` with uncertainty `unc` are
/// compatible with the spectrum: the true negative count lies in
/// `[sure_neg, sure_neg + ambiguous]` and must be within `unc` of the
/// reported one (likewise the positive count).
fn counts_compatible(pos: usize, neg: usize, unc: usize, sure_pos: usize, sure_neg: usize, amb: usize) -> bool {
    let meets = |c: usize, lo: usize| c + unc >= lo && c <= lo + amb + unc;
    meets(pos, sure_pos) && meets(neg, sure_neg)
}

/// Checks the library's inertia of `H + eps I`.
pub fn judge_inertia(ctx: &Context<'_>, i: LibInertia, what: &str) -> (Verdict, Vec<Failure>) {
    let s = ctx.s;
    let mut failures = Vec::new();
    if i.positive + i.negative + i.zero != ctx.r.p {
        failures.push(fail(
            FailureKind::InertiaSum,
            format!(
                "{what}: {} positive, {} negative, {} zero sum to {}, P = {}",
                i.positive,
                i.negative,
                i.zero,
                i.positive + i.negative + i.zero,
                ctx.r.p
            ),
        ));
    }
    if let Some(why) = &i.impossible {
        failures.push(fail(FailureKind::InertiaSum, format!("{what}: {why}")));
    }
    if !counts_compatible(i.positive, i.negative, i.uncertain, s.sure_pos, s.sure_neg, s.ambiguous) {
        failures.push(fail(
            FailureKind::InertiaWrong,
            format!(
                "{what}: library {} positive, {} negative, {} zero (uncertain {}), dense {} positive, {} negative, {} within {:.1e} of zero (cond {:.2e})",
                i.positive, i.negative, i.zero, i.uncertain, s.sure_pos, s.sure_neg, s.ambiguous, s.tol, s.cond
            ),
        ));
    }
    let verdict = if !failures.is_empty() {
        Verdict::Wrong
    } else if i.uncertain > 0 {
        Verdict::Uncertain
    } else if s.ambiguous > 0 {
        Verdict::Ambiguous
    } else {
        Verdict::Certified
    };
    (verdict, failures)
}

/// Checks `log|det|` and the sign. Returns the relative error and its
/// bound when the spectrum decides them.
pub fn judge_log_det(
    ctx: &Context<'_>,
    log_abs: f64,
    sign: f64,
    lu_log_det: f64,
    what: &str,
) -> (Option<(f64, f64)>, Vec<Failure>) {
    let s = ctx.s;
    let mut failures = Vec::new();
    if s.ambiguous > 0 {
        return (None, failures);
    }
    let expected = if s.sure_neg % 2 == 0 { 1.0 } else { -1.0 };
    if sign != expected {
        failures.push(fail(
            FailureKind::DetSignWrong,
            format!("{what}: sign {sign} but {} negative eigenvalues (cond {:.2e})", s.sure_neg, s.cond),
        ));
    }
    let scale = s.log_det.abs().max(1.0);
    let err = (log_abs - s.log_det).abs() / scale;
    // A perturbation of relative size `e` moves each eigenvalue by at most
    // `e ||A||` (Weyl), so log|det| by at most `e kappa_sum` to first order:
    // the library is allowed the solve's 64 u of backward error, at least
    // the 1e-9 (relative) and exactly that up to cond 1e8. The
    // reference may be off by what its two routes (eigenvalues, LU pivots)
    // disagree by, and by the stored H's uncertainty.
    let library = if s.cond <= 1e8 { 1e-9 } else { (64.0 * U * s.kappa_sum / scale).max(1e-9) };
    let reference = (2.0 * (s.log_det - lu_log_det).abs() + ctx.ref_rel() * s.kappa_sum) / scale;
    let bound = library + reference;
    if !within(err, bound) {
        failures.push(fail(
            FailureKind::LogDetWrong,
            format!(
                "{what}: log|det| {log_abs:.15e} vs {:.15e} (LU {lu_log_det:.15e}): relative error {err:.2e} > {bound:.2e} (cond {:.2e})",
                s.log_det, s.cond
            ),
        ));
    }
    (Some((err, bound)), failures)
}

/// Checks a count of eigenvalues below `t` with uncertainty `unc`.
pub fn judge_count(
    r: &Reference,
    t: f64,
    count: usize,
    unc: usize,
    impossible: Option<&str>,
    what: &str,
) -> (Verdict, Vec<Failure>) {
    let mut failures = Vec::new();
    if let Some(why) = impossible {
        failures.push(fail(FailureKind::InertiaSum, format!("{what} {t:e}: {why}")));
    }
    let tol = r.p as f64 * U * r.norm_h + r.dh;
    let sure = r.eig.iter().filter(|&&l| l < t - tol).count();
    let amb = r.eig.iter().filter(|&&l| (l - t).abs() <= tol).count();
    let ok = count + unc >= sure && count <= sure + amb + unc;
    if !ok {
        let gap = r.eig.iter().fold(f64::INFINITY, |m, &l| m.min((l - t).abs()));
        let norm = r.eig.iter().fold(0.0f64, |m, &l| m.max((l - t).abs()));
        let detail = format!(
            "{what}: {count} (uncertain {unc}) below {t:e}, dense {sure} and {amb} within {tol:.1e} (cond(H - t I) {:.2e})",
            norm / gap
        );
        failures.push(fail(FailureKind::CountWrong, detail));
    }
    if !failures.is_empty() {
        return (Verdict::Wrong, failures);
    }
    let v = if unc > 0 {
        Verdict::Uncertain
    } else if amb > 0 {
        Verdict::Ambiguous
    } else {
        Verdict::Certified
    };
    (v, Vec::new())
}
