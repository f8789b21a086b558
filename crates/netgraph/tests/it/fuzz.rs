//! Fuzz tests of the file readers (JSON spec, safetensors, `.npy`): arbitrary
//! bytes, mutated valid files (truncation, bit flips, spliced bytes) and
//! hand-built headers with hostile fields (absurd shapes, wrong dtypes,
//! offsets past the end, wrong JSON types, extra keys). The property is the
//! same everywhere: every outcome is `Ok` or a `NetError`, never a panic or
//! an abort.
//!
//! The number of cases per property follows `PROPTEST_CASES` (proptest's
//! default of 256 otherwise): CI runs the short pass, a developer a long one
//! with e.g. `PROPTEST_CASES=100000 cargo test -p netgraph --test it fuzz::`.
//! Inputs that crashed a reader are kept below as named regression tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use netgraph::{load_batch, load_spec, load_weights, read_npy_vector, Activation, LayerSpec, LossSpec, Network};
use proptest::prelude::*;
use serde_json::{json, Value};

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("netgraph-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A fresh file holding `bytes` (cases run in parallel threads of one process).
fn file(bytes: &[u8], ext: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let p = dir().join(format!("case-{n}.{ext}"));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The classifier whose files are mutated: biases, a residual, 40 parameters.
fn classifier() -> Network {
    Network::new(
        3,
        vec![
            LayerSpec::Dense { out: 4, activation: Activation::Tanh, bias: true },
            LayerSpec::Residual { activation: Activation::Gelu, bias: false },
        ],
        LossSpec::CrossEntropy { classes: 2, bias: true },
    )
    .unwrap()
}

fn regressor() -> Network {
    Network::new(
        2,
        vec![LayerSpec::Dense { out: 3, activation: Activation::Relu, bias: false }],
        LossSpec::Mse { outputs: 2, bias: false },
    )
    .unwrap()
}

fn valid_spec() -> Value {
    json!({"input_dim": 3,
           "layers": [{"kind": "dense", "out": 4, "activation": "tanh", "bias": true},
                      {"kind": "residual", "activation": "gelu", "bias": false}],
           "loss": {"kind": "cross_entropy", "classes": 2, "bias": true}})
}

fn bytes_of(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Valid files of every kind, as bytes, written by netgraph's own writers.
struct Valid {
    spec: Vec<u8>,
    weights_f64: Vec<u8>,
    weights_f32: Vec<u8>,
    inputs: Vec<u8>,
    classes: Vec<u8>,
    values: Vec<u8>,
    vector: Vec<u8>,
}

fn valid() -> &'static Valid {
    static VALID: std::sync::OnceLock<Valid> = std::sync::OnceLock::new();
    VALID.get_or_init(|| {
        let d = dir();
        let net = classifier();
        let params = net.init_params(1);
        netgraph::save_weights(&net, &params, d.join("w64.safetensors"), netgraph::Dtype::F64).unwrap();
        netgraph::save_weights(&net, &params, d.join("w32.safetensors"), netgraph::Dtype::F32).unwrap();
        let batch = netgraph::Batch::random_classification(3, 2, 3, 2);
        netgraph::save_batch(&batch, d.join("x.npy"), d.join("y.npy")).unwrap();
        let reg = netgraph::Batch::random_regression(2, 2, 3, 2);
        netgraph::save_batch(&reg, d.join("xr.npy"), d.join("yr.npy")).unwrap();
        netgraph::write_npy_vector(d.join("v.npy"), &[1.0, -2.0, 3.5]).unwrap();
        Valid {
            spec: serde_json::to_vec_pretty(&valid_spec()).unwrap(),
            weights_f64: bytes_of(&d.join("w64.safetensors")),
            weights_f32: bytes_of(&d.join("w32.safetensors")),
            inputs: bytes_of(&d.join("x.npy")),
            classes: bytes_of(&d.join("y.npy")),
            values: bytes_of(&d.join("yr.npy")),
            vector: bytes_of(&d.join("v.npy")),
        }
    })
}

/// Runs every reader on `bytes` in every role it can play. Any panic fails
/// the property (proptest catches it and shrinks the input).
fn read_everything(bytes: &[u8]) {
    let p = file(bytes, "bin");
    let _ = load_spec(&p);
    let net = classifier();
    let _ = load_weights(&net, &p);
    let _ = read_npy_vector(&p);
    let v = valid();
    let x = file(&v.inputs, "npy");
    let y = file(&v.classes, "npy");
    let _ = load_batch(&net, &p, &y);
    let _ = load_batch(&net, &x, &p);
    let reg = regressor();
    let _ = load_batch(&reg, &p, &p);
    for f in [p, x, y] {
        let _ = std::fs::remove_file(f);
    }
}

/// Edits applied to a valid file.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    FlipBit(usize, u8),
    Overwrite(usize, Vec<u8>),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..9)).prop_map(|(i, v)| Mutation::Overwrite(i, v)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..9)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
    ]
}

