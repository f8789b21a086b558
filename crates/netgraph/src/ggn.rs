//! The generalized Gauss–Newton matrix `GGN = J^T Lambda J` written in the
//! blocks of the Hessian (ALGORITHM.md, "The generalized Gauss–Newton
//! matrix"), and the Jacobian `J` of the outputs for the routes that need it
//! explicitly (Woodbury, predictive variances).
//!
//! `o = W_L z_{L-1} + b_L` are the outputs (logits) the loss layer feeds its
//! loss, flattened `s * C + k` (`a_o = B C` of them), `J = do/dx` and
//! `Lambda = d2 loss / do do` (block-diagonal over samples, positive
//! semi-definite). Replacing, in the Hessian's blocks, the hidden layers'
//! `A_l, G_l, E_l` by zero and the loss layer's by
//! `A_L = Jx^T Lambda Jx`, `G_L = Jx^T Lambda Jz`, `E_L = Jz^T Lambda Jz`
//! turns every Hessian routine (products, the lifted system, its
//! factorization) into the same routine for `GGN`, unchanged.

use blockmat::Block;
use faer::linalg::matmul::matmul;
use faer::reborrow::ReborrowMut;
use faer::{Accum, Mat, Par};
use rayon::prelude::*;

use crate::batch::{Batch, Targets};
use crate::derivatives::Derivatives;
use crate::error::{NetError, Result};
use crate::layer::LayerBlocks;
use crate::network::Network;
use crate::params::Params;

/// What a loss layer `z_L = l(o)`, `o = W_L z_{L-1} + b_L`, provides for the
/// Gauss–Newton matrix ([`crate::Layer::output_curvature`]).
#[derive(Debug, Clone)]
pub struct OutputCurvature {
    /// Outputs per sample `C` (classes or regression outputs).
    pub outputs: usize,
    /// The outputs `o`, `batch x C`.
    pub values: Mat<f64>,
    /// `Jx = do/dx_L`, `a_o x p_L`.
    pub jx: Mat<f64>,
    /// `Jz = do/dz_{L-1}`, `a_o x a_{L-1}` (`W_L` once per sample).
    pub jz: Block,
    /// `Lambda_s = d2 l / do_s do_s` per sample (`C x C`, positive
    /// semi-definite, carrying the `1/B` of the batch mean).
    pub lambda: Vec<Mat<f64>>,
    /// `R_s` with `R_s R_s^T = Lambda_s`, per sample.
    pub lambda_sqrt: Vec<Mat<f64>>,
}

impl OutputCurvature {
    /// `a_o = B C`, the number of outputs of the batch.
    pub fn len(&self) -> usize {
        self.jx.nrows()
    }
    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.jx.nrows() == 0
    }
    /// `Lambda` as a block-diagonal matrix.
    pub fn lambda_block(&self) -> Block {
        Block::block_diag(self.lambda.iter().map(|m| Block::dense(m.clone())).collect())
    }
    /// `R` (`Lambda = R R^T`) as a block-diagonal matrix.
    pub fn lambda_sqrt_block(&self) -> Block {
        Block::block_diag(self.lambda_sqrt.iter().map(|m| Block::dense(m.clone())).collect())
    }

    /// The loss layer's Gauss–Newton blocks `A_L, G_L, E_L`, with its
    /// `Dx_L, Dz_L` kept (they only define `y_L`, which nothing reads since
    /// `E_{L+1} = 0`).
    fn loss_blocks(&self, hessian_blocks: &LayerBlocks) -> Result<LayerBlocks> {
        let lam = self.lambda_block();
        let ljx = lam.mul_dense(self.jx.as_ref()).map_err(block_err)?;
        let p = self.jx.ncols();
        let mut a = Mat::<f64>::zeros(p, p);
        matmul(a.as_mut(), Accum::Replace, self.jx.transpose(), ljx.as_ref(), 1.0, Par::Seq);
        let g = self.jz.tmul_dense(ljx.as_ref()).map_err(block_err)?.transpose().to_owned();
        let Some(diag) = self.jz.as_diag() else {
            return Err(NetError::BadLayerChain {
                index: 0,
                name: "loss layer".into(),
                reason: "output_curvature's Jz must be block-diagonal over the samples".into(),
            });
        };
        let e = diag
            .blocks()
            .iter()
            .zip(&self.lambda)
            .map(|(w, l)| {
                let w = w.to_dense();
                let mut lw = Mat::<f64>::zeros(l.nrows(), w.ncols());
                matmul(lw.as_mut(), Accum::Replace, l.as_ref(), w.as_ref(), 1.0, Par::Seq);
                let mut es = Mat::<f64>::zeros(w.ncols(), w.ncols());
                matmul(es.as_mut(), Accum::Replace, w.transpose(), lw.as_ref(), 1.0, Par::Seq);
                Block::dense(symmetrised(es))
            })
            .collect();
        Ok(LayerBlocks {
            dx: hessian_blocks.dx.clone(),
            dz: hessian_blocks.dz.clone(),
            a: Block::dense(symmetrised(a)),
            g: Block::dense(g),
            e: Block::block_diag(e),
        })
    }
}

