//! Absurd shapes are refused before anything is allocated, with the memory
//! they would need; the memory estimates match the blocks actually stored;
//! NaN and infinity are named where they enter (weights, inputs, targets,
//! flat vectors).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use blockmat::Block;
use netgraph::{
    load_batch, load_spec, load_weights, read_npy_vector, write_npy, Activation, Batch, LayerSpec, LossSpec, NetError,
    NetSpec, Network,
};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netgraph-limits-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn dense(out: usize) -> LayerSpec {
    LayerSpec::Dense { out, activation: Activation::Tanh, bias: true }
}

/// Entries a block stores: dense leaves count fully, zero and identity
/// leaves nothing, structures the sum of their children. An independent
/// count of what `Network::derivative_bytes` predicts.
fn stored(b: &Block) -> u128 {
    if let Some(m) = b.as_dense() {
        return (m.nrows() * m.ncols()) as u128;
    }
    if let Some(l) = b.as_low_rank() {
        return [l.left(), l.core(), l.right()].iter().map(|m| (m.nrows() * m.ncols()) as u128).sum();
    }
    if let Some(d) = b.as_diag() {
        return d.blocks().iter().map(stored).sum();
    }
    if let Some(g) = b.as_grid() {
        return g.blocks().iter().map(stored).sum();
    }
    if let Some(t) = b.as_bidiag() {
        return t.diag().iter().chain(t.off()).map(stored).sum();
    }
    if let Some(t) = b.as_tridiag() {
        return t.diag().iter().chain(t.sub()).chain(t.sup().unwrap_or(&[])).map(stored).sum();
    }
    0
}

#[test]
fn derivative_bytes_match_the_stored_blocks() {
    let cases = [
        Network::new(
            3,
            vec![dense(4), LayerSpec::Residual { activation: Activation::Gelu, bias: false }],
            LossSpec::CrossEntropy { classes: 2, bias: true },
        ),
        Network::new(
            2,
            vec![LayerSpec::Dense { out: 5, activation: Activation::Relu, bias: false }],
            LossSpec::Mse { outputs: 3, bias: true },
        ),
        Network::new(4, vec![], LossSpec::Mse { outputs: 2, bias: false }),
        Network::new(1, vec![dense(1), dense(3), dense(2)], LossSpec::CrossEntropy { classes: 3, bias: false }),
        // Wide enough for low-rank unit blocks at every batch below, and
        // (16 units) for a `Dx` stored by rows at batch 5.
        Network::new(70, vec![dense(2)], LossSpec::CrossEntropy { classes: 2, bias: true }),
        Network::new(70, vec![dense(16)], LossSpec::CrossEntropy { classes: 2, bias: true }),
    ];
    for (i, net) in cases.into_iter().enumerate() {
        let net = net.unwrap();
        let params = net.init_params(i as u64);
        for batch in [1, 2, 5] {
            let spec = net.spec().unwrap();
            let data = match spec.loss {
                LossSpec::CrossEntropy { classes, .. } => {
                    Batch::random_classification(net.input_dim(), classes, batch, 3)
                }
                LossSpec::Mse { outputs, .. } => Batch::random_regression(net.input_dim(), outputs, batch, 3),
            };
            let d = net.derivatives(&params, &data).unwrap();
            let actual: u128 = d.layers.iter().flat_map(|l| l.named()).map(|(_, b)| stored(b)).sum();
            assert_eq!(net.derivative_bytes(batch), 8 * actual, "network {i}, batch {batch}");
            assert_eq!(net.param_bytes(), 8 * net.num_params() as u128);
            let acts: usize = d.act_sizes.iter().sum();
            assert_eq!(net.derivatives_memory(batch), 8 * (actual + 2 * acts as u128 + net.num_params() as u128));
        }
    }
}

/// Widths of 10^7: two square layers hold 2 * 10^14 parameters (1.6 PB).
/// Refused by `Network::new` with the size, before anything is built.
#[test]
fn huge_widths_are_refused_with_the_memory_they_need() {
    let t = Instant::now();
    let e = Network::new(
        10_000_000,
        vec![dense(10_000_000), dense(10_000_000)],
        LossSpec::CrossEntropy { classes: 2, bias: false },
    )
    .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(1));
    let NetError::TooLarge { needed, .. } = &e else { panic!("{e}") };
    // 2 * (10^14 + 10^7) weights and biases, 2 * 10^7 loss weights, 8 bytes each.
    assert_eq!(*needed, 8 * (2 * (100_000_000_000_000 + 10_000_000) + 20_000_000));
    let msg = e.to_string();
    assert!(
        msg.starts_with("the parameters of this network (3 layers) would need 1.42 PiB (1600000320000000 bytes)"),
        "{msg}"
    );
}

/// Widths near `usize::MAX` must not overflow (a panic in debug builds, a
/// wrapped, small count in release).
#[test]
fn overflowing_widths_are_refused_not_wrapped() {
    let e =
        Network::new(usize::MAX, vec![dense(usize::MAX), dense(3)], LossSpec::Mse { outputs: usize::MAX, bias: true })
            .unwrap_err();
    assert!(matches!(e, NetError::TooLarge { .. }), "{e}");
    // An explicit budget: 8 parameters fit in 64 bytes, not in 63.
    let spec = NetSpec { input_dim: 2, layers: vec![dense(2)], loss: LossSpec::Mse { outputs: 1, bias: false } };
    assert!(Network::from_spec_within(spec.clone(), 64).is_ok());
    assert!(matches!(Network::from_spec_within(spec, 63), Err(NetError::TooLarge { needed: 64, limit: 63, .. })));
}

