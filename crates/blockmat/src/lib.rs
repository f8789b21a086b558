//! Hierarchical block-partitioned matrices.
//!
//! A [`Block`] is a leaf (dense, zero, scaled identity) or a structure
//! (block-diagonal, bidiagonal, tridiagonal, grid) whose entries are
//! `Block`s again, to any depth. Structured algorithms are written once, in
//! block terms, and run faer kernels at the leaves.
//!
//! See `docs/blockmat-tutorial.md` (rendered below as [`tutorial`]) for a
//! walk from leaves to the blockwise transpose.

mod apply;
mod block;
mod dense;
mod error;
mod support;

pub use block::{offsets, Bidiag, Block, BlockDiag, Grid, Side, Tridiag};
pub use error::{BlockError, Result};
