//! `SPEC_SCHEMA` cannot drift from the reader: every layer kind, loss,
//! activation and field the reader knows appears in it with the same keys,
//! and on a corpus of specs (the examples of the docs and tests, and
//! mutations of them) the schema validates exactly those the reader accepts.
//!
//! The validation uses the small validator below, which implements exactly
//! the JSON Schema keywords the schema uses (a test refuses any other): the
//! `jsonschema` crate would add 58 crates to every CI build (3.5 CPU-minutes
//! measured here). The corpus (49 specs, 17 accepted) was checked once with
//! Python's `jsonschema` 4.26 (`Draft202012Validator`), which agreed on
//! every spec.

use std::collections::BTreeSet;

use netgraph::activation::NAMES;
use netgraph::{Activation, LayerSpec, LossSpec, NetSpec, Network, Softplus, SPEC_SCHEMA};
use serde_json::Value;

fn schema() -> Value {
    serde_json::from_str(SPEC_SCHEMA).expect("the schema is JSON")
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
}

/// One layer of each kind. The match fails to compile when a kind is added,
/// until it has an example here.
fn layer_examples() -> Vec<LayerSpec> {
    let all = vec![
        LayerSpec::Dense { out: 3, activation: Activation::Tanh, bias: true },
        LayerSpec::Residual { activation: Activation::Gelu, bias: false },
    ];
    let index = |l: &LayerSpec| match l {
        LayerSpec::Dense { .. } => 0,
        LayerSpec::Residual { .. } => 1,
    };
    assert_eq!(all.iter().map(index).collect::<BTreeSet<_>>().len(), 2);
    all
}

/// One loss of each kind (same rule as [`layer_examples`]).
fn loss_examples() -> Vec<LossSpec> {
    let all = vec![LossSpec::CrossEntropy { classes: 3, bias: true }, LossSpec::Mse { outputs: 2, bias: false }];
    let index = |l: &LossSpec| match l {
        LossSpec::CrossEntropy { .. } => 0,
        LossSpec::Mse { .. } => 1,
    };
    assert_eq!(all.iter().map(index).collect::<BTreeSet<_>>().len(), 2);
    all
}

/// Every activation kind, with default and non-default parameters. The
/// match fails to compile when a kind is added.
fn activation_examples() -> Vec<Activation> {
    let mut all = Activation::ALL.to_vec();
    all.push(Activation::Softplus(Softplus::new(2.0, 5.0).unwrap()));
    for a in &all {
        match a {
            Activation::Identity
            | Activation::Tanh
            | Activation::Sigmoid
            | Activation::Softplus(_)
            | Activation::Gelu
            | Activation::GeluTanh
            | Activation::Relu
            | Activation::Square => {}
        }
    }
    all
}

/// The branch of `one_of` whose `kind` is `kind` (a `const` or an `enum`).
fn branch<'a>(one_of: &'a Value, kind: &str) -> &'a Value {
    one_of
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            let k = &b["properties"]["kind"];
            k["const"] == kind || strings(&k["enum"]).contains(kind)
        })
        .unwrap_or_else(|| panic!("no schema branch for kind `{kind}`"))
}

/// A serialized layer or loss has exactly the keys of its branch, all required.
fn check_object(one_of: &Value, example: &Value) {
    let kind = example["kind"].as_str().unwrap();
    let b = branch(one_of, kind);
    assert_eq!(keys(&b["properties"]), keys(example), "{kind}");
    assert_eq!(strings(&b["required"]), keys(example), "{kind}");
    assert_eq!(b["additionalProperties"], false, "{kind}");
}

#[test]
fn schema_names_every_kind_and_field_of_the_reader() {
    let s = schema();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let spec = NetSpec { input_dim: 2, layers: layer_examples(), loss: loss_examples()[0] };
    let v = serde_json::to_value(&spec).unwrap();
    assert_eq!(keys(&s["properties"]), keys(&v));
    assert_eq!(strings(&s["required"]), keys(&v));
    for l in loss_examples() {
        check_object(&s["$defs"]["loss"]["oneOf"], &serde_json::to_value(l).unwrap());
    }
    // Layer branches are references: resolve them.
    let layer_branches: Vec<Value> = s["$defs"]["layer"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let name = r["$ref"].as_str().unwrap().trim_start_matches("#/$defs/");
            s["$defs"][name].clone()
        })
        .collect();
    for l in layer_examples() {
        check_object(&Value::Array(layer_branches.clone()), &serde_json::to_value(l).unwrap());
    }

    // Activations: the names are those of the reader; every example
    // serializes to a name or to an object its branch describes.
    let act = &s["$defs"]["activation"]["oneOf"];
    let names: BTreeSet<String> = NAMES.iter().map(|n| n.to_string()).collect();
    assert_eq!(strings(&act[0]["enum"]), names);
    let mut object_kinds = BTreeSet::new();
    for b in act.as_array().unwrap().iter().skip(1) {
        let k = &b["properties"]["kind"];
        object_kinds.extend(strings(&k["enum"]));
        object_kinds.extend(k["const"].as_str().map(String::from));
    }
    assert_eq!(object_kinds, names);
    for a in activation_examples() {
        let v = serde_json::to_value(a).unwrap();
        match &v {
            Value::String(n) => assert!(names.contains(n), "{n}"),
            obj => {
                let b = branch(act, obj["kind"].as_str().unwrap());
                assert!(keys(obj).is_subset(&keys(&b["properties"])), "{a}: {obj}");
            }
        }
    }
}

