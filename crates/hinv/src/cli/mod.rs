//! Argument parsing and dispatch of the `hinv` subcommands.

mod commands;
mod demo;
mod progress;
mod spectrum;
mod train;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use commands::{CliError, Outcome};

/// The exit statuses, printed by `hinv --help` and listed in the README.
const EXIT_STATUS: &str = "Exit status:
  0  every number printed or written is within its stated accuracy
     (solves: backward error within --refine's tolerance; inertia: certified)
  2  an error: nothing was written; the message says why and what to do
     (also for command-line usage errors)
  3  an answer was printed or written that hinv cannot vouch for, with a
     warning on stderr: a solve asked for with --accept-inexact that missed
     its tolerance, or an inertia whose counts are uncertain; spectrum and
     trust-region: an uncertain count, an unconverged bracket or an
     unverified eigenpair, or a trust-region iteration out of budget";

/// Exact Hessian-inverse-vector products, log-determinants and inertia for
/// deep networks, linear in depth.
#[derive(Debug, Parser)]
#[command(name = "hinv", version, about, long_about = None, propagate_version = true, after_help = EXIT_STATUS)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the reference demonstration (30-layer tanh network) against the dense route.
    Demo(DemoArgs),
    /// Solve (H + eps I) x = rhs (rhs defaults to the gradient) and write x.
    Solve(SolveArgs),
    /// Multiply the Hessian by a vector (defaults to the gradient) and write H v.
    Hvp(HvpArgs),
    /// Print log|det(H + eps I)| and its sign.
    Logdet(EpsArgs),
    /// Print the inertia of H - shift I: how many eigenvalues of H lie below, at and above the shift.
    Inertia(InertiaArgs),
    /// Write the gradient of the batch loss.
    Gradient(GradientArgs),
    /// Exact spectrum of H: lambda_min/lambda_max, negative/near-zero/positive counts, a histogram (and SVG), eigenpairs near a shift.
    Spectrum(SpectrumArgs),
    /// Solve the trust-region subproblem min g.p + p.H p / 2, ||p|| <= radius, exactly, and write p.
    TrustRegion(TrustRegionArgs),
    /// Laplace approximation: the evidence, the prior precision maximizing
    /// it, and predictive variances (default curvature: ggn).
    Laplace(LaplaceArgs),
    /// Print the JSON Schema (draft 2020-12) of the network spec read by --spec.
    SpecSchema,
    /// Train a network with one optimizer (CSV log), or --compare several at equal wall-clock time (report with charts).
    Train(Box<train::TrainArgs>),
}

// Numeric flags take `allow_hyphen_values`, not `allow_negative_numbers`:
// clap's negative-number test accepts only digits, one dot and one `e`
// after the dash, so `--shift -1e-3` (a signed exponent) would be split
// into the flags `-1`, `-e`, ... and refused. With hyphen values the next
// word is always the flag's value and our parser judges it.

// Each command offers only the flags it uses: `ModelArgs` (files, --json)
// everywhere, `CurvatureArgs` (+ --memory-limit, --curvature) where the
// derivative blocks are computed, `FactorArgs` (+ --elimination) where the
// lifted system is factored, `FactorRoute` (--route) where a
// factorization's route can be chosen.

/// The network, its weights and the batch.
#[derive(Debug, Args)]
struct ModelArgs {
    /// JSON network spec.
    #[arg(long, value_name = "FILE")]
    spec: PathBuf,
    /// Weights (safetensors, f32 or f64).
    #[arg(long, value_name = "FILE")]
    weights: PathBuf,
    /// Inputs, .npy of shape (batch, features).
    #[arg(long, value_name = "FILE")]
    inputs: PathBuf,
    /// Targets, .npy: integer classes (batch,) or values (batch, outputs).
    #[arg(long, value_name = "FILE")]
    targets: PathBuf,
    /// Print a machine-readable JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

/// `--memory-limit`.
#[derive(Debug, Args)]
struct MemoryArg {
    /// Refuse to factor above this much memory (bytes, or with a K/M/G/T
    /// suffix, binary units); default: the memory available now.
    #[arg(long, value_name = "SIZE", value_parser = parse_memory, allow_hyphen_values = true)]
    memory_limit: Option<u64>,
}

/// A model and the curvature taken of it.
#[derive(Debug, Args)]
struct CurvatureArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    memory: MemoryArg,
    /// The curvature: the Hessian or the generalized Gauss-Newton matrix
    /// J^T Lambda J (the Fisher for cross-entropy).
    #[arg(long, value_name = "hessian|ggn", default_value = "hessian")]
    curvature: hinv::CurvatureKind,
}

