//! The block `G = d2 phi / dx dz` of a layer built on a linear map
//! `u = z W^T + b`, kept as its factors.
//!
//! Formed, `G` is `p x a_(l-1)`: `out (in + 1) x batch in` numbers, and
//! every product with it costs as much. Yet for output unit `k` and sample
//! `s` its `(in + 1) x in` block is
//!
//! ```text
//! G[unit k, sample s] = c_sk z~_s w_k^T + beta_sk J,    z~_s = (z_s, 1),  J = [I; 0]
//! ```
//!
//! (`z~_s = z_s` and `J = I` without a bias): rank one plus a multiple of
//! the identity, from `W`, the layer's input and two `batch x out` arrays.
//! [`UnitCoupling`] keeps those: its products cost `O(batch p)` instead of
//! `O(batch in p)`, and a solver that eliminates a unit's parameters can
//! form `G^T A^-1 G` through them in `O(batch^2 in^2 out)` instead of
//! `O(batch^2 in^3 out)` flops.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::error::{NetError, Result};

/// `G` of a layer built on a linear map, by its factors (see the module
/// documentation): the weights `W` (`out x in`), the layer's input `z`
/// (`batch x in`), and `c = b_out act''(u)`, `beta = b_out act'(u)`
/// (`batch x out`). Parameters are ordered as the layer's: `W` row-major,
/// then the bias; inputs as activations, sample by sample.
///
/// ```
/// use faer::Mat;
/// use netgraph::UnitCoupling;
/// // One unit reading two inputs, one sample, no bias.
/// let w = Mat::from_fn(1, 2, |_, j| [2.0, 3.0][j]);
/// let z = Mat::from_fn(1, 2, |_, j| [5.0, 7.0][j]);
/// let (c, beta) = (Mat::from_fn(1, 1, |_, _| 0.5), Mat::from_fn(1, 1, |_, _| 10.0));
/// let g = UnitCoupling::new(w, z, c, beta, false).unwrap().to_dense();
/// // c z w^T + beta I = 0.5 [5; 7] [2 3] + 10 I.
/// assert_eq!(g[(0, 0)], 15.0);
/// assert_eq!(g[(1, 0)], 7.0);
/// assert_eq!(g[(0, 1)], 7.5);
/// ```
#[derive(Debug, Clone)]
pub struct UnitCoupling {
    w: Mat<f64>,
    z: Mat<f64>,
    c: Mat<f64>,
    beta: Mat<f64>,
    bias: bool,
}

impl UnitCoupling {
    /// The coupling of weights `w` (`out x in`), input `z` (`batch x in`)
    /// and `c`, `beta` (`batch x out`), with or without a bias.
    ///
    /// # Errors
    /// [`NetError::Shape`] when the shapes disagree.
    pub fn new(w: Mat<f64>, z: Mat<f64>, c: Mat<f64>, beta: Mat<f64>, bias: bool) -> Result<UnitCoupling> {
        let (out, inp) = w.shape();
        let batch = z.nrows();
        for (what, found, expected) in [
            ("the coupling's input z", z.shape(), (batch, inp)),
            ("the coupling's c", c.shape(), (batch, out)),
            ("the coupling's beta", beta.shape(), (batch, out)),
        ] {
            if found != expected {
                return Err(NetError::Shape { what: what.to_string(), expected, found });
            }
        }
        Ok(UnitCoupling { w, z, c, beta, bias })
    }

