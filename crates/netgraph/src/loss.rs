//! The final linear layer fused with its loss (softmax cross-entropy or mean
//! squared error), whose output `z_L` is the scalar loss.
//!
//! With `u_s = W z_s + b`, per-sample loss gradient `g_s = dL/du_s` and
//! Hessian `H_s = d2L/du_s2` (both already carrying the `1/B` or `1/(BK)`
//! of the mean), and `beta = b_L` (1 in a network):
//!
//! - cross-entropy: `g_s = (p_s - e_{y_s}) / B`, `H_s = (diag p_s - p_s p_s^T) / B`;
//! - MSE: `g_s = 2 (u_s - t_s) / (B K)`, `H_s = 2 I / (B K)`;
//! - `Dx[0,(k,j)] = sum_s g_sk z_sj`, bias `sum_s g_sk`; `Dz[0,(s,j)] = (g_s^T W)_j`;
//! - `A[(k,j),(k',j')] = beta sum_s H_s[k,k'] z~_sj z~_sj'` (dense for
//!   cross-entropy since softmax couples the classes, block-diagonal over
//!   outputs for MSE);
//! - `G[(k,j),(s,j')] = beta (g_sk delta_jj' + (H_s W)[k,j'] z_sj)`, bias row `beta (H_s W)[k,j']`;
//! - `E` per sample `beta W^T H_s W`.

use blockmat::Block;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rand_chacha::ChaCha8Rng;

use crate::batch::Targets;
use crate::error::{NetError, Result};
use crate::layer::{first_layer_blocks, Layer, LayerBlocks};
use crate::linear::{affine, init_linear, input_grad, param_grad, unitwise_hessian, weights};

/// Which loss follows the final linear map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// Softmax cross-entropy with class targets.
    CrossEntropy,
    /// Mean squared error over all elements.
    Mse,
}

/// The fused final layer: linear map `in -> out` then the loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossLayer {
    inp: usize,
    out: usize,
    bias: bool,
    kind: LossKind,
}

/// Per-sample loss value, gradient and Hessian with respect to the logits.
struct LossDerivs {
    value: f64,
    /// `batch x out`.
    grad: Mat<f64>,
    /// `out x out` per sample; empty for MSE, whose Hessian is `hess_scale I`.
    hess: Vec<Mat<f64>>,
    hess_scale: f64,
}

impl LossLayer {
    /// A linear map `inp -> out` followed by the loss `kind`.
    pub fn new(inp: usize, out: usize, bias: bool, kind: LossKind) -> LossLayer {
        LossLayer { inp, out, bias, kind }
    }
    /// The loss.
    pub fn kind(&self) -> LossKind {
        self.kind
    }

    fn derivs(&self, x: &[f64], z: MatRef<'_, f64>, targets: &Targets) -> LossDerivs {
        let u = affine(x, z, self.out, self.bias);
        let (batch, out) = (u.nrows(), u.ncols());
        let mut grad = Mat::zeros(batch, out);
        match (self.kind, targets) {
            (LossKind::CrossEntropy, Targets::Classes(y)) => {
                let inv_b = 1.0 / batch as f64;
                let mut value = 0.0;
                let mut hess = Vec::with_capacity(batch);
                for s in 0..batch {
                    // Shift by the maximum so that exp never overflows.
                    let m = (0..out).map(|k| u[(s, k)]).fold(f64::NEG_INFINITY, f64::max);
                    let lse = m + (0..out).map(|k| (u[(s, k)] - m).exp()).sum::<f64>().ln();
                    let class = y.get(s).copied().unwrap_or(0);
                    // check_targets keeps classes in range; NaN marks a breach instead of a panic.
                    value += lse - if class < out { u[(s, class)] } else { f64::NAN };
                    let p: Vec<f64> = (0..out).map(|k| (u[(s, k)] - lse).exp()).collect();
                    for k in 0..out {
                        grad[(s, k)] = (p[k] - if k == class { 1.0 } else { 0.0 }) * inv_b;
                    }
                    let h = Mat::from_fn(out, out, |k, kp| (if k == kp { p[k] } else { 0.0 } - p[k] * p[kp]) * inv_b);
                    hess.push(h);
                }
                LossDerivs { value: value * inv_b, grad, hess, hess_scale: 0.0 }
            }
            (_, Targets::Values(t)) => {
                let scale = 1.0 / (batch * out) as f64;
                let mut value = 0.0;
                for s in 0..batch {
                    for k in 0..out {
                        let r = u[(s, k)] - t[(s, k)];
                        value += r * r;
                        grad[(s, k)] = 2.0 * r * scale;
                    }
                }
                LossDerivs { value: value * scale, grad, hess: Vec::new(), hess_scale: 2.0 * scale }
            }
            // check_targets rules this out before any call; a neutral value
            // keeps the method total.
            (LossKind::Mse, Targets::Classes(_)) => {
                LossDerivs { value: f64::NAN, grad, hess: Vec::new(), hess_scale: 0.0 }
            }
        }
    }

