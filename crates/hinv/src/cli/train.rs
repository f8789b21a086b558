//! `hinv train`: one optimizer with a progress bar and a CSV log, or
//! `--compare` several under one wall-clock budget with a report.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use hinv::train::{
    self, data, report, Adam, DampedNewton, HessianFree, Optimizer, Record, Sgd, TrainOptions, TrustRegion,
};
use hinv::HinvError;
use indicatif::{ProgressBar, ProgressStyle};
use netgraph::{Activation, Network};

use super::commands::{CliError, Outcome};

#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    /// The optimizer, with optional settings after a colon:
    /// `sgd[:lr=0.1,momentum=0.9]`, `adam[:lr=0.001]`,
    /// `newton[:eps=1,indefinite]` (exact damped Newton, Levenberg–Marquardt),
    /// `gn[:eps=1]` (exact Gauss–Newton steps, Levenberg–Marquardt),
    /// `hf[:lambda=1,cg=50]` (Hessian-free, truncated CG on exact HVPs),
    /// `tr[:delta=1]` (exact trust-region steps, radius by the ratio test).
    #[arg(long, default_value = "adam", value_name = "SPEC")]
    optimizer: String,
    /// Run each of these optimizers (same network, data, seeds and
    /// budget) and write a report with charts into --out.
    #[arg(long, num_args = 1.., value_name = "SPEC")]
    compare: Vec<String>,
    /// `digits` (shipped, 8x8 images, 10 classes), `teacher` (a random
    /// network of the student's shape labels Gaussian inputs, with noise),
    /// or `INPUTS.npy,TARGETS.npy`.
    #[arg(long, default_value = "digits", value_name = "DATA")]
    dataset: String,
    /// Hidden layers.
    #[arg(long, default_value_t = 6)]
    depth: usize,
    /// Units per hidden layer.
    #[arg(long, default_value_t = 16)]
    width: usize,
    /// Hidden activation: tanh, relu, sigmoid, gelu or identity.
    #[arg(long, default_value = "tanh", value_parser = parse_activation)]
    activation: Activation,
    /// Training wall-clock time per run, in seconds (evaluations excluded);
    /// default 10 s when --steps is not given either.
    #[arg(long, value_name = "SECONDS")]
    time_budget: Option<f64>,
    /// Steps per run.
    #[arg(long)]
    steps: Option<usize>,
    /// Seed of the initialisation, the mini-batch order and the teacher.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// With --compare: run every optimizer once per seed (comma-separated);
    /// default: --seed.
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    /// Samples per gradient mini-batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Samples of the curvature batch (a subset of each gradient batch).
    #[arg(long, default_value_t = 32)]
    curvature_batch: usize,
    /// Label noise of the teacher–student data (standard deviation).
    #[arg(long, default_value_t = 0.1)]
    noise: f64,
    /// Evaluations (whole training and test splits) per run, spread over
    /// the time budget, besides the first five steps and the last.
    #[arg(long, default_value_t = 30)]
    evaluations: u32,
    /// Folder for the CSV logs (and the report of --compare).
    #[arg(long, default_value = "hinv-train", value_name = "DIR")]
    out: PathBuf,
}

fn parse_activation(s: &str) -> Result<Activation, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "tanh" => Activation::Tanh,
        "relu" => Activation::Relu,
        "sigmoid" => Activation::Sigmoid,
        "gelu" => Activation::Gelu,
        "identity" => Activation::Identity,
        _ => return Err(format!("`{s}` is not one of tanh, relu, sigmoid, gelu, identity")),
    })
}

fn bad(reason: String) -> CliError {
    CliError::Hinv(HinvError::Training { reason })
}

