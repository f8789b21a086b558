//! The summary tables (markdown, for docs/numerics.md) and the list of
//! failures with what is needed to reproduce each.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::cases::{EPS_PER_NET, MAX_PARAMS};
use super::checks::{CaseResult, FailureKind, SolveOutcome, Verdict};
use super::dense::U;
use super::run::NetOutcome;

/// The run a report describes.
#[derive(Debug, Clone, Copy)]
pub struct RunInfo {
    /// The seed.
    pub seed: u64,
    /// The parameter cap of the generator.
    pub max_params: usize,
}

impl RunInfo {
    /// The command that reruns one case.
    pub fn reproduce(&self, case: usize) -> String {
        let cap =
            if self.max_params == MAX_PARAMS { String::new() } else { format!(" --max-params {}", self.max_params) };
        format!("cargo run --release -p hinv --example differential -- --seed {}{cap} --case {case}", self.seed)
    }
}

/// The condition-number bin of a case.
pub fn cond_decade(cond: f64) -> (i32, String) {
    if !cond.is_finite() {
        return (99, "inf (exactly singular)".into());
    }
    let d = cond.log10().floor().max(0.0) as i32;
    if d >= 16 {
        (16, "≥ 1e16".into())
    } else {
        (d, format!("1e{d} .. 1e{}", d + 1))
    }
}

fn depth_bucket(depth: usize) -> (i32, String) {
    let (k, s) = match depth {
        1 => (0, "1"),
        2..=4 => (1, "2-4"),
        5..=10 => (2, "5-10"),
        11..=20 => (3, "11-20"),
        _ => (4, "21-40"),
    };
    (k, s.into())
}

#[derive(Default)]
struct Row {
    cases: usize,
    answered: usize,
    refused: usize,
    false_refusals: usize,
    worst_fe: f64,
    worst_be: f64,
    certified: usize,
    uncertain: usize,
    ambiguous: usize,
    inertia_wrong: usize,
    count_wrong: usize,
    worst_ld: f64,
    worst_ld_ratio: f64,
    failing: usize,
}

impl Row {
    fn add(&mut self, c: &CaseResult) {
        self.cases += 1;
        for s in &c.solves {
            match s {
                SolveOutcome::Answer { fe, be, .. } => {
                    self.answered += 1;
                    let cond = c.spectral.cond;
                    if cond.is_finite() {
                        self.worst_fe = self.worst_fe.max(fe / (U * cond));
                    }
                    if cond <= 1e14 {
                        self.worst_be = self.worst_be.max(be / U);
                    }
                }
                SolveOutcome::Refused { .. } => self.refused += 1,
            }
        }
        self.false_refusals += c.failures.iter().filter(|f| f.kind == FailureKind::FalseRefusal).count();
        match c.inertia {
            Verdict::Certified => self.certified += 1,
            Verdict::Uncertain => self.uncertain += 1,
            Verdict::Ambiguous => self.ambiguous += 1,
            Verdict::Wrong => self.inertia_wrong += 1,
        }
        if c.count == Verdict::Wrong {
            self.count_wrong += 1;
        }
        if let Some((err, bound)) = c.log_det {
            self.worst_ld = self.worst_ld.max(err);
            self.worst_ld_ratio = self.worst_ld_ratio.max(err / bound);
        }
        if !c.failures.is_empty() {
            self.failing += 1;
        }
    }

    fn line(&self, label: &str) -> String {
        let e = |v: f64| if v > 0.0 { format!("{v:.1e}") } else { "–".into() };
        format!(
            "| {label} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} | {} | {} | {} | {} |",
            self.cases,
            self.answered,
            self.refused,
            self.false_refusals,
            e(self.worst_fe),
            e(self.worst_be),
            self.certified,
            self.uncertain,
            self.ambiguous,
            self.inertia_wrong,
            self.count_wrong,
            e(self.worst_ld),
            e(self.worst_ld_ratio),
            self.failing,
        )
    }
}

const HEADER: &str = "| cases | solves answered | refused | false refusals | worst FE/(u cond) | worst BE/u (cond ≤ 1e14) | inertia certified / uncertain / ambiguous | inertia wrong | count wrong | worst log-det rel err | worst log-det err/bound | failing cases |";

fn table<K: Ord>(
    out: &mut String,
    title: &str,
    nets: &[NetOutcome],
    key: impl Fn(&NetOutcome, &CaseResult) -> (K, String),
) {
    let mut rows: BTreeMap<K, (String, Row)> = BTreeMap::new();
    let mut total = Row::default();
    for n in nets {
        for c in &n.cases {
            let (k, label) = key(n, c);
            rows.entry(k).or_insert_with(|| (label, Row::default())).1.add(c);
            total.add(c);
        }
    }
    let _ = writeln!(out, "\n#### By {title}\n");
    let _ = writeln!(out, "| {title} {HEADER}");
    let _ = writeln!(out, "|{}", "---|".repeat(14));
    for (label, row) in rows.values() {
        let _ = writeln!(out, "{}", row.line(label));
    }
    let _ = writeln!(out, "{}", total.line("**all**"));
}

