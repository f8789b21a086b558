//! The [`Optimizer`] trait, what one step reports, and the first-order
//! baselines ([`Sgd`] with momentum, [`Adam`]).

use std::time::Instant;

use netgraph::{Batch, Network, Params};

use crate::error::{HinvError, Result};

/// What a step may use: the network, the mini-batch of the gradient and,
/// for optimizers that ask for it ([`Optimizer::uses_curvature`]), the
/// curvature batch (its first samples: a subset of the gradient batch, of
/// its own size).
#[derive(Debug, Clone, Copy)]
pub struct StepInput<'a> {
    /// The network.
    pub net: &'a Network,
    /// The gradient's mini-batch.
    pub batch: &'a Batch,
    /// The curvature's mini-batch (`None` for first-order optimizers).
    pub curvature_batch: Option<&'a Batch>,
    /// When the run's time budget runs out, on the step's own clock
    /// (`None`: no budget). The loop only checks the budget between steps;
    /// optimizers whose steps are long (seconds) stop their inner
    /// iterations here instead of overrunning the budget by a whole step.
    pub deadline: Option<Instant>,
}

/// Wall time of one step's phases, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhaseTimes {
    /// Forward and backward passes for the gradient, and the trial losses.
    pub gradient: f64,
    /// Building the curvature: derivative blocks on the curvature batch.
    pub curvature: f64,
    /// Factorizations and solves (exact steps) or CG iterations (Hessian-free).
    pub solve: f64,
}

impl PhaseTimes {
    /// Adds another step's times.
    pub fn add(&mut self, o: &PhaseTimes) {
        self.gradient += o.gradient;
        self.curvature += o.curvature;
        self.solve += o.solve;
    }
}

/// What one step did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepInfo {
    /// The mini-batch loss before the step.
    pub batch_loss: f64,
    /// `||x_new - x_old||` (0 when every trial step was rejected).
    pub step_norm: f64,
    /// The damping (`eps`, `lambda`) in force after the step; `None` for
    /// first-order optimizers.
    pub damping: Option<f64>,
    /// Where the step spent its time.
    pub times: PhaseTimes,
    /// Negative eigenvalues of `H + eps I` (curvature batch), from the
    /// inertia, the largest count among the step's factorizations (eps only
    /// grows within a step, so this is the count at its first trial);
    /// `None` when no factorization ran. Certified unless an event of the
    /// step says the count is not, with the range the exact count lies in
    /// (vanishing curvature next to a tiny `eps`).
    pub negative_eigenvalues: Option<usize>,
    /// Trial steps rejected by the ratio test or refused by the solver
    /// within this step.
    pub rejected: usize,
    /// What happened that a reader of the log should know (solver errors
    /// met and how the optimizer reacted), one line each.
    pub events: Vec<String>,
}

/// One optimization method. `step` updates the parameters in place and
/// says what it did; an error is a failure the optimizer cannot react to
/// (the optimizers turn the solver's `Singular`/`IllConditioned` into
/// more damping and an event instead).
pub trait Optimizer {
    /// A name with the settings that matter, e.g. `adam(lr=0.001)`.
    fn name(&self) -> String;
    /// Whether [`StepInput::curvature_batch`] must be provided.
    fn uses_curvature(&self) -> bool {
        false
    }
    /// One step on the mini-batch.
    fn step(&mut self, input: &StepInput<'_>, params: &mut Params) -> Result<StepInfo>;
}

/// The first two phases of every second-order step, timed: the mini-batch
/// loss and gradient, and the curvature of the curvature batch (the
/// mini-batch unless a separate one is given).
pub(crate) fn gradient_and_curvature(
    input: &StepInput<'_>,
    params: &Params,
    kind: crate::CurvatureKind,
) -> Result<(f64, Vec<f64>, crate::curvature::Curvature, PhaseTimes)> {
    let mut times = PhaseTimes::default();
    let t = Instant::now();
    let (loss, g) = input.net.gradient(params, input.batch)?;
    times.gradient += t.elapsed().as_secs_f64();
    let t = Instant::now();
    let opts = crate::CurvatureOptions { kind, ..Default::default() };
    let cb = input.curvature_batch.unwrap_or(input.batch);
    let curv = crate::curvature::Curvature::new_with(input.net, params, cb, &opts)?;
    times.curvature += t.elapsed().as_secs_f64();
    Ok((loss, g, curv, times))
}

pub(crate) fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Refuses a setting outside its range.
pub(crate) fn check_setting(what: &str, value: f64, ok: bool) -> Result<()> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(HinvError::Training { reason: format!("{what} = {value} is out of range") })
    }
}

