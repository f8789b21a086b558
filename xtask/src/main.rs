//! Project automation, run as `cargo xtask <task>` (alias in `.cargo/config.toml`).
//!
//! - `ci`: format check, clippy with warnings denied, the test command of
//!   README.md, and a short fuzz pass.
//! - `bench [--full] [--report-only] [--cli]`: the criterion benchmarks, then
//!   `docs/benchmarks.md` and its plots (`docs/img/`).
//! - `release`: version and changelog consistency, `cargo package` dry runs.
//! - `differential [--cases N] [--seed S]`: the long pass of the
//!   differential test against the dense reference.

mod bench;
mod ci;
mod differential;
mod machine;
mod plot;
mod release;
mod report;
mod results;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci                              fmt check, clippy -D warnings, the test suite, a short fuzz pass
  bench [--full] [--report-only] [--cli]
                                  benchmarks (quick grid by default), then docs/benchmarks.md and docs/img/;
                                  --report-only: rewrite the report; --cli: re-time only the hinv binary
  release                         version/changelog consistency and cargo package dry runs
  differential [--cases N] [--seed S]
                                  the long differential test against dense references (release build);
                                  prints the summary tables, fails on any wrong answer

`cargo xtask <task> --help` describes one task.";

/// `cargo xtask bench --help`.
const BENCH_USAGE: &str = "usage: cargo xtask bench [--full] [--report-only] [--cli]

Runs the criterion benchmarks, times the hinv binary on the reference model,
then writes docs/benchmarks.md and the plots in docs/img/.

options:
  --full         the full grid of sizes (default: the quick grid)
  --report-only  rewrite the report from the last run's results, run nothing
  --cli          re-time only the hinv binary, then rewrite the report
  -h, --help     print this help";

/// `cargo xtask ci --help`.
const CI_USAGE: &str = "usage: cargo xtask ci

Checks formatting, runs clippy with warnings denied, the test suite and a short fuzz pass.";

/// `cargo xtask release --help`.
const RELEASE_USAGE: &str = "usage: cargo xtask release

Checks version and changelog consistency, then runs `cargo package` dry runs.";

/// `cargo xtask differential --help`.
const DIFFERENTIAL_USAGE: &str =
    "usage: cargo xtask differential [--cases N] [--seed S] [--max-params P] [--case I] [--cli-every K] [--csv FILE]

Builds the hinv binary and the differential example in release mode and runs
random networks against a dense reference built without the lifted system;
prints the summary tables (markdown, for docs/numerics.md) and exits non-zero
on any wrong answer. --case I runs one case in detail.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wants_help = args.iter().skip(1).any(|a| a == "--help" || a == "-h");
    let result = match args.first().map(String::as_str) {
        Some(task @ ("ci" | "bench" | "release" | "differential")) if wants_help => {
            let usage = match task {
                "ci" => CI_USAGE,
                "bench" => BENCH_USAGE,
                "differential" => DIFFERENTIAL_USAGE,
                _ => RELEASE_USAGE,
            };
            println!("{usage}");
            Ok(())
        }
        Some("ci") => ci::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("release") => release::run(),
        Some("differential") => differential::run(&args[1..]),
        Some("help") | Some("--help") | Some("-h") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown task `{other}`; run `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root, found from this crate's manifest directory.
pub fn project_root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map(PathBuf::from).unwrap_or(dir)
}

/// Runs `cargo` with `args` at the project root, failing on a non-zero status.
pub fn cargo(args: &[&str]) -> anyhow::Result<()> {
    cargo_with_env(args, &[])
}

/// [`cargo`] with extra environment variables.
pub fn cargo_with_env(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!("xtask: {}cargo {}", shown.concat(), args.join(" "));
    let status = Command::new(cargo).args(args).envs(env.iter().copied()).current_dir(project_root()).status()?;
    anyhow::ensure!(status.success(), "`cargo {}` failed with {status}", args.join(" "));
    Ok(())
}
