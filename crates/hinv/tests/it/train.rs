//! The training module: data, the optimizers on a convex problem with a
//! certified optimum, the Levenberg–Marquardt rule, the reaction to an
//! indefinite Hessian, and the CLI's CSV logs and report.

use std::process::Command;

use hinv::train::{
    data, train, trust_region::radius_update, Adam, DampedNewton, HessianFree, LmRule, Optimizer, Sgd, StepInput,
    TrainOptions, TrustRegion,
};
use hinv::Curvature;
use netgraph::{Activation, Batch, Network, Targets};

/// Multinomial logistic regression (no hidden layer) on a small random,
/// non-separable problem: 64 samples, 4 features, 3 classes, random labels.
fn logistic() -> (Network, data::Dataset) {
    let all = Batch::random_classification(4, 3, 96, 5);
    let idx: Vec<usize> = (0..96).collect();
    let train_b = data::subset(&all, &idx[..64]).unwrap();
    let test_b = data::subset(&all, &idx[64..]).unwrap();
    let net = Network::builder(4).cross_entropy(3).unwrap();
    let d = data::Dataset {
        name: "logistic".into(),
        train: train_b,
        test: test_b,
        input_dim: 4,
        outputs: 3,
        teacher: None,
    };
    (net, d)
}

fn full_batch(steps: usize) -> TrainOptions {
    TrainOptions {
        batch_size: 64,
        curvature_batch: 64,
        time_budget: None,
        max_steps: Some(steps),
        ..Default::default()
    }
}

/// The optimum of the convex logistic loss, certified by its gradient:
/// full-batch damped Newton until the gradient vanishes.
fn optimum(net: &Network, d: &data::Dataset) -> f64 {
    let mut newton = DampedNewton::new(1e-3).unwrap();
    let log = train(net, net.init_params(0), d, &mut newton, &full_batch(40), &mut |_| {}).unwrap();
    let (loss, g) = net.gradient(&log.params, &d.train).unwrap();
    let gnorm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
    // Convex: a vanishing gradient certifies the minimum (strong convexity
    // near it makes 1e-8 in the gradient ~1e-16 in the loss).
    assert!(gnorm < 1e-8, "Newton did not converge: |g| = {gnorm:e}");
    loss
}

#[test]
fn every_optimizer_decreases_the_convex_logistic_loss() {
    let (net, d) = logistic();
    let best = optimum(&net, &d);
    let start = net.loss(&net.init_params(0), &d.train).unwrap();
    assert!(start - best > 0.05, "the problem must leave room to improve: {start} vs {best}");
    let opts: Vec<(Box<dyn Optimizer>, f64)> = vec![
        // (optimizer, largest fraction of the initial gap left after 60 steps)
        (Box::new(Sgd::new(0.5, 0.9).unwrap()), 0.5),
        (Box::new(Adam::new(0.05).unwrap()), 0.5),
        // Second-order methods on a convex quadratic-like loss: near exact.
        (Box::new(DampedNewton::new(1.0).unwrap()), 1e-6),
        // No hidden layer: the logits are linear in the weights, so the
        // Gauss–Newton matrix is the Hessian and its steps are as exact.
        (Box::new(DampedNewton::new(1.0).unwrap().gauss_newton()), 1e-6),
        (Box::new(HessianFree::new(1.0, 30).unwrap()), 1e-4),
        // The softmax makes H singular (adding one vector to every row of
        // W changes nothing): lambda_min = 0 is a cluster the exact
        // subproblem cannot certify, and the optimizer falls back to the
        // Cauchy point (the strictly convex test below has exact steps).
        (Box::new(TrustRegion::new(1.0).unwrap()), 0.5),
    ];
    for (mut opt, frac) in opts {
        let log = train(&net, net.init_params(0), &d, opt.as_mut(), &full_batch(60), &mut |_| {}).unwrap();
        let end = log.last().unwrap().train_loss;
        assert!(end >= best - 1e-12, "{}: {end} below the certified optimum {best}", log.optimizer);
        assert!(
            (end - best) <= frac * (start - best),
            "{}: gap {} of {}; events {:?}; damping {:?}",
            log.optimizer,
            end - best,
            start - best,
            log.events,
            log.records.iter().map(|r| r.damping).collect::<Vec<_>>()
        );
    }
}