fn block_err(e: blockmat::BlockError) -> NetError {
    NetError::BadLayerChain { index: 0, name: "loss layer".into(), reason: format!("output curvature: {e}") }
}

/// `(M + M^T) / 2`: products `X^T (L X)` are symmetric only up to rounding,
/// and the factorization checks symmetry.
fn symmetrised(m: Mat<f64>) -> Mat<f64> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| 0.5 * (m[(i, j)] + m[(j, i)]))
}

/// The Gauss–Newton blocks of a network at one point, and what the explicit
/// routes need besides.
#[derive(Debug, Clone)]
pub struct GgnDerivatives {
    /// The blocks of ALGORITHM.md with the Gauss–Newton `A, G, E` (hidden
    /// layers zero); the loss and gradient are the network's.
    pub derivatives: Derivatives,
    /// The loss layer's outputs, Jacobians and `Lambda`.
    pub output: OutputCurvature,
}

/// The outputs of a network on some inputs and their Jacobian.
#[derive(Debug, Clone)]
pub struct OutputJacobian {
    /// The outputs `o` (logits or regression outputs), `batch x C`.
    pub values: Mat<f64>,
    /// `J^T = (do/dx)^T`, `p x (batch C)`, column `s * C + k`.
    pub jt: Mat<f64>,
}

/// `J^T` (`p x a_o`) from the blocks: with `R^T = Jz^T`, layer by layer
/// down, `J_l^T = Dx_l^T R^T` and `R^T <- Dz_l^T R^T` (reverse mode for all
/// `a_o` outputs at once).
pub fn jacobian_t(layers: &[LayerBlocks], param_sizes: &[usize], out: &OutputCurvature) -> Result<Mat<f64>> {
    let nl = layers.len();
    let p: usize = param_sizes.iter().sum();
    let offs = blockmat::offsets(param_sizes);
    let mut jt = Mat::<f64>::zeros(p, out.len());
    if nl == 0 {
        return Ok(jt);
    }
    jt.as_mut().subrows_mut(offs[nl - 1], param_sizes[nl - 1]).copy_from(out.jx.transpose());
    let mut rt = out.jz.transpose().to_dense();
    for l in (0..nl - 1).rev() {
        let mut jl = jt.as_mut().subrows_mut(offs[l], param_sizes[l]);
        layers[l].dx.tmul_add_to(jl.rb_mut(), rt.as_ref(), 1.0).map_err(block_err)?;
        if l > 0 {
            rt = layers[l].dz.tmul_dense(rt.as_ref()).map_err(block_err)?;
        }
    }
    Ok(jt)
}

impl Network {
    /// The loss layer's output curvature at `z_{L-1}`, or the refusal of a
    /// loss layer that cannot provide it.
    fn loss_output(&self, params: &Params, z: &Mat<f64>) -> Result<OutputCurvature> {
        let l = self.num_layers() - 1;
        let layer = &self.layers()[l];
        layer.output_curvature(params.layer(l), z.as_ref()).ok_or_else(|| NetError::BadLayerChain {
            index: l,
            name: layer.name(),
            reason: "provides no output curvature (Layer::output_curvature), so its Gauss-Newton matrix is unknown"
                .into(),
        })
    }

    /// The Gauss–Newton blocks ([`GgnDerivatives`]) with the memory budget of
    /// [`Network::derivatives`].
    pub fn ggn_derivatives(&self, params: &Params, batch: &Batch) -> Result<GgnDerivatives> {
        self.ggn_derivatives_within(params, batch, crate::memory::default_limit())
    }

