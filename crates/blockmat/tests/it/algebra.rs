//! Transpose, scale, sums and products against the same operations on
//! dense matrices, on random nestings; structure kept where promised.

use crate::common;

use blockmat::{Block, BlockError, Side};
use common::*;
use faer::Mat;
use rand::Rng;

// Entries are in [-1, 1] and nestings are shallow (at most ~12 terms per
// entry of a product), so every result is within a few ulps of 12: 1e-12
// leaves a wide margin while still catching any misplaced block.
const TOL: f64 = 1e-12;

#[test]
fn to_dense_and_apply_agree_with_dense() {
    let mut rng = rng(1);
    for _ in 0..300 {
        let (r, c) = (rand_sizes(&mut rng, 1)[0] * 3, rand_sizes(&mut rng, 1)[0] * 3);
        let a = rand_block(&mut rng, r, c, 3);
        let d = a.to_dense();
        assert_eq!((d.nrows(), d.ncols()), (r, c));
        let x = rand_mat(&mut rng, c, 2);
        assert!(max_diff(&a.mul_dense(x.as_ref()).unwrap(), &dense_mul(&d, &x)) < TOL);
        let y = rand_mat(&mut rng, r, 2);
        let dt = d.transpose().to_owned();
        assert!(max_diff(&a.tmul_dense(y.as_ref()).unwrap(), &dense_mul(&dt, &y)) < TOL);
    }
}

#[test]
fn transpose_matches_dense_and_mirrors_structure() {
    let mut rng = rng(2);
    for _ in 0..300 {
        let a = rand_block(&mut rng, 5, 4, 3);
        let t = a.transpose();
        // Exact but for low-rank leaves, whose factors multiply in another
        // order once transposed.
        assert!(max_diff(&t.to_dense(), &a.to_dense().transpose().to_owned()) < TOL);
        let expected_kind = match a.kind() {
            "lower-bidiagonal" => "upper-bidiagonal",
            "upper-bidiagonal" => "lower-bidiagonal",
            k => k,
        };
        assert_eq!(t.kind(), expected_kind);
        assert_eq!(t.row_partition(), a.col_partition());
    }
}

#[test]
fn symmetric_tridiagonal_transpose_stays_symmetric() {
    let mut rng = rng(3);
    let d = |rng: &mut _, n| Block::dense(rand_mat(rng, n, n));
    let s =
        Block::sym_tridiag(vec![d(&mut rng, 2), d(&mut rng, 3)], vec![Block::dense(rand_mat(&mut rng, 3, 2))]).unwrap();
    let t = s.transpose();
    assert!(t.as_tridiag().unwrap().is_symmetric());
    assert_eq!(max_diff(&t.to_dense(), &s.to_dense().transpose().to_owned()), 0.0);
}

#[test]
fn scale_and_neg_match_dense() {
    let mut rng = rng(4);
    for _ in 0..100 {
        let a = rand_block(&mut rng, 4, 6, 3);
        let d = a.to_dense();
        assert_eq!(a.scale(2.5).kind(), a.kind());
        // A low-rank leaf scales its core, which rounds differently.
        assert!(max_diff(&a.scale(2.5).to_dense(), &Mat::from_fn(4, 6, |i, j| 2.5 * d[(i, j)])) < TOL);
        assert!(max_diff(&a.neg().to_dense(), &Mat::from_fn(4, 6, |i, j| -d[(i, j)])) == 0.0);
    }
}

#[test]
fn add_sub_match_dense_on_equal_nestings() {
    let mut rng = rng(5);
    for _ in 0..300 {
        let a = rand_block(&mut rng, 6, 5, 3);
        let b = rand_like(&mut rng, &a);
        let (da, db) = (a.to_dense(), b.to_dense());
        let s = a.add(&b).unwrap();
        assert!(max_diff(&s.to_dense(), &Mat::from_fn(6, 5, |i, j| da[(i, j)] + db[(i, j)])) < TOL);
        let s = a.sub(&b).unwrap();
        assert!(max_diff(&s.to_dense(), &Mat::from_fn(6, 5, |i, j| da[(i, j)] - db[(i, j)])) < TOL);
        // A structure plus a structure of the same kind keeps the kind at
        // the top (a sum cannot create new block positions).
        if a.row_partition().is_some() && b.row_partition().is_some() && a.kind() != "block-tridiagonal" {
            let k = a.add(&b).unwrap().kind();
            assert!(k == a.kind() || k == b.kind() || a.kind() == "grid", "{k} from {} + {}", a.kind(), b.kind());
        }
    }
}

