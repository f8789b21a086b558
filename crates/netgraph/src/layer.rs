//! The [`Layer`] trait: what a layer must provide so the network can run it
//! and differentiate it twice, and the five blocks it returns.

use blockmat::Block;
use faer::{Mat, MatRef};
use rand_chacha::ChaCha8Rng;

use std::sync::Arc;

use crate::batch::Targets;
use crate::product::LayerProduct;

/// The five derivative blocks of one layer (see `ALGORITHM.md`), with
/// `b_l` the row vector `dz_L/dz_l` and `phi_l = b_l . f_l(z_{l-1}; x_l)`:
///
/// | field | meaning | shape |
/// |---|---|---|
/// | `dx` | `dz_l/dx_l` | `a_l x p_l` |
/// | `dz` | `dz_l/dz_{l-1}` | `a_l x a_{l-1}` |
/// | `a`  | `d2 phi_l/dx dx` | `p_l x p_l` |
/// | `g`  | `d2 phi_l/dx dz` | `p_l x a_{l-1}` |
/// | `e`  | `d2 phi_l/dz dz` | `a_{l-1} x a_{l-1}` |
#[derive(Debug, Clone)]
pub struct LayerBlocks {
    /// `dz_l/dx_l`.
    pub dx: Block,
    /// `dz_l/dz_{l-1}`.
    pub dz: Block,
    /// `d2 phi_l/dx dx`.
    pub a: Block,
    /// `d2 phi_l/dx dz`.
    pub g: Block,
    /// `d2 phi_l/dz dz`.
    pub e: Block,
}

/// A first layer's blocks: `dx` and `a` as given, `Dz`, `G` and `E` zero
/// blocks for an input of `a_in` activations (shapes from `dx`).
pub(crate) fn first_layer_blocks(dx: Block, a: Block, a_in: usize) -> LayerBlocks {
    let (a_out, p) = dx.shape();
    LayerBlocks { dx, dz: Block::zeros(a_out, a_in), a, g: Block::zeros(p, a_in), e: Block::zeros(a_in, a_in) }
}

