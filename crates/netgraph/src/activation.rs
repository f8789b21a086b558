//! Elementwise activations with their first and second derivatives in
//! closed form, each the function PyTorch's module of the same name computes.
//!
//! In a spec an activation is either its name (`"tanh"`) or an object with
//! its name under `kind` and its parameters (`{"kind": "softplus", "beta":
//! 2}`); see [`Activation`] and `docs/spec.md`.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{NetError, Result};

/// An elementwise activation function.
///
/// Each one provides `act`, `act'` and `act''`; the derivative blocks of a
/// dense layer are built from these three numbers per unit and sample.
/// Where PyTorch's function is defined piecewise (ReLU, Softplus) the
/// derivatives are those its autograd returns, branch for branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `x` (`nn.Identity`).
    Identity,
    /// `tanh x` (`nn.Tanh`).
    Tanh,
    /// `1 / (1 + e^-x)` (`nn.Sigmoid`).
    Sigmoid,
    /// `nn.Softplus(beta, threshold)`: `log(1 + e^(beta x)) / beta`, and
    /// exactly `x` where `beta x > threshold`; see [`Softplus`].
    Softplus(Softplus),
    /// `x * Phi(x)` with the normal CDF `Phi` (`nn.GELU()`, the erf form).
    Gelu,
    /// `nn.GELU(approximate="tanh")`:
    /// `x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    GeluTanh,
    /// `max(x, 0)` (`nn.ReLU`); its derivative at 0 is 0 and its second
    /// derivative is taken as zero everywhere, as PyTorch's autograd does.
    Relu,
    /// `x^2`.
    Square,
}

/// The parameters of PyTorch's `nn.Softplus(beta, threshold)`.
///
/// With `t = beta x` (rounded as PyTorch rounds it):
///
/// | where | value | first derivative | second derivative |
/// |---|---|---|---|
/// | `t < threshold` | `log(1 + e^t) / beta` | `sigmoid(t)` | `beta sigmoid(t) sigmoid(-t)` |
/// | `t = threshold` | `log(1 + e^t) / beta` | `sigmoid(t)` | `0` |
/// | `t > threshold` | `x` | `1` | `0` |
///
/// The middle row is PyTorch's autograd at the seam: its forward and first
/// backward take the smooth branch there, its double backward does not.
/// The smooth branch is evaluated without overflow for any threshold.
///
/// Values are built by [`Softplus::new`], which refuses a `beta` that is not
/// positive and finite and a threshold that is not finite: a `Softplus` is
/// always valid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Softplus {
    beta: f64,
    threshold: f64,
}

impl Eq for Softplus {}

impl std::hash::Hash for Softplus {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Both fields are finite and `threshold` has no negative zero
        // (`new` folds it), so equal values have equal bits.
        self.beta.to_bits().hash(state);
        self.threshold.to_bits().hash(state);
    }
}

impl Default for Softplus {
    fn default() -> Self {
        Softplus::DEFAULT
    }
}

impl Softplus {
    /// PyTorch's defaults, `beta = 1`, `threshold = 20`.
    pub const DEFAULT: Softplus = Softplus { beta: 1.0, threshold: 20.0 };

    /// `nn.Softplus(beta, threshold)`; fails with
    /// [`NetError::ActivationParameter`] unless `beta` is positive and finite
    /// and `threshold` finite.
    pub fn new(beta: f64, threshold: f64) -> Result<Softplus> {
        let bad = |parameter: &'static str, value: f64, expected: &'static str| NetError::ActivationParameter {
            activation: "softplus",
            parameter,
            value,
            expected,
        };
        if !(beta > 0.0 && beta.is_finite()) {
            return Err(bad("beta", beta, "positive and finite"));
        }
        if !threshold.is_finite() {
            return Err(bad("threshold", threshold, "finite"));
        }
        // `+ 0.0` folds -0 into +0 (same comparisons, one bit pattern).
        Ok(Softplus { beta, threshold: threshold + 0.0 })
    }
    /// `beta`.
    pub fn beta(self) -> f64 {
        self.beta
    }
    /// `threshold`.
    pub fn threshold(self) -> f64 {
        self.threshold
    }
    /// Whether these are PyTorch's defaults.
    pub fn is_default(self) -> bool {
        self == Softplus::DEFAULT
    }

