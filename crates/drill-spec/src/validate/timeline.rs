//! The timeline's rules: every check window, hold and drill inside the traffic, baselines
//! after its start.

use super::Ctx;
use crate::de::LocMap;
use crate::diag::Diag;
use crate::load::ResolvedDrill;
use crate::model::Playbook;
use crate::policy::Scope;
use crate::timeline::{self as tl, DrillPlan, Start};

/// Rules on the timeline: windows inside the traffic, baselines after its start.
pub(crate) fn timeline<'a>(
    diags: &mut Vec<Diag>,
    pb: &Playbook,
    pb_locs: &LocMap,
    drills: &[(usize, ResolvedDrill, Option<LocMap>)],
    scope: Option<Scope<'a>>,
) {
    let traffic = tl::traffic(&pb.traffic.profile, 1.0);
    let end = traffic.duration;
    if end.is_zero() {
        return;
    }
    let mut prev: Option<DrillPlan> = None;
    for (i, d, spec_locs) in drills {
        let path = format!("drills[{i}]");
        let plan = tl::place_drill(d, prev.as_ref(), 1.0);
        {
            let (locs, prefix) = match spec_locs {
                Some(l) => (l, String::new()),
                None => (pb_locs, format!("{path}.drill.")),
            };
            let mut cx = Ctx {
                diags: &mut *diags,
                locs,
                prefix,
                scope,
            };
            for (ci, c) in d.checks.iter().enumerate() {
                if let Some(w) = c.probe().map(|p| p.within)
                    && w > end
                {
                    cx.error_hint(
                        &format!("checks[{ci}].within"),
                        format!(
                            "check \"{}\" has a {w} window, longer than the {end} run",
                            c.name
                        ),
                        "shorten the window or lengthen the traffic profile",
                    );
                }
            }
            if d.spec.hold > end {
                cx.error_hint(
                    "hold",
                    format!("hold {} is longer than the {end} run", d.spec.hold),
                    "shorten the hold or lengthen the traffic profile",
                );
            }
        }
        let mut cx = Ctx {
            diags: &mut *diags,
            locs: pb_locs,
            prefix: String::new(),
            scope,
        };
        if let Start::At(at) = d.start {
            if at < d.spec.baseline {
                cx.error_hint(
                    &format!("{path}.at"),
                    format!(
                        "drill \"{}\" starts at {at}, before its {} baseline window has traffic",
                        d.name, d.spec.baseline
                    ),
                    format!("start it at {} or later", d.spec.baseline),
                );
            }
            if at >= end {
                cx.error_hint(
                    &format!("{path}.at"),
                    format!(
                        "drill \"{}\" starts at {at}, when the traffic has ended ({end})",
                        d.name
                    ),
                    "start it earlier or lengthen the traffic profile",
                );
            } else if plan.end_latest > end {
                cx.error_hint(
                    &format!("{path}.at"),
                    format!("drill \"{}\" runs until {} (its last check window), after the traffic ends at {end}", d.name, plan.end_latest),
                    "start it earlier, shorten its windows, or lengthen the traffic profile",
                );
            }
        } else if plan.start >= end {
            cx.error_hint(
                &format!("{path}.after"),
                format!(
                    "drill \"{}\" cannot start before the traffic ends at {end} (earliest {})",
                    d.name, plan.start
                ),
                "start the previous drills earlier or lengthen the traffic profile",
            );
        } else if plan.end > end {
            cx.warning(
                &format!("{path}.after"),
                format!(
                    "drill \"{}\" cannot finish inside the traffic: even if the previous drill recovers at once, its windows run until {}, after the traffic ends at {end}",
                    d.name, plan.end
                ),
            );
        }
        prev = Some(plan);
    }
}