fn mutate(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = b.len().max(1);
        match m {
            Mutation::Truncate(i) => b.truncate(i % n),
            Mutation::FlipBit(i, bit) => {
                if let Some(x) = b.get_mut(i % n) {
                    *x ^= 1 << bit;
                }
            }
            Mutation::Overwrite(i, v) => {
                for (k, &x) in v.iter().enumerate() {
                    if let Some(y) = b.get_mut(i % n + k) {
                        *y = x;
                    }
                }
            }
            Mutation::Insert(i, v) => {
                let at = i % (b.len() + 1);
                b.splice(at..at, v.iter().copied());
            }
            Mutation::Remove(i, k) => {
                let at = i % n;
                let end = (at + k).min(b.len());
                if at < end {
                    b.drain(at..end);
                }
            }
        }
    }
    b
}

/// Dimensions a hostile header likes: small, zero, absurd, overflowing.
fn dim() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..5).prop_map(|d| d.to_string()),
        Just("1000000000000".to_string()),
        Just("4294967296".to_string()),
        Just(u64::MAX.to_string()),
        Just((1u64 << 63).to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("1.5".to_string()),
        Just("'a'".to_string()),
    ]
}

/// An npy file with an arbitrary (but npy-shaped) header and data.
fn npy_file() -> impl Strategy<Value = Vec<u8>> {
    let descr = prop::sample::select(vec![
        "'<f8'",
        "'<f4'",
        "'>f8'",
        "'<i8'",
        "'<i4'",
        "'>i4'",
        "'|u1'",
        "'<f2'",
        "'<c16'",
        "'|b1'",
        "'<U3'",
        "'|O'",
        "[('a', '<f8')]",
        "('<f8', (2,))",
        "'<f16'",
        "'zz'",
        "3",
    ]);
    let fortran = prop::sample::select(vec!["False", "True", "0", "'x'"]);
    (
        descr,
        fortran,
        prop::collection::vec(dim(), 0..4),
        prop::collection::vec(any::<u8>(), 0..80),
        0u8..4,
        any::<bool>(),
    )
        .prop_map(|(descr, fortran, shape, data, version, trailing_comma)| {
            let dims = shape.join(", ");
            let shape = if shape.len() == 1 && trailing_comma { format!("({dims},)") } else { format!("({dims})") };
            let header = format!("{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}\n");
            let mut b = b"\x93NUMPY".to_vec();
            let v = version.max(1);
            b.extend([v, 0]);
            if v == 1 {
                b.extend((header.len() as u16).to_le_bytes());
            } else {
                b.extend((header.len() as u32).to_le_bytes());
            }
            b.extend(header.bytes());
            b.extend(data);
            b
        })
}

