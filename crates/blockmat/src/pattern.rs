//! Pictures of where a matrix is non-zero: text for small matrices, SVG
//! for any size.

use std::io;

use faer::MatRef;

use crate::block::{offsets, Block, Side};

/// The non-zero map of a matrix, one flag per entry.
///
/// Built by [`Block::pattern`]: an entry is non-zero when the leaf that
/// holds it says so: zero leaves and zero-scaled identities contribute
/// nothing, and dense entries that are exactly `0.0` count as zero. Every
/// entry belongs to exactly one leaf, so there is no cancellation to miss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    rows: usize,
    cols: usize,
    /// Row-major flags.
    bits: Vec<bool>,
}

/// Options of [`Pattern::write_svg`].
#[derive(Debug, Clone, PartialEq)]
pub struct SvgOptions {
    /// A title drawn above the picture (and set as the SVG `<title>`).
    pub title: Option<String>,
    /// Side of one entry, in pixels.
    pub cell: f64,
    /// Row offsets where a horizontal grid line is drawn (e.g. the top-level
    /// block boundaries, see [`SvgOptions::with_partition_of`]).
    pub row_lines: Vec<usize>,
    /// Column offsets where a vertical grid line is drawn.
    pub col_lines: Vec<usize>,
}

impl Default for SvgOptions {
    fn default() -> Self {
        SvgOptions { title: None, cell: 4.0, row_lines: Vec::new(), col_lines: Vec::new() }
    }
}

impl SvgOptions {
    /// Grid lines at the inner boundaries of `b`'s top-level partition.
    pub fn with_partition_of(mut self, b: &Block) -> Self {
        let inner = |p: Option<Vec<usize>>| {
            let o = offsets(&p.unwrap_or_default());
            o[1..o.len().saturating_sub(1).max(1)].to_vec()
        };
        self.row_lines = inner(b.row_partition());
        self.col_lines = inner(b.col_partition());
        self
    }

    /// Sets the title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
}

