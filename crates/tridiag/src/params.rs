//! Knobs of the factorization.

use faer::Par;

/// How much parallelism the dense kernels and the right-hand-side loop may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParPolicy {
    /// Everything sequential.
    Seq,
    /// faer kernels run on the global rayon pool with this many threads
    /// (0 = all), and the two chains of [`Strategy::TwoSided`] are split
    /// whatever their size, with sequential kernels inside, so that a caller
    /// can force the parallel paths (tests do). `BlockDiagLdlt` keeps its
    /// own threshold of `2^18` for `sum n^3` with every policy but `Seq`.
    Rayon(usize),
    /// Chosen per block by its size: sequential kernels below
    /// [`ParPolicy::AUTO_THRESHOLD`] (measured: two threads slow every
    /// factorization below n ≈ 1024 on a 2-core machine), all threads above.
    /// Right-hand-side columns are split across rayon only while the kernels
    /// are sequential, so the two never nest; independent work is split
    /// only from [`ParPolicy::MIN_SPLIT_FLOPS`] on.
    #[default]
    Auto,
}

impl ParPolicy {
    /// Block size from which [`ParPolicy::Auto`] hands the kernels to rayon.
    pub const AUTO_THRESHOLD: usize = 1024;

    /// The faer parallelism for a kernel on a block of size `n`.
    pub fn kernel_par(self, n: usize) -> Par {
        match self {
            ParPolicy::Seq => Par::Seq,
            ParPolicy::Rayon(t) => Par::rayon(t),
            ParPolicy::Auto if n >= Self::AUTO_THRESHOLD => Par::rayon(0),
            ParPolicy::Auto => Par::Seq,
        }
    }

    /// Work, in flops counted roughly, from which [`ParPolicy::Auto`] hands
    /// independent pieces (the two chains of [`Strategy::TwoSided`],
    /// right-hand-side columns, a caller's layers) to different rayon
    /// threads. Below it, waking a sleeping thread and handing it the
    /// work (tens of µs from a thread outside the pool) costs more than
    /// the thread saves: `cargo run --release -p hinv --example
    /// phase_times -- 16 4 2 101` factored in 0.19–0.28 ms at `4ca017e`,
    /// where every region split, and factors in 0.13 ms on one thread.
    pub const MIN_SPLIT_FLOPS: f64 = 1.5e6;

    /// True when independent pieces of work totalling about `flops` should
    /// run on different rayon threads: never for `Seq`, always for
    /// `Rayon(_)` (on a one-thread pool the pieces then run one after the
    /// other, with the kernels they would have on two threads), and for
    /// `Auto` from [`ParPolicy::MIN_SPLIT_FLOPS`] on, given a second thread.
    pub fn split_work(self, flops: f64) -> bool {
        match self {
            ParPolicy::Seq => false,
            ParPolicy::Rayon(_) => true,
            ParPolicy::Auto => flops >= Self::MIN_SPLIT_FLOPS && rayon::current_num_threads() > 1,
        }
    }

    /// True when independent columns of a right-hand side may be solved on
    /// different rayon threads (only when no kernel is parallel itself and
    /// the solve has `flops` worth splitting).
    pub(crate) fn split_columns(self, max_block: usize, flops: f64) -> bool {
        matches!(self, ParPolicy::Auto if max_block < Self::AUTO_THRESHOLD) && self.split_work(flops)
    }
}

/// What a numerically zero pivot does to the factorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnSingular {
    /// Fail with [`crate::TridiagError::Singular`] naming the block and pivot.
    #[default]
    Error,
    /// Count the pivot as a zero eigenvalue and carry on, so that inertia and
    /// log-determinant (`-inf`) are still reported; solves then fail.
    Continue,
}

/// Order of the block elimination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Top-down: `S_0 = D_0`, then block after block to the last.
    #[default]
    Sequential,
    /// "Burn at both ends": eliminate top-down and bottom-up at the same
    /// time and meet at the block that balances the two halves' work; the
    /// halves run on two rayon threads (their kernels sequential, so
    /// threads never nest) when the policy splits them
    /// ([`ParPolicy::split_work`]: always for `Rayon(_)`, for `Auto` from
    /// [`ParPolicy::MIN_SPLIT_FLOPS`] of work). Same solution, and by
    /// Haynsworth the same inertia and determinant, as [`Strategy::Sequential`].
    TwoSided,
    /// [`Strategy::TwoSided`] from [`AUTO_TWO_SIDED_MIN_BLOCKS`] blocks on,
    /// [`Strategy::Sequential`] below: with fewer blocks the two chains have
    /// too little to run in parallel (and on hinv's shallow networks the
    /// two-sided order certifies fewer inertias; docs/tridiag-parallel.md).
    /// [`crate::BlockLdlt::strategy`] reports the order that ran.
    Auto,
}

/// Fewest blocks for which [`Strategy::Auto`] eliminates from both ends.
pub const AUTO_TWO_SIDED_MIN_BLOCKS: usize = 11;

impl Strategy {
    /// The order that runs on `blocks` blocks: [`Strategy::Auto`] resolved,
    /// the others as they are.
    pub fn resolve(self, blocks: usize) -> Strategy {
        match self {
            Strategy::Auto if blocks >= AUTO_TWO_SIDED_MIN_BLOCKS => Strategy::TwoSided,
            Strategy::Auto => Strategy::Sequential,
            s => s,
        }
    }
}

/// Parameters of [`crate::BlockLdlt::factor`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FactorParams {
    /// Parallelism of the dense kernels and of the right-hand-side loop.
    pub par: ParPolicy,
    /// Order of the elimination (and whether its halves run in parallel).
    pub strategy: Strategy,
    /// What to do with a numerically zero pivot.
    pub on_singular: OnSingular,
    /// Relative pivot threshold: a pivot of the Schur complement
    /// `S_k = D_k - C W C^T` (size `n_k`) is zero when its smallest eigenvalue
    /// magnitude is at most `singular_tol * n_k * max(max|D_k|, max|C W C^T|)`
    /// (the scale of the terms before they cancel). The default, machine
    /// epsilon, flags what rounding alone could have produced from an
    /// exactly singular block.
    ///
    /// Detection is per block: a singular `S` whose null vector barely
    /// reaches the blocks eliminated last can leave every pivot above the
    /// threshold; its near-zero eigenvalue is then counted by the sign its
    /// pivot happened to get. Exactly singular Schur complements (equal
    /// rows, zero blocks, exact cancellation) are always caught.
    pub singular_tol: f64,
    /// Relative tolerance of the symmetry check of the input (entrywise,
    /// against the largest entry of the block). `f64::INFINITY` accepts
    /// every diagonal block, and the block-tridiagonal factorizations then
    /// skip the pass that measures the asymmetry (for callers whose blocks
    /// are symmetric by construction; the factorizations read the lower
    /// triangle).
    pub symmetry_tol: f64,
}

impl Default for FactorParams {
    fn default() -> Self {
        FactorParams {
            par: ParPolicy::Auto,
            strategy: Strategy::Sequential,
            on_singular: OnSingular::Error,
            singular_tol: f64::EPSILON,
            // Blocks assembled by sums of products are symmetric only up to
            // rounding; a few ulps of the block's largest entry is still exact
            // symmetry for the factorization (it reads one triangle).
            symmetry_tol: 8.0 * f64::EPSILON,
        }
    }
}
