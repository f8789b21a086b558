//! The random cases of the differential test: a network, its weights and
//! batch, drawn from `(seed, network index)` alone so that any case can be
//! rebuilt on its own, and the ways `eps` is placed in the spectrum.

use netgraph::{Activation, Batch, LayerSpec, LossSpec, Network, Params};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Values of `eps` tried on each network (they share its dense reference).
pub const EPS_PER_NET: usize = 3;

/// Largest parameter count: the dense reference is cubic in it.
pub const MAX_PARAMS: usize = 800;

/// How a network's weights are set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NetClass {
    /// Weights at PyTorch's initialisation scaled by a gain of 1 to 3:
    /// real, indefinite curvature.
    Curvy,
    /// Tanh, deep, gain 0.3 to 1: the curvature vanishes with depth (all
    /// of it without biases; with them, the loss layer's bias keeps an
    /// O(1) block next to vanishing ones).
    Vanishing,
    /// ReLU with some units killed (their incoming weights and bias zero):
    /// exactly zero rows and columns in `H`.
    DeadUnits,
}

impl NetClass {
    /// Name for tables.
    pub fn name(self) -> &'static str {
        match self {
            NetClass::Curvy => "curvy",
            NetClass::Vanishing => "vanishing",
            NetClass::DeadUnits => "dead-units",
        }
    }
}

/// Where `eps` sits relative to the spectrum of `H`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EpsKind {
    /// `eps` log-uniform in `[1e-8, 1]`.
    Absolute,
    /// `eps = c ||H||`, `c` log-uniform in `[1e-16, 1]`.
    Relative,
    /// `eps = -lambda_i + delta`: indefinite, `delta` chosen for a target
    /// condition number log-uniform in `[1e1, 1e17]`.
    NearEigenvalue,
    /// `eps = -lambda_min + delta`: positive definite with a target
    /// condition number log-uniform in `[1e1, 1e17]`.
    DefiniteEdge,
    /// `eps = 0`: the Hessian itself.
    Zero,
}

impl EpsKind {
    /// Name for tables.
    pub fn name(self) -> &'static str {
        match self {
            EpsKind::Absolute => "absolute",
            EpsKind::Relative => "relative",
            EpsKind::NearEigenvalue => "near-eigenvalue",
            EpsKind::DefiniteEdge => "definite-edge",
            EpsKind::Zero => "zero",
        }
    }
}

/// One random network at one point on one batch.
#[derive(Debug, Clone)]
pub struct NetCase {
    /// The run's seed.
    pub seed: u64,
    /// Index of the network in the run; its cases are
    /// `EPS_PER_NET * index + k`.
    pub index: usize,
    /// How the weights were set up.
    pub class: NetClass,
    /// The activation of every hidden layer.
    pub activation: Activation,
    /// Mean squared error (else softmax cross-entropy).
    pub mse: bool,
    /// Biases on every layer.
    pub bias: bool,
    /// Input features.
    pub input: usize,
    /// Hidden width.
    pub width: usize,
    /// Which hidden layers are residual (`z + act(W z + b)`); the first
    /// never is.
    pub residual: Vec<bool>,
    /// Classes or outputs of the loss layer.
    pub outputs: usize,
    /// Samples.
    pub batch: usize,
    /// Multiplier of the initial weights.
    pub gain: f64,
    /// Killed units, `(hidden layer, unit)`.
    pub dead: Vec<(usize, usize)>,
    /// The kinds of the `eps` of this network's cases.
    pub eps_kinds: [EpsKind; EPS_PER_NET],
}

impl NetCase {
    /// Layers, the loss layer included.
    pub fn depth(&self) -> usize {
        self.residual.len() + 1
    }

    /// True when some hidden layer is residual.
    pub fn has_residual(&self) -> bool {
        self.residual.iter().any(|&r| r)
    }

    /// One line with everything needed to read a failure.
    pub fn describe(&self) -> String {
        let res: Vec<usize> = self.residual.iter().enumerate().filter(|(_, &r)| r).map(|(i, _)| i).collect();
        format!(
            "{} {} {}, depth {} (residual layers {res:?}), input {}, width {}, outputs {}, batch {}, bias {}, gain {:.3}, dead units {:?}",
            self.class.name(),
            self.activation.name(),
            if self.mse { "mse" } else { "cross-entropy" },
            self.depth(),
            self.input,
            self.width,
            self.outputs,
            self.batch,
            self.bias,
            self.gain,
            self.dead,
        )
    }

