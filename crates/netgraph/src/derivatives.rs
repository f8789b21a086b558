//! All layers' derivative blocks at once, and the dense Hessian by finite
//! differences (the independent route used by tests).

use std::sync::Arc;

use faer::Mat;
use rayon::prelude::*;

use crate::batch::Batch;
use crate::error::{NetError, Result};
use crate::layer::{Layer, LayerBlocks};
use crate::network::Network;
use crate::params::Params;
use crate::product::LayerProduct;

/// Rough flops, summed over the layers ([`block_flops`]), from which the
/// layers' blocks are computed on several rayon threads. Below it, handing
/// layers to a sleeping thread costs more than it saves: `cargo run
/// --release -p hinv --example phase_times -- 16 4 2 101` computed the
/// blocks in 0.11 ms split across two threads (at `4ca017e`, which always
/// split) and computes them in 0.08 ms on one.
const SPLIT_LAYERS_MIN_FLOPS: f64 = 1e6;

/// What computing one layer's blocks costs, roughly, in flops: about
/// `4 p (a_in + a_out)` for a dense layer's `A`, `G`, `E` and `Dx`, and a
/// fixed cost per layer for the calls and buffers.
fn block_flops(params: usize, a_in: usize, a_out: usize) -> f64 {
    const PER_LAYER: f64 = 2e4;
    PER_LAYER + 4.0 * params as f64 * (a_in + a_out) as f64
}

/// Everything the Hessian solver needs from a network at one point.
#[derive(Debug, Clone)]
pub struct Derivatives {
    /// The blocks of layers `1..L` (index 0 is layer 1). Layer 1 reads
    /// data, so its input derivatives `Dz`, `G` and `E` are zero blocks
    /// ([`crate::Layer::first_blocks`]).
    pub layers: Vec<LayerBlocks>,
    /// `a_0, ..., a_L` (`a_0 = batch * input_dim`, `a_L = 1`).
    pub act_sizes: Vec<usize>,
    /// `p_1, ..., p_L`.
    pub param_sizes: Vec<usize>,
    /// The gradient of the loss, flat.
    pub gradient: Vec<f64>,
    /// The loss.
    pub loss: f64,
    /// Each layer's matrix-free products ([`crate::Layer::product`]),
    /// computed with the blocks from the same point; empty once
    /// [`Derivatives::forget_products`] ran.
    products: Vec<Option<Arc<dyn LayerProduct>>>,
}

impl Derivatives {
    /// Layer `l`'s matrix-free products (index 0 is layer 1), if it has
    /// them and they were not forgotten. They equal the products with
    /// `layers[l]`'s blocks as [`Network::derivatives`] (or
    /// [`Network::ggn_derivatives`]) returned them.
    pub fn product(&self, l: usize) -> Option<&dyn LayerProduct> {
        self.products.get(l).and_then(|p| p.as_deref())
    }

    /// Drops the matrix-free products, so that every product reads the
    /// blocks: call it before changing a block, which the products would
    /// not follow.
    pub fn forget_products(&mut self) {
        self.products.clear();
    }

    /// Each hidden layer's products in their Gauss–Newton form
    /// ([`LayerProduct::gauss_newton`]), the loss layer's forgotten: what
    /// the Gauss–Newton blocks multiply as.
    pub(crate) fn gauss_newton_products(&mut self) {
        let last = self.products.len().saturating_sub(1);
        for (l, p) in self.products.iter_mut().enumerate() {
            *p = if l < last { p.as_ref().and_then(|p| p.gauss_newton()) } else { None };
        }
    }
}

impl Network {
    /// Forward and backward passes, then the five blocks of every layer,
    /// layers in parallel (each layer's kernels run sequentially, so the
    /// cores are not oversubscribed).
    ///
    /// Refuses with [`NetError::TooLarge`], before the passes, a batch whose
    /// blocks would need more than the available memory
    /// ([`Network::check_derivatives_memory`]).
    pub fn derivatives(&self, params: &Params, batch: &Batch) -> Result<Derivatives> {
        self.derivatives_within(params, batch, crate::memory::default_limit())
    }

    /// [`Network::derivatives`] with an explicit memory budget in bytes
    /// instead of the memory available at the time of the call, so that
    /// whether it refuses does not depend on the machine's load.
    pub fn derivatives_within(&self, params: &Params, batch: &Batch, limit: u64) -> Result<Derivatives> {
        self.derivatives_split(params, batch, limit, None, false)
    }

