//! Running one command over a fleet: many databases, or tenant schemas, of
//! one environment. A shared room for the commands that take a fleet
//! (`apply`, `status`): it resolves the targets (`targets.rs`), takes this
//! run's shard of them, and schedules the per-target work with bounded
//! concurrency, canaries first and a failure budget. What is done to one
//! target is the command's own; this room never connects for it.
//!
//! Memory: at most `parallel` targets are in flight; a finished target
//! leaves only its small report row.

pub mod targets;

use std::future::Future;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;

pub use targets::{FleetTarget, Shard};

/// How a fleet run is paced.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pacing {
    /// Targets in flight at once (at least 1).
    pub parallel: usize,
    /// The first K targets run (and must all succeed) before any other starts.
    pub canary: usize,
    /// Stop starting targets once this many failed (`None`: never).
    pub max_failures: Option<usize>,
}

/// A target's row in a fleet report, as the scheduler needs to see it.
pub trait Row {
    fn failed(&self) -> bool;
    /// The row of a target that was never started, and why.
    fn not_started(index: usize, target: &FleetTarget, canary: bool, why: &str) -> Self;
}

/// The targets of this run: all of them, or the shard's, in fleet order.
pub fn select(all: Vec<FleetTarget>, shard: Option<Shard>) -> Vec<FleetTarget> {
    match shard {
        None => all,
        Some(s) => all
            .into_iter()
            .filter(|t| s.contains(&t.identity))
            .collect(),
    }
}

/// Runs `work` on every target under `pacing` and returns the rows in fleet
/// order. The first `canary` targets run first; if one of them fails, no
/// other target starts. Once `max_failures` targets failed, none starts
/// either. `done` sees each row as it finishes (for progress lines).
pub async fn run<'a, R, F, Fut>(
    targets: &'a [FleetTarget],
    pacing: Pacing,
    mut work: F,
    done: &mut dyn FnMut(&R),
) -> Vec<R>
where
    R: Row,
    F: FnMut(usize, &'a FleetTarget) -> Fut,
    Fut: Future<Output = R>,
{
    let n = targets.len();
    let canaries = pacing.canary.min(n);
    let parallel = pacing.parallel.max(1);
    let mut rows: Vec<Option<R>> = (0..n).map(|_| None).collect();
    let mut failures = 0usize;
    let over_budget = |failures: usize| pacing.max_failures.is_some_and(|m| failures >= m);
    for (range, phase_canary) in [(0..canaries, true), (canaries..n, false)] {
        let canary_failed = !phase_canary && failures > 0 && canaries > 0;
        let mut next = range.start;
        let mut in_flight = FuturesUnordered::new();
        loop {
            let stop = canary_failed || over_budget(failures);
            while !stop && in_flight.len() < parallel && next < range.end {
                let i = next;
                let fut = work(i, &targets[i]);
                in_flight.push(async move { (i, fut.await) });
                next += 1;
            }
            match in_flight.next().await {
                Some((i, row)) => {
                    if row.failed() {
                        failures += 1;
                    }
                    done(&row);
                    rows[i] = Some(row);
                }
                None => break,
            }
        }
        let why = if canary_failed {
            "not started: a canary failed"
        } else {
            "not started: --max-failures reached"
        };
        for (i, slot) in rows.iter_mut().enumerate().take(range.end).skip(next) {
            let row = R::not_started(i, &targets[i], phase_canary, why);
            done(&row);
            *slot = Some(row);
        }
    }
    rows.into_iter().flatten().collect()
}

/// All, some or none of the targets succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FleetOutcome {
    AllSucceeded,
    SomeSucceeded,
    NoneSucceeded,
}

impl FleetOutcome {
    pub fn of(succeeded: usize, total: usize) -> FleetOutcome {
        if succeeded == total {
            FleetOutcome::AllSucceeded
        } else if succeeded == 0 {
            FleetOutcome::NoneSucceeded
        } else {
            FleetOutcome::SomeSucceeded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct R {
        i: usize,
        ok: Option<bool>,
    }
    impl Row for R {
        fn failed(&self) -> bool {
            self.ok == Some(false)
        }
        fn not_started(i: usize, _: &FleetTarget, _: bool, _: &str) -> Self {
            R { i, ok: None }
        }
    }

    fn fleet(n: usize) -> Vec<FleetTarget> {
        (0..n)
            .map(|i| FleetTarget {
                identity: format!("t{i}"),
                database: format!("h:5432/t{i}"),
                schema: None,
                history_schema: None,
                url: String::new(),
            })
            .collect()
    }

    /// Runs a fleet whose targets in `failing` fail; returns the rows and
    /// the highest number of targets seen in flight at once.
    fn simulate(n: usize, pacing: Pacing, failing: &[usize]) -> (Vec<R>, usize) {
        let targets = fleet(n);
        let flight = RefCell::new((0usize, 0usize));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let rows = rt.block_on(run(
            &targets,
            pacing,
            |i, _| {
                let flight = &flight;
                async move {
                    {
                        let mut f = flight.borrow_mut();
                        f.0 += 1;
                        f.1 = f.1.max(f.0);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(2 + (i % 3) as u64)).await;
                    flight.borrow_mut().0 -= 1;
                    R {
                        i,
                        ok: Some(!failing.contains(&i)),
                    }
                }
            },
            &mut |_| {},
        ));
        let peak = flight.borrow().1;
        (rows, peak)
    }

    #[test]
    fn rows_come_back_in_fleet_order_and_concurrency_is_bounded() {
        let pacing = Pacing {
            parallel: 3,
            canary: 0,
            max_failures: None,
        };
        let (rows, peak) = simulate(20, pacing, &[4]);
        assert_eq!(
            rows.iter().map(|r| r.i).collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        assert!(
            rows.iter().all(|r| r.ok.is_some()),
            "a failure without a budget stops nothing"
        );
        assert_eq!(peak, 3);
    }

    #[test]
    fn a_failing_canary_leaves_every_other_target_untouched() {
        let pacing = Pacing {
            parallel: 4,
            canary: 2,
            max_failures: None,
        };
        let (rows, _) = simulate(10, pacing, &[1]);
        assert_eq!(rows[0].ok, Some(true));
        assert_eq!(rows[1].ok, Some(false));
        assert!(rows[2..].iter().all(|r| r.ok.is_none()));
    }

    #[test]
    fn no_target_starts_once_the_failure_budget_is_spent() {
        let pacing = Pacing {
            parallel: 1,
            canary: 0,
            max_failures: Some(2),
        };
        let (rows, _) = simulate(8, pacing, &[1, 3, 4]);
        let ran: Vec<usize> = rows
            .iter()
            .filter(|r| r.ok.is_some())
            .map(|r| r.i)
            .collect();
        assert_eq!(ran, [0, 1, 2, 3]);
    }
}
