//! Hidden dense and residual layers: `z -> act(z W^T + b)` and
//! `z -> z + act(z W^T + b)`, with their derivative blocks in closed form.
//!
//! With `u = z W^T + b`, `c_sk = b_sk act''(u_sk)` and `d_sk = b_sk act'(u_sk)`:
//!
//! - `Dx[(s,k),(k,j)] = act'(u_sk) z_sj`, bias column `act'(u_sk)`;
//! - `Dz` per sample `diag(act'(u_s)) W` (plus `I` for a residual layer);
//! - `A` per unit `k`: `sum_s c_sk z~_s z~_s^T`, `z~_s = (z_s, 1)`;
//! - `G[(k,j),(s,j')] = c_sk W[k,j'] z_sj + d_sk delta_jj'`, bias row `c_sk W[k,j']`;
//! - `E` per sample `W^T diag(c_s) W`.
//!
//! The residual's identity term is linear in `z` and free of `x`, so it
//! changes `Dz` only.

use std::sync::Arc;

use blockmat::Block;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rand_chacha::ChaCha8Rng;

use crate::activation::Activation;
use crate::batch::Targets;
use crate::layer::{first_layer_blocks, Layer, LayerBlocks};
use crate::linear::{affine, init_linear, input_grad, param_grad, unitwise_hessian, unitwise_jacobian, weights};
use crate::product::{DenseProduct, LayerProduct};

/// A dense layer with an elementwise activation, optionally residual.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dense {
    inp: usize,
    out: usize,
    act: Activation,
    bias: bool,
    residual: bool,
}

impl Dense {
    /// `z -> act(z W^T + b)` with `W` of shape `out x inp`.
    pub fn new(inp: usize, out: usize, act: Activation, bias: bool) -> Dense {
        Dense { inp, out, act, bias, residual: false }
    }
    /// `z -> z + act(z W^T + b)` with `W` of shape `width x width`.
    pub fn residual(width: usize, act: Activation, bias: bool) -> Dense {
        Dense { inp: width, out: width, act, bias, residual: true }
    }
    /// The activation.
    pub fn activation(&self) -> Activation {
        self.act
    }
    /// Whether the layer has a bias.
    pub fn has_bias(&self) -> bool {
        self.bias
    }
    /// Whether the layer adds its input to its output.
    pub fn is_residual(&self) -> bool {
        self.residual
    }

    /// `(act'(u), b_out act''(u))` as two `batch x out` matrices (the first
    /// written over `u` itself).
    fn derivs(&self, x: &[f64], z: MatRef<'_, f64>, b_out: MatRef<'_, f64>) -> (Mat<f64>, Mat<f64>) {
        let mut d1 = affine(x, z, self.out, self.bias);
        let mut c = Mat::zeros(d1.nrows(), d1.ncols());
        for k in 0..d1.ncols() {
            for s in 0..d1.nrows() {
                let (_, a1, a2) = self.act.eval(d1[(s, k)]);
                d1[(s, k)] = a1;
                c[(s, k)] = b_out[(s, k)] * a2;
            }
        }
        (d1, c)
    }
}

impl Layer for Dense {
    fn name(&self) -> String {
        let kind = if self.residual { "residual" } else { "dense" };
        let bias = if self.bias { "+bias" } else { "" };
        format!("{kind} {}->{} {}{bias}", self.inp, self.out, self.act)
    }
    fn in_features(&self) -> usize {
        self.inp
    }
    fn out_features(&self) -> usize {
        self.out
    }
    fn num_params(&self) -> usize {
        self.out * self.inp + if self.bias { self.out } else { 0 }
    }
    fn num_weights(&self) -> usize {
        self.out * self.inp
    }
    fn init(&self, rng: &mut ChaCha8Rng, out: &mut [f64]) {
        init_linear(rng, out, self.inp);
    }

    fn forward(&self, x: &[f64], z: MatRef<'_, f64>, _targets: &Targets) -> Mat<f64> {
        let mut u = affine(x, z, self.out, self.bias);
        for k in 0..self.out {
            for s in 0..u.nrows() {
                let v = self.act.value(u[(s, k)]);
                u[(s, k)] = if self.residual { v + z[(s, k)] } else { v };
            }
        }
        u
    }

    fn vjp(&self, x: &[f64], z: MatRef<'_, f64>, _targets: &Targets, b_out: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let b = MatRef::from_row_major_slice(b_out, z.nrows(), self.out);
        // `delta = b * act'(u)`, computed over `u` in place.
        let mut delta = affine(x, z, self.out, self.bias);
        for k in 0..self.out {
            for s in 0..delta.nrows() {
                delta[(s, k)] = b[(s, k)] * self.act.eval(delta[(s, k)]).1;
            }
        }
        let gx = param_grad(delta.as_ref(), z, self.bias);
        let mut bz = input_grad(x, delta.as_ref(), self.inp);
        if self.residual {
            // Both row-major `batch x width`.
            bz.iter_mut().zip(b_out).for_each(|(v, b)| *v += b);
        }
        (gx, bz)
    }

