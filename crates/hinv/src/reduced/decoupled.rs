//! `R`'s leading blocks that decouple, eliminated in closed form.
//!
//! A diagonal block `M = [[P, -I], [-I, Q]]` of `R` (`z` then `y`, `a`
//! each; `P` with the update carried from the blocks before it) with
//! `‖P‖ ‖Q‖ < 1` has inertia `(a, a, 0)`, whatever `P` is:
//! `N = [[P, -I], [-I, 0]]` splits, on `P`'s eigenvectors, into
//! `[[pi, -1], [-1, 0]]` blocks of determinant `-1`, so it has inertia
//! `(a, a, 0)` and no eigenvalue within `1 / (‖P‖ + 1)` of zero; the
//! congruence `diag(s I, I / s)` keeps the `-I` and the inertia and turns
//! this into `‖Q‖ / s^2 < 1 / (s^2 ‖P‖ + 1)`, which holds for a large
//! enough `s` exactly when `‖P‖ ‖Q‖ < 1` (Weyl). Its inverse is
//!
//! ```text
//! M^-1 = [[Q (PQ - I)^-1, (QP - I)^-1], [(PQ - I)^-1, (PQ - I)^-1 P]]
//!      = [[-Q, -I], [-I, -P]] + O(‖P‖ ‖Q‖)   (relatively, each block)
//! ```
//!
//! so where `‖P‖ ‖Q‖` is below [`DECOUPLED`] (`eps_mach`) the closed form is
//! exact to working precision: the block LDLᵀ's step is `P_{l+1} += C
//! P_l C^T` (`C` the coupling of `z_{l+1}` to `y_l`, `W = -P_l` being the
//! `y` corner of `M^-1`), with no factorization, and `log|det M| =
//! log|det(I - PQ)|` is zero to working precision.
//!
//! At PyTorch's initialisation this is most of a deep network (every block
//! but the last at L128 h8 B2 and deeper): both the activations and the
//! gradient flowing back from the loss decay geometrically, and the
//! factorization of those blocks is where subnormal arithmetic made the
//! time per layer grow with depth (docs/benchmarks.md, "Decoupled
//! blocks"). Only the leading run of such blocks is taken (the first
//! block that does not qualify ends it, so a network whose first block
//! does not, as at L64 h8 B2, splits nothing off); the rest of `R`, its
//! first block with the last one's update, goes to
//! [`tridiag::BlockLdlt`]. The blocks split off have no pivots: their
//! count is certain (the widened product, which holds the errors of the
//! eliminations before it, growth included, is `1 / eps_mach` away from
//! the condition's 1), so they take no part in the pivot margin.

use blockmat::reduce::norm_l2;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, Par};
use tridiag::{BlockLdlt, Inertia, TridiagError};

use super::symmetrize;

/// Largest `‖P‖_F ‖Q‖_F` of a block eliminated in closed form, each
/// widened by its error bound: the closed form's relative error `‖PQ‖`
/// is then within the rounding of the products a factorization would
/// compute instead, and the inertia's condition (`‖P‖ ‖Q‖ < 1`) holds
/// with a margin of `1 / eps_mach`.
pub(super) const DECOUPLED: f64 = f64::EPSILON;

/// The leading blocks of `R` eliminated in closed form.
#[derive(Debug)]
pub(super) struct Decoupled {
    /// The blocks `[[P, -I], [-I, Q]]`, `P` with its carried update.
    blocks: Vec<Mat<f64>>,
    /// `couplings[l]`: block `l + 1`'s `z` rows against block `l`'s `y`
    /// columns; the last couples to the first block factored.
    couplings: Vec<Mat<f64>>,
    /// The largest update carried, relative to the largest entry of the
    /// block it landed in (and the `-I`'s 1), at least 1: the growth of
    /// this block elimination, which cannot pivot across blocks (a
    /// determinant through it is only as good as this is small).
    growth: f64,
}