    /// The network.
    pub fn network(&self) -> Network {
        let mut layers = Vec::with_capacity(self.residual.len());
        for &r in &self.residual {
            layers.push(if r {
                LayerSpec::Residual { activation: self.activation, bias: self.bias }
            } else {
                LayerSpec::Dense { out: self.width, activation: self.activation, bias: self.bias }
            });
        }
        let loss = if self.mse {
            LossSpec::Mse { outputs: self.outputs, bias: self.bias }
        } else {
            LossSpec::CrossEntropy { classes: self.outputs, bias: self.bias }
        };
        Network::new(self.input, layers, loss).expect("the generator only draws valid networks")
    }

    /// The weights: PyTorch's initialisation times the gain; a dead unit's
    /// incoming weights set to zero and its bias to -1 (pre-activation -1
    /// on every sample: dead, and differentiable) or, without biases, its
    /// pre-activation is exactly 0, where the library takes the ReLU's
    /// derivative as zero.
    pub fn params(&self, net: &Network) -> Params {
        let mut p = net.init_params(self.stream_seed(1));
        p.scale(self.gain);
        let offsets: Vec<usize> = std::iter::once(0)
            .chain(net.param_counts().iter().scan(0, |s, &c| {
                *s += c;
                Some(*s)
            }))
            .collect();
        let data = p.as_mut_slice();
        for &(l, k) in &self.dead {
            let fan_in = if l == 0 { self.input } else { self.width };
            let start = offsets[l] + k * fan_in;
            data[start..start + fan_in].iter_mut().for_each(|v| *v = 0.0);
            if self.bias {
                data[offsets[l] + self.width * fan_in + k] = -1.0;
            }
        }
        p
    }

    /// The batch.
    pub fn batch(&self) -> Batch {
        if self.mse {
            Batch::random_regression(self.input, self.outputs, self.batch, self.stream_seed(2))
        } else {
            Batch::random_classification(self.input, self.outputs, self.batch, self.stream_seed(2))
        }
    }

    /// A generator for the `eps` of case `k` of this network (drawn after
    /// the dense spectrum is known).
    pub fn eps_rng(&self, k: usize) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.stream_seed(10 + k as u64))
    }

    /// A seed derived from the run's seed, the network and a purpose.
    fn stream_seed(&self, purpose: u64) -> u64 {
        mix(self.seed, (self.index as u64) << 8 | purpose)
    }
}

/// SplitMix64 of `a` and `b`: independent streams from one seed.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Parameters of a network of this shape.
fn param_count(input: usize, width: usize, hidden: usize, outputs: usize, bias: bool) -> usize {
    let b = usize::from(bias);
    if hidden == 0 {
        return outputs * input + b * outputs;
    }
    (width * input + b * width) + (hidden - 1) * (width * width + b * width) + (outputs * width + b * outputs)
}

fn log_uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
}

fn activation_named(name: &str) -> Activation {
    Activation::ALL.into_iter().find(|a| a.name() == name).expect("a built-in activation")
}

