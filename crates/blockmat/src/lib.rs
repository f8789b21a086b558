//! Hierarchical block-partitioned matrices.
//!
//! A [`Block`] is a leaf (dense, zero, scaled identity, low-rank) or a structure
//! (block-diagonal, bidiagonal, tridiagonal, grid) whose entries are
//! `Block`s again, to any depth. Structured algorithms are written once, in
//! block terms, and run faer kernels at the leaves.
//!
//! See `docs/blockmat-tutorial.md` (rendered below as [`tutorial`]) for a
//! walk from leaves to the blockwise transpose.

mod algebra;
mod apply;
mod assemble;
mod block;
mod blockvec;
mod dense;
mod error;
mod interleave;
mod low_rank;
mod pattern;
pub mod reduce;
mod solve;
mod structure;
mod support;

pub use block::{offsets, Bidiag, Block, BlockDiag, Grid, Side, Tridiag};
pub use blockvec::{interleave_indices, BlockVec};
pub use error::{BlockError, Result};
pub use interleave::{infer_nesting, interleave, interleave_symmetric, interleave_with, Nesting};
pub use low_rank::LowRank;
pub use pattern::{Pattern, SvgOptions};
pub use support::PlacedDense;

#[doc = include_str!("../../../docs/blockmat-tutorial.md")]
pub mod tutorial {}
