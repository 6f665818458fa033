//! The state one run shares between its tasks: the clock, the abort signal, the recorder,
//! this run's view of its ledger, the guards that are active, and the live status a
//! [`RunHandle`](crate::RunHandle) watches.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use drill_faults::RevertRecord;
use drill_load::metrics::Recorder;
use drill_spec::model::{Allow, Guard, Limits, Phase};
use tokio::sync::watch;

use crate::Log;
use crate::lines::Lines;
use crate::outcome::GuardTrip;
use crate::status::{LiveStatus, Stage};
use crate::store::{FaultState, Lease, LostLease, Store};

/// How long after its end a second's measurements are in: a shard reports every 0.5 s, the
/// engine reads every 0.25 s, and a second is added 2 s after its end.
pub const SETTLED: Duration = Duration::from_millis(3_000);

/// Stops a run: a guard trip, a signal, a failed step. The first reason wins.
#[derive(Debug, Clone)]
pub struct Abort(Arc<watch::Sender<Option<String>>>);

impl Default for Abort {
    fn default() -> Self {
        Abort(Arc::new(watch::channel(None).0))
    }
}

impl Abort {
    pub fn trigger(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.0.send_if_modified(move |r| {
            if r.is_none() {
                *r = Some(reason);
                true
            } else {
                false
            }
        });
    }

    pub fn reason(&self) -> Option<String> {
        self.0.borrow().clone()
    }

    /// Resolves once the run is aborted.
    pub async fn triggered(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }
}

/// A fault this run has touched: the in-memory mirror of its ledger row.
#[derive(Debug, Clone)]
pub(crate) struct LiveFault {
    pub id: String,
    pub drill: String,
    pub name: String,
    pub backend: &'static str,
    pub record: RevertRecord,
    pub state: FaultState,
    pub error: Option<String>,
    pub manual_restore: String,
    /// When it was applied, from the run's start.
    pub since: Option<Duration>,
    /// The steps of a composite fault that completed, as the ledger says.
    pub done: Vec<String>,
}

/// This process's hold on its run: the lease every mutation is fenced with, and whether it
/// was lost to another owner. Once lost, it stays lost: the run aborts, and nothing more is
/// changed, reverted or written about the run.
pub(crate) struct Ownership {
    pub lease: Lease,
    lost: Mutex<Option<LostLease>>,
    /// When the newest fenced write that went through was sent.
    confirmed: Mutex<Instant>,
    abort: Abort,
}

impl Ownership {
    pub fn new(lease: Lease, abort: Abort) -> Ownership {
        Ownership {
            lease,
            lost: Mutex::new(None),
            confirmed: Mutex::new(Instant::now()),
            abort,
        }
    }

    /// A fenced write sent at `sent` went through: the lease held then.
    pub fn confirm(&self, sent: Instant) {
        let mut c = locked(&self.confirmed);
        if sent > *c {
            *c = sent;
        }
    }

    /// Whether this process may make a mutating call now, asked right before it: the lease
    /// was not lost, and was confirmed recently enough that no one can have taken it over
    /// since (a process frozen past its lease finds out here, on waking, before it calls).
    pub fn sure(&self) -> Result<(), String> {
        if let Some(l) = self.lost() {
            return Err(l.to_string());
        }
        let age = locked(&self.confirmed).elapsed();
        if age >= self.lease.trust() {
            return Err(format!(
                "this process is not sure it still owns run {}: its lease was last confirmed {:.1} s ago (lease {:.1} s), so it makes no change",
                self.lease.run_id,
                age.as_secs_f64(),
                self.lease.ttl_ms as f64 / 1000.0
            ));
        }
        Ok(())
    }

    /// Records that the run was taken over, and aborts it (the first loss is kept).
    pub fn lose(&self, l: LostLease) {
        let mut g = locked(&self.lost);
        if g.is_none() {
            self.abort.trigger(format!("lease lost: {l}"));
            *g = Some(l);
        }
    }

    /// Aborts the run because this process cannot confirm it still owns it (the store does
    /// not answer); fenced writes keep refusing until it does.
    pub fn abort_unsure(&self, why: &str) {
        self.abort.trigger(why);
    }

    /// Aborts the run because someone asked (through the store): it reverts as usual.
    pub fn abort_asked(&self, why: &str) {
        self.abort.trigger(why);
    }