/// A safetensors file whose header names the classifier's tensors (or
/// others) with arbitrary dtypes, shapes and offsets.
fn safetensors_file() -> impl Strategy<Value = Vec<u8>> {
    let name = prop::sample::select(vec![
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "loss.weight",
        "loss.bias",
        "layers.9.weight",
        "__metadata__",
        "",
    ]);
    let dtype = prop::sample::select(vec!["F64", "F32", "F16", "BF16", "I64", "U8", "BOOL", "F8_E4M3", "X", "7"]);
    let offset = prop_oneof![0u64..200, Just(u64::MAX), Just(1u64 << 40)];
    let shape =
        prop::collection::vec(prop_oneof![0u64..6, Just(1u64 << 32), Just(u64::MAX), Just(1_000_000_000_000)], 0..3);
    let tensor = (name, dtype, shape, offset.clone(), offset);
    (prop::collection::vec(tensor, 0..6), prop::collection::vec(any::<u8>(), 0..200), any::<bool>()).prop_map(
        |(tensors, data, pad)| {
            let mut h = serde_json::Map::new();
            for (name, dtype, shape, a, b) in tensors {
                if name == "__metadata__" {
                    h.insert(name.into(), json!({"format": "pt", "n": shape.len()}));
                } else {
                    h.insert(name.into(), json!({"dtype": dtype, "shape": shape, "data_offsets": [a, b]}));
                }
            }
            let mut text = serde_json::to_vec(&Value::Object(h)).unwrap();
            if pad {
                while text.len() % 8 != 0 {
                    text.push(b' ');
                }
            }
            let mut out = (text.len() as u64).to_le_bytes().to_vec();
            out.extend(text);
            out.extend(data);
            out
        },
    )
}