    /// The Gauss–Newton blocks: `Dx_l, Dz_l` as for the Hessian, hidden
    /// `A_l = G_l = E_l = 0`, the loss layer's from `Jx, Jz, Lambda`.
    /// Refuses as [`Network::derivatives_within`] does.
    pub fn ggn_derivatives_within(&self, params: &Params, batch: &Batch, limit: u64) -> Result<GgnDerivatives> {
        let mut d = self.derivatives_split(params, batch, limit, None, true)?;
        d.gauss_newton_products();
        let fwd = self.forward(params, batch)?;
        let nl = self.num_layers();
        let output = self.loss_output(params, &fwd.activations[nl - 1])?;
        let last = output.loss_blocks(&d.layers[nl - 1])?;
        d.layers[nl - 1] = last;
        Ok(GgnDerivatives { derivatives: d, output })
    }

    /// The outputs `o` of the loss layer for `inputs` (`batch x input_dim`)
    /// and their Jacobian with respect to all parameters, `J^T`
    /// (`p x batch C`): what a predictive variance `J (..)^-1 J^T` needs.
    pub fn output_jacobian(&self, params: &Params, inputs: &Mat<f64>) -> Result<OutputJacobian> {
        let batch = inputs.nrows();
        self.check_derivatives_memory(batch, crate::memory::default_limit())?;
        // Only the loss layer reads targets, and the output curvature does not.
        let targets = Targets::Values(Mat::zeros(batch, 0));
        self.check_params_and_inputs(params, inputs)?;
        let nl = self.num_layers();
        let mut acts = Vec::with_capacity(nl);
        acts.push(inputs.clone());
        for l in 0..nl - 1 {
            let z = self.layers()[l].forward(params.layer(l), acts[l].as_ref(), &targets);
            acts.push(z);
        }
        let sizes = self.act_sizes(batch);
        let mut layers: Vec<LayerBlocks> = (0..nl - 1)
            .into_par_iter()
            .map(|l| {
                let zeros = vec![0.0; sizes[l + 1]];
                let layer = &self.layers()[l];
                if l == 0 {
                    layer.first_blocks(params.layer(l), acts[l].as_ref(), &targets, &zeros)
                } else {
                    layer.blocks(params.layer(l), acts[l].as_ref(), &targets, &zeros)
                }
            })
            .collect();
        let output = self.loss_output(params, &acts[nl - 1])?;
        // The loss layer's own Dx/Dz are not used by jacobian_t.
        layers.push(LayerBlocks {
            dx: Block::zeros(1, 0),
            dz: Block::zeros(1, 0),
            a: Block::zeros(0, 0),
            g: Block::zeros(0, 0),
            e: Block::zeros(0, 0),
        });
        let jt = jacobian_t(&layers, &self.param_counts(), &output)?;
        Ok(OutputJacobian { values: output.values, jt })
    }

    fn check_params_and_inputs(&self, params: &Params, inputs: &Mat<f64>) -> Result<()> {
        if params.len() != self.num_params() {
            return Err(NetError::ParamLength { expected: self.num_params(), found: params.len() });
        }
        if params.counts() != self.param_counts() {
            return Err(NetError::ParamLayout { expected: self.param_counts(), found: params.counts() });
        }
        if inputs.ncols() != self.input_dim() {
            let b = inputs.nrows();
            return Err(NetError::Shape {
                what: "inputs".into(),
                expected: (b, self.input_dim()),
                found: (b, inputs.ncols()),
            });
        }
        Ok(())
    }

