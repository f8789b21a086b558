//! Exact Hessian-inverse-vector products for deep networks.
//!
//! `hinv` computes `x = (H + eps I)^-1 v`, `log|det(H + eps I)|` and the
//! inertia of `H + eps I`, where `H` is the Hessian of a network's batch loss
//! with respect to all its parameters, without ever forming `H`: the
//! Hessian is written in terms of per-layer derivative blocks
//! ([`netgraph`]), the solve is lifted into a symmetric block-tridiagonal
//! system ([`blockmat`]) and that is factored layer by layer ([`tridiag`]).
//! Time and memory are linear in depth.
//!
//! The entry point is [`Curvature`]; see `../shared/design/ALGORITHM.md`
//! in the repository for the mathematics.
//!
//! Beside it: [`reference`](mod@reference), the dense oracle to check any answer against
//! on small networks (dense `H`, LU solve, eigenvalues; quadratic memory,
//! cubic time); [`laplace`], the Laplace approximation; [`train`], training
//! with exact second-order steps.
//!
//! ```
//! use hinv::Curvature;
//! use netgraph::{Activation, Batch, Network};
//!
//! let net = Network::builder(5).without_bias().dense(10, Activation::Tanh).repeat(30).cross_entropy(3)?;
//! let mut params = net.init_params(7);
//! params.scale(2.0); // away from the trivial, nearly-zero Hessian
//! let batch = Batch::random_classification(5, 3, 2, 11);
//!
//! let curv = Curvature::new(&net, &params, &batch)?;
//! let g = curv.gradient().to_vec();
//! let f = curv.factor(1e-3)?;
//! let step = f.solve(&g)?;              // Newton-like step (H + eps I)^-1 g
//! println!("log|det| = {}, inertia = {:?}", f.log_det()?.log_abs, f.inertia());
//! assert_eq!(step.len(), curv.num_params());
//! // Eigenvalues of H below -eps are the negative ones of H + eps I.
//! let below = curv.count_eigenvalues_below(-1e-3)?;
//! assert_eq!(below.count, f.inertia().negative);
//! assert_eq!(below.uncertain, 0); // certified
//! # Ok::<(), hinv::HinvError>(())
//! ```
//!
//! # Memory pages
//!
//! The library allocates through your program's global allocator. A fresh
//! process spends much of its first factorization faulting in fresh
//! memory, and glibc's allocator grows its heaps in 4 KiB pages: on Linux,
//! with glibc, a fresh process's derivative blocks, factorization and first
//! solve took 1.2–1.6x as long as in the `hinv` binary, which links
//! mimalloc (2 MiB pages). Link it too
//! (`#[global_allocator] static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;`),
//! or run with
//! `GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.top_pad=67108864`
//! (0.85–1.01x the binary; the tunable needs glibc 2.35 or later, and both
//! remedies transparent huge pages in `madvise` or `always` mode). `cargo
//! build --release -p hinv --bin hinv --example allocator &&
//! target/release/examples/allocator` in the repository measures all three
//! on your machine; docs/benchmarks.md has the numbers (the defaults' cost
//! varied from 0.88x to 1.63x between machines and days).

mod curvature;
mod error;
mod factor;
mod ggn;
mod krylov;
pub mod laplace;
mod lifted;
mod reduced;
pub mod reference;
mod spectrum;
pub mod train;
mod trust_region;

pub use curvature::{Curvature, CurvatureOptions, EigenvalueCount};
pub use error::{Bytes, DenseFailure, DenseMatrix, HinvError, OverflowSite, Result};
pub use factor::{
    factor_bytes, Elimination, FactorOptions, Factorization, Solution, SolveMethod, SolveOptions, SolveReport,
    SHIFT_BUDGET,
};
pub use ggn::{CurvatureFactor, CurvatureKind, Route, RouteCosts, WoodburyFactorization};
pub use krylov::{conjugate_gradient, minres, KrylovReport};
pub use lifted::{lifted_grid, lifted_tridiag};
pub use spectrum::{
    symlog_edges, Eigenpairs, End, ExtremeEigenvalue, Histogram, IntervalCount, Method, RangeEstimate, ShiftCount,
    SpectrumOptions,
};
pub use tridiag::{Inertia, ParPolicy, SignedLogDet, Strategy};
pub use trust_region::{StepKind, TrustRegionOptions, TrustRegionStep};

pub use blockmat;
pub use netgraph;
pub use tridiag;

/// The README's library example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