impl Pattern {
    /// The pattern of a dense matrix (entries exactly `0.0` are zero).
    pub fn from_dense(m: MatRef<'_, f64>) -> Pattern {
        let mut p = Pattern { rows: m.nrows(), cols: m.ncols(), bits: vec![false; m.nrows() * m.ncols()] };
        for i in 0..m.nrows() {
            for j in 0..m.ncols() {
                p.bits[i * p.cols + j] = m[(i, j)] != 0.0;
            }
        }
        p
    }
    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.cols
    }
    /// Whether entry `(i, j)` is non-zero (`false` out of range).
    pub fn get(&self, i: usize, j: usize) -> bool {
        i < self.rows && j < self.cols && self.bits[i * self.cols + j]
    }
    /// Number of non-zero entries.
    pub fn nnz(&self) -> usize {
        self.bits.iter().filter(|&&b| b).count()
    }

    /// One line per row, `#` for a non-zero entry and `.` for a zero.
    pub fn to_text(&self) -> String {
        self.to_text_fit(self.cols.max(1))
    }

    /// Like [`Pattern::to_text`], downsampled so that at most `max_cols`
    /// characters are used per line: each character stands for a square
    /// cell of `ceil(cols / max_cols)` entries on a side and is `#` when any
    /// entry of the cell is non-zero.
    pub fn to_text_fit(&self, max_cols: usize) -> String {
        let step = self.cols.div_ceil(max_cols.max(1)).max(1);
        let (nr, nc) = (self.rows.div_ceil(step), self.cols.div_ceil(step));
        let mut s = String::with_capacity(nr * (nc + 1));
        for ci in 0..nr {
            for cj in 0..nc {
                let any = (ci * step..((ci + 1) * step).min(self.rows))
                    .any(|i| (cj * step..((cj + 1) * step).min(self.cols)).any(|j| self.bits[i * self.cols + j]));
                s.push(if any { '#' } else { '.' });
            }
            s.push('\n');
        }
        s
    }

    /// The SVG picture as a string; see [`Pattern::write_svg`].
    pub fn to_svg(&self, opts: &SvgOptions) -> String {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail, and only UTF-8 is written.
        let _ = self.write_svg(&mut out, opts);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Writes an SVG picture: one rectangle per horizontal run of non-zero
    /// entries, grid lines at `opts.row_lines` / `opts.col_lines`, a frame
    /// and an optional title. Coordinates are printed with two decimals so
    /// the output is identical on every machine.
    pub fn write_svg(&self, mut w: impl io::Write, opts: &SvgOptions) -> io::Result<()> {
        let c = if opts.cell.is_finite() && opts.cell > 0.0 { opts.cell } else { 1.0 };
        let top = if opts.title.is_some() { 20.0 } else { 0.0 };
        let (width, height) = (self.cols as f64 * c, self.rows as f64 * c);
        writeln!(
            w,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.2}" height="{:.2}" viewBox="0 0 {:.2} {:.2}">"#,
            width.max(1.0),
            height + top,
            width.max(1.0),
            height + top
        )?;
        if let Some(t) = &opts.title {
            let t = escape(t);
            writeln!(w, "<title>{t}</title>")?;
            writeln!(w, r#"<text x="0" y="14" font-family="sans-serif" font-size="12">{t}</text>"#)?;
        }
        writeln!(w, r#"<g transform="translate(0,{top:.2})">"#)?;
        writeln!(
            w,
            r#"<rect x="0" y="0" width="{width:.2}" height="{height:.2}" fill="white" stroke="black" stroke-width="0.5"/>"#
        )?;
        writeln!(w, r#"<g fill="black">"#)?;
        for i in 0..self.rows {
            let row = &self.bits[i * self.cols..(i + 1) * self.cols];
            let mut j = 0;
            while j < self.cols {
                if !row[j] {
                    j += 1;
                    continue;
                }
                let start = j;
                while j < self.cols && row[j] {
                    j += 1;
                }
                writeln!(
                    w,
                    r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{c:.2}"/>"#,
                    start as f64 * c,
                    i as f64 * c,
                    (j - start) as f64 * c
                )?;
            }
        }
        writeln!(w, "</g>")?;
        writeln!(w, r#"<g stroke="red" stroke-width="0.5">"#)?;
        for &r in &opts.row_lines {
            let y = r as f64 * c;
            writeln!(w, r#"<line x1="0" y1="{y:.2}" x2="{width:.2}" y2="{y:.2}"/>"#)?;
        }
        for &col in &opts.col_lines {
            let x = col as f64 * c;
            writeln!(w, r#"<line x1="{x:.2}" y1="0" x2="{x:.2}" y2="{height:.2}"/>"#)?;
        }
        writeln!(w, "</g>\n</g>\n</svg>")
    }

    fn mark(&mut self, b: &Block, r0: usize, c0: usize, trans: bool) {
        // `trans`: `b` is stored transposed at (r0, c0), so its entry (i, j)
        // lands at (r0 + j, c0 + i).
        let set = |p: &mut Pattern, i: usize, j: usize| {
            let (i, j) = if trans { (j, i) } else { (i, j) };
            p.bits[(r0 + i) * p.cols + c0 + j] = true;
        };
        match b {
            Block::Zero { .. } => {}
            Block::Identity { n, scale } => {
                if *scale != 0.0 {
                    (0..*n).for_each(|i| set(self, i, i));
                }
            }
            Block::Dense(_) | Block::LowRank(_) => {
                let m = b.dense_view();
                for j in 0..m.ncols() {
                    for i in 0..m.nrows() {
                        if m[(i, j)] != 0.0 {
                            set(self, i, j);
                        }
                    }
                }
            }
            _ => {
                let ro = offsets(&b.row_partition().unwrap_or_default());
                let co = offsets(&b.col_partition().unwrap_or_default());
                for (i, j, child, t) in children(b) {
                    let (ri, cj) = (ro[i], co[j]);
                    let (ri, cj) = if trans { (cj, ri) } else { (ri, cj) };
                    self.mark(child, r0 + ri, c0 + cj, trans != t);
                }
            }
        }
    }
}

/// Children of a structure with block positions and whether each is stored
/// transposed (the implicit super-diagonal of a symmetric tridiagonal).
pub(crate) fn children(b: &Block) -> Vec<(usize, usize, &Block, bool)> {
    let mut out = Vec::new();
    match b {
        Block::Zero { .. } | Block::Identity { .. } | Block::Dense(_) | Block::LowRank(_) => {}
        Block::Diag(d) => out.extend(d.blocks.iter().enumerate().map(|(k, x)| (k, k, x, false))),
        Block::Bidiag(bd) => {
            out.extend(bd.diag.iter().enumerate().map(|(k, x)| (k, k, x, false)));
            out.extend(bd.off.iter().enumerate().map(|(k, x)| match bd.side {
                Side::Lower => (k + 1, k, x, false),
                Side::Upper => (k, k + 1, x, false),
            }));
        }
        Block::Tridiag(t) => {
            out.extend(t.diag.iter().enumerate().map(|(k, x)| (k, k, x, false)));
            out.extend(t.sub.iter().enumerate().map(|(k, x)| (k + 1, k, x, false)));
            match &t.sup {
                Some(sup) => out.extend(sup.iter().enumerate().map(|(k, x)| (k, k + 1, x, false))),
                None => out.extend(t.sub.iter().enumerate().map(|(k, x)| (k, k + 1, x, true))),
            }
        }
        Block::Grid(g) => {
            let nc = g.block_cols();
            out.extend(g.blocks.iter().enumerate().map(|(idx, x)| (idx / nc, idx % nc, x, false)));
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

impl Block {
    /// The non-zero pattern of the matrix; see [`Pattern`] for what counts
    /// as non-zero.
    ///
    /// ```
    /// use blockmat::Block;
    /// let p = Block::block_diag(vec![Block::identity(2), Block::zeros(1, 1)]).pattern();
    /// assert_eq!(p.to_text(), "#..\n.#.\n...\n");
    /// ```
    pub fn pattern(&self) -> Pattern {
        let (rows, cols) = self.shape();
        let mut p = Pattern { rows, cols, bits: vec![false; rows * cols] };
        p.mark(self, 0, 0, false);
        p
    }
}