    /// `J` (`batch C x p`) by central differences of the outputs, step
    /// `h = 1e-6 max(1, |x_i|)` (truncation `O(h^2)` against rounding
    /// `O(u / h)`: about `1e-9` absolute for unit-scale networks). The
    /// independent oracle of [`Network::output_jacobian`]; for tests only.
    pub fn output_jacobian_fd(&self, params: &Params, inputs: &Mat<f64>) -> Result<Mat<f64>> {
        self.check_params_and_inputs(params, inputs)?;
        let outputs = |p: &Params| -> Result<Vec<f64>> {
            let targets = Targets::Values(Mat::zeros(inputs.nrows(), 0));
            let nl = self.num_layers();
            let mut z = inputs.clone();
            for l in 0..nl - 1 {
                z = self.layers()[l].forward(p.layer(l), z.as_ref(), &targets);
            }
            let o = self.loss_output(p, &z)?.values;
            Ok(crate::batch::row_major(&o).collect())
        };
        let n = self.num_params();
        let cols: Vec<Vec<f64>> = (0..n)
            .into_par_iter()
            .map(|i| {
                let h = 1e-6 * params.data[i].abs().max(1.0);
                let mut p = params.clone();
                p.data[i] += h;
                let op = outputs(&p)?;
                p.data[i] -= 2.0 * h;
                let om = outputs(&p)?;
                Ok(op.iter().zip(&om).map(|(a, b)| (a - b) / (2.0 * h)).collect())
            })
            .collect::<Result<_>>()?;
        let ao = cols.first().map_or(0, Vec::len);
        Ok(Mat::from_fn(ao, n, |i, j| cols[j][i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Activation;

    fn max_abs_diff(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
        let mut m = 0.0f64;
        for j in 0..a.ncols() {
            for i in 0..a.nrows() {
                m = m.max((a[(i, j)] - b[(i, j)]).abs());
            }
        }
        m
    }

    #[test]
    fn jacobian_matches_finite_differences() {
        let net = Network::builder(3)
            .dense(4, Activation::Tanh)
            .dense(5, Activation::Softplus(crate::Softplus::default()))
            .cross_entropy(3)
            .unwrap();
        let params = net.init_params(3);
        let batch = Batch::random_classification(3, 3, 4, 5);
        let jac = net.output_jacobian(&params, batch.inputs()).unwrap();
        let fd = net.output_jacobian_fd(&params, batch.inputs()).unwrap();
        // Central differences with h = 1e-6 are good to ~1e-9 here.
        assert!(max_abs_diff(&jac.jt.transpose().to_owned(), &fd) < 1e-8);
        assert_eq!(jac.values.shape(), (4, 3));
    }

    #[test]
    fn cross_entropy_lambda_square_root() {
        let net = Network::builder(2).dense(3, Activation::Tanh).cross_entropy(4).unwrap();
        let params = net.init_params(1);
        let batch = Batch::random_classification(2, 4, 3, 2);
        let g = net.ggn_derivatives(&params, &batch).unwrap();
        for (l, r) in g.output.lambda.iter().zip(&g.output.lambda_sqrt) {
            let rr = r * r.transpose();
            assert!(max_abs_diff(l, &rr) < 1e-15);
        }
    }
}

#[cfg(test)]
mod blocks_tests {
    use crate::{Activation, Batch, Network};

    /// The Gauss–Newton derivatives compute only what they keep: every
    /// hidden layer's `Dx` and `Dz` equal the Hessian derivatives' bit for
    /// bit (the same kernels on the same numbers), its `A`, `G` and `E` are
    /// zero blocks, and the loss layer's blocks are the output curvature's.
    /// Dense and residual layers, with and without bias.
    #[test]
    fn gauss_newton_blocks_are_the_hessian_jacobians() {
        for bias in [true, false] {
            let mut b = Network::builder(4);
            if !bias {
                b = b.without_bias();
            }
            let net = b.dense(6, Activation::Tanh).residual(Activation::Sigmoid).dense(5, Activation::Relu);
            let net = net.cross_entropy(3).unwrap();
            let (params, data) = (net.init_params(3), Batch::random_classification(4, 3, 3, 9));
            let full = net.derivatives(&params, &data).unwrap();
            let ggn = net.ggn_derivatives(&params, &data).unwrap();
            let hidden = full.layers.len() - 1;
            for (l, (h, g)) in full.layers.iter().zip(&ggn.derivatives.layers).take(hidden).enumerate() {
                assert_eq!(h.dx.to_dense(), g.dx.to_dense(), "layer {l} Dx");
                assert_eq!(h.dz.to_dense(), g.dz.to_dense(), "layer {l} Dz");
                for (name, block) in [("A", &g.a), ("G", &g.g), ("E", &g.e)] {
                    assert!(block.is_zero(), "layer {l}: {name} is a zero block");
                }
                assert_eq!(g.g.shape(), h.g.shape(), "layer {l}");
            }
            let last = ggn.output.loss_blocks(&full.layers[hidden]).unwrap();
            assert_eq!(last.a.to_dense(), ggn.derivatives.layers[hidden].a.to_dense());
        }
    }
}