    /// `(value, first, second derivative)` at `x`, per the table above.
    pub fn eval(self, x: f64) -> (f64, f64, f64) {
        let t = x * self.beta;
        if t > self.threshold {
            return (x, 1.0, 0.0);
        }
        // log(1 + e^t) = max(t, 0) + log1p(e^-|t|): no overflow for any t.
        let value = (t.max(0.0) + (-t.abs()).exp().ln_1p()) / self.beta;
        let s = sigmoid(t);
        // sigmoid(t) sigmoid(-t) rather than s (1 - s): no cancellation for large t.
        let second = if t < self.threshold { self.beta * s * sigmoid(-t) } else { 0.0 };
        (value, s, second)
    }
}

const INV_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
// 1 / sqrt(2 pi), the normal density at 0.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
// sqrt(2 / pi) and the cubic coefficient of PyTorch's tanh approximation.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_KAPPA: f64 = 0.044_715;

fn sigmoid(x: f64) -> f64 {
    // Two branches so that exp never overflows.
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The names a spec may use (GELU's tanh form is `gelu` with a parameter).
pub const NAMES: [&str; 7] = ["identity", "tanh", "sigmoid", "softplus", "gelu", "relu", "square"];

impl Activation {
    /// One activation of each kind, with PyTorch's default parameters, for
    /// tests and sweeps (the tanh GELU last, so that the others keep the
    /// positions, hence the seeds, they had before it was added).
    pub const ALL: [Activation; 8] = [
        Activation::Identity,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::SOFTPLUS,
        Activation::Gelu,
        Activation::Relu,
        Activation::Square,
        Activation::GeluTanh,
    ];

    /// `nn.Softplus()` with PyTorch's defaults (`beta = 1`, `threshold = 20`).
    pub const SOFTPLUS: Activation = Activation::Softplus(Softplus::DEFAULT);

    /// The name used in specs (`"gelu"` for both GELU forms, `"softplus"`
    /// whatever its parameters); [`fmt::Display`] adds the parameters.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Softplus(_) => "softplus",
            Activation::Gelu | Activation::GeluTanh => "gelu",
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
            Activation::Softplus(sp) => sp.eval(x),
            Activation::Gelu => {
                let cdf = 0.5 * (1.0 + libm::erf(x * INV_SQRT_2));
                let pdf = INV_SQRT_2PI * (-0.5 * x * x).exp();
                // (x Phi)' = Phi + x phi and phi' = -x phi.
                (x * cdf, cdf + x * pdf, pdf * (2.0 - x * x))
            }
            Activation::GeluTanh => {
                // f = x (1 + t) / 2 with t = tanh(u), u = c (x + k x^3):
                // f' = (1 + t) / 2 + x (1 - t^2) u' / 2,
                // f'' = (1 - t^2) (u' + x (u'' - 2 t u'^2) / 2).
                let x2 = x * x;
                let u = SQRT_2_OVER_PI * (x + GELU_KAPPA * x2 * x);
                let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_KAPPA * x2);
                let ddu = SQRT_2_OVER_PI * 6.0 * GELU_KAPPA * x;
                let t = u.tanh();
                let sech2 = 1.0 - t * t;
                let first = 0.5 * (1.0 + t) + 0.5 * x * sech2 * du;
                let second = sech2 * (du + 0.5 * x * (ddu - 2.0 * t * du * du));
                (0.5 * x * (1.0 + t), first, second)
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

impl fmt::Display for Activation {
    /// The name, with the parameters where they differ from PyTorch's
    /// defaults: `softplus(beta=2, threshold=20)`, `gelu(approximate=tanh)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Activation::Softplus(sp) if !sp.is_default() => {
                write!(f, "softplus(beta={}, threshold={})", sp.beta, sp.threshold)
            }
            Activation::GeluTanh => f.write_str("gelu(approximate=tanh)"),
            other => f.write_str(other.name()),
        }
    }
}

