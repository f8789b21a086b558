//! [`Network`]: a chain of layers ending in a fused loss layer, with its
//! forward and backward passes.

use std::sync::Arc;

use faer::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::batch::{Batch, Targets};
use crate::dense::Dense;
use crate::error::{NetError, Result};
use crate::layer::Layer;
use crate::loss::{LossKind, LossLayer};
use crate::params::Params;
use crate::spec::{LayerSpec, LossSpec, NetSpec};

/// A network `z_l = f_l(z_{l-1}; x_l)`, `l = 1..L`, whose last layer fuses
/// the final linear map with the loss (so `z_L` is the scalar batch loss).
#[derive(Debug, Clone)]
pub struct Network {
    input_dim: usize,
    layers: Vec<Arc<dyn Layer>>,
    spec: Option<NetSpec>,
}

/// What the forward pass keeps for the backward pass and the derivatives.
#[derive(Debug, Clone)]
pub struct Forward {
    /// `z_0, ..., z_L`: `batch x features` each, `z_L` the `1 x 1` loss.
    pub activations: Vec<Mat<f64>>,
    /// The loss `z_L`.
    pub loss: f64,
    pub(crate) targets: Targets,
}

/// The result of the backward pass.
#[derive(Debug, Clone)]
pub struct Backward {
    /// `dz_L/dx`, flat.
    pub gradient: Vec<f64>,
    /// `b_l = dz_L/dz_l` for `l = 0..L` (flat, row-major; `b_L = [1]`).
    pub b: Vec<Vec<f64>>,
}

impl Network {
    /// A network from its input width, hidden layers and loss; fails on a
    /// zero width or class count.
    pub fn new(input_dim: usize, layers: Vec<LayerSpec>, loss: LossSpec) -> Result<Network> {
        Network::from_spec(NetSpec { input_dim, layers, loss })
    }

    /// A network from a spec; see [`Network::new`]. A spec whose parameters
    /// would need more than the available memory ([`crate::memory::default_limit`])
    /// is refused with [`NetError::TooLarge`] before anything is allocated.
    pub fn from_spec(spec: NetSpec) -> Result<Network> {
        Network::from_spec_within(spec, crate::memory::default_limit())
    }

    /// [`Network::from_spec`] with an explicit budget: refuses a spec whose
    /// parameters would need more than `limit` bytes.
    pub fn from_spec_within(spec: NetSpec, limit: u64) -> Result<Network> {
        if spec.input_dim == 0 {
            return Err(NetError::ZeroSize { what: "input_dim".into() });
        }
        for (i, l) in spec.layers.iter().enumerate() {
            if let LayerSpec::Dense { out: 0, .. } = l {
                return Err(NetError::ZeroSize { what: format!("layers[{i}].out") });
            }
        }
        if spec.loss.outputs() == 0 {
            let what = match spec.loss {
                LossSpec::CrossEntropy { .. } => "loss.classes",
                LossSpec::Mse { .. } => "loss.outputs",
            };
            return Err(NetError::ZeroSize { what: what.into() });
        }
        crate::memory::check_spec(&spec, limit)?;
        Ok(Network::build(spec))
    }

    /// Builds the layers of a spec without validation (zero widths give
    /// empty matrices, never a panic).
    fn build(spec: NetSpec) -> Network {
        let mut width = spec.input_dim;
        let mut layers: Vec<Arc<dyn Layer>> = Vec::with_capacity(spec.layers.len() + 1);
        for l in &spec.layers {
            let layer = match *l {
                LayerSpec::Dense { out, activation, bias } => Dense::new(width, out, activation, bias),
                LayerSpec::Residual { activation, bias } => Dense::residual(width, activation, bias),
            };
            width = layer.out_features();
            layers.push(Arc::new(layer));
        }
        let (out, bias, kind) = match spec.loss {
            LossSpec::CrossEntropy { classes, bias } => (classes, bias, LossKind::CrossEntropy),
            LossSpec::Mse { outputs, bias } => (outputs, bias, LossKind::Mse),
        };
        layers.push(Arc::new(LossLayer::new(width, out, bias, kind)));
        Network { input_dim: spec.input_dim, layers, spec: Some(spec) }
    }

    /// A network of user-provided layers (see [`Layer`]): widths must chain,
    /// the last layer and only it must be a loss layer. Such a network has
    /// no [`NetSpec`].
    pub fn from_layers(input_dim: usize, layers: Vec<Box<dyn Layer>>) -> Result<Network> {
        let mut width = input_dim;
        let n = layers.len();
        if n == 0 {
            return Err(NetError::ZeroSize { what: "number of layers".into() });
        }
        for (i, l) in layers.iter().enumerate() {
            let fail = |reason: String| NetError::BadLayerChain { index: i, name: l.name(), reason };
            if l.in_features() != width {
                return Err(fail(format!("takes {} input features but receives {width}", l.in_features())));
            }
            if l.is_loss() != (i + 1 == n) {
                let reason = if l.is_loss() {
                    "is a loss layer but not the last"
                } else {
                    "is the last layer but not a loss layer"
                };
                return Err(fail(reason.into()));
            }
            width = l.out_features();
        }
        Ok(Network { input_dim, layers: layers.into_iter().map(Arc::from).collect(), spec: None })
    }

