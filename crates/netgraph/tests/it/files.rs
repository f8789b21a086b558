//! Files: the JSON spec, safetensors weights and npy data round trip, and
//! every malformed input gives an error naming the file, tensor, expected
//! and found shape or dtype (messages snapshot-tested).

use std::path::{Path, PathBuf};

use faer::Mat;
use netgraph::{
    load_batch, load_spec, load_weights, read_npy_vector, save_batch, save_spec, save_weights, write_npy,
    write_npy_vector, Batch, Dtype, NetError, Network, Targets,
};
use safetensors::tensor::TensorView;

/// A fresh directory per test under the system temp dir.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netgraph-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The error's message with the temp directory replaced (snapshots must not
/// depend on the machine).
fn msg(e: NetError, dir: &Path) -> String {
    e.to_string().replace(&dir.display().to_string(), "<dir>")
}

const SPEC: &str = r#"{"input_dim": 3, "layers": [{"kind": "dense", "out": 4, "activation": "tanh", "bias": false},
  {"kind": "residual", "activation": "gelu", "bias": true}],
  "loss": {"kind": "cross_entropy", "classes": 3, "bias": false}}"#;

fn net() -> Network {
    let d = tmp("spec-src");
    std::fs::write(d.join("net.json"), SPEC).unwrap();
    load_spec(d.join("net.json")).unwrap()
}