    fn blocks(&self, x: &[f64], z: MatRef<'_, f64>, _targets: &Targets, b_out: &[f64]) -> LayerBlocks {
        self.blocks_of(x, z, b_out, true)
    }

    fn first_blocks(&self, x: &[f64], z: MatRef<'_, f64>, _targets: &Targets, b_out: &[f64]) -> LayerBlocks {
        self.blocks_of(x, z, b_out, false)
    }

    /// `Dx` and `Dz` alone: the slopes `act'(u)` do not depend on `b_out`.
    fn gauss_newton_blocks(
        &self,
        x: &[f64],
        z: MatRef<'_, f64>,
        _targets: &Targets,
        _b_out: &[f64],
        first: bool,
    ) -> LayerBlocks {
        let (batch, inp) = (z.nrows(), self.inp);
        let p = self.num_params();
        let mut d1 = affine(x, z, self.out, self.bias);
        for k in 0..d1.ncols() {
            for s in 0..d1.nrows() {
                d1[(s, k)] = self.act.eval(d1[(s, k)]).1;
            }
        }
        let dx = unitwise_jacobian(d1.as_ref(), z, self.bias);
        let dz = if first { Block::zeros(batch * self.out, batch * inp) } else { self.input_jacobian(x, d1.as_ref()) };
        let a_in = batch * inp;
        LayerBlocks { dx, dz, a: Block::zeros(p, p), g: Block::zeros(p, a_in), e: Block::zeros(a_in, a_in) }
    }

    fn product(
        &self,
        x: &[f64],
        z: MatRef<'_, f64>,
        _targets: &Targets,
        b_out: &[f64],
    ) -> Option<Arc<dyn LayerProduct>> {
        let u = affine(x, z, self.out, self.bias);
        let product = DenseProduct::new(x, z, u.as_ref(), b_out, self.act, self.bias, self.residual)?;
        Some(Arc::new(product))
    }
}

impl Dense {
    /// The five blocks; without `input`, `Dz`, `G` and `E` are zero blocks
    /// and not computed (a first layer: `G` alone is `p x batch in`).
    fn blocks_of(&self, x: &[f64], z: MatRef<'_, f64>, b_out: &[f64], input: bool) -> LayerBlocks {
        let (batch, inp, out) = (z.nrows(), self.inp, self.out);
        let p = self.num_params();
        let w = weights(x, out, inp);
        let b = MatRef::from_row_major_slice(b_out, batch, out);
        let (d1, c) = self.derivs(x, z, b);

        let dx = unitwise_jacobian(d1.as_ref(), z, self.bias);

        let a = unitwise_hessian(z, c.as_ref(), self.bias);
        if !input {
            return first_layer_blocks(dx, a, batch * inp);
        }

        let dz = self.input_jacobian(x, d1.as_ref());

        // G[(k, j), (s, j')] = c[s, k] z[s, j] w[k, j'] + [j = j'] b[s, k] d1[s, k],
        // and the bias row (k) = c[s, k] w[k, j']: written a column at a
        // time, each unit's rows a scaled copy of the sample's input.
        let mut g = Mat::<f64>::zeros(p, batch * inp);
        let mut zs = vec![0.0; inp];
        for s in 0..batch {
            zs.iter_mut().enumerate().for_each(|(j, v)| *v = z[(s, j)]);
            for jp in 0..inp {
                let col = g.col_mut(s * inp + jp).try_as_col_major_mut().expect("an owned matrix").as_slice_mut();
                for k in 0..out {
                    let cw = c[(s, k)] * w[(k, jp)];
                    col[k * inp..(k + 1) * inp].iter_mut().zip(&zs).for_each(|(v, zj)| *v = cw * zj);
                    col[k * inp + jp] += b[(s, k)] * d1[(s, k)];
                    if self.bias {
                        col[out * inp + k] = cw;
                    }
                }
            }
        }

        let mut cw = Mat::<f64>::zeros(out, inp);
        let e = (0..batch)
            .map(|s| {
                for k in 0..out {
                    for j in 0..inp {
                        cw[(k, j)] = c[(s, k)] * w[(k, j)];
                    }
                }
                let mut es = Mat::<f64>::zeros(inp, inp);
                matmul(es.as_mut(), Accum::Replace, w.transpose(), cw.as_ref(), 1.0, Par::Seq);
                Block::dense(es)
            })
            .collect();

        LayerBlocks { dx, dz, a, g: Block::dense(g), e: Block::block_diag(e) }
    }

    /// `Dz`, per sample `diag(act'(u_s)) W` (plus `I` for a residual layer).
    fn input_jacobian(&self, x: &[f64], d1: MatRef<'_, f64>) -> Block {
        let w = weights(x, self.out, self.inp);
        let dz = (0..d1.nrows())
            .map(|s| {
                let m = Mat::from_fn(self.out, self.inp, |k, j| {
                    let id = if self.residual && k == j { 1.0 } else { 0.0 };
                    d1[(s, k)] * w[(k, j)] + id
                });
                Block::dense(m)
            })
            .collect();
        Block::block_diag(dz)
    }
}