#[test]
fn sums_keep_structure() {
    let d = |n| Block::block_diag(vec![Block::identity(n), Block::scaled_identity(1, 2.0)]);
    let lower =
        Block::unit_bidiag(Side::Lower, &[2, 1], vec![Block::dense(Mat::from_fn(1, 2, |_, j| j as f64))]).unwrap();
    assert_eq!(d(2).add(&d(2)).unwrap().kind(), "block-diagonal");
    assert_eq!(d(2).add(&lower).unwrap().kind(), "lower-bidiagonal");
    assert_eq!(lower.add(&lower.transpose()).unwrap().kind(), "block-tridiagonal");
    assert_eq!(Block::zeros(3, 3).add(&lower).unwrap().kind(), "lower-bidiagonal");
    assert_eq!(Block::identity(3).add(&lower).unwrap().kind(), "lower-bidiagonal");
    let i2 = Block::identity(3).add(&Block::scaled_identity(3, 2.0)).unwrap();
    assert!(matches!(i2, Block::Identity { n: 3, scale } if scale == 3.0));
    let s = Block::sym_tridiag(vec![Block::identity(1), Block::identity(2)], vec![Block::zeros(2, 1)]).unwrap();
    assert!(s.add(&s).unwrap().as_tridiag().unwrap().is_symmetric());
}

#[test]
fn products_match_dense_on_compatible_nestings() {
    let mut rng = rng(6);
    for _ in 0..300 {
        // a * b^T has matching inner partitions at the top level when b is
        // nested like a; a fully random b has mismatched ones (the product
        // then densifies where it must).
        let a = rand_block(&mut rng, 5, 6, 3);
        let b = rand_like(&mut rng, &a).transpose();
        let p = a.matmul(&b).unwrap();
        assert!(max_diff(&p.to_dense(), &dense_mul(&a.to_dense(), &b.to_dense())) < TOL);
        let b = rand_block(&mut rng, 6, 4, 3);
        let p = a.matmul(&b).unwrap();
        assert!(max_diff(&p.to_dense(), &dense_mul(&a.to_dense(), &b.to_dense())) < TOL);
        // And a leaf on either side.
        let l = rand_leaf(&mut rng, 6, 6);
        let p = a.matmul(&l).unwrap();
        assert!(max_diff(&p.to_dense(), &dense_mul(&a.to_dense(), &l.to_dense())) < TOL);
        let l = rand_leaf(&mut rng, 5, 5);
        let p = l.matmul(&a).unwrap();
        assert!(max_diff(&p.to_dense(), &dense_mul(&l.to_dense(), &a.to_dense())) < TOL);
    }
}

fn diag3(rng: &mut rand_chacha::ChaCha8Rng) -> Block {
    Block::block_diag(vec![
        Block::dense(rand_mat(rng, 2, 2)),
        Block::dense(rand_mat(rng, 3, 3)),
        Block::scaled_identity(1, 2.0),
    ])
}

fn bidiag3(rng: &mut rand_chacha::ChaCha8Rng, side: Side) -> Block {
    let off = match side {
        Side::Lower => vec![Block::dense(rand_mat(rng, 3, 2)), Block::dense(rand_mat(rng, 1, 3))],
        Side::Upper => vec![Block::dense(rand_mat(rng, 2, 3)), Block::dense(rand_mat(rng, 3, 1))],
    };
    Block::bidiag(
        side,
        vec![Block::dense(rand_mat(rng, 2, 2)), Block::identity(3), Block::dense(rand_mat(rng, 1, 1))],
        off,
    )
    .unwrap()
}

#[test]
fn products_keep_structure_when_closed() {
    let mut rng = rng(7);
    let (d1, d2) = (diag3(&mut rng), diag3(&mut rng));
    let (lo, up) = (bidiag3(&mut rng, Side::Lower), bidiag3(&mut rng, Side::Upper));
    let check = |a: &Block, b: &Block, kind: &str| {
        let p = a.matmul(b).unwrap();
        assert_eq!(p.kind(), kind, "{} * {}", a.kind(), b.kind());
        assert_eq!(p.row_partition(), Some(vec![2, 3, 1]));
        assert!(max_diff(&p.to_dense(), &dense_mul(&a.to_dense(), &b.to_dense())) < TOL);
        p
    };
    // A product of block-diagonals must not densify: each block is the
    // product of the blocks, and the identity stays an identity.
    let p = check(&d1, &d2, "block-diagonal");
    assert!(matches!(p.as_diag().unwrap().blocks()[2], Block::Identity { n: 1, scale } if scale == 4.0));
    check(&d1, &lo, "lower-bidiagonal");
    check(&up, &d2, "upper-bidiagonal");
    check(&lo, &up, "block-tridiagonal");
    check(&lo, &lo, "grid");
    assert_eq!(d1.matmul(&Block::zeros(6, 4)).unwrap().kind(), "zero");
    assert_eq!(Block::identity(6).matmul(&lo).unwrap().kind(), "lower-bidiagonal");
    let g =
        Block::grid(vec![vec![Block::identity(2), Block::zeros(2, 1)], vec![Block::zeros(1, 2), Block::identity(1)]])
            .unwrap();
    assert_eq!(g.matmul(&g).unwrap().kind(), "grid");
}