    /// `H_s W` (`out x in`).
    fn hess_w(&self, d: &LossDerivs, s: usize, w: MatRef<'_, f64>) -> Mat<f64> {
        match d.hess.get(s) {
            Some(h) => {
                let mut hw = Mat::zeros(self.out, self.inp);
                matmul(hw.as_mut(), Accum::Replace, h.as_ref(), w, 1.0, Par::Seq);
                hw
            }
            None => Mat::from_fn(self.out, self.inp, |k, j| d.hess_scale * w[(k, j)]),
        }
    }

    /// The dense cross-entropy `A`: `beta sum_s H_s (x) z~_s z~_s^T`, scattered
    /// into the flat order (all of `W`, then the bias).
    fn dense_a(&self, d: &LossDerivs, z: MatRef<'_, f64>, beta: f64) -> Mat<f64> {
        let (batch, inp, out) = (z.nrows(), self.inp, self.out);
        let n = inp + usize::from(self.bias);
        let zt = Mat::from_fn(batch, n, |s, j| if j < inp { z[(s, j)] } else { 1.0 });
        let idx = |k: usize, j: usize| if j < inp { k * inp + j } else { out * inp + k };
        let mut a = Mat::zeros(self.num_params(), self.num_params());
        let mut scaled = Mat::<f64>::zeros(batch, n);
        let mut blk = Mat::<f64>::zeros(n, n);
        for k in 0..out {
            for kp in 0..out {
                for j in 0..n {
                    for s in 0..batch {
                        scaled[(s, j)] = d.hess[s][(k, kp)] * zt[(s, j)];
                    }
                }
                matmul(blk.as_mut(), Accum::Replace, zt.transpose(), scaled.as_ref(), beta, Par::Seq);
                for j in 0..n {
                    for jp in 0..n {
                        a[(idx(k, j), idx(kp, jp))] = blk[(j, jp)];
                    }
                }
            }
        }
        a
    }

    /// The five blocks; without `input`, `Dz`, `G` and `E` are zero blocks
    /// and not computed (the loss layer of a linear model).
    fn blocks_of(&self, x: &[f64], z: MatRef<'_, f64>, targets: &Targets, b_out: &[f64], input: bool) -> LayerBlocks {
        let beta = b_out.first().copied().unwrap_or(0.0);
        let (batch, inp, out) = (z.nrows(), self.inp, self.out);
        let p = self.num_params();
        let w = weights(x, out, inp);
        let d = self.derivs(x, z, targets);

        let dxv = param_grad(d.grad.as_ref(), z, self.bias);
        let dx = Mat::from_fn(1, p, |_, i| dxv[i]);

        let a = match self.kind {
            LossKind::CrossEntropy => Block::dense(self.dense_a(&d, z, beta)),
            LossKind::Mse => {
                let c = Mat::from_fn(batch, out, |_, _| beta * d.hess_scale);
                unitwise_hessian(z, c.as_ref(), self.bias)
            }
        };

        if !input {
            return first_layer_blocks(Block::dense(dx), a, batch * inp);
        }

        let dzm = input_grad(x, d.grad.as_ref(), inp);
        let dz = Mat::from_fn(1, batch * inp, |_, i| dzm[i]);
        let mut g = Mat::<f64>::zeros(p, batch * inp);
        let mut e = Vec::with_capacity(batch);
        for s in 0..batch {
            let hw = self.hess_w(&d, s, w);
            for k in 0..out {
                for j in 0..inp {
                    let row = k * inp + j;
                    let zs = beta * z[(s, j)];
                    for jp in 0..inp {
                        g[(row, s * inp + jp)] = zs * hw[(k, jp)];
                    }
                    g[(row, s * inp + j)] += beta * d.grad[(s, k)];
                }
                if self.bias {
                    for jp in 0..inp {
                        g[(out * inp + k, s * inp + jp)] = beta * hw[(k, jp)];
                    }
                }
            }
            let mut es = Mat::<f64>::zeros(inp, inp);
            matmul(es.as_mut(), Accum::Replace, w.transpose(), hw.as_ref(), beta, Par::Seq);
            e.push(Block::dense(es));
        }

        LayerBlocks { dx: Block::dense(dx), dz: Block::dense(dz), a, g: Block::dense(g), e: Block::block_diag(e) }
    }
}

