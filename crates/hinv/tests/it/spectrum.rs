//! Spectrum tools and the trust-region step against the dense route: the
//! dense Hessian from exact HVPs (`hinv::reference`), faer's symmetric
//! eigensolver, and a secular-equation trust-region solver in the
//! eigenbasis written here.

use crate::common;

use common::{mat_vec, norm, test_vector};
use faer::{Mat, Side};
use hinv::reference::{self, DenseLimit};
use hinv::{Curvature, SpectrumOptions, StepKind, TrustRegionOptions};
use netgraph::{Activation, Batch, Network};

/// Tanh network at gain 2: an indefinite Hessian.
fn tanh_curv() -> Curvature {
    let net = Network::builder(3).without_bias().dense(4, Activation::Tanh).repeat(3).cross_entropy(3).unwrap();
    let mut params = net.init_params(5);
    params.scale(2.0);
    Curvature::new(&net, &params, &Batch::random_classification(3, 3, 4, 9)).unwrap()
}

/// ReLU network: dead units make the Hessian singular.
fn relu_curv() -> Curvature {
    let net = Network::builder(3).dense(5, Activation::Relu).repeat(2).cross_entropy(3).unwrap();
    let mut params = net.init_params(2);
    params.scale(1.5);
    Curvature::new(&net, &params, &Batch::random_classification(3, 3, 3, 4)).unwrap()
}

/// Residual chain (GELU, biases): singular and indefinite.
fn residual_curv() -> Curvature {
    let net = common::network(3, 4, 5, Activation::Gelu, true, true, false);
    let params = common::params(&net, 1.5, 3);
    Curvature::new(&net, &params, &common::batch_for(&net, 3, 3, false, 6)).unwrap()
}

/// Linear least squares (no hidden layer, MSE, more samples than inputs):
/// a positive definite Hessian.
fn pd_curv() -> Curvature {
    let net = Network::builder(4).mse(2).unwrap();
    let params = net.init_params(1);
    Curvature::new(&net, &params, &Batch::random_regression(4, 2, 9, 3)).unwrap()
}

struct Dense {
    h: Mat<f64>,
    values: Vec<f64>,
    vectors: Mat<f64>,
}

fn dense(curv: &Curvature) -> Dense {
    let h = reference::hessian(curv, DenseLimit { bytes: 1 << 30 }).unwrap();
    let e = h.self_adjoint_eigen(Side::Lower).unwrap();
    let n = h.nrows();
    let values = (0..n).map(|i| e.S().column_vector()[i]).collect();
    let vectors = e.U().to_owned();
    Dense { h, values, vectors }
}

fn hnorm(d: &Dense) -> f64 {
    d.values.iter().fold(0.0f64, |m, l| m.max(l.abs()))
}

#[test]
fn extreme_eigenvalues_match_the_dense_eigensolver() {
    for curv in [tanh_curv(), relu_curv(), residual_curv(), pd_curv()] {
        let d = dense(&curv);
        let (lmin, lmax) = (d.values[0], *d.values.last().unwrap());
        let scale = hnorm(&d);
        for accelerate in [true, false] {
            let opts = SpectrumOptions { accelerate, ..SpectrumOptions::default() };
            for (r, exact) in [(curv.lambda_min(&opts).unwrap(), lmin), (curv.lambda_max(&opts).unwrap(), lmax)] {
                // The bracket is certified by counts; the dense eigenvalue
                // carries a backward error of a few eps_mach ||H||.
                let slack = 1e-13 * scale;
                assert!(r.converged, "{r:?}");
                assert!(r.lower - slack <= exact && exact <= r.upper + slack, "{exact} not in {r:?}");
                let tol = (1e-10 * exact.abs()).max(1e-12 * scale);
                assert!((r.value - exact).abs() <= 2.0 * tol + slack, "{} vs {exact}", r.value);
                let budget = if accelerate { 10 } else { 40 };
                assert!(r.factorizations <= budget, "{} factorizations: {r:?}", r.factorizations);
                let mult = d.values.iter().filter(|&&l| l >= r.lower && l <= r.upper).count();
                assert_eq!(r.multiplicity, mult);
            }
        }
    }
}

