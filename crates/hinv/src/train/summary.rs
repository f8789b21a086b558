//! The summary table of a comparison: one row per optimizer, mean ± sd
//! over seeds of the final numbers, time per step by phase, and what the
//! curvature looked like along the trajectory. `report.md` opens with it
//! and docs/training.md quotes it, so every table there is the output of
//! the command written next to it.

use std::fmt::Write;

use super::report::{group, mean_sd};
use super::run::{Record, RunLog, Stop};

/// One optimizer's row of the summary (all means and sds over the runs
/// that did not diverge, NaN when there is none).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The optimizer with its settings.
    pub optimizer: String,
    /// Runs (seeds).
    pub runs: usize,
    /// Runs that diverged (their numbers are left out of every mean).
    pub diverged: usize,
    /// Mean steps taken.
    pub steps: f64,
    /// Final training loss, mean and sd.
    pub train_loss: (f64, f64),
    /// Final test loss, mean and sd.
    pub test_loss: (f64, f64),
    /// Final test accuracy, mean and sd (NaN for regression).
    pub test_accuracy: (f64, f64),
    /// Milliseconds per step: total, gradient, curvature, solve (means).
    pub ms_per_step: [f64; 4],
    /// The largest negative-eigenvalue count seen at any evaluated step.
    pub max_negative: Option<usize>,
    /// The damping at the end of each run, mean and sd (`None` for
    /// first-order optimizers).
    pub last_damping: Option<(f64, f64)>,
}

/// The summary rows, optimizers in first-seen order.
pub fn rows(runs: &[RunLog]) -> Vec<Row> {
    group(runs)
        .into_iter()
        .map(|(optimizer, rs)| {
            let kept: Vec<&RunLog> = rs.iter().copied().filter(|r| !matches!(r.stop, Stop::Diverged(_))).collect();
            let lasts: Vec<&Record> = kept.iter().filter_map(|r| r.last()).collect();
            let stat = |f: &dyn Fn(&Record) -> f64| mean_sd(&lasts.iter().map(|r| f(r)).collect::<Vec<_>>());
            let per_step = |f: &dyn Fn(&Record) -> f64| {
                let v: Vec<f64> = lasts.iter().filter(|r| r.step > 0).map(|r| 1e3 * f(r) / r.step as f64).collect();
                mean_sd(&v).0
            };
            let max_negative = kept.iter().flat_map(|r| r.records.iter().filter_map(|x| x.negative_eigenvalues)).max();
            let damp: Vec<f64> = kept.iter().filter_map(|r| r.records.iter().rev().find_map(|x| x.damping)).collect();
            Row {
                optimizer,
                runs: rs.len(),
                diverged: rs.len() - kept.len(),
                steps: stat(&|r| r.step as f64).0,
                train_loss: stat(&|r| r.train_loss),
                test_loss: stat(&|r| r.test_loss),
                test_accuracy: stat(&|r| r.test_accuracy.unwrap_or(f64::NAN)),
                ms_per_step: [
                    per_step(&|r| r.wall),
                    per_step(&|r| r.times.gradient),
                    per_step(&|r| r.times.curvature),
                    per_step(&|r| r.times.solve),
                ],
                max_negative,
                last_damping: (!damp.is_empty()).then(|| mean_sd(&damp)),
            }
        })
        .collect()
}

/// `m ± s` with `decimals` digits, `–` for NaN.
fn pm(m: f64, s: f64, decimals: usize) -> String {
    if m.is_nan() {
        "–".into()
    } else {
        format!("{m:.decimals$} ± {s:.decimals$}")
    }
}