    pub fn lost(&self) -> Option<LostLease> {
        locked(&self.lost).clone()
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical
/// section here is a single push, retain or field update).
pub(crate) fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct RunContext {
    pub store: Store,
    pub run_id: String,
    pub own: Arc<Ownership>,
    pub allow: Allow,
    /// The run's lines as a [`Log`], for the code that takes one ([`Lines::log`]).
    pub log: Log,
    /// The run's lines: [`RunContext::say`] and [`RunContext::tell`] write through it.
    pub lines: Lines,
    pub start: Instant,
    pub scale: f64,
    pub abort: Abort,
    pub recorder: Arc<Recorder>,
    pub faults: Mutex<Vec<LiveFault>>,
    /// The guards of the drills running now, by drill: registered through
    /// [`RunContext::register_guards`], whose handle takes them out when it is dropped.
    pub drill_guards: Mutex<Vec<(String, Guard)>>,
    pub trips: Mutex<Vec<GuardTrip>>,
    pub revert_budget: Duration,
    pub seq: AtomicI64,
    /// The playbook's per-phase SLOs, checked in every drill.
    pub phase_slos: BTreeMap<Phase, Limits>,
    /// The playbook's run-wide SLO error rate (a fraction), for phases without their own.
    pub error_limit: Option<f64>,
    pub status: watch::Sender<LiveStatus>,
    /// The traffic runs in shards, whose measurements arrive per whole second, late by
    /// [`SETTLED`].
    pub distributed: bool,
}

/// A drill's guards, watched while this handle lives: dropping it takes them out, on every
/// way out of the drill (its end, an early return, a cancelled future).
pub(crate) struct DrillGuards {
    cx: Arc<RunContext>,
    drill: String,
}

impl Drop for DrillGuards {
    fn drop(&mut self) {
        locked(&self.cx.drill_guards).retain(|(d, _)| *d != self.drill);
    }
}

impl RunContext {
    /// Watches `guards` for `drill` until the returned handle is dropped.
    pub(crate) fn register_guards(self: &Arc<Self>, drill: &str, guards: &[Guard]) -> DrillGuards {
        locked(&self.drill_guards).extend(guards.iter().map(|g| (drill.to_owned(), g.clone())));
        DrillGuards {
            cx: self.clone(),
            drill: drill.to_owned(),
        }
    }
}

impl RunContext {
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Where a drill's phase starts or ends: now; in a distributed run the next whole second
    /// of the schedule, waited for, because shards report per second and a span must hold
    /// whole seconds to be added up exactly.
    pub async fn boundary(&self) -> Duration {
        let now = self.now();
        if !self.distributed {
            return now;
        }
        let next = Duration::from_secs(now.as_secs() + u64::from(now.subsec_nanos() > 0));
        self.sleep_until(next).await;
        next
    }

    /// Up to where the traffic's measurements are in: now, or [`SETTLED`] ago
    /// in a distributed run.
    pub fn measured_until(&self) -> Duration {
        let now = self.now();
        if self.distributed {
            now.saturating_sub(SETTLED)
        } else {
            now
        }
    }

    /// Waits until the measurements of the traffic intended before `t` are in: at once in one
    /// process; in a distributed run, until the shards' reports of those seconds are added.
    pub async fn settled(&self, t: Duration) {
        if self.distributed {
            let at = tokio::time::Instant::from_std(self.start + t + SETTLED);
            tokio::time::sleep_until(at).await;
        }
    }

    /// A line of the run, stamped with its offset: to the terminal, and to `tracing` at the
    /// level its words say.
    pub fn say(&self, msg: &str) {
        self.tell(msg, crate::lines::emit);
    }

    /// A value for an event's field, redacted like the lines ([`Lines::shown`]).
    pub fn shown(&self, value: &str) -> String {
        self.lines.shown(value)
    }

    /// A line whose `tracing` event `event` emits with its own fields; its message is the
    /// line as the terminal shows it, offset and all.
    pub fn tell(&self, msg: &str, event: impl FnOnce(&str)) {
        let line = format!("[{:>7.1}s] {msg}", self.now().as_secs_f64());
        self.lines.with(&line, event);
    }

    pub fn scaled(&self, d: drill_spec::units::Dur) -> Duration {
        d.scaled(self.scale).0
    }

    pub fn set_state(&self, id: &str, state: FaultState, error: Option<String>) {
        let mut g = locked(&self.faults);
        if let Some(f) = g.iter_mut().find(|f| f.id == id) {
            f.state = state;
            f.error = error;
            if state == FaultState::Applied {
                f.since = Some(self.start.elapsed());
            }
        }
    }

    /// Sleeps until `t` (an offset from the start), or returns false when the run aborts.
    pub async fn sleep_until(&self, t: Duration) -> bool {
        let at = tokio::time::Instant::from_std(self.start + t);
        tokio::select! {
            () = tokio::time::sleep_until(at) => true,
            () = self.abort.triggered() => false,
        }
    }

    /// Records where a drill is, for the live status.
    pub fn stage(&self, drill: &str, stage: Stage) {
        self.status.send_modify(|s| {
            if let Some(d) = s.drills.iter_mut().find(|d| d.name == drill) {
                d.stage = stage;
            }
        });
    }

    /// This run's faults that are still changed (or may be).
    pub fn outstanding(&self, drill: Option<&str>) -> Vec<LiveFault> {
        locked(&self.faults)
            .iter()
            .filter(|f| f.state.outstanding() && drill.is_none_or(|d| f.drill == d))
            .cloned()
            .collect()
    }
}
