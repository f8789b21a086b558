//! Weights in safetensors files, with PyTorch's names and shapes:
//! `layers.{i}.weight` (`out x in`), `layers.{i}.bias` (`out`) for hidden
//! layer `i`, and `loss.weight`, `loss.bias` for the final layer.

use std::collections::BTreeSet;
use std::path::Path;

use safetensors::tensor::{SafeTensors, TensorView};

use crate::error::{NetError, Result};
use crate::files::io_err;
use crate::network::Network;
use crate::params::Params;

/// Floating-point precision of a saved file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// 32-bit floats.
    F32,
    /// 64-bit floats.
    F64,
}

/// One tensor of the file: its name, shape and range in the flat parameters.
struct Slot {
    name: String,
    shape: Vec<usize>,
    start: usize,
    len: usize,
}

fn slots(net: &Network) -> Vec<Slot> {
    let mut out = Vec::new();
    let mut start = 0;
    let n = net.num_layers();
    for (i, layer) in net.layers().iter().enumerate() {
        let prefix = if i + 1 == n { "loss".to_string() } else { format!("layers.{i}") };
        let (p, nw, inp) = (layer.num_params(), layer.num_weights(), layer.in_features());
        let rows = nw.checked_div(inp).unwrap_or(0);
        if nw > 0 {
            out.push(Slot { name: format!("{prefix}.weight"), shape: vec![rows, inp], start, len: nw });
        }
        if p > nw {
            out.push(Slot { name: format!("{prefix}.bias"), shape: vec![p - nw], start: start + nw, len: p - nw });
        }
        start += p;
    }
    out
}

/// The tensor names the network's weights file holds, in parameter order.
pub fn tensor_names(net: &Network) -> Vec<String> {
    slots(net).into_iter().map(|s| s.name).collect()
}

/// Reads weights (f32 or f64) from a safetensors file. Missing or extra
/// tensors, wrong shapes or dtypes and non-finite values are errors naming
/// the tensor.
pub fn load_weights(net: &Network, path: impl AsRef<Path>) -> Result<Params> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| NetError::SafeTensors { path: path.to_path_buf(), reason: e.to_string() })?;
    let slots = slots(net);
    let expected: BTreeSet<&str> = slots.iter().map(|s| s.name.as_str()).collect();
    let mut names: Vec<&str> = st.names();
    names.sort_unstable();
    if let Some(extra) = names.iter().find(|n| !expected.contains(**n)) {
        let shape = st.tensor(extra).map(|t| t.shape().to_vec()).unwrap_or_default();
        return Err(NetError::ExtraTensor { path: path.to_path_buf(), name: extra.to_string(), shape });
    }
    let mut data = vec![0.0; net.num_params()];
    for slot in &slots {
        let t = st.tensor(&slot.name).map_err(|_| NetError::MissingTensor {
            path: path.to_path_buf(),
            name: slot.name.clone(),
            expected: slot.shape.clone(),
        })?;
        if t.shape() != slot.shape.as_slice() {
            return Err(NetError::FileShape {
                path: path.to_path_buf(),
                name: slot.name.clone(),
                expected: format!("{:?}", slot.shape),
                found: t.shape().iter().map(|&d| d as u64).collect(),
            });
        }
        let dst = &mut data[slot.start..slot.start + slot.len];
        match t.dtype() {
            safetensors::Dtype::F64 => {
                for (d, c) in dst.iter_mut().zip(t.data().chunks_exact(8)) {
                    *d = f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
                }
            }
            safetensors::Dtype::F32 => {
                for (d, c) in dst.iter_mut().zip(t.data().chunks_exact(4)) {
                    *d = f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                }
            }
            other => {
                return Err(NetError::FileDtype {
                    path: path.to_path_buf(),
                    name: slot.name.clone(),
                    expected: "F32 or F64",
                    found: format!("{other:?}"),
                })
            }
        }
        if let Some((index, &value)) = dst.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(NetError::NonFinite {
                what: format!("{}: tensor `{}`", path.display(), slot.name),
                index,
                value,
            });
        }
    }
    Params::from_vec(data, net)
}

/// Writes the parameters as a safetensors file in `dtype` (f32 rounds).
pub fn save_weights(net: &Network, params: &Params, path: impl AsRef<Path>, dtype: Dtype) -> Result<()> {
    let path = path.as_ref();
    if params.len() != net.num_params() {
        return Err(NetError::ParamLength { expected: net.num_params(), found: params.len() });
    }
    let slots = slots(net);
    let buffers: Vec<Vec<u8>> = slots
        .iter()
        .map(|s| {
            let vals = &params.as_slice()[s.start..s.start + s.len];
            match dtype {
                Dtype::F64 => vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
                Dtype::F32 => vals.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect(),
            }
        })
        .collect();
    let st_dtype = match dtype {
        Dtype::F64 => safetensors::Dtype::F64,
        Dtype::F32 => safetensors::Dtype::F32,
    };
    let views = slots
        .iter()
        .zip(&buffers)
        .map(|(s, b)| {
            TensorView::new(st_dtype, s.shape.clone(), b)
                .map(|v| (s.name.clone(), v))
                .map_err(|e| NetError::SafeTensors { path: path.to_path_buf(), reason: e.to_string() })
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize_to_file(views, None, path)
        .map_err(|e| NetError::SafeTensors { path: path.to_path_buf(), reason: e.to_string() })
}