impl Serialize for Activation {
    /// A bare name, or an object with `kind` and the parameters when they
    /// are not PyTorch's defaults.
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match *self {
            Activation::Softplus(sp) if !sp.is_default() => {
                let mut m = serializer.serialize_map(Some(3))?;
                m.serialize_entry("kind", "softplus")?;
                m.serialize_entry("beta", &sp.beta)?;
                m.serialize_entry("threshold", &sp.threshold)?;
                m.end()
            }
            Activation::GeluTanh => {
                let mut m = serializer.serialize_map(Some(2))?;
                m.serialize_entry("kind", "gelu")?;
                m.serialize_entry("approximate", "tanh")?;
                m.end()
            }
            other => serializer.serialize_str(other.name()),
        }
    }
}

/// The keys an activation object may hold.
const FIELDS: [&str; 4] = ["kind", "beta", "threshold", "approximate"];

/// An activation without parameters, by name.
fn plain<E: de::Error>(name: &str) -> std::result::Result<Activation, E> {
    Ok(match name {
        "identity" => Activation::Identity,
        "tanh" => Activation::Tanh,
        "sigmoid" => Activation::Sigmoid,
        "softplus" => Activation::SOFTPLUS,
        "gelu" => Activation::Gelu,
        "relu" => Activation::Relu,
        "square" => Activation::Square,
        other => return Err(E::unknown_variant(other, &NAMES)),
    })
}

struct ActivationVisitor;

impl<'de> Visitor<'de> for ActivationVisitor {
    type Value = Activation;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an activation name or an object {\"kind\": name, parameters...}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Activation, E> {
        plain(v)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Activation, A::Error> {
        let mut kind: Option<String> = None;
        let mut beta: Option<f64> = None;
        let mut threshold: Option<f64> = None;
        let mut approximate: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "kind" => set(&mut kind, "kind", &mut map)?,
                "beta" => set(&mut beta, "beta", &mut map)?,
                "threshold" => set(&mut threshold, "threshold", &mut map)?,
                "approximate" => set(&mut approximate, "approximate", &mut map)?,
                other => return Err(de::Error::unknown_field(other, &FIELDS)),
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
        // A parameter given to an activation that does not take it.
        let stray = |param: &str, takes: &'static [&'static str]| {
            de::Error::custom(format_args!(
                "activation `{kind}` has no parameter `{param}`{}",
                match takes {
                    [] => String::new(),
                    [one] => format!(" (it takes `{one}`)"),
                    many => format!(" (it takes `{}`)", many.join("`, `")),
                }
            ))
        };
        match kind.as_str() {
            "softplus" => {
                if approximate.is_some() {
                    return Err(stray("approximate", &["beta", "threshold"]));
                }
                let d = Softplus::DEFAULT;
                Softplus::new(beta.unwrap_or(d.beta), threshold.unwrap_or(d.threshold))
                    .map(Activation::Softplus)
                    .map_err(de::Error::custom)
            }
            "gelu" => {
                if beta.is_some() || threshold.is_some() {
                    let param = if beta.is_some() { "beta" } else { "threshold" };
                    return Err(stray(param, &["approximate"]));
                }
                match approximate.as_deref() {
                    None | Some("none") => Ok(Activation::Gelu),
                    Some("tanh") => Ok(Activation::GeluTanh),
                    Some(other) => Err(de::Error::unknown_variant(other, &["none", "tanh"])),
                }
            }
            name => {
                let act = plain(name)?;
                let given = [
                    ("beta", beta.is_some()),
                    ("threshold", threshold.is_some()),
                    ("approximate", approximate.is_some()),
                ];
                match given.into_iter().find(|(_, g)| *g) {
                    Some((param, _)) => Err(stray(param, &[])),
                    None => Ok(act),
                }
            }
        }
    }
}

/// Reads the value of `key` into `slot`, refusing a second occurrence.
fn set<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    slot: &mut Option<T>,
    key: &'static str,
    map: &mut A,
) -> std::result::Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(key));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

impl<'de> Deserialize<'de> for Activation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Activation, D::Error> {
        deserializer.deserialize_any(ActivationVisitor)
    }
}
