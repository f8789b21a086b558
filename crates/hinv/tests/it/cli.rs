//! The `hinv` binary: help texts, error messages and exit codes, and a full
//! round trip through files.

use std::path::PathBuf;
use std::process::Command;

fn hinv() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hinv"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = hinv().args(args).output().expect("the hinv binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hinv-cli-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn help_texts() {
    for sub in [
        "",
        "demo",
        "solve",
        "hvp",
        "logdet",
        "inertia",
        "gradient",
        "laplace",
        "spectrum",
        "trust-region",
        "spec-schema",
        "train",
    ] {
        let args: Vec<&str> = if sub.is_empty() { vec!["--help"] } else { vec![sub, "--help"] };
        let (code, out, _) = run(&args);
        assert_eq!(code, 0);
        let name = if sub.is_empty() { "help".to_string() } else { format!("help_{sub}") };
        insta::assert_snapshot!(name, out);
    }
}

#[test]
fn missing_file_is_one_line_and_nonzero() {
    let (code, out, err) = run(&[
        "solve",
        "--spec",
        "/nonexistent/net.json",
        "--weights",
        "w.safetensors",
        "--inputs",
        "x.npy",
        "--targets",
        "y.npy",
    ]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    insta::assert_snapshot!("missing_spec", err);
}

/// Writes a model with netgraph's writers, then runs every subcommand on it
/// and checks the written solution against the library.
#[test]
fn round_trip_through_files() {
    use netgraph::{Activation, Batch, LayerSpec, LossSpec, Network};
    let dir = scratch("roundtrip");
    let net = Network::new(
        4,
        vec![
            LayerSpec::Dense { out: 5, activation: Activation::Tanh, bias: true },
            LayerSpec::Residual { activation: Activation::Gelu, bias: true },
        ],
        LossSpec::CrossEntropy { classes: 3, bias: false },
    )
    .unwrap();
    let mut params = net.init_params(3);
    params.scale(2.0);
    let batch = Batch::random_classification(4, 3, 3, 4);
    let spec = dir.join("net.json");
    let weights = dir.join("net.safetensors");
    let inputs = dir.join("x.npy");
    let targets = dir.join("y.npy");
    netgraph::save_spec(&net, &spec).unwrap();
    netgraph::save_weights(&net, &params, &weights, netgraph::Dtype::F64).unwrap();
    netgraph::save_batch(&batch, &inputs, &targets).unwrap();
    let step = dir.join("step.npy");
    let files = [
        "--spec",
        spec.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--inputs",
        inputs.to_str().unwrap(),
        "--targets",
        targets.to_str().unwrap(),
    ];
    let mut args = vec!["solve"];
    args.extend(files);
    args.extend(["--eps", "1e-2", "--out", step.to_str().unwrap(), "--json"]);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(summary["relative_residual"].as_f64().unwrap() < 1e-10);

    let x = netgraph::read_npy_vector(&step).unwrap();
    let curv = hinv::Curvature::new(&net, &params, &batch).unwrap();
    let expected = curv.factor(1e-2).unwrap().solve(curv.gradient()).unwrap();
    let diff = x.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(diff <= 1e-12 * expected.iter().map(|v| v.abs()).fold(0.0, f64::max));

    // The memory estimates refuse before the passes and before factoring.
    let mut args = vec!["solve"];
    args.extend(files);
    args.extend(["--memory-limit", "1K"]);
    let (code, _, err) = run(&args);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: the derivative blocks of this network"), "{err}");
    let mut args = vec!["solve"];
    args.extend(files);
    args.extend(["--memory-limit", "64K"]);
    let (code, _, err) = run(&args);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: the factorization of the lifted system needs "), "{err}");
    assert!(err.contains("above the limit of 64.00 KiB"), "{err}");
    let mut args = vec!["solve"];
    args.extend(files);
    args.extend(["--memory-limit", "lots"]);
    let (code, _, err) = run(&args);
    assert_eq!(code, 2);
    assert!(err.contains("not a memory size"), "{err}");

    for sub in ["hvp", "logdet", "inertia", "gradient"] {
        let mut args = vec![sub];
        args.extend(files);
        args.push("--json");
        let (code, out, err) = run(&args);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["command"], sub);
        if sub == "inertia" && v["certified"] == false {
            // At shift 0 this small network's H has (near-)zero
            // eigenvalues: an uncertain inertia is printed and flagged.
            assert_eq!(code, 3, "{sub}: {err}");
            assert!(err.starts_with("warning: the inertia is not certified"), "{err}");
        } else {
            assert_eq!(code, 0, "{sub}: {err}");
        }
    }
    // `gradient` runs the passes only; it must agree with the gradient the
    // derivative blocks are computed with (same passes, so to rounding).
    let gout = dir.join("g.npy");
    let mut args = vec!["gradient"];
    args.extend(files);
    args.extend(["--out", gout.to_str().unwrap()]);
    let (code, _, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let g = netgraph::read_npy_vector(&gout).unwrap();
    let diff = g.iter().zip(curv.gradient()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(diff <= 1e-14 * curv.gradient().iter().map(|v| v.abs()).fold(0.0, f64::max), "{diff:e}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `hinv spec-schema` prints netgraph's schema verbatim: valid JSON, draft
/// 2020-12 (netgraph's tests tie the schema to the reader).
#[test]
fn spec_schema_prints_the_schema() {
    let (code, out, err) = run(&["spec-schema"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, netgraph::SPEC_SCHEMA);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
}

/// A small model written with netgraph's writers; returns the four file flags.
fn model_files(dir: &std::path::Path) -> (Vec<String>, hinv::Curvature) {
    use netgraph::{Activation, Batch, LayerSpec, LossSpec, Network};
    let net = Network::new(
        3,
        vec![LayerSpec::Dense { out: 4, activation: Activation::Tanh, bias: true }],
        LossSpec::CrossEntropy { classes: 3, bias: true },
    )
    .unwrap();
    let mut params = net.init_params(5);
    params.scale(2.0);
    let batch = Batch::random_classification(3, 3, 4, 6);
    let mut flags = write_model(dir, &net, &params, &batch);
    flags.push("--json".into());
    (flags, hinv::Curvature::new(&net, &params, &batch).unwrap())
}

/// Writes a network, its weights and a batch into `dir`; the file flags
/// every model command takes.
fn write_model(
    dir: &std::path::Path,
    net: &netgraph::Network,
    params: &netgraph::Params,
    batch: &netgraph::Batch,
) -> Vec<String> {
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    netgraph::save_spec(net, p("net.json")).unwrap();
    netgraph::save_weights(net, params, p("net.safetensors"), netgraph::Dtype::F64).unwrap();
    netgraph::save_batch(batch, p("x.npy"), p("y.npy")).unwrap();
    ["--spec", &p("net.json"), "--weights", &p("net.safetensors"), "--inputs", &p("x.npy"), "--targets", &p("y.npy")]
        .map(String::from)
        .to_vec()
}

fn run_json(sub: &str, files: &[String], extra: &[&str]) -> serde_json::Value {
    let mut args = vec![sub];
    args.extend(files.iter().map(String::as_str));
    args.extend(extra);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

/// Numeric flags take numbers as people write them: a negative value with
/// a signed exponent after a space (`--shift -1e-3`, which clap's
/// negative-number test does not recognise) as well as after `=`.
#[test]
fn numeric_flags_take_negative_numbers_and_exponents() {
    let dir = scratch("numbers");
    let (files, curv) = model_files(&dir);
    // The inertia of H + 1e-3 I from the library; `--shift -1e-3` asks
    // for the eigenvalues of H below -1e-3, i.e. the negative ones of it.
    let expected = curv.factor(1e-3).unwrap().inertia();
    for shift in [&["--shift", "-1e-3"][..], &["--shift=-1e-3"], &["--shift", "-0.001"], &["--shift", "-1E-3"]] {
        let v = run_json("inertia", &files, shift);
        assert_eq!(v["shift"], -1e-3, "{shift:?}");
        assert_eq!(v["below"], expected.negative, "{shift:?}");
        assert_eq!(v["above"], expected.positive, "{shift:?}");
    }
    for (eps, value) in [("-0.01", -0.01), ("1e-3", 1e-3), ("-1e-2", -1e-2), ("+2.5e-1", 0.25)] {
        let v = run_json("solve", &files, &["--eps", eps]);
        assert_eq!(v["eps"], value, "--eps {eps}");
        assert!(v["relative_residual"].as_f64().unwrap() < 1e-10, "--eps {eps}: {v}");
        let v = run_json("logdet", &files, &["--eps", eps]);
        assert_eq!(v["eps"], value, "logdet --eps {eps}");
    }
    run_json("solve", &files, &["--eps", "-1e-2", "--refine", "1e-14"]);
    // A negative tolerance or memory size reaches our own checks, which
    // name the value, instead of clap's "unexpected argument".
    let mut args: Vec<&str> = vec!["solve"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--memory-limit", "-1G"]);
    let (code, _, err) = run(&args);
    assert_eq!(code, 2);
    assert!(err.contains("`-1G` is not a memory size"), "{err}");
    let mut args: Vec<&str> = vec!["inertia"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--shift", "-1e-3x"]);
    let (code, _, err) = run(&args);
    assert_eq!(code, 2);
    assert!(err.contains("invalid value '-1e-3x' for '--shift <SHIFT>'"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `--elimination` reaches every command that factors the lifted system:
/// the JSON names the elimination that ran, and both give the library's
/// counts.
#[test]
fn the_elimination_flag_reaches_the_factorization() {
    let dir = scratch("elimination");
    let (files, curv) = model_files(&dir);
    let expected = curv.factor(1e-3).unwrap().inertia();
    for (flag, ran) in [("interleaved", "interleaved"), ("parameters-first", "parameters_first")] {
        let v = run_json("inertia", &files, &["--shift", "-1e-3", "--elimination", flag]);
        assert_eq!(v["elimination"], ran, "{v}");
        assert_eq!((v["below"].as_u64(), v["certified"].as_bool()), (Some(expected.negative as u64), Some(true)));
        let v = run_json("logdet", &files, &["--elimination", flag]);
        assert_eq!(v["elimination"], ran, "{v}");
        let v = run_json("solve", &files, &["--elimination", flag]);
        assert_eq!(v["elimination"], ran, "{v}");
    }
    // Spectral brackets factor at shifts next to eigenvalues, where a forced
    // parameters-first elimination's growth leaves counts uncertain (the
    // reason `auto` refuses it there): these run interleaved.
    for sub in [&["spectrum", "--bins", "4"][..], &["trust-region", "--radius", "0.5"], &["laplace"]] {
        let v = run_json(sub[0], &files, &[&sub[1..], &["--elimination", "interleaved"]].concat());
        assert_eq!(v["elimination"], "interleaved", "{sub:?}");
    }
    // The Woodbury route factors no lifted system: the flag with it would be
    // ignored, so the pair is refused; alone, the flag takes the lifted route.
    let mut args = vec!["solve", "--curvature", "ggn", "--route", "woodbury", "--elimination", "interleaved"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = run(&args);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty() && err.contains("with the Woodbury route, which factors no lifted system"), "{err}");
    let v = run_json("solve", &files, &["--curvature", "ggn"]);
    assert_eq!(v["route"], "woodbury", "the cheaper route here, without the flag: {v}");
    let v = run_json("solve", &files, &["--curvature", "ggn", "--elimination", "interleaved"]);
    assert_eq!((&v["route"], &v["elimination"]), (&"lifted".into(), &"interleaved".into()), "{v}");
    let mut args = vec!["inertia", "--elimination", "lifted"];
    args.extend(files.iter().map(String::as_str));
    let (code, _, err) = run(&args);
    assert_eq!(code, 2);
    assert!(err.contains("`lifted` is not an elimination: use auto, interleaved or parameters-first"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// On wide layers a count after the parameters-first elimination is left
/// uncertain rather than checked by a second elimination costing hundreds
/// of factorizations; the warning names the flag that runs that check,
/// and the flag certifies the count.
#[test]
fn an_uncertain_wide_count_points_to_the_interleaved_elimination() {
    use netgraph::{Activation, Batch, Network};
    let dir = scratch("wide-count");
    // The network and shift of `factor::tests::no_second_elimination_beyond_the_cost_limit`.
    let net = Network::builder(5).without_bias().dense(40, Activation::Tanh).repeat(12).cross_entropy(3).unwrap();
    let params = net.init_params(20240601);
    let batch = Batch::random_classification(5, 3, 1, 20240602);
    let mut files = write_model(&dir, &net, &params, &batch);
    files.push("--json".into());
    let mut args = vec!["inertia", "--shift", "-1e-4"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = run(&args);
    assert_eq!(code, 3, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["elimination"].as_str(), v["certified"].as_bool()), (Some("parameters_first"), Some(false)));
    assert!(err.contains("or pass --elimination interleaved"), "{err}");
    let w = run_json("inertia", &files, &["--shift", "-1e-4", "--elimination", "interleaved"]);
    assert_eq!((w["elimination"].as_str(), w["certified"].as_bool()), (Some("interleaved"), Some(true)), "{w}");
    let off = v["below"].as_u64().unwrap().abs_diff(w["below"].as_u64().unwrap());
    assert!(off <= v["uncertain"].as_u64().unwrap(), "{v} vs {w}");
    // The spectrum's uncertain counts name it too.
    let mut args = vec!["spectrum", "--bins", "2", "--scale", "linear"];
    args.extend(files.iter().map(String::as_str));
    let (code, _, err) = run(&args);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("--elimination interleaved may certify these counts"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The code blocks of docs/pytorch.md whose first line is `# {name}`.
fn page_script(page: &str, name: &str) -> String {
    let first = format!("# {name}");
    page.split("```python\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.starts_with(&first))
        .unwrap_or_else(|| panic!("docs/pytorch.md has no `{first}` block"))
        .to_string()
}

/// The number after `key` on the line of `out` that contains `key`.
fn number_after(out: &str, key: &str) -> f64 {
    let line = out.lines().find(|l| l.contains(key)).unwrap_or_else(|| panic!("no `{key}` in\n{out}"));
    let rest = &line[line.find(key).unwrap() + key.len()..];
    rest.split_whitespace().next().and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

/// Runs docs/pytorch.md as a newcomer would: its export script writes the
/// example models, this build's binary computes the gradient, `H g` and
/// `(H + 1e-3 I)^-1 g`, and its check script compares them with
/// `torch.func` in float64. Needs a Python with torch, numpy and
/// safetensors (`HINV_TORCH_PYTHON`, default `python3`); skips without.
///
/// Bounds: the gradient and `H g` are sums of the same products in another
/// order, a few ulps times the depth, far below 1e-12. The solve: hinv's
/// backward error is at most 64 eps_mach (refined otherwise) and torch's
/// dense solve has one of a few eps_mach, so each is within about
/// `100 eps_mach cond` of the truth; `1e-13 cond` bounds their difference.
#[test]
fn pytorch_page() {
    let python = std::env::var("HINV_TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_torch = Command::new(&python)
        .args(["-c", "import torch, numpy, safetensors"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_torch {
        eprintln!("skipped: {python} has no torch, numpy and safetensors (set HINV_TORCH_PYTHON)");
        return;
    }
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/pytorch.md")).unwrap();
    let dir = scratch("pytorch-page");
    for name in ["export_for_hinv.py", "check_for_hinv.py"] {
        std::fs::write(dir.join(name), page_script(&page, name)).unwrap();
    }
    let py = |args: &[&str]| {
        let out = Command::new(&python).args(args).current_dir(&dir).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    py(&["export_for_hinv.py"]);
    for m in ["deep_tanh", "mixed_ce", "softplus_mse"] {
        let f = |s: &str| dir.join(format!("{m}{s}")).to_str().unwrap().to_string();
        let files = [f(".json"), f(".safetensors"), f("_x.npy"), f("_y.npy")];
        for (sub, out, extra) in
            [("gradient", "_g.npy", None), ("hvp", "_hv.npy", None), ("solve", "_step.npy", Some("1e-3"))]
        {
            let mut args = vec![sub, "--spec", &files[0], "--weights", &files[1], "--inputs", &files[2]];
            let o = f(out);
            args.extend(["--targets", &files[3], "--out", &o]);
            if let Some(eps) = extra {
                args.extend(["--eps", eps]);
            }
            let (code, _, err) = run(&args);
            assert_eq!(code, 0, "{m} {sub}: {err}");
        }
        let out = py(&["check_for_hinv.py", m, "1e-3"]);
        eprintln!("{out}");
        let cond = number_after(&out, "I) =");
        assert!(number_after(&out, "gradient relative error") <= 1e-12, "{out}");
        assert!(number_after(&out, "hvp      relative error") <= 1e-12, "{out}");
        assert!(number_after(&out, "solve    relative error") <= 1e-13 * cond.max(1.0), "{out}");
        if m == "softplus_mse" {
            // The example reaches the linear branch of every softplus.
            let above: Vec<&str> = out.lines().filter(|l| l.contains("above the threshold")).collect();
            assert_eq!(above.len(), 3, "{out}");
            assert!(above.iter().all(|l| !l.contains(": 0 of")), "{out}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `hinv spectrum` and `hinv trust-region` on files: the JSON against the
/// library, the SVG written, the step written.
#[test]
fn spectrum_and_trust_region_through_files() {
    use netgraph::{Activation, Batch, Network};
    let dir = scratch("spectrum");
    let net = Network::builder(3).without_bias().dense(4, Activation::Tanh).repeat(3).cross_entropy(3).unwrap();
    let mut params = net.init_params(5);
    params.scale(2.0);
    let batch = Batch::random_classification(3, 3, 4, 9);
    let flags = write_model(&dir, &net, &params, &batch);
    let files: Vec<&str> = flags.iter().map(String::as_str).collect();
    let curv = hinv::Curvature::new(&net, &params, &batch).unwrap();
    let svg = dir.join("h.svg");
    let mut args = vec!["spectrum"];
    args.extend(&files);
    args.extend(["--bins", "8", "--nearest", "0.1", "--k", "2", "--svg", svg.to_str().unwrap(), "--json"]);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let n = curv.num_params() as u64;
    let total: u64 = v["histogram"]["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).sum();
    assert_eq!(total, n);
    let signs = ["negative", "near_zero", "positive"].map(|k| v[k].as_u64().unwrap());
    assert_eq!(signs.iter().sum::<u64>(), n);
    let lmin = curv.lambda_min(&hinv::SpectrumOptions::default()).unwrap();
    assert_eq!(v["lambda_min"]["value"].as_f64().unwrap(), lmin.value);
    assert_eq!(v["eigenpairs"]["values"].as_array().unwrap().len(), 2);
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg") && picture.contains("negative") && picture.contains("symmetric-log"));

    let step = dir.join("p.npy");
    let mut args = vec!["trust-region"];
    args.extend(&files);
    args.extend(["--radius", "0.5", "--out", step.to_str().unwrap(), "--json"]);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let p = netgraph::read_npy_vector(&step).unwrap();
    let lib = curv.trust_region_step(0.5, &hinv::TrustRegionOptions::default()).unwrap();
    assert_eq!(p, lib.p);
    assert_eq!(v["report"]["kind"], "boundary");
    assert!((v["report"]["step_norm"].as_f64().unwrap() - 0.5).abs() < 1e-10);

    // Bad radius: an error, exit 2.
    let mut args = vec!["trust-region"];
    args.extend(&files);
    args.extend(["--radius", "-1"]);
    let (code, _, err) = run(&args);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: the trust-region radius must be"), "{err}");
}

/// `--curvature ggn` on the curvature commands and `hinv laplace` give the
/// library's numbers (the GGN ones checked against dense in tests/it/ggn.rs).
#[test]
fn ggn_and_laplace_commands_match_the_library() {
    let dir = scratch("ggn");
    let (files, _) = model_files(&dir);
    let net = netgraph::load_spec(&files[1]).unwrap();
    let params = netgraph::load_weights(&net, &files[3]).unwrap();
    let batch = netgraph::load_batch(&net, &files[5], &files[7]).unwrap();
    let opts = hinv::CurvatureOptions { kind: hinv::CurvatureKind::GaussNewton, ..Default::default() };
    let curv = hinv::Curvature::new_with(&net, &params, &batch, &opts).unwrap();
    for route in ["lifted", "woodbury", "auto"] {
        let v = run_json("logdet", &files, &["--curvature", "ggn", "--route", route, "--eps", "0.01"]);
        let want = curv.factor(0.01).unwrap().log_det().unwrap().log_abs;
        let got = v["log_abs_det"].as_f64().unwrap();
        // Two exact routes: agreement to ~u cond (cond ~ 1e2 here).
        assert!((got - want).abs() <= 1e-12 * want.abs().max(1.0), "{route}: {got} vs {want}");
        assert_eq!(v["curvature"], "ggn");
        let s = run_json("solve", &files, &["--curvature", "ggn", "--route", route]);
        assert_eq!(s["inertia"]["negative"], 0);
    }
    let i = run_json("inertia", &files, &["--curvature", "ggn", "--shift", "-0.001"]);
    assert_eq!((i["below"].as_u64(), i["certified"].as_bool()), (Some(0), Some(true)));
    let lap = hinv::laplace::Laplace::new(&net, &params, &batch, &Default::default()).unwrap();
    let want = lap.evidence(2.0).unwrap().log_marginal_likelihood;
    let v = run_json("laplace", &files, &["--prior-precision", "2"]);
    let got = v["evidence"]["log_marginal_likelihood"].as_f64().unwrap();
    assert!((got - want).abs() <= 1e-12 * want.abs(), "{got} vs {want}");
    let test = dir.join("test.npy");
    netgraph::save_npy(&test, batch.inputs()).unwrap();
    let v = run_json("laplace", &files, &["--optimize", "1e-3", "1e3", "--test-inputs", test.to_str().unwrap()]);
    assert_eq!(v["predictive"]["covariance"].as_array().unwrap().len(), batch.batch_size());
    assert_eq!(v["probit"].as_array().unwrap().len(), batch.batch_size());
}

/// Each command offers only the flags it uses: a flag it would ignore is a
/// usage error (exit 2), never silently dropped.
#[test]
fn flags_a_command_would_ignore_are_refused() {
    let dir = scratch("ignored-flags");
    let (files, _) = model_files(&dir);
    let flags: Vec<&str> = files.iter().map(String::as_str).collect();
    let refused: [(&str, &[&str], &str); 11] = [
        ("gradient", &["--curvature", "ggn"], "unexpected argument '--curvature'"),
        ("gradient", &["--route", "lifted"], "unexpected argument '--route'"),
        ("gradient", &["--memory-limit", "1G"], "unexpected argument '--memory-limit'"),
        ("hvp", &["--route", "woodbury"], "unexpected argument '--route'"),
        ("hvp", &["--elimination", "interleaved"], "unexpected argument '--elimination'"),
        ("spectrum", &["--route", "woodbury"], "unexpected argument '--route'"),
        ("trust-region", &["--radius", "1", "--route", "lifted"], "unexpected argument '--route'"),
        ("spectrum", &["--k", "3"], "--nearest <SIGMA>"),
        ("spectrum", &["--edges", "-1,0,1", "--bins", "4"], "cannot be used with"),
        ("laplace", &["--prior-precision", "2", "--optimize", "1", "10"], "cannot be used with"),
        ("laplace", &["--samples", "10"], "--test-inputs <FILE>"),
    ];
    for (sub, extra, message) in refused {
        let mut args = vec![sub];
        args.extend(&flags);
        args.extend(extra);
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{sub} {extra:?}: {err}");
        assert!(out.is_empty() && err.contains(message), "{sub} {extra:?}: {err}");
    }
    // A classifier has no noise standard deviation.
    let mut args = vec!["laplace"];
    args.extend(&flags);
    args.extend(["--sigma-noise", "0.5"]);
    let (code, out, err) = run(&args);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty() && err.starts_with("error: --sigma-noise is the noise of a regression"), "{err}");
    // A regression has no class probabilities to sample.
    let net = netgraph::Network::builder(3).dense(4, netgraph::Activation::Tanh).mse(2).unwrap();
    let batch = netgraph::Batch::random_regression(3, 2, 6, 1);
    std::fs::create_dir_all(dir.join("mse")).unwrap();
    let mse = write_model(&dir.join("mse"), &net, &net.init_params(1), &batch);
    let test = dir.join("test.npy");
    netgraph::save_npy(&test, batch.inputs()).unwrap();
    let mut args = vec!["laplace", "--test-inputs", test.to_str().unwrap(), "--samples", "10"];
    args.extend(mse.iter().map(String::as_str));
    let (code, out, err) = run(&args);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty() && err.starts_with("error: --samples draws class probabilities"), "{err}");
    // The flags each command does use are still accepted.
    assert_eq!(run_json("gradient", &files, &[])["command"], "gradient");
}
