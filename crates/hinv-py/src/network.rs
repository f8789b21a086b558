//! `hinv.Network`: a network built from its spec, and the conversions
//! between the weights as Python holds them (a dict of tensors named as in
//! the CLI's safetensors files, a list in `model.parameters()` order, or a
//! flat vector) and netgraph's flat [`Params`].

use netgraph::{Batch, LossSpec, NetSpec, Network, Params, Targets};
use numpy::PyArrayMethods;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::arrays::{as_f64, c_order, shape_of, vector};
use crate::errors::{net_err, shape_err, spec_err};

/// One tensor of the weights: its name, PyTorch shape and place in the
/// flat vector.
#[derive(Clone)]
pub struct Slot {
    pub name: String,
    pub shape: Vec<usize>,
    pub start: usize,
    pub len: usize,
}

/// A layered network (docs/spec.md): hidden `dense` and `residual` layers
/// and a final linear layer fused with the loss.
///
/// Build it with `Network.from_spec(spec)`, from a dict (or a JSON string)
/// in the format of the `hinv` CLI's `net.json`.
#[pyclass(module = "hinv", frozen, name = "Network")]
pub struct PyNetwork {
    pub net: Network,
    pub spec: NetSpec,
    pub slots: Vec<Slot>,
}

fn slots_of(net: &Network) -> Vec<Slot> {
    let names = netgraph::files::tensor_names(net);
    let mut names = names.into_iter();
    let mut out = Vec::new();
    let mut start = 0;
    for layer in net.layers() {
        let (p, nw, inp) = (layer.num_params(), layer.num_weights(), layer.in_features());
        if nw > 0 {
            let shape = vec![nw.checked_div(inp).unwrap_or(0), inp];
            out.push(Slot { name: names.next().unwrap_or_default(), shape, start, len: nw });
        }
        if p > nw {
            out.push(Slot {
                name: names.next().unwrap_or_default(),
                shape: vec![p - nw],
                start: start + nw,
                len: p - nw,
            });
        }
        start += p;
    }
    out
}

