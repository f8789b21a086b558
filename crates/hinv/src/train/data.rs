//! Training data: the shipped scikit-learn digits, a teacher–student
//! regression whose optimum is known, and `.npy` pairs; plus the seeded
//! mini-batch sampler.

use std::path::Path;

use faer::Mat;
use netgraph::{Activation, Batch, Network, Params, Targets};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::eval::outputs;
use crate::error::{HinvError, Result};

/// The digits set, in the compact text format of `data/README.md`.
const DIGITS: &str = include_str!("../../data/digits.txt");

/// A training and a test split of one problem.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Short name for reports (`digits`, `teacher`, a file stem).
    pub name: String,
    /// What the optimizers see.
    pub train: Batch,
    /// Held out: only ever evaluated, never used to choose anything.
    pub test: Batch,
    /// Input features per sample.
    pub input_dim: usize,
    /// Classes (classification) or outputs (regression).
    pub outputs: usize,
    /// Where the optimum is known (teacher–student): the teacher's
    /// parameters, a valid point for a student of the same shape.
    pub teacher: Option<Params>,
}

impl Dataset {
    /// True for class targets (cross-entropy), false for values (MSE).
    pub fn is_classification(&self) -> bool {
        matches!(self.train.targets(), Targets::Classes(_))
    }
}

fn data_err(what: impl Into<String>) -> HinvError {
    HinvError::Data { reason: what.into() }
}

/// The scikit-learn digits (1797 images of 8x8 pixels, 10 classes; source
/// and licence in `crates/hinv/data/README.md`), pixels scaled to `[0, 1]`,
/// with the fixed stratified split: within each class, in file order,
/// every 4th sample is a test sample (1352 train, 445 test). The split
/// depends on nothing, so every run and seed sees the same one.
pub fn digits() -> Result<Dataset> {
    let mut xs: Vec<[f64; 64]> = Vec::with_capacity(1797);
    let mut ys = Vec::with_capacity(1797);
    for (i, line) in DIGITS.lines().enumerate() {
        let bad = || data_err(format!("line {} of the shipped digits is malformed", i + 1));
        let (label, pixels) = line.split_once(' ').ok_or_else(bad)?;
        let y: usize = label.parse().map_err(|_| bad())?;
        let mut x = [0.0; 64];
        if pixels.len() != 64 || y > 9 {
            return Err(bad());
        }
        for (xj, c) in x.iter_mut().zip(pixels.chars()) {
            *xj = f64::from(c.to_digit(17).ok_or_else(bad)?) / 16.0;
        }
        xs.push(x);
        ys.push(y);
    }
    let (train, test) = stratified_split(&ys);
    let pick = |idx: &[usize]| {
        let inputs = Mat::from_fn(idx.len(), 64, |s, j| xs[idx[s]][j]);
        Batch::new(inputs, Targets::Classes(idx.iter().map(|&i| ys[i]).collect()))
    };
    Ok(Dataset {
        name: "digits".into(),
        train: pick(&train)?,
        test: pick(&test)?,
        input_dim: 64,
        outputs: 10,
        teacher: None,
    })
}

/// Indices of the training and test samples: within each class, in order,
/// every 4th sample goes to the test set.
pub fn stratified_split(labels: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let classes = labels.iter().max().map_or(0, |m| m + 1);
    let mut seen = vec![0usize; classes];
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (i, &y) in labels.iter().enumerate() {
        seen[y] += 1;
        if seen[y] % 4 == 0 {
            test.push(i);
        } else {
            train.push(i);
        }
    }
    (train, test)
}

/// Shape of the teacher–student problem.
#[derive(Debug, Clone, PartialEq)]
pub struct TeacherSpec {
    /// Input features (standard normal).
    pub input_dim: usize,
    /// Hidden layers of the teacher (and of the student, for the known optimum).
    pub depth: usize,
    /// Their width.
    pub width: usize,
    /// Their activation.
    pub activation: Activation,
    /// Standard deviation of the label noise, relative to the (standardised) signal.
    pub noise: f64,
    /// Training samples.
    pub train: usize,
    /// Test samples.
    pub test: usize,
    /// Gain on the teacher's default initialisation (above 1: more nonlinear).
    pub gain: f64,
}

