//! Training deep narrow networks with exact second-order steps, against
//! the first-order baselines, at equal wall-clock time (`hinv train`).
//!
//! - [`data`]: the shipped digits set with its fixed split, the
//!   teacher–student regression, `.npy` pairs, mini-batches;
//! - [`optim`]: the [`Optimizer`] trait and [`Sgd`], [`Adam`];
//! - [`newton`]: [`DampedNewton`], exact `(H + eps I)^-1 g` steps with the
//!   Levenberg–Marquardt [`LmRule`];
//! - [`hessian_free`]: [`HessianFree`], truncated CG on exact HVPs;
//! - [`trust_region`]: [`TrustRegion`], exact trust-region steps with the
//!   ratio test on the radius;
//! - [`run`]: the loop ([`train`]), its records and CSV;
//! - [`eval`]: loss and accuracy on a whole split;
//! - [`report`], [`svg`]: the comparison report and its charts;
//! - [`summary`]: the report's summary table over seeds (the tables of
//!   docs/training.md).
//!
//! ```
//! use hinv::train::{data, train, Adam, TrainOptions};
//! use netgraph::{Activation, Network};
//!
//! let d = data::teacher_student(&data::TeacherSpec { train: 64, test: 32, ..Default::default() }, 0)?;
//! let net = Network::builder(d.input_dim).dense(8, Activation::Tanh).repeat(2).mse(1)?;
//! let opts = TrainOptions { time_budget: None, max_steps: Some(20), batch_size: 16, ..Default::default() };
//! let log = train(&net, net.init_params(0), &d, &mut Adam::new(1e-2)?, &opts, &mut |_| {})?;
//! assert_eq!(log.last().map(|r| r.step), Some(20));
//! # Ok::<(), hinv::HinvError>(())
//! ```

pub mod data;
pub mod eval;
pub mod hessian_free;
pub mod newton;
pub mod optim;
pub mod report;
pub mod run;
pub mod summary;
pub mod svg;
pub mod trust_region;

pub use hessian_free::HessianFree;
pub use newton::{DampedNewton, LmRule};
pub use optim::{Adam, Optimizer, PhaseTimes, Sgd, StepInfo, StepInput};
pub use run::{train, Record, RunLog, Stop, TrainOptions};
pub use trust_region::TrustRegion;
