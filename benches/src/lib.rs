//! Shared helpers for the criterion benchmarks.
//!
//! - [`grid`]: the network configurations of the pipeline benchmark and the
//!   quick/full selector (`HINV_BENCH`);
//! - [`kernels`]: the dense baselines (faer GEMM and Bunch–Kaufman) measured
//!   in the same run as the structured solver;
//! - [`side`]: the JSON side file for what criterion cannot store
//!   (iteration counts, residuals, sizes).

pub mod grid;
pub mod kernels;
pub mod side;