/// Linear least squares (no hidden layer, MSE), strictly convex: the
/// optimum solves the normal equations, and the exact steps find it.
#[test]
fn second_order_steps_solve_least_squares() {
    let all = Batch::random_regression(4, 2, 96, 8);
    let idx: Vec<usize> = (0..96).collect();
    let d = data::Dataset {
        name: "lsq".into(),
        train: data::subset(&all, &idx[..64]).unwrap(),
        test: data::subset(&all, &idx[64..]).unwrap(),
        input_dim: 4,
        outputs: 2,
        teacher: None,
    };
    let net = Network::builder(4).mse(2).unwrap();
    // The normal equations, dense: [X 1]^T [X 1] w = [X 1]^T y.
    let x = d.train.inputs();
    let xt = faer::Mat::from_fn(64, 5, |s, j| if j < 4 { x[(s, j)] } else { 1.0 });
    let Targets::Values(y) = d.train.targets() else { panic!("regression") };
    let gram = xt.transpose() * &xt;
    let rhs = xt.transpose() * y;
    let w = faer::linalg::solvers::Solve::solve(&gram.full_piv_lu(), &rhs);
    // Parameters: W row-major (outputs x inputs), then the bias.
    let mut flat = Vec::new();
    for k in 0..2 {
        flat.extend((0..4).map(|j| w[(j, k)]));
    }
    flat.extend((0..2).map(|k| w[(4, k)]));
    let best = net.loss(&netgraph::Params::from_vec(flat, &net).unwrap(), &d.train).unwrap();
    let start = net.loss(&net.init_params(0), &d.train).unwrap();
    let opts: Vec<Box<dyn Optimizer>> = vec![
        Box::new(TrustRegion::new(1.0).unwrap()),
        Box::new(DampedNewton::new(1.0).unwrap()),
        Box::new(DampedNewton::new(1.0).unwrap().gauss_newton()),
        Box::new(HessianFree::new(1.0, 30).unwrap()),
    ];
    for mut opt in opts {
        let log = train(&net, net.init_params(0), &d, opt.as_mut(), &full_batch(30), &mut |_| {}).unwrap();
        let end = log.last().unwrap().train_loss;
        // A quadratic: once the damping or radius has adapted the steps are
        // exact, and 30 of them reach the optimum to 1e-8 of the initial gap.
        assert!(end >= best - 1e-12, "{}: {end} below the optimum {best}", log.optimizer);
        assert!(end - best <= 1e-8 * (start - best), "{}: {end} vs {best}; {:?}", log.optimizer, log.events);
    }
}

#[test]
fn the_lm_rule_moves_the_damping_the_right_way() {
    let r = LmRule::NEWTON;
    assert!(r.update(1.0, -1.0) > 1.0, "a step that increased the loss must raise eps");
    assert!(r.update(1.0, f64::NEG_INFINITY) > 1.0, "no predicted decrease must raise eps");
    assert!(r.update(1.0, 0.1) > 1.0);
    assert_eq!(r.update(1.0, 0.5), 1.0, "a middling ratio keeps eps");
    assert!(r.update(1.0, 0.9) < 1.0, "a good ratio must lower eps");
    assert!(r.raise(1.0) > 1.0);
    assert_eq!(r.update(r.max, -1.0), r.max, "clamped above");
    assert_eq!(r.update(r.min, 1.0), r.min, "clamped below");
    let m = LmRule::MARTENS;
    assert!(m.update(2.0, 0.0) > 2.0 && m.update(2.0, 1.0) < 2.0);
}

#[test]
fn the_radius_follows_the_ratio_test() {
    assert!(radius_update(1.0, -1.0, 1.0, 100.0) < 1.0, "a rejected step shrinks the region");
    assert!(radius_update(1.0, 0.1, 0.5, 100.0) <= 0.125 + 1e-15, "to a quarter of the step");
    assert_eq!(radius_update(1.0, 0.5, 1.0, 100.0), 1.0);
    assert_eq!(radius_update(1.0, 0.9, 0.5, 100.0), 1.0, "an interior step leaves the radius");
    assert_eq!(radius_update(1.0, 0.9, 1.0, 100.0), 2.0, "a good boundary step doubles it");
    assert_eq!(radius_update(80.0, 0.9, 80.0, 100.0), 100.0, "up to the maximum");
}

#[test]
fn newton_raises_eps_on_an_indefinite_hessian_and_says_so() {
    // A tanh network scaled up has negative curvature at initialisation.
    let net = Network::builder(3).dense(4, Activation::Tanh).repeat(3).cross_entropy(2).unwrap();
    let mut params = net.init_params(3);
    params.scale(3.0);
    let batch = Batch::random_classification(3, 2, 8, 4);
    let eps = 1e-6;
    let curv = Curvature::new(&net, &params, &batch).unwrap();
    let below = curv.count_eigenvalues_below(-eps).unwrap();
    assert!(below.count > 0 && below.uncertain == 0, "the test needs an indefinite H: {below:?}");
    let mut newton = DampedNewton::new(eps).unwrap();
    let input = StepInput { net: &net, batch: &batch, curvature_batch: Some(&batch), deadline: None };
    let info = newton.step(&input, &mut params).unwrap();
    assert!(newton.eps() > eps, "eps must grow: {}", newton.eps());
    assert!(info.rejected >= 1);
    assert!(info.events.iter().any(|e| e.contains("negative eigenvalue")), "{:?}", info.events);
}

