//! A batch of inputs with their targets, and seeded random batches.

use faer::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{check_finite, NetError, Result};

/// Targets of a batch: class indices (cross-entropy) or values (MSE).
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One class index per sample.
    Classes(Vec<usize>),
    /// A `batch x outputs` matrix of regression targets.
    Values(Mat<f64>),
}

impl Targets {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes(c) => c.len(),
            Targets::Values(v) => v.nrows(),
        }
    }
    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `"class"` or `"value"`, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Targets::Classes(_) => "class",
            Targets::Values(_) => "value",
        }
    }
}

/// Inputs (`batch x input_dim`, finite) and matching targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub(crate) inputs: Mat<f64>,
    pub(crate) targets: Targets,
}

impl Batch {
    /// A batch; fails on an empty batch, non-finite inputs or targets, or
    /// inputs and targets of different batch sizes. Whether the widths and
    /// classes fit a network is checked when the batch meets one.
    pub fn new(inputs: Mat<f64>, targets: Targets) -> Result<Batch> {
        if inputs.nrows() != targets.len() {
            return Err(NetError::BatchMismatch { inputs: inputs.nrows(), targets: targets.len() });
        }
        if inputs.nrows() == 0 {
            return Err(NetError::ZeroSize { what: "batch size".into() });
        }
        check_finite(|| "inputs".into(), row_major(&inputs))?;
        if let Targets::Values(v) = &targets {
            check_finite(|| "targets".into(), row_major(v))?;
        }
        Ok(Batch { inputs, targets })
    }

    /// Number of samples.
    pub fn batch_size(&self) -> usize {
        self.inputs.nrows()
    }
    /// The `batch x input_dim` inputs.
    pub fn inputs(&self) -> &Mat<f64> {
        &self.inputs
    }
    /// The targets.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// Standard normal inputs and uniform class targets, deterministic in `seed`.
    /// A zero `classes` gives class 0 everywhere (rejected by any network).
    pub fn random_classification(input_dim: usize, classes: usize, batch: usize, seed: u64) -> Batch {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let inputs = normal_mat(&mut rng, batch, input_dim);
        let targets = (0..batch).map(|_| if classes == 0 { 0 } else { rng.random_range(0..classes) }).collect();
        Batch { inputs, targets: Targets::Classes(targets) }
    }

    /// Standard normal inputs and targets, deterministic in `seed`.
    pub fn random_regression(input_dim: usize, outputs: usize, batch: usize, seed: u64) -> Batch {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let inputs = normal_mat(&mut rng, batch, input_dim);
        let targets = normal_mat(&mut rng, batch, outputs);
        Batch { inputs, targets: Targets::Values(targets) }
    }
}

/// Entries of `m` in row-major order (the crate's flattening).
pub(crate) fn row_major(m: &Mat<f64>) -> impl Iterator<Item = f64> + '_ {
    (0..m.nrows()).flat_map(move |i| (0..m.ncols()).map(move |j| m[(i, j)]))
}

/// A standard normal matrix by the Box-Muller transform (no extra crate).
pub(crate) fn normal_mat(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> Mat<f64> {
    let mut m = Mat::zeros(rows, cols);
    for i in 0..rows {
        for j in 0..cols {
            // 1 - u lies in (0, 1], so the logarithm is finite.
            let u: f64 = 1.0 - rng.random::<f64>();
            let v: f64 = rng.random::<f64>();
            m[(i, j)] = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        }
    }
    m
}
