//! `cargo xtask release`: checks that the workspace version and the top
//! entry of `CHANGELOG.md` agree, that every publishable crate takes the
//! workspace version, then packages the publishable crates without
//! uploading anything.

use std::process::Command;

use anyhow::Context;

use crate::project_root;

/// The crates published to crates.io, in dependency order.
pub const PUBLISHABLE: &[&str] = &["blockmat", "tridiag", "netgraph", "hinv"];

/// Runs the checks and the packaging dry run.
pub fn run() -> anyhow::Result<()> {
    let root = project_root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let version = workspace_version(&manifest).context("no version in [workspace.package] of Cargo.toml")?;
    let changelog = std::fs::read_to_string(root.join("CHANGELOG.md")).context("reading CHANGELOG.md")?;
    let top = changelog_versions(&changelog);
    let released = top.iter().find(|v| !v.eq_ignore_ascii_case("unreleased"));
    anyhow::ensure!(
        released.map(String::as_str) == Some(version.as_str()),
        "CHANGELOG.md's newest version entry is {released:?}, the workspace version is {version}"
    );
    eprintln!("xtask: workspace version {version} matches CHANGELOG.md");

    let mut problems = Vec::new();
    for krate in PUBLISHABLE {
        let path = root.join("crates").join(krate).join("Cargo.toml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        if !text.contains("version.workspace = true") && !text.contains(&format!("version = \"{version}\"")) {
            problems.push(format!("{krate}: version is neither `version.workspace = true` nor {version}"));
        }
        if !text.contains("description") {
            problems.push(format!("{krate}: no `description` (crates.io requires one)"));
        }
        let dep = format!("{krate} = {{ path = \"crates/{krate}\", version = \"{version}\" }}");
        if !manifest.contains(&dep) {
            problems.push(format!("{krate}: [workspace.dependencies] entry does not pin version {version}"));
        }
    }
    for p in &problems {
        eprintln!("xtask: release check: {p}");
    }

    // Packaging several workspace members in one call resolves their path
    // dependencies against each other (cargo's local overlay), which
    // works offline before anything is published.
    let mut args = vec!["package", "--no-verify", "--allow-dirty", "--locked"];
    for k in PUBLISHABLE {
        args.extend(["-p", k]);
    }
    if crate::cargo(&args).is_err() {
        eprintln!("xtask: `cargo package` failed; listing each crate's files instead");
        for k in PUBLISHABLE {
            let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["package", "--list", "--allow-dirty", "-p", k])
                .current_dir(&root)
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "`cargo package --list -p {k}` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("xtask: {k}: {} files", String::from_utf8_lossy(&out.stdout).lines().count());
        }
    }
    anyhow::ensure!(problems.is_empty(), "{} release check(s) failed (listed above)", problems.len());
    eprintln!("xtask: release checks passed for {version}");
    Ok(())
}

/// `version` of `[workspace.package]`.
fn workspace_version(manifest: &str) -> Option<String> {
    let section = manifest.split("[workspace.package]").nth(1)?;
    let section = section.split("\n[").next()?;
    let line = section.lines().find(|l| l.trim_start().starts_with("version"))?;
    Some(line.split('"').nth(1)?.to_string())
}

/// Versions of the `## [x]` headings of a changelog, newest first.
fn changelog_versions(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("## ["))
        .filter_map(|l| l.split(']').next())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{changelog_versions, workspace_version};

    #[test]
    fn reads_versions() {
        let m = "[workspace]\nmembers = []\n\n[workspace.package]\nversion = \"0.3.1\"\nedition = \"2021\"\n\n[x]\nversion = \"9\"\n";
        assert_eq!(workspace_version(m).as_deref(), Some("0.3.1"));
        let c = "# Changelog\n\n## [Unreleased]\n\n## [0.3.1] - 2026-01-01\n- x\n";
        assert_eq!(changelog_versions(c), vec!["Unreleased", "0.3.1"]);
    }
}
