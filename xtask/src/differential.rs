//! `cargo xtask differential [--cases N] [--seed S] [...]`: the long pass
//! of the differential test (issue "Never a wrong answer"). Builds the
//! `hinv` binary and the `differential` example in release mode, then runs
//! the example, which prints the summary tables as markdown and exits
//! non-zero on any wrong answer. Other options (`--max-params`, `--case`,
//! `--cli-every`, `--csv`) are passed through; see
//! `crates/hinv/examples/differential.rs`.

use anyhow::{bail, Context};

use crate::cargo;

/// Runs the task with the arguments after `differential`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut pass = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cases" | "--seed" | "--max-params" | "--case" | "--cli-every" => {
                let v = it.next().with_context(|| format!("{a} needs a value"))?;
                v.parse::<u64>().with_context(|| format!("{a}: `{v}` is not a number"))?;
                pass.extend([a.clone(), v.clone()]);
            }
            "--csv" => {
                let v = it.next().with_context(|| "--csv needs a file")?;
                // The example runs from the project root: make the path
                // independent of where xtask was started.
                let path = std::env::current_dir()?.join(v);
                pass.extend([a.clone(), path.display().to_string()]);
            }
            other => bail!("unknown option `{other}` of `cargo xtask differential`"),
        }
    }
    cargo(&["build", "--release", "-p", "hinv", "--bin", "hinv", "--example", "differential"])?;
    let mut run = vec!["run", "--release", "-p", "hinv", "--example", "differential", "--"];
    run.extend(pass.iter().map(String::as_str));
    cargo(&run).context("the differential test found wrong answers (listed above)")
}
