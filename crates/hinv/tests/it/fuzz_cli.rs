//! Fuzz tests of the `hinv` command line, through the real binary: random
//! argument vectors (subcommands, flags in any order, values such as "nan",
//! "-inf", "1e999", missing files, directories given as files, files of the
//! wrong kind). Every run exits with 0 or 2 (clap's usage errors are 2
//! too), never prints a panic or a backtrace, and our own errors are one
//! line on stderr.
//!
//! 64 argument vectors by default; `PROPTEST_CASES` raises it for a long
//! run (`PROPTEST_CASES=2000 cargo test -p hinv --test it fuzz_cli::`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use netgraph::{Activation, Batch, LayerSpec, LossSpec, Network};
use proptest::prelude::*;

/// Paths of a small valid model and of hostile stand-ins.
struct Files {
    dir: PathBuf,
    spec: String,
    weights: String,
    inputs: String,
    targets: String,
    rhs: String,
    rhs_nan: String,
    rhs_short: String,
    garbage: String,
    empty: String,
}

fn files() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("hinv-fuzz-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let net = Network::new(
            3,
            vec![
                LayerSpec::Dense { out: 4, activation: Activation::Tanh, bias: true },
                LayerSpec::Residual { activation: Activation::Relu, bias: false },
            ],
            LossSpec::CrossEntropy { classes: 2, bias: false },
        )
        .unwrap();
        let mut params = net.init_params(1);
        params.scale(2.0);
        let batch = Batch::random_classification(3, 2, 3, 2);
        let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
        netgraph::save_spec(&net, p("net.json")).unwrap();
        netgraph::save_weights(&net, &params, p("w.safetensors"), netgraph::Dtype::F32).unwrap();
        netgraph::save_batch(&batch, p("x.npy"), p("y.npy")).unwrap();
        let n = net.num_params();
        netgraph::write_npy_vector(p("v.npy"), &(0..n).map(|i| (i as f64).sin()).collect::<Vec<_>>()).unwrap();
        let mut nan = vec![1.0; n];
        nan[n / 2] = f64::NAN;
        netgraph::write_npy_vector(p("nan.npy"), &nan).unwrap();
        netgraph::write_npy_vector(p("short.npy"), &[1.0, 2.0]).unwrap();
        std::fs::write(p("garbage.bin"), b"\x93NUMPY\x01\x00\xff\xff{'descr'").unwrap();
        std::fs::write(p("empty"), b"").unwrap();
        Files {
            spec: p("net.json"),
            weights: p("w.safetensors"),
            inputs: p("x.npy"),
            targets: p("y.npy"),
            rhs: p("v.npy"),
            rhs_nan: p("nan.npy"),
            rhs_short: p("short.npy"),
            garbage: p("garbage.bin"),
            empty: p("empty"),
            dir,
        }
    })
}

/// Runs the binary: (exit code, stdout, stderr).
fn run(args: &[String]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hinv"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the hinv binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The properties every run must have; `Err` describes the violation.
fn check(args: &[String]) -> Result<(i32, String), String> {
    let (code, _out, err) = run(args);
    let show = || format!("args {args:?}\nexit {code}\nstderr:\n{err}");
    if ![0, 2, 3].contains(&code) {
        return Err(format!("exit status not 0, 2 or 3: {}", show()));
    }
    // Exit 3 is an answer hinv cannot vouch for: always with one warning.
    if code == 3 && (err.lines().count() != 1 || !err.starts_with("warning: ")) {
        return Err(format!("exit 3 without a one-line warning: {}", show()));
    }
    if err.contains("panicked") || err.contains("stack backtrace") || err.contains("RUST_BACKTRACE") {
        return Err(format!("panic: {}", show()));
    }
    // clap's usage errors carry a usage block; ours are one line.
    let clap_usage = err.contains("Usage:") || err.contains("For more information");
    if code == 2 && !clap_usage && (err.lines().count() != 1 || !err.starts_with("error: ")) {
        return Err(format!("not a one-line error: {}", show()));
    }
    Ok((code, err))
}

/// A file-valued argument: mostly the right file, else something hostile.
fn file_value(right: fn(&Files) -> &String) -> impl Strategy<Value = String> {
    let f = files();
    let dir = f.dir.to_str().unwrap().to_string();
    prop_oneof![
        6 => Just(right(f).clone()),
        1 => prop::sample::select(vec![
            dir.clone(),
            format!("{dir}/missing.npy"),
            "/nonexistent/dir/file".to_string(),
            f.garbage.clone(),
            f.empty.clone(),
            f.spec.clone(),
            f.weights.clone(),
            f.inputs.clone(),
            f.targets.clone(),
            f.rhs_nan.clone(),
            f.rhs_short.clone(),
            String::new(),
        ]),
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "nan", "NaN", "inf", "-inf", "1e999", "-1e999", "0", "-0", "1e-3", "1", "-1", "1e-300", "abc", "", "0x10",
        "1e-12", "-5e-2",
    ])
    .prop_map(str::to_string)
}

