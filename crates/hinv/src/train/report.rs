//! The comparison report: several optimizers (and seeds) on one problem
//! under one budget, as a Markdown summary and SVG charts.

use std::fmt::Write;
use std::path::Path;

use super::run::{RunLog, Stop};
use super::svg::{line_chart, Scale, Series};
use crate::error::{HinvError, Result};

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (m, var.sqrt())
}

/// The optimizers in first-seen order, each with its runs.
pub fn group(runs: &[RunLog]) -> Vec<(String, Vec<&RunLog>)> {
    let mut out: Vec<(String, Vec<&RunLog>)> = Vec::new();
    for r in runs {
        match out.iter_mut().find(|(n, _)| *n == r.optimizer) {
            Some((_, v)) => v.push(r),
            None => out.push((r.optimizer.clone(), vec![r])),
        }
    }
    out
}

/// The Markdown report: the final numbers (mean ± sd over seeds), time per
/// step by phase, the curvature seen along the trajectory, and the events.
/// `header` describes the problem and budget (the command line).
pub fn markdown(header: &str, runs: &[RunLog], teacher_test_loss: Option<f64>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# hinv train --compare\n\n{header}\n");
    if let Some(t) = teacher_test_loss {
        let _ = writeln!(s, "Known optimum: the teacher's parameters have test loss {t:.5} (the noise floor).\n");
    }
    let _ = writeln!(
        s,
        "## Final numbers\n\nMean ± sd over the seeds that did not diverge, at each run's last step; \
         `diverged` counts the runs left out. Time per step: training wall time over steps. \
         Negative eigenvalues: the largest count at any evaluated step. Damping: its value at the \
         end of each run.\n"
    );
    s.push_str(&super::summary::table(runs));
    let stopped: Vec<String> = runs
        .iter()
        .filter(|r| matches!(r.stop, Stop::Steps))
        .map(|r| format!("{} seed {}", r.optimizer, r.seed))
        .collect();
    if !stopped.is_empty() {
        let _ = writeln!(s, "\nStopped by the step limit, not the budget: {}.", stopped.join(", "));
    }
    let _ = writeln!(s, "\n## Time per step (ms, mean over seeds)\n");
    let _ = writeln!(s, "| optimizer | total | gradient | curvature | solve | other |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for (name, rs) in group(runs) {
        let per = |f: &dyn Fn(&super::run::Record) -> f64| {
            let v: Vec<f64> =
                rs.iter().filter_map(|r| r.last()).filter(|r| r.step > 0).map(|r| 1e3 * f(r) / r.step as f64).collect();
            mean_sd(&v).0
        };
        let total = per(&|r| r.wall);
        let (g, c, so) = (per(&|r| r.times.gradient), per(&|r| r.times.curvature), per(&|r| r.times.solve));
        let _ = writeln!(s, "| {name} | {total:.3} | {g:.3} | {c:.3} | {so:.3} | {:.3} |", total - g - c - so);
    }
    let curvature_runs: Vec<_> = group(runs)
        .into_iter()
        .filter(|(_, rs)| rs.iter().any(|r| r.records.iter().any(|x| x.damping.is_some())))
        .collect();
    if !curvature_runs.is_empty() {
        let _ = writeln!(s, "\n## Curvature along the trajectory\n");
        let _ = writeln!(
            s,
            "Negative eigenvalues of `H + eps I` (curvature batch) at the first trial of the evaluated \
             steps, damping, and trial steps rejected (ratio test or solver refusal); the events are \
             listed per run in the `-events.txt` files.\n"
        );
        let _ = writeln!(s, "| optimizer | negative eigenvalues: median / max | damping: first → median → last | rejected / steps | events |");
        let _ = writeln!(s, "|---|---|---|---|---|");
        for (name, rs) in curvature_runs {
            let mut neg: Vec<usize> =
                rs.iter().flat_map(|r| r.records.iter().filter_map(|x| x.negative_eigenvalues)).collect();
            neg.sort_unstable();
            let negs =
                if neg.is_empty() { "–".into() } else { format!("{} / {}", neg[neg.len() / 2], neg[neg.len() - 1]) };
            let mut damp: Vec<f64> = rs.iter().flat_map(|r| r.records.iter().filter_map(|x| x.damping)).collect();
            let first = damp.first().copied().unwrap_or(f64::NAN);
            let last = rs.last().and_then(|r| r.records.iter().rev().find_map(|x| x.damping)).unwrap_or(f64::NAN);
            damp.sort_by(f64::total_cmp);
            let med = damp.get(damp.len() / 2).copied().unwrap_or(f64::NAN);
            let rej: usize = rs.iter().filter_map(|r| r.last()).map(|r| r.rejected).sum();
            let steps: usize = rs.iter().filter_map(|r| r.last()).map(|r| r.step).sum();
            let events: usize = rs.iter().map(|r| r.events.len()).sum();
            let _ =
                writeln!(s, "| {name} | {negs} | {first:.2e} → {med:.2e} → {last:.2e} | {rej} / {steps} | {events} |");
        }
    }
    let diverged: Vec<_> = runs
        .iter()
        .filter_map(|r| match &r.stop {
            Stop::Diverged(why) => Some(format!("- {} seed {}: {why}", r.optimizer, r.seed)),
            _ => None,
        })
        .collect();
    if !diverged.is_empty() {
        let _ = writeln!(s, "\n## Diverged runs\n\n{}", diverged.join("\n"));
    }
    let _ = writeln!(s, "\n## Charts\n");
    for (file, what) in CHARTS {
        let _ = writeln!(s, "- [{what}]({file})");
    }
    s
}

