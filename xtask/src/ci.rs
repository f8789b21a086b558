//! `cargo xtask ci`: what `.ci/run` checks, runnable locally.

use crate::cargo;

/// The test command; README.md and `.ci/run` use exactly this line.
pub const TEST_COMMAND: &[&str] = &["test", "--workspace", "--locked"];

/// Format check, clippy with warnings denied, then the tests.
pub fn run() -> anyhow::Result<()> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])?;
    cargo(TEST_COMMAND)?;
    Ok(())
}