/// One flag with its value (or none), as separate arguments.
fn flag() -> impl Strategy<Value = Vec<String>> {
    let f = files();
    let dir = f.dir.to_str().unwrap().to_string();
    let out = prop::sample::select(vec![format!("{dir}/out.npy"), dir, "/nonexistent/dir/out.npy".to_string()]);
    prop_oneof![
        file_value(|f| &f.spec).prop_map(|v| vec!["--spec".into(), v]),
        file_value(|f| &f.weights).prop_map(|v| vec!["--weights".into(), v]),
        file_value(|f| &f.inputs).prop_map(|v| vec!["--inputs".into(), v]),
        file_value(|f| &f.targets).prop_map(|v| vec!["--targets".into(), v]),
        file_value(|f| &f.rhs).prop_map(|v| vec!["--rhs".into(), v]),
        out.prop_map(|v| vec!["--out".into(), v]),
        number().prop_map(|v| vec!["--eps".into(), v]),
        number().prop_map(|v| vec!["--shift".into(), v]),
        number().prop_map(|v| vec!["--refine".into(), v]),
        Just(vec!["--json".to_string()]),
        // The factorization's choices, alone and against each other
        // (`--route woodbury` with an elimination, or with the Hessian).
        prop::sample::select(vec!["auto", "interleaved", "parameters-first", "parameters_first", "bogus", ""])
            .prop_map(|v| vec!["--elimination".into(), v.to_string()]),
        prop::sample::select(vec!["auto", "lifted", "woodbury", "bogus"])
            .prop_map(|v| vec!["--route".into(), v.to_string()]),
        prop::sample::select(vec!["hessian", "ggn", "bogus"]).prop_map(|v| vec!["--curvature".into(), v.to_string()]),
        prop::sample::select(vec!["--bogus", "-x", "--", "--eps", "--spec=", "--help"])
            .prop_map(|s| vec![s.to_string()]),
    ]
}

/// An argument vector: a subcommand, usually the four model files (so the
/// computation runs), then random flags, shuffled.
fn argv() -> impl Strategy<Value = Vec<String>> {
    let sub = prop::sample::select(vec!["solve", "hvp", "logdet", "inertia", "gradient", "bogus", "", "--version"]);
    let model = prop::collection::vec(
        prop_oneof![
            file_value(|f| &f.spec).prop_map(|v| vec!["--spec".to_string(), v]),
            file_value(|f| &f.weights).prop_map(|v| vec!["--weights".to_string(), v]),
            file_value(|f| &f.inputs).prop_map(|v| vec!["--inputs".to_string(), v]),
            file_value(|f| &f.targets).prop_map(|v| vec!["--targets".to_string(), v]),
        ],
        0..5,
    );
    let always_model = any::<bool>();
    (sub, always_model, model, prop::collection::vec(flag(), 0..5)).prop_flat_map(|(sub, always, model, flags)| {
        let f = files();
        let mut groups: Vec<Vec<String>> = Vec::new();
        if always {
            for (k, v) in
                [("--spec", &f.spec), ("--weights", &f.weights), ("--inputs", &f.inputs), ("--targets", &f.targets)]
            {
                groups.push(vec![k.to_string(), v.clone()]);
            }
        }
        groups.extend(model);
        groups.extend(flags);
        Just(groups).prop_shuffle().prop_map(move |groups| {
            let mut v = vec![sub.to_string()];
            v.extend(groups.into_iter().flatten());
            v
        })
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_argument_vectors(args in argv()) {
        if let Err(e) = check(&args) {
            prop_assert!(false, "{}", e);
        }
    }
}

fn model_args(sub: &str) -> Vec<String> {
    let f = files();
    let mut v = vec![sub.to_string()];
    for (k, p) in [("--spec", &f.spec), ("--weights", &f.weights), ("--inputs", &f.inputs), ("--targets", &f.targets)] {
        v.push(k.into());
        v.push(p.clone());
    }
    v
}

/// Non-finite `--eps` values are refused by name, after the files load.
#[test]
fn non_finite_eps_is_named() {
    for sub in ["solve", "logdet"] {
        for value in ["nan", "inf", "1e999", "-1e999"] {
            let mut args = model_args(sub);
            args.extend(["--eps".to_string(), value.to_string()]);
            let (code, err) = check(&args).unwrap();
            assert_eq!(code, 2, "{sub} --eps {value}");
            assert!(err.starts_with("error: eps must be a finite number, got "), "{sub} --eps {value}: {err}");
        }
    }
    // "-inf" reads as a flag to clap unless it is attached with "=".
    let mut args = model_args("solve");
    args.push("--eps=-inf".into());
    let (code, err) = check(&args).unwrap();
    assert_eq!(code, 2);
    assert_eq!(err.trim_end(), "error: eps must be a finite number, got -inf");
}

/// A right-hand side holding NaN is named by its file.
#[test]
fn non_finite_rhs_file_is_named() {
    let f = files();
    for sub in ["solve", "hvp"] {
        let mut args = model_args(sub);
        args.extend(["--rhs".to_string(), f.rhs_nan.clone()]);
        let (code, err) = check(&args).unwrap();
        assert_eq!(code, 2);
        assert!(err.starts_with(&format!("error: {} holds a non-finite value NaN at flat index", f.rhs_nan)), "{err}");
    }
}

/// A directory where a file is expected is an I/O error naming it.
#[test]
fn directory_as_file_is_one_line() {
    let f = files();
    let mut args = model_args("gradient");
    args[2] = f.dir.to_str().unwrap().to_string();
    let (code, err) = check(&args).unwrap();
    assert_eq!(code, 2);
    assert!(err.starts_with(&format!("error: {}: ", f.dir.display())), "{err}");
}
