//! The structure printer and the sparsity pictures.

use crate::common;

use blockmat::{Block, Pattern, Side, SvgOptions};
use common::*;
use faer::Mat;

fn sample() -> Block {
    let m = Block::unit_bidiag(Side::Lower, &[2, 1], vec![Block::dense(Mat::from_fn(1, 2, |_, j| j as f64 + 1.0))])
        .unwrap();
    let s = Block::sym_tridiag(
        vec![Block::dense(Mat::from_fn(2, 2, |i, j| (i + j + 1) as f64)), Block::identity(1)],
        vec![Block::dense(Mat::from_fn(1, 2, |_, _| 1.0))],
    )
    .unwrap();
    Block::grid(vec![
        vec![m.neg(), Block::zeros(3, 3)],
        vec![Block::zeros(3, 3), s],
        vec![
            Block::dense(Mat::from_fn(1, 3, |_, j| if j == 1 { 0.0 } else { 1.0 })),
            Block::scaled_identity(1, 0.5).matmul(&Block::zeros(1, 3)).unwrap(),
        ],
    ])
    .unwrap()
}

#[test]
fn structure_tree() {
    insta::assert_snapshot!(sample().structure());
}

#[test]
fn pattern_text_and_svg() {
    let b = sample();
    let p = b.pattern();
    assert_eq!(p, Pattern::from_dense(b.to_dense().as_ref()));
    let svg = p.to_svg(&SvgOptions::default().with_partition_of(&b).with_title("K <sample> & co"));
    insta::assert_snapshot!("pattern_text", p.to_text());
    insta::assert_snapshot!("pattern_text_fit_3", p.to_text_fit(3));
    insta::assert_snapshot!("pattern_svg", svg);
}

#[test]
fn pattern_matches_dense_on_random_nestings() {
    let mut rng = rng(31);
    for _ in 0..200 {
        let b = rand_block(&mut rng, 7, 5, 3);
        let p = b.pattern();
        // Symmetric tridiagonals and transposed structures included.
        assert_eq!(p, Pattern::from_dense(b.to_dense().as_ref()));
        assert_eq!(b.transpose().pattern(), Pattern::from_dense(b.to_dense().transpose()));
        // Downsampling never loses a non-zero cell.
        let fit = p.to_text_fit(2);
        assert_eq!(fit.contains('#'), p.nnz() > 0);
    }
}

#[test]
fn support_matches_pattern() {
    let mut rng = rng(32);
    for _ in 0..200 {
        let b = rand_block(&mut rng, 6, 6, 3);
        let p = b.pattern();
        let cols: Vec<usize> = (0..6).filter(|&j| (0..6).any(|i| p.get(i, j))).collect();
        let rows: Vec<usize> = (0..6).filter(|&i| (0..6).any(|j| p.get(i, j))).collect();
        // Support is structural, so it contains every non-zero entry.
        if let (Some(&lo), Some(&hi)) = (cols.first(), cols.last()) {
            let s = b.col_support().unwrap();
            assert!(s.start <= lo && hi < s.end);
        }
        if let (Some(&lo), Some(&hi)) = (rows.first(), rows.last()) {
            let s = b.row_support().unwrap();
            assert!(s.start <= lo && hi < s.end);
        }
    }
}

#[test]
fn low_rank_leaves_print_their_rank() {
    let u = Mat::from_fn(3, 2, |i, j| (i + j) as f64);
    let b = Block::block_diag(vec![Block::low_rank(u.clone(), Mat::identity(2, 2), u).unwrap(), Block::identity(1)]);
    insta::assert_snapshot!(b.structure());
}