/// Chart files and their titles.
const CHARTS: [(&str, &str); 6] = [
    ("train_loss_vs_time.svg", "training loss against wall time"),
    ("test_loss_vs_time.svg", "test loss against wall time"),
    ("test_accuracy_vs_time.svg", "test accuracy against wall time"),
    ("train_loss_vs_steps.svg", "training loss against steps"),
    ("test_loss_vs_steps.svg", "test loss against steps"),
    ("test_accuracy_vs_steps.svg", "test accuracy against steps"),
];

/// Writes `report.md`, the charts and one CSV per run into `dir`.
pub fn write_report(dir: &Path, header: &str, runs: &[RunLog], teacher_test_loss: Option<f64>) -> Result<()> {
    let io = |p: &Path, e: std::io::Error| HinvError::Training { reason: format!("cannot write {}: {e}", p.display()) };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    for r in runs {
        let name = csv_name(r);
        r.write_csv(&dir.join(&name))?;
        r.write_events(&dir.join(name.replace(".csv", "-events.txt")))?;
    }
    let groups = group(runs);
    let series = |x: &dyn Fn(&super::run::Record) -> f64, y: &dyn Fn(&super::run::Record) -> Option<f64>| {
        let mut out = Vec::new();
        for (colour, (name, rs)) in groups.iter().enumerate() {
            for (i, r) in rs.iter().enumerate() {
                let points = r.records.iter().filter_map(|rec| Some((x(rec), y(rec)?))).collect();
                out.push(Series { label: name.clone(), colour, legend: i == 0, points });
            }
        }
        out
    };
    let time = |r: &super::run::Record| r.wall;
    let steps = |r: &super::run::Record| r.step as f64;
    let train = |r: &super::run::Record| Some(r.train_loss);
    let test = |r: &super::run::Record| Some(r.test_loss);
    let acc = |r: &super::run::Record| r.test_accuracy;
    let charts: [(&str, String); 6] = [
        (
            CHARTS[0].0,
            line_chart("training loss", "wall time (s)", "loss", Scale::Linear, Scale::Log, &series(&time, &train)),
        ),
        (
            CHARTS[1].0,
            line_chart("test loss", "wall time (s)", "loss", Scale::Linear, Scale::Log, &series(&time, &test)),
        ),
        (
            CHARTS[2].0,
            line_chart(
                "test accuracy",
                "wall time (s)",
                "accuracy",
                Scale::Linear,
                Scale::Linear,
                &series(&time, &acc),
            ),
        ),
        (CHARTS[3].0, line_chart("training loss", "steps", "loss", Scale::Log, Scale::Log, &series(&steps, &train))),
        (CHARTS[4].0, line_chart("test loss", "steps", "loss", Scale::Log, Scale::Log, &series(&steps, &test))),
        (
            CHARTS[5].0,
            line_chart("test accuracy", "steps", "accuracy", Scale::Log, Scale::Linear, &series(&steps, &acc)),
        ),
    ];
    for (file, svg) in charts {
        let p = dir.join(file);
        std::fs::write(&p, svg).map_err(|e| io(&p, e))?;
    }
    let p = dir.join("report.md");
    std::fs::write(&p, markdown(header, runs, teacher_test_loss)).map_err(|e| io(&p, e))
}

/// The CSV file name of a run: optimizer settings and seed, file-safe.
pub fn csv_name(r: &RunLog) -> String {
    let safe: String =
        r.optimizer.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    format!("{}-{}-seed{}.csv", r.dataset, safe.trim_end_matches('_'), r.seed)
}
