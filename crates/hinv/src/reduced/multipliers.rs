//! The multipliers `A_l^-1 Dx_l^T` of one layer, stored group by group.
//!
//! A row of `Dx_l` (one activation of the layer) touches the parameters of
//! few groups: for a dense layer, activation `(s, k)` depends on unit
//! `k`'s weights and bias only. So `A_g^-1 Dx_l^T` is non-zero on the rows
//! of `Dx_l` that touch group `g` (a unit's `batch` rows) and is stored as
//! an `n_g x |rows_g|` matrix: `1 / out` of the dense `p_l x a_l` one, and
//! the products that read it (the fill `Dx A^-1 Dx^T`, the coupling
//! `Dx A^-1 G`, both sweeps of every solve) shrink by as much. A layer
//! without that structure (a user layer, the loss) has one group touching
//! every row, which is the dense matrix again.

use blockmat::{reduce, Block};
use faer::linalg::matmul::matmul;
use faer::reborrow::IntoConst;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use tridiag::TridiagError;

use super::group_solver::GroupSolver;
use super::pack::{MatPack, Ragged};

/// `Dx_l` seen group by group: the rows with a non-zero in each group's
/// columns, and `Dx_l` on those rows and columns. Read from the layer's
/// block a group's columns at a time, so a structured `Dx_l` (a wide layer
/// stores one row vector per sample and unit) is never formed densely.
#[derive(Debug)]
pub(super) struct DxPieces {
    /// `a_l`.
    acts: usize,
    /// For each group, the rows of `Dx_l` touching it.
    rows: Ragged,
    /// For each group, `Dx_l[rows_g, g]` (`|rows_g| x n_g`).
    d: MatPack,
    /// Largest `|Dx_l[i, j]|`.
    pub(super) max_abs: f64,
    /// Largest row norm of `Dx_l`.
    pub(super) max_row_norm: f64,
}

/// The buffers [`DxPieces::of`] works in, kept in the [`Scratch`] from
/// layer to layer instead of allocated per layer: a column chunk, the
/// rows' squared norms, the touched rows and their mask, and the storage
/// of the pieces themselves, which [`Scratch::recycle`] takes back once
/// the layer's elimination is done with them.
#[derive(Debug, Default)]
pub(super) struct DxWork {
    chunk: Vec<f64>,
    row_sq: Vec<f64>,
    touched: Vec<usize>,
    mark: Vec<f64>,
    d: MatPack,
}

impl DxPieces {
    /// The pieces of `dx` (`a_l x p_l`) for groups `members`, built in the
    /// buffers `scratch` keeps for them.
    pub(super) fn of(dx: &Block, members: &Ragged, scratch: &mut Scratch) -> Result<DxPieces, TridiagError> {
        let acts = dx.nrows();
        let DxWork { chunk, row_sq, touched, mark, d } = &mut scratch.dx_work;
        let widest = members.widest();
        chunk.clear();
        chunk.resize(acts * widest, 0.0);
        let mut chunk = MatMut::from_column_major_slice_mut(chunk, acts, widest);
        row_sq.clear();
        row_sq.resize(acts, 0.0);
        // Sized for a dense layer, whose every activation touches one
        // group: the lists hold `a_l` rows, the pieces `p_l a_l / groups`
        // numbers (other layers grow them).
        let groups = members.len().max(1);
        let mut rows = Ragged::with_capacity(acts, members.len());
        let mut d = std::mem::take(d);
        d.clear();
        d.reserve(members.entries() * acts / groups, members.len());
        touched.clear();
        let mut max_abs = 0.0f64;
        // 1.0 for a row with a non-zero (or NaN) entry in the group's
        // columns: an f64 mask, which the compiler vectorises over a
        // column. With a bool mask `DxPieces::of` took 15.1M instead of
        // 12.3M instructions at L16 h32 B2 (callgrind, `one_solve 16 32 2`),
        // whose every group scans all 64 rows of its 32 columns.
        mark.clear();
        mark.resize(acts, 0.0);
        for cols in members.iter() {
            // A dense Dx's consecutive columns (a unit without a bias) are
            // read where they are: `push_gathered` copies the touched rows
            // anyway, so a copy of the whole columns first was pure cost.
            // Other groups' columns are copied out in a few runs (a unit's
            // weights, then its bias), each written in one call.
            let in_place = dx.as_dense().zip(consecutive(cols)).filter(|(m, first)| first + cols.len() <= m.ncols());
            let src = match in_place {
                Some((m, first)) => m.as_ref().subcols(first, cols.len()),
                None => {
                    let mut chunk = chunk.as_mut().subcols_mut(0, cols.len());
                    let mut at = 0;
                    while at < cols.len() {
                        let run = cols[at..].iter().enumerate().take_while(|&(k, &c)| c == cols[at] + k).count();
                        let dst = chunk.as_mut().subcols_mut(at, run);
                        dx.write_columns_to(cols[at], dst).map_err(|_| TridiagError::ShapeMismatch {
                            op: "Dx columns of a parameter group",
                            expected: (acts, cols[at] + run),
                            found: dx.shape(),
                        })?;
                        at += run;
                    }
                    chunk.into_const()
                }
            };
            let set = |(f, v): (&mut f64, &f64)| *f = if *v != 0.0 { 1.0 } else { *f };
            for j in 0..cols.len() {
                // Columns of an owned matrix are slices (faer's element
                // iterator costs several times more).
                match src.col(j).try_as_col_major() {
                    Some(col) => mark.iter_mut().zip(col.as_slice()).for_each(set),
                    None => mark.iter_mut().zip(src.col(j).iter()).for_each(set),
                }
            }
            touched.clear();
            touched.extend((0..acts).filter(|&i| mark[i] != 0.0));
            mark.iter_mut().for_each(|f| *f = 0.0);
            d.push_gathered(src, touched);
            let piece = d.get(d.len() - 1).expect("just pushed");
            for (a, &r) in touched.iter().enumerate() {
                row_sq[r] += piece.row(a).squared_norm_l2();
            }
            max_abs = max_abs.max(reduce::max_abs(piece));
            rows.push(touched);
        }
        let max_row_norm = row_sq.iter().fold(0.0f64, |m, &v| m.max(v)).sqrt();
        Ok(DxPieces { acts, rows, d, max_abs, max_row_norm })
    }

