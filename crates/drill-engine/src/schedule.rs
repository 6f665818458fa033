//! The scheduler: when a playbook's runs are due, with the semantics of the Kubernetes
//! CronJob controller.
//!
//! - A schedule fires at its **nominal** times (the cron's instants, UTC); each one ends as
//!   exactly one run or one missed record in the store (`drill_fires`, unique by
//!   `(playbook, nominal_ms)`, so that it fires once however many daemons look at it).
//! - After downtime, only the most recent missed time may still run (one catch-up), and
//!   only within `starting_deadline`; every earlier one is recorded as missed
//!   (`daemon-down`), so the scheduler is never stuck however many times were missed.
//! - `concurrency`: `forbid` records the time as missed (`forbid`) while a run of the
//!   playbook is still going (read from the store, so a run of another daemon counts);
//!   `allow` starts beside it; `replace` starts after the old runs were aborted and reverted.
//! - `suspend` and a halt record every time as missed (`suspended`, `halted`).
//! - `jitter` delays the start, not the nominal time the run is keyed by.
//!
//! What it is not: it starts nothing itself. [`Scheduler::tick`] returns the runs to start;
//! the daemon starts them with the engine ([`crate::run`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use drill_spec::model::{Concurrency, Schedule};

use crate::fires::MissReason;
use crate::store::{Store, StoreError};

/// At most this many missed times are recorded one by one after a downtime; older ones are
/// left unrecorded (a schedule every second down for a year would otherwise be 31 million
/// rows).
pub const MAX_MISSED: usize = 10_000;

/// One scheduled playbook.
#[derive(Debug, Clone)]
pub struct Entry {
    pub playbook: String,
    pub cron: cron::Schedule,
    pub spec: Schedule,
}

/// What the nominal times in `(after, now]` become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Missed while no daemon ran (every time before the most recent).
    pub down: Vec<DateTime<Utc>>,
    /// The most recent time, and why it does not run (`None`: it runs).
    pub latest: Option<(DateTime<Utc>, Option<MissReason>)>,
}

/// The nominal times in `(after, now]` and what becomes of them, before concurrency, suspend
/// and halt are considered: the most recent runs unless it is later than `deadline`.
pub fn due(
    cron: &cron::Schedule,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
    deadline: Option<Duration>,
) -> Due {
    // Walked backwards from now, so that a long downtime costs no more than MAX_MISSED.
    let probe = now + chrono::Duration::milliseconds(1);
    let mut times: Vec<DateTime<Utc>> = cron
        .after(&probe)
        .rev()
        .filter(|t| *t <= now)
        .take_while(|t| *t > after)
        .take(MAX_MISSED + 1)
        .collect();
    times.reverse();
    let latest = times.pop().map(|t| {
        let late = (now - t).to_std().unwrap_or_default();
        let missed = deadline.is_some_and(|d| late > d);
        (t, missed.then_some(MissReason::Deadline))
    });
    Due {
        down: times,
        latest,
    }
}

/// A run to start now (after `delay`, the jitter), keyed by its nominal time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub playbook: String,
    pub nominal: DateTime<Utc>,
    pub delay: Duration,
    /// `concurrency: replace`: these runs are aborted, and their faults reverted, before it
    /// starts.
    pub replace: Vec<String>,
}

/// The scheduler's state between ticks is all in the store; this holds who it is.
#[derive(Debug, Clone)]
pub struct Scheduler {
    pub owner: String,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t).unwrap_or_default()
}

impl Scheduler {
    /// Looks at every entry at `now`: records what was missed, claims what runs, and
    /// returns the runs to start.
    pub async fn tick(
        &self,
        store: &Store,
        entries: &[Entry],
        now: DateTime<Utc>,
    ) -> Result<Vec<Start>, StoreError> {
        Ok(self.tick_counted(store, entries, now).await?.0)
    }

