//! Files a PyTorch user brings: a JSON spec, safetensors weights and `.npy`
//! inputs and targets.

mod npy;
mod spec_file;
mod weights;

use std::path::Path;

use crate::error::NetError;

pub use npy::{load_batch, load_inputs, read_npy_vector, save_batch, save_npy, write_npy, write_npy_vector};
pub use spec_file::{load_spec, save_spec};
pub use weights::{load_weights, save_weights, tensor_names, Dtype};

/// Wraps an I/O error with its file.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> NetError + '_ {
    move |source| NetError::Io { path: path.to_path_buf(), source }
}
