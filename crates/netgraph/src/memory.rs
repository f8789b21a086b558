//! Memory estimates, so that absurd shapes (a spec claiming 10^14
//! parameters, a batch whose derivative blocks would not fit) are refused
//! with the memory they would need before anything is allocated.
//!
//! Sizes are counted in `u128` with saturating arithmetic: a spec may
//! claim any `usize` widths, and the product of two of them must neither
//! wrap nor panic before it can be refused.

use crate::error::{NetError, Result};
use crate::linear::{low_rank_units, structured_jacobian};
use crate::network::Network;
use crate::spec::{LayerSpec, LossSpec, NetSpec};

/// The budget used when the system does not report its available memory.
/// Generous on purpose: it only exists to refuse the absurd.
pub const FALLBACK_LIMIT: u64 = 16 << 30;

/// Bytes of memory available, from `/proc/meminfo` (`MemAvailable`), if the
/// system reports it.
pub fn available_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The default memory budget: the available memory, or [`FALLBACK_LIMIT`].
pub fn default_limit() -> u64 {
    available_memory().unwrap_or(FALLBACK_LIMIT)
}

/// A byte count for messages: `"1.50 GiB"`, `"7.28 PiB"`, `"512 B"`.
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Precision beyond three digits does not matter in a refusal.
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {}", UNITS[unit])
}

const F64: u128 = std::mem::size_of::<f64>() as u128;

fn mul(a: usize, b: usize) -> u128 {
    (a as u128).saturating_mul(b as u128)
}

/// Parameters of a linear map `inp -> out` with an optional bias.
fn linear_params(inp: usize, out: usize, bias: bool) -> u128 {
    mul(inp, out).saturating_add(if bias { out as u128 } else { 0 })
}

/// Stored entries of `A` for a unitwise Hessian (`out` blocks `in x in`,
/// plus the bias row, column and scalar of each unit).
fn unitwise_entries(inp: usize, out: usize, bias: bool, batch: usize) -> u128 {
    let unit = if low_rank_units(inp, batch) {
        mul(inp, batch).saturating_mul(2).saturating_add(mul(batch, batch))
    } else {
        mul(inp, inp)
    };
    let ww = (out as u128).saturating_mul(unit);
    let extra = if bias { (out as u128).saturating_mul(2 * inp as u128 + 1) } else { 0 };
    ww.saturating_add(extra)
}

/// Stored entries of a spec layer's five blocks, as the built-in layers
/// store them (`Dx`, `G` dense; `Dz`, `E` per sample; `A` per unit or dense).
fn spec_layer_entries(inp: usize, out: usize, bias: bool, batch: usize, loss: Option<LossSpec>, first: bool) -> u128 {
    let p = linear_params(inp, out, bias);
    let b = batch as u128;
    // A first layer computes no input derivatives (`Layer::first_blocks`).
    let input = !first;
    let g = if input { p.saturating_mul(mul(batch, inp)) } else { 0 };
    let e = if input { b.saturating_mul(mul(inp, inp)) } else { 0 };
    let (dx, dz, a) = match loss {
        None => (
            if structured_jacobian(batch, out, p as usize) {
                // Per sample and unit: the weights' row as rank-one factors
                // (`1 + 1 + in` entries) and the bias slope.
                b.saturating_mul(out as u128).saturating_mul(p / out.max(1) as u128 + 2)
            } else {
                b.saturating_mul(out as u128).saturating_mul(p)
            },
            if input { b.saturating_mul(mul(out, inp)) } else { 0 },
            unitwise_entries(inp, out, bias, batch),
        ),
        Some(LossSpec::CrossEntropy { .. }) => (p, if input { mul(batch, inp) } else { 0 }, p.saturating_mul(p)),
        Some(LossSpec::Mse { .. }) => {
            (p, if input { mul(batch, inp) } else { 0 }, unitwise_entries(inp, out, bias, batch))
        }
    };
    [dx, dz, a, g, e].into_iter().fold(0u128, u128::saturating_add)
}

/// Number of parameters a spec describes, without building it.
pub(crate) fn spec_params(spec: &NetSpec) -> u128 {
    let mut width = spec.input_dim;
    let mut total = 0u128;
    for l in &spec.layers {
        let (out, bias) = match *l {
            LayerSpec::Dense { out, bias, .. } => (out, bias),
            LayerSpec::Residual { bias, .. } => (width, bias),
        };
        total = total.saturating_add(linear_params(width, out, bias));
        width = out;
    }
    total.saturating_add(linear_params(width, spec.loss.outputs(), spec.loss.bias()))
}

