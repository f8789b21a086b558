//! Rust errors as Python exceptions: one class per kind of error (defined in
//! `hinv/_errors.py`, where they can also subclass `ValueError`,
//! `ArithmeticError` or `MemoryError`), the Rust message, and the error's
//! typed fields as attributes.

use hinv::HinvError;
use netgraph::NetError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::BoundObject;

/// Builds `hinv._errors.<class>(message)` and sets `attrs` on it.
fn raise(py: Python<'_>, class: &str, message: String, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = py.import("hinv._errors")?.getattr(class)?;
        let exc = cls.call1((message.clone(),))?;
        for (name, value) in attrs {
            exc.setattr(*name, value)?;
        }
        Ok(PyErr::from_value(exc))
    };
    // Only a broken installation (no hinv._errors) lands here.
    build().unwrap_or_else(|e| PyRuntimeError::new_err(format!("{message} (and hinv._errors failed: {e})")))
}

fn obj<'py, T: IntoPyObject<'py>>(py: Python<'py>, v: T) -> Py<PyAny> {
    v.into_pyobject(py).map(|b| b.into_any().unbind()).unwrap_or_else(|_| py.None())
}

/// The exception for an error of the `hinv` facade.
pub fn hinv_err(py: Python<'_>, e: HinvError) -> PyErr {
    let msg = e.to_string();
    match e {
        HinvError::WrongLength { expected, found, .. } => {
            raise(py, "ShapeError", msg, &[("expected", obj(py, expected)), ("found", obj(py, found))])
        }
        HinvError::InconsistentBlocks { .. } => raise(py, "ShapeError", msg, &[]),
        HinvError::NonFinite { index, value, .. } => {
            raise(py, "NonFiniteError", msg, &[("index", obj(py, index)), ("value", obj(py, value))])
        }
        HinvError::InvalidNumber { value, .. } => raise(py, "InvalidArgumentError", msg, &[("value", obj(py, value))]),
        HinvError::IllConditioned { eps, backward_error, tolerance, iterations } => raise(
            py,
            "IllConditionedError",
            msg,
            &[
                ("eps", obj(py, eps)),
                ("backward_error", obj(py, backward_error)),
                ("tolerance", obj(py, tolerance)),
                ("iterations", obj(py, iterations)),
            ],
        ),
        HinvError::Singular { eps, block, layer, pivot, .. } => raise(
            py,
            "SingularError",
            msg,
            &[("eps", obj(py, eps)), ("block", obj(py, block)), ("layer", obj(py, layer)), ("pivot", obj(py, pivot))],
        ),
        HinvError::Overflow { what, value } => {
            raise(py, "OverflowError", msg, &[("value", obj(py, value)), ("what", obj(py, what.to_string()))])
        }
        HinvError::ShiftTooFar { eps, shifted_eps, backward_error, tolerance, iterations } => raise(
            py,
            "ShiftTooFarError",
            msg,
            &[
                ("eps", obj(py, eps)),
                ("shifted_eps", obj(py, shifted_eps)),
                ("backward_error", obj(py, backward_error)),
                ("tolerance", obj(py, tolerance)),
                ("iterations", obj(py, iterations)),
            ],
        ),
        HinvError::Dense { matrix, n, failure } => {
            let class = if failure == hinv::DenseFailure::Singular { "SingularError" } else { "HinvError" };
            raise(
                py,
                class,
                msg,
                &[
                    ("matrix", obj(py, matrix.to_string())),
                    ("n", obj(py, n)),
                    ("failure", obj(py, failure.to_string())),
                ],
            )
        }
        HinvError::WrongCurvature { .. } | HinvError::MissingOption { .. } => {
            raise(py, "InvalidArgumentError", msg, &[])
        }
        // The library's message names the elimination as Rust and the
        // command line spell it; Python's keyword has its own spelling.
        HinvError::EliminationWithoutLiftedSystem { elimination } => {
            let name = crate::curvature::elimination_name(elimination);
            let msg = format!(
                "elimination=\"{name}\" was asked for with the Woodbury route, which factors no lifted system: \
                 leave elimination=\"auto\", or take route=\"lifted\" or route=\"auto\""
            );
            raise(py, "InvalidArgumentError", msg, &[])
        }
        HinvError::TooLarge { needed, limit, .. } => {
            raise(py, "TooLargeError", msg, &[("needed", obj(py, needed.0)), ("limit", obj(py, limit.0))])
        }
        HinvError::Uncertified { .. } => raise(py, "UncertifiedError", msg, &[]),
        HinvError::NotPositiveDefinite { delta, inertia, .. } => {
            let i = crate::factorization::Inertia {
                positive: inertia.positive,
                negative: inertia.negative,
                zero: inertia.zero,
                uncertain: inertia.uncertain,
            };
            let i = Py::new(py, i).map(|b| b.into_any()).unwrap_or_else(|_| py.None());
            raise(py, "NotPositiveDefiniteError", msg, &[("prior_precision", obj(py, delta)), ("inertia", i)])
        }
        HinvError::Net(e) => net_err(py, e),
        HinvError::Factor(hinv::tridiag::TridiagError::Singular { block, pivot, .. }) => {
            raise(py, "SingularError", msg, &[("block", obj(py, block)), ("pivot", obj(py, pivot))])
        }
        HinvError::Factor(hinv::tridiag::TridiagError::ShapeMismatch { .. })
        | HinvError::Block(hinv::blockmat::BlockError::ShapeMismatch { .. }) => raise(py, "ShapeError", msg, &[]),
        _ => raise(py, "HinvError", msg, &[]),
    }
}

/// The exception for an error of the network crate.
pub fn net_err(py: Python<'_>, e: NetError) -> PyErr {
    let msg = e.to_string();
    match e {
        NetError::NonFinite { index, value, .. } => {
            raise(py, "NonFiniteError", msg, &[("index", obj(py, index)), ("value", obj(py, value))])
        }
        NetError::ZeroSize { .. } | NetError::ActivationParameter { .. } => raise(py, "InvalidArgumentError", msg, &[]),
        NetError::TooLarge { needed, limit, .. } => raise(
            py,
            "TooLargeError",
            msg,
            &[("needed", obj(py, u64::try_from(needed).unwrap_or(u64::MAX))), ("limit", obj(py, limit))],
        ),
        NetError::Json { .. } => raise(py, "SpecError", msg, &[]),
        // Files and custom layers: not reachable from the Python API.
        NetError::NoSpec | NetError::Io { .. } | NetError::SafeTensors { .. } | NetError::Npy { .. } => {
            raise(py, "HinvError", msg, &[])
        }
        _ => raise(py, "ShapeError", msg, &[]),
    }
}

/// A spec that serde refused.
pub fn spec_err(py: Python<'_>, e: serde_json::Error) -> PyErr {
    raise(py, "SpecError", format!("invalid network spec: {e}"), &[])
}

/// An argument that does not fit (for checks made in this crate).
pub fn shape_err(py: Python<'_>, msg: String) -> PyErr {
    raise(py, "ShapeError", msg, &[])
}

/// An argument outside its range (for checks made in this crate).
pub fn invalid_arg(py: Python<'_>, msg: String) -> PyErr {
    raise(py, "InvalidArgumentError", msg, &[])
}
