//! The blockwise transpose: exact permutation on random nestings, the two
//! worked examples, and the lifted system of ALGORITHM.md.

use crate::common;

use blockmat::{
    infer_nesting, interleave, interleave_indices, interleave_symmetric, interleave_with, Block, BlockVec, Nesting,
    Side,
};
use common::*;
use faer::Mat;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A random L-block structure with the given level sizes.
fn rand_levels(rng: &mut ChaCha8Rng, rp: &[usize], cp: &[usize]) -> Block {
    let l = rp.len();
    let b = |rng: &mut ChaCha8Rng, i: usize, j: usize| rand_block(rng, rp[i], cp[j], 1);
    let diag: Vec<Block> = (0..l).map(|k| b(rng, k, k)).collect();
    match rng.random_range(0..6) {
        0 => Block::zeros(rp.iter().sum(), cp.iter().sum()),
        1 if rp == cp => Block::scaled_identity(rp.iter().sum(), rng.random_range(-2.0..2.0)),
        2 => Block::bidiag(Side::Lower, diag, (1..l).map(|k| b(rng, k, k - 1)).collect()).unwrap(),
        3 => Block::bidiag(Side::Upper, diag, (1..l).map(|k| b(rng, k - 1, k)).collect()).unwrap(),
        4 => {
            let sub = (1..l).map(|k| b(rng, k, k - 1)).collect();
            Block::tridiag(diag, sub, (1..l).map(|k| b(rng, k - 1, k)).collect()).unwrap()
        }
        _ => Block::block_diag(diag),
    }
}

/// A random R x C grid of L-structures, with its nesting.
fn rand_nested_grid(rng: &mut ChaCha8Rng) -> (Block, Nesting) {
    let (r, c, l) = (rng.random_range(1..=3), rng.random_range(1..=3), rng.random_range(1..=4));
    let rows: Vec<Vec<usize>> = (0..r).map(|_| rand_sizes(rng, l)).collect();
    // Some columns share a row's partition so that identities can appear.
    let cols: Vec<Vec<usize>> =
        (0..c).map(|j| if j < r && rng.random_bool(0.5) { rows[j].clone() } else { rand_sizes(rng, l) }).collect();
    let grid = rows.iter().map(|rp| cols.iter().map(|cp| rand_levels(rng, rp, cp)).collect()).collect();
    (Block::grid(grid).unwrap(), Nesting { rows, cols })
}

#[test]
fn interleaving_is_the_permutation_p_k_pt() {
    let mut rng = rng(21);
    for _ in 0..300 {
        let (k, nesting) = rand_nested_grid(&mut rng);
        let g = k.as_grid().unwrap();
        // Inference may fail on all-zero rows; the explicit nesting never does.
        if let Ok(inferred) = infer_nesting(g) {
            assert_eq!(inferred, nesting);
        }
        let kp = interleave_with(g, &nesting).unwrap();
        assert!(matches!(kp.kind(), "block-diagonal" | "lower-bidiagonal" | "upper-bidiagonal" | "block-tridiagonal"));
        let pr = interleave_indices(&nesting.rows).unwrap();
        let pc = interleave_indices(&nesting.cols).unwrap();
        let kd = k.to_dense();
        let want = Mat::from_fn(kd.nrows(), kd.ncols(), |a, b| kd[(pr[a], pc[b])]);
        // A permutation moves entries without arithmetic: exact equality.
        assert_eq!(max_diff(&kp.to_dense(), &want), 0.0);

        // Vectors: P_r (K x) = K' (P_c x), and deinterleave undoes interleave.
        let x = BlockVec::new(rand_mat(&mut rng, kd.ncols(), 2), g.col_sizes().to_vec()).unwrap();
        let px = x.interleave(&nesting.cols).unwrap();
        assert_eq!(px.deinterleave(&nesting.cols).unwrap().data(), x.data());
        let y = BlockVec::new(k.mul_dense(x.data()).unwrap(), g.row_sizes().to_vec()).unwrap();
        let py = y.interleave(&nesting.rows).unwrap();
        // Same products, summed in a different order: rounding only.
        assert!(max_diff(&kp.mul_dense(px.data()).unwrap(), &py.into_mat()) < 1e-12);
    }
}

