//! The library with the system allocator against the `hinv` binary (which
//! links mimalloc): the phases of `hinv solve`, each run in a fresh process,
//! so that the only difference is the allocator.
//!
//! For every configuration the model files are written once, then
//! `target/release/hinv solve --json` and this example itself (re-executed
//! with `--once`, doing the same work through the library) each run `RUNS`
//! times, alternating; the medians of every phase, their ratio (library /
//! binary) and the ratio of the fastest runs (steadier on a loaded
//! machine) are printed. A third side runs the library again with the
//! system allocator told to back its heap with transparent huge pages
//! ([`HUGE_PAGES`] in `GLIBC_TUNABLES`, set on that process only; the other
//! two run with `GLIBC_TUNABLES` removed), in two more columns. A last
//! column gives the in-process median of the library when the work is
//! repeated in one process (allocator warm).
//!
//! `cargo build --release -p hinv --bin hinv --example allocator &&
//! target/release/examples/allocator [label filter]`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use hinv::{Curvature, FactorOptions, SolveOptions};
use netgraph::{Activation, Batch, Network};

/// Fresh-process runs per side and configuration.
const RUNS: usize = 11;
const EPS: f64 = 1e-3;
/// glibc's settings that give its heap what mimalloc gives the binary:
/// 2 MiB pages. mimalloc reserves a 1 GiB arena advised
/// `MADV_HUGEPAGE`, so the binary's first touches of fresh memory fault
/// in 2 MiB at a time; the system allocator grows its heaps a few pages
/// at a time (rayon's threads' arenas by `mprotect`, page by page), which
/// transparent huge pages in the kernel's `madvise` mode never back.
/// `hugetlb=1` advises the heaps, and `top_pad` makes each growth 64 MiB
/// so that whole 2 MiB ranges can be backed.
const HUGE_PAGES: &str = "glibc.malloc.hugetlb=1:glibc.malloc.top_pad=67108864";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// `(derivatives, factor, solve)` seconds of one run through the library.
fn library_run(dir: &Path) -> Result<[f64; 3], Box<dyn std::error::Error>> {
    let net = netgraph::load_spec(dir.join("net.json"))?;
    let params = netgraph::load_weights(&net, dir.join("net.safetensors"))?;
    let batch = netgraph::load_batch(&net, dir.join("inputs.npy"), dir.join("targets.npy"))?;
    let t = Instant::now();
    let curv = Curvature::new(&net, &params, &batch)?;
    let derivs = t.elapsed().as_secs_f64();
    let g = curv.gradient().to_vec();
    let t = Instant::now();
    let f = curv.factor_route(EPS, &FactorOptions::default(), None)?;
    let factor = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _ = f.solve_with(faer::MatRef::from_column_major_slice(&g, g.len(), 1), &SolveOptions::default())?;
    let solve = t.elapsed().as_secs_f64();
    Ok([derivs, factor, solve])
}

fn write_model(dir: &Path, depth: usize, width: usize, batch: usize, input: usize, classes: usize, bias: bool) {
    let b = Network::builder(input);
    let b = if bias { b } else { b.without_bias() };
    let net = b.dense(width, Activation::Tanh).repeat(depth).cross_entropy(classes).expect("network");
    let params = net.init_params(20240601);
    let data = Batch::random_classification(input, classes, batch, 20240602);
    std::fs::create_dir_all(dir).expect("model directory");
    netgraph::save_spec(&net, dir.join("net.json")).expect("spec");
    netgraph::save_weights(&net, &params, dir.join("net.safetensors"), netgraph::Dtype::F64).expect("weights");
    netgraph::save_batch(&data, dir.join("inputs.npy"), dir.join("targets.npy")).expect("batch");
}

fn phases_of(out: &std::process::Output, what: &str) -> [f64; 3] {
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let t = &v["timings_s"];
    ["derivatives", "factor", "solve"].map(|k| t[k].as_f64().expect("a timing"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--once") {
        let [d, f, s] = library_run(Path::new(&args[2]))?;
        println!("{}", serde_json::json!({"timings_s": {"derivatives": d, "factor": f, "solve": s}}));
        return Ok(());
    }
    let me = std::env::current_exe()?;
    let exe = me.parent().and_then(Path::parent).map(|p| p.join("hinv")).expect("target/release");
    assert!(exe.exists(), "build the binary first: cargo build --release -p hinv --bin hinv");
    // (label, depth, width, batch, input, classes, bias)
    let configs = [
        ("demo L30 h10 B2", 30, 10, 2, 5, 3, false),
        ("L256 h8 B2", 256, 8, 2, 5, 3, false),
        ("L16 h32 B2", 16, 32, 2, 8, 4, true),
        ("L16 h8 B16", 16, 8, 16, 5, 3, false),
    ];
    let only = args.get(1).cloned().unwrap_or_default();
    println!(
        "| network | phase | binary (mimalloc) | library (system) | library / binary | same, fastest runs \
         | library (system, huge pages) | huge pages / binary | library, warm process |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|");
    for (label, depth, width, batch, input, classes, bias) in configs {
        if !label.contains(&only) {
            continue;
        }
        let dir: PathBuf = std::env::temp_dir().join(format!("hinv-allocator-{}", label.replace(' ', "_")));
        write_model(&dir, depth, width, batch, input, classes, bias);
        let file = |n: &str| dir.join(n).display().to_string();
        let (mut bin, mut lib, mut huge) = (Vec::new(), Vec::new(), Vec::new());
        // One untimed run of each warms the page cache; then they alternate
        // so that machine load hits all three alike.
        for i in 0..=RUNS {
            let out = Command::new(&exe)
                .env_remove("GLIBC_TUNABLES")
                .args(["solve", "--spec", &file("net.json"), "--weights", &file("net.safetensors")])
                .args(["--inputs", &file("inputs.npy"), "--targets", &file("targets.npy"), "--eps", "1e-3", "--json"])
                .output()?;
            let b = phases_of(&out, "hinv solve");
            let out = Command::new(&me).env_remove("GLIBC_TUNABLES").arg("--once").arg(&dir).output()?;
            let l = phases_of(&out, "allocator --once");
            let out = Command::new(&me).arg("--once").arg(&dir).env("GLIBC_TUNABLES", HUGE_PAGES).output()?;
            let h = phases_of(&out, "allocator --once (huge pages)");
            if i > 0 {
                bin.push(b);
                lib.push(l);
                huge.push(h);
            }
        }
        let warm: Vec<[f64; 3]> = (0..RUNS).map(|_| library_run(&dir)).collect::<Result<_, _>>()?;
        let phase = |v: &[[f64; 3]], k: usize| -> Vec<f64> {
            v.iter().map(|r| if k < 3 { r[k] } else { r.iter().sum() }).collect()
        };
        for (k, name) in ["derivatives", "factor", "solve", "all three"].iter().enumerate() {
            let (b, l, h, w) = (phase(&bin, k), phase(&lib, k), phase(&huge, k), phase(&warm, k));
            let (bm, lm, hm) = (median(b.clone()), median(l.clone()), median(h));
            println!(
                "| {label} | {name} | {:.2} ms | {:.2} ms | {:.2}x | {:.2}x | {:.2} ms | {:.2}x | {:.2} ms |",
                bm * 1e3,
                lm * 1e3,
                lm / bm,
                min(&l) / min(&b),
                hm * 1e3,
                hm / bm,
                median(w) * 1e3
            );
        }
    }
    Ok(())
}
