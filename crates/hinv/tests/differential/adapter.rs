//! Every call the differential harness makes into the `hinv` library, in
//! one place: the API is changing, and porting the harness means editing
//! this file only. Lines marked `// API:` are where the target API differs
//! from today's.

use faer::{Mat, MatRef};
use hinv::{Curvature, FactorOptions, Factorization, HinvError};
use netgraph::{Batch, Network, Params};

/// Why the library declined to answer, reduced to what the checks need.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The kind of error.
    pub kind: RefusalKind,
    /// The library's message, for the report.
    pub message: String,
}

/// The kinds of refusal the checks tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// `HinvError::Singular`: an exactly zero pivot.
    Singular,
    /// `HinvError::IllConditioned`: refinement could not reach a trusted
    /// backward error.
    IllConditioned,
    /// Anything else (overflow inside the sweeps, a factorization error):
    /// not a documented answer to a hard but finite system.
    Other,
}

impl RefusalKind {
    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            RefusalKind::Singular => "Singular",
            RefusalKind::IllConditioned => "IllConditioned",
            RefusalKind::Other => "other",
        }
    }
}

fn refusal(e: HinvError) -> Refusal {
    let kind = match e {
        HinvError::Singular { .. } => RefusalKind::Singular,
        HinvError::IllConditioned { .. } => RefusalKind::IllConditioned,
        _ => RefusalKind::Other,
    };
    Refusal { kind, message: e.to_string() }
}

/// The curvature of a network at a point (forward, backward, blocks).
/// `Err` when the network overflows there (a case the generator skips).
pub fn curvature(net: &Network, params: &Params, batch: &Batch) -> Result<Curvature, String> {
    Curvature::new(net, params, batch).map_err(|e| e.to_string())
}

/// The gradient of the batch loss.
pub fn gradient(curv: &Curvature) -> Vec<f64> {
    curv.gradient().to_vec()
}

/// Number of parameters.
pub fn num_params(curv: &Curvature) -> usize {
    curv.num_params()
}

/// `H V` by the exact Hessian-vector product (Pearlmutter's sweeps over the
/// derivative blocks; it never touches the lifted system): the reference
/// route for the dense Hessian.
pub fn hvp_columns(curv: &Curvature, v: MatRef<'_, f64>) -> Mat<f64> {
    curv.hvp_many(v).expect("HVP of a finite network with the right shapes")
}

/// A solve's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The solution.
    pub x: Vec<f64>,
    /// The backward error the library reports for it.
    pub reported_backward_error: f64,
    /// Refinement steps the library took.
    pub iterations: usize,
}

/// `(H + eps I)^-1 b` for each right-hand side, with the default options
/// (what `hinv solve` does), one factorization for all of them.
pub fn hinv_solve(curv: &Curvature, eps: f64, rhs: &[&[f64]]) -> Vec<Result<Answer, Refusal>> {
    let f = match curv.factor(eps) {
        Ok(f) => f,
        Err(e) => {
            let r = refusal(e);
            return rhs.iter().map(|_| Err(r.clone())).collect();
        }
    };
    rhs.iter()
        .map(|b| {
            let b = MatRef::from_column_major_slice(b, b.len(), 1);
            f.solve_with(b, &hinv::SolveOptions::default()).map_err(refusal).map(|s| Answer {
                x: s.x.col(0).iter().copied().collect(),
                reported_backward_error: s.report.backward_error,
                iterations: s.report.refinements,
            })
        })
        .collect()
}

/// The inertia of `H + eps I` as the library reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibInertia {
    /// Positive eigenvalues.
    pub positive: usize,
    /// Negative eigenvalues.
    pub negative: usize,
    /// Zero eigenvalues.
    pub zero: usize,
    /// The exact counts differ from the reported ones by at most this
    /// much each; 0 means certified.
    pub uncertain: usize,
    /// When the counts of the lifted system itself are impossible, what
    /// they were (see `lifted_violation`); `None` when consistent or not
    /// known (the binary).
    pub impossible: Option<String>,
}

/// The lifted system's own inertia against Haynsworth's theorem: `K` is
/// `H + eps I` bordered by the `(y, z)` block `[[P^T E P, -M^T], [-M, 0]]`,
/// which is nonsingular with `n = sum_l a_l` positive and `n` negative
/// eigenvalues, so `K` has at least `n` of each. Fewer means the block
/// factorization miscounted, and `Factorization::inertia` hides it by
/// clamping (`saturating_sub`).
fn lifted_violation(f: &Factorization) -> Option<String> {
    // API: reads the block factorization's raw counts.
    let k = f.lifted_inertia();
    let n = (f.lifted_dim() - f.num_params()) / 2;
    (k.positive < n || k.negative < n).then(|| {
        format!(
            "the lifted system reports {} positive, {} negative, {} zero eigenvalues, but it has at least {n} of each sign",
            k.positive, k.negative, k.zero
        )
    })
}

/// Factor options of the inertia and log-determinant queries: the ones
/// `hinv inertia` and `hinv logdet` use (a singular `H + eps I` is
/// reported, not refused).
fn report_options() -> FactorOptions {
    FactorOptions { allow_singular: true, ..FactorOptions::default() }
}

/// The inertia of `H + eps I`.
pub fn hinv_inertia(curv: &Curvature, eps: f64) -> Result<LibInertia, Refusal> {
    let f = curv.factor_with(eps, &report_options()).map_err(refusal)?;
    let i = f.inertia();
    // Impossible lifted counts are fine when the library says it knows
    // nothing (every eigenvalue uncertain); a failure otherwise.
    let p = f.num_params();
    Ok(LibInertia {
        positive: i.positive,
        negative: i.negative,
        zero: i.zero,
        uncertain: i.uncertain,
        impossible: lifted_violation(&f).filter(|_| i.uncertain < p),
    })
}

/// `(log|det(H + eps I)|, sign)`.
pub fn hinv_logdet(curv: &Curvature, eps: f64) -> Result<(f64, f64), Refusal> {
    let f = curv.factor_with(eps, &report_options()).map_err(refusal)?;
    let d = f.log_det().map_err(refusal)?;
    Ok((d.log_abs, d.sign))
}

/// The number of eigenvalues of `H` below `t`, how uncertain it is, and
/// whether the lifted counts behind it are impossible (from a second
/// factorization of `H - t I`, the one `count_eigenvalues_below` makes).
pub fn hinv_count_below(curv: &Curvature, t: f64) -> Result<(usize, usize, Option<String>), Refusal> {
    let n = curv.count_eigenvalues_below(t).map_err(refusal)?;
    let f = curv.factor_with(-t, &report_options()).map_err(refusal)?;
    let p = f.num_params();
    Ok((n.count, n.uncertain, lifted_violation(&f).filter(|_| n.uncertain < p)))
}
