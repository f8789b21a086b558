//! The training loop: mini-batches, a wall-clock budget that only counts
//! training (evaluations pause the clock), periodic evaluation on the
//! whole training and test splits, and the per-run log and its CSV.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use netgraph::{Network, Params};

use super::data::{subset, Dataset, Sampler};
use super::eval::evaluate;
use super::optim::{Optimizer, PhaseTimes, StepInfo, StepInput};
use crate::error::{HinvError, Result};

/// Knobs of [`train`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Samples per gradient mini-batch.
    pub batch_size: usize,
    /// Samples of the curvature batch (the first ones of each gradient
    /// batch), for optimizers that use curvature.
    pub curvature_batch: usize,
    /// Stop once this much training time has passed (checked between
    /// steps; a step's inner iterations see it as
    /// [`StepInput::deadline`], so the last step overruns it by at most
    /// one inner iteration of the long steps).
    pub time_budget: Option<Duration>,
    /// Stop after this many steps.
    pub max_steps: Option<usize>,
    /// Seed of the mini-batch order.
    pub seed: u64,
    /// Evaluate at most this often (training time), besides the first and
    /// the last step.
    pub eval_interval: Duration,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            batch_size: 64,
            curvature_batch: 32,
            time_budget: Some(Duration::from_secs(10)),
            max_steps: None,
            seed: 0,
            eval_interval: Duration::from_millis(100),
        }
    }
}

/// One evaluation point of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Steps taken so far.
    pub step: usize,
    /// Training wall time so far (seconds; evaluations excluded).
    pub wall: f64,
    /// Loss on the whole training split.
    pub train_loss: f64,
    /// Loss on the test split.
    pub test_loss: f64,
    /// Accuracy on the test split (classification only).
    pub test_accuracy: Option<f64>,
    /// Mini-batch loss before the last step.
    pub batch_loss: f64,
    /// Norm of the last step.
    pub step_norm: f64,
    /// Damping after the last step (`eps`, `lambda`).
    pub damping: Option<f64>,
    /// Negative eigenvalues of `H + eps I` at the last step's first trial
    /// ([`StepInfo::negative_eigenvalues`]).
    pub negative_eigenvalues: Option<usize>,
    /// Trial steps rejected so far.
    pub rejected: usize,
    /// Phase times summed over all steps so far.
    pub times: PhaseTimes,
}

/// Why a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// The time budget was used up.
    Budget,
    /// The step limit was reached.
    Steps,
    /// The loss stopped being finite (a diverging learning rate); the
    /// parameters before the failing step are kept.
    Diverged(String),
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunLog {
    /// The optimizer's name with its settings.
    pub optimizer: String,
    /// The data set's name.
    pub dataset: String,
    /// The seed of initialisation and mini-batches.
    pub seed: u64,
    /// Evaluation points, the first before any step, the last after the last step.
    pub records: Vec<Record>,
    /// Events the optimizer reported, with their step.
    pub events: Vec<(usize, String)>,
    /// Why it ended.
    pub stop: Stop,
    /// The final parameters.
    pub params: Params,
}

impl RunLog {
    /// The last evaluation point.
    pub fn last(&self) -> Option<&Record> {
        self.records.last()
    }

    /// Writes the records as CSV (a header, one line per evaluation).
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let io = |e: std::io::Error| HinvError::Training { reason: format!("cannot write {}: {e}", path.display()) };
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        writeln!(
            f,
            "step,wall_s,train_loss,test_loss,test_accuracy,batch_loss,step_norm,damping,negative_eigenvalues,\
             rejected,gradient_s,curvature_s,solve_s"
        )
        .map_err(io)?;
        let opt = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:e}"));
        for r in &self.records {
            writeln!(
                f,
                "{},{:.6},{:e},{:e},{},{:e},{:e},{},{},{},{:.6},{:.6},{:.6}",
                r.step,
                r.wall,
                r.train_loss,
                r.test_loss,
                r.test_accuracy.map_or(String::new(), |a| format!("{a:.6}")),
                r.batch_loss,
                r.step_norm,
                opt(r.damping),
                r.negative_eigenvalues.map_or(String::new(), |n| n.to_string()),
                r.rejected,
                r.times.gradient,
                r.times.curvature,
                r.times.solve,
            )
            .map_err(io)?;
        }
        f.flush().map_err(io)
    }

    /// Writes the events (solver refusals, negative curvature met, and the
    /// optimizer's reaction), one line each, prefixed by their step.
    pub fn write_events(&self, path: &Path) -> Result<()> {
        let text: String = self.events.iter().map(|(step, e)| format!("step {step}: {e}\n")).collect();
        std::fs::write(path, text)
            .map_err(|e| HinvError::Training { reason: format!("cannot write {}: {e}", path.display()) })
    }
}