    /// Features per input sample.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }
    /// Number of layers `L` (hidden layers plus the loss layer).
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }
    /// The layers, input side first.
    pub fn layers(&self) -> &[Arc<dyn Layer>] {
        &self.layers
    }
    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.layers.iter().map(|l| l.num_params()).sum()
    }
    /// `p_l` for `l = 1..L` (index 0 is the first layer).
    pub fn param_counts(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.num_params()).collect()
    }
    /// Leading weights (as opposed to biases) of each layer.
    pub(crate) fn weight_counts(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.num_weights()).collect()
    }
    /// `a_0, ..., a_L` for a batch of `batch` samples (`a_L = 1`).
    pub fn act_sizes(&self, batch: usize) -> Vec<usize> {
        std::iter::once(batch * self.input_dim).chain(self.layers.iter().map(|l| l.output_len(batch))).collect()
    }
    /// The serialisable spec; `None` for a network of custom layers.
    pub fn spec(&self) -> Option<NetSpec> {
        self.spec.clone()
    }
    /// The spec without a copy.
    pub(crate) fn spec_ref(&self) -> Option<&NetSpec> {
        self.spec.as_ref()
    }

    /// Seeded initialisation with PyTorch's `nn.Linear` default, every
    /// parameter `U(-1/sqrt(in), 1/sqrt(in))`, layer by layer, weights then bias.
    pub fn init_params(&self, seed: u64) -> Params {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let counts = self.param_counts();
        let offsets = blockmat::offsets(&counts);
        let mut data = vec![0.0; self.num_params()];
        for (l, layer) in self.layers.iter().enumerate() {
            layer.init(&mut rng, &mut data[offsets[l]..offsets[l + 1]]);
        }
        Params { data, offsets, weights: self.weight_counts() }
    }

    /// Checks that `params` and `batch` fit this network.
    pub fn check(&self, params: &Params, batch: &Batch) -> Result<()> {
        self.check_params(params)?;
        let (b, f) = (batch.inputs.nrows(), batch.inputs.ncols());
        if f != self.input_dim {
            return Err(NetError::Shape { what: "inputs".into(), expected: (b, self.input_dim), found: (b, f) });
        }
        match self.layers.last() {
            Some(l) => l.check_targets(&batch.targets),
            None => Ok(()),
        }
    }

    fn check_params(&self, params: &Params) -> Result<()> {
        if params.len() != self.num_params() {
            return Err(NetError::ParamLength { expected: self.num_params(), found: params.len() });
        }
        if params.counts() != self.param_counts() {
            return Err(NetError::ParamLayout { expected: self.param_counts(), found: params.counts() });
        }
        Ok(())
    }

    /// The forward pass, keeping every activation.
    pub fn forward(&self, params: &Params, batch: &Batch) -> Result<Forward> {
        self.check(params, batch)?;
        let mut activations = Vec::with_capacity(self.layers.len() + 1);
        activations.push(batch.inputs.clone());
        for (l, layer) in self.layers.iter().enumerate() {
            let z = layer.forward(params.layer(l), activations[l].as_ref(), &batch.targets);
            activations.push(z);
        }
        let loss =
            activations.last().map_or(f64::NAN, |z| if z.nrows() * z.ncols() == 1 { z[(0, 0)] } else { f64::NAN });
        Ok(Forward { activations, loss, targets: batch.targets.clone() })
    }

    /// The batch loss.
    pub fn loss(&self, params: &Params, batch: &Batch) -> Result<f64> {
        Ok(self.forward(params, batch)?.loss)
    }

    /// The backward pass: the gradient and every `b_l`. Fails when `params`
    /// or `fwd` do not belong to this network.
    pub fn backward(&self, params: &Params, fwd: &Forward) -> Result<Backward> {
        self.check_params(params)?;
        let batch = fwd.activations.first().map_or(0, |z| z.nrows());
        let sizes = self.act_sizes(batch);
        let found: Vec<usize> = fwd.activations.iter().map(|z| z.nrows() * z.ncols()).collect();
        if found != sizes {
            return Err(NetError::ForwardMismatch { expected: sizes, found });
        }
        if let Some(last) = self.layers.last() {
            last.check_targets(&fwd.targets)?;
        }
        let nl = self.layers.len();
        let mut b = vec![Vec::new(); nl + 1];
        b[nl] = vec![1.0];
        let offsets = blockmat::offsets(&self.param_counts());
        let mut gradient = vec![0.0; self.num_params()];
        for l in (0..nl).rev() {
            let (gx, bz) = self.layers[l].vjp(params.layer(l), fwd.activations[l].as_ref(), &fwd.targets, &b[l + 1]);
            let layer = &self.layers[l];
            if gx.len() != offsets[l + 1] - offsets[l] || bz.len() != sizes[l] {
                return Err(NetError::BadLayerChain {
                    index: l,
                    name: layer.name(),
                    reason: format!(
                        "returned vjp lengths ({}, {}), expected ({}, {})",
                        gx.len(),
                        bz.len(),
                        offsets[l + 1] - offsets[l],
                        sizes[l]
                    ),
                });
            }
            gradient[offsets[l]..offsets[l + 1]].copy_from_slice(&gx);
            b[l] = bz;
        }
        Ok(Backward { gradient, b })
    }

    /// The loss and its gradient.
    pub fn gradient(&self, params: &Params, batch: &Batch) -> Result<(f64, Vec<f64>)> {
        let fwd = self.forward(params, batch)?;
        let bwd = self.backward(params, &fwd)?;
        Ok((fwd.loss, bwd.gradient))
    }
}
