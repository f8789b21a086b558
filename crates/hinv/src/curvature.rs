//! [`Curvature`]: the derivative blocks of one network at one point on one
//! batch, computed once and reused for every product, `eps` and right-hand
//! side.

use std::sync::Arc;

use blockmat::Block;
use faer::reborrow::ReborrowMut;
use faer::{Mat, MatMut, MatRef};
use netgraph::{Batch, Derivatives, Network, Params};

use crate::error::{check_vector, HinvError, OverflowSite, Result};
use crate::factor::{FactorOptions, Factorization};

/// The curvature of a network's batch loss at given parameters.
///
/// Construction runs the forward and backward passes and computes every
/// layer's derivative blocks (`Dx, Dz, A, G, E`, see ALGORITHM.md) in
/// parallel. Everything after that — Hessian-vector products, factorizations
/// for any `eps`, eigenvalue counts — reuses them.
///
/// ```
/// use hinv::Curvature;
/// use netgraph::{Activation, Batch, Network};
///
/// let net = Network::builder(3).without_bias().dense(4, Activation::Tanh).repeat(2).cross_entropy(2)?;
/// let params = net.init_params(0);
/// let batch = Batch::random_classification(3, 2, 2, 1);
/// let curv = Curvature::new(&net, &params, &batch)?;
/// let g = curv.gradient().to_vec();
/// let f = curv.factor(1e-2)?;
/// let x = f.solve(&g)?;                 // (H + 0.01 I)^-1 g
/// let back = curv.hvp(&x)?;             // (H + 0.01 I) x should give g back
/// let err: f64 = back.iter().zip(&x).zip(&g)
///     .map(|((hx, xi), gi)| (hx + 1e-2 * xi - gi).abs()).fold(0.0, f64::max);
/// assert!(err < 1e-8);
/// # Ok::<(), hinv::HinvError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Curvature {
    /// Shared with every [`Factorization`], which refines its solves with
    /// the exact HVP.
    derivs: Arc<Derivatives>,
    /// For a Gauss–Newton curvature: the loss layer's outputs, Jacobians
    /// and `Lambda`, and the Woodbury route's `U = J^T R` once formed.
    ggn: Option<Arc<GgnParts>>,
}

/// What a Gauss–Newton curvature keeps besides its blocks.
#[derive(Debug)]
pub(crate) struct GgnParts {
    pub(crate) output: netgraph::OutputCurvature,
    pub(crate) u: std::sync::OnceLock<Arc<Mat<f64>>>,
}

/// Knobs of [`Curvature::new_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurvatureOptions {
    /// Refuse, before the passes, derivative blocks that would need more
    /// than this many bytes (`None`: the memory available when called).
    pub memory_limit: Option<u64>,
    /// The curvature: the Hessian (default) or the generalized Gauss–Newton
    /// matrix, whose products, factorizations, determinants and inertia
    /// then replace the Hessian's in every method.
    pub kind: crate::CurvatureKind,
}

/// Every block has the shape ALGORITHM.md gives it, for the sizes the
/// derivatives declare.
fn check_shapes(d: &Derivatives) -> Result<()> {
    let nl = d.layers.len();
    let bad = |layer: usize, block: &'static str, expected: (usize, usize), found: (usize, usize)| {
        HinvError::InconsistentBlocks { layer, block, expected, found }
    };
    if d.param_sizes.len() != nl || d.act_sizes.len() != nl + 1 {
        return Err(bad(0, "sizes (p_l per layer, a_0..a_L)", (nl, nl + 1), (d.param_sizes.len(), d.act_sizes.len())));
    }
    let p: usize = d.param_sizes.iter().sum();
    if d.gradient.len() != p {
        return Err(bad(0, "gradient", (p, 1), (d.gradient.len(), 1)));
    }
    for (l, blocks) in d.layers.iter().enumerate() {
        let (pl, a_in, a_out) = (d.param_sizes[l], d.act_sizes[l], d.act_sizes[l + 1]);
        let want = [(a_out, pl), (a_out, a_in), (pl, pl), (pl, a_in), (a_in, a_in)];
        for ((name, b), expected) in blocks.named().into_iter().zip(want) {
            if b.shape() != expected {
                return Err(bad(l + 1, name, expected, b.shape()));
            }
        }
    }
    Ok(())
}

