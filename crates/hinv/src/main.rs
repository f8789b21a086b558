//! The `hinv` command-line tool: exact Hessian-inverse-vector products,
//! HVPs, log-determinants and inertia of a network given as files, and the
//! reference demonstration.

mod cli;

/// A run is one fresh process, much of whose time goes into first touches
/// of fresh memory. mimalloc backs its heap with 2 MiB pages (a 1 GiB arena
/// advised `MADV_HUGEPAGE`); glibc's allocator grows its heaps a few 4 KiB
/// pages at a time (rayon's threads' arenas one `mprotect` per growth),
/// which the kernel's transparent huge pages never back: at L=256 h=8 B=2
/// a run of `hinv solve` took 300 page faults under mimalloc, the same
/// work through the library 4600 under glibc, where the three phases
/// together took 1.4–1.6x as long (docs/benchmarks.md, "The library and the
/// binary's allocator").
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
