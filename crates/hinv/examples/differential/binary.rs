//! The `hinv` binary on one case: the network written as files, `solve`,
//! `inertia` and `logdet` run with `--json`, and their answers held to the
//! same rules as the library's (exit status 0 only with an answer within
//! its stated accuracy).

use std::path::Path;
use std::process::Command;

use super::harness::adapter::{LibInertia, RefusalKind};
use super::harness::checks::{judge_answer, judge_inertia, judge_log_det, judge_refusal, Failure, FailureKind};
use super::harness::run::CaseInputs;

fn binary_failure(command: &str, f: Failure) -> Failure {
    Failure { kind: FailureKind::Binary, detail: format!("hinv {command}: [{}] {}", f.kind.name(), f.detail) }
}

fn broken(command: &str, detail: String) -> Failure {
    Failure { kind: FailureKind::Binary, detail: format!("hinv {command}: {detail}") }
}

/// Runs the three commands on the first case of a network.
pub fn check(bin: &Path, scratch: &Path, inp: &CaseInputs<'_>) -> Vec<Failure> {
    let dir = scratch.join(format!("case-{}", inp.index));
    let mut failures = Vec::new();
    if let Err(e) = write_model(&dir, inp) {
        failures.push(broken("(files)", format!("cannot write the model: {e}")));
        return failures;
    }
    let eps = inp.ctx.eps;
    // `--eps=VALUE`: clap takes `--eps -1.5e-4` (a negative number in
    // exponent notation, as `{:e}` writes it) for an unknown flag `-1`.
    let model = |cmd: &str| {
        let mut c = Command::new(bin);
        c.arg(cmd)
            .arg("--spec")
            .arg(dir.join("net.json"))
            .arg("--weights")
            .arg(dir.join("net.safetensors"))
            .arg("--inputs")
            .arg(dir.join("x.npy"))
            .arg("--targets")
            .arg(dir.join("y.npy"))
            .arg("--json");
        c
    };

    // solve: exit 0 with a solution, or status 2 with a refusal.
    let out_path = dir.join("sol.npy");
    match model("solve").arg(format!("--eps={eps:e}")).arg("--out").arg(&out_path).output() {
        Err(e) => failures.push(broken("solve", format!("cannot run: {e}"))),
        Ok(out) if out.status.success() => {
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let reported = json["solve_report"]["backward_error"].as_f64().unwrap_or(f64::NAN);
            let iterations = json["solve_report"]["iterations"].as_u64().unwrap_or(0) as usize;
            match netgraph::read_npy_vector(&out_path) {
                Ok(x) => {
                    let (_, f) = judge_answer(&inp.ctx, &x, inp.g, inp.dense_g, reported, iterations, "gradient");
                    failures.extend(f.into_iter().map(|f| binary_failure("solve", f)));
                }
                Err(e) => failures.push(broken("solve", format!("exit 0 but no solution: {e}"))),
            }
            if !reported.is_finite() {
                failures.push(broken("solve", "exit 0 without a backward error in the JSON".into()));
            }
        }
        Ok(out) => {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            // Both documented refusals say "singular" (Singular: "is
            // singular", IllConditioned: "is numerically singular").
            let kind = if msg.contains("singular") { RefusalKind::IllConditioned } else { RefusalKind::Other };
            let f = judge_refusal(&inp.ctx, kind, &msg, inp.dense_g, "gradient");
            failures.extend(f.into_iter().map(|f| binary_failure("solve", f)));
            if out.status.code() != Some(2) {
                failures.push(broken("solve", format!("refused with status {} (documented: 2)", out.status)));
            }
        }
    }

    // inertia of H - shift I with shift = -eps.
    match model("inertia").arg(format!("--shift={:e}", -eps)).output() {
        Err(e) => failures.push(broken("inertia", format!("cannot run: {e}"))),
        // Exit 0 is a certified inertia; exit 3 an uncertain one printed
        // with a warning. Both are judged by the library's rules.
        Ok(out) if out.status.success() || out.status.code() == Some(3) => {
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let n = |k: &str| json[k].as_u64().map(|v| v as usize);
            match (n("above"), n("below"), n("at"), n("uncertain")) {
                (Some(positive), Some(negative), Some(zero), Some(uncertain)) => {
                    let warned = String::from_utf8_lossy(&out.stderr).starts_with("warning: ");
                    if out.status.success() != (uncertain == 0) || (uncertain > 0 && !warned) {
                        failures.push(broken(
                            "inertia",
                            format!("exit status {} does not match uncertain = {uncertain}", out.status),
                        ));
                    }
                    let i = LibInertia { positive, negative, zero, uncertain, impossible: None };
                    let (_, f) = judge_inertia(&inp.ctx, i, "inertia");
                    failures.extend(f.into_iter().map(|f| binary_failure("inertia", f)));
                }
                _ => failures.push(broken("inertia", format!("an answer without counts: {json}"))),
            }
        }
        Ok(out) => failures.push(broken(
            "inertia",
            format!("failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        )),
    }

    // logdet.
    match model("logdet").arg(format!("--eps={eps:e}")).output() {
        Err(e) => failures.push(broken("logdet", format!("cannot run: {e}"))),
        Ok(out) if out.status.success() => {
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            // JSON has no infinities: serde writes -inf as null.
            let ld = json["log_abs_det"].as_f64().unwrap_or(f64::NEG_INFINITY);
            match json["sign"].as_f64() {
                Some(sign) => {
                    let (_, f) = judge_log_det(&inp.ctx, ld, sign, inp.lu_log_det, "log-det");
                    failures.extend(f.into_iter().map(|f| binary_failure("logdet", f)));
                }
                None => failures.push(broken("logdet", format!("exit 0 without a sign: {json}"))),
            }
        }
        Ok(out) => {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            // A refusal of log|det| is only right where the spectrum cannot
            // decide it.
            if inp.ctx.s.ambiguous == 0 {
                failures.push(broken("logdet", format!("refused at cond {:.2e}: {msg}", inp.ctx.s.cond)));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    failures
}

fn write_model(dir: &Path, inp: &CaseInputs<'_>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    netgraph::save_spec(inp.net, dir.join("net.json")).map_err(|e| e.to_string())?;
    netgraph::save_weights(inp.net, inp.params, dir.join("net.safetensors"), netgraph::Dtype::F64)
        .map_err(|e| e.to_string())?;
    netgraph::save_batch(inp.batch, dir.join("x.npy"), dir.join("y.npy")).map_err(|e| e.to_string())
}