fn example_grid(side: Option<Side>) -> Block {
    // 2x2 grid; each block has L = 3 levels of sizes [1, 2, 1] x [1, 2, 1].
    let sizes = [1usize, 2, 1];
    let leaf =
        |seed: u64, r: usize, c: usize| Block::dense(Mat::from_fn(r, c, |i, j| (seed + 1) as f64 + (i * c + j) as f64));
    let structure = |seed: u64| {
        let diag = (0..3).map(|k| leaf(seed, sizes[k], sizes[k])).collect();
        match side {
            None => Block::block_diag(diag),
            Some(side) => {
                Block::bidiag(side, diag, (0..2).map(|k| leaf(seed, sizes[k], sizes[k + 1])).collect()).unwrap()
            }
        }
    };
    Block::grid(vec![vec![structure(0), Block::identity(4)], vec![structure(2), Block::zeros(4, 4)]]).unwrap()
}

fn before_after(k: &Block) -> String {
    let kp = interleave(k.as_grid().unwrap()).unwrap();
    format!("before:\n{}{}\nafter:\n{}{}", k.structure(), k.pattern().to_text(), kp.structure(), kp.pattern().to_text())
}

#[test]
fn worked_example_diagonal_blocks_become_block_diagonal() {
    let k = example_grid(None);
    assert_eq!(interleave(k.as_grid().unwrap()).unwrap().kind(), "block-diagonal");
    insta::assert_snapshot!(before_after(&k));
}

#[test]
fn worked_example_upper_bidiagonal_blocks_become_block_upper_bidiagonal() {
    let k = example_grid(Some(Side::Upper));
    assert_eq!(interleave(k.as_grid().unwrap()).unwrap().kind(), "upper-bidiagonal");
    insta::assert_snapshot!(before_after(&k));
}

fn sym(rng: &mut ChaCha8Rng, n: usize) -> Mat<f64> {
    let b = rand_mat(rng, n, n);
    Mat::from_fn(n, n, |i, j| b[(i, j)] + b[(j, i)])
}

