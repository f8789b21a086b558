//! Layered networks and the exact per-layer derivative blocks of their
//! Hessian.
//!
//! A [`Network`] is a chain `z_l = f_l(z_{l-1}; x_l)` ending in a layer fused
//! with the loss. Besides the loss and its gradient it provides, for every
//! layer, the five blocks `Dx, Dz, A, G, E` of `ALGORITHM.md` in closed form
//! ([`Network::derivatives`]), from which the Hessian is assembled or
//! inverted without ever forming it.
//!
//! - [`activation`]: elementwise activations and their derivatives;
//! - [`spec`]: the serde spec of a network (the JSON format, whose JSON
//!   Schema is [`SPEC_SCHEMA`]);
//! - [`layer`]: the [`Layer`] trait and [`LayerBlocks`];
//! - [`dense`], [`loss`]: the built-in hidden and loss layers;
//! - [`network`], [`params`], [`batch`]: networks, parameters, data;
//! - [`derivatives`]: all blocks at once, and a finite-difference Hessian;
//! - [`product`]: matrix-free products with a layer's blocks, from its
//!   weights and activations ([`LayerProduct`]);
//! - [`ggn`]: the generalized Gauss–Newton blocks (hidden `A, G, E = 0`,
//!   the loss layer's from `Jx, Jz, Lambda`) and the outputs' Jacobian;
//! - [`check`]: [`check_layer`], a finite-difference checker for layers;
//! - [`files`]: JSON specs, safetensors weights and `.npy` data;
//! - [`memory`]: memory estimates that refuse absurd shapes before allocating.

pub mod activation;
pub mod batch;
mod builder;
pub mod check;
pub mod coupling;
pub mod dense;
pub mod derivatives;
pub mod error;
pub mod files;
pub mod ggn;
pub mod layer;
mod linear;
pub mod loss;
pub mod memory;
pub mod network;
pub mod params;
pub mod product;
pub mod spec;

pub use activation::{Activation, Softplus};
pub use batch::{Batch, Targets};
pub use builder::NetworkBuilder;
pub use check::{check_layer, LayerCheck, Mismatch};
pub use coupling::UnitCoupling;
pub use dense::Dense;
pub use derivatives::Derivatives;
pub use error::{NetError, Result};
pub use files::{
    load_batch, load_inputs, load_spec, load_weights, read_npy_vector, save_batch, save_npy, save_spec, save_weights,
    write_npy, write_npy_vector, Dtype,
};
pub use ggn::{GgnDerivatives, OutputCurvature, OutputJacobian};
pub use layer::{Layer, LayerBlocks};
pub use linear::LOW_RANK_MIN_INPUTS;
pub use loss::{LossKind, LossLayer};
pub use network::{Backward, Forward, Network};
pub use params::Params;
pub use product::LayerProduct;
pub use spec::{LayerSpec, LossSpec, NetSpec};

/// The JSON Schema (draft 2020-12) of the network spec that [`load_spec`]
/// reads: every layer kind, activation and field (`docs/spec.md` explains
/// them). Tests check it against the reader, so the two cannot drift apart.
pub const SPEC_SCHEMA: &str = include_str!("../spec.schema.json");