impl LayerBlocks {
    /// The blocks with their names, in the order `Dx, Dz, A, G, E`.
    pub fn named(&self) -> [(&'static str, &Block); 5] {
        [("Dx", &self.dx), ("Dz", &self.dz), ("A", &self.a), ("G", &self.g), ("E", &self.e)]
    }
}

/// A layer `z_l = f(z_{l-1}; x_l)` of a network.
///
/// Activations are `batch x features` matrices flattened row-major (index
/// `s * features + i`); a loss layer returns a `1 x 1` matrix (the scalar
/// loss) and must be the last layer. The network checks every shape before
/// calling a method, so implementations may assume:
/// `x.len() == num_params()`, `z.ncols() == in_features()`,
/// `b_out.len() == output_len(z.nrows())`, and for a loss layer that the
/// targets fit (see [`Layer::check_targets`]). Called directly with
/// inconsistent shapes, the built-in layers panic (index out of bounds);
/// [`crate::check_layer`] validates before calling.
pub trait Layer: Send + Sync + std::fmt::Debug {
    /// A short description for messages (`"dense 5->10 tanh"`).
    fn name(&self) -> String;
    /// Features per input sample.
    fn in_features(&self) -> usize;
    /// Features per output sample (the loss layer: 1, the scalar loss).
    fn out_features(&self) -> usize;
    /// True for a layer fused with the loss: its output is one scalar.
    fn is_loss(&self) -> bool {
        false
    }
    /// Length of the flattened output `a_l` for a batch of `batch` samples.
    fn output_len(&self, batch: usize) -> usize {
        if self.is_loss() {
            1
        } else {
            batch * self.out_features()
        }
    }
    /// Number of parameters `p_l`.
    fn num_params(&self) -> usize;
    /// How many leading parameters are weights (scaled by `Params::scale`);
    /// the rest are biases.
    fn num_weights(&self) -> usize {
        self.num_params()
    }
    /// Fills `out` (length `num_params()`) with a random initialisation.
    fn init(&self, rng: &mut ChaCha8Rng, out: &mut [f64]);
    /// Whether the targets suit this layer (only loss layers look at them).
    fn check_targets(&self, _targets: &Targets) -> crate::Result<()> {
        Ok(())
    }
    /// The forward map.
    fn forward(&self, x: &[f64], z: MatRef<'_, f64>, targets: &Targets) -> Mat<f64>;
    /// The vector-Jacobian products `(b_out Dx, b_out Dz)`: this layer's
    /// gradient and the `b` of the layer below.
    fn vjp(&self, x: &[f64], z: MatRef<'_, f64>, targets: &Targets, b_out: &[f64]) -> (Vec<f64>, Vec<f64>);
    /// The five derivative blocks at `(x, z)` with `b_l = b_out`.
    fn blocks(&self, x: &[f64], z: MatRef<'_, f64>, targets: &Targets, b_out: &[f64]) -> LayerBlocks;
    /// The blocks of this layer as a network's first, whose input is data
    /// and not an unknown: `Dz`, `G` and `E`, the derivatives with respect
    /// to the input, never enter the Hessian there and are zero blocks of
    /// their shapes. The default computes [`Layer::blocks`] and drops them;
    /// a layer whose input derivatives are costly overrides it (a dense
    /// layer reading 784 pixels would otherwise fill a `p x 784 batch` `G`).
    fn first_blocks(&self, x: &[f64], z: MatRef<'_, f64>, targets: &Targets, b_out: &[f64]) -> LayerBlocks {
        let blocks = self.blocks(x, z, targets, b_out);
        let a_in = blocks.e.nrows();
        first_layer_blocks(blocks.dx, blocks.a, a_in)
    }
    /// The blocks of this layer in the generalized Gauss–Newton matrix,
    /// as a hidden layer: `Dx` and `Dz` as [`Layer::blocks`] (or
    /// [`Layer::first_blocks`] when `first`) gives them, `A`, `G` and `E`
    /// zero blocks. The default computes all five and drops three; a layer
    /// whose second derivatives are costly overrides it (a dense layer's
    /// `G` alone is `p x batch in`).
    fn gauss_newton_blocks(
        &self,
        x: &[f64],
        z: MatRef<'_, f64>,
        targets: &Targets,
        b_out: &[f64],
        first: bool,
    ) -> LayerBlocks {
        let b = if first { self.first_blocks(x, z, targets, b_out) } else { self.blocks(x, z, targets, b_out) };
        let (p, a_in) = b.g.shape();
        LayerBlocks { a: Block::zeros(p, p), g: Block::zeros(p, a_in), e: Block::zeros(a_in, a_in), ..b }
    }
    /// For a loss layer `z_L = l(o(z; x))`: the outputs `o`, their
    /// Jacobians and the loss's Hessian `Lambda` with respect to them
    /// ([`crate::ggn::OutputCurvature`]), from which the Gauss–Newton
    /// blocks are built. `None` (the default) for layers that cannot
    /// provide them: [`crate::Network::ggn_derivatives`] then refuses.
    fn output_curvature(&self, _x: &[f64], _z: MatRef<'_, f64>) -> Option<crate::ggn::OutputCurvature> {
        None
    }
    /// This layer's products with its five blocks, computed from its
    /// weights and activations ([`LayerProduct`]), which Hessian-vector
    /// products then use instead of the formed blocks. `None` (the
    /// default): the products read the blocks. Arguments as for
    /// [`Layer::blocks`].
    fn product(
        &self,
        _x: &[f64],
        _z: MatRef<'_, f64>,
        _targets: &Targets,
        _b_out: &[f64],
    ) -> Option<Arc<dyn LayerProduct>> {
        None
    }
}
