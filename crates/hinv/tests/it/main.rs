//! hinv's integration tests, one binary: each file of this directory is a
//! module (one binary links once instead of twelve times). The
//! differential test runs apart (`tests/differential.rs`): it sets faer's
//! global parallelism, which every test of a shared process would see.

mod common;

mod cli;
mod elimination;
mod errors;
mod fuzz_cli;
mod ggn;
mod hvp;
mod krylov;
mod robustness;
mod shifted;
mod solve;
mod spectrum;
mod train;