/// The markdown summary: one table per classification.
pub fn summary(nets: &[NetOutcome]) -> String {
    let mut out = String::new();
    table(&mut out, "cond(H + eps I)", nets, |_, c| cond_decade(c.spectral.cond));
    table(&mut out, "spectrum of H", nets, |n, _| (n.curv, n.curv.name().into()));
    table(&mut out, "network class", nets, |n, _| (n.net.class, n.net.class.name().into()));
    table(&mut out, "activation", nets, |n, _| (n.net.activation.name(), n.net.activation.name().into()));
    table(&mut out, "eps placement", nets, |_, c| (c.eps_kind, c.eps_kind.name().into()));
    table(&mut out, "loss, residual", nets, |n, _| {
        let k = (n.net.mse, n.net.has_residual());
        let s = format!("{}, {}", if k.0 { "mse" } else { "cross-entropy" }, if k.1 { "residual" } else { "plain" });
        (k, s)
    });
    table(&mut out, "depth", nets, |n, _| depth_bucket(n.net.depth()));
    out
}

/// Counts of everything the run did, for a header line.
pub fn totals(nets: &[NetOutcome]) -> String {
    let cases: usize = nets.iter().map(|n| n.cases.len()).sum();
    let skipped = nets.iter().filter(|n| n.skipped.is_some()).count();
    let fd = nets.iter().filter(|n| matches!(n.fd, Some((_, _, true)))).count();
    let secs: f64 = nets.iter().map(|n| n.seconds).sum();
    let failing = nets.iter().flat_map(|n| &n.cases).filter(|c| !c.failures.is_empty()).count()
        + nets.iter().filter(|n| !n.failures.is_empty()).count();
    format!(
        "{} networks ({skipped} skipped: they overflow), {cases} cases; finite differences resolve H on {fd} networks; {failing} failing; {secs:.0} s of work",
        nets.len()
    )
}

/// Every failure with its reproducer, grouped by kind (first one of each
/// kind first, then all).
pub fn failures(nets: &[NetOutcome], run: RunInfo) -> String {
    let mut by_kind: BTreeMap<FailureKind, Vec<String>> = BTreeMap::new();
    for n in nets {
        let head = format!(
            "seed {} network {}: {}, P = {}, ||H|| = {:.2e}",
            run.seed,
            n.net.index,
            n.net.describe(),
            n.p,
            n.norm_h
        );
        for f in &n.failures {
            let case = EPS_PER_NET * n.net.index;
            by_kind.entry(f.kind).or_default().push(format!(
                "{head}: {}\n  reproduce: {}",
                f.detail,
                run.reproduce(case)
            ));
        }
        for c in &n.cases {
            for f in &c.failures {
                by_kind.entry(f.kind).or_default().push(format!(
                    "seed {} case {} ({head}); eps = {:e} ({}), cond {:.2e}: {}\n  reproduce: {}",
                    run.seed,
                    c.index,
                    c.eps,
                    c.eps_kind.name(),
                    c.spectral.cond,
                    f.detail,
                    run.reproduce(c.index)
                ));
            }
        }
    }
    let mut out = String::new();
    if by_kind.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\n#### Failures by kind\n\n| kind | count |\n|---|---|");
    for (k, v) in &by_kind {
        let _ = writeln!(out, "| {} | {} |", k.name(), v.len());
    }
    let _ = writeln!(out, "\nOne reproducer per kind:\n");
    for (k, v) in &by_kind {
        let _ = writeln!(out, "- **{}**: {}", k.name(), v[0]);
    }
    let _ = writeln!(out, "\nAll failures:\n");
    for (k, v) in &by_kind {
        for line in v {
            let _ = writeln!(out, "- [{}] {line}", k.name());
        }
    }
    out
}

/// Number of failures.
pub fn failure_count(nets: &[NetOutcome]) -> usize {
    nets.iter().map(|n| n.failures.len() + n.cases.iter().map(|c| c.failures.len()).sum::<usize>()).sum()
}

/// One CSV line per case (the raw data behind the tables).
pub fn csv(nets: &[NetOutcome]) -> String {
    let mut out = String::from(
        "case,network,class,activation,loss,residual,bias,depth,width,batch,gain,P,norm_H,spectrum,eps_kind,eps,cond,ambiguous,\
         grad_outcome,grad_fe,grad_be,grad_reported_be,rhs_outcome,rhs_fe,rhs_be,rhs_reported_be,inertia,count,logdet_err,logdet_bound,failures\n",
    );
    for n in nets {
        for c in &n.cases {
            let solve = |s: &SolveOutcome| match s {
                SolveOutcome::Answer { fe, be, reported_be, .. } => format!("answer,{fe:e},{be:e},{reported_be:e}"),
                SolveOutcome::Refused { kind, .. } => format!("{},,,", kind.name()),
            };
            let (lde, ldb) =
                c.log_det.map_or((String::new(), String::new()), |(e, b)| (format!("{e:e}"), format!("{b:e}")));
            let fails: Vec<&str> = c.failures.iter().map(|f| f.kind.name()).collect();
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{:e},{},{},{:e},{:e},{},{},{},{:?},{:?},{lde},{ldb},\"{}\"",
                c.index,
                n.net.index,
                n.net.class.name(),
                n.net.activation.name(),
                if n.net.mse { "mse" } else { "cross-entropy" },
                n.net.has_residual(),
                n.net.bias,
                n.net.depth(),
                n.net.width,
                n.net.batch,
                n.net.gain,
                n.p,
                n.norm_h,
                n.curv.name(),
                c.eps_kind.name(),
                c.eps,
                c.spectral.cond,
                c.spectral.ambiguous,
                solve(&c.solves[0]),
                solve(&c.solves[1]),
                c.inertia,
                c.count,
                fails.join("; "),
            );
        }
    }
    out
}
