//! The crate's error type: every failure names the offending layer, tensor
//! or file and the expected and found shape, dtype or value.

use std::path::PathBuf;

/// Everything that can go wrong when building a network, evaluating it or
/// reading and writing its files.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A width, class count or batch size that must be positive is zero.
    #[error("{what} must be positive, found 0")]
    ZeroSize {
        /// What is zero (`"input_dim"`, `"layers[2].out"`, ...).
        what: String,
    },
    /// An activation parameter outside its domain (a softplus `beta` that
    /// is not positive and finite, say).
    #[error("{activation} {parameter} must be {expected}, found {value}")]
    ActivationParameter {
        /// The activation (`"softplus"`).
        activation: &'static str,
        /// The parameter (`"beta"`, `"threshold"`).
        parameter: &'static str,
        /// The value given.
        value: f64,
        /// What the parameter must be.
        expected: &'static str,
    },
    /// A parameter vector of the wrong length.
    #[error("parameter vector has {found} entries, the network has {expected} parameters")]
    ParamLength {
        /// The network's parameter count.
        expected: usize,
        /// The length provided.
        found: usize,
    },
    /// Parameters whose per-layer split does not match the network.
    #[error("parameters are split into layers of sizes {found:?}, the network's layers have {expected:?}")]
    ParamLayout {
        /// The network's per-layer parameter counts.
        expected: Vec<usize>,
        /// The counts the parameters carry.
        found: Vec<usize>,
    },
    /// A matrix argument with the wrong shape.
    #[error("{what}: expected shape {expected:?}, found {found:?}")]
    Shape {
        /// Which argument.
        what: String,
        /// Expected `(rows, cols)`.
        expected: (usize, usize),
        /// Found `(rows, cols)`.
        found: (usize, usize),
    },
    /// A vector argument with the wrong length.
    #[error("{what}: expected length {expected}, found {found}")]
    Length {
        /// Which argument.
        what: String,
        /// Expected length.
        expected: usize,
        /// Found length.
        found: usize,
    },
    /// Class targets for a regression loss or the reverse.
    #[error("the {loss} loss needs {expected} targets, the batch holds {found} targets")]
    TargetKind {
        /// The loss of the network.
        loss: &'static str,
        /// The kind of targets it needs.
        expected: &'static str,
        /// The kind provided.
        found: &'static str,
    },
    /// A class index outside `0..classes`.
    #[error("class index {class} of sample {sample} is out of range: the network has {classes} classes")]
    ClassOutOfRange {
        /// The sample.
        sample: usize,
        /// The class found.
        class: i64,
        /// The number of classes.
        classes: usize,
    },
    /// Inputs and targets with different batch sizes.
    #[error("inputs hold {inputs} samples but targets hold {targets}")]
    BatchMismatch {
        /// Samples in the inputs.
        inputs: usize,
        /// Samples in the targets.
        targets: usize,
    },
    /// A class index outside `0..classes` in a targets file.
    #[error("{path}: class index {class} of sample {sample} is out of range: the network has {classes} classes")]
    FileClassOutOfRange {
        /// The targets file.
        path: PathBuf,
        /// The sample.
        sample: usize,
        /// The class found.
        class: i64,
        /// The number of classes.
        classes: usize,
    },
    /// Inputs and targets files with different batch sizes.
    #[error("{inputs_path} holds {inputs} samples but {targets_path} holds {targets}")]
    FileBatchMismatch {
        /// The inputs file.
        inputs_path: PathBuf,
        /// Samples in the inputs.
        inputs: usize,
        /// The targets file.
        targets_path: PathBuf,
        /// Samples in the targets.
        targets: usize,
    },
    /// A NaN or infinite number where finite numbers are required.
    #[error("{what} holds a non-finite value {value} at flat index {index}")]
    NonFinite {
        /// Which tensor or argument.
        what: String,
        /// Row-major flat index of the first bad entry.
        index: usize,
        /// The value.
        value: f64,
    },
    /// The loss layer is not the last layer, or a network has no loss layer.
    #[error("layer {index} ({name}) {reason}")]
    BadLayerChain {
        /// Index of the layer (0-based).
        index: usize,
        /// The layer's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A [`crate::Forward`] that does not belong to the network.
    #[error("forward pass has activation sizes {found:?}, the network expects {expected:?}")]
    ForwardMismatch {
        /// The sizes `a_0..a_L` the network expects for this batch size.
        expected: Vec<usize>,
        /// The sizes found.
        found: Vec<usize>,
    },
    /// A network of custom layers has no spec to save.
    #[error("this network is built from custom layers and has no JSON spec")]
    NoSpec,
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON spec that does not parse or does not follow the format.
    #[error("{path}: invalid network spec: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause (line and column included).
        source: serde_json::Error,
    },
    /// A file that the safetensors reader rejects.
    #[error("{path}: invalid safetensors file: {reason}")]
    SafeTensors {
        /// The file.
        path: PathBuf,
        /// The reader's message.
        reason: String,
    },
    /// A tensor the network needs is absent from the weights file.
    #[error("{path}: missing tensor `{name}` (expected shape {expected:?})")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// Its expected shape.
        expected: Vec<usize>,
    },
    /// A tensor in the weights file that the network has no use for.
    #[error("{path}: unexpected tensor `{name}` of shape {shape:?}: the network has no such parameter")]
    ExtraTensor {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A tensor or array with the wrong shape.
    #[error("{path}: `{name}` has shape {found:?}, expected {expected}")]
    FileShape {
        /// The file.
        path: PathBuf,
        /// The tensor name (or `"array"` for an npy file).
        name: String,
        /// The expected shape, in words when it has alternatives.
        expected: String,
        /// The shape found.
        found: Vec<u64>,
    },
    /// A tensor or array with an unsupported dtype.
    #[error("{path}: `{name}` has dtype {found}, expected {expected}")]
    FileDtype {
        /// The file.
        path: PathBuf,
        /// The tensor name (or `"array"` for an npy file).
        name: String,
        /// The accepted dtypes.
        expected: &'static str,
        /// The dtype found.
        found: String,
    },
    /// A network or batch whose memory would exceed the budget; refused
    /// before anything is allocated.
    #[error(
        "{what} would need {} ({needed} bytes), more than the {} available",
        crate::memory::human_bytes(*needed),
        crate::memory::human_bytes(u128::from(*limit))
    )]
    TooLarge {
        /// What would be allocated.
        what: String,
        /// Bytes it would need (saturating at `u128::MAX`).
        needed: u128,
        /// The budget in force, in bytes.
        limit: u64,
    },
    /// An npy file the reader rejects (bad header, Fortran order, truncated data).
    #[error("{path}: invalid npy file: {reason}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = NetError> = std::result::Result<T, E>;

/// The first non-finite entry of `values`, as an error naming `what`.
pub(crate) fn check_finite(what: impl FnOnce() -> String, values: impl IntoIterator<Item = f64>) -> Result<()> {
    match values.into_iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, value)) => Err(NetError::NonFinite { what: what(), index, value }),
        None => Ok(()),
    }
}
