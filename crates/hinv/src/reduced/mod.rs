//! The lifted system with every layer's parameters eliminated first.
//!
//! In the lifted system `K'` of ALGORITHM.md the parameters `x_l` of a
//! layer touch only themselves (`A_l + eps I`), the `z_l` unknowns (`Dx_l`)
//! and the `y_{l-1}` unknowns (`G_l`). Eliminating all of them first is a
//! symmetric block elimination of the block-diagonal `A + eps I`, so by
//! Haynsworth
//!
//! ```text
//! inertia(K') = sum_l inertia(A_l + eps I) + inertia(R)
//! ```
//!
//! where the Schur complement `R` is again symmetric block-tridiagonal, in
//! the unknowns `(z_l, y_l)` of each layer (`A_l + eps I` written `A_l`):
//!
//! ```text
//! diagonal block l:   [ -Dx_l A_l^-1 Dx_l^T     -I                                    ]
//!                     [ -I                      E_{l+1} - G_{l+1}^T A_{l+1}^-1 G_{l+1} ]
//! block (l, l-1):     z_l rows, y_{l-1} columns: Dz_l - Dx_l A_l^-1 G_l
//! ```
//!
//! `A_l` is block diagonal over a dense layer's output units (each unit's
//! weights and bias, [`groups`]), so its factorization costs
//! `out (in + 1)^3 / 3` instead of `p_l^3 / 3`, and `R`'s blocks have size
//! `2 a_l`, independent of the number of parameters: wide layers and wide
//! inputs cost what their activations cost. The solve reads
//! `x_l = A_l^-1 (g_l - Dx_l^T z_l - G_l y_{l-1})` back.
//!
//! Before `R` is factored, each of its blocks `[[P, -I], [-I, Q]]` is
//! balanced by the congruence `diag(sigma I, I / sigma)` with `sigma` a
//! power of two (`assemble::balance`): `P = -Dx A^-1 Dx^T` carries `1/eps`
//! where `A_l` vanishes while `Q` may be tiny, and the certificate judges
//! each block's pivots against its largest scale. The scaling is exact
//! (but for entries that underflow, far below the block's rounding),
//! keeps the `-I` blocks and has determinant 1, so inertia and
//! determinant are those of `R`; solves scale in and out.
//!
//! A first layer reading many inputs has unit groups of `in + 1`
//! parameters but rank at most the batch size; [`projected`] eliminates
//! such a group on the span of its `Dx` rows (a `batch x batch`
//! factorization), after checking on the block itself that nothing lies
//! outside that span, and reads it in place instead of copying it.
//!
//! The price is stability: the pivots are restricted to `A_l + eps I`,
//! whose inverse may be large (for a vanishing `A_l`, `1/eps`). Its
//! multipliers are not bounded by pivoting, so the fill is measured and
//! the elimination refused (the interleaved one runs instead) when it grows
//! beyond [`GROWTH_LIMIT`] times the lifted system's own entries, or when a
//! pivot of `A_l + eps I` is not certain; see docs/numerics.md.

mod assemble;
mod decoupled;
mod determinant;
mod fills;
mod group_solver;
mod groups;
mod layers;
mod multipliers;
mod pack;
mod part;
mod projected;
mod solve;
mod symmetric;
mod units;

use blockmat::reduce::max_abs;
use faer::{Mat, MatMut};
use netgraph::{Derivatives, UnitCoupling};
use tridiag::{BlockDiagLdlt, BlockLdlt, FactorParams, Inertia, ParPolicy, SignedLogDet, TridiagError};

use assemble::{assemble, tridiagonal, Assembled};
use decoupled::Decoupled;
use group_solver::{inverses, GroupSolver};
use groups::{GroupBlock, Groups};
use layers::map_layers;
use multipliers::{Built, DxPieces, Multipliers, Scratch};
use pack::{MatPack, Ragged};
use projected::Projection;
use symmetric::{symmetrize, symmetrize_shifted};

