//! `cargo xtask ci`: what `.ci/run` checks, runnable locally, plus a short
//! fuzz pass.

use crate::{cargo, cargo_with_env};

/// The test command; README.md and `.ci/run` use exactly this line.
pub const TEST_COMMAND: &[&str] = &["test", "--workspace", "--locked"];

/// Cases per property of the short fuzz pass (the plain test run uses
/// proptest's 256 for the readers and 64 for the command line).
const FUZZ_CASES: &str = "2000";

/// Format check, clippy with warnings denied, the tests, then a short fuzz
/// run of the file readers and of the command line (proptest; cargo-fuzz
/// needs a nightly toolchain this project does not assume).
pub fn run() -> anyhow::Result<()> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])?;
    cargo(TEST_COMMAND)?;
    let env = [("PROPTEST_CASES", FUZZ_CASES)];
    cargo_with_env(&["test", "--locked", "-p", "netgraph", "--test", "fuzz"], &env)?;
    cargo_with_env(&["test", "--locked", "-p", "hinv", "--test", "fuzz_cli"], &env)?;
    Ok(())
}
