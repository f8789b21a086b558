//! The inertia of `H + eps I` from the block pivots, with its
//! certificate and the second opinions that back it: the parity of the
//! pivoted determinant, the interleaved elimination after a
//! parameters-first count that cannot stand alone, and the
//! parameters-first elimination after an uncertain interleaved count.

use tridiag::{BlockLdlt, Inertia};

use super::{check_memory, factor_params, Elimination, Engine, Factorization};
use crate::lifted::lifted_tridiag;
use crate::reduced::Reduced;

impl Factorization {
    /// The inertia of the lifted system itself, read off the block pivots
    /// (with their certificate): `H + eps I`'s plus `sum_l a_l` positive
    /// and negative eigenvalues (Haynsworth).
    pub fn lifted_inertia(&self) -> Inertia {
        match &self.engine {
            Engine::Interleaved(l) => l.inertia(),
            Engine::ParametersFirst(r) => r.lifted_inertia(),
        }
    }

    /// The margin a count is judged by. The parameters-first
    /// elimination's fill multiplies the errors that later blocks inherit,
    /// which the local certificate does not bound, so its margin is divided
    /// by the growth (differential test, case 1296 of seed 1: margin 9e3 at
    /// growth 1.3e4, count 48 certified, dense 49, an eigenvalue
    /// 1.4e-13 ||H|| from the shift; measured before `R`'s blocks were
    /// balanced, after which that count is uncertain).
    pub(super) fn judged_margin(&self) -> f64 {
        match &self.engine {
            Engine::Interleaved(_) => self.pivot_margin(),
            Engine::ParametersFirst(r) => self.pivot_margin() / r.growth().max(1.0),
        }
    }

    /// The inertia of `H + eps I`: how many eigenvalues are positive,
    /// negative (the eigenvalues of `H` below `-eps`) and exactly zero, and
    /// how many of them are [`Inertia::uncertain`].
    ///
    /// By Haynsworth's theorem the lifted system has `sum_l a_l` more
    /// positive and more negative eigenvalues than `H + eps I`, which are
    /// subtracted from the block pivots' counts. The certificate is the
    /// block LDLᵀ's ([`BlockLdlt::uncertain_pivots`]: a first-order error
    /// bound of every Schur complement against the pivots it signs), plus
    /// the parity of the negative count against the sign of the pivoted
    /// elimination's determinant whenever that has run (for a solve or the
    /// determinant) or a pivot clears its bound by less than a factor 1000
    /// (then this call runs it: one more factorization, of the whole
    /// lifted system, or, after a parameters-first elimination whose count
    /// cannot stand alone, the interleaved elimination as a second opinion
    /// first; neither where the lifted system's dense blocks would cost
    /// more than 1000 times those of the Schur complement `R` and more
    /// than 1e10 flops, wide layers, whose count is then uncertain by the
    /// pivots of `R` within the bound it is judged by, at least one:
    /// [`Elimination::Interleaved`] runs the whole check at that cost), and
    /// against the sign [`Factorization::log_det`]
    /// found through the parameters-first elimination when it has run.
    /// Where [`Elimination::Auto`] refused the parameters-first elimination
    /// and the interleaved count is uncertain, the parameters-first
    /// elimination runs anyway as a second opinion (judged as when it runs
    /// first) and answers if it certifies more: on vanishing curvature its
    /// growth, measured against the lifted system's `-I`, is far above the
    /// refusal's limit while the interleaved certificate cannot sign a
    /// single pivot (docs/numerics.md). A
    /// count the factorization cannot vouch for is never
    /// returned as certain: a lifted count that violates Haynsworth's
    /// theorem (a broken elimination) makes every eigenvalue uncertain.
    pub fn inertia(&self) -> Inertia {
        let margin = self.judged_margin();
        let k = self.lifted_inertia();
        if matches!(self.engine, Engine::Interleaved(_)) {
            let first = self.counts(k, margin);
            // Where the automatic choice refused the parameters-first
            // elimination (its growth, measured against the lifted
            // system's -I, is large wherever the curvature vanishes), its
            // count, judged by the same rule as when it runs first (margin
            // over growth, parity), may certify what this one cannot.
            if first.uncertain > 0 && self.opts.elimination == Elimination::Auto {
                if let Some(second) = self.parameters_first_counts() {
                    if second_opinion_answers(&first, &second) {
                        return second;
                    }
                }
            }
            return first;
        }
        // Where that leaves the count uncertain or unverified, the
        // interleaved elimination answers (one more factorization), with
        // its own certificate and parity check; the parameters-first count
        // (verified by the pivoted determinant's parity) only if that
        // certifies more.
        if (k.uncertain > 0 || margin < PARITY_MARGIN) && self.opts.elimination == Elimination::Auto {
            if let Some(ldlt) = self.interleaved_ldlt() {
                let second = self.counts(ldlt.inertia(), ldlt.pivot_margin());
                if second.uncertain == 0 {
                    return second;
                }
                let first = self.counts(k, margin);
                return if first.uncertain < second.uncertain { first } else { second };
            }
        }
        self.counts(k, margin)
    }