/// A curvature whose lifted system is factored.
#[derive(Debug, Args)]
struct FactorArgs {
    #[command(flatten)]
    curvature: CurvatureArgs,
    #[command(flatten)]
    elimination: EliminationArg,
}

/// `--elimination`.
#[derive(Debug, Args)]
struct EliminationArg {
    // One line, so that the help keeps its compact layout; the details
    // (what auto leaves uncertain on wide layers, the cost of interleaved)
    // are in the README and docs/numerics.md.
    /// Elimination of the lifted system (lifted route): auto, interleaved (the most stable: checks every eigenvalue count, within --memory-limit, at up to hundreds of factorizations' cost on wide layers) or parameters-first (forced, for measurements)
    #[arg(long, value_name = "KIND", default_value = "auto")]
    elimination: hinv::Elimination,
}

/// `--route`, for the commands whose factorizations can take either route.
#[derive(Debug, Args)]
struct FactorRoute {
    /// Route of factorizations: lifted (block-tridiagonal), woodbury
    /// (through the explicit Jacobian; ggn with eps > 0 only) or auto (the
    /// cheaper by predicted cost; lifted with an --elimination).
    #[arg(long, value_name = "auto|lifted|woodbury", default_value = "auto", value_parser = parse_route)]
    route: RouteArg,
}

impl FactorRoute {
    /// `None`: the library chooses.
    fn get(&self) -> Option<hinv::Route> {
        self.route.0
    }
}

/// `--route`: `None` lets the library choose.
#[derive(Debug, Clone, Copy)]
struct RouteArg(Option<hinv::Route>);

fn parse_route(s: &str) -> Result<RouteArg, String> {
    match s.to_ascii_lowercase().as_str() {
        "auto" => Ok(RouteArg(None)),
        "lifted" => Ok(RouteArg(Some(hinv::Route::Lifted))),
        "woodbury" => Ok(RouteArg(Some(hinv::Route::Woodbury))),
        _ => Err(format!("`{s}` is not a route: use auto, lifted or woodbury")),
    }
}

/// Parses `123`, `512K`, `1.5G`, `2T` (binary units) into bytes.
fn parse_memory(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a memory size such as 4096, 512M or 8G");
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    let mult: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = v * mult as f64;
    if !(0.0..u64::MAX as f64).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Folder for the pictures of the lifted system.
    #[arg(long, value_name = "DIR", default_value = "hinv-demo")]
    out_dir: PathBuf,
    /// Print a machine-readable JSON summary instead of the report.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct SolveArgs {
    #[command(flatten)]
    curvature: FactorArgs,
    #[command(flatten)]
    route: FactorRoute,
    /// Right-hand side, a flat .npy vector (default: the gradient).
    #[arg(long, value_name = "FILE")]
    rhs: Option<PathBuf>,
    /// Regularisation: solve with H + eps I.
    #[arg(long, default_value_t = 1e-3, allow_hyphen_values = true)]
    eps: f64,
    /// Where to write the solution (flat .npy, f64).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Largest acceptable normwise backward error ||rhs - (H + eps I) x|| /
    /// (||H + eps I|| ||x|| + ||rhs||); refinement with the exact HVP (and, if
    /// needed, an elimination pivoted across layers) runs until it is met, and
    /// a solution that misses it is an error [default: 1.4e-14, 64 eps_mach].
    #[arg(long, value_name = "TOL", allow_hyphen_values = true)]
    refine: Option<f64>,
    /// Write the best solution even when it misses the tolerance, with a
    /// warning on stderr and exit status 3.
    #[arg(long)]
    accept_inexact: bool,
}

#[derive(Debug, Args)]
struct HvpArgs {
    #[command(flatten)]
    curvature: CurvatureArgs,
    /// The vector to multiply, a flat .npy vector (default: the gradient).
    #[arg(long, value_name = "FILE")]
    rhs: Option<PathBuf>,
    /// Where to write H v (flat .npy, f64).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct EpsArgs {
    #[command(flatten)]
    curvature: FactorArgs,
    #[command(flatten)]
    route: FactorRoute,
    /// Regularisation: the determinant of H + eps I.
    #[arg(long, default_value_t = 1e-3, allow_hyphen_values = true)]
    eps: f64,
}

#[derive(Debug, Args)]
struct InertiaArgs {
    #[command(flatten)]
    curvature: FactorArgs,
    #[command(flatten)]
    route: FactorRoute,
    /// Count the eigenvalues of H below, at and above this value.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    shift: f64,
}