/// Three significant figures without an exponent for times (`351`,
/// `14.6`, `3.92`), `–` for zero or NaN (a phase the optimizer has not).
fn ms(v: f64) -> String {
    if v.is_nan() || v == 0.0 {
        "–".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Two significant figures, an exponent only outside `[1e-3, 1e5)`: the
/// damping, which spans many orders of magnitude.
fn sig2(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !v.is_finite() || !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else {
        let decimals = (1 - a.log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    }
}

/// The summary as a Markdown table (a test-accuracy column for
/// classification only).
pub fn table(runs: &[RunLog]) -> String {
    let classification = runs.iter().any(|r| r.last().is_some_and(|x| x.test_accuracy.is_some()));
    let mut s = String::new();
    let acc_head = if classification { " test accuracy |" } else { "" };
    let _ = writeln!(
        s,
        "| optimizer | steps | train loss | test loss |{acc_head} diverged | ms per step (gradient / curvature / solve) | neg. eigenvalues (max) | damping (last) |"
    );
    let _ = writeln!(s, "|---|---|---|---|{}---|---|---|---|", if classification { "---|" } else { "" });
    for r in rows(runs) {
        let acc =
            if classification { format!(" {} |", pm(r.test_accuracy.0, r.test_accuracy.1, 3)) } else { String::new() };
        let [total, g, c, so] = r.ms_per_step;
        let time =
            if total.is_nan() { "–".into() } else { format!("{} ({} / {} / {})", ms(total), ms(g), ms(c), ms(so)) };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |{acc} {}/{} | {time} | {} | {} |",
            r.optimizer,
            if r.steps.is_nan() { "–".into() } else { format!("{:.0}", r.steps) },
            pm(r.train_loss.0, r.train_loss.1, 4),
            pm(r.test_loss.0, r.test_loss.1, 4),
            r.diverged,
            r.runs,
            r.max_negative.map_or("–".into(), |n| n.to_string()),
            r.last_damping.map_or("–".into(), |(m, sd)| format!("{} ± {}", sig2(m), sig2(sd))),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::PhaseTimes;
    use netgraph::Network;

    fn rec(step: usize, wall: f64, test_loss: f64, damping: Option<f64>, neg: Option<usize>) -> Record {
        Record {
            step,
            wall,
            train_loss: test_loss / 2.0,
            test_loss,
            test_accuracy: Some(0.5),
            batch_loss: 0.0,
            step_norm: 0.0,
            damping,
            negative_eigenvalues: neg,
            rejected: 0,
            times: PhaseTimes { gradient: wall / 4.0, curvature: wall / 4.0, solve: wall / 2.0 },
        }
    }

    fn run(optimizer: &str, seed: u64, records: Vec<Record>, stop: Stop) -> RunLog {
        RunLog {
            optimizer: optimizer.into(),
            dataset: "d".into(),
            seed,
            records,
            events: Vec::new(),
            stop,
            params: Network::builder(1).mse(1).unwrap().init_params(0),
        }
    }

    /// Two seeds of a second-order method and a first-order method with a
    /// diverged seed: the numbers are worked out by hand.
    fn runs() -> Vec<RunLog> {
        vec![
            run(
                "newton",
                0,
                vec![
                    rec(0, 0.0, 2.0, None, None),
                    rec(10, 1.0, 1.0, Some(4.0), Some(7)),
                    rec(20, 2.0, 0.5, Some(2.0), Some(3)),
                ],
                Stop::Budget,
            ),
            run("newton", 1, vec![rec(0, 0.0, 2.0, None, None), rec(40, 2.0, 1.5, Some(6.0), Some(9))], Stop::Budget),
            run("sgd", 0, vec![rec(0, 0.0, 2.0, None, None), rec(1000, 2.0, 0.25, None, None)], Stop::Budget),
            run("sgd", 1, vec![rec(0, 0.0, 2.0, None, None), rec(3, 0.1, 9.0, None, None)], Stop::Diverged("x".into())),
        ]
    }

    #[test]
    fn rows_average_the_last_records_of_the_runs_that_did_not_diverge() {
        let rs = rows(&runs());
        assert_eq!(rs.len(), 2);
        let n = &rs[0];
        assert_eq!((n.optimizer.as_str(), n.runs, n.diverged), ("newton", 2, 0));
        assert_eq!(n.steps, 30.0);
        // Test losses 0.5 and 1.5: mean 1, sample sd sqrt(0.5).
        assert_eq!(n.test_loss.0, 1.0);
        assert!((n.test_loss.1 - 0.5f64.sqrt()).abs() < 1e-15);
        assert_eq!(n.train_loss.0, 0.5);
        // 2 s over 20 steps and 2 s over 40: 100 and 50 ms, mean 75; the
        // phases are a quarter, a quarter and a half of it.
        assert_eq!(n.ms_per_step, [75.0, 18.75, 18.75, 37.5]);
        // The largest count anywhere, not the last one; the last damping.
        assert_eq!(n.max_negative, Some(9));
        let (m, sd) = n.last_damping.unwrap();
        assert_eq!(m, 4.0);
        assert!((sd - 8f64.sqrt()).abs() < 1e-15);
        let s = &rs[1];
        assert_eq!((s.runs, s.diverged, s.steps), (2, 1, 1000.0));
        // One run left: sd 0, the diverged run's 9.0 is not averaged in.
        assert_eq!(s.test_loss, (0.25, 0.0));
        assert_eq!((s.max_negative, s.last_damping), (None, None));
    }

    #[test]
    fn the_table_prints_what_the_rows_hold() {
        let t = table(&runs());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].contains("test accuracy") && lines[0].contains("damping (last)"), "{t}");
        assert_eq!(
            lines[2],
            "| newton | 30 | 0.5000 ± 0.3536 | 1.0000 ± 0.7071 | 0.500 ± 0.000 | 0/2 | 75.0 (18.8 / 18.8 / 37.5) | 9 | 4.0 ± 2.8 |"
        );
        assert_eq!(lines[3], "| sgd | 1000 | 0.1250 ± 0.0000 | 0.2500 ± 0.0000 | 0.500 ± 0.000 | 1/2 | 2.00 (0.50 / 0.50 / 1.00) | – | – |");
    }

    #[test]
    fn a_regression_table_has_no_accuracy_and_all_diverged_is_dashes() {
        let mut r = runs();
        for run in &mut r {
            run.records.iter_mut().for_each(|x| x.test_accuracy = None);
            run.stop = Stop::Diverged("x".into());
        }
        let t = table(&r);
        assert!(!t.contains("accuracy"), "{t}");
        assert!(t.lines().nth(2).unwrap().starts_with("| newton | – | – | – | 2/2 | – | – | – |"), "{t}");
    }

    #[test]
    fn numbers_are_formatted_for_reading() {
        assert_eq!([ms(351.2), ms(14.64), ms(3.921), ms(0.0)], ["351", "14.6", "3.92", "–"]);
        assert_eq!(
            [sig2(0.72), sig2(6.14), sig2(11.2), sig2(50.4), sig2(0.0116)],
            ["0.72", "6.1", "11", "50", "0.012"]
        );
        assert_eq!([sig2(2.5e-4), sig2(3.0e6), sig2(0.0)], ["2.5e-4", "3.0e6", "0"]);
    }
}