    /// Group `g`'s piece: `Dx_l` on the rows touching it and its columns.
    pub(super) fn piece(&self, g: usize) -> MatRef<'_, f64> {
        self.d.get(g).expect("one piece per group")
    }
}

/// Two buffers for the group-by-group products of a solve or an
/// elimination (a group's parameters, or its rows of `Dx`), allocated once
/// for all layers: a solve sizes them for its widest layer, an
/// elimination's grow to the largest `rows x k` a run of layers asks for.
pub(super) struct Scratch {
    a: Vec<f64>,
    b: Vec<f64>,
    /// Rows of the matrices the buffers are seen as.
    rows: usize,
    /// The units' route's buffer: its products in an elimination
    /// ([`super::units::fills`], which overwrites them whole) and `A^-1 G y`
    /// in a solve (cleared there); grown, never cleared here.
    units: Vec<f64>,
    /// [`DxPieces::of`]'s buffers.
    dx_work: DxWork,
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch::new(0, 0)
    }
}

impl Scratch {
    /// Room for groups of up to `width` parameters or rows, `k` columns.
    pub(super) fn new(width: usize, k: usize) -> Scratch {
        Scratch {
            a: vec![0.0; width * k],
            b: vec![0.0; width * k],
            rows: width,
            units: Vec::new(),
            dx_work: DxWork::default(),
        }
    }

    /// Makes room for groups of up to `width` rows, `k` columns: the
    /// buffers grow to the largest product asked for (not to the largest
    /// rows times the largest columns, which a wide first layer and a
    /// large batch would make huge).
    pub(super) fn reserve(&mut self, width: usize, k: usize) -> &mut Scratch {
        let len = width * k;
        for v in [&mut self.a, &mut self.b] {
            if v.len() < len {
                v.resize(len, 0.0);
            }
        }
        self.rows = width;
        self
    }

    /// A buffer of `len` entries for the units' route, holding whatever a
    /// previous layer left there.
    pub(super) fn units(&mut self, len: usize) -> &mut [f64] {
        if self.units.len() < len {
            self.units.resize(len, 0.0);
        }
        &mut self.units[..len]
    }

    /// The units' buffer taken out, at least `len` entries long (holding
    /// whatever was left there), so that the group solves can use the
    /// rest of the scratch meanwhile; [`Scratch::restore_units`] puts it
    /// back.
    pub(super) fn take_units(&mut self, len: usize) -> Vec<f64> {
        let mut v = std::mem::take(&mut self.units);
        if v.len() < len {
            v.resize(len, 0.0);
        }
        v
    }

