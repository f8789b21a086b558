//! Activations: values against direct formulas, derivatives against finite
//! differences, PyTorch's softplus branches exactly, parameter validation
//! and the spec forms (messages snapshot-tested).

use netgraph::{Activation, NetError, Softplus};

/// Central differences of `f` at `x` with step `h`.
fn central(f: impl Fn(f64) -> f64, x: f64, h: f64) -> f64 {
    (f(x + h) - f(x - h)) / (2.0 * h)
}

/// Checks `act'` and `act''` against central differences of `act` and
/// `act'`. With `h = 1e-5 (1 + |x|)` the difference errs by about
/// `h^2 |f'''| / 6 + eps_mach |f| / h`: below 1e-9 for these smooth
/// functions on `|x| <= 30` (|f'''| <= 2, |f| <= 1e3), so `1e-7` on the
/// `(1 + |f'|)` scale keeps two digits of margin and catches any wrong
/// formula (errors of order 1e-2).
fn check_derivatives(act: Activation, xs: impl IntoIterator<Item = f64>) -> usize {
    let mut n = 0;
    for x in xs {
        let (_, d1, d2) = act.eval(x);
        let h = 1e-5 * (1.0 + x.abs());
        let fd1 = central(|t| act.value(t), x, h);
        let fd2 = central(|t| act.eval(t).1, x, h);
        assert!((d1 - fd1).abs() <= 1e-7 * (1.0 + d1.abs()), "{act}: f'({x}) = {d1}, differences give {fd1}");
        assert!((d2 - fd2).abs() <= 1e-7 * (1.0 + d2.abs()), "{act}: f''({x}) = {d2}, differences give {fd2}");
        n += 1;
    }
    n
}

/// A grid over `[-lo, hi]` avoiding the points in `avoid` (kinks and
/// seams) by more than the difference step.
fn grid(lo: f64, hi: f64, avoid: &[f64]) -> Vec<f64> {
    (0..=600)
        .map(|i| lo + (hi - lo) * f64::from(i) / 600.0 + 1e-3)
        .filter(|x| avoid.iter().all(|a| (x - a).abs() > 1e-3))
        .collect()
}

fn softplus(beta: f64, threshold: f64) -> Activation {
    Activation::Softplus(Softplus::new(beta, threshold).unwrap())
}

#[test]
fn derivatives_match_finite_differences() {
    let mut checked = 0;
    for act in Activation::ALL {
        checked += check_derivatives(act, grid(-8.0, 8.0, &[0.0]));
    }
    for (beta, threshold) in [(2.0, 20.0), (0.5, 5.0), (3.0, 1.0), (1.0, -2.0), (0.1, 20.0)] {
        let act = softplus(beta, threshold);
        checked += check_derivatives(act, grid(-30.0, 30.0, &[threshold / beta]));
    }
    // The checks ran on both sides of every seam.
    assert!(checked > 8 * 590 + 5 * 590, "{checked}");
}

/// PyTorch's `nn.Softplus(beta, threshold)`, branch for branch: `x` with
/// derivatives 1 and 0 where `beta x > threshold`, the smooth branch up to
/// and including the seam, no second derivative at the seam.
#[test]
fn softplus_follows_pytorch_branches() {
    for (beta, threshold) in [(1.0, 20.0), (2.0, 20.0), (0.5, 3.0), (4.0, -1.0)] {
        let act = softplus(beta, threshold);
        let seam = threshold / beta;
        for x in [seam + 1e-6 * (1.0 + seam.abs()), seam + 1.0, seam + 100.0, 1e300] {
            assert!(x * beta > threshold);
            assert_eq!(act.eval(x), (x, 1.0, 0.0), "{act} at {x}");
        }
        // Below the seam: the direct formulas, which do not overflow here
        // (beta x <= 20); the stable form agrees within a few ulps.
        for x in [seam - 1e-6 * (1.0 + seam.abs()), seam - 1.0, seam - 3.0, seam - 40.0] {
            let t = x * beta;
            assert!(t < threshold);
            let (v, d1, d2) = act.eval(x);
            let e = t.exp();
            let value = e.ln_1p() / beta;
            let s = e / (1.0 + e);
            assert!((v - value).abs() <= 4.0 * f64::EPSILON * value.abs(), "{act} at {x}: {v} vs {value}");
            assert!((d1 - s).abs() <= 4.0 * f64::EPSILON * s, "{act} at {x}: {d1} vs {s}");
            let second = beta * s / (1.0 + e);
            assert!((d2 - second).abs() <= 8.0 * f64::EPSILON * second, "{act} at {x}: {d2} vs {second}");
        }
        // At the seam PyTorch's forward and backward take the smooth branch
        // and its double backward gives zero.
        let x = threshold / beta;
        if x * beta == threshold {
            let (v, d1, d2) = act.eval(x);
            assert!(v > x || threshold > 36.0 * beta, "{act}: smooth value at the seam");
            assert!(d1 < 1.0 && d1 > 0.0);
            assert_eq!(d2, 0.0);
        }
    }
    // PyTorch's defaults, at the numbers of the issue: the gradient is
    // exactly 1 past 20 (hinv used to give sigmoid(x), 1 - 2e-9 at 20.1).
    assert_eq!(Activation::SOFTPLUS.eval(20.1), (20.1, 1.0, 0.0));
    // A huge threshold lets the smooth branch see large t without overflow.
    let wide = softplus(1.0, 1e6);
    let (v, d1, d2) = wide.eval(800.0);
    assert_eq!((v, d1), (800.0, 1.0));
    assert!((0.0..1e-300).contains(&d2));
}