/// Refuses a spec whose parameters alone would need more than `limit` bytes.
pub(crate) fn check_spec(spec: &NetSpec, limit: u64) -> Result<()> {
    let needed = spec_params(spec).saturating_mul(F64);
    if needed > u128::from(limit) {
        let what = format!("the parameters of this network ({} layers)", spec.layers.len() + 1);
        return Err(NetError::TooLarge { what, needed, limit });
    }
    Ok(())
}

impl Network {
    /// Bytes of the flat parameter vector (8 per parameter). Never
    /// overflows: counted in `u128`, saturating.
    pub fn param_bytes(&self) -> u128 {
        let params = match &self.spec_ref() {
            Some(spec) => spec_params(spec),
            None => self.layers().iter().map(|l| l.num_params() as u128).fold(0, u128::saturating_add),
        };
        params.saturating_mul(F64)
    }

    /// Bytes the derivative blocks ([`Network::derivatives`]) of a batch of
    /// `batch` samples occupy: 8 per stored entry, exactly, for networks
    /// built from a spec (`Dx` and `G` dense, `Dz` and `E` one block per
    /// sample, `A` one block per unit, or dense for cross-entropy; the first
    /// layer has no `Dz`, `G`, `E`); for custom layers, the dense
    /// sizes of the five blocks (an upper bound).
    pub fn derivative_bytes(&self, batch: usize) -> u128 {
        let entries = match &self.spec_ref() {
            Some(spec) => {
                let mut width = spec.input_dim;
                let mut total = 0u128;
                for (i, l) in spec.layers.iter().enumerate() {
                    let (out, bias) = match *l {
                        LayerSpec::Dense { out, bias, .. } => (out, bias),
                        LayerSpec::Residual { bias, .. } => (width, bias),
                    };
                    total = total.saturating_add(spec_layer_entries(width, out, bias, batch, None, i == 0));
                    width = out;
                }
                let loss = spec.loss;
                let first = spec.layers.is_empty();
                total.saturating_add(spec_layer_entries(width, loss.outputs(), loss.bias(), batch, Some(loss), first))
            }
            None => {
                let mut a_in = mul(batch, self.input_dim());
                let mut total = 0u128;
                for l in self.layers() {
                    let p = l.num_params() as u128;
                    let a_out = if l.is_loss() { 1 } else { mul(batch, l.out_features()) };
                    let blocks = [
                        a_out.saturating_mul(p),
                        a_out.saturating_mul(a_in),
                        p.saturating_mul(p),
                        p.saturating_mul(a_in),
                        a_in.saturating_mul(a_in),
                    ];
                    total = blocks.into_iter().fold(total, u128::saturating_add);
                    a_in = a_out;
                }
                total
            }
        };
        entries.saturating_mul(F64)
    }

    /// Bytes one evaluation of the derivatives needs in all: the blocks,
    /// the activations and `b` vectors of the passes, and the gradient.
    pub fn derivatives_memory(&self, batch: usize) -> u128 {
        let acts = self.act_sizes_u128(batch);
        self.derivative_bytes(batch).saturating_add(acts.saturating_mul(2 * F64)).saturating_add(self.param_bytes())
    }

    /// Refuses, before anything is allocated, a batch of `batch` samples
    /// whose derivative computation ([`Network::derivatives_memory`]) would
    /// need more than `limit` bytes.
    pub fn check_derivatives_memory(&self, batch: usize, limit: u64) -> Result<()> {
        let needed = self.derivatives_memory(batch);
        if needed > u128::from(limit) {
            let what = format!(
                "the derivative blocks of this network ({} parameters, {} layers) for a batch of {batch}",
                self.param_bytes() / F64,
                self.num_layers()
            );
            return Err(NetError::TooLarge { what, needed, limit });
        }
        Ok(())
    }

    /// `sum_l a_l` without overflow.
    fn act_sizes_u128(&self, batch: usize) -> u128 {
        let first = mul(batch, self.input_dim());
        self.layers()
            .iter()
            .map(|l| if l.is_loss() { 1 } else { mul(batch, l.out_features()) })
            .fold(first, u128::saturating_add)
    }
}