    /// Takes back the storage of a layer's [`DxPieces`] for the next
    /// layer's ([`DxWork`]).
    pub(super) fn recycle(&mut self, dx: DxPieces) {
        self.dx_work.d = dx.d;
    }

    /// Puts back a buffer of [`Scratch::take_units`].
    pub(super) fn restore_units(&mut self, v: Vec<f64>) {
        self.units = v;
    }

    /// The two buffers as `width x k` matrices (`width` of the last
    /// [`Scratch::reserve`] or [`Scratch::new`]).
    pub(super) fn pair(&mut self, k: usize) -> (MatMut<'_, f64>, MatMut<'_, f64>) {
        let n = self.rows * k;
        (
            MatMut::from_column_major_slice_mut(&mut self.a[..n], self.rows, k),
            MatMut::from_column_major_slice_mut(&mut self.b[..n], self.rows, k),
        )
    }
}

/// `A_l^-1 Dx_l^T`, group by group.
#[derive(Debug)]
pub(super) struct Multipliers {
    /// `a_l`, the rows of `Dx_l`.
    acts: usize,
    /// For each group, the rows of `Dx_l` with a non-zero in its columns.
    rows: Ragged,
    /// For each group, `A_g^-1 Dx_l[rows_g, g]^T` (`n_g x |rows_g|`).
    x: MatPack,
}

/// The multipliers and the error scale of what they fill into `R`.
pub(super) struct Built {
    pub(super) multipliers: Multipliers,
    /// Largest column norm of the dense `A_l^-1 Dx_l^T` (the error bound
    /// of the fill).
    pub(super) max_col_norm: f64,
}

impl Multipliers {
    /// The multipliers of `dx`'s pieces through `solver`; zero without
    /// one (a group's pivot is zero: the elimination is refused anyway).
    /// The rows of each group move from `dx` into the multipliers, and
    /// `Dx_l A_l^-1 Dx_l^T` is added to `zfill` (`a_l x a_l`; `R`'s
    /// block itself, so that the fill is not copied there), not yet
    /// symmetrised.
    pub(super) fn build(
        dx: &mut DxPieces,
        solver: Option<&GroupSolver<'_>>,
        buffers: &mut Scratch,
        mut zfill: MatMut<'_, f64>,
    ) -> Result<Built, TridiagError> {
        let (acts, rows) = (dx.acts, std::mem::take(&mut dx.rows));
        let mut col_sq = vec![0.0f64; acts];
        let widest = rows.widest();
        let params = (0..dx.d.len()).filter_map(|g| dx.d.get(g)).map(|d| d.ncols()).max().unwrap_or(0);
        let mut x = MatPack::with_capacity(dx.d.entries(), rows.len());
        let (mut z, mut scratch) = buffers.reserve(widest.max(params), widest).pair(widest);
        for (g, rows) in rows.iter().enumerate() {
            let d = dx.d.get(g).expect("one piece per group");
            x.push(d.transpose());
            let mut xg = x.get_mut(g).expect("just pushed");
            match solver {
                Some(s) => s.solve_with(g, xg.as_mut(), scratch.as_mut().subrows_mut(0, params))?,
                None => xg.fill(0.0),
            }
            let xg = xg.into_const();
            let mut z = z.as_mut().submatrix_mut(0, 0, rows.len(), rows.len());
            matmul(z.as_mut(), Accum::Replace, d, xg, 1.0, Par::Seq);
            for (k, &rk) in rows.iter().enumerate() {
                for (i, &ri) in rows.iter().enumerate() {
                    zfill[(ri, rk)] += z[(i, k)];
                }
                col_sq[rk] += reduce::sum_sq(xg.col(k).as_mat());
            }
        }
        let max_col_norm = col_sq.into_iter().fold(0.0f64, f64::max).sqrt();
        Ok(Built { multipliers: Multipliers { acts, rows, x }, max_col_norm })
    }

    /// `a_l`.
    pub(super) fn acts(&self) -> usize {
        self.acts
    }