impl Default for TeacherSpec {
    fn default() -> Self {
        TeacherSpec {
            input_dim: 8,
            depth: 6,
            width: 16,
            activation: Activation::Tanh,
            noise: 0.1,
            train: 1024,
            test: 512,
            gain: 2.0,
        }
    }
}

/// A random deep narrow teacher network (seeded) labels standard normal
/// inputs; its last layer is rescaled so that its outputs have mean 0 and
/// variance 1 on the training inputs, and the targets get Gaussian noise of
/// standard deviation `noise`. A student of the teacher's shape can reach
/// the teacher's parameters ([`Dataset::teacher`]), whose expected test
/// loss is the noise floor `noise^2`.
pub fn teacher_student(spec: &TeacherSpec, seed: u64) -> Result<Dataset> {
    let net = Network::builder(spec.input_dim).dense(spec.width, spec.activation).repeat(spec.depth).mse(1)?;
    let mut params = net.init_params(seed ^ 0x7eac_4e55);
    params.scale(spec.gain);
    let n = spec.train + spec.test;
    let inputs = Batch::random_regression(spec.input_dim, 1, n, seed.wrapping_add(1)).inputs().clone();
    let noise = Batch::random_regression(1, 1, n, seed.wrapping_add(2)).inputs().clone();
    let probe = Batch::new(inputs.clone(), Targets::Values(Mat::zeros(n, 1)))?;
    let y = outputs(&net, &params, &probe)?;
    let mean = (0..spec.train).map(|s| y[(s, 0)]).sum::<f64>() / spec.train as f64;
    let var = (0..spec.train).map(|s| (y[(s, 0)] - mean).powi(2)).sum::<f64>() / spec.train as f64;
    let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
    // Fold the standardisation into the last layer: the teacher stays a
    // member of the student's family.
    let last = net.num_layers() - 1;
    let start: usize = params.counts()[..last].iter().sum();
    let data = params.as_mut_slice();
    let width = spec.width;
    for v in &mut data[start..start + width] {
        *v /= sd;
    }
    data[start + width] = (data[start + width] - mean) / sd;
    let split = |range: std::ops::Range<usize>| {
        let m = range.len();
        let x = Mat::from_fn(m, spec.input_dim, |s, j| inputs[(range.start + s, j)]);
        let t =
            Mat::from_fn(m, 1, |s, _| (y[(range.start + s, 0)] - mean) / sd + spec.noise * noise[(range.start + s, 0)]);
        Batch::new(x, Targets::Values(t))
    };
    Ok(Dataset {
        name: "teacher".into(),
        train: split(0..spec.train)?,
        test: split(spec.train..n)?,
        input_dim: spec.input_dim,
        outputs: 1,
        teacher: Some(params),
    })
}

/// Reads inputs `(n, features)` (f32/f64) and targets (integer classes
/// `(n,)`, or f32/f64 values `(n, outputs)`) from `.npy` files, and splits
/// them as [`digits`] is split (stratified by class for classes, every 4th
/// sample otherwise).
pub fn from_npy(inputs: &Path, targets: &Path) -> Result<Dataset> {
    let (d, k, classification) = npy_shape(inputs, targets)?;
    // A probe network of the right widths, so that netgraph's reader checks
    // everything it checks for the other commands.
    let builder = Network::builder(d);
    let probe = if classification { builder.cross_entropy(k)? } else { builder.mse(k)? };
    let all = netgraph::load_batch(&probe, inputs, targets)?;
    let labels: Vec<usize> = match all.targets() {
        Targets::Classes(c) => c.clone(),
        Targets::Values(v) => vec![0; v.nrows()],
    };
    let (train, test) = stratified_split(&labels);
    if train.is_empty() || test.is_empty() {
        return Err(data_err(format!("{} has too few samples for a train/test split", inputs.display())));
    }
    let pick = |idx: &[usize]| subset(&all, idx);
    let name = inputs.file_stem().map_or("npy".into(), |s| s.to_string_lossy().into_owned());
    Ok(Dataset { name, train: pick(&train)?, test: pick(&test)?, input_dim: d, outputs: k, teacher: None })
}