impl Decoupled {
    /// Splits off the leading blocks of `R` that decouple (never the
    /// last): `diag` (balanced blocks), `couplings` (`couplings[l]`
    /// between blocks `l + 1` and `l`, balanced) and `errors` (the scales
    /// of the errors of each block's `P` and `Q` entries, `u` times them,
    /// as [`tridiag::BlockLdlt::with_input_scales`] reads a scale) keep the
    /// rest, whose first block has received the update of the last one
    /// split off (and its magnitude in its `P`'s error scale).
    pub(super) fn split_off(
        diag: &mut Vec<Mat<f64>>,
        couplings: &mut Vec<Mat<f64>>,
        errors: &mut Vec<(f64, f64)>,
    ) -> Decoupled {
        let mut k = 0;
        let mut growth = 1.0f64;
        // One buffer for every block's `C P` (`(a_{l+1}, a_l)`), allocated
        // when a first block qualifies.
        let mut cp = Mat::<f64>::new();
        while k + 1 < diag.len() {
            let a = diag[k].nrows() / 2;
            // (Each entry is within `8 a eps_mach` of its error scale, and
            // the Frobenius norm of `a x a` such errors within `a` times
            // that.)
            let widen = |scale: f64| 8.0 * (a * a) as f64 * f64::EPSILON * scale;
            let p = norm_l2(diag[k].as_ref().submatrix(0, 0, a, a));
            let q = norm_l2(diag[k].as_ref().submatrix(a, a, a, a));
            let product = (p + widen(errors[k].0)) * (q + widen(errors[k].1));
            let c = couplings[k].as_ref();
            let c2 = norm_l2(c);
            // The update's entries are below its magnitude `|C| |P| |C|^T`,
            // and its rounding of the order of `eps_mach` times that.
            let update = c2 * c2 * p;
            // A NaN or an overflow stops here, before anything is carried:
            // the factorization of the rest meets it where it would have
            // (a non-finite block refused, an overflowing update counted
            // as a breakdown).
            if product.is_nan() || product > DECOUPLED || !update.is_finite() {
                break;
            }
            if cp.nrows() == 0 {
                let rows = couplings.iter().map(Mat::nrows).max().unwrap_or(0);
                cp = Mat::zeros(rows, diag.iter().map(|m| m.nrows() / 2).max().unwrap_or(0));
            }
            let (done, rest) = diag.split_at_mut(k + 1);
            let mut cp = cp.as_mut().submatrix_mut(0, 0, c.nrows(), a);
            matmul(cp.as_mut(), Accum::Replace, c, done[k].as_ref().submatrix(0, 0, a, a), 1.0, Par::Seq);
            let mut next = rest[0].as_mut().submatrix_mut(0, 0, c.nrows(), c.nrows());
            growth = growth.max(update / blockmat::reduce::max_abs(next.as_ref()).max(1.0));
            matmul(next.as_mut(), Accum::Add, cp.as_ref(), c.transpose(), 1.0, Par::Seq);
            symmetrize(next);
            // (The update's magnitude, as tridiag's chain records a link's;
            // the errors `P` and `C` carry in are not passed on, as that
            // chain does not pass on a block's: its certificate is local,
            // docs/numerics.md, "Open points". Passed on through Frobenius
            // norms, which overstate `||C||_2^2` by up to `a`, they grew
            // along the run and ended it early: L128 h8 B2 then split off
            // too few blocks to keep its rest.)
            errors[k + 1].0 = errors[k + 1].0.max(update);
            k += 1;
        }
        errors.drain(..k);
        Decoupled { blocks: diag.drain(..k).collect(), couplings: couplings.drain(..k).collect(), growth }
    }

    /// How many of `R`'s unknowns the blocks hold (they come first).
    pub(super) fn dim(&self) -> usize {
        self.blocks.iter().map(Mat::nrows).sum()
    }

    /// How many blocks were split off.
    pub(super) fn len(&self) -> usize {
        self.blocks.len()
    }

    /// The largest update carried relative to the block it landed in.
    pub(super) fn growth(&self) -> f64 {
        self.growth
    }

    /// Whether no block was split off.
    pub(super) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// `(a, a, 0)` for each block of `2 a`: certain.
    pub(super) fn inertia(&self) -> Inertia {
        let half = self.dim() / 2;
        Inertia { positive: half, negative: half, zero: 0, uncertain: 0 }
    }