    /// [`Factorization::inertia`] without any further factorization: the
    /// counts of the elimination that ran, with its certificate; where the
    /// full answer would run a second elimination (the parity check of a
    /// nearly uncertain pivot, or the interleaved second opinion on a
    /// parameters-first count), the count is reported uncertain by one
    /// instead, and an uncertain interleaved count stays as uncertain as
    /// its certificate leaves it (no parameters-first second opinion). For
    /// callers that report the inertia next to a solve.
    pub fn inertia_from_pivots(&self) -> Inertia {
        let margin = self.judged_margin();
        if margin >= PARITY_MARGIN || self.known_lifted_det().is_some() {
            return self.counts(self.lifted_inertia(), margin);
        }
        let mut out = self.counts(self.lifted_inertia(), f64::INFINITY);
        out.uncertain = out.uncertain.max(1);
        out
    }

    /// The interleaved elimination next to a parameters-first one, on
    /// first need; `None` when it is the engine itself, or cannot run
    /// (memory limit, a breakdown).
    fn interleaved_ldlt(&self) -> Option<&BlockLdlt> {
        if !matches!(self.engine, Engine::ParametersFirst(_)) || !self.second_elimination_affordable() {
            return None;
        }
        self.interleaved
            .get_or_init(|| {
                check_memory(&self.derivs, self.opts.memory_limit, 2).ok()?;
                let k = lifted_tridiag(&self.derivs, self.eps).ok()?;
                BlockLdlt::factor(&k, &factor_params(&self.opts)).ok()
            })
            .as_ref()
    }

    /// The count of the parameters-first elimination run as a second
    /// opinion next to the interleaved one ([`Factorization::inertia`]),
    /// with its judged margin and the parity check below it; `None` where
    /// it cannot run (a singular unit block, a breakdown, the memory
    /// limit), where its growth reaches `1 / EPSILON` (a first-order error
    /// bound then says nothing), or where the parity check it needs
    /// cannot run. Only its lifted count and judged margin are kept, not
    /// its factors.
    fn parameters_first_counts(&self) -> Option<Inertia> {
        let &(k, margin) = self
            .parameters_first
            .get_or_init(|| {
                // (Within what a second factorization of the lifted system
                // may take: the parameters-first one needs less.)
                check_memory(&self.derivs, self.opts.memory_limit, 2).ok()?;
                let r = Reduced::factor(&self.derivs, self.eps, &factor_params(&self.opts), true).ok()?.ok()?;
                let growth = r.growth().max(1.0);
                (growth * f64::EPSILON < 1.0).then(|| (r.lifted_inertia(), r.pivot_margin() / growth))
            })
            .as_ref()?;
        if margin < PARITY_MARGIN && self.lifted_det().is_err() {
            return None;
        }
        Some(self.counts(k, margin))
    }

    /// Whether a count may run a second elimination of the whole lifted
    /// system (the interleaved second opinion, the pivoted parity check):
    /// always after the interleaved elimination (its blocks are that
    /// system's), and after the parameters-first one unless the lifted
    /// system's dense blocks would cost more than [`SECOND_OPINION_LIMIT`]
    /// times `R`'s and more than [`SECOND_OPINION_FLOOR`] flops (wide
    /// layers: at L16 h64 B2 the first `inertia` call took 30.6 s and
    /// 9.2 GB against a factorization of 51 ms).
    pub(super) fn second_elimination_affordable(&self) -> bool {
        !matches!(self.engine, Engine::ParametersFirst(_))
            || second_elimination_within_limits(&self.derivs.param_sizes, &self.derivs.act_sizes)
    }