    /// [`Network::derivatives_within`], with the layers split across rayon
    /// threads when `split` says so (`None`: when their work reaches
    /// [`SPLIT_LAYERS_MIN_FLOPS`] and there is a second thread).
    ///
    /// With `gauss_newton`, the hidden layers give only the blocks the
    /// generalized Gauss–Newton matrix keeps ([`Layer::gauss_newton_blocks`]).
    pub(crate) fn derivatives_split(
        &self,
        params: &Params,
        batch: &Batch,
        limit: u64,
        split: Option<bool>,
        gauss_newton: bool,
    ) -> Result<Derivatives> {
        self.check_derivatives_memory(batch.batch_size(), limit)?;
        let fwd = self.forward(params, batch)?;
        let bwd = self.backward(params, &fwd)?;
        let act_sizes = self.act_sizes(batch.batch_size());
        let param_sizes = self.param_counts();
        let of_layer = |(l, layer): (usize, &Arc<dyn Layer>)| {
            let (x, z, b) = (params.layer(l), fwd.activations[l].as_ref(), &bwd.b[l + 1]);
            // The first layer reads data: its input derivatives are not wanted.
            let blocks = if gauss_newton && l + 1 < self.num_layers() {
                layer.gauss_newton_blocks(x, z, &fwd.targets, b, l == 0)
            } else if l == 0 {
                layer.first_blocks(x, z, &fwd.targets, b)
            } else {
                layer.blocks(x, z, &fwd.targets, b)
            };
            (blocks, layer.product(x, z, &fwd.targets, b))
        };
        let split = split.unwrap_or_else(|| {
            let work: f64 =
                param_sizes.iter().zip(act_sizes.windows(2)).map(|(&p, a)| block_flops(p, a[0], a[1])).sum();
            work >= SPLIT_LAYERS_MIN_FLOPS && rayon::current_num_threads() > 1
        });
        let (layers, products): (Vec<LayerBlocks>, Vec<_>) = if split {
            self.layers().par_iter().enumerate().map(of_layer).unzip()
        } else {
            self.layers().iter().enumerate().map(of_layer).unzip()
        };
        for (l, (blocks, layer)) in layers.iter().zip(self.layers()).enumerate() {
            let (a_out, a_in, p) = (act_sizes[l + 1], act_sizes[l], param_sizes[l]);
            let expected = [(a_out, p), (a_out, a_in), (p, p), (p, a_in), (a_in, a_in)];
            for ((name, block), exp) in blocks.named().into_iter().zip(expected) {
                if block.shape() != exp {
                    return Err(NetError::BadLayerChain {
                        index: l,
                        name: layer.name(),
                        reason: format!("returned block {name} of shape {:?}, expected {exp:?}", block.shape()),
                    });
                }
            }
        }
        Ok(Derivatives { layers, act_sizes, param_sizes, gradient: bwd.gradient, loss: fwd.loss, products })
    }

    /// The `n x n` Hessian of the loss by central differences of the exact
    /// gradient, symmetrised. The step `h = 1e-5 * max(1, |x_i|)` balances
    /// truncation (`O(h^2)`) against rounding (`O(eps / h)`): about `1e-9`
    /// absolute error for the unit-scale networks of the tests. For tests only:
    /// `2 n` gradient evaluations.
    pub fn dense_hessian_fd(&self, params: &Params, batch: &Batch) -> Result<Mat<f64>> {
        self.check(params, batch)?;
        let n = self.num_params();
        let cols: Vec<Vec<f64>> = (0..n)
            .into_par_iter()
            .map(|i| {
                let h = 1e-5 * params.data[i].abs().max(1.0);
                let mut p = params.clone();
                p.data[i] += h;
                let (_, gp) = self.gradient(&p, batch)?;
                p.data[i] -= 2.0 * h;
                let (_, gm) = self.gradient(&p, batch)?;
                Ok(gp.iter().zip(&gm).map(|(a, b)| (a - b) / (2.0 * h)).collect())
            })
            .collect::<Result<_>>()?;
        Ok(Mat::from_fn(n, n, |i, j| 0.5 * (cols[j][i] + cols[i][j])))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Activation, Batch, Network};

    /// The layers' blocks do not depend on whether they were computed on
    /// one thread or split across two.
    #[test]
    fn split_and_sequential_layers_agree() {
        let net = Network::builder(4).dense(5, Activation::Tanh).repeat(7).cross_entropy(3).expect("network");
        let params = net.init_params(7);
        let batch = Batch::random_classification(4, 3, 3, 8);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a two-thread pool");
        let run = |split| {
            pool.install(|| net.derivatives_split(&params, &batch, u64::MAX, Some(split), false).expect("blocks"))
        };
        let (seq, par) = (run(false), run(true));
        assert_eq!(seq.gradient, par.gradient);
        assert_eq!(seq.layers.len(), par.layers.len());
        for (l, (a, b)) in seq.layers.iter().zip(&par.layers).enumerate() {
            for ((name, x), (_, y)) in a.named().into_iter().zip(b.named()) {
                assert_eq!(x.to_dense(), y.to_dense(), "layer {l}, block {name}");
            }
        }
    }
}
