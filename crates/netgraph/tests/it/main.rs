//! netgraph's integration tests, one binary: each file of this directory
//! is a module (one binary links once instead of six times). The time
//! limits run apart (`tests/limits.rs`), where no other test shares the
//! processor with their clocks.

mod common;

mod activation;
mod blocks;
mod files;
mod fuzz;
mod network;
mod spec_schema;