/// Largest fill of the parameters-first elimination, relative to the
/// largest entry of the layer's own blocks (and the `-I` blocks), that is
/// accepted. Gaussian elimination's backward error scales with this growth,
/// so near it the factorization is digits less accurate than the
/// interleaved one in the worst case; refinement with the exact HVP
/// recovers them, and the certificate sees the fill in each block's
/// (balanced) scale (docs/numerics.md, "Eliminating the parameters first").
pub(crate) const GROWTH_LIMIT: f64 = 1e10;

/// Why the parameters-first elimination was not used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Refusal {
    /// Fill `growth` times the layer's own entries, above [`GROWTH_LIMIT`].
    Growth { layer: usize, growth: f64 },
    /// A pivot of `A_l + eps I` is zero or within its rounding bound.
    UncertainPivot { layer: usize },
    /// A group of `A_l + eps I` has a condition estimate above [`COND_LIMIT`].
    IllConditioned { layer: usize, cond: f64 },
}

/// Largest condition estimate of a group of `A_l + eps I` accepted by
/// [`crate::Elimination::Auto`]: the multipliers `A^-1 Dx^T` carry
/// `u cond` relative error into `R`, which the certificate of `R` then
/// counts (so a larger condition makes more counts uncertain, and their
/// second opinion costs the interleaved factorization anyway).
pub(crate) const COND_LIMIT: f64 = 1e8;

/// The factored parameters-first elimination.
#[derive(Debug)]
pub(crate) struct Reduced {
    layers: Vec<LayerElimination>,
    /// `R`'s leading blocks that decouple, eliminated in closed form.
    decoupled: Decoupled,
    /// The rest of `R`, factored.
    ldlt: BlockLdlt,
    /// The rest of `R` as it was factored, kept when it is at most as many
    /// blocks as the closed-form run before it (every block but the last
    /// of a deep network at PyTorch's initialisation): its determinant
    /// pivoted across blocks is then `R`'s but for the run's `(-1)^a`
    /// each, without eliminating the layers again ([`Reduced::kept_log_det`]).
    rest: Option<Box<blockmat::Tridiag>>,
    /// Offsets of the `(z_l, y_l)` blocks in `R`'s unknowns.
    offsets: Vec<usize>,
    /// Each block's balancing: `decoupled` and `ldlt` eliminate `S R S`
    /// with `S = diag(sigma_l I, I / sigma_l)` on `(z_l, y_l)` (powers of
    /// two).
    sigma: Vec<f64>,
    /// Largest fill relative to its layer's entries.
    growth: f64,
    /// Largest condition estimate of a group's `A_g + eps I`.
    cond: f64,
    /// Largest residual of a projected group relative to its block
    /// (`eps_mach` without projections).
    perturbation: f64,
    /// Whether a solve's substitutions may split across threads.
    par: ParPolicy,
}

/// One layer's eliminated parameters.
#[derive(Debug)]
struct LayerElimination {
    /// Each group's parameters (indices into the layer's).
    members: Ragged,
    /// The groups' pivots (inertia, certificate).
    ldlt: BlockDiagLdlt,
    /// Each group's `(A_g + eps I)^-1`, from its Bunch–Kaufman factors: the
    /// groups are small (a unit's fan-in), where one product with an
    /// explicit inverse costs less than the calls of a triangular solve,
    /// and refinement with the exact HVP absorbs its slightly larger error.
    /// Absent for large and projected groups.
    inverses: MatPack,
    /// `A_l^-1 Dx_l^T` (`p_l x a_l`, stored by group), the multipliers of
    /// `z_l`.
    xdx: Multipliers,
    /// How a solve applies `A_l^-1 G_l`.
    g: InputCoupling,
    /// Groups eliminated on a small subspace ([`projected`]); their block
    /// in `ldlt` is the projected `T`.
    projections: Vec<Option<Projection>>,
    /// The shift, which the projected groups' other directions see alone.
    eps: f64,
}

