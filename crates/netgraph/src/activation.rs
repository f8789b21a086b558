//! Elementwise activations with their first and second derivatives in
//! closed form.

use serde::{Deserialize, Serialize};

/// An elementwise activation function.
///
/// Each one provides `act`, `act'` and `act''`; the derivative blocks of a
/// dense layer are built from these three numbers per unit and sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `x`.
    Identity,
    /// `tanh x`.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `log(1 + e^x)`, evaluated without overflow.
    Softplus,
    /// `x * Phi(x)` with the normal CDF `Phi` (PyTorch's default, erf form).
    Gelu,
    /// `max(x, 0)`; its second derivative is taken as zero everywhere.
    Relu,
    /// `x^2`.
    Square,
}

const INV_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
// 1 / sqrt(2 pi), the normal density at 0.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

fn sigmoid(x: f64) -> f64 {
    // Two branches so that exp never overflows.
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl Activation {
    /// All activations, for tests and sweeps.
    pub const ALL: [Activation; 7] = [
        Activation::Identity,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Softplus,
        Activation::Gelu,
        Activation::Relu,
        Activation::Square,
    ];

    /// The lowercase name used in specs.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Softplus => "softplus",
            Activation::Gelu => "gelu",
            Activation::Relu => "relu",
            Activation::Square => "square",
        }
    }

    /// The value at `x`.
    pub fn value(self, x: f64) -> f64 {
        self.eval(x).0
    }

    /// `(act(x), act'(x), act''(x))`.
    pub fn eval(self, x: f64) -> (f64, f64, f64) {
        match self {
            Activation::Identity => (x, 1.0, 0.0),
            Activation::Tanh => {
                let t = x.tanh();
                let d = 1.0 - t * t;
                (t, d, -2.0 * t * d)
            }
            Activation::Sigmoid => {
                let s = sigmoid(x);
                let d = s * (1.0 - s);
                (s, d, d * (1.0 - 2.0 * s))
            }
            Activation::Softplus => {
                let s = sigmoid(x);
                (x.max(0.0) + (-x.abs()).exp().ln_1p(), s, s * (1.0 - s))
            }
            Activation::Gelu => {
                let cdf = 0.5 * (1.0 + libm::erf(x * INV_SQRT_2));
                let pdf = INV_SQRT_2PI * (-0.5 * x * x).exp();
                // (x Phi)' = Phi + x phi and phi' = -x phi.
                (x * cdf, cdf + x * pdf, pdf * (2.0 - x * x))
            }
            Activation::Relu => {
                if x > 0.0 {
                    (x, 1.0, 0.0)
                } else {
                    (0.0, 0.0, 0.0)
                }
            }
            Activation::Square => (x * x, 2.0 * x, 2.0),
        }
    }
}
