//! `cargo xtask bench [--full] [--report-only] [--cli]`: runs the criterion
//! benchmarks (quick grid by default), times the real `hinv solve` binary on
//! the reference model, then writes `docs/benchmarks.md` and the plots.
//! `--report-only` rewrites the report from the last run's results; `--cli`
//! re-times only the binary, then rewrites the report.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::{json, Value};

use crate::machine::{load_average, Machine};
use crate::results::{read_json, target_dir, Medians};
use crate::{cargo_with_env, project_root, report};

/// Wall-clock runs of `hinv solve` (the median is reported).
const CLI_RUNS: usize = 9;

/// What the report needs besides criterion's medians.
pub struct RunInfo {
    /// `quick` or `full`.
    pub mode: String,
    /// The machine.
    pub machine: Machine,
    /// 1-minute load average before and after the benchmarks.
    pub load: (Option<f64>, Option<f64>),
    /// Wall-clock minutes of the benchmark run.
    pub minutes: Option<f64>,
    /// Start of the run: older criterion results are ignored.
    pub since: Option<SystemTime>,
}

/// Runs the task.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let full = args.iter().any(|a| a == "--full");
    let report_only = args.iter().any(|a| a == "--report-only");
    let cli_only = args.iter().any(|a| a == "--cli");
    if let Some(bad) = args.iter().find(|a| !matches!(a.as_str(), "--full" | "--report-only" | "--cli")) {
        anyhow::bail!("unknown option `{bad}` (expected --full, --report-only or --cli)");
    }
    if cli_only {
        time_cli()?;
    }
    let mode = if full { "full" } else { "quick" };
    let target = target_dir();
    let run_file = target.join("hinv-bench/run.json");
    let info = if report_only || cli_only {
        // The last run's metadata, so that a rewritten report describes it.
        let run = read_json(&run_file).unwrap_or(Value::Null);
        RunInfo {
            mode: run["mode"].as_str().unwrap_or(mode).into(),
            machine: Machine::describe(),
            load: (run["load_before"].as_f64(), run["load_after"].as_f64()),
            minutes: run["minutes"].as_f64(),
            since: run["started_unix"].as_f64().map(|s| UNIX_EPOCH + Duration::from_secs_f64(s)),
        }
    } else {
        let load_before = load_average();
        let started = SystemTime::now();
        let clock = Instant::now();
        cargo_with_env(&["bench", "-p", "hinv-benches", "--bench", "pipeline"], &[("HINV_BENCH", mode)])?;
        if full {
            // The crate-level baselines (GEMM, Bunch–Kaufman against block
            // LDL^T on synthetic blocks) are only re-run in full mode.
            cargo_with_env(&["bench", "-p", "hinv-benches", "--bench", "tridiag"], &[("HINV_BENCH", mode)])?;
        }
        time_cli()?;
        let info = RunInfo {
            mode: mode.into(),
            machine: Machine::describe(),
            load: (load_before, load_average()),
            minutes: Some(clock.elapsed().as_secs_f64() / 60.0),
            since: Some(started),
        };
        let started_unix = started.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        write_json(
            &run_file,
            &json!({"mode": mode, "load_before": info.load.0, "load_after": info.load.1,
                    "minutes": info.minutes, "started_unix": started_unix}),
        )?;
        info
    };

    let medians = Medians::load(&target.join("criterion"), info.since)?;
    anyhow::ensure!(medians.len() > 0, "no criterion results found under {}", target.join("criterion").display());
    let side = read_json(&target.join("hinv-bench/pipeline.json"))?;
    let cli = read_json(&target.join("hinv-bench/cli.json")).ok();
    let docs = project_root().join("docs");
    report::write(&docs, &info, &medians, &side, cli.as_ref())?;
    eprintln!("xtask: wrote {} and the plots in {}", docs.join("benchmarks.md").display(), docs.join("img").display());
    Ok(())
}

/// Builds the release binary and times `hinv solve` on the reference model
/// written by the pipeline benchmark, process start-up included.
fn time_cli() -> anyhow::Result<()> {
    crate::cargo(&["build", "--release", "-p", "hinv"])?;
    let target = target_dir();
    let model = target.join("hinv-bench/model");
    anyhow::ensure!(model.join("net.json").exists(), "no model files in {}: run the pipeline bench", model.display());
    let exe = target.join("release/hinv");
    let arg = |name: &str| model.join(name).display().to_string();
    let args = [
        "solve".to_string(),
        "--spec".into(),
        arg("net.json"),
        "--weights".into(),
        arg("net.safetensors"),
        "--inputs".into(),
        arg("inputs.npy"),
        "--targets".into(),
        arg("targets.npy"),
        "--eps".into(),
        "1e-3".into(),
        "--out".into(),
        arg("step.npy"),
        "--json".into(),
    ];
    let mut walls = Vec::new();
    let mut last_wall = f64::NAN;
    let mut last = Value::Null;
    // One untimed run warms the page cache, as a user's second call would.
    for i in 0..=CLI_RUNS {
        let t = Instant::now();
        let out = Command::new(&exe).args(&args).output().with_context(|| format!("running {}", exe.display()))?;
        let wall = t.elapsed().as_secs_f64();
        anyhow::ensure!(out.status.success(), "hinv solve failed: {}", String::from_utf8_lossy(&out.stderr));
        if i > 0 {
            walls.push(wall);
        }
        last_wall = wall;
        last = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    }
    walls.sort_by(f64::total_cmp);
    let record = json!({
        "command": format!("target/release/hinv {}", args.join(" ")),
        "runs": walls.len(), "median_s": walls[walls.len() / 2], "min_s": walls[0], "max_s": walls[walls.len() - 1],
        "last_output": last, "last_wall_s": last_wall,
    });
    write_json(&target.join("hinv-bench/cli.json"), &record)
}

fn write_json(path: &Path, v: &Value) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(v)?).with_context(|| format!("writing {}", path.display()))
}