    /// `Dx_l m` (`a_l x k`) for `m` with the layer's `p_l` rows, group by
    /// group on the rows each touches (the same as the multipliers'): the
    /// coupling fill `Dx A^-1 G`.
    pub(super) fn dx_times(
        &self,
        dx: &DxPieces,
        members: &Ragged,
        m: MatRef<'_, f64>,
        scratch: &mut Scratch,
    ) -> Mat<f64> {
        let k = m.ncols();
        let mut out = Mat::<f64>::zeros(self.acts, k);
        let (mut mr, mut t) = scratch.reserve(members.widest().max(self.widest_rows()), k).pair(k);
        for (g, (cols, rows)) in members.iter().zip(self.rows.iter()).enumerate() {
            let d = dx.d.get(g).expect("one piece per group");
            let mr = rows_of(m, cols, mr.as_mut());
            let mut t = t.as_mut().subrows_mut(0, rows.len());
            matmul(t.as_mut(), Accum::Replace, d, mr, 1.0, Par::Seq);
            scatter_rows(t.as_ref(), rows, out.as_mut(), 1.0);
        }
        out
    }

    /// `r <- r - (A^-1 Dx^T)^T g`: `g` has the layer's `p_l` rows, `r` its
    /// `a_l` (the right-hand side of `R`'s `z_l` unknowns).
    pub(super) fn sub_transposed(
        &self,
        members: &Ragged,
        g: MatRef<'_, f64>,
        mut r: MatMut<'_, f64>,
        scratch: &mut Scratch,
    ) {
        let (mut gg, mut t) = scratch.pair(g.ncols());
        for (i, (cols, rows)) in members.iter().zip(self.rows.iter()).enumerate() {
            let x = self.x.get(i).expect("one multiplier per group");
            let gg = rows_of(g, cols, gg.as_mut());
            let mut t = t.as_mut().subrows_mut(0, rows.len());
            matmul(t.as_mut(), Accum::Replace, x.transpose(), gg, 1.0, Par::Seq);
            scatter_rows(t.as_ref(), rows, r.as_mut(), -1.0);
        }
    }

    /// `x <- x - (A^-1 Dx^T) r`: `r` has the layer's `a_l` rows (the
    /// solution of `R`'s `z_l` unknowns), `x` its `p_l`.
    pub(super) fn sub(&self, members: &Ragged, r: MatRef<'_, f64>, mut out: MatMut<'_, f64>, scratch: &mut Scratch) {
        let (mut t, mut rr) = scratch.pair(r.ncols());
        for (i, (cols, rows)) in members.iter().zip(self.rows.iter()).enumerate() {
            let x = self.x.get(i).expect("one multiplier per group");
            let mut rr = rr.as_mut().subrows_mut(0, rows.len());
            gather_rows(r, rows, rr.as_mut());
            let mut t = t.as_mut().subrows_mut(0, cols.len());
            matmul(t.as_mut(), Accum::Replace, x, rr.as_ref(), 1.0, Par::Seq);
            scatter_rows(t.as_ref(), cols, out.as_mut(), -1.0);
        }
    }

