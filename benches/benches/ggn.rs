//! The Gauss–Newton curvature's two exact routes, lifted block-tridiagonal
//! and Woodbury (explicit Jacobian), for one factorization and its
//! log-determinant (what one step of the evidence search costs), over
//! depth, width and batch (tanh, no bias, input 5, 3 classes, eps 1e-3).
//!
//! `cargo bench -p hinv-benches --bench ggn` prints, besides criterion's
//! report, a table of both routes' times (best of 3), the measured and the
//! predicted ratio and the route `Curvature::factor_route` picks; that
//! table is docs/benchmarks.md's "Gauss–Newton routes".

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, BenchmarkId, Criterion};
use hinv::{Curvature, CurvatureKind, CurvatureOptions, FactorOptions, Route};
use netgraph::{Activation, Batch, Network};

const EPS: f64 = 1e-3;
const GRID: [(usize, usize, usize); 10] = [
    (4, 10, 2),
    (4, 10, 32),
    (16, 10, 2),
    (16, 10, 8),
    (16, 10, 32),
    (30, 10, 32),
    (8, 32, 2),
    (8, 32, 8),
    (8, 32, 32),
    (4, 64, 4),
];

fn curvature(depth: usize, width: usize, batch: usize) -> Curvature {
    let net = Network::builder(5).without_bias().dense(width, Activation::Tanh).repeat(depth).cross_entropy(3).unwrap();
    let mut params = net.init_params(7);
    params.scale(2.0);
    let b = Batch::random_classification(5, 3, batch, 8);
    let opts = CurvatureOptions { kind: CurvatureKind::GaussNewton, ..Default::default() };
    Curvature::new_with(&net, &params, &b, &opts).unwrap()
}

/// One factorization and its determinant by `route`, from fresh blocks (the
/// Woodbury route's Jacobian is part of its cost).
fn run(c: &Curvature, route: Route) -> f64 {
    let f = c.factor_route(EPS, &FactorOptions::default(), Some(route)).unwrap();
    f.log_det().unwrap().log_abs
}

fn best_of(n: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ggn_route");
    g.sample_size(10);
    for (depth, width, batch) in GRID {
        let label = format!("L{depth}_h{width}_B{batch}");
        for route in [Route::Lifted, Route::Woodbury] {
            g.bench_with_input(BenchmarkId::new(format!("{route:?}"), &label), &route, |b, &route| {
                b.iter_batched(|| curvature(depth, width, batch), |c| run(&c, route), BatchSize::LargeInput)
            });
        }
    }
    g.finish();

    println!(
        "\n| depth | width | batch | p | lifted ms | woodbury ms | lifted/woodbury measured | predicted | auto picks |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (depth, width, batch) in GRID {
        let lifted = best_of(3, || run(&curvature(depth, width, batch), Route::Lifted));
        let wood = best_of(3, || run(&curvature(depth, width, batch), Route::Woodbury));
        let c = curvature(depth, width, batch);
        let costs = c.route_costs();
        println!(
            "| {depth} | {width} | {batch} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {:?} |",
            c.num_params(),
            lifted * 1e3,
            wood * 1e3,
            lifted / wood,
            costs.lifted / costs.woodbury.unwrap_or(f64::NAN),
            costs.cheaper()
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