#[test]
fn counts_and_histograms_match_the_dense_spectrum() {
    for curv in [tanh_curv(), relu_curv(), residual_curv()] {
        let d = dense(&curv);
        let scale = hnorm(&d);
        let n = d.values.len();
        // Edges at least 1e-9 ||H|| from any eigenvalue, so that the dense
        // eigensolver's own error cannot flip a count.
        let far = |t: f64| d.values.iter().all(|l| (l - t).abs() > 1e-9 * scale);
        let h = curv.histogram_bins(16, &SpectrumOptions::default()).unwrap();
        assert_eq!(h.factorizations, 17);
        assert!(h.certified);
        assert_eq!(h.total(), n);
        for (i, w) in h.edges.windows(2).enumerate() {
            if far(w[0]) && far(w[1]) {
                let exact = d.values.iter().filter(|&&l| l >= w[0] && l < w[1]).count();
                assert_eq!(h.counts[i], exact, "bin {i} [{}, {})", w[0], w[1]);
            }
        }
        // Zero eigenvalues: a bin around zero, and counts on both sides.
        let edges = [-scale, -1e-8 * scale, 1e-8 * scale, scale * 1.5];
        let h = curv.histogram(&edges, &SpectrumOptions::default()).unwrap();
        let exact: Vec<usize> =
            edges.windows(2).map(|w| d.values.iter().filter(|&&l| l >= w[0] && l < w[1]).count()).collect();
        if h.certified {
            assert_eq!(h.counts, exact);
        }
        let c = curv.count_in(-0.5 * scale, 0.25 * scale).unwrap();
        if c.uncertain == 0 {
            assert_eq!(c.count, d.values.iter().filter(|&&l| l >= -0.5 * scale && l < 0.25 * scale).count());
        }
    }
}

#[test]
fn eigenpairs_near_a_shift_match_the_dense_eigensolver() {
    for curv in [tanh_curv(), residual_curv()] {
        let d = dense(&curv);
        let scale = hnorm(&d);
        for (sigma, k) in [(0.3 * d.values[0], 3), (0.5 * scale, 2), (0.0123 * scale, 4)] {
            let r = curv.eigenpairs_near(sigma, k, &SpectrumOptions::default()).unwrap();
            assert!(r.verified, "{r:?}");
            let mut by_distance = d.values.clone();
            by_distance.sort_by(|a, b| (a - sigma).abs().total_cmp(&(b - sigma).abs()));
            let mut got = r.values.clone();
            got.sort_by(f64::total_cmp);
            let mut want = by_distance[..k].to_vec();
            want.sort_by(f64::total_cmp);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-9 * scale, "{got:?} vs {want:?}");
            }
            for (v, l) in r.vectors.iter().zip(&r.values) {
                let hv = mat_vec(&d.h, v);
                let res: f64 = hv.iter().zip(v).map(|(a, b)| (a - l * b).powi(2)).sum::<f64>().sqrt();
                assert!(res <= 1e-9 * scale, "residual {res}");
            }
        }
    }
}

