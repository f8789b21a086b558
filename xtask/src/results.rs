//! Reading benchmark results back: criterion's medians
//! (`target/criterion/**/new/estimates.json`) and the side JSON files the
//! benchmarks write under `target/hinv-bench/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use serde_json::Value;

/// Medians of criterion benchmarks, in seconds, keyed by criterion's full id
/// (`group/function/parameter`).
#[derive(Debug, Default)]
pub struct Medians {
    by_id: BTreeMap<String, f64>,
}

impl Medians {
    /// Every benchmark under `criterion_dir` whose estimates were written at
    /// or after `since` (all of them when `since` is `None`), so that a quick
    /// run does not mix with older results of a wider grid.
    pub fn load(criterion_dir: &Path, since: Option<SystemTime>) -> anyhow::Result<Medians> {
        let mut by_id = BTreeMap::new();
        let mut stack = vec![criterion_dir.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                let path = e.path();
                if path.is_dir() {
                    // `base` and `change` hold the previous run and the diff.
                    if path.file_name().is_some_and(|n| n != "base" && n != "change" && n != "report") {
                        stack.push(path);
                    }
                } else if path.file_name().is_some_and(|n| n == "estimates.json")
                    && dir.file_name().is_some_and(|n| n == "new")
                {
                    if let Some((id, median)) = read_estimate(&dir, since)? {
                        by_id.insert(id, median);
                    }
                }
            }
        }
        Ok(Medians { by_id })
    }

    /// Median in seconds of `group/function/parameter`.
    pub fn get(&self, group: &str, function: &str, parameter: &str) -> Option<f64> {
        self.get_id(&format!("{group}/{function}/{parameter}"))
    }

    /// Median in seconds of the benchmark with criterion's `full_id`.
    pub fn get_id(&self, full_id: &str) -> Option<f64> {
        self.by_id.get(full_id).copied()
    }

    /// Medians from `(full id, seconds)` pairs, for the report's tests.
    #[cfg(test)]
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, f64)>) -> Medians {
        Medians { by_id: pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }
    }

    /// Number of benchmarks read.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }
}

fn read_estimate(new_dir: &Path, since: Option<SystemTime>) -> anyhow::Result<Option<(String, f64)>> {
    let est_path = new_dir.join("estimates.json");
    if let Some(since) = since {
        let modified = std::fs::metadata(&est_path)?.modified()?;
        if modified < since {
            return Ok(None);
        }
    }
    let bench: Value = read_json(&new_dir.join("benchmark.json"))?;
    let est: Value = read_json(&est_path)?;
    let id = bench["full_id"].as_str().context("benchmark.json without full_id")?.to_string();
    let ns = est["median"]["point_estimate"].as_f64().context("estimates.json without a median")?;
    Ok(Some((id, ns * 1e-9)))
}

/// Parses a JSON file.
pub fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// `target/` at the project root, or `$CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| crate::project_root().join("target"))
}

/// Least-squares slope and intercept of `log y` against `log x`.
pub fn loglog_fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let pts: Vec<(f64, f64)> =
        points.iter().filter(|(x, y)| *x > 0.0 && *y > 0.0).map(|(x, y)| (x.ln(), y.ln())).collect();
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    Some((slope, my - slope * mx))
}

#[cfg(test)]
mod tests {
    use super::loglog_fit;

    #[test]
    fn fit_recovers_a_power_law() {
        let pts: Vec<(f64, f64)> = [64.0, 128.0, 256.0, 1024.0].iter().map(|&x: &f64| (x, 3.0 * x.powf(1.2))).collect();
        let (s, c) = loglog_fit(&pts).expect("fit");
        assert!((s - 1.2).abs() < 1e-12 && (c - 3f64.ln()).abs() < 1e-9);
        assert!(loglog_fit(&pts[..1]).is_none());
    }
}