impl PyNetwork {
    /// The flat parameters from a dict, a list/tuple of arrays or a flat vector.
    pub fn params(&self, weights: &Bound<'_, PyAny>) -> PyResult<Params> {
        let py = weights.py();
        let n = self.net.num_params();
        let mut data = vec![0.0; n];
        let mut fill = |slot: &Slot, value: &Bound<'_, PyAny>| -> PyResult<()> {
            let a = as_f64(value)?;
            if shape_of(&a) != slot.shape {
                return Err(shape_err(
                    py,
                    format!("weights: `{}` has shape {:?}, expected {:?}", slot.name, shape_of(&a), slot.shape),
                ));
            }
            data[slot.start..slot.start + slot.len].copy_from_slice(&c_order(&a)?);
            Ok(())
        };
        if let Ok(dict) = weights.cast::<PyDict>() {
            for slot in &self.slots {
                let Some(value) = dict.get_item(&slot.name)? else {
                    return Err(shape_err(
                        py,
                        format!("weights: missing tensor `{}` (expected shape {:?})", slot.name, slot.shape),
                    ));
                };
                fill(slot, &value)?;
            }
            for key in dict.keys() {
                let key: String = key.str()?.extract()?;
                if !self.slots.iter().any(|s| s.name == key) {
                    let names: Vec<&str> = self.slots.iter().map(|s| s.name.as_str()).collect();
                    return Err(shape_err(
                        py,
                        format!("weights: unexpected tensor `{key}`: the network's tensors are {names:?}"),
                    ));
                }
            }
        } else if weights.cast::<PyList>().is_ok() || weights.cast::<PyTuple>().is_ok() {
            let items: Vec<Bound<'_, PyAny>> = weights.try_iter()?.collect::<PyResult<_>>()?;
            if items.len() != self.slots.len() {
                let shapes: Vec<&Vec<usize>> = self.slots.iter().map(|s| &s.shape).collect();
                return Err(shape_err(
                    py,
                    format!(
                        "weights: a list of {} arrays was given, the network has {} tensors of shapes {shapes:?}",
                        items.len(),
                        self.slots.len()
                    ),
                ));
            }
            for (slot, item) in self.slots.iter().zip(&items) {
                fill(slot, item)?;
            }
        } else {
            let a = as_f64(weights)?;
            if shape_of(&a) != [n] {
                return Err(shape_err(
                    py,
                    format!(
                        "weights: a flat vector must have shape ({n},) for the network's {n} parameters, found {:?}",
                        shape_of(&a)
                    ),
                ));
            }
            data = c_order(&a)?;
        }
        Params::from_vec(data, &self.net).map_err(|e| net_err(py, e))
    }

    /// A batch from inputs `(batch, input_dim)` and the loss's targets.
    pub fn batch(&self, x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>) -> PyResult<Batch> {
        let py = x.py();
        let xa = as_f64(x)?;
        let xs = shape_of(&xa);
        if xs.len() != 2 {
            return Err(shape_err(
                py,
                format!("inputs must have shape (batch, {}), found {xs:?}", self.net.input_dim()),
            ));
        }
        let xv = c_order(&xa)?;
        let inputs = faer::Mat::from_fn(xs[0], xs[1], |i, j| xv[i * xs[1] + j]);
        let targets = match self.spec.loss {
            LossSpec::CrossEntropy { .. } => Targets::Classes(classes(y, xs[0])?),
            LossSpec::Mse { outputs, .. } => {
                let ya = as_f64(y)?;
                let ys = shape_of(&ya);
                let ok = ys.len() == 2 || (ys.len() == 1 && outputs == 1);
                if !ok {
                    return Err(shape_err(py, format!("mse targets must have shape (batch, {outputs}), found {ys:?}")));
                }
                let cols = if ys.len() == 2 { ys[1] } else { 1 };
                let yv = c_order(&ya)?;
                Targets::Values(faer::Mat::from_fn(ys[0], cols, |i, j| yv[i * cols + j]))
            }
        };
        let batch = Batch::new(inputs, targets).map_err(|e| net_err(py, e))?;
        Ok(batch)
    }
}

/// Integer class indices of shape `(batch,)` or `(batch, 1)`; floats are
/// refused rather than truncated.
fn classes(y: &Bound<'_, PyAny>, batch: usize) -> PyResult<Vec<usize>> {
    let py = y.py();
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (y,))?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    if kind != "i" && kind != "u" {
        let dtype = arr.getattr("dtype")?.str()?.to_string();
        return Err(shape_err(
            py,
            format!("cross_entropy targets must be integer class indices, found dtype {dtype} (class probabilities are not supported)"),
        ));
    }
    let shape: Vec<usize> = arr.getattr("shape")?.extract()?;
    if !(shape == [batch] || shape == [batch, 1]) {
        return Err(shape_err(py, format!("cross_entropy targets must have shape ({batch},), found {shape:?}")));
    }
    let flat: Vec<i64> =
        arr.call_method1("astype", ("int64",))?.call_method0("ravel")?.call_method0("tolist")?.extract()?;
    flat.iter()
        .enumerate()
        .map(|(sample, &c)| {
            usize::try_from(c).map_err(|_| shape_err(py, format!("class index {c} of sample {sample} is negative")))
        })
        .collect()
}

