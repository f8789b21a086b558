//! tridiag's integration tests, one binary: each file of this directory is
//! a module (one binary links once instead of nine times). The allocation
//! counts run apart (`tests/allocations.rs`): they install their own
//! global allocator.

#[path = "../common/mod.rs"]
mod common;

mod accuracy;
mod block_diag;
mod certify;
mod owned;
mod pivoted_det;
mod pivoted_lu;
mod singular;
mod two_sided;
mod wide_couplings;