fn write_tensors(path: &Path, tensors: &[(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, dt, shape, data)| (n.to_string(), TensorView::new(*dt, shape.clone(), data).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The tensors of `net()` with the given parameters, as (name, dtype, shape, bytes).
fn good_tensors(p: &[f64]) -> Vec<(&'static str, safetensors::Dtype, Vec<usize>, Vec<u8>)> {
    use safetensors::Dtype::F64;
    vec![
        ("layers.0.weight", F64, vec![4, 3], f64_bytes(&p[..12])),
        ("layers.1.weight", F64, vec![4, 4], f64_bytes(&p[12..28])),
        ("layers.1.bias", F64, vec![4], f64_bytes(&p[28..32])),
        ("loss.weight", F64, vec![3, 4], f64_bytes(&p[32..44])),
    ]
}

#[test]
fn round_trip_spec_weights_and_batch() {
    let d = tmp("round-trip");
    let net = net();
    assert_eq!(
        netgraph::files::tensor_names(&net),
        ["layers.0.weight", "layers.1.weight", "layers.1.bias", "loss.weight"]
    );
    let p = net.init_params(3);
    let batch = Batch::random_classification(3, 3, 5, 9);
    save_spec(&net, d.join("net.json")).unwrap();
    save_weights(&net, &p, d.join("w.safetensors"), Dtype::F64).unwrap();
    save_batch(&batch, d.join("x.npy"), d.join("y.npy")).unwrap();

    let net2 = load_spec(d.join("net.json")).unwrap();
    assert_eq!(net2.spec(), net.spec());
    let p2 = load_weights(&net2, d.join("w.safetensors")).unwrap();
    assert_eq!(p2.as_slice(), p.as_slice());
    let batch2 = load_batch(&net2, d.join("x.npy"), d.join("y.npy")).unwrap();
    assert_eq!(batch2, batch);
    assert_eq!(net.gradient(&p, &batch).unwrap(), net2.gradient(&p2, &batch2).unwrap());

    // f32 weights: the values round to single precision, nothing else changes.
    save_weights(&net, &p, d.join("w32.safetensors"), Dtype::F32).unwrap();
    let p32 = load_weights(&net, d.join("w32.safetensors")).unwrap();
    for (a, b) in p32.as_slice().iter().zip(p.as_slice()) {
        assert_eq!(*a, f64::from(*b as f32));
    }

    // Regression data round trip.
    let mse = Network::new(3, vec![], netgraph::LossSpec::Mse { outputs: 2, bias: true }).unwrap();
    let rb = Batch::random_regression(3, 2, 4, 1);
    save_batch(&rb, d.join("rx.npy"), d.join("ry.npy")).unwrap();
    assert_eq!(load_batch(&mse, d.join("rx.npy"), d.join("ry.npy")).unwrap(), rb);

    write_npy_vector(d.join("v.npy"), &[1.5, -2.0, 3.25]).unwrap();
    assert_eq!(read_npy_vector(d.join("v.npy")).unwrap(), vec![1.5, -2.0, 3.25]);
}

#[test]
fn pytorch_style_dtypes_and_shapes_are_accepted() {
    let d = tmp("dtypes");
    let net = net();
    // f32 inputs, i32 targets of shape (batch, 1), as numpy often saves them.
    let x: Vec<f32> = (0..6).map(|i| i as f32 * 0.5).collect();
    write_npy(d.join("x.npy"), &[2, 3], &x).unwrap();
    write_npy(d.join("y.npy"), &[2, 1], &[2i32, 0]).unwrap();
    let b = load_batch(&net, d.join("x.npy"), d.join("y.npy")).unwrap();
    assert_eq!(b.targets(), &Targets::Classes(vec![2, 0]));
    assert_eq!(b.inputs()[(1, 2)], 2.5);
}

fn snap_err(name: &str, e: NetError, dir: &Path) {
    insta::assert_snapshot!(name, msg(e, dir));
}

#[test]
fn spec_errors() {
    let d = tmp("spec-errors");
    let cases = [
        (
            "spec_unknown_key",
            SPEC.replace("\"tanh\", \"bias\": false}", "\"tanh\", \"bias\": false, \"dropout\": 0.1}"),
        ),
        ("spec_unknown_kind", SPEC.replace("residual", "conv")),
        ("spec_unknown_activation", SPEC.replace("gelu", "swish")),
        ("spec_zero_width", SPEC.replace("\"out\": 4", "\"out\": 0")),
        ("spec_zero_classes", SPEC.replace("\"classes\": 3", "\"classes\": 0")),
    ];
    for (name, text) in cases {
        let path = d.join("net.json");
        std::fs::write(&path, text).unwrap();
        let err = load_spec(&path).err().unwrap_or_else(|| panic!("{name} should fail"));
        snap_err(name, err, &d);
    }
    snap_err("spec_missing_file", load_spec(d.join("absent.json")).unwrap_err(), &d);
}

#[test]
fn weight_errors() {
    use safetensors::Dtype::{F64, I32};
    let d = tmp("weight-errors");
    let net = net();
    let p: Vec<f64> = net.init_params(1).as_slice().to_vec();
    let path = d.join("w.safetensors");
    let check = |name: &str, tensors: Vec<(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)>| {
        write_tensors(&path, &tensors);
        snap_err(name, load_weights(&net, &path).unwrap_err(), &d);
    };
    let mut t = good_tensors(&p);
    t.remove(2);
    check("weights_missing", t);
    let mut t = good_tensors(&p);
    t.push(("loss.bias", F64, vec![3], f64_bytes(&[0.0; 3])));
    check("weights_extra", t);
    let mut t = good_tensors(&p);
    t[0].2 = vec![3, 4];
    check("weights_transposed", t);
    let mut t = good_tensors(&p);
    t[3] = ("loss.weight", I32, vec![3, 4], vec![0u8; 48]);
    check("weights_dtype", t);
    let mut bad = p.clone();
    bad[30] = f64::NAN;
    check("weights_nan", good_tensors(&bad));
    std::fs::write(&path, b"not a safetensors file").unwrap();
    snap_err("weights_garbage", load_weights(&net, &path).unwrap_err(), &d);
}

#[test]
fn batch_errors() {
    let d = tmp("batch-errors");
    let net = net();
    let (x, y) = (d.join("x.npy"), d.join("y.npy"));
    let good_x: Vec<f64> = (0..6).map(f64::from).collect();
    let check = |name: &str, xw: &dyn Fn(&Path), yw: &dyn Fn(&Path)| {
        xw(&x);
        yw(&y);
        snap_err(name, load_batch(&net, &x, &y).unwrap_err(), &d);
    };
    let gx = |p: &Path| write_npy(p, &[2, 3], &good_x).unwrap();
    let gy = |p: &Path| write_npy(p, &[2], &[0i64, 1]).unwrap();
    check("batch_class_out_of_range", &gx, &|p| write_npy(p, &[2], &[0i64, 3]).unwrap());
    check("batch_negative_class", &gx, &|p| write_npy(p, &[2], &[-1i64, 0]).unwrap());
    check("batch_size_mismatch", &gx, &|p| write_npy(p, &[3], &[0i64, 1, 2]).unwrap());
    check("batch_input_width", &|p| write_npy(p, &[3, 2], &good_x).unwrap(), &gy);
    check("batch_input_1d", &|p| write_npy(p, &[6], &good_x).unwrap(), &gy);
    check("batch_float_classes", &gx, &|p| write_npy(p, &[2], &[0.0f64, 1.0]).unwrap());
    check("batch_target_2d", &gx, &|p| write_npy(p, &[1, 2], &[0i64, 1]).unwrap());
    check("batch_inputs_u8", &|p| write_npy(p, &[2, 3], &[1u8; 6]).unwrap(), &gy);
    check("batch_inputs_int", &|p| write_npy(p, &[2, 3], &[1i64; 6]).unwrap(), &gy);
    check("batch_targets_u8", &gx, &|p| write_npy(p, &[2], &[1u8, 0]).unwrap());
    let mut nan_x = good_x.clone();
    nan_x[4] = f64::INFINITY;
    check("batch_inputs_inf", &|p| write_npy(p, &[2, 3], &nan_x).unwrap(), &gy);
    check("batch_absurd_header", &|p| std::fs::write(p, npy_claiming(&[1_000_000, 1_000_000])).unwrap(), &gy);
    check("batch_fortran", &|p| std::fs::write(p, fortran_npy()).unwrap(), &gy);
    check(
        "batch_missing_file",
        &|p| {
            let _ = std::fs::remove_file(p);
        },
        &gy,
    );

    let mse = Network::new(3, vec![], netgraph::LossSpec::Mse { outputs: 2, bias: true }).unwrap();
    gx(&x);
    write_npy(&y, &[2, 3], &[0.0f64; 6]).unwrap();
    snap_err("batch_regression_width", load_batch(&mse, &x, &y).unwrap_err(), &d);
    write_npy(&y, &[2], &[0i64, 1]).unwrap();
    snap_err("batch_regression_int", load_batch(&mse, &x, &y).unwrap_err(), &d);
    write_npy(&y, &[2, 2], &[0.0, f64::NAN, 0.0, 0.0]).unwrap();
    snap_err("batch_regression_nan", load_batch(&mse, &x, &y).unwrap_err(), &d);
    write_npy(&y, &[2, 2], &[1u8; 4]).unwrap();
    snap_err("batch_regression_u8", load_batch(&mse, &x, &y).unwrap_err(), &d);

    // A right-hand side is a float vector: integers are refused as such.
    let v = d.join("v.npy");
    write_npy(&v, &[3], &[1i64, 2, 3]).unwrap();
    snap_err("vector_int", read_npy_vector(&v).unwrap_err(), &d);
}

/// A hand-written npy header whose data is absent (numpy's format v1.0).
fn npy_header(dict: &str) -> Vec<u8> {
    let mut h = dict.to_string();
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h.as_bytes());
    out
}

fn npy_claiming(shape: &[u64]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    let mut v = npy_header(&format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({}), }}", dims.join(", ")));
    v.extend([0u8; 64]);
    v
}

fn fortran_npy() -> Vec<u8> {
    let mut v = npy_header("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }");
    v.extend((0..6).flat_map(|i| f64::from(i).to_le_bytes()));
    v
}

#[test]
fn batch_and_params_constructors_reject_bad_values() {
    let d = PathBuf::from("/nonexistent");
    let m = Mat::from_fn(2, 2, |i, j| if i == 1 && j == 0 { f64::NAN } else { 0.0 });
    snap_err("batch_new_nan", Batch::new(m, Targets::Classes(vec![0, 0])).unwrap_err(), &d);
    snap_err("batch_new_mismatch", Batch::new(Mat::zeros(2, 2), Targets::Classes(vec![0])).unwrap_err(), &d);
    let net = net();
    snap_err("params_length", netgraph::Params::from_vec(vec![0.0; 3], &net).unwrap_err(), &d);
    let b = Batch::random_regression(3, 2, 2, 0);
    snap_err("loss_target_kind", net.loss(&net.init_params(0), &b).unwrap_err(), &d);
    let b = Batch::random_classification(2, 3, 2, 0);
    snap_err("loss_input_width", net.loss(&net.init_params(0), &b).unwrap_err(), &d);
    let b = Batch::random_classification(3, 5, 8, 0);
    snap_err("loss_class_range", net.loss(&net.init_params(0), &b).unwrap_err(), &d);
}