    /// How many pivots a count without its second opinion may have signed
    /// wrongly: after the parameters-first elimination, those of `R` within
    /// the bound its count is judged by (their own bound times
    /// `PARITY_MARGIN` times the growth, [`Factorization::judged_margin`]);
    /// otherwise those within `PARITY_MARGIN` times their own bound.
    pub(super) fn unverified_pivots(&self) -> usize {
        let (ldlt, inflate) = match &self.engine {
            Engine::Interleaved(l) => (l, PARITY_MARGIN),
            Engine::ParametersFirst(r) => (r.schur(), PARITY_MARGIN * r.growth().max(1.0)),
        };
        // (A NaN pivot counts.)
        let within = |pivots: &[f64], bound: f64| {
            pivots
                .iter()
                .filter(|p| p.abs().partial_cmp(&(bound * inflate)) != Some(std::cmp::Ordering::Greater))
                .count()
        };
        ldlt.error_bounds().iter().zip(ldlt.diagnostics()).map(|(&e, d)| within(&d.pivots, e)).sum()
    }

    /// The inertia of `H + eps I` from the lifted system's counts `k`
    /// (Haynsworth), with the parity check of nearly uncertain pivots.
    /// `k` and `margin` may be a second elimination's: the parity check
    /// reads only elimination-independent signs (the pivoted determinant,
    /// and the parameters-first determinant, which is never computed next
    /// to an interleaved engine; from the rest of `R` kept behind a
    /// closed-form run, its sign is that rest's, pivoted, times the run's
    /// `(-1)^a`, which the count holds too: those blocks' counts are
    /// certain by their structure, and the check is independent for the
    /// rest), and [`Factorization::unverified_pivots`],
    /// which reads the engine's pivots, runs only where the pivoted
    /// elimination cannot, which [`Factorization::parameters_first_counts`]
    /// rules out first.
    fn counts(&self, k: Inertia, margin: f64) -> Inertia {
        let (a, p) = (self.lifted_extra, self.num_params());
        let counts = k.negative.checked_sub(a).zip(k.positive.checked_sub(a));
        let Some((negative, positive)) = counts else {
            let negative = k.negative.saturating_sub(a).min(p);
            let zero = k.zero.min(p - negative);
            return Inertia { positive: p - negative - zero, negative, zero, uncertain: p };
        };
        let mut out = Inertia { positive, negative, zero: k.zero, uncertain: k.uncertain.min(p) };
        // A pivot that clears its local bound by little may still carry
        // error inherited from earlier blocks: then the parity of the count
        // is checked against the pivoted elimination's determinant, an
        // independent and more stable elimination (differential test, case
        // 714 of seed 1: margin 8, count 153 certified, dense 154; the
        // pivoted determinant's sign gave the parity of 154).
        let det = if out.uncertain == 0 && margin < PARITY_MARGIN {
            // One already computed (a solve's fallback, a breakdown, a
            // `log_det` call) serves.
            let det = match self.known_lifted_det() {
                Some(d) => Some(d),
                None if self.second_elimination_affordable() => self.lifted_det().ok(),
                None => None,
            };
            if det.is_none() {
                // No second opinion (memory limit, or far costlier than
                // the factorization): the count stands unverified, and
                // says by how much.
                out.uncertain = self.unverified_pivots().max(1).min(p);
            }
            det
        } else {
            self.known_lifted_det()
        };
        // The determinant through the parameters-first elimination, when a
        // `log_det` call has computed it, is one more sign to agree with.
        let signs = [det.map(|d| self.det_from(d).sign), self.reduced_det.get().copied().flatten().map(|d| d.sign)];
        let parity = if out.zero > 0 {
            0.0
        } else if out.negative % 2 == 1 {
            -1.0
        } else {
            1.0
        };
        if signs.iter().flatten().any(|&det| det != parity) && out.uncertain == 0 {
            out.uncertain = 1;
        }
        out
    }
}

