//! Evaluating a network on a whole split: loss, the pre-loss outputs
//! (logits or predicted values) and classification accuracy.

use faer::Mat;
use netgraph::{Batch, Network, Params, Targets};

use crate::error::{HinvError, Result};

/// The outputs of the final linear map, before the loss (`samples x
/// outputs`): the logits of a classifier, the predictions of a regression.
/// The loss layer fuses this map with the loss, so it is recomputed here
/// from the last hidden activations and the layer's weights (row-major
/// `out x in`, then the bias when there is one).
pub fn outputs(net: &Network, params: &Params, batch: &Batch) -> Result<Mat<f64>> {
    outputs_of(net, params, &net.forward(params, batch)?)
}

/// [`outputs`] from a forward pass already made.
fn outputs_of(net: &Network, params: &Params, fwd: &netgraph::Forward) -> Result<Mat<f64>> {
    let nl = net.num_layers();
    let z = &fwd.activations[nl - 1];
    let inp = z.ncols();
    let w = params.layer(nl - 1);
    let out = net.spec().map_or(0, |s| s.loss.outputs());
    let bias = if out > 0 && w.len() == out * inp + out {
        true
    } else if out > 0 && w.len() == out * inp {
        false
    } else {
        return Err(HinvError::Training {
            reason: format!("the loss layer holds {} parameters, not {out} x {inp} (+ bias)", w.len()),
        });
    };
    let wm = Mat::from_fn(out, inp, |k, j| w[k * inp + j]);
    let mut u = z * wm.transpose();
    if bias {
        for s in 0..u.nrows() {
            for k in 0..out {
                u[(s, k)] += w[out * inp + k];
            }
        }
    }
    Ok(u)
}

/// Loss and (for class targets) accuracy on a whole batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean loss, as the network's loss layer defines it.
    pub loss: f64,
    /// Fraction of samples whose largest logit is their class; `None` for
    /// a regression.
    pub accuracy: Option<f64>,
}

/// The loss and accuracy of `params` on `batch`.
pub fn evaluate(net: &Network, params: &Params, batch: &Batch) -> Result<Evaluation> {
    let fwd = net.forward(params, batch)?;
    let loss = fwd.loss;
    let accuracy = match batch.targets() {
        Targets::Classes(c) => {
            let u = outputs_of(net, params, &fwd)?;
            let hits = c
                .iter()
                .enumerate()
                .filter(|&(s, &y)| {
                    let best = (0..u.ncols()).max_by(|&a, &b| u[(s, a)].total_cmp(&u[(s, b)]));
                    best == Some(y)
                })
                .count();
            Some(hits as f64 / c.len().max(1) as f64)
        }
        Targets::Values(_) => None,
    };
    Ok(Evaluation { loss, accuracy })
}