    /// Each group's rows of `Dx_l` and its multipliers `A_g^-1 Dx_l[rows, g]^T`.
    pub(super) fn groups(&self) -> impl Iterator<Item = (&[usize], MatRef<'_, f64>)> + '_ {
        self.rows.iter().enumerate().map(|(g, rows)| (rows, self.x.get(g).expect("one multiplier per group")))
    }

    /// Numbers stored: each group's parameters times the rows it touches.
    pub(super) fn entries(&self) -> usize {
        self.x.entries()
    }

    /// The most rows of `Dx` a group touches.
    pub(super) fn widest_rows(&self) -> usize {
        self.rows.widest()
    }
}

/// The first of `rows` when they are consecutive (a dense layer's unit
/// without a bias): such a group is a view, not a copy.
pub(super) fn consecutive(rows: &[usize]) -> Option<usize> {
    rows.first().copied().filter(|_| rows.windows(2).all(|w| w[1] == w[0] + 1))
}

/// `m[rows, :]`: a view of `m` when the rows are consecutive, else gathered
/// into `buf` (which has room for them).
fn rows_of<'a>(m: MatRef<'a, f64>, rows: &[usize], buf: MatMut<'a, f64>) -> MatRef<'a, f64> {
    if let Some(first) = consecutive(rows) {
        return m.subrows(first, rows.len());
    }
    let mut buf = buf.subrows_mut(0, rows.len());
    gather_rows(m, rows, buf.as_mut());
    buf.into_const()
}

/// `out <- m[rows, :]`, column by column (a row of a column-major matrix
/// is strided, and faer's row copy costs more per entry than this loop).
pub(super) fn gather_rows(m: MatRef<'_, f64>, rows: &[usize], mut out: MatMut<'_, f64>) {
    let walk = Walk::of(rows, m.ncols());
    for j in 0..m.ncols() {
        match (m.col(j).try_as_col_major(), out.as_mut().col_mut(j).try_as_col_major_mut()) {
            (Some(src), Some(dst)) if matches!(walk, Walk::Entries) => {
                let (src, dst) = (src.as_slice(), dst.as_slice_mut());
                dst.iter_mut().zip(rows).for_each(|(d, &i)| *d = src[i]);
            }
            (Some(src), Some(dst)) => {
                let (src, dst) = (src.as_slice(), dst.as_slice_mut());
                walk.each_run(rows, |a, i, len| dst[a..a + len].copy_from_slice(&src[i..i + len]));
            }
            _ => rows.iter().enumerate().for_each(|(a, &i)| out[(a, j)] = m[(i, j)]),
        }
    }
}

/// `out[rows, :] <- t`.
pub(super) fn put_rows(t: MatRef<'_, f64>, rows: &[usize], out: MatMut<'_, f64>) {
    update_rows(t, rows, out, |o, v| *o = v);
}

/// `out[rows, :] += alpha t`.
fn scatter_rows(t: MatRef<'_, f64>, rows: &[usize], out: MatMut<'_, f64>, alpha: f64) {
    update_rows(t, rows, out, |o, v| *o += alpha * v);
}

/// `f(out[rows[a], j], t[a, j])` for every entry of `t`, a run of
/// consecutive rows at a time.
fn update_rows(t: MatRef<'_, f64>, rows: &[usize], mut out: MatMut<'_, f64>, f: impl Fn(&mut f64, f64)) {
    let walk = Walk::of(rows, t.ncols());
    for j in 0..t.ncols() {
        match (t.col(j).try_as_col_major(), out.as_mut().col_mut(j).try_as_col_major_mut()) {
            (Some(src), Some(dst)) if matches!(walk, Walk::Entries) => {
                let (src, dst) = (src.as_slice(), dst.as_slice_mut());
                rows.iter().zip(src).for_each(|(&i, &v)| f(&mut dst[i], v));
            }
            (Some(src), Some(dst)) => {
                let (src, dst) = (src.as_slice(), dst.as_slice_mut());
                walk.each_run(rows, |a, i, len| {
                    dst[i..i + len].iter_mut().zip(&src[a..a + len]).for_each(|(o, &v)| f(o, v))
                });
            }
            _ => rows.iter().enumerate().for_each(|(a, &i)| f(&mut out[(i, j)], t[(a, j)])),
        }
    }
}

/// Most runs [`Walk`] keeps: a dense layer's unit has one or two (its
/// weights, its bias).
const RUNS_KEPT: usize = 8;

/// How the row copies walk a list of rows in every column: entry by entry
/// when its runs of consecutive indices are short (under four on average:
/// a dense layer's unit touches rows `s * out + k`, one sample apart), else
/// run by run, the runs found once per call rather than once per column
/// (a unit with a bias is read for each of the `a_{l-1}` columns of `G`).
enum Walk {
    Entries,
    Runs {
        table: [(usize, usize, usize); RUNS_KEPT],
        count: usize,
    },
    /// One column, or more runs than the table keeps: found as they are
    /// walked, for every column.
    RunsPerColumn,
}

impl Walk {
    /// The walk over `rows` in each of `columns` columns.
    fn of(rows: &[usize], columns: usize) -> Walk {
        let breaks = rows.windows(2).filter(|w| w[1] != w[0] + 1).count();
        if 4 * (breaks + 1) > rows.len() {
            return Walk::Entries;
        }
        if columns < 2 {
            return Walk::RunsPerColumn;
        }
        let mut table = [(0, 0, 0); RUNS_KEPT];
        for (count, run) in runs(rows).enumerate() {
            let Some(slot) = table.get_mut(count) else { return Walk::RunsPerColumn };
            *slot = run;
        }
        Walk::Runs { table, count: breaks + 1 }
    }

