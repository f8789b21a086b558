//! Reading the 1x1 and 2x2 pivots of a Bunch–Kaufman factorization:
//! inertia, log-determinant and sign, smallest pivot, zero pivots.
//!
//! `S = P^T L B L^T P` with `B` block diagonal, so by Sylvester `S` and `B`
//! share their inertia and `det S = det B` (`det P^2 = 1`, `L` unit lower).
//! Every quantity below therefore comes from the pivots alone.

use std::ops::{Add, AddAssign};

/// Numbers of positive, negative and zero eigenvalues, and how many of
/// them could not be placed with certainty.
///
/// The three counts always sum to the dimension. `uncertain` bounds their
/// error: each exact count differs from the reported one by at most
/// `uncertain` (0: the inertia is certified; see
/// [`crate::BlockLdlt::uncertain_pivots`] for what backs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct Inertia {
    /// Positive eigenvalues.
    pub positive: usize,
    /// Negative eigenvalues.
    pub negative: usize,
    /// Zero eigenvalues (exactly zero pivots).
    pub zero: usize,
    /// Eigenvalues whose side of zero is not certain.
    pub uncertain: usize,
}

impl Inertia {
    /// `positive + negative + zero`, the dimension.
    pub fn total(&self) -> usize {
        self.positive + self.negative + self.zero
    }

    /// True when every count is certain (`uncertain == 0`).
    pub fn is_certified(&self) -> bool {
        self.uncertain == 0
    }
}

impl Add for Inertia {
    type Output = Inertia;
    fn add(self, o: Inertia) -> Inertia {
        Inertia {
            positive: self.positive + o.positive,
            negative: self.negative + o.negative,
            zero: self.zero + o.zero,
            uncertain: self.uncertain + o.uncertain,
        }
    }
}

impl AddAssign for Inertia {
    fn add_assign(&mut self, o: Inertia) {
        *self = *self + o;
    }
}

/// What the factorization of one Schur complement `S_k` revealed.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockDiagnostics {
    /// Size `n_k` of the block.
    pub size: usize,
    /// Columns of this block that couple it to the next block in elimination
    /// order (top-down: the column support of `sub[k]`; bottom-up in the
    /// two-sided strategy: the row support of `sub[k - 1]`), `None` when that
    /// block is decoupled or this block ends the elimination.
    pub coupling: Option<std::ops::Range<usize>>,
    /// Smallest eigenvalue magnitude over the 1x1 and 2x2 pivots
    /// (`inf` for an empty block).
    pub min_pivot: f64,
    /// Largest eigenvalue magnitude over the pivots (0 for an empty block).
    pub max_pivot: f64,
    /// `max_pivot / min_pivot`: a cheap estimate of the condition number of
    /// `S_k` (exact for a diagonal block; not a bound in general, since the
    /// factor `L` has its own, bounded by pivoting, conditioning).
    pub cond_estimate: f64,
    /// Number of 2x2 pivots.
    pub two_by_two: usize,
    /// Inertia of `S_k`.
    pub inertia: Inertia,
    /// `log|det S_k|` (`-inf` when a pivot is zero).
    pub log_abs_det: f64,
    /// Sign of `det S_k` (0 when a pivot is zero).
    pub det_sign: f64,
    /// Absolute pivot threshold used for this block.
    pub threshold: f64,
    /// The eigenvalues of the 1x1 and 2x2 pivots, signed, in pivot order
    /// (before any zero pivot was replaced): by Sylvester they carry the
    /// inertia of `S_k`. Empty in [`crate::BlockDiagLdlt::diagnostics`],
    /// which keeps every block's pivots in one buffer
    /// ([`crate::BlockDiagLdlt::pivots`]).
    pub pivots: Vec<f64>,
    /// Largest entry of the terms summed into `S_k` before they cancel
    /// (`max(max|D_k|, max|C W C^T|)`): the scale of its rounding errors.
    pub scale: f64,
}

/// The first zero pivot met while scanning: `(pivot index, magnitude)`.
pub(crate) type ZeroPivot = Option<(usize, f64)>;