/// Features, classes/outputs and the target kind, from the headers (and,
/// for classes, the largest label).
fn npy_shape(inputs: &Path, targets: &Path) -> Result<(usize, usize, bool)> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| data_err(format!("cannot read {}: {e}", p.display())));
    let xb = read(inputs)?;
    let x = npyz::NpyFile::new(&xb[..]).map_err(|e| data_err(format!("{}: {e}", inputs.display())))?;
    let d = match x.shape() {
        [_, d] => *d as usize,
        s => return Err(data_err(format!("{}: inputs must be (samples, features), found {s:?}", inputs.display()))),
    };
    let tb = read(targets)?;
    let t = npyz::NpyFile::new(&tb[..]).map_err(|e| data_err(format!("{}: {e}", targets.display())))?;
    let is_int = matches!(t.dtype(), npyz::DType::Plain(ts) if ts.type_char() == npyz::TypeChar::Int);
    if is_int {
        let labels: Vec<i64> = match t.dtype() {
            npyz::DType::Plain(ts) if ts.size_field() == 4 => {
                t.into_vec::<i32>().map(|v| v.into_iter().map(i64::from).collect())
            }
            _ => t.into_vec::<i64>(),
        }
        .map_err(|e| data_err(format!("{}: {e}", targets.display())))?;
        let k = labels.iter().copied().max().unwrap_or(0).max(0) as usize + 1;
        Ok((d, k, true))
    } else {
        let k = match t.shape() {
            [_] => 1,
            [_, k] => *k as usize,
            s => {
                return Err(data_err(format!(
                    "{}: targets must be (samples,) or (samples, outputs), found {s:?}",
                    targets.display()
                )))
            }
        };
        Ok((d, k, false))
    }
}

/// The samples `idx` of a batch, in that order.
pub fn subset(b: &Batch, idx: &[usize]) -> Result<Batch> {
    let x = b.inputs();
    let inputs = Mat::from_fn(idx.len(), x.ncols(), |s, j| x[(idx[s], j)]);
    let targets = match b.targets() {
        Targets::Classes(c) => Targets::Classes(idx.iter().map(|&i| c[i]).collect()),
        Targets::Values(v) => Targets::Values(Mat::from_fn(idx.len(), v.ncols(), |s, j| v[(idx[s], j)])),
    };
    Ok(Batch::new(inputs, targets)?)
}

/// Seeded mini-batches: epochs of a fresh permutation, cut into batches
/// of `size` (the last, shorter one of an epoch dropped so every step sees
/// the same batch size).
#[derive(Debug, Clone)]
pub struct Sampler {
    rng: ChaCha8Rng,
    order: Vec<usize>,
    next: usize,
    size: usize,
}

impl Sampler {
    /// Batches of `size` (at most the number of samples `n`).
    pub fn new(n: usize, size: usize, seed: u64) -> Sampler {
        let size = size.clamp(1, n.max(1));
        Sampler { rng: ChaCha8Rng::seed_from_u64(seed), order: (0..n).collect(), next: n, size }
    }

    /// The indices of the next batch.
    pub fn next_indices(&mut self) -> &[usize] {
        if self.next + self.size > self.order.len() {
            self.order.shuffle(&mut self.rng);
            self.next = 0;
        }
        let s = self.next;
        self.next += self.size;
        &self.order[s..s + self.size]
    }
}
