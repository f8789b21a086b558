//! The long pass of the differential test (issue "Never a wrong answer"):
//! a few thousand random cases against the dense reference, in parallel
//! over networks, and a few of them through the `hinv` binary. Prints the
//! summary tables as markdown and every failure with its reproducer; exits
//! with status 1 on any failure.
//!
//! ```sh
//! cargo xtask differential --cases 3000 --seed 1     # builds the binary too
//! cargo run --release -p hinv --example differential -- --seed 1 --case 17
//! ```
//!
//! Options: `--cases N` (default 3000), `--seed S` (default 1),
//! `--max-params P` (default 800), `--case I` (one case's network, in
//! detail), `--cli-every K` (every K-th network also through the binary,
//! default 20; 0: never), `--csv FILE` (one line per case).

#[path = "differential/binary.rs"]
mod binary;
#[path = "../tests/differential/mod.rs"]
mod harness;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use harness::cases::{EPS_PER_NET, MAX_PARAMS};
use harness::checks::Failure;
use harness::report::{self, RunInfo};
use harness::run::{run_network, CaseInputs, NetOutcome};
use rayon::prelude::*;

struct Options {
    cases: usize,
    seed: u64,
    max_params: usize,
    case: Option<usize>,
    cli_every: usize,
    csv: Option<PathBuf>,
}

fn parse() -> Result<Options, String> {
    let mut o = Options { cases: 3000, seed: 1, max_params: MAX_PARAMS, case: None, cli_every: 20, csv: None };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let num = |name: &str, v: String| v.parse::<u64>().map_err(|_| format!("{name}: `{v}` is not a number"));
        match a.as_str() {
            "--cases" => o.cases = num("--cases", value("--cases")?)? as usize,
            "--seed" => o.seed = num("--seed", value("--seed")?)?,
            "--max-params" => o.max_params = num("--max-params", value("--max-params")?)? as usize,
            "--case" => o.case = Some(num("--case", value("--case")?)? as usize),
            "--cli-every" => o.cli_every = num("--cli-every", value("--cli-every")?)? as usize,
            "--csv" => o.csv = Some(PathBuf::from(value("--csv")?)),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(o)
}

/// The `hinv` binary next to this example (`target/<profile>/hinv`), which
/// `cargo xtask differential` builds first.
fn hinv_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join(format!("hinv{}", std::env::consts::EXE_SUFFIX));
    bin.is_file().then_some(bin)
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("differential: {e}");
            return ExitCode::from(2);
        }
    };
    // Rayon runs the networks in parallel; the dense kernels stay
    // sequential inside them (nested parallelism only costs here).
    faer::set_global_parallelism(faer::Par::Seq);
    let run = RunInfo { seed: o.seed, max_params: o.max_params };
    let bin = hinv_binary();
    if bin.is_none() && o.cli_every > 0 {
        eprintln!("differential: no hinv binary next to this example; build it (cargo xtask differential does) to check the CLI too");
    }
    let scratch = std::env::temp_dir().join(format!("hinv-differential-{}", std::process::id()));
    let hook = |inputs: &CaseInputs<'_>| -> Vec<Failure> {
        match &bin {
            Some(b) => binary::check(b, &scratch, inputs),
            None => Vec::new(),
        }
    };

    if let Some(case) = o.case {
        let net = case / EPS_PER_NET;
        let through_cli = o.cli_every > 0 && bin.is_some();
        let out = run_network(o.seed, net, o.max_params, through_cli.then_some(&hook as _));
        print_network(&out, case);
        let _ = std::fs::remove_dir_all(&scratch);
        return if out.cases.iter().any(|c| c.index == case && !c.failures.is_empty()) || !out.failures.is_empty() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }

    let networks = o.cases.div_ceil(EPS_PER_NET);
    let done = AtomicUsize::new(0);
    let start = std::time::Instant::now();
    let nets: Vec<NetOutcome> = (0..networks)
        .into_par_iter()
        .map(|i| {
            let through_cli = o.cli_every > 0 && bin.is_some() && i % o.cli_every == 0;
            let out = run_network(o.seed, i, o.max_params, through_cli.then_some(&hook as _));
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n % 50 == 0 || n == networks {
                eprintln!("differential: {n}/{networks} networks, {:.0} s", start.elapsed().as_secs_f64());
            }
            out
        })
        .collect();
    let _ = std::fs::remove_dir_all(&scratch);

    println!(
        "### Differential test: seed {}, {} cases, P ≤ {}\n\n{}, {:.0} s wall",
        o.seed,
        networks * EPS_PER_NET,
        o.max_params,
        report::totals(&nets),
        start.elapsed().as_secs_f64()
    );
    println!("{}", report::summary(&nets));
    print!("{}", report::failures(&nets, run));
    if let Some(path) = &o.csv {
        if let Err(e) = std::fs::write(path, report::csv(&nets)) {
            eprintln!("differential: cannot write {}: {e}", path.display());
        }
    }
    let n = report::failure_count(&nets);
    if n > 0 {
        eprintln!("differential: {n} failure(s)");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One network's cases in detail.
fn print_network(out: &NetOutcome, case: usize) {
    println!("network {}: {}", out.net.index, out.net.describe());
    println!("P = {}, ||H|| = {:.3e}, {}, {:.2} s", out.p, out.norm_h, out.curv.name(), out.seconds);
    if let Some(s) = &out.skipped {
        println!("skipped: {s}");
    }
    if let Some((d, m, _)) = out.fd {
        println!("finite differences: max |H_fd - H| = {d:.2e}, max |H| = {m:.2e}");
    }
    for f in &out.failures {
        println!("FAILURE [{}] {}", f.kind.name(), f.detail);
    }
    for c in &out.cases {
        let mark = if c.index == case { "=>" } else { "  " };
        let s = &c.spectral;
        println!(
            "{mark} case {}: eps = {:e} ({}), cond {:.3e}, ||H + eps I|| {:.3e}, dense inertia {}+ {}- {}?, count threshold {:e}",
            c.index,
            c.eps,
            c.eps_kind.name(),
            s.cond,
            s.norm_a,
            s.sure_pos,
            s.sure_neg,
            s.ambiguous,
            c.threshold
        );
        for (name, sol) in ["gradient", "random rhs"].iter().zip(&c.solves) {
            println!("     {name}: {sol:?}");
        }
        println!("     inertia {:?}, count {:?}, log-det (err, bound) {:?}", c.inertia, c.count, c.log_det);
        println!(
            "     eigenvalues of H nearest -eps: {:?}; nearest the count threshold: {:?} (error bound {:.1e})",
            nearest(&out.eig, -c.eps),
            nearest(&out.eig, c.threshold),
            s.tol
        );
        for f in &c.failures {
            println!("     FAILURE [{}] {}", f.kind.name(), f.detail);
        }
    }
}

/// The three eigenvalues nearest `t`, as offsets `lambda - t`.
fn nearest(eig: &[f64], t: f64) -> Vec<String> {
    let mut d: Vec<f64> = eig.iter().map(|l| l - t).collect();
    d.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    d.iter().take(3).map(|v| format!("{v:+.3e}")).collect()
}
