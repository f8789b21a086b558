//! Python bindings of hinv, built by maturin into the package `hinv`
//! (`python/hinv`, whose `__init__.py` re-exports this module `hinv._hinv`).
//!
//! - `network`: `Network` from a spec dict, weights as dicts/lists/vectors;
//! - `curvature`: `Curvature` (loss, gradient, HVP, factor, eigenvalue counts);
//! - `factorization`: `Factorization` (solve, log-det, inertia) and results;
//! - `laplace`: `Laplace` (evidence, prior precision, predictive);
//! - `spectrum`: extreme eigenvalues, interval counts, the trust-region step;
//! - `arrays`: numpy in and out;
//! - `errors`: Rust errors as typed Python exceptions (`hinv/_errors.py`).

mod arrays;
mod curvature;
mod errors;
mod factorization;
mod laplace;
mod network;
mod spectrum;

use pyo3::prelude::*;

/// The Rust side of the module allocates through mimalloc, as the `hinv`
/// binary does: it backs its heap with 2 MiB pages, where the system
/// allocator's heaps fault fresh memory in 4 KiB at a time; a fresh
/// process's first solve took 0.65–0.91x the time it took with the system
/// allocator (docs/benchmarks.md, "The library and the binary's
/// allocator"). Python's own objects keep Python's allocator; arrays
/// handed to numpy carry their Rust owner, which frees them through this
/// one.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The native module; import `hinv`, not this.
#[pymodule]
fn _hinv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<network::PyNetwork>()?;
    m.add_class::<curvature::PyCurvature>()?;
    m.add_class::<factorization::PyFactorization>()?;
    m.add_class::<factorization::Inertia>()?;
    m.add_class::<factorization::LogDet>()?;
    m.add_class::<factorization::EigenvalueCount>()?;
    m.add_class::<factorization::SolveReport>()?;
    m.add_class::<factorization::Solution>()?;
    m.add_class::<curvature::RouteCosts>()?;
    m.add_class::<laplace::PyLaplace>()?;
    m.add_class::<laplace::Evidence>()?;
    m.add_class::<laplace::PriorSearch>()?;
    m.add_class::<laplace::Predictive>()?;
    m.add_class::<spectrum::Eigenvalue>()?;
    m.add_class::<spectrum::IntervalCount>()?;
    m.add_class::<spectrum::TrustRegionStep>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
