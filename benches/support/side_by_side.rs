//! Two workloads measured side by side, for the bench binaries that compare them: blocks of
//! checks alternating between the two, the order swapped every block, so that a noisy
//! neighbour on a shared machine weighs on both alike. Shared with `#[path]`: each bench is
//! a crate of its own.

use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tollgate::decision::Checker;
use tollgate::gateway::CheckRequest;

/// Nanoseconds per `decide` of `request`, over one block of `checks`.
pub fn block(runtime: &Runtime, checker: &Checker, request: &CheckRequest, checks: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..checks {
        let decided = runtime.block_on(checker.decide(request));
        assert!(decided.is_ok(), "the bench request must pass");
    }
    started.elapsed().as_nanos() as f64 / checks as f64
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The first and third quartiles.
pub fn quartiles(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 4], values[values.len() * 3 / 4])
}

/// What [`alternate`] measured: the medians of each side and of their per-block difference,
/// with its interquartile range.
pub struct Paired {
    pub a: f64,
    pub b: f64,
    pub difference: f64,
    pub q1: f64,
    pub q3: f64,
    pub blocks: usize,
}

/// Up to `blocks` pairs of blocks (60 s at most), `a` first in even pairs, `b` first in odd.
pub fn alternate(blocks: usize, mut a: impl FnMut() -> f64, mut b: impl FnMut() -> f64) -> Paired {
    let (mut xs, mut ys, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in 0..blocks {
        let (x, y) = if n % 2 == 0 {
            let x = a();
            (x, b())
        } else {
            let y = b();
            (a(), y)
        };
        xs.push(x);
        ys.push(y);
        diff.push(x - y);
        if Instant::now() > deadline {
            break;
        }
    }
    let (a, b, difference) = (median(&mut xs), median(&mut ys), median(&mut diff));
    let (q1, q3) = quartiles(&mut diff);
    Paired { a, b, difference, q1, q3, blocks: diff.len() }
}