/// Stochastic gradient descent with heavy-ball momentum (PyTorch's form:
/// `v <- momentum v + g`, `x <- x - lr v`).
#[derive(Debug, Clone)]
pub struct Sgd {
    lr: f64,
    momentum: f64,
    velocity: Vec<f64>,
}

impl Sgd {
    /// SGD with learning rate `lr > 0` and momentum in `[0, 1)`.
    pub fn new(lr: f64, momentum: f64) -> Result<Sgd> {
        check_setting("the learning rate", lr, lr > 0.0)?;
        check_setting("the momentum", momentum, (0.0..1.0).contains(&momentum))?;
        Ok(Sgd { lr, momentum, velocity: Vec::new() })
    }
}

impl Optimizer for Sgd {
    fn name(&self) -> String {
        format!("sgd(lr={},momentum={})", self.lr, self.momentum)
    }
    fn step(&mut self, input: &StepInput<'_>, params: &mut Params) -> Result<StepInfo> {
        let t = Instant::now();
        let (loss, g) = input.net.gradient(params, input.batch)?;
        if self.velocity.len() != g.len() {
            self.velocity = vec![0.0; g.len()];
        }
        let mut sq = 0.0;
        for ((x, v), gi) in params.as_mut_slice().iter_mut().zip(&mut self.velocity).zip(&g) {
            *v = self.momentum * *v + gi;
            let d = self.lr * *v;
            *x -= d;
            sq += d * d;
        }
        let times = PhaseTimes { gradient: t.elapsed().as_secs_f64(), ..PhaseTimes::default() };
        Ok(StepInfo { batch_loss: loss, step_norm: sq.sqrt(), times, ..StepInfo::default() })
    }
}

/// Adam (Kingma and Ba) with bias correction.
#[derive(Debug, Clone)]
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    /// Adam with learning rate `lr` and the usual `beta1 = 0.9`,
    /// `beta2 = 0.999`, `epsilon = 1e-8`.
    pub fn new(lr: f64) -> Result<Adam> {
        check_setting("the learning rate", lr, lr > 0.0)?;
        Ok(Adam { lr, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, m: Vec::new(), v: Vec::new(), t: 0 })
    }
}

impl Optimizer for Adam {
    fn name(&self) -> String {
        format!("adam(lr={})", self.lr)
    }
    fn step(&mut self, input: &StepInput<'_>, params: &mut Params) -> Result<StepInfo> {
        let t0 = Instant::now();
        let (loss, g) = input.net.gradient(params, input.batch)?;
        if self.m.len() != g.len() {
            self.m = vec![0.0; g.len()];
            self.v = vec![0.0; g.len()];
            self.t = 0;
        }
        self.t = self.t.saturating_add(1);
        let c1 = 1.0 - self.beta1.powi(self.t);
        let c2 = 1.0 - self.beta2.powi(self.t);
        let mut sq = 0.0;
        for (((x, m), v), gi) in params.as_mut_slice().iter_mut().zip(&mut self.m).zip(&mut self.v).zip(&g) {
            *m = self.beta1 * *m + (1.0 - self.beta1) * gi;
            *v = self.beta2 * *v + (1.0 - self.beta2) * gi * gi;
            let d = self.lr * (*m / c1) / ((*v / c2).sqrt() + self.epsilon);
            *x -= d;
            sq += d * d;
        }
        let times = PhaseTimes { gradient: t0.elapsed().as_secs_f64(), ..PhaseTimes::default() };
        Ok(StepInfo { batch_loss: loss, step_norm: sq.sqrt(), times, ..StepInfo::default() })
    }
}

/// The event logged when a step's count of negative eigenvalues (of
/// `matrix`, of dimension `dim`, at the shift `eps` when there is one) is
/// not certified: the exact count lies within `uncertain` of `count`, and
/// the log's `negative_eigenvalues` column must not be read as exact for
/// that step. The range closes the message (`lo..=hi`).
pub(crate) fn uncertain_count_event(
    matrix: &str,
    count: usize,
    uncertain: usize,
    dim: usize,
    eps: Option<f64>,
) -> String {
    let at = eps.map_or(String::new(), |eps| format!(" at eps = {eps:.3e}"));
    format!(
        "{count} negative eigenvalue(s) of {matrix}{at}, not certified: the exact count lies in {}..={}",
        count.saturating_sub(uncertain),
        (count + uncertain).min(dim)
    )
}