/// Builds an optimizer from `name[:key=value,...]`.
pub(crate) fn optimizer(spec: &str) -> Result<Box<dyn Optimizer>, CliError> {
    let (name, rest) = spec.split_once(':').unwrap_or((spec, ""));
    let mut kv: Vec<(String, String)> = Vec::new();
    for item in rest.split(',').filter(|s| !s.is_empty()) {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        kv.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut take = |key: &str, default: f64| -> Result<f64, CliError> {
        match kv.iter().position(|(k, _)| k == key) {
            Some(i) => {
                let (_, v) = kv.remove(i);
                v.parse().map_err(|_| bad(format!("`{v}` is not a number (setting {key} of `{spec}`)")))
            }
            None => Ok(default),
        }
    };
    let opt: Box<dyn Optimizer> = match name {
        "sgd" => {
            let lr = take("lr", 0.1)?;
            Box::new(Sgd::new(lr, take("momentum", 0.9)?)?)
        }
        "adam" => Box::new(Adam::new(take("lr", 1e-3)?)?),
        "newton" => {
            let n = DampedNewton::new(take("eps", 1.0)?)?;
            match kv.iter().position(|(k, _)| k == "indefinite") {
                Some(i) => {
                    kv.remove(i);
                    Box::new(n.allow_indefinite())
                }
                None => Box::new(n),
            }
        }
        "gn" => Box::new(DampedNewton::new(take("eps", 1.0)?)?.gauss_newton()),
        "hf" => {
            let lambda = take("lambda", 1.0)?;
            let cg = take("cg", 50.0)?;
            if cg < 1.0 || cg.fract() != 0.0 {
                return Err(bad(format!("cg = {cg} must be a positive whole number (in `{spec}`)")));
            }
            Box::new(HessianFree::new(lambda, cg as usize)?)
        }
        "tr" => Box::new(TrustRegion::new(take("delta", 1.0)?)?),
        other => return Err(bad(format!("unknown optimizer `{other}`: use sgd, adam, newton, gn, hf or tr"))),
    };
    if let Some((k, _)) = kv.first() {
        return Err(bad(format!("`{k}` is not a setting of {name} (in `{spec}`)")));
    }
    Ok(opt)
}

fn dataset(a: &TrainArgs, seed: u64) -> Result<data::Dataset, CliError> {
    Ok(match a.dataset.as_str() {
        "digits" => data::digits()?,
        "teacher" => {
            let spec = data::TeacherSpec {
                depth: a.depth,
                width: a.width,
                activation: a.activation,
                noise: a.noise,
                ..data::TeacherSpec::default()
            };
            data::teacher_student(&spec, seed)?
        }
        pair => {
            let Some((x, y)) = pair.split_once(',') else {
                return Err(bad(format!("--dataset `{pair}` is not digits, teacher or INPUTS.npy,TARGETS.npy")));
            };
            data::from_npy(x.as_ref(), y.as_ref())?
        }
    })
}

fn network(a: &TrainArgs, d: &data::Dataset) -> Result<Network, CliError> {
    let b = Network::builder(d.input_dim).dense(a.width, a.activation).repeat(a.depth);
    Ok(if d.is_classification() { b.cross_entropy(d.outputs)? } else { b.mse(d.outputs)? })
}

fn options(a: &TrainArgs, seed: u64) -> Result<TrainOptions, CliError> {
    let budget = match (a.time_budget, a.steps) {
        (Some(t), _) if !(t.is_finite() && t > 0.0) => return Err(bad(format!("--time-budget {t} must be positive"))),
        (Some(t), _) => Some(Duration::from_secs_f64(t)),
        (None, None) => Some(Duration::from_secs(10)),
        (None, Some(_)) => None,
    };
    // About --evaluations evaluations per run, however long (they pause
    // the clock but not the machine).
    let interval = budget.map_or(Duration::from_millis(50), |b| b / a.evaluations.max(1));
    Ok(TrainOptions {
        batch_size: a.batch_size,
        curvature_batch: a.curvature_batch,
        time_budget: budget,
        max_steps: a.steps,
        seed,
        eval_interval: interval,
    })
}

fn progress(opts: &TrainOptions, label: &str) -> ProgressBar {
    let (len, unit) = match (opts.time_budget, opts.max_steps) {
        (Some(b), _) => (b.as_millis() as u64, "ms"),
        (None, Some(s)) => (s as u64, "steps"),
        (None, None) => (0, ""),
    };
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(&format!("{{bar:30}} {{pos}}/{{len}} {unit} {label} {{msg}}")) {
        bar.set_style(style);
    }
    bar
}

fn show(bar: &ProgressBar, r: &Record, by_time: bool) {
    bar.set_position(if by_time { (r.wall * 1e3) as u64 } else { r.step as u64 });
    let acc = r.test_accuracy.map_or(String::new(), |a| format!(" acc {a:.3}"));
    let damp = r.damping.map_or(String::new(), |d| format!(" eps {d:.2e}"));
    bar.set_message(format!("step {} loss {:.4}{acc}{damp}", r.step, r.train_loss));
}

/// Runs `hinv train`.
pub(crate) fn run(a: &TrainArgs) -> Result<Outcome, CliError> {
    let io = |p: &std::path::Path, e: std::io::Error| CliError::Io { path: p.display().to_string(), source: e };
    std::fs::create_dir_all(&a.out).map_err(|e| io(&a.out, e))?;
    let compare = !a.compare.is_empty();
    let specs: Vec<String> = if compare { a.compare.clone() } else { vec![a.optimizer.clone()] };
    // Refuse a bad spec before any run starts.
    for s in &specs {
        optimizer(s)?;
    }
    let seeds = if compare && !a.seeds.is_empty() { a.seeds.clone() } else { vec![a.seed] };
    let mut runs = Vec::new();
    let mut teacher_loss = None;
    for &seed in &seeds {
        let d = dataset(a, seed)?;
        let net = network(a, &d)?;
        if let Some(t) = &d.teacher {
            teacher_loss = Some(net.loss(t, &d.test)?);
        }
        for s in &specs {
            let mut opt = optimizer(s)?;
            let opts = options(a, seed)?;
            let bar = progress(&opts, &format!("{} seed {seed}", opt.name()));
            let by_time = opts.time_budget.is_some();
            let log =
                train::train(&net, net.init_params(seed), &d, opt.as_mut(), &opts, &mut |r| show(&bar, r, by_time))?;
            bar.finish_and_clear();
            if let Some(r) = log.last() {
                let acc = r.test_accuracy.map_or(String::new(), |x| format!(", test accuracy {x:.4}"));
                println!(
                    "{} seed {seed}: {} steps in {:.2} s, train loss {:.5}, test loss {:.5}{acc}{}",
                    log.optimizer,
                    r.step,
                    r.wall,
                    r.train_loss,
                    r.test_loss,
                    match &log.stop {
                        train::Stop::Diverged(w) => format!(" (diverged: {w})"),
                        _ => String::new(),
                    }
                );
            }
            if !compare {
                let p = a.out.join(report::csv_name(&log));
                log.write_csv(&p)?;
                log.write_events(&a.out.join(report::csv_name(&log).replace(".csv", "-events.txt")))?;
                println!("log: {}", p.display());
            }
            runs.push(log);
        }
    }
    if compare {
        let cmd: Vec<String> = std::env::args().collect();
        let header = format!(
            "Command: `{}`\n\nNetwork: {} hidden layers of width {}, {:?}; batch {}, curvature batch {}; seeds {:?}.",
            cmd.join(" "),
            a.depth,
            a.width,
            a.activation,
            a.batch_size,
            a.curvature_batch,
            seeds
        );
        report::write_report(&a.out, &header, &runs, teacher_loss)?;
        println!("report: {}", a.out.join("report.md").display());
    }
    Ok(Outcome::Vouched)
}