impl Layer for LossLayer {
    fn name(&self) -> String {
        let kind = match self.kind {
            LossKind::CrossEntropy => "cross_entropy",
            LossKind::Mse => "mse",
        };
        let bias = if self.bias { "+bias" } else { "" };
        format!("{kind} {}->{}{bias}", self.inp, self.out)
    }
    fn in_features(&self) -> usize {
        self.inp
    }
    fn out_features(&self) -> usize {
        1
    }
    fn is_loss(&self) -> bool {
        true
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

    fn check_targets(&self, targets: &Targets) -> Result<()> {
        match (self.kind, targets) {
            (LossKind::CrossEntropy, Targets::Classes(y)) => match y.iter().enumerate().find(|(_, &c)| c >= self.out) {
                Some((sample, &class)) => {
                    Err(NetError::ClassOutOfRange { sample, class: class as i64, classes: self.out })
                }
                None => Ok(()),
            },
            (LossKind::Mse, Targets::Values(t)) if t.ncols() != self.out => Err(NetError::Shape {
                what: "regression targets".into(),
                expected: (t.nrows(), self.out),
                found: (t.nrows(), t.ncols()),
            }),
            (LossKind::Mse, Targets::Values(_)) => Ok(()),
            (kind, found) => Err(NetError::TargetKind {
                loss: if kind == LossKind::Mse { "mse" } else { "cross_entropy" },
                expected: if kind == LossKind::Mse { "value" } else { "class" },
                found: found.kind(),
            }),
        }
    }

    fn forward(&self, x: &[f64], z: MatRef<'_, f64>, targets: &Targets) -> Mat<f64> {
        let v = self.derivs(x, z, targets).value;
        Mat::from_fn(1, 1, |_, _| v)
    }

    fn vjp(&self, x: &[f64], z: MatRef<'_, f64>, targets: &Targets, b_out: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let beta = b_out.first().copied().unwrap_or(0.0);
        let d = self.derivs(x, z, targets);
        let delta = Mat::from_fn(d.grad.nrows(), self.out, |s, k| beta * d.grad[(s, k)]);
        let gx = param_grad(delta.as_ref(), z, self.bias);
        let bz = input_grad(x, delta.as_ref(), self.inp);
        (gx, bz)
    }

    fn blocks(&self, x: &[f64], z: MatRef<'_, f64>, targets: &Targets, b_out: &[f64]) -> LayerBlocks {
        self.blocks_of(x, z, targets, b_out, true)
    }

    fn first_blocks(&self, x: &[f64], z: MatRef<'_, f64>, targets: &Targets, b_out: &[f64]) -> LayerBlocks {
        self.blocks_of(x, z, targets, b_out, false)
    }

    /// `o = z W^T + b`, `Jx`, `Jz = W` per sample, and per sample
    /// `Lambda_s` with its square root `R_s` (`Lambda_s = R_s R_s^T`):
    /// cross-entropy `Lambda_s = (diag q - q q^T) / B`,
    /// `R_s = (diag sqrt(q) - q sqrt(q)^T) / sqrt(B)` (`sum q = 1` makes
    /// `R_s R_s^T = Lambda_s`; it has rank `C - 1`, so a Cholesky factor
    /// does not exist); MSE `Lambda_s = 2 I / (B C)`.
    fn output_curvature(&self, x: &[f64], z: MatRef<'_, f64>) -> Option<crate::ggn::OutputCurvature> {
        let (batch, inp, out) = (z.nrows(), self.inp, self.out);
        let p = self.num_params();
        let u = affine(x, z, out, self.bias);
        let mut jx = Mat::<f64>::zeros(batch * out, p);
        for s in 0..batch {
            for k in 0..out {
                for j in 0..inp {
                    jx[(s * out + k, k * inp + j)] = z[(s, j)];
                }
                if self.bias {
                    jx[(s * out + k, out * inp + k)] = 1.0;
                }
            }
        }
        let w = weights(x, out, inp).to_owned();
        let jz = Block::block_diag((0..batch).map(|_| Block::dense(w.clone())).collect());
        let (mut lambda, mut lambda_sqrt) = (Vec::with_capacity(batch), Vec::with_capacity(batch));
        for s in 0..batch {
            match self.kind {
                LossKind::CrossEntropy => {
                    let inv_b = 1.0 / batch as f64;
                    let m = (0..out).map(|k| u[(s, k)]).fold(f64::NEG_INFINITY, f64::max);
                    let lse = m + (0..out).map(|k| (u[(s, k)] - m).exp()).sum::<f64>().ln();
                    let q: Vec<f64> = (0..out).map(|k| (u[(s, k)] - lse).exp()).collect();
                    let d = |k: usize, kp: usize| if k == kp { 1.0 } else { 0.0 };
                    lambda.push(Mat::from_fn(out, out, |k, kp| (d(k, kp) * q[k] - q[k] * q[kp]) * inv_b));
                    let r = inv_b.sqrt();
                    lambda_sqrt
                        .push(Mat::from_fn(out, out, |k, kp| (d(k, kp) * q[k].sqrt() - q[k] * q[kp].sqrt()) * r));
                }
                LossKind::Mse => {
                    let c = 2.0 / (batch * out) as f64;
                    lambda.push(Mat::from_fn(out, out, |k, kp| if k == kp { c } else { 0.0 }));
                    lambda_sqrt.push(Mat::from_fn(out, out, |k, kp| if k == kp { c.sqrt() } else { 0.0 }));
                }
            }
        }
        Some(crate::ggn::OutputCurvature { outputs: out, values: u, jx, jz, lambda, lambda_sqrt })
    }
}
