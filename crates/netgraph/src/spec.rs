//! The serde network spec, the form of the JSON files users bring.

use serde::{Deserialize, Serialize};

use crate::activation::Activation;

/// A whole network: input width, hidden layers and the fused loss layer.
///
/// ```json
/// {"input_dim": 5,
///  "layers": [{"kind": "dense", "out": 10, "activation": "tanh", "bias": false},
///             {"kind": "dense", "out": 10, "activation": {"kind": "softplus", "beta": 2}, "bias": true},
///             {"kind": "residual", "activation": "gelu", "bias": true}],
///  "loss": {"kind": "cross_entropy", "classes": 3, "bias": false}}
/// ```
///
/// The complete format is the JSON Schema [`crate::SPEC_SCHEMA`]
/// (`hinv spec-schema` prints it); `docs/spec.md` explains each field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    /// Features per input sample.
    pub input_dim: usize,
    /// Hidden layers, input side first.
    pub layers: Vec<LayerSpec>,
    /// The final linear map fused with the loss.
    pub loss: LossSpec,
}

/// A hidden layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// `z -> act(z W^T + b)` with `W` of shape `out x in`.
    Dense {
        /// Output features.
        out: usize,
        /// The activation.
        activation: Activation,
        /// Whether the layer has a bias.
        bias: bool,
    },
    /// `z -> z + act(z W^T + b)` with a square `W`.
    Residual {
        /// The activation.
        activation: Activation,
        /// Whether the layer has a bias.
        bias: bool,
    },
}

/// The final linear layer and its loss (mean over the batch).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LossSpec {
    /// Linear map to `classes` logits and softmax cross-entropy with integer
    /// class targets (PyTorch `cross_entropy`, mean reduction).
    CrossEntropy {
        /// Number of classes.
        classes: usize,
        /// Whether the linear map has a bias.
        bias: bool,
    },
    /// Linear map to `outputs` values and the mean squared error over all
    /// `batch * outputs` elements (PyTorch `mse_loss`).
    Mse {
        /// Number of outputs.
        outputs: usize,
        /// Whether the linear map has a bias.
        bias: bool,
    },
}

impl LossSpec {
    /// Width of the final linear map.
    pub fn outputs(&self) -> usize {
        match *self {
            LossSpec::CrossEntropy { classes, .. } => classes,
            LossSpec::Mse { outputs, .. } => outputs,
        }
    }
    /// Whether the final linear map has a bias.
    pub fn bias(&self) -> bool {
        match *self {
            LossSpec::CrossEntropy { bias, .. } | LossSpec::Mse { bias, .. } => bias,
        }
    }
}

impl LayerSpec {
    /// Output features of the layer given its input features.
    pub fn out_features(&self, input: usize) -> usize {
        match *self {
            LayerSpec::Dense { out, .. } => out,
            LayerSpec::Residual { .. } => input,
        }
    }
}