/// How many times the cost of `R`'s dense blocks (`sum_l (2 a_l)^3`) a
/// count's second elimination of the whole lifted system
/// (`sum_l (p_l + 2 a_l)^3`) may cost: beyond it, and beyond
/// [`SECOND_OPINION_FLOOR`], a count that would need one is reported
/// uncertain instead (by the pivots of `R` within the bound it is judged
/// by, at least one). The ratio is about `(1 + h / 2B)^3` for tanh
/// layers of width `h` at batch `B`: 118 at L16 h16 B2 (first `inertia`
/// call 14.6 ms against a factorization of 1.7 ms), 684 at h32 (248 ms
/// against 8.8 ms), 4607 at h64 (30.6 s and 9.2 GB against 51 ms);
/// `cargo run --release -p hinv --example phase_times -- 16 h 2 reps`
/// before this limit.
const SECOND_OPINION_LIMIT: f64 = 1000.0;

/// Below this many flops (`sum_l (p_l + 2 a_l)^3 / 3`, under a second on
/// two cores) a count's second elimination runs whatever its ratio to
/// `R`'s blocks: small networks keep their certified counts (with the
/// ratio alone, `cargo xtask differential --cases 3000 --seed 1`
/// certified 1642 counts instead of 1684).
/// L16 h32 B2 is below it (7.7e9), L16 h64 B2 far above (4.1e11).
const SECOND_OPINION_FLOOR: f64 = 1e10;

/// Whether the lifted system of layers with `param_sizes` parameters and
/// `act_sizes[1..]` outputs costs at most [`SECOND_OPINION_LIMIT`] times
/// its parameters-first Schur complement's blocks or at most
/// [`SECOND_OPINION_FLOOR`] flops.
pub(super) fn second_elimination_within_limits(param_sizes: &[usize], act_sizes: &[usize]) -> bool {
    let cube = |n: usize| (n as f64).powi(3);
    let lifted: f64 = param_sizes.iter().zip(&act_sizes[1..]).map(|(&p, &a)| cube(p + 2 * a)).sum();
    let reduced: f64 = act_sizes[1..].iter().map(|&a| cube(2 * a)).sum();
    lifted <= SECOND_OPINION_LIMIT * reduced || lifted / 3.0 <= SECOND_OPINION_FLOOR
}

/// Below this [`BlockLdlt::pivot_margin`], a certified count is checked
/// against the parity of the pivoted determinant (which costs about one
/// more factorization). Chosen from the differential test: see
/// docs/numerics.md, "Inertia".
pub(super) const PARITY_MARGIN: f64 = 1e3;

/// Whether a second opinion's count `second` answers instead of `first`:
/// only where it certifies more, and where it agrees with `first` within
/// `first`'s uncertainty (an independent check of the second, whose
/// certificate rests on a bound of its own: two counts outside each
/// other's ranges mean one of the two is wrong, and the first, less
/// certain, range is the one kept).
fn second_opinion_answers(first: &Inertia, second: &Inertia) -> bool {
    second.uncertain < first.uncertain && off_by(second, first) <= first.uncertain
}

/// The largest difference between two counts, field by field.
fn off_by(a: &Inertia, b: &Inertia) -> usize {
    a.positive.abs_diff(b.positive).max(a.negative.abs_diff(b.negative)).max(a.zero.abs_diff(b.zero))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(positive: usize, negative: usize, uncertain: usize) -> Inertia {
        Inertia { positive, negative, zero: 0, uncertain }
    }

    #[test]
    fn a_second_opinion_answers_only_when_more_certain_and_in_range() {
        let first = count(40, 10, 3);
        // More certain, within the first's range (10 +- 3): it answers.
        assert!(second_opinion_answers(&first, &count(37, 13, 0)));
        assert!(second_opinion_answers(&first, &count(41, 9, 2)));
        // Outside the first's range: one of the two is wrong, so the
        // first (whose range is honest if its own bound holds) stays.
        assert!(!second_opinion_answers(&first, &count(36, 14, 0)));
        assert!(!second_opinion_answers(&first, &count(44, 6, 1)));
        // Not more certain: no reason to change.
        assert!(!second_opinion_answers(&first, &count(40, 10, 3)));
        assert!(!second_opinion_answers(&first, &count(40, 10, 5)));
        // A zero count differing beyond the range (by 4, the others by 2)
        // also refuses it.
        let zero = Inertia { positive: 38, negative: 8, zero: 4, uncertain: 0 };
        assert!(!second_opinion_answers(&first, &zero));
    }
}
