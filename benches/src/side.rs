//! The JSON side file of a benchmark: what criterion cannot store
//! (iteration counts, residuals, sizes), written under
//! `target/hinv-bench/` for `cargo xtask bench` to read.

use std::path::PathBuf;

use serde_json::{Map, Value};

/// Records keyed by name, written as one JSON object.
#[derive(Debug, Default)]
pub struct SideFile {
    records: Map<String, Value>,
}

impl SideFile {
    /// An empty side file.
    pub fn new() -> SideFile {
        SideFile::default()
    }

    /// Adds or replaces the record `key`.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        self.records.insert(key.into(), value);
    }

    /// Writes `target/hinv-bench/<name>.json` and returns its path.
    pub fn write(&self, name: &str) -> std::io::Result<PathBuf> {
        let dir = output_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.json"));
        let text = serde_json::to_string_pretty(&Value::Object(self.records.clone()))?;
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

/// `$CARGO_TARGET_DIR/hinv-bench`, or `target/hinv-bench` at the workspace
/// root (the parent of this crate).
pub fn output_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t),
        None => {
            let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            here.parent().map(|p| p.join("target")).unwrap_or_else(|| here.join("target"))
        }
    };
    target.join("hinv-bench")
}