/// The trust-region solution in the eigenbasis: `p = -sum_i g_i / (l_i +
/// lambda) q_i` with `lambda` from bisection on the secular equation (to
/// rounding), or the hard case completed along `q_1`. Returns `(lambda, p,
/// hard)`.
fn dense_trust_region(d: &Dense, g: &[f64], delta: f64) -> (f64, Vec<f64>, bool) {
    let n = g.len();
    let gam: Vec<f64> = (0..n).map(|i| (0..n).map(|r| d.vectors[(r, i)] * g[r]).sum()).collect();
    let l1 = d.values[0];
    let gnorm = norm(g);
    let scale = hnorm(d);
    let step = |lam: f64, skip: &dyn Fn(usize) -> bool| -> Vec<f64> {
        let mut p = vec![0.0; n];
        for i in 0..n {
            if skip(i) {
                continue;
            }
            let c = -gam[i] / (d.values[i] + lam);
            for (r, pr) in p.iter_mut().enumerate() {
                *pr += c * d.vectors[(r, i)];
            }
        }
        p
    };
    if l1 > 0.0 {
        let p = step(0.0, &|_| false);
        if norm(&p) <= delta {
            return (0.0, p, false);
        }
    }
    let floor = (-l1).max(0.0);
    let cluster = |i: usize| (d.values[i] - l1).abs() <= 1e-10 * scale;
    let hard_g = (0..n).filter(|&i| cluster(i)).all(|i| gam[i].abs() <= 1e-13 * gnorm);
    if hard_g && l1 < 0.0 {
        let p = step(floor, &cluster);
        if norm(&p) < delta {
            let tau = (delta * delta - norm(&p).powi(2)).sqrt();
            let mut p = p;
            for (r, pr) in p.iter_mut().enumerate() {
                *pr += tau * d.vectors[(r, 0)];
            }
            return (floor, p, true);
        }
    }
    let (mut lo, mut hi) = (floor, floor + gnorm / delta + 1.0);
    for _ in 0..300 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if norm(&step(mid, &|_| false)) > delta {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let lam = 0.5 * (lo + hi);
    (lam, step(lam, &|_| false), false)
}

fn model(d: &Dense, g: &[f64], p: &[f64]) -> f64 {
    let hp = mat_vec(&d.h, p);
    g.iter().zip(p).map(|(a, b)| a * b).sum::<f64>() + 0.5 * p.iter().zip(&hp).map(|(a, b)| a * b).sum::<f64>()
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let diff: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    norm(&diff) / norm(b)
}

/// Checks one trust-region problem against the dense solver.
fn check_step(curv: &Curvature, d: &Dense, g: &[f64], delta: f64, expect: StepKind) {
    let s = curv.trust_region_step_for(g, delta, &TrustRegionOptions::default()).unwrap();
    let (lam, p, hard) = dense_trust_region(d, g, delta);
    assert_eq!(s.kind, expect, "{s:?}");
    assert_eq!(hard, expect == StepKind::HardCase);
    assert!(s.converged, "{s:?}");
    assert!(s.factorizations <= 12, "{} factorizations: {:?} {:?} lam {lam}", s.factorizations, s.kind, s.lambda);
    assert!(s.model_decrease >= s.cauchy_decrease * (1.0 - 1e-12), "{s:?}");
    // cond(H + lambda* I) is at most ~1e6 on these networks (restricted
    // to lambda_min's complement in the hard case), so 1e-8 leaves a
    // margin of 100 over the forward error of either solver.
    let scale = hnorm(d);
    assert!((s.lambda - lam).abs() <= 1e-8 * lam.abs().max(1e-3 * scale), "lambda {} vs {lam}", s.lambda);
    let m_dense = model(d, g, &p);
    let m_ours = model(d, g, &s.p);
    assert!((m_ours - m_dense).abs() <= 1e-8 * m_dense.abs(), "model {m_ours} vs {m_dense}");
    if expect == StepKind::HardCase {
        // Both signs along the eigenvector are optimal: compare the
        // component off it and the norms.
        let v: Vec<f64> = (0..g.len()).map(|r| d.vectors[(r, 0)]).collect();
        let off = |x: &[f64]| {
            let c: f64 = x.iter().zip(&v).map(|(a, b)| a * b).sum();
            x.iter().zip(&v).map(|(a, b)| a - c * b).collect::<Vec<f64>>()
        };
        assert!(rel(&off(&s.p), &off(&p)) <= 1e-8, "{}", rel(&off(&s.p), &off(&p)));
        assert!((norm(&s.p) - delta).abs() <= 1e-10 * delta);
    } else {
        assert!(rel(&s.p, &p) <= 1e-8, "step error {}", rel(&s.p, &p));
    }
}

#[test]
fn trust_region_matches_the_dense_secular_solver() {
    // Indefinite: the step is always on the boundary.
    let curv = tanh_curv();
    let d = dense(&curv);
    assert!(d.values[0] < 0.0);
    let g = curv.gradient().to_vec();
    for delta in [1e-3, 0.1, 10.0] {
        check_step(&curv, &d, &g, delta, StepKind::Boundary);
    }
    // Positive definite: interior for a large radius, boundary for a small one.
    let curv = pd_curv();
    let d = dense(&curv);
    assert!(d.values[0] > 0.0);
    let g = curv.gradient().to_vec();
    check_step(&curv, &d, &g, 1e6, StepKind::Interior);
    check_step(&curv, &d, &g, 1e-2 * norm(&g), StepKind::Boundary);
    // Singular Hessians (ReLU dead units, residual chain).
    for curv in [relu_curv(), residual_curv()] {
        let d = dense(&curv);
        let g = test_vector(curv.num_params(), 4);
        check_step(&curv, &d, &g, 0.5, StepKind::Boundary);
    }
}

#[test]
fn trust_region_hard_case_is_exact() {
    for curv in [tanh_curv(), residual_curv()] {
        let d = dense(&curv);
        let n = curv.num_params();
        assert!(d.values[0] < 0.0 && d.values[1] - d.values[0] > 1e-6 * hnorm(&d));
        // g orthogonal to the lambda_min eigenvector, and a radius beyond
        // ||p_perp(-lambda_min)||: the hard case.
        let mut g = test_vector(n, 11);
        let c: f64 = (0..n).map(|r| d.vectors[(r, 0)] * g[r]).sum();
        for (r, gr) in g.iter_mut().enumerate() {
            *gr -= c * d.vectors[(r, 0)];
        }
        let gam: Vec<f64> = (0..n).map(|i| (0..n).map(|r| d.vectors[(r, i)] * g[r]).sum()).collect();
        let perp: f64 = (1..n).map(|i| (gam[i] / (d.values[i] - d.values[0])).powi(2)).sum::<f64>().sqrt();
        check_step(&curv, &d, &g, 2.0 * perp, StepKind::HardCase);
        // The same g with a radius inside ||p_perp||: an ordinary boundary step.
        check_step(&curv, &d, &g, 0.5 * perp, StepKind::Boundary);
    }
}

#[test]
fn bad_arguments_are_errors() {
    let curv = tanh_curv();
    let o = SpectrumOptions::default();
    assert!(curv.count_in(1.0, 0.0).is_err());
    assert!(curv.count_in(f64::NAN, 0.0).is_err());
    assert!(curv.histogram(&[0.0, 0.0], &o).is_err());
    assert!(curv.histogram(&[1.0], &o).is_err());
    assert!(curv.eigenpairs_near(0.0, 0, &o).is_err());
    assert!(curv.trust_region_step(-1.0, &TrustRegionOptions::default()).is_err());
    assert!(curv.trust_region_step_for(&[1.0], 1.0, &TrustRegionOptions::default()).is_err());
    let bad = SpectrumOptions { rel_tol: f64::NAN, ..o };
    assert!(curv.lambda_min(&bad).is_err());
}