#[derive(Debug, Args)]
struct GradientArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Where to write the gradient (flat .npy, f64).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SpectrumArgs {
    #[command(flatten)]
    curvature: FactorArgs,
    /// Number of histogram bins over [lambda_min, lambda_max] (one factorization per edge).
    #[arg(long, default_value_t = 32)]
    bins: usize,
    /// Bins equal on a linear axis, on a symmetric-log axis, or both.
    #[arg(long, value_enum, default_value_t = spectrum::Scale::Both)]
    scale: spectrum::Scale,
    /// Explicit bin edges, comma-separated and increasing (replaces --bins and --scale).
    #[arg(
        long,
        value_name = "E0,E1,...",
        value_delimiter = ',',
        allow_hyphen_values = true,
        conflicts_with_all = ["bins", "scale"]
    )]
    edges: Option<Vec<f64>>,
    /// Eigenvalues with |lambda| <= ZERO_TOL * ||H|| are counted as near zero.
    #[arg(long, default_value_t = 1e-8, allow_hyphen_values = true)]
    zero_tol: f64,
    /// Also find the eigenpairs nearest this shift (shift-invert Lanczos, verified by counting).
    #[arg(long, value_name = "SIGMA", allow_hyphen_values = true)]
    nearest: Option<f64>,
    /// How many eigenpairs --nearest finds.
    #[arg(long, default_value_t = 4, requires = "nearest")]
    k: usize,
    /// Write the histogram(s) as an SVG picture.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct TrustRegionArgs {
    #[command(flatten)]
    curvature: FactorArgs,
    /// The trust-region radius Delta.
    #[arg(long, value_name = "DELTA", allow_hyphen_values = true)]
    radius: f64,
    /// The linear term g, a flat .npy vector (default: the gradient).
    #[arg(long, value_name = "FILE")]
    rhs: Option<PathBuf>,
    /// Where to write the step p (flat .npy, f64).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct LaplaceArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    memory: MemoryArg,
    /// The curvature: the generalized Gauss-Newton matrix J^T Lambda J (the
    /// Fisher for cross-entropy) or the Hessian.
    #[arg(long, value_name = "hessian|ggn", default_value = "ggn")]
    curvature: hinv::CurvatureKind,
    #[command(flatten)]
    route: FactorRoute,
    #[command(flatten)]
    elimination: EliminationArg,
    /// Prior precision delta (prior N(0, I / delta)); not with --optimize.
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true, conflicts_with = "optimize")]
    prior_precision: f64,
    /// Search the prior precision maximizing the evidence in [LO, HI].
    #[arg(long, value_names = ["LO", "HI"], num_args = 2, allow_hyphen_values = true)]
    optimize: Option<Vec<f64>>,
    /// Noise standard deviation of the Gaussian likelihood of an mse network
    /// (an error for cross_entropy) [default: 1].
    #[arg(long, allow_hyphen_values = true)]
    sigma_noise: Option<f64>,
    /// New inputs (.npy, (batch, features)) whose predictive to compute.
    #[arg(long, value_name = "FILE")]
    test_inputs: Option<PathBuf>,
    /// Monte Carlo samples for the sampled class probabilities of a
    /// cross_entropy network (0: probit only).
    #[arg(long, default_value_t = 0, requires = "test_inputs")]
    samples: usize,
    /// Write the predictive covariances (.npy, (batch, C, C) flattened) here.
    #[arg(long, value_name = "FILE", requires = "test_inputs")]
    out: Option<PathBuf>,
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<Outcome, CliError> {
    match cli.command {
        Command::Demo(a) => demo::run(&a.out_dir, a.json).map(|()| Outcome::Vouched),
        Command::Solve(a) => commands::solve(
            &a.curvature,
            a.route.get(),
            a.rhs.as_deref(),
            a.eps,
            a.out.as_deref(),
            a.refine,
            a.accept_inexact,
        ),
        Command::Hvp(a) => commands::hvp(&a.curvature, a.rhs.as_deref(), a.out.as_deref()),
        Command::Logdet(a) => commands::logdet(&a.curvature, a.route.get(), a.eps),
        Command::Inertia(a) => commands::inertia(&a.curvature, a.route.get(), a.shift),
        Command::Gradient(a) => commands::gradient(&a.model, a.out.as_deref()),
        Command::Spectrum(a) => spectrum::spectrum(
            &a.curvature,
            &spectrum::SpectrumRequest {
                bins: a.bins,
                scale: a.scale,
                edges: a.edges.as_deref(),
                zero_tol: a.zero_tol,
                nearest: a.nearest,
                k: a.k,
                svg: a.svg.as_deref(),
            },
        ),
        Command::TrustRegion(a) => spectrum::trust_region(&a.curvature, a.rhs.as_deref(), a.radius, a.out.as_deref()),
        Command::Train(a) => train::run(&a),
        Command::Laplace(a) => commands::laplace(&a),
        Command::SpecSchema => {
            print!("{}", netgraph::SPEC_SCHEMA);
            Ok(Outcome::Vouched)
        }
    }
}
