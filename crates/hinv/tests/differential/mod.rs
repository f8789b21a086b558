//! The differential test of the issue "Never a wrong answer": random
//! networks of every activation, loss, depth, width and batch, with `eps`
//! placed anywhere in the spectrum (condition numbers from 1 to beyond
//! 1e16), each compared against a dense reference built without the lifted
//! system. Shared by `tests/differential.rs` (a quick pass in CI) and
//! `examples/differential.rs` (the long pass behind `cargo xtask
//! differential`).
//!
//! - `adapter`: every call into the library under test (port it there);
//! - `cases`: the random networks and the placements of `eps`;
//! - `dense`: the dense reference;
//! - `checks`: the rules an answer is judged by;
//! - `run`: one network through the library and the reference, its cases
//!   judged;
//! - `report`: the summary tables and the failures with reproducers.

#![allow(dead_code)]

pub mod adapter;
pub mod cases;
pub mod checks;
pub mod dense;
pub mod report;
pub mod run;