    /// `e`, an error of the factored rest of `R`, with its block indices
    /// counted in `R` (the rest's first block is `R`'s block `k`, `k` the
    /// number of blocks split off).
    pub(super) fn in_r(&self, e: TridiagError) -> TridiagError {
        let k = self.blocks.len();
        match e {
            TridiagError::Singular { block, pivot, magnitude, threshold } => {
                TridiagError::Singular { block: block + k, pivot, magnitude, threshold }
            }
            TridiagError::SolveSingular { zero_pivots, first_block } => {
                TridiagError::SolveSingular { zero_pivots, first_block: first_block + k }
            }
            TridiagError::NotSymmetric { row, col, deviation, tolerance } => {
                TridiagError::NotSymmetric { row: row + k, col: col + k, deviation, tolerance }
            }
            TridiagError::NonFinite { what, block } => TridiagError::NonFinite { what, block: block + k },
            e @ TridiagError::ShapeMismatch { .. } => e,
        }
    }

    /// `rhs <- R^-1 rhs` (`rhs` all of `R`'s rows): these blocks' forward
    /// half, the factored `rest` (its rows follow theirs), their backward
    /// half.
    pub(super) fn solve_in_place(&self, rest: &BlockLdlt, mut rhs: MatMut<'_, f64>) -> Result<(), TridiagError> {
        self.forward(rhs.as_mut());
        rest.solve_in_place(rhs.as_mut().subrows_mut(self.dim(), rest.dim())).map_err(|e| self.in_r(e))?;
        self.backward(rhs);
        Ok(())
    }

    /// The forward half of a solve with `R` (`rhs` all of `R`'s rows):
    /// each block's rows become `M^-1 w`, and the next block's `z` rows
    /// lose `C` times their `y` part (the first block factored included).
    fn forward(&self, mut rhs: MatMut<'_, f64>) {
        let k = rhs.ncols();
        let mut off = 0;
        let widest = self.blocks.iter().map(|b| b.nrows() / 2).max().unwrap_or(0);
        let mut t = Mat::<f64>::zeros(widest, k);
        let mut s = Mat::<f64>::zeros(widest, k);
        for (m, c) in self.blocks.iter().zip(&self.couplings) {
            let a = m.nrows() / 2;
            let (p, q) = (m.as_ref().submatrix(0, 0, a, a), m.as_ref().submatrix(a, a, a, a));
            let (head, mut tail) = rhs.as_mut().split_at_row_mut(off + 2 * a);
            let (mut z, mut y) = head.subrows_mut(off, 2 * a).split_at_row_mut(a);
            let (mut t, mut s) = (t.as_mut().subrows_mut(0, a), s.as_mut().subrows_mut(0, a));
            // [z; y] <- [-Q z - y; -z - P y].
            t.copy_from(z.as_ref());
            matmul(s.as_mut(), Accum::Replace, p, y.as_ref(), 1.0, Par::Seq);
            matmul(z.as_mut(), Accum::Replace, q, t.as_ref(), -1.0, Par::Seq);
            z -= y.as_ref();
            y.copy_from(t.as_ref());
            y += s.as_ref();
            y *= faer::Scale(-1.0);
            let n = c.nrows();
            matmul(tail.as_mut().subrows_mut(0, n), Accum::Add, c, y.as_ref(), -1.0, Par::Seq);
            off += 2 * a;
        }
    }