    /// [`Scheduler::tick`], also returning what it recorded as missed (playbook, reason,
    /// how many), for the daemon's metrics.
    pub async fn tick_counted(
        &self,
        store: &Store,
        entries: &[Entry],
        now: DateTime<Utc>,
    ) -> Result<(Vec<Start>, Vec<(String, MissReason, u64)>), StoreError> {
        let halted = store.halted().await?.is_some();
        let mut starts = Vec::new();
        let mut counted = Vec::new();
        for e in entries {
            let since = store.schedule_since(&e.playbook, ms(now)).await?;
            let after = store
                .last_fire(&e.playbook)
                .await?
                .map_or(since, |l| l.max(since));
            let d = due(
                &e.cron,
                from_ms(after),
                now,
                e.spec.starting_deadline.map(|d| d.0),
            );
            if !d.down.is_empty() {
                let times: Vec<i64> = d.down.iter().map(|t| ms(*t)).collect();
                let n = store
                    .missed(&e.playbook, &times, MissReason::DaemonDown, &self.owner)
                    .await?;
                counted.push((e.playbook.clone(), MissReason::DaemonDown, n));
            }
            let Some((t, late)) = d.latest else { continue };
            let running = store.running(&e.playbook).await?;
            let reason = if halted {
                Some(MissReason::Halted)
            } else if e.spec.suspend {
                Some(MissReason::Suspended)
            } else if late.is_some() {
                late
            } else if !running.is_empty() && e.spec.concurrency == Concurrency::Forbid {
                Some(MissReason::Forbid)
            } else {
                None
            };
            if let Some(r) = reason {
                let n = store.missed(&e.playbook, &[ms(t)], r, &self.owner).await?;
                counted.push((e.playbook.clone(), r, n));
                continue;
            }
            if !store.claim_fire(&e.playbook, ms(t), &self.owner).await? {
                continue; // another daemon took it
            }
            let replace = if e.spec.concurrency == Concurrency::Replace {
                running.into_iter().map(|r| r.id).collect()
            } else {
                Vec::new()
            };
            starts.push(Start {
                playbook: e.playbook.clone(),
                nominal: t,
                delay: jitter(e.spec.jitter.map(|j| j.0)),
                replace,
            });
        }
        Ok((starts, counted))
    }

    /// The next nominal time of any entry after `now`.
    pub fn next(entries: &[Entry], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        entries
            .iter()
            .filter_map(|e| e.cron.after(&now).next())
            .min()
    }
}

/// A random delay below `max` (none without a jitter).
fn jitter(max: Option<Duration>) -> Duration {
    let Some(max) = max.filter(|m| !m.is_zero()) else {
        return Duration::ZERO;
    };
    // Not for secrecy: spreading starts. The process's random id seeds it per call.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let x = u64::from(nanos).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11;
    max.mul_f64((x as f64) / ((1u64 << 53) as f64))
}

/// Wall-clock time for the scheduler: the system's, or one that follows tokio's clock from
/// an anchor, so that tests with paused time see the nominal instants exactly.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    Tokio {
        wall: DateTime<Utc>,
        at: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that reads `wall` now and advances with tokio's time.
    pub fn tokio(wall: DateTime<Utc>) -> Clock {
        Clock::Tokio {
            wall,
            at: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Tokio { wall, at } => {
                *wall + chrono::Duration::from_std(at.elapsed()).unwrap_or_default()
            }
        }
    }

    /// Sleeps until `t` on this clock, or for at most `cap`.
    pub async fn sleep_until(&self, t: DateTime<Utc>, cap: Duration) {
        let d = (t - self.now()).to_std().unwrap_or_default().min(cap);
        tokio::time::sleep(d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn every_minute() -> cron::Schedule {
        "0 * * * * *".parse().expect("cron")
    }

    #[test]
    fn after_downtime_only_the_latest_time_runs_and_only_within_the_deadline() {
        let c = every_minute();
        let d = due(
            &c,
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T03:21:30Z"),
            Some(Duration::from_secs(60)),
        );
        assert_eq!(d.down.len(), 200);
        assert_eq!(d.down[0], at("2026-01-01T00:01:00Z"));
        assert_eq!(d.latest, Some((at("2026-01-01T03:21:00Z"), None)));
        let late = due(
            &c,
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T03:22:45Z"),
            Some(Duration::from_secs(30)),
        );
        assert_eq!(
            late.latest,
            Some((at("2026-01-01T03:22:00Z"), Some(MissReason::Deadline)))
        );
        let none = due(
            &c,
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T00:00:59Z"),
            None,
        );
        assert_eq!(
            none,
            Due {
                down: vec![],
                latest: None
            }
        );
    }

    #[test]
    fn a_very_long_downtime_is_bounded() {
        let c: cron::Schedule = "* * * * * *".parse().expect("cron");
        let d = due(
            &c,
            at("2026-01-01T00:00:00Z"),
            at("2026-01-02T00:00:00Z"),
            None,
        );
        assert_eq!(d.down.len(), MAX_MISSED);
        assert_eq!(d.latest.map(|l| l.0), Some(at("2026-01-02T00:00:00Z")));
    }

    #[test]
    fn jitter_stays_below_its_bound() {
        for _ in 0..100 {
            assert!(jitter(Some(Duration::from_secs(5))) < Duration::from_secs(5));
        }
        assert_eq!(jitter(None), Duration::ZERO);
    }
}