impl LayerElimination {
    fn solver(&self) -> GroupSolver<'_> {
        GroupSolver { inverses: &self.inverses, projections: &self.projections, ldlt: &self.ldlt, eps: self.eps }
    }

    /// Inertia of `A_l + eps I`: the factored blocks, plus each projected
    /// group's `eps` directions.
    fn inertia(&self) -> Inertia {
        let mut i = self.ldlt.inertia();
        let n = self.eps_directions();
        if self.eps > 0.0 {
            i.positive += n;
        } else {
            i.negative += n;
        }
        i
    }

    /// How many directions of the projected groups see `eps` alone (no
    /// factored pivot stands for them).
    fn eps_directions(&self) -> usize {
        self.projections.iter().flatten().map(Projection::eps_directions).sum()
    }

    /// `log|det(A_l + eps I)|` and its sign: the factored blocks, and each
    /// projected group's `eps` directions.
    fn log_det(&self) -> SignedLogDet {
        let n = self.eps_directions();
        let odd = n % 2 == 1 && self.eps < 0.0;
        SignedLogDet {
            // (`0 ln 0` would be NaN: with no such directions `eps = 0` adds nothing.)
            log_abs: self.ldlt.log_abs_det() + if n > 0 { n as f64 * self.eps.abs().ln() } else { 0.0 },
            sign: if odd { -self.ldlt.det_sign() } else { self.ldlt.det_sign() },
        }
    }

    /// Smallest margin of a pivot over its bound, the projected groups'
    /// `eps` over their residual included.
    fn pivot_margin(&self) -> f64 {
        let eps = self.projections.iter().flatten().map(|p| self.eps.abs() / p.residual);
        eps.fold(self.ldlt.pivot_margin(), f64::min)
    }
}

/// How a solve applies a layer's `A_l^-1 G_l` (`p_l x a_{l-1}`).
#[derive(Debug)]
enum InputCoupling {
    /// Exactly zero: the first layer (no columns), or a zero block (the
    /// Gauss–Newton matrix's hidden layers).
    Zero { params: usize, inputs: usize },
    /// Formed, one product per solve: layers too small for the units'
    /// route to gain ([`units::SOLVE_FACTORS_MIN`]) or without it.
    /// `A_l^-1 G_l = scale m`, `scale` a power of two: 1 but for a
    /// vanishing `G_l`, whose `A^-1 G` written out would be subnormal
    /// numbers that every solve multiplies in microcode.
    Formed { m: Mat<f64>, scale: f64 },
    /// `G_l` by its units' factors, then `A_l^-1` group by group: a
    /// product costs `O(batch p_l)` plus the groups' inverses instead of
    /// `p_l a_{l-1}` ([`units`]).
    Units(UnitCoupling),
}

impl InputCoupling {
    /// `(p_l, a_{l-1})`.
    fn shape(&self) -> (usize, usize) {
        match self {
            InputCoupling::Zero { params, inputs } => (*params, *inputs),
            InputCoupling::Formed { m, .. } => m.shape(),
            InputCoupling::Units(u) => u.shape(),
        }
    }
}

/// What eliminating one layer's parameters leaves for `R`.
struct Pieces {
    elim: LayerElimination,
    /// `R`'s diagonal block `l` (`2 a_l`, zero but for its `z` part,
    /// which holds `Dx_l A_l^-1 Dx_l^T`): allocated and zeroed here, with
    /// the layers in parallel, and completed by [`assemble`].
    block: Mat<f64>,
    /// `Dz_l - Dx_l A_l^-1 G_l` (none for the first layer).
    coupling: Option<Mat<f64>>,
    /// `G_l^T A_l^-1 G_l` (none for the first layer).
    yfill: Option<Mat<f64>>,
    growth: f64,
    /// Largest condition estimate of a group's `A_g + eps I`.
    cond: f64,
    /// Largest residual of a projected group relative to its block.
    perturbation: f64,
    /// The scales of the errors of the fills into `R`'s block `l` (`z`
    /// part and coupling) and block `l - 1` (`y` part).
    z_scale: f64,
    y_scale: f64,
}

