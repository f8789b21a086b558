//! Network configurations of the pipeline benchmark and the quick/full
//! selector read from the `HINV_BENCH` environment variable.

use std::time::Duration;

use netgraph::{Batch, Network, Params};

/// Features per input sample (the reference configuration).
pub const INPUT: usize = 5;
/// Classes of the cross-entropy loss.
pub const CLASSES: usize = 3;
/// Seed of the parameters.
pub const PARAM_SEED: u64 = 20240601;
/// Seed of the batch.
pub const BATCH_SEED: u64 = 7;

/// Depth of the width and batch sweeps.
pub const SWEEP_DEPTH: usize = 16;
/// Widths of the width sweep (`L = 16, B = 2`), end to end and dense.
pub const SWEEP_WIDTHS: [usize; 5] = [4, 8, 16, 32, 64];
/// Batch sizes of the batch sweep (`L = 16, h = 8`), end to end and dense.
pub const SWEEP_BATCHES: [usize; 6] = [1, 2, 4, 8, 16, 32];

/// How much of the grid to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A subset with short measurements: about six minutes on two cores (the
    /// width and batch sweeps take one of them).
    Quick,
    /// The whole grid with longer measurements.
    Full,
}

impl Mode {
    /// `HINV_BENCH=full` selects [`Mode::Full`]; anything else, or nothing,
    /// [`Mode::Quick`].
    pub fn from_env() -> Mode {
        match std::env::var("HINV_BENCH").as_deref() {
            Ok("full") => Mode::Full,
            _ => Mode::Quick,
        }
    }

    /// `"quick"` or `"full"`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Quick => "quick",
            Mode::Full => "full",
        }
    }

    /// Largest parameter count for which the dense route is measured: its
    /// cost is cubic, and beyond this it would dominate the whole run.
    pub fn dense_max_params(self) -> usize {
        match self {
            // 4000 keeps L=16, h=16 (p = 3968, about 1.5 s a solve): the
            // width sweep then has three dense points to fit.
            Mode::Quick => 4000,
            Mode::Full => 8000,
        }
    }

    /// Criterion's (samples, warm-up, measurement time).
    pub fn timing(self) -> (usize, Duration, Duration) {
        match self {
            Mode::Quick => (10, Duration::from_millis(150), Duration::from_millis(500)),
            Mode::Full => (20, Duration::from_millis(500), Duration::from_secs(2)),
        }
    }

    /// Depths of the depth sweep at `width`.
    pub fn depths(self, width: usize) -> Vec<usize> {
        match (self, width) {
            (Mode::Quick, 16) => vec![8, 16, 64],
            _ => vec![8, 16, 32, 64, 128, 256, 512, 1024],
        }
    }

    /// Widths at `L = 16, B = 2` measured with every phase and baseline
    /// (the width sweep adds [`SWEEP_WIDTHS`] end to end).
    pub fn widths(self) -> Vec<usize> {
        match self {
            Mode::Quick => vec![4, 8, 16, 24, 32],
            Mode::Full => vec![4, 8, 16, 24, 32],
        }
    }

    /// Batch sizes at `L = 16, h = 8` measured with every phase and baseline
    /// (the batch sweep adds [`SWEEP_BATCHES`] end to end).
    pub fn batches(self) -> Vec<usize> {
        match self {
            Mode::Quick => vec![1, 4, 16],
            Mode::Full => vec![1, 2, 4, 8, 16],
        }
    }

    /// The points of the width and batch sweeps ([`SWEEP_WIDTHS`],
    /// [`SWEEP_BATCHES`]) that [`Mode::configs`] does not hold: measured end
    /// to end only (with the dense route where it fits), since the
    /// baselines of the full grid (Krylov, pivoted log-det, plain
    /// Bunch–Kaufman) would take minutes at h = 64. Both modes run them:
    /// about a minute on two cores.
    pub fn sweep_configs(self) -> Vec<Config> {
        let main = self.configs();
        let mut extra: Vec<Config> = SWEEP_WIDTHS
            .iter()
            .map(|&w| Config { depth: SWEEP_DEPTH, width: w, batch: 2 })
            .chain(SWEEP_BATCHES.iter().map(|&b| Config { depth: SWEEP_DEPTH, width: 8, batch: b }))
            .filter(|c| !main.contains(c))
            .collect();
        extra.sort_by_key(|c| c.depth * c.width * c.width * c.batch);
        extra.dedup();
        extra
    }

    /// Every configuration of the run, each once, in increasing cost.
    pub fn configs(self) -> Vec<Config> {
        let mut all = vec![Config::DEMO];
        for w in [8, 16] {
            all.extend(self.depths(w).into_iter().map(|d| Config { depth: d, width: w, batch: 2 }));
        }
        all.extend(self.widths().into_iter().map(|w| Config { depth: 16, width: w, batch: 2 }));
        all.extend(self.batches().into_iter().map(|b| Config { depth: 16, width: 8, batch: b }));
        all.sort_by_key(|c| c.depth * c.width * c.width * c.batch);
        all.dedup();
        all
    }
}

/// A tanh network with cross-entropy: `depth` hidden layers of `width`
/// units, input 5, 3 classes, no bias, on a batch of `batch` samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    /// Hidden layers `L`.
    pub depth: usize,
    /// Hidden width `h`.
    pub width: usize,
    /// Batch size `B`.
    pub batch: usize,
}

impl Config {
    /// The demonstration configuration of `hinv demo` (L = 30, h = 10, B = 2).
    pub const DEMO: Config = Config { depth: 30, width: 10, batch: 2 };
    /// The configuration of the Python reference timings (L = 256, h = 8, B = 2).
    pub const REFERENCE: Config = Config { depth: 256, width: 8, batch: 2 };

    /// The benchmark parameter, e.g. `L256_h8_B2`.
    pub fn label(&self) -> String {
        format!("L{}_h{}_B{}", self.depth, self.width, self.batch)
    }

    /// The network.
    pub fn network(&self) -> Network {
        Network::builder(INPUT)
            .without_bias()
            .dense(self.width, netgraph::Activation::Tanh)
            .repeat(self.depth)
            .cross_entropy(CLASSES)
            .expect("valid grid network")
    }

    /// PyTorch-style initial parameters multiplied by `gain`.
    pub fn params(&self, net: &Network, gain: f64) -> Params {
        let mut p = net.init_params(PARAM_SEED);
        p.scale(gain);
        p
    }

    /// The random classification batch.
    pub fn data(&self) -> Batch {
        Batch::random_classification(INPUT, CLASSES, self.batch, BATCH_SEED)
    }
}