/// Values of the tanh-approximate GELU against its formula written out,
/// and near-agreement with the erf form (they differ by < 5e-4 on the line).
#[test]
fn gelu_tanh_values() {
    for i in -80..=80 {
        let x = f64::from(i) / 10.0;
        let direct = 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh());
        let v = Activation::GeluTanh.value(x);
        assert!((v - direct).abs() <= 4.0 * f64::EPSILON * (1.0 + direct.abs()), "{x}: {v} vs {direct}");
        assert!((v - Activation::Gelu.value(x)).abs() < 5e-4, "{x}");
    }
}

#[test]
fn softplus_parameters_are_validated() {
    let msg = |r: Result<Softplus, NetError>| r.map(|_| ()).unwrap_err().to_string();
    let messages = [
        msg(Softplus::new(0.0, 20.0)),
        msg(Softplus::new(-1.0, 20.0)),
        msg(Softplus::new(f64::NAN, 20.0)),
        msg(Softplus::new(f64::INFINITY, 20.0)),
        msg(Softplus::new(1.0, f64::NAN)),
        msg(Softplus::new(1.0, f64::NEG_INFINITY)),
    ];
    insta::assert_snapshot!("softplus_parameters", messages.join("\n"));
    assert!(matches!(
        Softplus::new(-1.0, 20.0),
        Err(NetError::ActivationParameter { activation: "softplus", parameter: "beta", .. })
    ));
    // Accepted: any positive finite beta, any finite threshold; -0 is 0.
    let sp = Softplus::new(1e-300, -0.0).unwrap();
    assert_eq!(sp.threshold().to_bits(), 0.0f64.to_bits());
    assert_eq!(Softplus::new(1.0, 20.0).unwrap(), Softplus::DEFAULT);
    assert!(Softplus::DEFAULT.is_default() && Softplus::default().is_default());
}

fn parse(text: &str) -> Result<Activation, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

#[test]
fn spec_forms_parse_and_round_trip() {
    let sp2 = softplus(2.0, 20.0);
    let cases = [
        (r#""softplus""#, Activation::SOFTPLUS),
        (r#"{"kind": "softplus"}"#, Activation::SOFTPLUS),
        (r#"{"kind": "softplus", "beta": 1, "threshold": 20}"#, Activation::SOFTPLUS),
        (r#"{"kind": "softplus", "beta": 2}"#, sp2),
        (r#"{"threshold": 20.0, "beta": 2.0, "kind": "softplus"}"#, sp2),
        (r#"{"kind": "softplus", "threshold": -3.5}"#, softplus(1.0, -3.5)),
        (r#""gelu""#, Activation::Gelu),
        (r#"{"kind": "gelu", "approximate": "none"}"#, Activation::Gelu),
        (r#"{"kind": "gelu", "approximate": "tanh"}"#, Activation::GeluTanh),
        (r#"{"kind": "tanh"}"#, Activation::Tanh),
        (r#""square""#, Activation::Square),
    ];
    for (text, act) in cases {
        assert_eq!(parse(text), Ok(act), "{text}");
    }
    for act in Activation::ALL.into_iter().chain([sp2, softplus(0.5, 3.0)]) {
        let text = serde_json::to_string(&act).unwrap();
        assert_eq!(parse(&text), Ok(act), "{text}");
    }
    let shown: Vec<String> = [Activation::SOFTPLUS, sp2, Activation::GeluTanh, Activation::Gelu]
        .iter()
        .map(|a| format!("{a} {}", serde_json::to_string(a).unwrap()))
        .collect();
    insta::assert_snapshot!("activation_display_and_json", shown.join("\n"));
}

#[test]
fn spec_form_errors() {
    let bad = [
        r#""swish""#,
        r#"{"kind": "softplus", "beta": -1}"#,
        r#"{"kind": "softplus", "beta": 0}"#,
        r#"{"kind": "softplus", "approximate": "tanh"}"#,
        r#"{"kind": "gelu", "approximate": "sigmoid"}"#,
        r#"{"kind": "gelu", "beta": 2}"#,
        r#"{"kind": "tanh", "beta": 2}"#,
        r#"{"kind": "softplus", "inplace": true}"#,
        r#"{"beta": 2}"#,
        r#"{"kind": "softplus", "beta": 2, "beta": 3}"#,
        r#"{"kind": "softplus", "beta": "2"}"#,
        r#"{"kind": "leaky_relu"}"#,
        r#"3"#,
    ];
    let messages: Vec<String> = bad.iter().map(|t| format!("{t}\n  {}", parse(t).unwrap_err())).collect();
    insta::assert_snapshot!("activation_spec_errors", messages.join("\n"));
}