/// A depth of 10^6 layers of width 10^4 (10^14 parameters): refused from
/// the spec file, quickly, without building the layers.
#[test]
fn deep_spec_file_is_refused_before_building() {
    let d = tmp("deep");
    let layer = r#"{"kind": "dense", "out": 10000, "activation": "tanh", "bias": false}"#;
    let layers = vec![layer; 100_000].join(",");
    let text = format!(
        r#"{{"input_dim": 10000, "layers": [{layers}], "loss": {{"kind": "mse", "outputs": 1, "bias": false}}}}"#
    );
    std::fs::write(d.join("net.json"), text).unwrap();
    let t = Instant::now();
    let e = load_spec(d.join("net.json")).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(e.to_string().starts_with("the parameters of this network (100001 layers) would need 72.76 TiB"), "{e}");

    // In memory: 10^6 layers.
    let layers = vec![dense(10_000); 1_000_000];
    let t = Instant::now();
    let e = Network::new(10_000, layers, LossSpec::Mse { outputs: 1, bias: false }).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(matches!(e, NetError::TooLarge { .. }), "{e}");
}

/// A network that fits but whose derivative blocks for a huge batch do not:
/// refused by `derivatives` before the forward pass (the estimate is checked
/// against the budget, not discovered by an allocation failure).
#[test]
fn derivative_memory_is_checked_before_the_passes() {
    let net = Network::new(64, vec![dense(64)], LossSpec::CrossEntropy { classes: 2, bias: false }).unwrap();
    // Dx of the hidden layer alone: batch * 64 * 65 entries (one row
    // vector per sample and unit), 8 bytes each.
    let batch = 1usize << 40;
    let need = net.derivatives_memory(batch);
    assert!(need > 8 * (batch as u128) * 64 * 65);
    let e = net.check_derivatives_memory(batch, 1 << 40).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "the derivative blocks of this network (4288 parameters, 2 layers) for a batch of 1099511627776 would need"
        ),
        "{e}"
    );
    // And the real route, through a small batch and a budget it exceeds.
    assert!(net.check_derivatives_memory(3, 1 << 30).is_ok());
    let small = net.derivatives_memory(3);
    assert!(matches!(net.check_derivatives_memory(3, (small - 1) as u64), Err(NetError::TooLarge { .. })));
}

#[test]
fn human_bytes_reads_well() {
    use netgraph::memory::human_bytes;
    assert_eq!(human_bytes(512), "512 B");
    assert_eq!(human_bytes(1536), "1.50 KiB");
    assert_eq!(human_bytes(3 << 30), "3.00 GiB");
    assert_eq!(human_bytes(u128::MAX), format!("{:.2} ZiB", u128::MAX as f64 / 1024f64.powi(7)));
}

// NaN and infinity, named where they enter.

fn small_net(d: &std::path::Path) -> Network {
    let text = r#"{"input_dim": 2, "layers": [{"kind": "dense", "out": 2, "activation": "tanh", "bias": true}],
        "loss": {"kind": "mse", "outputs": 1, "bias": false}}"#;
    std::fs::write(d.join("net.json"), text).unwrap();
    load_spec(d.join("net.json")).unwrap()
}

#[test]
fn non_finite_weights_name_the_tensor() {
    let d = tmp("nan-weights");
    let net = small_net(&d);
    for (bad, shown) in [(f64::NAN, "NaN"), (f64::INFINITY, "inf"), (f64::NEG_INFINITY, "-inf")] {
        let mut params = net.init_params(0);
        params.as_mut_slice()[5] = bad; // layers.0.bias[1]
        let p = d.join("w.safetensors");
        // save_weights writes whatever it is given; the reader must catch it.
        netgraph::save_weights(&net, &params, &p, netgraph::Dtype::F32).unwrap();
        let e = load_weights(&net, &p).unwrap_err();
        let expected =
            format!("{}: tensor `layers.0.bias` holds a non-finite value {shown} at flat index 1", p.display());
        assert_eq!(e.to_string(), expected);
    }
}

#[test]
fn non_finite_inputs_targets_and_vectors_name_the_file() {
    let d = tmp("nan-data");
    let net = small_net(&d);
    let (x, y, v) = (d.join("x.npy"), d.join("y.npy"), d.join("v.npy"));
    let good_x = [0.5, -1.0, 2.0, 0.25];
    let good_y = [1.0, -1.0];
    for bad in [f64::NAN, f64::INFINITY, -f64::INFINITY] {
        let mut xs = good_x;
        xs[3] = bad;
        write_npy(&x, &[2, 2], &xs).unwrap();
        write_npy(&y, &[2, 1], &good_y).unwrap();
        let e = load_batch(&net, &x, &y).unwrap_err();
        assert_eq!(e.to_string(), format!("{} holds a non-finite value {bad} at flat index 3", x.display()));

        write_npy(&x, &[2, 2], &good_x).unwrap();
        // f32 files too: the widening must keep the infinity or NaN.
        write_npy(&y, &[2, 1], &[1.0f32, bad as f32]).unwrap();
        let e = load_batch(&net, &x, &y).unwrap_err();
        assert_eq!(e.to_string(), format!("{} holds a non-finite value {bad} at flat index 1", y.display()));

        write_npy(&v, &[3], &[0.0, bad, 1.0]).unwrap();
        let e = read_npy_vector(&v).unwrap_err();
        assert_eq!(e.to_string(), format!("{} holds a non-finite value {bad} at flat index 1", v.display()));
    }
}