/// Overflow in the passes (a deep network of squares, huge weights) shows as
/// a non-finite loss, gradient or block entry; catch it here, where it is
/// cheap, rather than return NaNs from every later product.
fn check_finite(d: &Derivatives) -> Result<()> {
    if !d.loss.is_finite() {
        return Err(HinvError::Overflow { what: OverflowSite::Loss, value: d.loss });
    }
    if let Some((index, &value)) = d.gradient.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(HinvError::Overflow { what: OverflowSite::Gradient { index }, value });
    }
    for (l, blocks) in d.layers.iter().enumerate() {
        for (name, b) in blocks.named() {
            if let Some(value) = b.first_non_finite() {
                return Err(HinvError::Overflow {
                    what: OverflowSite::DerivativeBlock { layer: l + 1, block: name },
                    value,
                });
            }
        }
    }
    Ok(())
}

impl Curvature {
    /// Runs the passes and computes all derivative blocks.
    pub fn new(net: &Network, params: &Params, batch: &Batch) -> Result<Curvature> {
        Curvature::new_with(net, params, batch, &CurvatureOptions::default())
    }

    /// [`Curvature::new`] with explicit options (a memory budget that does
    /// not depend on the machine's load).
    pub fn new_with(net: &Network, params: &Params, batch: &Batch, opts: &CurvatureOptions) -> Result<Curvature> {
        let limit = opts.memory_limit.unwrap_or_else(netgraph::memory::default_limit);
        match opts.kind {
            // Blocks and products straight from the network agree: keep
            // the products (from_derivatives cannot know that).
            crate::CurvatureKind::Hessian => Curvature::checked(net.derivatives_within(params, batch, limit)?),
            crate::CurvatureKind::GaussNewton => {
                // The hidden layers' products are in their Gauss–Newton form.
                let g = net.ggn_derivatives_within(params, batch, limit)?;
                let mut c = Curvature::checked(g.derivatives)?;
                c.ggn = Some(Arc::new(GgnParts { output: g.output, u: std::sync::OnceLock::new() }));
                Ok(c)
            }
        }
    }

    /// Which curvature this is (blocks wrapped by
    /// [`Curvature::from_derivatives`] count as a Hessian).
    pub fn kind(&self) -> crate::CurvatureKind {
        if self.ggn.is_some() {
            crate::CurvatureKind::GaussNewton
        } else {
            crate::CurvatureKind::Hessian
        }
    }

    /// The loss layer's outputs, Jacobians and `Lambda` of a Gauss–Newton
    /// curvature.
    pub fn output_curvature(&self) -> Option<&netgraph::OutputCurvature> {
        self.ggn.as_deref().map(|g| &g.output)
    }

    pub(crate) fn ggn_parts(&self) -> Option<&GgnParts> {
        self.ggn.as_deref()
    }

    /// Wraps derivative blocks computed elsewhere (for instance by a
    /// user-defined [`netgraph::Layer`]), after the checks [`Curvature::new`]
    /// makes: every block's shape against the sizes `a_0..a_L`,
    /// `p_1..p_L` and the gradient's length ([`HinvError::InconsistentBlocks`]),
    /// and finiteness ([`HinvError::Overflow`]). Nothing later indexes a
    /// block with sizes it does not have.
    ///
    /// Their products read the blocks as given: the matrix-free products
    /// the network computed with them ([`Derivatives::product`]) are
    /// dropped, since a block may have been changed since.
    pub fn from_derivatives(mut derivs: Derivatives) -> Result<Curvature> {
        derivs.forget_products();
        Curvature::checked(derivs)
    }

    fn checked(derivs: Derivatives) -> Result<Curvature> {
        check_shapes(&derivs)?;
        check_finite(&derivs)?;
        Ok(Curvature { derivs: Arc::new(derivs), ggn: None })
    }

    /// The derivative blocks.
    pub fn derivatives(&self) -> &Derivatives {
        &self.derivs
    }

    /// Number of parameters `p = sum_l p_l`.
    pub fn num_params(&self) -> usize {
        self.derivs.param_sizes.iter().sum()
    }

    /// Number of layers `L` (the fused loss layer included).
    pub fn num_layers(&self) -> usize {
        self.derivs.layers.len()
    }

    /// The batch loss at the current parameters.
    pub fn loss(&self) -> f64 {
        self.derivs.loss
    }

