//! Whole networks: gradient against finite differences of the loss, the
//! Hessian assembled from the blocks against finite differences of the
//! gradient, and a snapshot of a fixed network's loss and gradient.

use crate::common;

use common::{assemble_hessian, max_abs};
use netgraph::{Activation, Batch, LayerSpec, LossSpec, Network, Params};

fn nets() -> Vec<(String, Network, Batch)> {
    let mut out = Vec::new();
    // PyTorch's softplus with parameters too: beta 3 and threshold 0.5 put
    // about half the pre-activations on the linear branch.
    let softplus = |beta, threshold| Activation::Softplus(netgraph::Softplus::new(beta, threshold).unwrap());
    let extra = [softplus(2.0, 20.0), softplus(3.0, 0.5)];
    for (i, act) in Activation::ALL.into_iter().chain(extra).enumerate() {
        for (j, bias) in [false, true].into_iter().enumerate() {
            let layers = vec![
                LayerSpec::Dense { out: 4, activation: act, bias },
                LayerSpec::Residual { activation: act, bias: !bias },
            ];
            let seed = (10 * i + j) as u64;
            let (loss, batch) = if (i + j) % 2 == 0 {
                (LossSpec::CrossEntropy { classes: 3, bias }, Batch::random_classification(3, 3, 3, seed))
            } else {
                (LossSpec::Mse { outputs: 2, bias }, Batch::random_regression(3, 2, 3, seed))
            };
            let net = Network::new(3, layers, loss).unwrap();
            out.push((format!("{act:?} bias={bias} {loss:?}"), net, batch));
        }
    }
    // No hidden layer at all, and a deeper plain tanh MLP.
    out.push((
        "loss only".into(),
        Network::new(2, vec![], LossSpec::Mse { outputs: 3, bias: true }).unwrap(),
        Batch::random_regression(2, 3, 4, 5),
    ));
    out.push((
        "tanh_mlp".into(),
        Network::builder(3).dense(3, Activation::Tanh).repeat(3).cross_entropy(2).unwrap(),
        Batch::random_classification(3, 2, 2, 6),
    ));
    out
}

fn params(net: &Network, seed: u64) -> Params {
    let mut p = net.init_params(seed);
    // Gain 2 leaves the near-linear regime so that second derivatives matter.
    p.scale(2.0);
    p
}

#[test]
fn gradient_matches_finite_differences_of_the_loss() {
    for (name, net, batch) in nets() {
        let p = params(&net, 1);
        let (loss, g) = net.gradient(&p, &batch).unwrap();
        assert!((loss - net.loss(&p, &batch).unwrap()).abs() < 1e-15);
        for i in 0..net.num_params() {
            let h = 1e-6;
            let mut v = p.as_slice().to_vec();
            v[i] += h;
            let lp = net.loss(&Params::from_vec(v.clone(), &net).unwrap(), &batch).unwrap();
            v[i] -= 2.0 * h;
            let lm = net.loss(&Params::from_vec(v, &net).unwrap(), &batch).unwrap();
            let fd = (lp - lm) / (2.0 * h);
            // Truncation h^2 |L'''| ~ 1e-12, rounding eps |L| / h ~ 1e-10.
            assert!((fd - g[i]).abs() < 1e-7 * (1.0 + fd.abs()), "{name}: param {i}: {} vs fd {fd}", g[i]);
        }
    }
}

#[test]
fn hessian_from_blocks_matches_finite_differences() {
    for (name, net, batch) in nets() {
        let p = params(&net, 2);
        let d = net.derivatives(&p, &batch).unwrap();
        assert_eq!(d.act_sizes, net.act_sizes(batch.batch_size()));
        assert_eq!(d.param_sizes, net.param_counts());
        assert_eq!(d.act_sizes.last(), Some(&1));
        let h = assemble_hessian(&d);
        let fd = net.dense_hessian_fd(&p, &batch).unwrap();
        let scale = 1.0 + max_abs(&fd);
        let err = max_abs(&(&h - &fd));
        // The FD Hessian errs by ~1e-9 (see dense_hessian_fd); a wrong
        // block or sign shows up at 1e-2 and beyond.
        assert!(err < 1e-6 * scale, "{name}: |H - H_fd| = {err:e}, |H| = {scale:e}");
        // The Hessian must not be trivially zero for the comparison to mean anything.
        assert!(max_abs(&fd) > 1e-3, "{name}");
    }
}