    /// Samples in the batch.
    pub fn batch(&self) -> usize {
        self.z.nrows()
    }
    /// Inputs per sample.
    pub fn inputs(&self) -> usize {
        self.w.ncols()
    }
    /// Output units.
    pub fn units(&self) -> usize {
        self.w.nrows()
    }
    /// Whether each unit has a bias (the last row of its block).
    pub fn has_bias(&self) -> bool {
        self.bias
    }
    /// Parameters per unit: its weights, then its bias.
    pub fn unit_params(&self) -> usize {
        self.inputs() + usize::from(self.bias)
    }
    /// `(p, a_(l-1))`, the shape of `G`.
    pub fn shape(&self) -> (usize, usize) {
        (self.units() * self.unit_params(), self.batch() * self.inputs())
    }
    /// `W` (`out x in`).
    pub fn w(&self) -> MatRef<'_, f64> {
        self.w.as_ref()
    }
    /// The layer's input `z` (`batch x in`).
    pub fn z(&self) -> MatRef<'_, f64> {
        self.z.as_ref()
    }
    /// `c = b_out act''(u)` (`batch x out`), the rank-one parts' scales.
    pub fn c(&self) -> MatRef<'_, f64> {
        self.c.as_ref()
    }
    /// `beta = b_out act'(u)` (`batch x out`), the identity parts' scales.
    pub fn beta(&self) -> MatRef<'_, f64> {
        self.beta.as_ref()
    }

    /// Unit `k`'s parameters, in the layer's order: its weights
    /// `k in .. (k + 1) in`, then its bias `out in + k`.
    pub fn unit_indices(&self, k: usize) -> impl Iterator<Item = usize> {
        let (inp, out) = (self.inputs(), self.units());
        let bias = self.bias.then_some(out * inp + k);
        (k * inp..(k + 1) * inp).chain(bias)
    }

    /// `out += alpha G y` for `y` with `a_(l-1)` rows and `out` with `p`,
    /// column by column: `O(batch p)` each.
    ///
    /// # Errors
    /// [`NetError::Shape`] when the shapes disagree with `G`'s.
    pub fn mul_add(&self, y: MatRef<'_, f64>, mut out: MatMut<'_, f64>, alpha: f64) -> Result<()> {
        self.check("G y", y.shape(), out.shape())?;
        let (batch, inp, units) = (self.batch(), self.inputs(), self.units());
        let mut omega = Mat::<f64>::zeros(batch, units);
        let mut ys = Mat::<f64>::zeros(batch, inp);
        let mut gw = Mat::<f64>::zeros(units, inp);
        for j in 0..y.ncols() {
            copy_rows(y.col(j), ys.as_mut());
            // omega_sk = w_k . y_s; the weights' rows: sum_s c_sk omega_sk z_s + beta_sk y_s.
            matmul(omega.as_mut(), Accum::Replace, ys.as_ref(), self.w.transpose(), 1.0, Par::Seq);
            for k in 0..units {
                for s in 0..batch {
                    omega[(s, k)] *= self.c[(s, k)];
                }
            }
            matmul(gw.as_mut(), Accum::Replace, omega.transpose(), self.z.as_ref(), 1.0, Par::Seq);
            matmul(gw.as_mut(), Accum::Add, self.beta.transpose(), ys.as_ref(), 1.0, Par::Seq);
            let mut col = out.as_mut().col_mut(j);
            for k in 0..units {
                for i in 0..inp {
                    col[k * inp + i] += alpha * gw[(k, i)];
                }
                if self.bias {
                    col[units * inp + k] += alpha * (0..batch).map(|s| omega[(s, k)]).sum::<f64>();
                }
            }
        }
        Ok(())
    }

    /// `out += alpha G^T t` for `t` with `p` rows and `out` with
    /// `a_(l-1)`, column by column: `O(batch p)` each.
    ///
    /// # Errors
    /// [`NetError::Shape`] when the shapes disagree with `G`'s.
    pub fn tmul_add(&self, t: MatRef<'_, f64>, mut out: MatMut<'_, f64>, alpha: f64) -> Result<()> {
        self.check("G^T t", out.shape(), t.shape())?;
        let (batch, inp, units) = (self.batch(), self.inputs(), self.units());
        let mut xi = Mat::<f64>::zeros(batch, units);
        let mut tw = Mat::<f64>::zeros(units, inp);
        let mut r = Mat::<f64>::zeros(batch, inp);
        for j in 0..t.ncols() {
            let col = t.col(j);
            copy_rows(col, tw.as_mut());
            // xi_sk = z~_s . t_k; sample s's block: sum_k c_sk xi_sk w_k + beta_sk t_k.
            matmul(xi.as_mut(), Accum::Replace, self.z.as_ref(), tw.transpose(), 1.0, Par::Seq);
            for k in 0..units {
                let tb = if self.bias { col[units * inp + k] } else { 0.0 };
                for s in 0..batch {
                    xi[(s, k)] = self.c[(s, k)] * (xi[(s, k)] + tb);
                }
            }
            matmul(r.as_mut(), Accum::Replace, xi.as_ref(), self.w.as_ref(), 1.0, Par::Seq);
            matmul(r.as_mut(), Accum::Add, self.beta.as_ref(), tw.as_ref(), 1.0, Par::Seq);
            let mut dst = out.as_mut().col_mut(j);
            for s in 0..batch {
                for i in 0..inp {
                    dst[s * inp + i] += alpha * r[(s, i)];
                }
            }
        }
        Ok(())
    }

    /// `G`, formed (`p x a_(l-1)`): for tests and small layers.
    pub fn to_dense(&self) -> Mat<f64> {
        let (p, a) = self.shape();
        let (inp, units) = (self.inputs(), self.units());
        let mut g = Mat::<f64>::zeros(p, a);
        for s in 0..self.batch() {
            for k in 0..units {
                let (c, beta) = (self.c[(s, k)], self.beta[(s, k)]);
                for jp in 0..inp {
                    let cw = c * self.w[(k, jp)];
                    for (i, row) in self.unit_indices(k).enumerate() {
                        let zi = if i < inp { self.z[(s, i)] } else { 1.0 };
                        g[(row, s * inp + jp)] = cw * zi + if i == jp { beta } else { 0.0 };
                    }
                }
            }
        }
        g
    }

    /// The shapes of `G`'s product `(a_(l-1) rows, p rows)` checked: the
    /// input-side and parameter-side matrices, with the same columns.
    fn check(&self, op: &'static str, inputs: (usize, usize), params: (usize, usize)) -> Result<()> {
        let (p, a) = self.shape();
        if inputs.0 != a || inputs.1 != params.1 {
            return Err(NetError::Shape {
                what: format!("{op}: the inputs' side"),
                expected: (a, params.1),
                found: inputs,
            });
        }
        if params.0 != p {
            return Err(NetError::Shape {
                what: format!("{op}: the parameters' side"),
                expected: (p, inputs.1),
                found: params,
            });
        }
        Ok(())
    }
}