#[test]
fn lifted_hessian_system_interleaves_to_algorithm_md() {
    let mut rng = rng(23);
    let (p, a) = ([2usize, 1, 3], [2usize, 3, 1]);
    let l = 3;
    let eps = 0.5;
    // Per-layer blocks (index l = 0..L; G_0, Dz_0, E_0 are never used).
    let dx: Vec<Mat<f64>> = (0..l).map(|i| rand_mat(&mut rng, a[i], p[i])).collect();
    let aa: Vec<Mat<f64>> = (0..l).map(|i| sym(&mut rng, p[i])).collect();
    let g: Vec<Mat<f64>> = (1..l).map(|i| rand_mat(&mut rng, p[i], a[i - 1])).collect();
    let dz: Vec<Mat<f64>> = (1..l).map(|i| rand_mat(&mut rng, a[i], a[i - 1])).collect();
    let e: Vec<Mat<f64>> = (1..l).map(|i| sym(&mut rng, a[i - 1])).collect();
    let d = |m: &Mat<f64>| Block::dense(m.clone());

    let a_eps =
        Block::block_diag(aa.iter().map(|m| d(m).add(&Block::scaled_identity(m.nrows(), eps)).unwrap()).collect());
    // G P has G_l at (l, l-1) and a zero diagonal.
    let gp = Block::bidiag(Side::Lower, (0..l).map(|i| Block::zeros(p[i], a[i])).collect(), g.iter().map(d).collect())
        .unwrap();
    let dxb = Block::block_diag(dx.iter().map(d).collect());
    // P^T E P = diag(E_{l+1}), E_{L+1} = 0.
    let pep = Block::block_diag((0..l).map(|i| if i + 1 < l { d(&e[i]) } else { Block::zeros(a[i], a[i]) }).collect());
    let m = Block::unit_bidiag(Side::Lower, &a, dz.iter().map(|x| d(x).neg()).collect()).unwrap();
    let k = Block::grid(vec![
        vec![a_eps, gp.clone(), dxb.transpose()],
        vec![gp.transpose(), pep, m.transpose().neg()],
        vec![dxb, m.neg(), Block::zeros(a.iter().sum(), a.iter().sum())],
    ])
    .unwrap();
    let kp = interleave_symmetric(k.as_grid().unwrap(), 0.0).unwrap();
    assert!(kp.is_symmetric());
    assert_eq!(kp.len(), l);

    let id = |n: usize, s: f64| Mat::from_fn(n, n, |i, j| if i == j { s } else { 0.0 });
    let z = |r: usize, c: usize| Mat::<f64>::zeros(r, c);
    for i in 0..l {
        let e_next = if i + 1 < l { e[i].clone() } else { z(a[i], a[i]) };
        let want = Block::grid(vec![
            vec![d(&(&aa[i] + id(p[i], eps))), d(&z(p[i], a[i])), d(&dx[i].transpose().to_owned())],
            vec![d(&z(a[i], p[i])), d(&e_next), d(&id(a[i], -1.0))],
            vec![d(&dx[i]), d(&id(a[i], -1.0)), d(&z(a[i], a[i]))],
        ])
        .unwrap();
        assert_eq!(max_diff(&kp.diag()[i].to_dense(), &want.to_dense()), 0.0, "diagonal block {i}");
        if i > 0 {
            let want = Block::grid(vec![
                vec![d(&z(p[i], p[i - 1])), d(&g[i - 1]), d(&z(p[i], a[i - 1]))],
                vec![d(&z(a[i], p[i - 1])), d(&z(a[i], a[i - 1])), d(&z(a[i], a[i - 1]))],
                vec![d(&z(a[i], p[i - 1])), d(&dz[i - 1]), d(&z(a[i], a[i - 1]))],
            ])
            .unwrap();
            assert_eq!(max_diff(&kp.sub()[i - 1].to_dense(), &want.to_dense()), 0.0, "sub-diagonal block {i}");
        }
    }
    // The whole symmetric matrix is the permuted K.
    let n = infer_nesting(k.as_grid().unwrap()).unwrap();
    let (pr, kd) = (interleave_indices(&n.rows).unwrap(), k.to_dense());
    let want = Mat::from_fn(kd.nrows(), kd.ncols(), |x, y| kd[(pr[x], pr[y])]);
    assert_eq!(max_diff(&Block::Tridiag(kp).to_dense(), &want), 0.0);
}

#[test]
fn interleave_errors_name_the_offending_partitions() {
    let diag = |sizes: &[usize]| Block::block_diag(sizes.iter().map(|&n| Block::identity(n)).collect());
    let g = |rows: Vec<Vec<Block>>| Block::grid(rows).unwrap();
    let errs = [
        interleave(
            g(vec![vec![diag(&[1, 2]), Block::zeros(3, 3)], vec![Block::zeros(3, 3), Block::zeros(3, 3)]])
                .as_grid()
                .unwrap(),
        )
        .unwrap_err(),
        interleave(g(vec![vec![diag(&[1, 2]), diag(&[2, 1])], vec![diag(&[2, 1]), diag(&[2, 1])]]).as_grid().unwrap())
            .unwrap_err(),
        interleave(g(vec![vec![diag(&[1, 2]), Block::dense(Mat::zeros(3, 3))]]).as_grid().unwrap()).unwrap_err(),
        interleave(g(vec![vec![diag(&[1, 2]), diag(&[1, 1, 1])]]).as_grid().unwrap()).unwrap_err(),
        interleave_symmetric(
            g(vec![vec![diag(&[1, 2]), Block::zeros(3, 3)], vec![diag(&[1, 2]), diag(&[1, 2])]]).as_grid().unwrap(),
            1e-12,
        )
        .unwrap_err(),
        BlockVec::new(Mat::zeros(3, 1), vec![1, 1]).unwrap_err(),
        BlockVec::new(Mat::zeros(3, 1), vec![3]).unwrap().interleave(&[vec![1, 1]]).unwrap_err(),
    ];
    insta::assert_snapshot!(errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"));
}