    /// The backward half of a solve with `R`, after the factored blocks
    /// were solved for: each block's rows gain `M^-1 [0; C^T x_z]` with
    /// `x_z` the next block's `z` rows.
    fn backward(&self, mut rhs: MatMut<'_, f64>) {
        let k = rhs.ncols();
        let widest = self.blocks.iter().map(|b| b.nrows() / 2).max().unwrap_or(0);
        let mut t = Mat::<f64>::zeros(widest, k);
        let mut end = self.dim();
        for (m, c) in self.blocks.iter().zip(&self.couplings).rev() {
            let a = m.nrows() / 2;
            let off = end - 2 * a;
            let (head, tail) = rhs.as_mut().split_at_row_mut(end);
            let (mut z, mut y) = head.subrows_mut(off, 2 * a).split_at_row_mut(a);
            let mut t = t.as_mut().subrows_mut(0, a);
            matmul(t.as_mut(), Accum::Replace, c.transpose(), tail.as_ref().subrows(0, c.nrows()), 1.0, Par::Seq);
            // x_l = u_l - M^-1 [0; t] = u_l + [t; P t].
            z += t.as_ref();
            matmul(y.as_mut(), Accum::Add, m.as_ref().submatrix(0, 0, a, a), t.as_ref(), 1.0, Par::Seq);
            end = off;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::reference::{self, DenseLimit};
    use crate::{Curvature, Elimination, FactorOptions, SolveMethod, SolveOptions};
    use netgraph::{Activation, Batch, Network};
    use tridiag::FactorParams;

    use super::super::{tridiagonal, Reduced};
    use super::Decoupled;
    use faer::Mat;
    use tridiag::{BlockLdlt, TridiagError};

    /// A fixed pseudo-random entry in `[-0.5, 0.5)`.
    fn entry(seed: usize, i: usize, j: usize) -> f64 {
        ((seed * 7919 + i * 104_729 + j * 1_299_709) as f64 * 0.618_033_988_749_895).fract() - 0.5
    }

    /// `R` of blocks `a` with `P` and `Q` of orders `scales[l]` and
    /// couplings of order one: its diagonal blocks, couplings, and itself
    /// written out.
    fn synthetic(a: &[usize], scales: &[(f64, f64)]) -> (Vec<Mat<f64>>, Vec<Mat<f64>>, Mat<f64>) {
        let sym = |n: usize, seed: usize, s: f64| {
            Mat::from_fn(n, n, |i, j| s * (entry(seed, i.min(j), i.max(j)) + if i == j { 0.3 } else { 0.0 }))
        };
        let diag: Vec<Mat<f64>> = a
            .iter()
            .zip(scales)
            .enumerate()
            .map(|(l, (&n, &(p, q)))| {
                let (p, q) = (sym(n, 2 * l, p), sym(n, 2 * l + 1, q));
                Mat::from_fn(2 * n, 2 * n, |i, j| match (i < n, j < n) {
                    (true, true) => p[(i, j)],
                    (false, false) => q[(i - n, j - n)],
                    _ if i.abs_diff(j) == n => -1.0,
                    _ => 0.0,
                })
            })
            .collect();
        let couplings: Vec<Mat<f64>> =
            (1..a.len()).map(|l| Mat::from_fn(a[l], a[l - 1], |i, j| 1.5 * entry(100 + l, i, j))).collect();
        let offsets = blockmat::offsets(&a.iter().map(|n| 2 * n).collect::<Vec<_>>());
        let mut dense = Mat::<f64>::zeros(offsets[a.len()], offsets[a.len()]);
        for (l, m) in diag.iter().enumerate() {
            dense.as_mut().submatrix_mut(offsets[l], offsets[l], m.nrows(), m.ncols()).copy_from(m);
        }
        for (l, c) in couplings.iter().enumerate() {
            // Block l + 1's z rows, block l's y columns.
            let (row, col) = (offsets[l + 1], offsets[l] + a[l]);
            dense.as_mut().submatrix_mut(row, col, c.nrows(), c.ncols()).copy_from(c);
            dense.as_mut().submatrix_mut(col, row, c.ncols(), c.nrows()).copy_from(c.transpose());
        }
        (diag, couplings, dense)
    }

    /// The closed form against a dense solve and the dense eigenvalues,
    /// on blocks `(3, 4, 2, 3, 3)` of `P` and `Q` of the orders given
    /// (errors at the entries' own scales): three leading blocks with
    /// `‖P‖ ‖Q‖` near `1e-18` split off when the fourth is of order one;
    /// four, all but the last, when none is; `Q = 0` splits off too.
    /// Solves meet the dense solve and the counts are the dense matrix's.
    /// `P` of order one and `Q` of `1e-18` (every right-hand side's
    /// component of order one) tests each term but `-Q z`; balanced at
    /// `1e-9` each with the `y` components `1e-12`, `-Q z` is what the
    /// solution's `z` part holds.
    #[test]
    fn the_closed_form_solves_and_counts_as_the_dense_matrix() {
        let a = [3, 4, 2, 3, 3];
        let (small, balanced, one, zero) = ((1.0, 1e-18), (1e-9, 1e-9), (1.0, 1.0), (1.0, 0.0));
        let cases = [
            ([small, small, small, one, small], 3, 1.0),
            ([balanced, balanced, balanced, one, balanced], 3, 1e-12),
            ([small; 5], 4, 1.0),
            ([zero, zero, zero, one, zero], 3, 1.0),
        ];
        for (scales, k, y) in cases {
            let (mut diag, mut couplings, dense) = synthetic(&a, &scales);
            let mut errors = scales.to_vec();
            let d = Decoupled::split_off(&mut diag, &mut couplings, &mut errors);
            let dim = 2 * a[..k].iter().sum::<usize>();
            assert_eq!((d.len(), d.dim(), diag.len(), couplings.len(), errors.len()), (k, dim, 5 - k, 4 - k, 5 - k));
            // The first block factored holds the last one's update, and its
            // magnitude in its error scale.
            // (At least the last update's magnitude; more where the error
            // scales carried along the run exceed `P`.)
            let (c, p) = (d.couplings[k - 1].norm_l2(), d.blocks[k - 1].as_ref().submatrix(0, 0, a[k - 1], a[k - 1]));
            assert!(errors[0].0 >= scales[k].0.max(c * c * p.norm_l2()), "{scales:?}: {:?}", errors[0]);
            // Couplings and `P` of order one: the updates are within 8 of
            // the blocks they land in (and the `-I`).
            assert!((1.0..8.0).contains(&d.growth()), "growth {:e}", d.growth());
            let params = FactorParams::default();
            let rest = BlockLdlt::factor_owned(tridiagonal(diag, couplings).unwrap(), &params).unwrap();
            let offsets = blockmat::offsets(&a.iter().map(|n| 2 * n).collect::<Vec<_>>());
            let is_y = |i: usize| (0..a.len()).any(|l| (offsets[l] + a[l]..offsets[l + 1]).contains(&i));
            let b = Mat::from_fn(dense.nrows(), 2, |i, j| (entry(7 + j, i, 0) + 0.1) * if is_y(i) { y } else { 1.0 });
            let mut x = b.clone();
            d.solve_in_place(&rest, x.as_mut()).unwrap();
            let want = faer::linalg::solvers::Solve::solve(&dense.partial_piv_lu(), &b);
            let err = (&x - &want).norm_l2() / want.norm_l2();
            // `R` is well conditioned here (cond 3e2 and 1e1): rounding and
            // the closed form's `1e-18` relative error leave about 1e-15;
            // a term of the closed form missing is of order one in the
            // first case, and `-Q z` `1e-9` of the solution in the second.
            assert!(err < 1e-12, "{scales:?}: solve off by {err:e}");
            let lambda = dense.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
            let negative = lambda.iter().filter(|&&v| v < 0.0).count();
            let got = d.inertia() + rest.inertia();
            let want = (negative, lambda.len() - negative, 0, 0);
            assert_eq!((got.negative, got.positive, got.zero, got.uncertain), want, "{scales:?}");
        }
    }

    /// What stops the split: errors that widen `‖Q‖` beyond the bound
    /// (the entries alone would pass), a NaN in `Q` (which `P`'s update
    /// would not carry, so nothing downstream would see it), an update
    /// that would overflow; and an error of the factored rest names the
    /// block of `R` at fault.
    #[test]
    fn what_stops_the_split_and_errors_of_the_rest() {
        let a = [3, 4, 2, 3, 3];
        let small = [(1.0, 1e-18); 5];
        let split = |diag: &mut Vec<Mat<f64>>, couplings: &mut Vec<Mat<f64>>, errors: &[(f64, f64)]| {
            Decoupled::split_off(diag, couplings, &mut errors.to_vec())
        };
        let (mut diag, mut couplings, _) = synthetic(&a, &small);
        assert_eq!(split(&mut diag.clone(), &mut couplings.clone(), &small).len(), 4);
        // `Q`'s errors at `P`'s scale: `8 a^2 eps_mach` widens `‖Q‖` to 1.6e-14.
        assert_eq!(split(&mut diag.clone(), &mut couplings.clone(), &[(1.0, 1.0); 5]).len(), 0);
        // An update of order 1e320: nothing is carried into block 2.
        let mut huge = couplings.clone();
        huge[1] *= faer::Scale(1e160);
        let mut left = diag.clone();
        assert_eq!(split(&mut left, &mut huge, &small).len(), 1);
        assert!(left[1] == diag[2], "block 2 untouched");
        // Couplings 1e3 times larger carry updates 1e6 times the blocks.
        let mut large = couplings.clone();
        large.iter_mut().for_each(|c| *c *= faer::Scale(1e3));
        let d = split(&mut diag.clone(), &mut large, &[(1.0, 1e-30); 5]);
        assert!(d.growth() > 1e5, "growth {:e}", d.growth());
        // A NaN in block 1's `Q`.
        diag[1][(a[1], a[1])] = f64::NAN;
        let d = split(&mut diag, &mut couplings, &small);
        assert_eq!(d.len(), 1);
        let e = BlockLdlt::factor_owned(tridiagonal(diag, couplings).unwrap(), &FactorParams::default()).unwrap_err();
        assert_eq!(e, TridiagError::NonFinite { what: "diagonal", block: 0 });
        assert_eq!(d.in_r(e), TridiagError::NonFinite { what: "diagonal", block: 1 });
        let singular = TridiagError::Singular { block: 2, pivot: 1, magnitude: 0.0, threshold: 1e-300 };
        let moved = TridiagError::Singular { block: 3, pivot: 1, magnitude: 0.0, threshold: 1e-300 };
        assert_eq!(d.in_r(singular), moved);
    }

    /// The log-determinant from the rest of `R` kept at factorization
    /// (networks without bias at small gains, whose amplification, 2.2e3
    /// at `eps = 1e-3`, lets `log_det` take the parameters-first route:
    /// every block but the last in closed form, an odd number of blocks of
    /// 3 at width 3 and batch 1, whose `(-1)^a` then counts) against
    /// the route that eliminates the layers again and pivots all of `R`,
    /// and against the dense spectrum's, through `Factorization::log_det`.
    #[test]
    fn the_kept_rest_gives_the_log_determinant() {
        let opts = FactorOptions { elimination: Elimination::ParametersFirst, ..FactorOptions::default() };
        let mut odd = 0;
        for (depth, gain, width, batch) in [(30, 0.1, 4, 2), (40, 0.2, 4, 2), (31, 0.1, 3, 1)] {
            let net = Network::builder(4)
                .without_bias()
                .dense(width, Activation::Tanh)
                .repeat(depth)
                .cross_entropy(3)
                .unwrap();
            let mut params = net.init_params(7);
            params.scale(gain);
            let data = Batch::random_classification(4, 3, batch, 8);
            let d = net.derivatives(&params, &data).unwrap();
            let curv = Curvature::new(&net, &params, &data).unwrap();
            let spec = reference::spectrum(reference::hessian(&curv, DenseLimit::default()).unwrap().as_ref()).unwrap();
            for eps in [1e-3, 1e-1, -1e-3] {
                let fp = FactorParams::default();
                let r = Reduced::factor(&d, eps, &fp, true).unwrap().unwrap();
                let kept = r.kept_log_det(1e4).expect("the rest is kept").unwrap();
                odd += (r.decoupled.dim() / 2) % 2;
                let again = Reduced::pivoted_log_det(&d, eps, &fp).unwrap().unwrap();
                let f = curv.factor_with(eps, &opts).unwrap();
                assert!(f.log_det_keeps_rest(), "depth {depth} eps {eps}: log_det takes the kept rest");
                let got = f.log_det().unwrap();
                let want = spec.log_det(eps);
                // The two routes eliminate the same matrix (equal to the
                // last digit here); the dense spectrum's sum of logarithms
                // differs by 1e-14 relative at most (measured).
                assert_eq!(kept.sign, again.sign, "depth {depth} eps {eps}");
                assert!((kept.log_abs - again.log_abs).abs() <= 1e-12 * again.log_abs.abs(), "{kept:?} {again:?}");
                assert_eq!(got.sign, want.sign, "depth {depth} eps {eps}");
                assert!((got.log_abs - want.log_abs).abs() <= 1e-11 * want.log_abs.abs(), "{got:?} {want:?}");
                eprintln!(
                    "depth {depth} width {width} eps {eps:e}: kept - again {:.1e}, hinv - dense {:.1e} (relative)",
                    (kept.log_abs - again.log_abs) / again.log_abs.abs(),
                    (got.log_abs - want.log_abs) / want.log_abs.abs()
                );
            }
        }
        assert!(odd > 0, "no run of an odd number of unknowns");
    }

    /// How many of `R`'s blocks decouple at `eps`, and how many it has.
    fn decoupled(d: &netgraph::Derivatives, eps: f64) -> (usize, usize) {
        let r = Reduced::factor(d, eps, &FactorParams::default(), true).unwrap().unwrap();
        (r.decoupled.len(), r.decoupled.len() + r.ldlt.block_sizes().len())
    }

    /// A deep narrow network at a small initialisation decouples a third
    /// of `R` (8 of 25 blocks at gain 0.2, where the curvature of the
    /// first layers is below `1e-10` of the last ones'): the solve
    /// through the closed form, unrefined, meets the dense solve, and the
    /// counts of eigenvalues below shifts inside the spectrum are the
    /// dense ones, certified.
    #[test]
    fn decoupled_blocks_solve_and_count_as_the_dense_hessian() {
        let net = Network::builder(4).dense(4, Activation::Tanh).repeat(24).cross_entropy(3).unwrap();
        let mut params = net.init_params(7);
        params.scale(0.2);
        let data = Batch::random_classification(4, 3, 2, 8);
        let d = net.derivatives(&params, &data).unwrap();
        let curv = Curvature::new(&net, &params, &data).unwrap();
        let spec = reference::spectrum(reference::hessian(&curv, DenseLimit::default()).unwrap().as_ref()).unwrap();
        let opts = FactorOptions { elimination: Elimination::ParametersFirst, ..FactorOptions::default() };
        let g: Vec<f64> = (0..curv.num_params()).map(|i| ((i * 37 % 11) as f64 - 5.0) / 5.0).collect();
        let raw = SolveOptions { max_refinements: 0, accept_inexact: true, ..SolveOptions::default() };
        for eps in [1e-3, 1e-1] {
            let (k, nb) = decoupled(&d, eps);
            assert!(k >= 8 && k < nb, "{k} of {nb} blocks decoupled at eps {eps}");
            let f = curv.factor_with(eps, &opts).unwrap();
            let solution = f.solve_with(faer::MatRef::from_column_major_slice(&g, g.len(), 1), &raw).unwrap();
            // (A block answer off by more than the tolerance would be
            // replaced by the pivoted elimination's.)
            assert_eq!(solution.report.method, SolveMethod::BlockLdlt);
            let h = reference::hessian(&curv, DenseLimit::default()).unwrap();
            let want = reference::solve(h.as_ref(), eps, &g).unwrap();
            let norm = want.iter().map(|v| v * v).sum::<f64>().sqrt();
            let err = (0..want.len()).map(|i| (solution.x[(i, 0)] - want[i]).powi(2)).sum::<f64>().sqrt() / norm;
            // cond(H + eps I) is at most 1.1 / 1e-3 here and the growth
            // about 1e3: eps_mach times both is 2.4e-10; measured 1.3e-14
            // and 3.4e-15.
            assert!(err < 1e-9, "raw solve at eps {eps} off by {err:e}");
            eprintln!("eps {eps}: {k} of {nb}, err {err:e}");
        }
        // Shifts between eigenvalues (at least 1e-6 from the nearest, so
        // the dense count is certain), counting from 4 to 23 negative.
        for eps in [-1e-3, -1.5e-2, -7e-2] {
            let gap = spec.eigenvalues.iter().map(|l| (l + eps).abs()).fold(f64::INFINITY, f64::min);
            assert!(gap > 1e-6, "eps {eps} within {gap:e} of an eigenvalue");
            let (k, nb) = decoupled(&d, eps);
            assert!(k >= 4 && k < nb, "{k} of {nb} blocks decoupled at eps {eps}");
            let f = curv.factor_with(eps, &opts).unwrap();
            let want = spec.inertia(eps, 0.0);
            let got = f.inertia_from_pivots();
            eprintln!("eps {eps}: {k} of {nb}; {got:?} against {want:?}");
            assert_eq!(got.uncertain, 0, "eps {eps}");
            assert_eq!((got.negative, got.positive), (want.negative, want.positive), "eps {eps}");
        }
    }
}
