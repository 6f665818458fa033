//! The guards: the playbook's, and those of the drills running now, evaluated at least
//! every second; the first to trip aborts the run, which reverts everything at once.
//!
//! A traffic guard judges the sliding window `Guard::kind` gives it (`drill_spec::guard`);
//! a probe guard judges the probe's value, and trips when the probe fails three times in a
//! row (a guard that cannot see is not a guard).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use drill_spec::cond::{Metric, Subject};
use drill_spec::guard::GuardKind;
use drill_spec::model::Guard;

use crate::chain;
use crate::checks::{self, fmt_dur};
use crate::context::{RunContext, locked};
use crate::outcome::{GuardTrip, secs};
use crate::preflight::guard_name;

#[derive(Default)]
struct GuardState {
    since: Option<Duration>,
    next: Duration,
    probe_failures: u32,
}

/// Runs until the run aborts (or this task is dropped).
pub(crate) async fn watch(cx: Arc<RunContext>, playbook_guards: Vec<Guard>) {
    let mut states: HashMap<String, GuardState> = HashMap::new();
    let tick = Duration::from_millis(100);
    loop {
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            () = cx.abort.triggered() => return,
        }
        let mut active: Vec<(String, Guard)> = playbook_guards
            .iter()
            .enumerate()
            .map(|(i, g)| (format!("playbook/{}", guard_name(g, i)), g.clone()))
            .collect();
        active.extend(
            locked(&cx.drill_guards)
                .iter()
                .enumerate()
                .map(|(i, (d, g))| (format!("{d}/{}", guard_name(g, i)), g.clone())),
        );
        for (key, g) in active {
            let now = cx.now();
            let st = states.entry(key.clone()).or_default();
            if now < st.next {
                continue;
            }
            st.next = now + g.every.0.min(Duration::from_secs(1));
            let hold_for = g.hold_for(cx.scale);
            // Validation refuses a guard of neither kind, so there is none to skip here.
            let Ok(kind) = g.kind(cx.scale) else { continue };
            let value = match kind {
                GuardKind::Probe(p) => match drill_faults::probe(p, &cx.allow).await {
                    Ok(v) => {
                        st.probe_failures = 0;
                        v
                    }
                    Err(e) => {
                        st.probe_failures += 1;
                        if st.probe_failures >= 3 {
                            trip(
                                &cx,
                                &key,
                                &g,
                                format!("its probe failed 3 times in a row: {}", chain(&e)),
                            );
                            return;
                        }
                        continue;
                    }
                },
                GuardKind::Traffic { metric: m, window } => {
                    // A distributed run's shards report late: its window ends where
                    // their measurements are in.
                    let upto = cx.measured_until();
                    let stats = cx
                        .recorder
                        .window_between(upto.saturating_sub(window), upto);
                    if stats.requests == 0 && m != Metric::Dropped {
                        st.since = None;
                        continue;
                    }
                    checks::metric_value(m, &stats, window)
                }
            };
            if g.when.holds(value) {
                let since = *st.since.get_or_insert(now);
                if now - since >= hold_for {
                    let shown = match g.when.subject {
                        Subject::Metric(m) => checks::fmt_metric(m, value),
                        Subject::Value => checks::fmt_num(value),
                    };
                    trip(
                        &cx,
                        &key,
                        &g,
                        format!("measured {shown}, held for {}", fmt_dur(now - since)),
                    );
                    return;
                }
            } else {
                st.since = None;
            }
        }
    }
}

fn trip(cx: &RunContext, key: &str, g: &Guard, measured: String) {
    let at = cx.now();
    locked(&cx.trips).push(GuardTrip {
        name: key.to_owned(),
        condition: g.when.to_string(),
        measured: measured.clone(),
        at_s: secs(at),
    });
    cx.tell(
        &format!(
            "GUARD {key} tripped: {} ({measured}); reverting everything",
            g.when
        ),
        |m| {
            tracing::warn!(
                guard = cx.shown(key),
                condition = cx.shown(&g.when.to_string()),
                "{m}"
            )
        },
    );
    cx.abort
        .trigger(format!("guard {key} tripped: {} ({measured})", g.when));
}