#[test]
fn a_count_newton_cannot_certify_is_logged_as_uncertain() {
    // Vanishing curvature (40 tanh layers of width 3 at PyTorch's
    // initialisation, ||H|| about 1e-10) with eps a millionth of ||H||:
    // no elimination certifies the count there (tests/it/elimination.rs,
    // `vanishing_layers_keep_the_dense_answer_at_any_scale`), and the step's
    // log must say so instead of passing the count off as exact.
    let net = Network::builder(4).without_bias().dense(3, Activation::Tanh).repeat(40).cross_entropy(3).unwrap();
    let mut params = net.init_params(71);
    let batch = Batch::random_classification(4, 3, 2, 72);
    let curv = Curvature::new(&net, &params, &batch).unwrap();
    let h = hinv::reference::hessian(&curv, hinv::reference::DenseLimit::default()).unwrap();
    let spec = hinv::reference::spectrum(h.as_ref()).unwrap();
    let norm = spec.eigenvalues.iter().fold(0.0f64, |m, l| m.max(l.abs()));
    let eps = 1e-6 * norm;
    let count = curv.factor(eps).unwrap().inertia();
    assert!(count.uncertain > 0, "the test needs an uncertain count: {count:?}");
    // Keep the indefinite factorization solved, so the step logs its count.
    let mut newton = DampedNewton::new(eps).unwrap().allow_indefinite();
    let input = StepInput { net: &net, batch: &batch, curvature_batch: Some(&batch), deadline: None };
    let info = newton.step(&input, &mut params).unwrap();
    // The first trial's count (the one the column reports) at this eps.
    let at = format!("of H + eps I at eps = {eps:.3e}, not certified");
    let event = info.events.iter().find(|e| e.contains(&at));
    let event = event.unwrap_or_else(|| panic!("no event for the uncertain count {count:?}: {:?}", info.events));
    let exact = spec.eigenvalues.iter().filter(|&&l| l < -eps).count();
    let range = event.rsplit(' ').next().unwrap();
    let (lo, hi) = range.split_once("..=").unwrap();
    let (lo, hi): (usize, usize) = (lo.parse().unwrap(), hi.parse().unwrap());
    assert!(lo <= exact && exact <= hi, "{event}: the dense count is {exact}");
}

#[test]
fn newton_damps_a_count_it_cannot_certify() {
    // A linear softmax model: H is positive semi-definite, singular along
    // the softmax's null space, so at eps = 1e-15 ||H|| those eigenvalues of
    // H + eps I sit within rounding of zero. The count reads no negative
    // eigenvalue but cannot certify it (checked here), and the default
    // (rejecting) Newton must not solve such a system as positive
    // definite: it raises eps and says why.
    let net = Network::builder(4).cross_entropy(3).unwrap();
    let mut params = net.init_params(71);
    let batch = Batch::random_classification(4, 3, 2, 72);
    let curv = Curvature::new(&net, &params, &batch).unwrap();
    let h = hinv::reference::hessian(&curv, hinv::reference::DenseLimit::default()).unwrap();
    let spec = hinv::reference::spectrum(h.as_ref()).unwrap();
    let eps = 1e-15 * spec.eigenvalues.iter().fold(0.0f64, |m, l| m.max(l.abs()));
    let count = curv.factor(eps).unwrap().inertia();
    assert!(count.negative == 0 && count.uncertain > 0, "the test needs an uncertain zero count: {count:?}");
    let mut newton = DampedNewton::new(eps).unwrap();
    let input = StepInput { net: &net, batch: &batch, curvature_batch: Some(&batch), deadline: None };
    let info = newton.step(&input, &mut params).unwrap();
    let at = format!("not certified positive definite at eps = {eps:.3e} (its negative eigenvalues number 0..=");
    let first = info.events.iter().find(|e| e.contains(&at));
    let first = first.unwrap_or_else(|| panic!("the uncertain first trial was solved: {:?}", info.events));
    assert!(first.contains("eps raised"), "{first}");
    assert!(info.rejected >= 1 && newton.eps() > eps, "{info:?}");
}

