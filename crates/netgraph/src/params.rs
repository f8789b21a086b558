//! The flat parameter vector with per-layer views.

use crate::error::{check_finite, NetError, Result};
use crate::network::Network;

/// All parameters `x = (x_1, ..., x_L)` in one vector, each layer's block
/// holding its weights (row-major `out x in`) then its bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub(crate) data: Vec<f64>,
    /// Offsets of the layers' blocks, length `L + 1`.
    pub(crate) offsets: Vec<usize>,
    /// Number of leading weights (not biases) in each layer's block.
    pub(crate) weights: Vec<usize>,
}

impl Params {
    /// Wraps a flat vector for `net`; fails on a wrong length or a non-finite entry.
    pub fn from_vec(v: Vec<f64>, net: &Network) -> Result<Params> {
        if v.len() != net.num_params() {
            return Err(NetError::ParamLength { expected: net.num_params(), found: v.len() });
        }
        check_finite(|| "parameters".into(), v.iter().copied())?;
        Ok(Params { data: v, offsets: blockmat::offsets(&net.param_counts()), weights: net.weight_counts() })
    }

    /// The flat vector.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }
    /// Mutable access to the flat vector (the layout cannot change).
    pub fn as_mut_slice(&mut self) -> &mut [f64] {
        &mut self.data
    }
    /// Consumes the parameters, returning the flat vector.
    pub fn into_vec(self) -> Vec<f64> {
        self.data
    }
    /// Total number of parameters.
    pub fn len(&self) -> usize {
        self.data.len()
    }
    /// True for a network without parameters.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.weights.len()
    }
    /// Per-layer parameter counts.
    pub fn counts(&self) -> Vec<usize> {
        self.offsets.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// The parameters of layer `l`, **0-based** (`l = 0` is the first hidden
    /// layer, `num_layers() - 1` the loss layer); empty when out of range.
    pub fn layer(&self, l: usize) -> &[f64] {
        match (self.offsets.get(l), self.offsets.get(l + 1)) {
            (Some(&a), Some(&b)) => &self.data[a..b],
            _ => &[],
        }
    }

    /// Multiplies every weight (not the biases) by `gain`, as for a gain
    /// sweep from a default initialisation.
    pub fn scale(&mut self, gain: f64) {
        for (l, &nw) in self.weights.iter().enumerate() {
            let start = self.offsets[l];
            for v in &mut self.data[start..start + nw] {
                *v *= gain;
            }
        }
    }
}