#[cfg(test)]
impl Pieces {
    /// `Dx_l A_l^-1 Dx_l^T`, the `z` part of the layer's block.
    fn zfill(&self) -> faer::MatRef<'_, f64> {
        let a = self.block.nrows() / 2;
        self.block.as_ref().submatrix(0, 0, a, a)
    }
}

impl Reduced {
    /// Eliminates every layer's parameters (layers in parallel), then
    /// factors `R`. `Ok(Err(refusal))` when the elimination would not be
    /// stable enough; `Err` for input errors of the factorization.
    pub(crate) fn factor(
        d: &Derivatives,
        eps: f64,
        params: &FactorParams,
        force: bool,
    ) -> Result<std::result::Result<Reduced, Refusal>, TridiagError> {
        let Eliminated { mut pieces, growth, split } = match eliminate_layers(d, eps, params, force)? {
            Ok(e) => e,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let nl = pieces.len();
        let cond = pieces.iter().map(|p| p.cond).fold(1.0f64, f64::max);
        let perturbation = pieces.iter().map(|p| p.perturbation).fold(f64::EPSILON, f64::max);
        let Assembled { mut diag, mut couplings, sigma } = assemble(d, &mut pieces, split, params.symmetry_tol)?;
        // R's entries came out of the eliminations with errors the
        // factorization of R cannot see (they may have cancelled since):
        // its certificate judges each block against them too, scaled as
        // the block was balanced.
        let mut errors: Vec<(f64, f64)> = (0..nl)
            .map(|l| {
                let s2 = sigma[l] * sigma[l];
                (s2 * pieces[l].z_scale, pieces.get(l + 1).map_or(0.0, |p| p.y_scale) / s2)
            })
            .collect();
        // R is built here and read by nothing else: its blocks are factored
        // in place, and not checked for symmetry again (`assemble` judged
        // each block against the symmetry tolerance and made it exactly
        // symmetric; at L16 h8 B16 the second check was 2.6% of the
        // factorization).
        let r_params = FactorParams { symmetry_tol: f64::INFINITY, ..*params };
        let decoupled = Decoupled::split_off(&mut diag, &mut couplings, &mut errors);
        let scales: Vec<f64> = errors.iter().map(|&(z, y)| z.max(y)).collect();
        let rest = tridiagonal(diag, couplings)?;
        let kept = (!decoupled.is_empty() && rest.len() <= decoupled.len()).then(|| Box::new(rest.clone()));
        let ldlt = BlockLdlt::factor_owned(rest, &r_params).map_err(|e| decoupled.in_r(e))?.with_input_scales(&scales);
        let sizes: Vec<usize> = (0..nl).map(|l| 2 * d.act_sizes[l + 1]).collect();
        Ok(Ok(Reduced {
            layers: pieces.into_iter().map(|p| p.elim).collect(),
            decoupled,
            ldlt,
            rest: kept,
            offsets: blockmat::offsets(&sizes),
            sigma,
            growth,
            cond,
            perturbation,
            par: params.par,
        }))
    }

    /// The factored Schur complement `R` but its leading blocks eliminated
    /// in closed form ([`decoupled`]).
    pub(crate) fn schur(&self) -> &BlockLdlt {
        &self.ldlt
    }

    /// Largest fill relative to its layer's entries.
    pub(crate) fn growth(&self) -> f64 {
        self.growth
    }

    /// How much the parameters' elimination may amplify rounding into a
    /// determinant taken through it: its growth, times the largest
    /// condition estimate of a group, times the largest residual of a
    /// projected group (relative to its block) in units of `64 eps_mach`:
    /// a residual within the rounding a group's own factorization may
    /// commit (about `n eps_mach` for `n` parameters) adds nothing.
    pub(crate) fn log_det_amplification(&self) -> f64 {
        self.growth.max(1.0) * self.cond * (self.perturbation / (64.0 * f64::EPSILON)).max(1.0)
    }

    /// Whether a group's pivot is within its rounding bound (possible only
    /// when the elimination was forced).
    pub(crate) fn has_uncertain_group_pivot(&self) -> bool {
        self.layers.iter().any(|l| l.inertia().uncertain > 0)
    }

    /// How many groups were eliminated on a projection.
    #[cfg(test)]
    pub(crate) fn projected_groups(&self) -> usize {
        self.layers.iter().map(|l| l.projections.iter().flatten().count()).sum()
    }

    /// Inertia of the lifted system: the parameters' blocks plus `R`.
    pub(crate) fn lifted_inertia(&self) -> Inertia {
        self.layers.iter().fold(self.ldlt.inertia() + self.decoupled.inertia(), |acc, l| acc + l.inertia())
    }

    /// Smallest margin of a pivot over its rounding bound, over both stages.
    pub(crate) fn pivot_margin(&self) -> f64 {
        // (The blocks eliminated in closed form have no pivots; their
        // count is certain, [`decoupled`].)
        self.layers.iter().map(LayerElimination::pivot_margin).fold(self.ldlt.pivot_margin(), f64::min)
    }

    /// Size of the lifted system this eliminates.
    pub(crate) fn lifted_dim(&self) -> usize {
        self.r_dim() + self.layers.iter().map(|l| l.g.shape().0).sum::<usize>()
    }

    /// Size of `R`.
    fn r_dim(&self) -> usize {
        self.decoupled.dim() + self.ldlt.dim()
    }
}

/// Every layer's eliminated parameters and what they leave for `R`.
struct Eliminated {
    pieces: Vec<Pieces>,
    /// The largest growth of a layer.
    growth: f64,
    /// Whether the layers split across threads (so may `R`'s assembly).
    split: bool,
}

/// Every layer's parameters eliminated (layers in parallel when the work
/// is worth it); `Ok(Err(refusal))` when the elimination would not be
/// stable enough.
fn eliminate_layers(
    d: &Derivatives,
    eps: f64,
    params: &FactorParams,
    force: bool,
) -> Result<std::result::Result<Eliminated, Refusal>, TridiagError> {
    let nl = d.layers.len();
    let work: f64 = (0..nl).map(|l| elimination_flops(d, l)).sum();
    let split = params.par.split_work(work);
    // The buffers grow to the widest layer of a run.
    let pieces = map_layers(split, vec![(); nl], Scratch::default, |s, l, ()| eliminate(d, l, eps, params, s))?;
    let mut growth = 0.0f64;
    for (l, p) in pieces.iter().enumerate() {
        // An exactly singular unit block cannot be eliminated at all,
        // forced or not.
        if p.growth.is_infinite() || (p.elim.inertia().uncertain > 0 && !force) {
            return Ok(Err(Refusal::UncertainPivot { layer: l }));
        }
        if p.growth > GROWTH_LIMIT && !force {
            return Ok(Err(Refusal::Growth { layer: l, growth: p.growth }));
        }
        if p.cond > COND_LIMIT && !force {
            return Ok(Err(Refusal::IllConditioned { layer: l, cond: p.cond }));
        }
        growth = growth.max(p.growth);
    }
    Ok(Ok(Eliminated { pieces, growth, split }))
}

/// What eliminating layer `l`'s parameters costs, roughly, in flops: the
/// fills' products through its `p_l` parameters (`Dx A^-1 Dx^T`,
/// `Dx A^-1 G`, `G^T A^-1 G`), bounded by `2 p_l (a_l + a_{l-1})^2`, and a
/// fixed cost per layer for the calls, checks and buffers that do not
/// shrink with it (about 10 µs at h = 4: `phase_times -- 16 4 2` factors
/// 16 layers in 0.13 ms on one thread).
fn elimination_flops(d: &Derivatives, l: usize) -> f64 {
    const PER_LAYER: f64 = 2e4;
    let (p, a) = (d.param_sizes[l] as f64, (d.act_sizes[l] + d.act_sizes[l + 1]) as f64);
    PER_LAYER + 2.0 * p * a * a
}

/// Eliminates layer `l`'s parameters.
fn eliminate(
    d: &Derivatives,
    l: usize,
    eps: f64,
    params: &FactorParams,
    scratch: &mut Scratch,
) -> Result<Pieces, TridiagError> {
    let b = &d.layers[l];
    let groups = Groups::of(&b.a);
    // The layer's own scale: its blocks and the -I of the lifted system.
    let mut scale = 1.0f64.max(eps.abs());
    let stats: Vec<(f64, f64)> = groups.blocks.iter().map(GroupBlock::magnitude_and_asymmetry).collect();
    for &(big, _) in &stats {
        scale = scale.max(big);
    }
    for &(_, deviation) in &stats {
        // The layers compute A's unit blocks by products that are symmetric
        // only to rounding; judged against the lifted system's scale (as the
        // interleaved elimination judges its blocks), such a block is
        // symmetric, and symmetrising it (or its projection) removes the
        // rounding.
        let tolerance = params.symmetry_tol * scale;
        if deviation > tolerance {
            return Err(TridiagError::NotSymmetric { row: l, col: l, deviation, tolerance });
        }
    }
    // Dx touches few rows per group (a dense layer: one unit's `batch`
    // rows), and every product with it goes group by group over those.
    let members = groups.members;
    let mut dx = DxPieces::of(&b.dx, &members, scratch)?;
    scale = scale.max(dx.max_abs);
    // Each group's projection, if it is eliminated on one, with its block `T`.
    let projected: Vec<_> = groups
        .blocks
        .iter()
        .enumerate()
        .map(|(g, m)| {
            (m.size() >= projected::MIN_SIZE).then(|| projected::project(m, dx.piece(g), eps, params)).flatten()
        })
        .collect();
    let sizes: Vec<usize> =
        groups.blocks.iter().zip(&projected).map(|(m, p)| p.as_ref().map_or(m.size(), |(_, t)| t.nrows())).collect();
    // Every group's block (or its projection) back to back, factored in
    // place: one buffer for the layer, not one per unit.
    let mut data = vec![0.0; sizes.iter().map(|n| n * n).sum()];
    let mut at = 0;
    for ((m, p), &n) in groups.blocks.iter().zip(&projected).zip(&sizes) {
        let mut out = MatMut::from_column_major_slice_mut(&mut data[at..at + n * n], n, n);
        match p {
            Some((_, t)) => out.copy_from(t),
            None => {
                m.columns_into(0, out.as_mut());
                symmetrize_shifted(out, eps);
            }
        }
        at += n * n;
    }
    let projections: Vec<Option<Projection>> = projected.into_iter().map(|p| p.map(|(proj, _)| proj)).collect();
    let ldlt = BlockDiagLdlt::factor_packed(data, &sizes, params)?;
    let safe = ldlt.inertia().zero == 0;
    let inverses = if safe { inverses(&members, &projections, &ldlt)? } else { MatPack::default() };
    let solver = GroupSolver { inverses: &inverses, projections: &projections, ldlt: &ldlt, eps };
    let acts = b.dx.nrows();
    let mut block = Mat::<f64>::zeros(2 * acts, 2 * acts);
    let Built { multipliers: xdx, max_col_norm: xdx_norm } =
        Multipliers::build(&mut dx, safe.then_some(&solver), scratch, block.as_mut().submatrix_mut(0, 0, acts, acts))?;
    let mut zfill = block.as_mut().submatrix_mut(0, 0, acts, acts);
    // How accurately the fills are known: each is a sum of products whose
    // magnitudes `|Dx| |A^-1 Dx^T|` (before cancellation) bound its
    // rounding, and `A^-1 Dx^T` itself carries `u cond(A_g)` relative error.
    // A projected group's pivots are T's and `eps` (its other directions).
    let cond = ldlt
        .diagnostics()
        .iter()
        .zip(&projections)
        .map(|(d, p)| match p {
            Some(_) => d.max_pivot.max(eps.abs()) / d.min_pivot.min(eps.abs()),
            None => d.cond_estimate,
        })
        .fold(1.0f64, f64::max);
    // The multipliers carry `u cond` relative error, and a projected
    // group's residual perturbs its block by `residual / ||A_g + eps I||`
    // relatively, which they amplify by `cond` alike.
    let perturbation = projections
        .iter()
        .zip(ldlt.diagnostics())
        .filter_map(|(p, d)| p.as_ref().map(|p| p.residual / d.max_pivot.max(eps.abs())))
        .fold(f64::EPSILON, f64::max);
    let kappa = (cond / 8.0 * perturbation / f64::EPSILON).max(1.0);
    symmetrize(zfill.as_mut());
    let mut fill = max_abs(zfill.as_ref());
    let mut z_scale = kappa * dx.max_row_norm * xdx_norm;
    let (p_l, a_in) = b.g.shape();
    let (mut g_solve, mut coupling, mut yfill) = (InputCoupling::Zero { params: p_l, inputs: 0 }, None, None);
    let mut y_scale = 0.0;
    if l > 0 {
        let mut c = b.dz.to_dense();
        scale = scale.max(max_abs(c.as_ref())).max(b.e.max_abs());
        if b.g.is_zero() {
            // No fills: `R`'s coupling is `Dz_l` itself, and the solves skip `G`.
            g_solve = InputCoupling::Zero { params: p_l, inputs: a_in };
        } else {
            // A dense layer's G through its units' factors, when its groups
            // are its units, G is large enough to gain ([`units::MIN_ENTRIES`]),
            // every pivot is non-zero (else the elimination is refused
            // anyway), and the factors are the formed block's.
            // Asked for only where the route may pay: the factors are copies.
            let large = p_l * a_in >= units::MIN_ENTRIES;
            let factors = if large { d.product(l).and_then(|p| p.unit_coupling()) } else { None };
            // (`agrees_with` also checks the factors' shape against `G`'s.)
            let units = factors.filter(|u| safe && units::units_are_groups(u, &members) && units::agrees_with(u, &b.g));
            let f = match units {
                Some(u) => {
                    let (p, a) = u.shape();
                    let f = units::fills(&u, &solver, &xdx, p * a < units::SOLVE_FACTORS_MIN, scratch)?;
                    g_solve = InputCoupling::Units(u);
                    f
                }
                None => fills::formed_fills(&b.g, safe.then_some(&solver), &members, &dx, &xdx, scratch)?,
            };
            if let Some(xg) = f.xg {
                g_solve = InputCoupling::Formed { m: xg, scale: f.xg_scale };
            }
            scale = scale.max(f.g_max);
            fill = fill.max(max_abs(f.y.as_ref())).max(max_abs(f.cf.as_ref()));
            // Every entry of a product `a b` sums magnitudes `|a| |b|` bounded
            // (Cauchy–Schwarz) by a row norm of `a` times a column norm of `b`.
            y_scale = kappa * f.g_col_norm * f.xg_col_norm;
            z_scale = z_scale.max(kappa * dx.max_row_norm * f.xg_col_norm);
            c -= &f.cf;
            yfill = Some(f.y);
        }
        coupling = Some(c);
    }
    scratch.recycle(dx);
    let growth = if safe { fill / scale } else { f64::INFINITY };
    Ok(Pieces {
        elim: LayerElimination { members, ldlt, inverses, xdx, g: g_solve, projections, eps },
        block,
        coupling,
        yfill,
        growth,
        cond,
        perturbation,
        z_scale,
        y_scale,
    })
}
