//! [`check_layer`]: a layer's closed-form blocks against central finite
//! differences of its own forward map and vector-Jacobian product.
//!
//! `Dx`, `Dz` are differenced from `forward`; the `vjp` is compared with
//! `b . Dx_fd` and `b . Dz_fd`, which ties it to the forward map too; then
//! `A`, `G`, `E` are differenced from the `vjp` (the gradient of `phi`).
//! A layer's matrix-free products ([`Layer::product`]) are applied to unit
//! vectors and compared with the same differences.

use faer::{Mat, MatRef};

use crate::batch::{row_major, Targets};
use crate::error::{NetError, Result};
use crate::layer::Layer;

/// One compared entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// `"Dx"`, `"Dz"`, `"A"`, `"G"`, `"E"`, `"vjp_x"`, `"vjp_z"`, or for a
    /// layer with matrix-free products `"product_tangent"` (`[Dx Dz]`) and
    /// `"product_adjoint"` (`[[A G Dx^T] [G^T E Dz^T]]`).
    pub block: &'static str,
    /// Row in the block.
    pub row: usize,
    /// Column in the block.
    pub col: usize,
    /// The closed-form value.
    pub value: f64,
    /// The finite-difference value.
    pub fd: f64,
    /// `|value - fd| / (1 + |fd|)`: absolute near zero, relative for large entries.
    pub error: f64,
}