#[test]
fn mismatches_are_errors_naming_both_sides() {
    let a = Block::block_diag(vec![Block::identity(2), Block::identity(3)]);
    let b = Block::block_diag(vec![Block::identity(3), Block::identity(2)]);
    let msgs = [
        a.add(&Block::identity(4)).unwrap_err(),
        a.add(&b).unwrap_err(),
        a.sub(&b.transpose()).unwrap_err(),
        a.matmul(&Block::zeros(4, 1)).unwrap_err(),
        a.sub(&Block::zeros(5, 4)).unwrap_err(),
    ]
    .iter()
    .map(|e| e.to_string())
    .collect::<Vec<_>>()
    .join("\n");
    insta::assert_snapshot!(msgs);
    assert!(matches!(a.add(&b), Err(BlockError::PartitionMismatch { .. })));
    // A product with mismatched inner partitions is still right, as a dense leaf.
    let p = a.matmul(&b).unwrap();
    assert_eq!(p.kind(), "dense");
    assert_eq!(max_diff(&p.to_dense(), &Mat::<f64>::identity(5, 5)), 0.0);
}

/// The largest entry read off the structure equals the dense matrix's, on
/// random nestings of every variant (the same entries, no arithmetic:
/// exactly equal).
#[test]
fn max_abs_reads_the_structure() {
    let mut r = rng(31);
    for _ in 0..300 {
        let (rows, cols) = (r.random_range(0..9), r.random_range(0..9));
        let b = rand_block(&mut r, rows, cols, 3);
        let dense = b.to_dense();
        let expected =
            (0..rows).flat_map(|i| (0..cols).map(move |j| (i, j))).fold(0.0f64, |m, (i, j)| m.max(dense[(i, j)].abs()));
        assert_eq!(b.max_abs(), expected, "{}", b.kind());
    }
    assert_eq!(Block::scaled_identity(3, -2.5).max_abs(), 2.5);
    assert_eq!(Block::scaled_identity(0, -2.5).max_abs(), 0.0);
}

#[test]
fn first_non_finite_finds_every_kind_at_every_position() {
    // Positions in the vectorised chunks and in the remainder of a column
    // (7 rows: one chunk of 4 and a tail of 3), in the first and last column.
    for &(i, j) in &[(0, 0), (3, 0), (4, 0), (6, 0), (2, 2), (6, 2)] {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut m = Mat::<f64>::from_fn(7, 3, |r, c| (r as f64 - 3.0) * 1e300 + c as f64);
            m[(i, j)] = bad;
            let found = Block::dense(m).first_non_finite();
            assert!(found.is_some_and(|v| v.is_nan() == bad.is_nan() && (v.is_nan() || v == bad)), "{bad} at {i},{j}");
        }
    }
    // Huge finite entries (whose products with zero stay zero) are finite.
    let m = Mat::<f64>::from_fn(7, 3, |r, c| if (r + c) % 2 == 0 { f64::MAX } else { -f64::MIN_POSITIVE });
    assert_eq!(Block::dense(m).first_non_finite(), None);
    let nested = Block::block_diag(vec![Block::identity(2), Block::dense(Mat::from_fn(2, 2, |_, _| f64::NAN))]);
    assert!(nested.first_non_finite().is_some_and(f64::is_nan));
    // Two different non-finite entries: the first in column-major order is
    // reported, in a column's tail before a later column's head.
    let mut m = Mat::<f64>::zeros(7, 3);
    (m[(6, 0)], m[(0, 2)]) = (f64::NEG_INFINITY, f64::NAN);
    assert_eq!(Block::dense(m).first_non_finite(), Some(f64::NEG_INFINITY));
}

