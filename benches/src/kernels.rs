//! Dense baselines measured in the same run as the structured solver: faer's
//! GEMM (the machine's practical peak) and faer's plain Bunch–Kaufman
//! factorization of a symmetric indefinite matrix.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::lblt::factor;
use faer::linalg::matmul::matmul;
use faer::{Accum, Auto, Mat, Par};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random matrix with entries uniform in `[-1, 1)`.
pub fn random_mat(seed: u64, r: usize, c: usize) -> Mat<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Mat::from_fn(r, c, |_, _| rng.random_range(-1.0..1.0))
}

/// A random symmetric (indefinite) matrix.
pub fn random_sym(seed: u64, n: usize) -> Mat<f64> {
    let a = random_mat(seed, n, n);
    Mat::from_fn(n, n, |i, j| a[(i, j)] + a[(j, i)])
}

/// `out = a b`, sequential: the per-core GEMM rate the factorization is
/// compared with.
pub fn gemm(out: &mut Mat<f64>, a: &Mat<f64>, b: &Mat<f64>) {
    matmul(out.as_mut(), Accum::Replace, a.as_ref(), b.as_ref(), 1.0, Par::Seq)
}

/// Scratch for repeated plain Bunch–Kaufman factorizations of one size,
/// allocated once so that only the factorization is timed.
pub struct BunchKaufman {
    params: factor::LbltParams,
    mem: MemBuffer,
    sub: Vec<f64>,
    perm: Vec<usize>,
    pinv: Vec<usize>,
}

impl BunchKaufman {
    /// Scratch for matrices of size `n`.
    pub fn new(n: usize) -> BunchKaufman {
        let params = factor::LbltParams {
            pivoting: factor::PivotingStrategy::Partial,
            ..<factor::LbltParams as Auto<f64>>::auto()
        };
        let mem = MemBuffer::new(factor::cholesky_in_place_scratch::<usize, f64>(n, Par::Seq, params.into()));
        BunchKaufman { params, mem, sub: vec![0.0; n], perm: vec![0; n], pinv: vec![0; n] }
    }

    /// Factors `m` in place (its lower triangle), sequentially.
    pub fn factor(&mut self, m: &mut Mat<f64>) {
        self.sub.fill(0.0);
        factor::cholesky_in_place(
            m.as_mut(),
            faer::ColMut::from_slice_mut(&mut self.sub).as_diagonal_mut(),
            &mut self.perm,
            &mut self.pinv,
            Par::Seq,
            MemStack::new(&mut self.mem),
            self.params.into(),
        );
    }
}