/// The outcome of [`check_layer`].
#[derive(Debug, Clone, PartialEq)]
pub struct LayerCheck {
    /// The worst entry of every block, in the order `Dx, Dz, A, G, E, vjp_x, vjp_z`,
    /// then `product_tangent, product_adjoint` for a layer with matrix-free
    /// products (`None` for an empty block).
    pub per_block: Vec<(&'static str, Option<Mismatch>)>,
}

impl LayerCheck {
    /// The worst entry over all blocks.
    pub fn worst(&self) -> Option<&Mismatch> {
        self.per_block.iter().filter_map(|(_, m)| m.as_ref()).max_by(|a, b| a.error.total_cmp(&b.error))
    }
    /// The largest error over all blocks (0 when everything is empty).
    pub fn max_error(&self) -> f64 {
        self.worst().map_or(0.0, |m| m.error)
    }
}

/// Compares the blocks of `layer` at `(x, z)` with `b_l = b_out` against
/// central differences with step `h` (`1e-5` suits unit-scale inputs: the
/// error of the differences is then about `1e-9`).
pub fn check_layer(
    layer: &dyn Layer,
    x: &[f64],
    z: MatRef<'_, f64>,
    targets: &Targets,
    b_out: &[f64],
    h: f64,
) -> Result<LayerCheck> {
    let (batch, inp, p) = (z.nrows(), layer.in_features(), layer.num_params());
    if x.len() != p {
        return Err(NetError::ParamLength { expected: p, found: x.len() });
    }
    if z.ncols() != inp {
        return Err(NetError::Shape { what: "layer input".into(), expected: (batch, inp), found: (batch, z.ncols()) });
    }
    let a_out = layer.output_len(batch);
    if b_out.len() != a_out {
        return Err(NetError::Length { what: "b_out".into(), expected: a_out, found: b_out.len() });
    }
    layer.check_targets(targets)?;
    let a_in = batch * inp;

    let flat = |m: &Mat<f64>| -> Vec<f64> { row_major(m).collect() };
    let z0 = z.to_owned();
    let shifted_z = |i: usize, d: f64| {
        let mut zz = z0.clone();
        zz[(i / inp, i % inp)] += d;
        zz
    };
    let shifted_x = |i: usize, d: f64| {
        let mut xx = x.to_vec();
        xx[i] += d;
        xx
    };
    let diff = |plus: Vec<f64>, minus: Vec<f64>| -> Vec<f64> {
        plus.iter().zip(&minus).map(|(a, b)| (a - b) / (2.0 * h)).collect()
    };
    let columns = |n: usize, rows: usize, col: &dyn Fn(usize) -> Vec<f64>| {
        let cols: Vec<Vec<f64>> = (0..n).map(col).collect();
        Mat::from_fn(rows, n, |r, c| cols[c].get(r).copied().unwrap_or(f64::NAN))
    };

    let dx_fd = columns(p, a_out, &|i| {
        diff(flat(&layer.forward(&shifted_x(i, h), z, targets)), flat(&layer.forward(&shifted_x(i, -h), z, targets)))
    });
    let dz_fd = columns(a_in, a_out, &|i| {
        diff(
            flat(&layer.forward(x, shifted_z(i, h).as_ref(), targets)),
            flat(&layer.forward(x, shifted_z(i, -h).as_ref(), targets)),
        )
    });
    let vjp_x = |xx: &[f64]| layer.vjp(xx, z, targets, b_out);
    let vjp_z = |zz: &Mat<f64>| layer.vjp(x, zz.as_ref(), targets, b_out);
    let a_fd = columns(p, p, &|i| diff(vjp_x(&shifted_x(i, h)).0, vjp_x(&shifted_x(i, -h)).0));
    let g_fd = columns(a_in, p, &|i| diff(vjp_z(&shifted_z(i, h)).0, vjp_z(&shifted_z(i, -h)).0));
    let e_fd = columns(a_in, a_in, &|i| diff(vjp_z(&shifted_z(i, h)).1, vjp_z(&shifted_z(i, -h)).1));

    let blocks = layer.blocks(x, z, targets, b_out);
    let (gx, gz) = layer.vjp(x, z, targets, b_out);
    let bvec = Mat::from_fn(1, a_out, |_, i| b_out[i]);
    let vjp_x_fd = &bvec * &dx_fd;
    let vjp_z_fd = &bvec * &dz_fd;
    let as_row = |v: &[f64]| Mat::from_fn(1, v.len(), |_, i| v[i]);

    let mut per_block = Vec::with_capacity(7);
    let fds = [&dx_fd, &dz_fd, &a_fd, &g_fd, &e_fd];
    for ((name, block), fd) in blocks.named().into_iter().zip(fds) {
        per_block.push((name, compare(name, &block.to_dense(), fd)));
    }
    per_block.push(("vjp_x", compare("vjp_x", &as_row(&gx), &vjp_x_fd)));
    per_block.push(("vjp_z", compare("vjp_z", &as_row(&gz), &vjp_z_fd)));
    if let Some(m) = layer.product(x, z, targets, b_out) {
        // Unit directions through the products give their matrices column
        // by column: `(v, t_in)` for the tangent, `(v, t_in, s)` for the
        // adjoint (the `s` rows of its output are `hv`, then `s_in`).
        let unit = |n: usize, c: usize| -> Vec<f64> { (0..n).map(|i| f64::from(u8::from(i == c))).collect() };
        let tangent = columns(p + a_in, a_out, &|c| {
            let e = unit(p + a_in, c);
            let (mut out, mut scratch) = (vec![0.0; a_out], vec![0.0; m.scratch_len()]);
            m.tangent(&e[..p], Some(&e[p..]), &mut out, &mut scratch);
            out
        });
        let adjoint = columns(p + a_in + a_out, p + a_in, &|c| {
            let e = unit(p + a_in + a_out, c);
            let (mut hv, mut s_in, mut scratch) = (vec![0.0; p], vec![0.0; a_in], vec![0.0; m.scratch_len()]);
            m.adjoint(&e[..p], Some(&e[p..p + a_in]), &e[p + a_in..], &mut hv, Some(&mut s_in), &mut scratch);
            hv.extend(s_in);
            hv
        });
        let tangent_fd = Mat::from_fn(a_out, p + a_in, |i, j| if j < p { dx_fd[(i, j)] } else { dz_fd[(i, j - p)] });
        let adjoint_fd = Mat::from_fn(p + a_in, p + a_in + a_out, |i, j| match (i < p, j) {
            (true, j) if j < p => a_fd[(i, j)],
            (true, j) if j < p + a_in => g_fd[(i, j - p)],
            (true, j) => dx_fd[(j - p - a_in, i)],
            (false, j) if j < p => g_fd[(j, i - p)],
            (false, j) if j < p + a_in => e_fd[(i - p, j - p)],
            (false, j) => dz_fd[(j - p - a_in, i - p)],
        });
        per_block.push(("product_tangent", compare("product_tangent", &tangent, &tangent_fd)));
        per_block.push(("product_adjoint", compare("product_adjoint", &adjoint, &adjoint_fd)));
    }
    Ok(LayerCheck { per_block })
}

/// The worst entry of `value` against `fd`; a shape mismatch is reported as
/// an infinite error at the first differing dimension.
fn compare(block: &'static str, value: &Mat<f64>, fd: &Mat<f64>) -> Option<Mismatch> {
    if value.shape() != fd.shape() {
        return Some(Mismatch {
            block,
            row: value.nrows(),
            col: value.ncols(),
            value: f64::NAN,
            fd: f64::NAN,
            error: f64::INFINITY,
        });
    }
    let mut worst: Option<Mismatch> = None;
    for i in 0..value.nrows() {
        for j in 0..value.ncols() {
            let (v, f) = (value[(i, j)], fd[(i, j)]);
            let error = if v.is_finite() && f.is_finite() { (v - f).abs() / (1.0 + f.abs()) } else { f64::INFINITY };
            if worst.as_ref().is_none_or(|w| error > w.error) {
                worst = Some(Mismatch { block, row: i, col: j, value: v, fd: f, error });
            }
        }
    }
    worst
}
