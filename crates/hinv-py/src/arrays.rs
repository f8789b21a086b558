//! numpy arrays in and out: inputs are read through a view of the caller's
//! array (converted to float64 by `numpy.asarray` only when they are not
//! already), outputs are handed to numpy without a copy.

use faer::{Mat, MatRef};
use numpy::ndarray::{Array2, ShapeBuilder};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::shape_err;

/// `numpy.asarray(obj, dtype=numpy.float64)`: no copy for a float64 array.
pub fn as_f64<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    if let Ok(a) = obj.cast::<PyArrayDyn<f64>>() {
        return Ok(a.clone());
    }
    let py = obj.py();
    let np = py.import("numpy")?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("dtype", np.getattr("float64")?)?;
    Ok(np.call_method("asarray", (obj,), Some(&kwargs))?.cast_into::<PyArrayDyn<f64>>()?)
}

/// The entries of `a` in C order, copied (the caller may mutate its array
/// while the GIL is released).
pub fn c_order(a: &Bound<'_, PyArrayDyn<f64>>) -> PyResult<Vec<f64>> {
    let ro = a.try_readonly()?;
    // `as_slice` also accepts Fortran-contiguous arrays, whose memory order
    // is not C order.
    if a.is_c_contiguous() {
        if let Ok(s) = ro.as_slice() {
            return Ok(s.to_vec());
        }
    }
    Ok(ro.as_array().iter().copied().collect())
}

/// A 1-D `(n,)` or 2-D `(n, k)` float array, as `n x k` columns.
pub struct Columns {
    pub mat: Mat<f64>,
    pub one_d: bool,
}

/// Reads a vector or a matrix of columns, refusing other ranks.
pub fn columns(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Columns> {
    let py = obj.py();
    let a = as_f64(obj)?;
    let ro = a.try_readonly()?;
    let view = ro.as_array();
    match *view.shape() {
        [n] => {
            let data: Vec<f64> = match ro.as_slice() {
                Ok(s) => s.to_vec(),
                Err(_) => view.iter().copied().collect(),
            };
            Ok(Columns { mat: Mat::from_fn(n, 1, |i, _| data[i]), one_d: true })
        }
        [n, k] => Ok(Columns { mat: Mat::from_fn(n, k, |i, j| view[[i, j]]), one_d: false }),
        ref s => Err(shape_err(py, format!("{what} must be 1-D (n,) or 2-D (n, k), found shape {s:?}"))),
    }
}

/// A 1-D array owning `v`.
pub fn vector<'py>(py: Python<'py>, v: Vec<f64>) -> Bound<'py, PyArray1<f64>> {
    v.into_pyarray(py)
}

/// An `(n, k)` array of the columns of `m` (Fortran order: one copy, out of
/// faer's padded storage).
pub fn matrix<'py>(py: Python<'py>, m: MatRef<'_, f64>) -> Bound<'py, PyArray2<f64>> {
    let (n, k) = (m.nrows(), m.ncols());
    let mut data = Vec::with_capacity(n * k);
    for j in 0..k {
        data.extend(m.col(j).iter().copied());
    }
    let arr = Array2::from_shape_vec((n, k).f(), data).unwrap_or_else(|_| Array2::zeros((n, k).f()));
    arr.into_pyarray(py)
}

/// `columns` answered in the caller's rank: a 1-D array for a 1-D input.
pub fn answer<'py>(py: Python<'py>, m: MatRef<'_, f64>, one_d: bool) -> Bound<'py, PyAny> {
    if one_d {
        vector(py, m.col(0).iter().copied().collect()).into_any()
    } else {
        matrix(py, m).into_any()
    }
}

/// The array's shape, for messages.
pub fn shape_of(a: &Bound<'_, PyArrayDyn<f64>>) -> Vec<usize> {
    a.shape().to_vec()
}
