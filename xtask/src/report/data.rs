//! Typed access to the benchmark results: pipeline medians by phase and
//! configuration, the side file's sizes and iteration counts, formatting.

use serde_json::Value;

use crate::results::{loglog_fit, Medians};

/// The criterion group of the pipeline phases.
pub const GROUP: &str = "pipeline";

/// One configuration of the side file.
#[derive(Debug, Clone)]
pub struct Cfg {
    /// `L<depth>_h<width>_B<batch>`.
    pub label: String,
    /// Depth `L`.
    pub depth: usize,
    /// Width `h`.
    pub width: usize,
    /// Batch `B`.
    pub batch: usize,
    /// Parameters `p`.
    pub params: usize,
    /// Hidden lifted block size.
    pub block: usize,
    /// `sum n_l^3 / 3`.
    pub flops: f64,
    /// A point of the width or batch sweep measured end to end and dense
    /// only (no Krylov, factorization or throughput figures).
    pub sweep_only: bool,
    /// The side-file record.
    pub raw: Value,
}

/// Results of one run.
pub struct Data<'a> {
    medians: &'a Medians,
    side: &'a Value,
    /// `target/hinv-bench/cli.json`, when the binary was timed.
    pub cli: Option<&'a Value>,
    /// Every configuration, sorted by depth, width, batch.
    pub cfgs: Vec<Cfg>,
}

impl<'a> Data<'a> {
    /// Wraps the medians and side files.
    pub fn new(medians: &'a Medians, side: &'a Value, cli: Option<&'a Value>) -> Data<'a> {
        let mut cfgs: Vec<Cfg> = side
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| v.get("depth").is_some())
            .map(|(k, v)| Cfg {
                label: k.clone(),
                depth: uint(&v["depth"]),
                width: uint(&v["width"]),
                batch: uint(&v["batch"]),
                params: uint(&v["params"]),
                block: uint(&v["hidden_block"]),
                flops: v["factor_flops"].as_f64().unwrap_or(f64::NAN),
                sweep_only: v["sweep_only"].as_bool() == Some(true),
                raw: v.clone(),
            })
            .collect();
        cfgs.sort_by_key(|c| (c.depth, c.width, c.batch));
        Data { medians, side, cli, cfgs }
    }

    /// Median seconds of pipeline phase `phase` at `label`.
    pub fn t(&self, phase: &str, label: &str) -> Option<f64> {
        self.medians.get(GROUP, phase, label)
    }

    /// Median seconds of any benchmark by criterion's full id.
    pub fn id(&self, full_id: &str) -> Option<f64> {
        self.medians.get_id(full_id)
    }

    /// The configuration `(depth, width, batch)`, if it ran.
    pub fn cfg(&self, depth: usize, width: usize, batch: usize) -> Option<&Cfg> {
        self.cfgs.iter().find(|c| (c.depth, c.width, c.batch) == (depth, width, batch))
    }

    /// The depth sweep at `width`, batch 2.
    pub fn depth_sweep(&self, width: usize) -> Vec<&Cfg> {
        self.cfgs.iter().filter(|c| c.width == width && c.batch == 2).collect()
    }

    /// `eps` of the grid.
    pub fn eps(&self) -> f64 {
        self.cfgs.first().and_then(|c| c.raw["eps"].as_f64()).unwrap_or(f64::NAN)
    }

    /// Tolerance of the Krylov baselines.
    pub fn krylov_tol(&self) -> f64 {
        self.side["eps_sweep"]["tolerance"].as_f64().unwrap_or(f64::NAN)
    }

    /// Largest `p` at which the dense route was measured.
    pub fn dense_max_params(&self) -> Option<u64> {
        self.side["dense_max_params"].as_u64()
    }

    /// The eps sweep record.
    pub fn eps_sweep(&self) -> &Value {
        &self.side["eps_sweep"]
    }

    /// Depth slope of `phase` at `width` over `L` in `[lo, hi]`, with the
    /// number of points used.
    pub fn depth_slope(&self, phase: &str, width: usize, lo: usize, hi: usize) -> Option<(f64, usize)> {
        let pts: Vec<(f64, f64)> = self
            .depth_sweep(width)
            .iter()
            .filter(|c| (lo..=hi).contains(&c.depth))
            .filter_map(|c| self.t(phase, &c.label).map(|t| (c.depth as f64, t)))
            .collect();
        loglog_fit(&pts).map(|(s, _)| (s, pts.len()))
    }

    /// The fit `t = c p^3` of the dense route (derivatives included) over the
    /// configurations where it ran: `c`, the number of points and the
    /// largest `p` measured.
    pub fn dense_cubic_fit(&self) -> Option<(f64, usize, usize)> {
        let pts: Vec<(f64, f64)> = self
            .cfgs
            .iter()
            .filter_map(|c| Some((c.params as f64, self.dense_route(&c.label)?)))
            .filter(|(p, _)| *p >= 500.0)
            .collect();
        if pts.is_empty() {
            return None;
        }
        // Geometric mean of t / p^3: a least-squares fit in log space with the slope fixed at 3.
        let c = (pts.iter().map(|(p, t)| (t / p.powi(3)).ln()).sum::<f64>() / pts.len() as f64).exp();
        let pmax = pts.iter().map(|p| p.0 as usize).max().unwrap_or(0);
        Some((c, pts.len(), pmax))
    }

    /// The dense route's time, derivative blocks included.
    pub fn dense_route(&self, label: &str) -> Option<f64> {
        Some(self.t("dense", label)? + self.t("derivatives", label)?)
    }
}

fn uint(v: &Value) -> usize {
    v.as_u64().unwrap_or(0) as usize
}

/// `1.23 s`, `4.56 ms`, `7.89 µs`, or `—`.
pub fn time(t: Option<f64>) -> String {
    match t {
        None => "—".into(),
        Some(t) if t >= 1.0 => format!("{t:.2} s"),
        Some(t) if t >= 1e-3 => format!("{:.2} ms", t * 1e3),
        Some(t) => format!("{:.1} µs", t * 1e6),
    }
}

/// `123x`, `1.5x`, or `—`.
pub fn ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() && r >= 100.0 => format!("{r:.0}x"),
        Some(r) if r.is_finite() && r >= 10.0 => format!("{r:.1}x"),
        Some(r) if r.is_finite() => format!("{r:.2}x"),
        _ => "—".into(),
    }
}

/// `a / b` when both are known.
pub fn div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?)
}

/// `a + b` when both are known.
pub fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? + b?)
}
