//! `cargo xtask bench [--full] [--report-only]`: runs the criterion
//! benchmarks (quick grid by default), times the real `hinv solve` binary on
//! the reference model, then writes `docs/benchmarks.md` and the plots.

use std::path::Path;
use std::process::Command;
use std::time::{Instant, SystemTime};

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
    /// Wall-clock minutes of the benchmark run (`None` for `--report-only`).
    pub minutes: Option<f64>,
}

/// Runs the task.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let full = args.iter().any(|a| a == "--full");
    let report_only = args.iter().any(|a| a == "--report-only");
    if let Some(bad) = args.iter().find(|a| !matches!(a.as_str(), "--full" | "--report-only")) {
        anyhow::bail!("unknown option `{bad}` (expected --full or --report-only)");
    }
    let mode = if full { "full" } else { "quick" };
    let load_before = load_average();
    let started = SystemTime::now();
    let clock = Instant::now();
    let mut since = None;
    if !report_only {
        since = Some(started);
        cargo_with_env(&["bench", "-p", "hinv-benches", "--bench", "pipeline"], &[("HINV_BENCH", mode)])?;
        if full {
            // The crate-level baselines (GEMM, Bunch–Kaufman against block
            // LDL^T on synthetic blocks) are only re-run in full mode.
            cargo_with_env(&["bench", "-p", "hinv-benches", "--bench", "tridiag"], &[("HINV_BENCH", mode)])?;
        }
        time_cli()?;
    }
    let minutes = (!report_only).then(|| clock.elapsed().as_secs_f64() / 60.0);
    let info = RunInfo { mode: mode.into(), machine: Machine::describe(), load: (load_before, load_average()), minutes };

    let target = target_dir();
    let medians = Medians::load(&target.join("criterion"), since)?;
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
        last = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    }
    walls.sort_by(f64::total_cmp);
    let record = json!({
        "command": format!("target/release/hinv {}", args.join(" ")),
        "runs": walls.len(), "median_s": walls[walls.len() / 2], "min_s": walls[0], "max_s": walls[walls.len() - 1],
        "last_output": last,
    });
    write_json(&target.join("hinv-bench/cli.json"), &record)
}

fn write_json(path: &Path, v: &Value) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(v)?).with_context(|| format!("writing {}", path.display()))
}