/// JSON values of every type, numbers included at their extremes.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![0u64..20, Just(1_000_000_000), Just(10_000_000), Just(1u64 << 40), Just(u64::MAX)]
            .prop_map(|n| json!(n)),
        prop_oneof![Just(-1i64), Just(i64::MIN)].prop_map(|n| json!(n)),
        prop_oneof![Just(1.5f64), Just(1e300), Just(-0.0)].prop_map(|x| json!(x)),
        prop::sample::select(vec![
            "dense",
            "residual",
            "tanh",
            "gelu",
            "relu",
            "square",
            "cross_entropy",
            "mse",
            "",
            "Dense",
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(vec!["kind", "out", "bias", "x", "classes"]), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// A path into the valid spec where a value can be replaced or a key added.
fn spec_edit() -> impl Strategy<Value = (Vec<&'static str>, Value, bool)> {
    let path = prop::sample::select(vec![
        vec!["input_dim"],
        vec!["layers"],
        vec!["layers", "0"],
        vec!["layers", "0", "out"],
        vec!["layers", "0", "kind"],
        vec!["layers", "0", "activation"],
        vec!["layers", "1", "bias"],
        vec!["loss"],
        vec!["loss", "classes"],
        vec!["loss", "kind"],
        vec!["extra"],
        vec!["layers", "1", "extra"],
    ]);
    (path, json_value(), any::<bool>())
}

fn apply_edit(spec: &mut Value, path: &[&str], v: Value) {
    let mut cur = spec;
    for (i, key) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        let next = match cur {
            Value::Object(m) if last => {
                m.insert(key.to_string(), v);
                return;
            }
            Value::Object(m) => m.get_mut(*key),
            Value::Array(a) => {
                let idx: usize = key.parse().unwrap_or(0);
                if last {
                    if let Some(slot) = a.get_mut(idx) {
                        *slot = v;
                    }
                    return;
                }
                a.get_mut(idx)
            }
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
}

fn config() -> ProptestConfig {
    // `ProptestConfig::default()` reads PROPTEST_CASES; crashes are kept as
    // named tests below rather than in a persistence file.
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        read_everything(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_magic(tail in prop::collection::vec(any::<u8>(), 0..256), v in 0u8..5) {
        let mut b = b"\x93NUMPY".to_vec();
        b.push(v);
        b.extend(tail);
        read_everything(&b);
    }

    #[test]
    fn mutated_valid_files(which in 0usize..7, muts in prop::collection::vec(mutation(), 1..5)) {
        let v = valid();
        let src = [&v.spec, &v.weights_f64, &v.weights_f32, &v.inputs, &v.classes, &v.values, &v.vector][which];
        read_everything(&mutate(src.clone(), &muts));
    }

    #[test]
    fn hostile_npy_headers(b in npy_file()) {
        read_everything(&b);
    }

    #[test]
    fn hostile_safetensors_headers(b in safetensors_file()) {
        read_everything(&b);
    }

    #[test]
    fn specs_with_wrong_types_and_extra_keys(edits in prop::collection::vec(spec_edit(), 1..4)) {
        let mut spec = valid_spec();
        for (path, v, _) in edits {
            apply_edit(&mut spec, &path, v);
        }
        let p = file(&serde_json::to_vec(&spec).unwrap(), "json");
        // A spec that loads has a parameter count that did not wrap.
        if let Ok(net) = load_spec(&p) {
            prop_assert_eq!(net.param_bytes(), 8 * net.num_params() as u128);
        }
        let _ = std::fs::remove_file(p);
    }
}

/// Builds the bytes of a v1 npy file with the given header text and data.
fn npy_v1(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((header.len() as u16).to_le_bytes());
    b.extend(header.bytes());
    b.extend(data);
    b
}

// Regression tests: inputs that crashed or threatened to exhaust memory.

/// A version 2 header claiming a 4 GiB header text: the npy reader used to
/// allocate the claimed size before reading; now refused from the file size.
#[test]
fn regression_npy_header_length_past_end() {
    let mut b = b"\x93NUMPY\x02\x00".to_vec();
    b.extend(u32::MAX.to_le_bytes());
    b.extend(b"{'descr': '<f8'");
    let p = file(&b, "npy");
    let e = read_npy_vector(&p).unwrap_err().to_string();
    assert!(e.contains("header claims 4294967295 bytes"), "{e}");
}

/// A file that ends inside the header length field.
#[test]
fn regression_npy_cut_inside_preamble() {
    let p = file(b"\x93NUMPY\x02\x00\xff", "npy");
    let e = read_npy_vector(&p).unwrap_err().to_string();
    assert!(e.contains("ends inside the header"), "{e}");
}

/// A header claiming 10^12 f64 elements over 8 bytes of data is refused
/// from the file size, with the shape in the message.
#[test]
fn regression_npy_absurd_shape() {
    let b = npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }\n", &[0; 8]);
    let p = file(&b, "npy");
    let e = read_npy_vector(&p).unwrap_err().to_string();
    assert!(e.contains("[1000000000000]"), "{e}");
}

/// Dimensions whose product overflows `u64` (2^32 * 2^32 * 0 is zero, but
/// 2^33 * 2^33 is not representable).
#[test]
fn regression_npy_shape_product_overflow() {
    let b = npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (8589934592, 8589934592), }\n", &[]);
    let p = file(&b, "npy");
    assert!(read_npy_vector(&p).is_err());
    let net = classifier();
    let y = file(&valid().classes, "npy");
    assert!(load_batch(&net, &p, &y).is_err());
}

/// A safetensors header claiming a tensor of 10^12 elements.
#[test]
fn regression_safetensors_absurd_shape() {
    let h = json!({"loss.weight": {"dtype": "F64", "shape": [1_000_000_000_000u64, 4], "data_offsets": [0, 8]}});
    let text = serde_json::to_vec(&h).unwrap();
    let mut b = (text.len() as u64).to_le_bytes().to_vec();
    b.extend(text);
    b.extend([0u8; 8]);
    let p = file(&b, "safetensors");
    assert!(load_weights(&classifier(), &p).is_err());
}
