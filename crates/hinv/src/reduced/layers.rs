//! Running one piece of work per layer, on rayon's threads or in order.
//!
//! The eliminations of the layers' parameters, and the two substitutions
//! of a solve through them, touch each layer's own rows only: they split
//! across threads whenever the policy finds them worth it.

use faer::MatMut;
use rayon::prelude::*;

use super::multipliers::Scratch;

/// `f(scratch, l, item_l)` for every layer's item, in parallel when
/// `split` (each run of layers a thread takes shares one scratch from
/// `scratch`), else in order with one scratch; the results in layer order,
/// or the first error in layer order.
pub(super) fn map_layers<T: Send, R: Send, E: Send>(
    split: bool,
    items: Vec<T>,
    scratch: impl Fn() -> Scratch + Sync + Send,
    f: impl Fn(&mut Scratch, usize, T) -> Result<R, E> + Sync + Send,
) -> Result<Vec<R>, E> {
    if split {
        // Collected whole first, so that the error returned is the first
        // in layer order, as in order, whichever thread met it first.
        let out: Vec<Result<R, E>> =
            items.into_par_iter().enumerate().map_init(scratch, |s, (l, item)| f(s, l, item)).collect();
        out.into_iter().collect()
    } else {
        let mut s = scratch();
        items.into_iter().enumerate().map(|(l, item)| f(&mut s, l, item)).collect()
    }
}

/// `m`'s rows cut at `bounds` (ascending, at most `m.nrows()`): piece `i`
/// is rows `bounds[i]..bounds[i + 1]`, so that each layer's rows can be
/// handed to a different thread. Rows outside `bounds` are in no piece.
pub(super) fn split_rows<'a>(m: MatMut<'a, f64>, bounds: &[usize]) -> Vec<MatMut<'a, f64>> {
    let mut pieces = Vec::with_capacity(bounds.len().saturating_sub(1));
    let Some(&first) = bounds.first() else { return pieces };
    let (_, mut rest) = m.split_at_row_mut(first);
    for w in bounds.windows(2) {
        let (piece, tail) = rest.split_at_row_mut(w[1] - w[0]);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    /// The pieces are the rows between consecutive bounds, in order, and
    /// rows before the first bound or after the last are left out.
    #[test]
    fn split_rows_cuts_at_the_bounds() {
        let mut m = Mat::from_fn(9, 2, |i, j| (10 * i + j) as f64);
        let pieces = split_rows(m.as_mut(), &[1, 3, 3, 7]);
        let firsts: Vec<(usize, Option<f64>)> =
            pieces.iter().map(|p| (p.nrows(), (p.nrows() > 0).then(|| p[(0, 0)]))).collect();
        assert_eq!(firsts, vec![(2, Some(10.0)), (0, None), (4, Some(30.0))]);
        assert!(split_rows(m.as_mut(), &[]).is_empty());
    }

    /// Split or not, every item is mapped once and the results come back
    /// in layer order; with two failing layers the error is the first in
    /// layer order even when a thread meets the later one first (layer 3
    /// waits, up to a second, for layer 45 to fail on the other thread).
    #[test]
    fn map_layers_agrees_split_and_in_order() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::{Duration, Instant};
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        for split in [false, true] {
            let items: Vec<usize> = (0..50).collect();
            let out =
                pool.install(|| map_layers(split, items, Scratch::default, |_, l, i| Ok::<_, usize>(l * 100 + i)));
            assert_eq!(out, Ok((0..50).map(|l| l * 101).collect::<Vec<_>>()));
            let late_failed = AtomicBool::new(false);
            let out = pool.install(|| {
                map_layers(split, vec![(); 50], Scratch::default, |_, l, ()| match l {
                    3 => {
                        let start = Instant::now();
                        while split && !late_failed.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(1) {
                            std::thread::yield_now();
                        }
                        Err(l)
                    }
                    45 => {
                        late_failed.store(true, Ordering::SeqCst);
                        Err(l)
                    }
                    _ => Ok(()),
                })
            });
            assert_eq!(out, Err(3), "split {split}");
        }
    }
}
