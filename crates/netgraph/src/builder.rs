//! [`NetworkBuilder`]: a network written the way it reads, layer by layer,
//! validated like a spec.

use crate::activation::Activation;
use crate::error::Result;
use crate::network::Network;
use crate::spec::{LayerSpec, LossSpec};

/// Builds a [`Network`] layer by layer; the loss closes it and validates
/// the whole, as [`Network::new`] does.
///
/// ```
/// use netgraph::{Activation, Network};
///
/// // Input 5, 30 tanh layers of width 10 without biases, 3 classes.
/// let net = Network::builder(5).without_bias().dense(10, Activation::Tanh).repeat(30).cross_entropy(3)?;
/// assert_eq!(net.num_layers(), 31);
/// assert!(Network::builder(5).dense(0, Activation::Tanh).cross_entropy(3).is_err());
/// # Ok::<(), netgraph::NetError>(())
/// ```
#[derive(Debug, Clone)]
pub struct NetworkBuilder {
    input_dim: usize,
    layers: Vec<LayerSpec>,
    bias: bool,
}

impl Network {
    /// A [`NetworkBuilder`] for inputs of `input_dim` features. Layers have
    /// biases (PyTorch's `nn.Linear` default) until
    /// [`NetworkBuilder::without_bias`].
    pub fn builder(input_dim: usize) -> NetworkBuilder {
        NetworkBuilder { input_dim, layers: Vec::new(), bias: true }
    }
}

impl NetworkBuilder {
    /// The layers added from now on, and the loss layer, have no bias.
    pub fn without_bias(mut self) -> Self {
        self.bias = false;
        self
    }

    /// A dense layer `z = act(W u + b)` with `out` units.
    pub fn dense(mut self, out: usize, activation: Activation) -> Self {
        self.layers.push(LayerSpec::Dense { out, activation, bias: self.bias });
        self
    }

    /// A residual layer `z = u + act(W u + b)` (as wide as its input).
    pub fn residual(mut self, activation: Activation) -> Self {
        self.layers.push(LayerSpec::Residual { activation, bias: self.bias });
        self
    }

    /// Makes the last layer appear `times` times in a row (`repeat(1)`
    /// changes nothing, `repeat(0)` removes it; nothing happens before the
    /// first layer).
    pub fn repeat(mut self, times: usize) -> Self {
        if let Some(last) = self.layers.pop() {
            self.layers.extend(std::iter::repeat_n(last, times));
        }
        self
    }

    /// Closes the network with a softmax cross-entropy over `classes`.
    ///
    /// # Errors
    /// As [`Network::new`]: zero sizes, or parameters beyond the memory.
    pub fn cross_entropy(self, classes: usize) -> Result<Network> {
        let bias = self.bias;
        self.finish(LossSpec::CrossEntropy { classes, bias })
    }

    /// Closes the network with a mean squared error over `outputs` values.
    ///
    /// # Errors
    /// As [`Network::new`].
    pub fn mse(self, outputs: usize) -> Result<Network> {
        let bias = self.bias;
        self.finish(LossSpec::Mse { outputs, bias })
    }

    fn finish(self, loss: LossSpec) -> Result<Network> {
        Network::new(self.input_dim, self.layers, loss)
    }
}