#[test]
fn derivatives_gradient_and_b_agree_with_backward() {
    let net = Network::builder(3).dense(4, Activation::Tanh).repeat(2).cross_entropy(3).unwrap();
    let batch = Batch::random_classification(3, 3, 5, 1);
    let p = net.init_params(0);
    let fwd = net.forward(&p, &batch).unwrap();
    let bwd = net.backward(&p, &fwd).unwrap();
    let d = net.derivatives(&p, &batch).unwrap();
    assert_eq!(d.gradient, bwd.gradient);
    assert_eq!(d.loss, fwd.loss);
    assert_eq!(bwd.b.last(), Some(&vec![1.0]));
    // b_{l-1} = b_l Dz_l, checked with the blocks.
    for l in 1..net.num_layers() {
        let dz = d.layers[l].dz.to_dense();
        for i in 0..dz.ncols() {
            let v: f64 = (0..dz.nrows()).map(|r| bwd.b[l + 1][r] * dz[(r, i)]).sum();
            assert!((v - bwd.b[l][i]).abs() < 1e-12);
        }
    }
}

#[test]
fn init_is_deterministic_and_pytorch_bounded() {
    let net = Network::builder(4).dense(6, Activation::Tanh).repeat(2).cross_entropy(3).unwrap();
    let (a, b) = (net.init_params(7), net.init_params(7));
    assert_eq!(a, b);
    assert_ne!(a, net.init_params(8));
    // Layer 0 has in = 4, so every entry lies in (-1/2, 1/2).
    assert!(a.layer(0).iter().all(|v| v.abs() < 0.5));
    assert!(a.layer(1).iter().any(|v| v.abs() > 0.2));
    assert_eq!(net.param_counts(), vec![6 * 4 + 6, 6 * 6 + 6, 3 * 6 + 3]);
    assert_eq!(a.layer(3), &[] as &[f64]);
    let mut s = a.clone();
    s.scale(3.0);
    assert_eq!(s.layer(0)[0], 3.0 * a.layer(0)[0]);
    // Biases are left alone.
    assert_eq!(s.layer(0)[24], a.layer(0)[24]);
}

