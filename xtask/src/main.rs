//! Project automation, run as `cargo xtask <task>` (alias in `.cargo/config.toml`).
//!
//! - `ci`: format check, clippy with warnings denied, and the test command of README.md.

mod ci;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        Some("help") | Some("--help") | Some("-h") | None => {
            println!("usage: cargo xtask <task>\n\ntasks:\n  ci     fmt check, clippy -D warnings, the test suite");
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
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(cargo).args(args).current_dir(project_root()).status()?;
    anyhow::ensure!(status.success(), "`cargo {}` failed with {status}", args.join(" "));
    Ok(())
}