    /// The gradient of the batch loss, flattened as the parameters.
    pub fn gradient(&self) -> &[f64] {
        &self.derivs.gradient
    }

    /// `H v`, for one vector.
    pub fn hvp(&self, v: &[f64]) -> Result<Vec<f64>> {
        let out = self.hvp_many(MatRef::from_column_major_slice(v, v.len(), 1))?;
        Ok(out.col(0).iter().copied().collect())
    }

    /// `H V` for a matrix of columns, in Pearlmutter's form (ALGORITHM.md):
    /// one forward sweep `t = M^-1 Dx v` and one backward sweep with `M^T`,
    /// linear in depth and never forming `H`.
    pub fn hvp_many(&self, v: MatRef<'_, f64>) -> Result<Mat<f64>> {
        hvp_many(&self.derivs, v)
    }

    /// Factors the lifted system of `H + eps I` (ALGORITHM.md), with the
    /// default options: a singular `H + eps I` is an error.
    pub fn factor(&self, eps: f64) -> Result<Factorization> {
        self.factor_with(eps, &FactorOptions::default())
    }

    /// Factors the lifted system of `H + eps I` with explicit options.
    pub fn factor_with(&self, eps: f64, opts: &FactorOptions) -> Result<Factorization> {
        Factorization::new(Arc::clone(&self.derivs), eps, opts)
    }

    /// The number of eigenvalues of `H` strictly below `t`, from one
    /// factorization of `H - t I` (Sylvester's law of inertia), with the
    /// factorization's certificate: the exact count lies within
    /// `uncertain` of `count` (see [`Factorization::inertia`]).
    /// Eigenvalues equal to `t` exactly are not counted.
    pub fn count_eigenvalues_below(&self, t: f64) -> Result<EigenvalueCount> {
        self.count_eigenvalues_below_with(t, &FactorOptions::default())
    }

    /// [`Curvature::count_eigenvalues_below`] with explicit factor options
    /// (the elimination, the memory limit; `allow_singular` is always
    /// set): for example [`crate::Elimination::Interleaved`], which checks
    /// a count that the default elimination may leave uncertain on wide
    /// layers.
    pub fn count_eigenvalues_below_with(&self, t: f64, opts: &FactorOptions) -> Result<EigenvalueCount> {
        if !t.is_finite() {
            return Err(HinvError::InvalidNumber { what: "the threshold", value: t, expected: "a finite number" });
        }
        let opts = FactorOptions { allow_singular: true, ..opts.clone() };
        let i = self.factor_with(-t, &opts)?.inertia();
        Ok(EigenvalueCount { count: i.negative, uncertain: i.uncertain })
    }

    /// The lifted 3x3 grid `K` of ALGORITHM.md (layer-structured blocks),
    /// for pictures and checks; the solver uses [`Curvature::lifted_tridiag`].
    pub fn lifted_grid(&self, eps: f64) -> Result<Block> {
        crate::lifted::lifted_grid(&self.derivs, eps)
    }

    /// The interleaved symmetric block-tridiagonal system `K'`.
    pub fn lifted_tridiag(&self, eps: f64) -> Result<blockmat::Tridiag> {
        crate::lifted::lifted_tridiag(&self.derivs, eps)
    }
}

/// How many eigenvalues of `H` lie below a threshold, and how sure that is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EigenvalueCount {
    /// The count read off the factorization.
    pub count: usize,
    /// The exact count lies in `count - uncertain ..= count + uncertain`
    /// (0: certified).
    pub uncertain: usize,
}

/// Column `j` of `m`, whose rows are contiguous (an owned matrix, or a
/// view with unit row stride).
fn col<'a>(m: MatRef<'a, f64>, j: usize) -> &'a [f64] {
    m.col(j).try_as_col_major().expect("a view with unit row stride").as_slice()
}

/// Column `j` of `m`, writable (a view of an owned matrix).
fn col_mut<'a>(m: MatMut<'a, f64>, j: usize) -> &'a mut [f64] {
    m.col_mut(j).try_as_col_major_mut().expect("a view with unit row stride").as_slice_mut()
}