#[test]
fn digits_ship_with_a_fixed_stratified_split() {
    let d = data::digits().unwrap();
    assert_eq!((d.train.batch_size(), d.test.batch_size()), (1352, 445));
    let count = |b: &Batch| match b.targets() {
        Targets::Classes(c) => (0..10).map(|k| c.iter().filter(|&&y| y == k).count()).collect::<Vec<_>>(),
        Targets::Values(_) => panic!("digits are classes"),
    };
    // Class sizes of the file: 178 182 177 183 181 182 181 179 174 180.
    assert_eq!(count(&d.test), vec![44, 45, 44, 45, 45, 45, 45, 44, 43, 45]);
    let x = d.train.inputs();
    let (lo, hi) = (0..x.nrows())
        .flat_map(|i| (0..64).map(move |j| (i, j)))
        .fold((1.0f64, 0.0f64), |(lo, hi), (i, j)| (lo.min(x[(i, j)]), hi.max(x[(i, j)])));
    assert_eq!((lo, hi), (0.0, 1.0));
    // Deterministic: a second load is identical.
    assert_eq!(data::digits().unwrap().test, d.test);
}

#[test]
fn the_teacher_reaches_the_noise_floor() {
    let spec = data::TeacherSpec { depth: 3, width: 6, ..Default::default() };
    let d = data::teacher_student(&spec, 1).unwrap();
    let net = Network::builder(spec.input_dim).dense(6, Activation::Tanh).repeat(3).mse(1).unwrap();
    let teacher = d.teacher.clone().unwrap();
    let floor = spec.noise * spec.noise;
    let loss = net.loss(&teacher, &d.test).unwrap();
    // 512 noise samples: the mean of squares has relative sd sqrt(2/512) = 0.0625;
    // 0.35 is more than five of them.
    assert!((loss / floor - 1.0).abs() < 0.35, "teacher test loss {loss}, floor {floor}");
    // And a fresh student is far from it.
    assert!(net.loss(&net.init_params(9), &d.test).unwrap() > 5.0 * floor);
}

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("hinv-train-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn the_cli_writes_a_csv_log_and_a_comparison_report() {
    let dir = temp("cli");
    let out = Command::new(env!("CARGO_BIN_EXE_hinv"))
        .args(["train", "--compare", "sgd:lr=0.05", "adam", "newton", "gn", "hf:cg=5", "tr", "--dataset", "teacher"])
        .args(["--depth", "2", "--width", "4", "--steps", "3", "--batch-size", "16", "--curvature-batch", "8"])
        .args(["--seeds", "0,1", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for name in ["sgd(lr=0.05,momentum=0.9)", "adam(lr=0.001)", "newton(eps0=1)", "hf(lambda0=1,cg=5)", "Known optimum"]
    {
        assert!(report.contains(name), "{name} missing from\n{report}");
    }
    // The summary table of docs/training.md, one row per optimizer (a
    // regression: no accuracy column), both seeds in each.
    assert!(
        report.contains("| optimizer | steps | train loss | test loss | diverged | ms per step (gradient / curvature / solve) | neg. eigenvalues (max) | damping (last) |"),
        "{report}"
    );
    assert_eq!(report.lines().filter(|l| l.contains(" | 0/2 | ")).count(), 6, "{report}");
    for chart in ["train_loss_vs_time.svg", "test_loss_vs_steps.svg", "test_accuracy_vs_time.svg"] {
        let svg = std::fs::read_to_string(dir.join(chart)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
    let csv = std::fs::read_to_string(dir.join("teacher-newton_eps0_1-seed1.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("step,wall_s,train_loss,test_loss,test_accuracy"), "{}", lines[0]);
    // Steps 0..=3, each evaluated (the first steps always are).
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[4].starts_with("3,"));

    // A single run writes its CSV.
    let single = temp("single");
    let out = Command::new(env!("CARGO_BIN_EXE_hinv"))
        .args(["train", "--optimizer", "adam:lr=0.01", "--dataset", "digits", "--depth", "1", "--width", "8"])
        .args(["--steps", "2", "--out"])
        .arg(&single)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = std::fs::read_to_string(single.join("digits-adam_lr_0.01-seed0.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "header and steps 0, 1, 2: {csv}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&single);
}

#[test]
fn bad_optimizer_specs_are_refused_before_any_run() {
    let out = Command::new(env!("CARGO_BIN_EXE_hinv"))
        .args(["train", "--optimizer", "adam:momentum=0.9", "--steps", "1", "--out"])
        .arg(temp("bad"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`momentum` is not a setting of adam"), "{err}");
}