#[pymethods]
impl PyNetwork {
    /// Builds a network from its spec: a dict (or a JSON string) in the format
    /// of docs/spec.md, e.g. ``{"input_dim": 4, "layers": [{"kind": "dense",
    /// "out": 8, "activation": "tanh", "bias": True}], "loss": {"kind":
    /// "cross_entropy", "classes": 3, "bias": True}}``.
    ///
    /// Raises SpecError for an invalid spec, InvalidArgumentError for a zero
    /// width, TooLargeError for parameters beyond the available memory.
    #[staticmethod]
    fn from_spec(spec: &Bound<'_, PyAny>) -> PyResult<PyNetwork> {
        let py = spec.py();
        let text: String = if let Ok(s) = spec.cast::<PyString>() {
            s.extract::<String>()?
        } else {
            py.import("json")?.call_method1("dumps", (spec,))?.extract()?
        };
        let parsed: NetSpec = serde_json::from_str(&text).map_err(|e| spec_err(py, e))?;
        let net = Network::from_spec(parsed.clone()).map_err(|e| net_err(py, e))?;
        let slots = slots_of(&net);
        Ok(PyNetwork { net, spec: parsed, slots })
    }

    /// The spec as a dict (what `from_spec` accepts).
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = serde_json::to_string(&self.spec).map_err(|e| spec_err(py, e))?;
        py.import("json")?.call_method1("loads", (text,))
    }

    /// Features per input sample.
    #[getter]
    fn input_dim(&self) -> usize {
        self.net.input_dim()
    }

    /// Number of parameters.
    #[getter]
    fn num_params(&self) -> usize {
        self.net.num_params()
    }

    /// Number of layers, the final (loss) layer included.
    #[getter]
    fn num_layers(&self) -> usize {
        self.net.num_layers()
    }

    /// ``"cross_entropy"`` or ``"mse"``.
    #[getter]
    fn loss_kind(&self) -> &'static str {
        match self.spec.loss {
            LossSpec::CrossEntropy { .. } => "cross_entropy",
            LossSpec::Mse { .. } => "mse",
        }
    }

    /// ``(name, shape)`` of every weight tensor in parameter order:
    /// ``layers.{i}.weight`` ``(out, in)``, ``layers.{i}.bias`` ``(out,)``,
    /// ``loss.weight``, ``loss.bias`` — the names and PyTorch shapes of the
    /// CLI's safetensors files.
    fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.slots.iter().map(|s| (s.name.clone(), s.shape.clone())).collect()
    }

    /// Seeded initialisation with PyTorch's ``nn.Linear`` default
    /// distribution, as a flat float64 vector.
    #[pyo3(signature = (seed = 0))]
    fn init_params<'py>(&self, py: Python<'py>, seed: u64) -> Bound<'py, numpy::PyArray1<f64>> {
        vector(py, self.net.init_params(seed).into_vec())
    }

    /// The flat float64 parameter vector of ``weights``: a dict
    /// ``{name: array}`` (see ``parameter_shapes``), a list of arrays in that
    /// order, or already a flat vector. Missing, extra or misshapen tensors
    /// raise ShapeError, NaN or infinity NonFiniteError.
    fn flatten<'py>(&self, py: Python<'py>, weights: &Bound<'py, PyAny>) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
        Ok(vector(py, self.params(weights)?.into_vec()))
    }

    /// A dict ``{name: array}`` of the tensors of a flat vector (copies).
    fn unflatten<'py>(&self, py: Python<'py>, v: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let a = as_f64(v)?;
        let n = self.net.num_params();
        if shape_of(&a) != [n] {
            return Err(shape_err(py, format!("unflatten: expected shape ({n},), found {:?}", shape_of(&a))));
        }
        let data = c_order(&a)?;
        let out = PyDict::new(py);
        for s in &self.slots {
            let t = vector(py, data[s.start..s.start + s.len].to_vec());
            out.set_item(&s.name, t.reshape(s.shape.clone())?)?;
        }
        Ok(out)
    }

    /// The batch loss at ``weights`` (forward pass only).
    fn loss(
        &self,
        py: Python<'_>,
        weights: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        let params = self.params(weights)?;
        let batch = self.batch(x, y)?;
        py.detach(|| self.net.loss(&params, &batch)).map_err(|e| net_err(py, e))
    }

    fn __repr__(&self) -> String {
        let text = serde_json::to_string(&self.spec).unwrap_or_default();
        format!("hinv.Network.from_spec({text})")
    }
}