#[test]
fn low_rank_leaves_are_their_product() {
    let mut rng = rng(11);
    let (l, c, r) = (rand_mat(&mut rng, 5, 2), rand_mat(&mut rng, 2, 3), rand_mat(&mut rng, 4, 3));
    let b = Block::low_rank(l.clone(), c.clone(), r.clone()).unwrap();
    let d = dense_mul(&dense_mul(&l, &c), &r.transpose().to_owned());
    assert_eq!(b.shape(), (5, 4));
    assert!(max_diff(&b.to_dense(), &d) < TOL);
    assert_eq!((b.row_support(), b.col_support()), (Some(0..5), Some(0..4)));
    let lr = b.as_low_rank().unwrap();
    assert_eq!((lr.rank(), lr.left().nrows(), lr.core().ncols(), lr.right().nrows()), (2, 5, 3, 4));
    // Rank zero: structurally zero.
    let z = Block::low_rank(Mat::zeros(5, 0), Mat::zeros(0, 0), Mat::zeros(4, 0)).unwrap();
    assert_eq!((z.row_support(), z.to_dense().norm_max()), (None, 0.0));
    // Inner sizes that do not agree are errors naming both shapes.
    let e = Block::low_rank(l.clone(), r.clone(), c.clone()).unwrap_err();
    assert!(matches!(e, BlockError::ShapeMismatch { left: (5, 2), right: (4, 3), .. }), "{e}");
    let e = Block::low_rank(l.clone(), c.clone(), Mat::zeros(4, 2)).unwrap_err();
    assert!(matches!(e, BlockError::ShapeMismatch { left: (2, 3), right: (2, 4), .. }), "{e}");
    // The factors' own products and column ranges, and their shape errors.
    let x = rand_mat(&mut rng, 4, 2);
    let mut y = rand_mat(&mut rng, 5, 2);
    let expected = Mat::from_fn(5, 2, |i, j| y[(i, j)] + 0.5 * dense_mul(&d, &x)[(i, j)]);
    lr.mul_add_to(y.as_mut(), x.as_ref(), 0.5).unwrap();
    assert!(max_diff(&y, &expected) < TOL);
    let mut cols = Mat::from_fn(5, 2, |_, _| f64::NAN);
    lr.write_columns_to(1, cols.as_mut()).unwrap();
    assert!(max_diff(&cols, &d.as_ref().subcols(1, 2).to_owned()) < TOL);
    assert!(max_diff(&lr.transpose().left().to_owned(), &r) == 0.0);
    assert!(matches!(
        lr.mul_add_to(Mat::zeros(5, 2).as_mut(), Mat::zeros(3, 2).as_ref(), 1.0),
        Err(BlockError::ShapeMismatch { left: (5, 4), right: (3, 2), .. })
    ));
    assert!(matches!(
        lr.write_columns_to(3, Mat::zeros(5, 2).as_mut()),
        Err(BlockError::ShapeMismatch { left: (5, 4), right: (5, 5), .. })
    ));
    // A rank-zero product overwrites with zeros.
    let mut cols = Mat::from_fn(5, 2, |_, _| f64::NAN);
    let empty = Block::low_rank(Mat::zeros(5, 0), Mat::zeros(0, 0), Mat::zeros(4, 0)).unwrap();
    empty.as_low_rank().unwrap().write_columns_to(0, cols.as_mut()).unwrap();
    assert_eq!(cols.norm_max(), 0.0);
    // A NaN in any factor is found.
    let mut bad = c.clone();
    bad[(1, 2)] = f64::NAN;
    assert!(Block::low_rank(l, bad, r).unwrap().first_non_finite().is_some_and(f64::is_nan));
}

/// Any window of a random nesting (every variant, symmetric tridiagonals'
/// implicit transposes included) equals that window of the dense block.
#[test]
fn windows_match_the_dense_block() {
    let mut rng = rng(13);
    for k in 0..400 {
        let a = if k % 4 == 0 {
            // A symmetric tridiagonal stores no super-diagonal: its windows
            // read the stored blocks transposed.
            let n = rng.random_range(1..=3);
            let sizes: Vec<usize> = (0..n).map(|_| rng.random_range(1..=4)).collect();
            let diag = sizes.iter().map(|&s| rand_block(&mut rng, s, s, 1)).collect();
            let sub = (1..n).map(|i| rand_block(&mut rng, sizes[i], sizes[i - 1], 1)).collect();
            Block::sym_tridiag(diag, sub).unwrap()
        } else {
            let (r, c) = (rand_sizes(&mut rng, 1)[0] * 3, rand_sizes(&mut rng, 1)[0] * 3 + 1);
            rand_block(&mut rng, r, c, 3)
        };
        let (r, c) = a.shape();
        let d = a.to_dense();
        let (row, col) = (rng.random_range(0..=r), rng.random_range(0..=c));
        let (h, w) = (rng.random_range(0..=r - row), rng.random_range(0..=c - col));
        // Garbage in the buffer must be overwritten.
        let mut out = Mat::from_fn(h, w, |_, _| f64::NAN);
        a.write_window_to(row, col, out.as_mut()).unwrap();
        assert!(max_diff(&out, &d.as_ref().submatrix(row, col, h, w).to_owned()) < TOL, "{}", a.kind());
    }
    let a = Block::identity(3);
    assert!(matches!(
        a.write_window_to(1, 2, Mat::zeros(3, 1).as_mut()),
        Err(BlockError::ShapeMismatch { left: (3, 3), right: (4, 3), .. })
    ));
}

