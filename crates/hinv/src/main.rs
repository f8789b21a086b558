//! The `hinv` command-line tool: exact Hessian-inverse-vector products,
//! HVPs, log-determinants and inertia of a network given as files, and the
//! reference demonstration.

mod cli;

/// The factorization allocates and frees block-sized buffers layer after
/// layer; glibc's allocator hands them back to the kernel and page-faults
/// them in again every time, which cost a fresh process a third of its
/// factorization time. mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(cli::Outcome::Vouched) => ExitCode::SUCCESS,
        Ok(cli::Outcome::Unvouched(why)) => {
            eprintln!("warning: {why}");
            ExitCode::from(3)
        }
        Err(e) => {
            // One clear line and a non-zero status, never a backtrace.
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