/// The reader's verdict on a spec text: it parses and builds a network
/// (any memory budget).
fn reader_accepts(text: &str) -> bool {
    serde_json::from_str::<NetSpec>(text).is_ok_and(|s| Network::from_spec_within(s, u64::MAX).is_ok())
}

/// The JSON code blocks of `docs/spec.md` that are whole specs.
fn doc_examples() -> Vec<String> {
    let doc = include_str!("../../../../docs/spec.md");
    doc.split("```json\n").skip(1).filter_map(|b| b.split("```").next()).map(String::from).collect()
}

const BASE: &str = r#"{"input_dim": 3, "layers": [{"kind": "dense", "out": 4, "activation": "tanh", "bias": false},
  {"kind": "residual", "activation": "gelu", "bias": true}],
  "loss": {"kind": "cross_entropy", "classes": 3, "bias": false}}"#;

/// Specs and their mutations: the reader accepts some and refuses others.
fn corpus() -> Vec<String> {
    let mut out = doc_examples();
    assert!(!out.is_empty());
    out.push(BASE.into());
    out.push(r#"{"input_dim": 1, "layers": [], "loss": {"kind": "mse", "outputs": 1, "bias": true}}"#.into());
    for a in activation_examples() {
        out.push(BASE.replace("\"tanh\"", &serde_json::to_string(&a).unwrap()));
    }
    let replacements = [
        // Accepted.
        ("\"gelu\"", r#"{"kind": "gelu", "approximate": "none"}"#),
        ("\"gelu\"", r#"{"kind": "softplus", "beta": 0.25, "threshold": -3}"#),
        ("\"gelu\"", r#"{"kind": "relu"}"#),
        ("\"gelu\"", r#"{"kind": "softplus", "threshold": 1e3}"#),
        ("\"classes\": 3", "\"classes\": 1"),
        // Refused.
        ("\"gelu\"", "\"swish\""),
        ("\"gelu\"", "\"leaky_relu\""),
        ("\"gelu\"", "\"Tanh\""),
        ("\"gelu\"", r#"{"kind": "softplus", "beta": 0}"#),
        ("\"gelu\"", r#"{"kind": "softplus", "beta": -2}"#),
        ("\"gelu\"", r#"{"kind": "softplus", "beta": "2"}"#),
        ("\"gelu\"", r#"{"kind": "softplus", "approximate": "tanh"}"#),
        ("\"gelu\"", r#"{"kind": "gelu", "approximate": "erf"}"#),
        ("\"gelu\"", r#"{"kind": "gelu", "beta": 1}"#),
        ("\"gelu\"", r#"{"kind": "tanh", "threshold": 1}"#),
        ("\"gelu\"", r#"{"beta": 2}"#),
        ("\"gelu\"", r#"{"kind": "softplus", "inplace": true}"#),
        ("\"gelu\"", "null"),
        ("\"gelu\"", "2"),
        ("\"out\": 4", "\"out\": 0"),
        ("\"out\": 4", "\"out\": -4"),
        ("\"out\": 4", "\"out\": \"4\""),
        ("\"out\": 4, ", ""),
        ("\"classes\": 3", "\"classes\": 0"),
        ("\"classes\": 3", "\"outputs\": 3"),
        ("\"cross_entropy\"", "\"mse\""),
        ("\"cross_entropy\"", "\"nll\""),
        ("\"residual\"", "\"conv\""),
        ("\"kind\": \"residual\", ", "\"kind\": \"residual\", \"out\": 4, "),
        ("\"kind\": \"residual\", ", ""),
        ("\"bias\": false},", "\"bias\": 0},"),
        ("\"bias\": false},", "\"bias\": true, \"dropout\": 0.1},"),
        (", \"bias\": true}],", "}],"),
        ("\"input_dim\": 3", "\"input_dim\": 0"),
        ("\"input_dim\": 3", "\"input_dim\": 3, \"name\": \"net\""),
        ("\"input_dim\": 3, ", ""),
        ("\"layers\": [", "\"layers\": {\"0\": "),
    ];
    for (from, to) in replacements {
        assert!(BASE.contains(from), "{from}");
        out.push(BASE.replacen(from, to, 1));
    }
    out
}

/// The keywords [`valid`] implements, and the annotations it ignores.
const KEYWORDS: [&str; 17] = [
    "$schema",
    "$defs",
    "$ref",
    "title",
    "description",
    "default",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "oneOf",
    "minimum",
    "maximum",
    "exclusiveMinimum",
];

/// Every keyword of every (sub)schema, for the check that `valid` knows them all.
fn keywords_used(schema: &Value, out: &mut BTreeSet<String>) {
    let Some(obj) = schema.as_object() else { return };
    for (k, v) in obj {
        out.insert(k.clone());
        match k.as_str() {
            // Maps from names to schemas.
            "properties" | "$defs" => v.as_object().unwrap().values().for_each(|s| keywords_used(s, out)),
            "oneOf" => v.as_array().unwrap().iter().for_each(|s| keywords_used(s, out)),
            "items" => keywords_used(v, out),
            _ => {}
        }
    }
}

/// Whether `v` validates against `schema` (draft 2020-12 semantics for the
/// keywords in [`KEYWORDS`]; each keyword constrains only the instance types
/// it applies to, as the specification says).
fn valid(root: &Value, schema: &Value, v: &Value) -> bool {
    let num = |s: &Value| s.as_f64().unwrap();
    schema.as_object().unwrap().iter().all(|(k, s)| match k.as_str() {
        "$ref" => {
            let name = s.as_str().unwrap().strip_prefix("#/$defs/").unwrap();
            valid(root, &root["$defs"][name], v)
        }
        "type" => match s.as_str().unwrap() {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "boolean" => v.is_boolean(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            // A number with no fractional part, 3.0 included.
            "integer" => v.as_f64().is_some_and(|x| x.fract() == 0.0),
            other => panic!("type {other}"),
        },
        "properties" => v.as_object().is_none_or(|o| {
            s.as_object().unwrap().iter().all(|(name, sub)| o.get(name).is_none_or(|x| valid(root, sub, x)))
        }),
        "required" => v.as_object().is_none_or(|o| strings(s).iter().all(|name| o.contains_key(name))),
        "additionalProperties" => {
            assert_eq!(s, &Value::Bool(false), "only additionalProperties: false is implemented");
            let allowed = keys(&schema["properties"]);
            v.as_object().is_none_or(|o| o.keys().all(|key| allowed.contains(key)))
        }
        "items" => v.as_array().is_none_or(|a| a.iter().all(|x| valid(root, s, x))),
        "enum" => s.as_array().unwrap().contains(v),
        "const" => s == v,
        "oneOf" => s.as_array().unwrap().iter().filter(|b| valid(root, b, v)).count() == 1,
        "minimum" => v.as_f64().is_none_or(|x| x >= num(s)),
        "maximum" => v.as_f64().is_none_or(|x| x <= num(s)),
        "exclusiveMinimum" => v.as_f64().is_none_or(|x| x > num(s)),
        "$schema" | "$defs" | "title" | "description" | "default" => true,
        other => panic!("keyword {other} is not implemented"),
    })
}

#[test]
fn the_validator_knows_every_keyword_of_the_schema() {
    let mut used = BTreeSet::new();
    keywords_used(&schema(), &mut used);
    let known: BTreeSet<String> = KEYWORDS.iter().map(|k| k.to_string()).collect();
    assert!(used.is_subset(&known), "unimplemented keywords: {:?}", used.difference(&known).collect::<Vec<_>>());
    // The validator can say no, on each kind of keyword.
    let s = schema();
    for bad in [
        r#"{"input_dim": 1.5, "layers": [], "loss": {"kind": "mse", "outputs": 1, "bias": true}}"#,
        r#"{"input_dim": 1, "layers": [], "loss": {"kind": "mse", "outputs": 1, "bias": true}, "x": 1}"#,
        r#"{"input_dim": 1, "layers": [], "loss": {"kind": "mse", "bias": true}}"#,
        r#"{"input_dim": 1, "layers": [3], "loss": {"kind": "mse", "outputs": 1, "bias": true}}"#,
    ] {
        assert!(!valid(&s, &s, &serde_json::from_str(bad).unwrap()), "{bad}");
    }
}

#[test]
fn schema_validates_exactly_the_specs_the_reader_accepts() {
    let s = schema();
    let (mut accepted, mut refused) = (0, 0);
    for text in corpus() {
        let json: Result<Value, _> = serde_json::from_str(&text);
        let schema_ok = json.as_ref().is_ok_and(|v| valid(&s, &s, v));
        let reader = reader_accepts(&text);
        assert_eq!(schema_ok, reader, "schema says {schema_ok}, reader says {reader}:\n{text}");
        if reader {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    // Both verdicts are exercised.
    assert!(accepted >= 12 && refused >= 25, "{accepted} accepted, {refused} refused");
}
