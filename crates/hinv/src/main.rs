//! The `hinv` command-line tool: exact Hessian-inverse-vector products,
//! HVPs, log-determinants and inertia of a network given as files, and the
//! reference demonstration.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One clear line and a non-zero status, never a backtrace.
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