/// Network `index` of the run `seed`. The class and the activation cycle
/// with the index, so that any 18 consecutive networks cover every class,
/// every activation and every placement of `eps` but `Zero` (drawn one
/// time in 25); the rest is random.
pub fn net_case(seed: u64, index: usize, max_params: usize) -> NetCase {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, (index as u64) << 8));
    // Per 6 networks: 4 curvy ones, 1 vanishing, 1 with dead ReLU units.
    let class = match index % 6 {
        4 => NetClass::Vanishing,
        5 => NetClass::DeadUnits,
        _ => NetClass::Curvy,
    };
    let all = Activation::ALL;
    let activation = match class {
        NetClass::Curvy => all[(4 * (index / 6) + index % 6) % all.len()],
        NetClass::Vanishing => activation_named("tanh"),
        NetClass::DeadUnits => activation_named("relu"),
    };
    let mse = rng.random_bool(0.5);
    let bias = rng.random_bool(0.5);
    let input = rng.random_range(2..=8);
    // One network in ten reads 80 to 128 inputs: its first layer's unit
    // blocks are large and of rank <= batch, eliminated on their
    // projection (`hinv::reduced::projected`). Derived from the same draw,
    // so the other networks are those of earlier runs.
    let input = if index % 10 == 7 { 64 + 8 * input } else { input };
    let outputs = rng.random_range(2..=4);
    let batch = rng.random_range(1..=16);
    let square = activation.name() == "square";
    // Total depth (loss layer included): squares compound doubly
    // exponentially and overflow beyond a few layers.
    let depth = match class {
        NetClass::Vanishing => rng.random_range(16..=40),
        _ if square => rng.random_range(1..=5),
        NetClass::DeadUnits => rng.random_range(2..=40),
        NetClass::Curvy => log_uniform(&mut rng, 1.0, 40.99).floor() as usize,
    };
    // One network in ten (of the curvy ones) has two hidden layers of 16 or
    // more units at batch 1 or 2: their unit blocks (rank <= batch) are
    // eliminated on their projection too
    // (`hinv::reduced::projected::worth_projecting`). Derived from the same
    // draws, so the other networks are those of earlier runs.
    let narrow_units = index % 10 == 3 && class == NetClass::Curvy && !square;
    let (depth, batch) = if narrow_units { (3, 1 + batch % 2) } else { (depth, batch) };
    let hidden = depth - 1;
    let widest = (2..=32).rev().find(|&w| param_count(input, w, hidden, outputs, bias) <= max_params).unwrap_or(2);
    let width = rng.random_range(if narrow_units { widest.min(16) } else { 2 }..=widest);
    let with_residual = hidden >= 2 && rng.random_bool(0.5);
    let residual: Vec<bool> = (0..hidden).map(|l| with_residual && l > 0 && rng.random_bool(0.4)).collect();
    let gain = match class {
        NetClass::Vanishing => log_uniform(&mut rng, 0.3, 1.0),
        _ if square => log_uniform(&mut rng, 0.7, 1.5),
        _ => log_uniform(&mut rng, 1.0, 3.0),
    };
    let mut dead = Vec::new();
    if class == NetClass::DeadUnits && hidden > 0 {
        for _ in 0..rng.random_range(1..=3) {
            let unit = (rng.random_range(0..hidden), rng.random_range(0..width));
            if !dead.contains(&unit) {
                dead.push(unit);
            }
        }
        dead.sort_unstable();
    }
    let kinds = [EpsKind::Absolute, EpsKind::Relative, EpsKind::NearEigenvalue, EpsKind::DefiniteEdge];
    let mut eps_kinds = [EpsKind::Absolute; EPS_PER_NET];
    for (k, kind) in eps_kinds.iter_mut().enumerate() {
        // Near-eigenvalue cases are the hardest and the most varied: half
        // of them; eps = 0 now and then.
        *kind = if rng.random_bool(0.04) {
            EpsKind::Zero
        } else if rng.random_bool(0.4) {
            EpsKind::NearEigenvalue
        } else {
            kinds[(EPS_PER_NET * index + k) % kinds.len()]
        };
    }
    NetCase { seed, index, class, activation, mse, bias, input, width, residual, outputs, batch, gain, dead, eps_kinds }
}

/// The `eps` of one case, placed by its kind in the spectrum `ev` (sorted
/// eigenvalues of the dense `H`), and a threshold for the eigenvalue count:
/// `(eps, target condition number or NaN, threshold)`.
pub fn draw_eps(kind: EpsKind, ev: &[f64], rng: &mut ChaCha8Rng) -> (f64, f64, f64) {
    let (lo, hi) = (ev[0], ev[ev.len() - 1]);
    let norm = lo.abs().max(hi.abs());
    let target = 10f64.powf(rng.random_range(1.0..17.0));
    let (eps, target) = match kind {
        EpsKind::Absolute => (log_uniform(rng, 1e-8, 1.0), f64::NAN),
        EpsKind::Relative => (log_uniform(rng, 1e-16, 1.0) * if norm > 0.0 { norm } else { 1.0 }, f64::NAN),
        EpsKind::NearEigenvalue => {
            let lambda = ev[rng.random_range(0..ev.len())];
            let spread = (hi - lambda).max(lambda - lo);
            let spread = if spread > 0.0 { spread } else { 1.0 };
            let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
            (-lambda + sign * spread / target, target)
        }
        EpsKind::DefiniteEdge => {
            let spread = if hi > lo { hi - lo } else { 1.0 };
            (-lo + spread / target, target)
        }
        EpsKind::Zero => (0.0, f64::NAN),
    };
    // The count threshold: half the time midway between two neighbouring
    // eigenvalues, half the time next to one.
    let i = rng.random_range(0..ev.len());
    let threshold = if i + 1 < ev.len() && rng.random_bool(0.5) {
        0.5 * (ev[i] + ev[i + 1])
    } else {
        let spread = if hi > lo { hi - lo } else { 1.0 };
        let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        ev[i] + sign * spread * log_uniform(rng, 1e-16, 1e-2)
    };
    (eps, target, threshold)
}