/// Trains `params` with `opt` on `data` and returns the log. `observe` sees
/// every record as it is made (for a progress bar).
///
/// # Errors
/// Only what the optimizer cannot react to (shapes, memory); a loss that
/// stops being finite ends the run with [`Stop::Diverged`] instead.
pub fn train(
    net: &Network,
    mut params: Params,
    data: &Dataset,
    opt: &mut dyn Optimizer,
    opts: &TrainOptions,
    observe: &mut dyn FnMut(&Record),
) -> Result<RunLog> {
    if opts.time_budget.is_none() && opts.max_steps.is_none() {
        return Err(HinvError::Training {
            reason: "neither a time budget nor a step limit: the run would not end".into(),
        });
    }
    let n = data.train.batch_size();
    let mut sampler = Sampler::new(n, opts.batch_size, opts.seed);
    let budget = opts.time_budget.map(|d| d.as_secs_f64());
    let mut log = RunLog {
        optimizer: opt.name(),
        dataset: data.name.clone(),
        seed: opts.seed,
        records: Vec::new(),
        events: Vec::new(),
        stop: Stop::Budget,
        params: params.clone(),
    };
    let mut wall = 0.0;
    let mut times = PhaseTimes::default();
    let mut rejected = 0;
    let mut last_eval = 0.0;
    let mut step = 0;
    let blank = StepInfo { batch_loss: f64::NAN, ..StepInfo::default() };
    let record = |step: usize, wall: f64, p: &Params, info: &StepInfo, times: PhaseTimes, rej: usize| {
        let train = evaluate(net, p, &data.train)?;
        let test = evaluate(net, p, &data.test)?;
        Ok::<_, HinvError>(Record {
            step,
            wall,
            train_loss: train.loss,
            test_loss: test.loss,
            test_accuracy: test.accuracy,
            batch_loss: info.batch_loss,
            step_norm: info.step_norm,
            damping: info.damping,
            negative_eigenvalues: info.negative_eigenvalues,
            rejected: rej,
            times,
        })
    };
    let first = record(0, 0.0, &params, &blank, times, 0)?;
    observe(&first);
    log.records.push(first);
    loop {
        if budget.is_some_and(|b| wall >= b) {
            log.stop = Stop::Budget;
            break;
        }
        if opts.max_steps.is_some_and(|m| step >= m) {
            log.stop = Stop::Steps;
            break;
        }
        let t = Instant::now();
        let idx = sampler.next_indices().to_vec();
        let batch = subset(&data.train, &idx)?;
        let cbatch = if opt.uses_curvature() {
            Some(subset(&data.train, &idx[..opts.curvature_batch.clamp(1, idx.len())])?)
        } else {
            None
        };
        // The budget left, on this step's clock (evaluations are not in it).
        let deadline = budget.map(|b| t + Duration::from_secs_f64((b - wall).max(0.0)));
        let input = StepInput { net, batch: &batch, curvature_batch: cbatch.as_ref(), deadline };
        let before = params.clone();
        let info = match opt.step(&input, &mut params) {
            Ok(info) => info,
            Err(HinvError::Overflow { what, value }) => {
                params = before;
                log.stop = Stop::Diverged(format!("{what} became {value} at step {}", step + 1));
                break;
            }
            Err(e) => return Err(e),
        };
        wall += t.elapsed().as_secs_f64();
        step += 1;
        times.add(&info.times);
        rejected += info.rejected;
        log.events.extend(info.events.iter().map(|e| (step, e.clone())));
        let bad = !info.batch_loss.is_finite() || params.as_slice().iter().any(|x| !x.is_finite());
        if bad {
            params = before;
            log.stop = Stop::Diverged(format!("the loss or the parameters stopped being finite at step {step}"));
            step -= 1;
            break;
        }
        let ending = budget.is_some_and(|b| wall >= b) || opts.max_steps.is_some_and(|m| step >= m);
        if ending || step <= 5 || wall - last_eval >= opts.eval_interval.as_secs_f64() {
            last_eval = wall;
            let r = record(step, wall, &params, &info, times, rejected)?;
            if !r.train_loss.is_finite() {
                log.stop = Stop::Diverged(format!("the training loss became {} at step {step}", r.train_loss));
                log.records.push(r);
                break;
            }
            observe(&r);
            log.records.push(r);
        }
    }
    // The last record is of the final parameters (for a diverged run: those
    // before the failing step).
    if log.records.last().is_some_and(|r| r.step != step && r.train_loss.is_finite()) {
        let r = record(step, wall, &params, &blank, times, rejected)?;
        log.records.push(r);
    }
    log.params = params;
    Ok(log)
}
