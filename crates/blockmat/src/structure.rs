//! A text picture of how a block matrix is nested, one line per block.

use std::fmt::Write;

use crate::block::Block;
use crate::pattern::children;

impl Block {
    /// A deterministic tree of the block structure, one line per block:
    /// the variant, its block counts and its element shape, with children
    /// indented under their block position `[i,j]` (row-major order).
    /// Identity scales other than 1 are printed as `(x s)`; no other number
    /// is printed. A symmetric tridiagonal matrix lists its stored blocks
    /// only.
    ///
    /// ```
    /// use blockmat::Block;
    /// let d = Block::block_diag(vec![Block::scaled_identity(2, -1.0), Block::zeros(1, 3)]);
    /// assert_eq!(
    ///     d.structure(),
    ///     "block-diagonal 2x2 blocks (3x5)\n  [0,0] identity 2 (x -1)\n  [1,1] zero 1x3\n"
    /// );
    /// ```
    pub fn structure(&self) -> String {
        let mut s = String::new();
        self.write_structure(&mut s, 0, "");
        s
    }

    fn write_structure(&self, s: &mut String, depth: usize, pos: &str) {
        let indent = "  ".repeat(depth);
        let (r, c) = self.shape();
        // Writing to a String cannot fail.
        let _ = match self {
            Block::Zero { .. } => writeln!(s, "{indent}{pos}zero {r}x{c}"),
            Block::Identity { n, scale } if *scale == 1.0 => writeln!(s, "{indent}{pos}identity {n}"),
            Block::Identity { n, scale } => writeln!(s, "{indent}{pos}identity {n} (x {scale})"),
            Block::Dense(_) => writeln!(s, "{indent}{pos}dense {r}x{c}"),
            Block::LowRank(l) => writeln!(s, "{indent}{pos}low-rank {r}x{c} (rank <= {})", l.rank()),
            Block::Tridiag(t) if t.is_symmetric() => {
                let l = t.len();
                writeln!(s, "{indent}{pos}symmetric block-tridiagonal {l}x{l} blocks ({r}x{c})")
            }
            Block::Grid(g) => {
                writeln!(s, "{indent}{pos}grid {}x{} blocks ({r}x{c})", g.block_rows(), g.block_cols())
            }
            _ => {
                let l = self.row_partition().map_or(0, |p| p.len());
                writeln!(s, "{indent}{pos}{} {l}x{l} blocks ({r}x{c})", self.kind())
            }
        };
        let mut kids: Vec<_> = children(self).into_iter().filter(|c| !c.3).collect();
        kids.sort_by_key(|c| (c.0, c.1));
        for (i, j, b, _) in kids {
            b.write_structure(s, depth + 1, &format!("[{i},{j}] "));
        }
    }
}