#[test]
fn column_ranges_match_the_dense_block() {
    let mut rng = rng(12);
    for _ in 0..300 {
        let (r, c) = (rand_sizes(&mut rng, 1)[0] * 3, rand_sizes(&mut rng, 1)[0] * 3 + 1);
        let a = rand_block(&mut rng, r, c, 3);
        let d = a.to_dense();
        let start = rng.random_range(0..c);
        let w = rng.random_range(0..=c - start);
        // Garbage in the buffer must be overwritten.
        let mut out = Mat::from_fn(r, w, |_, _| f64::NAN);
        a.write_columns_to(start, out.as_mut()).unwrap();
        assert!(max_diff(&out, &d.as_ref().subcols(start, w).to_owned()) < TOL, "{}", a.kind());
    }
    let a = Block::identity(3);
    assert!(matches!(
        a.write_columns_to(2, Mat::zeros(3, 2).as_mut()),
        Err(BlockError::ShapeMismatch { left: (3, 3), right: (3, 4), .. })
    ));
}

/// `into_dense_leaf` against the dense block: the leaf it returns sits at
/// the rows and columns it names, and nothing else of the block is
/// non-zero; a block with no dense leaf, or two non-zero leaves, comes back
/// unchanged.
#[test]
fn the_dense_leaf_is_where_the_block_has_it() {
    let mut rng = common::rng(41);
    let mut m = |r: usize, c: usize| Mat::from_fn(r, c, |_, _| rng.random_range(0.5..2.0));
    let z = Block::zeros;
    let cases = vec![
        Block::dense(m(3, 2)),
        Block::grid(vec![vec![z(2, 3), z(2, 4)], vec![z(5, 3), Block::dense(m(5, 4))]]).unwrap(),
        Block::bidiag(Side::Lower, vec![z(2, 3), z(4, 1), z(3, 3)], vec![z(4, 3), Block::dense(m(3, 1))]).unwrap(),
        Block::bidiag(Side::Upper, vec![z(2, 3), Block::dense(m(4, 1)), z(3, 3)], vec![z(2, 1), z(4, 3)]).unwrap(),
        // Nested: the leaf inside a grid inside a bidiagonal.
        Block::bidiag(
            Side::Upper,
            vec![z(2, 2), z(3, 3)],
            vec![Block::grid(vec![vec![z(1, 1), z(1, 2)], vec![z(1, 1), Block::dense(m(1, 2))]]).unwrap()],
        )
        .unwrap(),
    ];
    for b in cases {
        let dense = b.to_dense();
        let leaf = b.clone().into_dense_leaf().unwrap_or_else(|b| panic!("no leaf in {}", b.kind()));
        for j in 0..dense.ncols() {
            for i in 0..dense.nrows() {
                let inside = leaf.rows.contains(&i) && leaf.cols.contains(&j);
                let expected = if inside { leaf.m[(i - leaf.rows.start, j - leaf.cols.start)] } else { 0.0 };
                assert_eq!(dense[(i, j)], expected, "{} ({i}, {j})", b.kind());
            }
        }
    }
    for b in [
        Block::identity(3),
        Block::grid(vec![vec![Block::dense(m(2, 2)), Block::dense(m(2, 1))]]).unwrap(),
        Block::grid(vec![vec![z(2, 2), Block::identity(2)]]).unwrap(),
        Block::grid(vec![vec![z(2, 2), z(2, 1)]]).unwrap(),
    ] {
        let dense = b.to_dense();
        let back = b.into_dense_leaf().expect_err("no single dense leaf");
        assert!(back.to_dense() == dense, "{} came back changed", back.kind());
    }
}