    /// `f(position in rows, first index, length)` for every run of `rows`
    /// (the list [`Walk::of`] saw), when not [`Walk::Entries`].
    fn each_run(&self, rows: &[usize], mut f: impl FnMut(usize, usize, usize)) {
        match self {
            Walk::Runs { table, count } => table[..*count].iter().for_each(|&(a, i, len)| f(a, i, len)),
            _ => runs(rows).for_each(|(a, i, len)| f(a, i, len)),
        }
    }
}

/// The maximal runs of consecutive indices in `rows`, as `(position in
/// rows, first index, length)`: a dense layer's unit is its weights (one
/// run) and its bias.
fn runs(rows: &[usize]) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let mut a = 0;
    std::iter::from_fn(move || {
        let &first = rows.get(a)?;
        let len = rows[a..].iter().enumerate().take_while(|&(k, &i)| i == first + k).count();
        a += len;
        Some((a - len, first, len))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch reused by layers of different shapes grows to the largest
    /// `rows x k` asked for, not to the largest rows times the largest
    /// columns, and always shows the shape last reserved.
    #[test]
    fn scratch_grows_to_the_largest_request() {
        let mut s = Scratch::default();
        let (a, b) = s.reserve(786, 2).pair(2);
        assert_eq!((a.shape(), b.shape()), ((786, 2), (786, 2)));
        let (mut a, b) = s.reserve(10, 1000).pair(1000);
        assert_eq!((a.shape(), b.shape()), ((10, 1000), (10, 1000)));
        a[(9, 999)] = 1.0;
        assert_eq!((s.a.len(), s.b.len()), (10_000, 10_000));
        let (a, _) = s.reserve(3, 4).pair(4);
        assert_eq!(a.shape(), (3, 4));
        assert_eq!(s.a.len(), 10_000);
    }

    /// The run-wise copies against entry-wise indexing, on owned matrices
    /// and on transposed (row-major) views, for rows in runs (one, two as a
    /// unit with a bias, more than `Walk` keeps), scattered and out of order
    /// (no row twice, as a group's rows never repeat).
    #[test]
    fn row_copies_match_indexing() {
        let m = Mat::<f64>::from_fn(48, 3, |i, j| (100 * i + j) as f64);
        let mt = m.transpose().to_owned();
        let unit_with_bias: Vec<usize> = (0..32).chain([45]).collect();
        let nine_runs: Vec<usize> = (0..9).flat_map(|r| 5 * r..5 * r + 4).collect();
        assert!(matches!(Walk::of(&unit_with_bias, 3), Walk::Runs { count: 2, .. }));
        assert!(matches!(Walk::of(&unit_with_bias, 1), Walk::RunsPerColumn));
        assert!(matches!(Walk::of(&nine_runs, 3), Walk::RunsPerColumn));
        assert!(matches!(Walk::of(&[0, 3, 6], 3), Walk::Entries));
        for rows in [
            unit_with_bias.clone(),
            nine_runs.clone(),
            vec![],
            vec![4],
            vec![0, 1, 2, 7, 8],
            vec![5, 3, 4, 0],
            vec![2, 3, 4, 5, 6, 7, 8, 0, 1],
            vec![0, 3, 6],
            vec![1, 2, 3, 4, 5, 6, 7, 8],
        ] {
            for src in [m.as_ref(), mt.as_ref().transpose()] {
                let mut got = Mat::<f64>::zeros(rows.len(), 3);
                gather_rows(src, &rows, got.as_mut());
                assert_eq!(got, Mat::from_fn(rows.len(), 3, |a, j| m[(rows[a], j)]));
                // A view for consecutive rows, a gathered copy otherwise: the same rows.
                let mut buf = Mat::<f64>::from_fn(48, 3, |_, _| f64::NAN);
                assert_eq!(rows_of(src, &rows, buf.as_mut()).to_owned(), got);
                let want = match rows.as_slice() {
                    [4] => Some(4),
                    [1, 2, 3, 4, 5, 6, 7, 8] => Some(1),
                    _ => None,
                };
                assert_eq!(consecutive(&rows), want, "{rows:?}");
                let t = Mat::<f64>::from_fn(rows.len(), 3, |a, j| (a + 100 * j) as f64 + 0.5);
                let (mut put, mut scattered) = (m.clone(), m.clone());
                let mut put_t = mt.clone();
                put_rows(t.as_ref(), &rows, put.as_mut());
                put_rows(t.as_ref(), &rows, put_t.as_mut().transpose_mut());
                scatter_rows(t.as_ref(), &rows, scattered.as_mut(), -2.0);
                let (mut want_put, mut want_scattered) = (m.clone(), m.clone());
                for (a, &i) in rows.iter().enumerate() {
                    for j in 0..3 {
                        want_put[(i, j)] = t[(a, j)];
                        want_scattered[(i, j)] += -2.0 * t[(a, j)];
                    }
                }
                assert_eq!(put, want_put);
                assert_eq!(put_t.transpose().to_owned(), want_put);
                assert_eq!(scattered, want_scattered);
            }
        }
    }
}