/// `dst <- ` the first `rows cols` entries of a flat column stored row by
/// row (activations sample by sample, weights unit by unit).
fn copy_rows(col: faer::ColRef<'_, f64>, mut dst: MatMut<'_, f64>) {
    let cols = dst.ncols();
    for i in 0..dst.nrows() {
        for j in 0..cols {
            dst[(i, j)] = col[i * cols + j];
        }
    }
}

#[cfg(test)]
mod tests {
    use faer::Mat;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::UnitCoupling;
    use crate::batch::Targets;
    use crate::{Activation, Dense, Layer};

    /// The coupling a dense layer's product hands out is its formed `G`,
    /// and its products are that matrix's, for every activation, with and
    /// without a bias, residual or not, on several columns. `to_dense`
    /// and `dense.rs` compute each entry as `c w z + beta` in different
    /// orders (a few ulps); the products sum `O(batch + in + out)` terms
    /// of unit-scale numbers in different orders: 1e-13 of the scale.
    #[test]
    fn coupling_is_the_formed_block() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let targets = Targets::Classes(vec![]);
        for act in Activation::ALL {
            for &(inp, out, batch, bias, residual) in
                &[(3, 5, 1, false, false), (4, 2, 3, true, false), (6, 6, 4, true, true), (5, 5, 2, false, true)]
            {
                let layer = if residual { Dense::residual(inp, act, bias) } else { Dense::new(inp, out, act, bias) };
                let (p, out) = (layer.num_params(), layer.out_features());
                let x: Vec<f64> = (0..p).map(|_| rng.random_range(-1.5..1.5)).collect();
                let z = Mat::from_fn(batch, inp, |_, _| rng.random_range(-1.5..1.5));
                let b_out: Vec<f64> = (0..batch * out).map(|_| rng.random_range(-1.5..1.5)).collect();
                let g = layer.blocks(&x, z.as_ref(), &targets, &b_out).g.to_dense();
                let product = layer.product(&x, z.as_ref(), &targets, &b_out).expect("a dense layer has products");
                let u = product.unit_coupling().expect("a dense layer's G has unit factors");
                assert_eq!(u.shape(), g.shape());
                let scale = g.norm_max().max(1.0);
                assert!((&u.to_dense() - &g).norm_max() <= 1e-14 * scale, "{}", layer.name());
                let y = Mat::from_fn(g.ncols(), 3, |_, _| rng.random_range(-1.0..1.0));
                let t = Mat::from_fn(p, 3, |_, _| rng.random_range(-1.0..1.0));
                let (mut gy, mut gtt) = (Mat::from_fn(p, 3, |i, j| (i + j) as f64), Mat::<f64>::zeros(g.ncols(), 3));
                let want_gy = &gy + &(&g * &y * faer::Scale(-2.0));
                u.mul_add(y.as_ref(), gy.as_mut(), -2.0).unwrap();
                u.tmul_add(t.as_ref(), gtt.as_mut(), 1.0).unwrap();
                let err = (&gy - &want_gy).norm_max().max((&gtt - &(g.transpose() * &t)).norm_max());
                assert!(err <= 1e-13 * scale * (batch + inp + out) as f64, "{}: {err:e}", layer.name());
            }
        }
    }

    /// Shapes that do not fit are errors naming the side that is wrong.
    #[test]
    fn mismatched_shapes_are_errors() {
        let u =
            UnitCoupling::new(Mat::zeros(2, 3), Mat::zeros(4, 3), Mat::zeros(4, 2), Mat::zeros(4, 2), true).unwrap();
        assert_eq!(u.shape(), (8, 12));
        assert_eq!(u.unit_indices(1).collect::<Vec<_>>(), vec![3, 4, 5, 7]);
        let err = u.mul_add(Mat::zeros(11, 1).as_ref(), Mat::zeros(8, 1).as_mut(), 1.0).unwrap_err();
        insta::assert_snapshot!(err.to_string(), @"G y: the inputs' side: expected shape (12, 1), found (11, 1)");
        let err = u.tmul_add(Mat::zeros(8, 2).as_ref(), Mat::zeros(12, 1).as_mut(), 1.0).unwrap_err();
        insta::assert_snapshot!(err.to_string(), @"G^T t: the inputs' side: expected shape (12, 2), found (12, 1)");
        let err = UnitCoupling::new(Mat::zeros(2, 3), Mat::zeros(4, 3), Mat::zeros(4, 2), Mat::zeros(3, 2), false);
        insta::assert_snapshot!(err.unwrap_err().to_string(), @"the coupling's beta: expected shape (4, 2), found (3, 2)");
    }
}