#[test]
fn loss_and_gradient_snapshot() {
    let net = Network::new(
        2,
        vec![LayerSpec::Dense { out: 3, activation: Activation::Gelu, bias: true }],
        LossSpec::CrossEntropy { classes: 2, bias: false },
    )
    .unwrap();
    let batch = Batch::random_classification(2, 2, 4, 42);
    let p = net.init_params(42);
    let (loss, g) = net.gradient(&p, &batch).unwrap();
    // Eight decimals: far above rounding differences between machines.
    let mut text = format!("loss {loss:.8}\n");
    for (i, v) in g.iter().enumerate() {
        text += &format!("g[{i:2}] {v:+.8}\n");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn saturated_network_hessian_matches_finite_differences() {
    // Gain 4 saturates tanh: the Hessian mixes entries of very different
    // sizes. FD error grows with the third derivatives, hence 1e-5.
    let net = Network::builder(3).dense(4, Activation::Tanh).repeat(3).cross_entropy(3).unwrap();
    let batch = Batch::random_classification(3, 3, 4, 8);
    let mut p = net.init_params(4);
    p.scale(4.0);
    let h = assemble_hessian(&net.derivatives(&p, &batch).unwrap());
    let fd = net.dense_hessian_fd(&p, &batch).unwrap();
    let err = max_abs(&(&h - &fd));
    assert!(err < 1e-5 * (1.0 + max_abs(&fd)), "{err:e}");
}

#[test]
fn custom_layer_networks() {
    use netgraph::{Dense, Layer, LossKind, LossLayer};
    use std::sync::Arc;
    let layers: Vec<Box<dyn Layer>> = vec![
        Box::new(Dense::new(3, 4, Activation::Sigmoid, true)),
        Box::new(LossLayer::new(4, 2, false, LossKind::CrossEntropy)),
    ];
    let custom = Network::from_layers(3, layers).unwrap();
    assert!(custom.spec().is_none());
    let spec_net = Network::new(
        3,
        vec![LayerSpec::Dense { out: 4, activation: Activation::Sigmoid, bias: true }],
        LossSpec::CrossEntropy { classes: 2, bias: false },
    )
    .unwrap();
    let batch = Batch::random_classification(3, 2, 3, 2);
    let p = spec_net.init_params(1);
    let pc = Params::from_vec(p.as_slice().to_vec(), &custom).unwrap();
    assert_eq!(custom.gradient(&pc, &batch).unwrap(), spec_net.gradient(&p, &batch).unwrap());
    let _shared: &Arc<dyn Layer> = &custom.layers()[0];

    let msg = |layers: Vec<Box<dyn Layer>>| Network::from_layers(3, layers).unwrap_err().to_string();
    insta::assert_snapshot!(
        "chain_errors",
        [
            msg(vec![
                Box::new(Dense::new(2, 4, Activation::Tanh, false)),
                Box::new(LossLayer::new(4, 2, false, LossKind::Mse))
            ]),
            msg(vec![Box::new(Dense::new(3, 4, Activation::Tanh, false))]),
            msg(vec![
                Box::new(LossLayer::new(3, 2, false, LossKind::Mse)),
                Box::new(LossLayer::new(1, 2, false, LossKind::Mse))
            ]),
            msg(vec![]),
        ]
        .join("\n")
    );
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let net = Network::builder(3).without_bias().dense(4, Activation::Tanh).repeat(1).cross_entropy(2).unwrap();
    let other = Network::builder(3).without_bias().dense(5, Activation::Tanh).repeat(1).cross_entropy(2).unwrap();
    let batch = Batch::random_classification(3, 2, 2, 0);
    let p = net.init_params(0);
    let fwd = other.forward(&other.init_params(0), &batch).unwrap();
    let e1 = net.backward(&p, &fwd).unwrap_err().to_string();
    let e2 = net.loss(&other.init_params(0), &batch).unwrap_err().to_string();
    let layer = netgraph::Dense::new(3, 2, Activation::Tanh, false);
    let z = faer::Mat::<f64>::zeros(2, 3);
    let e3 = netgraph::check_layer(&layer, &[0.0; 6], z.as_ref(), &netgraph::Targets::Classes(vec![]), &[0.0; 3], 1e-5)
        .unwrap_err()
        .to_string();
    let e4 = Network::new(0, vec![], LossSpec::Mse { outputs: 1, bias: false }).unwrap_err().to_string();
    insta::assert_snapshot!("misuse", [e1, e2, e3, e4].join("\n"));
}

#[test]
fn mse_spec_json_parses_exactly() {
    let text = r#"{"input_dim": 2, "layers": [{"kind": "residual", "activation": "softplus", "bias": true}],
        "loss": {"kind": "mse", "outputs": 3, "bias": true}}"#;
    let spec: netgraph::NetSpec = serde_json::from_str(text).unwrap();
    let net = Network::from_spec(spec.clone()).unwrap();
    assert_eq!(net.param_counts(), vec![2 * 2 + 2, 3 * 2 + 3]);
    let back: netgraph::NetSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
    assert_eq!(back, spec);
    insta::assert_snapshot!("mse_spec_json", serde_json::to_string(&spec).unwrap());
}