/// `H V` in Pearlmutter's form (ALGORITHM.md): one forward sweep
/// `t = M^-1 Dx v` and one backward sweep with `M^T`, linear in depth.
/// A layer with matrix-free products ([`Derivatives::product`]) is
/// multiplied from its weights and activations, column by column; any
/// other through its blocks.
pub(crate) fn hvp_many(d: &Derivatives, v: MatRef<'_, f64>) -> Result<Mat<f64>> {
    let p: usize = d.param_sizes.iter().sum();
    check_vector("the vector to multiply", v, p)?;
    let nl = d.layers.len();
    let k = v.ncols();
    // The products read columns as slices.
    let owned;
    let v = if v.row_stride() == 1 || k == 0 {
        v
    } else {
        owned = v.to_owned();
        owned.as_ref()
    };
    let offs = blockmat::offsets(&d.param_sizes);
    let vl = |l: usize| v.subrows(offs[l], d.param_sizes[l]);
    let scratch_len = (0..nl).filter_map(|l| d.product(l)).map(|m| m.scratch_len()).max().unwrap_or(0);
    let mut scratch = vec![0.0; scratch_len];

    // Forward: t_l = Dx_l v_l + Dz_l t_{l-1}, every layer's in one buffer
    // (an HVP runs once per refinement step and per Krylov iteration: no
    // allocation per layer).
    let toffs = blockmat::offsets(&d.act_sizes[1..=nl]);
    let mut t_all = Mat::<f64>::zeros(toffs[nl], k);
    for l in 0..nl {
        let blocks = &d.layers[l];
        let (prev, tl) = t_all.as_mut().split_at_row_mut(toffs[l]);
        let mut tl = tl.subrows_mut(0, d.act_sizes[l + 1]);
        let t_prev = (l > 0).then(|| prev.as_ref().subrows(toffs[l - 1], d.act_sizes[l]));
        match d.product(l) {
            Some(m) => {
                for j in 0..k {
                    m.tangent(col(vl(l), j), t_prev.map(|t| col(t, j)), col_mut(tl.rb_mut(), j), &mut scratch);
                }
            }
            None => {
                blocks.dx.mul_add_to(tl.rb_mut(), vl(l), 1.0)?;
                if let Some(t_prev) = t_prev {
                    blocks.dz.mul_add_to(tl, t_prev, 1.0)?;
                }
            }
        }
    }
    let t = |l: usize| t_all.as_ref().subrows(toffs[l], d.act_sizes[l + 1]);

    // Backward: s_L = 0, s_{l-1} = G_l^T v_l + E_l t_{l-1} + Dz_l^T s_l,
    // in two buffers used in turn.
    let mut out = Mat::zeros(p, k);
    let widest = d.act_sizes.iter().copied().max().unwrap_or(0);
    let (mut s_buf, mut prev_buf) = (Mat::<f64>::zeros(widest, k), Mat::<f64>::zeros(widest, k));
    let mut s_len = d.act_sizes[nl];
    for l in (0..nl).rev() {
        let blocks = &d.layers[l];
        let s = s_buf.as_ref().subrows(0, s_len);
        let mut hv = out.as_mut().subrows_mut(offs[l], d.param_sizes[l]);
        let mut prev = prev_buf.as_mut().subrows_mut(0, d.act_sizes[l]);
        let t_prev = (l > 0).then(|| t(l - 1));
        match d.product(l) {
            Some(m) => {
                for j in 0..k {
                    let s_in = (l > 0).then(|| col_mut(prev.rb_mut(), j));
                    m.adjoint(
                        col(vl(l), j),
                        t_prev.map(|t| col(t, j)),
                        col(s, j),
                        col_mut(hv.rb_mut(), j),
                        s_in,
                        &mut scratch,
                    );
                }
            }
            None => {
                blocks.a.mul_add_to(hv.rb_mut(), vl(l), 1.0)?;
                blocks.dx.tmul_add_to(hv.rb_mut(), s, 1.0)?;
                if let Some(t_prev) = t_prev {
                    blocks.g.mul_add_to(hv.rb_mut(), t_prev, 1.0)?;
                    prev.fill(0.0);
                    blocks.g.tmul_add_to(prev.rb_mut(), vl(l), 1.0)?;
                    blocks.e.mul_add_to(prev.rb_mut(), t_prev, 1.0)?;
                    blocks.dz.tmul_add_to(prev.rb_mut(), s, 1.0)?;
                }
            }
        }
        if l > 0 {
            std::mem::swap(&mut s_buf, &mut prev_buf);
            s_len = d.act_sizes[l];
        }
    }
    Ok(out)
}