/// Scans the pivots (`d` the diagonal of `B`, `e` its sub-diagonal, non-zero
/// `e[i]` marking a 2x2 pivot at `(i, i + 1)`).
///
/// A pivot whose smallest eigenvalue magnitude is at most `threshold` counts
/// as zero. When `replace` is `Some(delta)` (continuing past zero pivots),
/// such eigenvalues are moved to `±delta` in place so that elimination can go
/// on: the change is a rank-one semidefinite update of `S_k`, which by
/// interlacing moves no other eigenvalue across zero, so the inertia counted
/// for the rest of the matrix stays that of the original.
///
/// The pivots' eigenvalues go to `pivots` (`n` of them), not into the
/// diagnostics: a caller factoring many blocks keeps them in one buffer.
pub(crate) fn scan(
    d: &mut [f64],
    e: &mut [f64],
    threshold: f64,
    replace: Option<f64>,
    pivots: &mut [f64],
) -> (BlockDiagnostics, ZeroPivot) {
    let n = d.len();
    let mut diag = BlockDiagnostics {
        size: n,
        coupling: None,
        min_pivot: f64::INFINITY,
        max_pivot: 0.0,
        cond_estimate: 1.0,
        two_by_two: 0,
        inertia: Inertia::default(),
        log_abs_det: 0.0,
        det_sign: 1.0,
        threshold,
        pivots: Vec::new(),
        scale: 0.0,
    };
    let mut first_zero = None;
    let mut i = 0;
    while i < n {
        if e[i] == 0.0 || i + 1 == n {
            let m = d[i].abs();
            pivots[i] = d[i];
            diag.min_pivot = diag.min_pivot.min(m);
            diag.max_pivot = diag.max_pivot.max(m);
            if m <= threshold || m.is_nan() {
                diag.inertia.zero += 1;
                first_zero = first_zero.or(Some((i, m)));
                if let Some(delta) = replace {
                    d[i] = if d[i] < 0.0 { -delta } else { delta };
                }
            } else {
                diag.log_abs_det += m.ln();
                if d[i] > 0.0 {
                    diag.inertia.positive += 1;
                } else {
                    diag.inertia.negative += 1;
                    diag.det_sign = -diag.det_sign;
                }
            }
            i += 1;
        } else {
            diag.two_by_two += 1;
            let (a, b, c) = (d[i], e[i], d[i + 1]);
            let p = Pivot2::new(a, b, c);
            (pivots[i], pivots[i + 1]) = (p.large, p.small);
            diag.min_pivot = diag.min_pivot.min(p.small.abs());
            diag.max_pivot = diag.max_pivot.max(p.large.abs());
            if p.small.abs() <= threshold || p.small.is_nan() {
                diag.inertia.zero += 1;
                first_zero = first_zero.or(Some((i, p.small.abs())));
                if p.large > 0.0 {
                    diag.inertia.positive += 1;
                } else {
                    diag.inertia.negative += 1;
                }
                if let Some(delta) = replace {
                    let target = if p.small < 0.0 { -delta } else { delta };
                    let (na, nb, nc) = p.with_small(target);
                    d[i] = na;
                    e[i] = nb;
                    d[i + 1] = nc;
                }
            } else {
                diag.log_abs_det += p.log_abs_det;
                if p.det < 0.0 {
                    // One eigenvalue of each sign (the usual Bunch–Kaufman case).
                    diag.inertia.positive += 1;
                    diag.inertia.negative += 1;
                    diag.det_sign = -diag.det_sign;
                } else if a + c > 0.0 {
                    diag.inertia.positive += 2;
                } else {
                    diag.inertia.negative += 2;
                }
            }
            i += 2;
        }
    }
    if diag.inertia.zero > 0 {
        diag.log_abs_det = f64::NEG_INFINITY;
        diag.det_sign = 0.0;
    }
    if n > 0 {
        diag.cond_estimate = diag.max_pivot / diag.min_pivot;
    } else {
        diag.min_pivot = f64::INFINITY;
    }
    (diag, first_zero)
}

/// Eigen-structure of a 2x2 pivot `[[a, b], [b, c]]`.
struct Pivot2 {
    a: f64,
    b: f64,
    c: f64,
    /// `ac - b^2`, its sign reliable.
    det: f64,
    /// `log|ac - b^2|`, without overflow.
    log_abs_det: f64,
    /// Eigenvalue of largest magnitude.
    large: f64,
    /// Eigenvalue of smallest magnitude (`det / large`, no cancellation).
    small: f64,
}

impl Pivot2 {
    fn new(a: f64, b: f64, c: f64) -> Pivot2 {
        // Scale by the largest entry so that b^2 cannot overflow or underflow,
        // and use an fma so that ac - b^2 is rounded once: when Bunch–Kaufman
        // picks a 2x2 pivot, |ac| < 0.41 b^2, so there is no cancellation
        // left to worry about.
        let s = a.abs().max(b.abs()).max(c.abs());
        let (sa, sb, sc) = (a / s, b / s, c / s);
        let det_s = sa.mul_add(sc, -(sb * sb));
        let log_abs_det = 2.0 * s.ln() + det_s.abs().ln();
        let det = det_s * s * s;
        let half = 0.5 * (a + c);
        let rad = (0.5 * (a - c)).hypot(b);
        let large = if half >= 0.0 { half + rad } else { half - rad };
        let small = if large == 0.0 { 0.0 } else { (det_s / large) * s * s };
        Pivot2 { a, b, c, det, log_abs_det, large, small }
    }

    /// The pivot with its small eigenvalue replaced by `target`:
    /// `B + (target - small) q q^T`, `q` the unit eigenvector of `small`.
    fn with_small(&self, target: f64) -> (f64, f64, f64) {
        let (a, b, c, l) = (self.a, self.b, self.c, self.small);
        // Two expressions of the same eigenvector; take the better scaled one.
        let (u1, v1) = (b, l - a);
        let (u2, v2) = (l - c, b);
        let (u, v) = if u1.hypot(v1) >= u2.hypot(v2) { (u1, v1) } else { (u2, v2) };
        let nrm = u.hypot(v);
        if nrm == 0.0 {
            return (a + target - l, b, c + target - l);
        }
        let (u, v) = (u / nrm, v / nrm);
        let t = target - l;
        (a + t * u * u, b + t * u * v, c + t * v * v)
    }
}
