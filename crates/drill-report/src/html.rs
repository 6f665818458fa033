//! The HTML report: one self-contained page (inline CSS and SVG, no script, no external
//! asset; it opens offline) drawn from the JSON report alone, so `drill report RUN --format
//! html` renders a stored run exactly as `drill apply` wrote it.
//!
//! The SVG timeline has three panels on one time axis: target vs achieved rate, latency
//! p50/p95/p99 with the SLO's latency limits, and errors and dropped arrivals per second with
//! the error budget (the SLO's error rate times the target rate). Each fault's measured window
//! (the ledger's apply→revert instants) is shaded across the panels; guard trips and
//! recoveries are vertical marks. Every drawn element carries a class and `data-` attributes
//! (`series`, `fault-window`, `mark guard`, `mark recovered`, `slo-limit`) so that a browser's
//! DOM says what was drawn.

use std::fmt::Write as _;

use crate::fmt::{esc, pct};
use crate::schema::{MarkKind, Report, Shards, Unit, Verdict};

/// Colour of a fault window: also what a screenshot's pixels are counted by.
pub const WINDOW_FILL: &str = "#fbd3d3";

const W: f64 = 1100.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 24.0;
/// (top, height) of the rate, latency and error panels.
const PANELS: [(f64, f64); 3] = [(64.0, 150.0), (254.0, 200.0), (494.0, 120.0)];
const H: f64 = 664.0;

fn nums(v: &[u64]) -> Vec<f64> {
    v.iter().map(|x| *x as f64).collect()
}

/// A round step for about `n` ticks up to `max`: 1, 2 or 5 times a power of ten.
fn step(max: f64, n: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / n;
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

fn fmt_t(s: f64) -> String {
    let s = s.round() as i64;
    match (s / 60, s % 60) {
        (0, x) => format!("{x}s"),
        (m, 0) => format!("{m}m"),
        (m, x) => format!("{m}m{x}s"),
    }
}

fn fmt_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}s", (v / 100.0).round() / 10.0)
    } else {
        format!("{v:.0}ms")
    }
}

/// The page.
pub fn render(r: &Report) -> String {
    let mut h = String::new();
    let verdict = r.status.verdict();
    let run = &r.run;
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>drill run {} — {}</title>\n<style>{CSS}</style></head>\n<body>\n",
        esc(run),
        esc(verdict)
    );
    let class = match r.status {
        crate::Status::Passed => "pass",
        crate::Status::Failed => "fail",
        crate::Status::Aborted | crate::Status::RevertFailed | crate::Status::DryRun => "abort",
    };
    let _ = writeln!(
        h,
        "<header><h1>drill run <code>{}</code> <span class=\"verdict {class}\" id=\"verdict\">{}</span></h1>",
        esc(run),
        esc(verdict)
    );
    if let Some(c) = &r.cause {
        let _ = writeln!(h, "<p class=\"cause\" id=\"cause\">{}</p>", esc(c));
    } else if class == "pass" {
        let _ = writeln!(
            h,
            "<p class=\"cause\" id=\"cause\">Every check held and every fault was reverted.</p>"
        );
    }
    let _ = writeln!(
        h,
        "<p class=\"meta\">Playbook <b>{}</b> ({}) · started {} · finished {}{}</p></header>",
        esc(&r.playbook),
        esc(&r.file),
        esc(&r.started_at),
        esc(&r.finished_at),
        Some(r.time_scale)
            .filter(|s| (s - 1.0).abs() > f64::EPSILON)
            .map(|s| format!(" · time scale {s}"))
            .unwrap_or_default()
    );
    if let Some(t) = &r.traffic {
        let _ = writeln!(
            h,
            "<p class=\"meta\">{} requests ({} expected), {} failed ({}), {} dropped · p50 {} · p95 {} · p99 {} · max {}</p>",
            t.requests,
            t.expected.map(|e| e.to_string()).unwrap_or_default(),
            t.failed,
            pct(t.error_rate),
            t.dropped,
            fmt_ms(t.latency.p50_ms),
            fmt_ms(t.latency.p95_ms),
            fmt_ms(t.latency.p99_ms),
            fmt_ms(t.latency.max_ms),
        );
        if let Some(sh) = &t.shards {
            shards(&mut h, sh);
        }
    }
    if let Some(tl) = &r.timeline {
        h.push_str("<section id=\"timeline\">\n");
        chart(&mut h, r, tl);
        h.push_str("</section>\n");
    }
    checks(&mut h, r);
    slo(&mut h, r);
    guards(&mut h, r);
    faults(&mut h, r);
    failures(&mut h, r);
    h.push_str("</body></html>\n");
    h
}

/// Each shard's part of a distributed run: a shard that dropped arrivals or stopped early
/// stands out beside the merged figures.
fn shards(h: &mut String, sh: &Shards) {
    let n = sh.count;
    let _ = writeln!(
        h,
        "<p class=\"meta\">{n} shards ({}), one schedule, judged on their merged measurements</p>\n<table><tr><th>shard</th><th>scheduled</th><th>sent</th><th>dropped</th><th>failed</th><th>last report</th><th>stopped early</th></tr>",
        esc(&sh.run_on)
    );
    for p in &sh.each {
        let (finished, dropped) = (p.finished, p.dropped);
        let _ = writeln!(
            h,
            "<tr><td>{}/{n}</td><td>{}</td><td>{}</td><td{}>{dropped}</td><td>{}</td><td{}>{}</td><td>{}</td></tr>",
            p.shard,
            p.scheduled,
            p.sent,
            if dropped > 0 { " class=\"fail\"" } else { "" },
            p.failed,
            if finished { "" } else { " class=\"fail\"" },
            if finished { "yes" } else { "missing" },
            esc(p.stopped.as_deref().unwrap_or("")),
        );
    }
    h.push_str("</table>\n");
}

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1140px;color:#1d2330;padding:0 12px}\
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:26px 0 8px}code{font-size:0.95em}\
.verdict{padding:2px 10px;border-radius:4px;color:#fff;font-size:16px;vertical-align:middle}\
.verdict.pass{background:#2e7d32}.verdict.fail{background:#c62828}.verdict.abort{background:#8e24aa}\
.cause{font-size:15px;font-weight:600;margin:4px 0}.meta{color:#555;margin:2px 0}\
table{border-collapse:collapse;margin:4px 0 10px;font-size:13px}th,td{border:1px solid #d8dbe2;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f2f4f8}td.pass{color:#2e7d32;font-weight:600}td.fail{color:#c62828;font-weight:700}td.inconclusive{color:#b26a00;font-weight:700}\
svg{background:#fff;border:1px solid #e3e6ec}svg text{font:11px system-ui,sans-serif;fill:#333}.axis{stroke:#999}.grid{stroke:#eceef3}";

fn x_of(t: f64, total: f64) -> f64 {
    LEFT + (W - LEFT - RIGHT) * (t / total).clamp(0.0, 1.0)
}

fn polyline(h: &mut String, name: &str, colour: &str, dash: bool, pts: &[(f64, f64)]) {
    let mut p = String::with_capacity(pts.len() * 12);
    for (x, y) in pts {
        let _ = write!(p, "{x:.1},{y:.1} ");
    }
    let _ = writeln!(
        h,
        "<polyline class=\"series\" data-series=\"{name}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.6\"{} points=\"{}\"/>",
        if dash {
            " stroke-dasharray=\"5 4\""
        } else {
            ""
        },
        p.trim_end()
    );
}

/// A panel's frame, its y grid and labels; returns the value→y map's scale.
fn panel(
    h: &mut String,
    (top, height): (f64, f64),
    title: &str,
    max: f64,
    unit: &dyn Fn(f64) -> String,
) -> f64 {
    let s = step(max, 4.0);
    let top_v = (max / s).ceil().max(1.0) * s;
    let _ = writeln!(
        h,
        "<text x=\"{LEFT}\" y=\"{}\" font-weight=\"600\">{}</text>",
        top - 8.0,
        esc(title)
    );
    let mut v = 0.0;
    while v <= top_v + s * 1e-9 {
        let y = top + height - height * v / top_v;
        let _ = writeln!(
            h,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            esc(&unit(v))
        );
        v += s;
    }
    let _ = writeln!(
        h,
        "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{}\" height=\"{height}\" fill=\"none\" class=\"axis\"/>",
        W - LEFT - RIGHT
    );
    top_v
}

/// The run's timeline: three panels (arrivals, latency, errors) over the fault windows, the
/// marks, the time axis and the legend.
fn chart(h: &mut String, r: &Report, tl: &crate::schema::Timeline) {
    let t = nums(&tl.t);
    let total = tl
        .duration_s
        .or_else(|| t.last().map(|x| x + 1.0))
        .unwrap_or(1.0)
        .max(1.0);
    let plot = Plot {
        xs: t.iter().map(|s| x_of(s + 0.5, total)).collect(),
    };
    let limits: Vec<(String, f64, Unit)> = r
        .slo
        .iter()
        .flatten()
        .filter(|th| th.scope == "overall")
        .map(|th| {
            (
                th.stat.replace("p(", "p").replace(')', ""),
                th.limit,
                th.unit,
            )
        })
        .collect();
    let _ = writeln!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"chart\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"timeline of the run\">"
    );
    // Fault windows first, under everything.
    fault_windows(h, tl, total);
    rate_panel(h, &plot, tl);
    latency_panel(h, &plot, tl, &limits);
    let error_limit = limits.iter().find(|l| l.2 == Unit::Ratio).map(|l| l.1);
    errors_panel(h, &plot, tl, error_limit);
    marks(h, tl, total);
    time_axis(h, total);
    legend(h);
    h.push_str("</svg>\n");
}

/// The chart's x position of each second (at its middle).
struct Plot {
    xs: Vec<f64>,
}

impl Plot {
    /// A series' points in the panel at `top` of `height`, scaled to `max`.
    fn pts(&self, v: &[f64], (top, height): (f64, f64), max: f64) -> Vec<(f64, f64)> {
        self.xs
            .iter()
            .zip(v)
            .map(|(x, y)| (*x, top + height - height * (y / max).clamp(0.0, 1.05)))
            .collect()
    }
}

/// The top and bottom of the three panels.
fn panels_span() -> (f64, f64) {
    (PANELS[0].0, PANELS[2].0 + PANELS[2].1)
}

fn fault_windows(h: &mut String, tl: &crate::schema::Timeline, total: f64) {
    let (top, bottom) = panels_span();
    for w in &tl.windows {
        let from = w.from_s;
        let to = w.to_s.unwrap_or(total);
        let (x0, x1) = (x_of(from, total), x_of(to, total));
        let label = format!("{}/{}", w.drill, w.fault);
        let _ = writeln!(
            h,
            "<rect class=\"fault-window\" data-drill=\"{}\" data-fault=\"{}\" data-from=\"{from}\" data-to=\"{to}\" x=\"{x0:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{}\" fill=\"{WINDOW_FILL}\"><title>{} applied {}–{}</title></rect><text x=\"{:.1}\" y=\"{}\" fill=\"#a33\">{}</text>",
            esc(&w.drill),
            esc(&w.fault),
            (x1 - x0).max(1.0),
            bottom - top,
            esc(&label),
            fmt_t(from),
            fmt_t(to),
            x0 + 3.0,
            top + 12.0,
            esc(&label)
        );
    }
}

/// Arrivals per second: the target and what was sent (cursor follow-ups are extra requests,
/// so the arrivals are what compares with the target).
fn rate_panel(h: &mut String, plot: &Plot, tl: &crate::schema::Timeline) {
    let requests = nums(&tl.arrivals);
    let max_rate = tl
        .target
        .iter()
        .chain(&requests)
        .copied()
        .fold(1.0, f64::max);
    let m = panel(
        h,
        PANELS[0],
        "arrivals per second: target (dashed) and achieved",
        max_rate,
        &|v| format!("{v:.0}/s"),
    );
    polyline(
        h,
        "target",
        "#6b7280",
        true,
        &plot.pts(&tl.target, PANELS[0], m),
    );
    polyline(
        h,
        "achieved",
        "#1f6fd1",
        false,
        &plot.pts(&requests, PANELS[0], m),
    );
}

/// Latency from the intended start, with the run-wide latency SLOs as lines.
fn latency_panel(
    h: &mut String,
    plot: &Plot,
    tl: &crate::schema::Timeline,
    limits: &[(String, f64, Unit)],
) {
    let (p50, p95, p99) = (&tl.p50_ms, &tl.p95_ms, &tl.p99_ms);
    let lat_limits: Vec<&(String, f64, Unit)> = limits.iter().filter(|l| l.2 == Unit::Ms).collect();
    let max_lat = p99
        .iter()
        .chain(p95)
        .copied()
        .chain(lat_limits.iter().map(|l| l.1 * 1.05))
        .fold(1.0, f64::max);
    let (top1, h1) = PANELS[1];
    let m1 = panel(
        h,
        PANELS[1],
        "latency from the intended start: p50, p95, p99",
        max_lat,
        &|v| fmt_ms(v),
    );
    for (name, limit, _) in &lat_limits {
        let y = top1 + h1 - h1 * (limit / m1).clamp(0.0, 1.0);
        let _ = writeln!(
            h,
            "<line class=\"slo-limit\" data-limit=\"{}\" data-value=\"{limit}\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#c62828\" stroke-dasharray=\"2 3\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#c62828\">SLO {} ≤ {}</text>",
            esc(name),
            W - RIGHT,
            W - RIGHT - 4.0,
            y - 3.0,
            esc(name),
            fmt_ms(*limit)
        );
    }
    polyline(h, "p50", "#2e7d32", false, &plot.pts(p50, PANELS[1], m1));
    polyline(h, "p95", "#ef6c00", false, &plot.pts(p95, PANELS[1], m1));
    polyline(h, "p99", "#ad1457", false, &plot.pts(p99, PANELS[1], m1));
}

/// Failed requests and dropped arrivals per second, with the error budget the SLO allows.
fn errors_panel(
    h: &mut String,
    plot: &Plot,
    tl: &crate::schema::Timeline,
    error_limit: Option<f64>,
) {
    let failed = nums(&tl.failed);
    let dropped = nums(&tl.dropped);
    let budget: Vec<f64> = error_limit
        .map(|l| tl.target.iter().map(|r| r * l).collect())
        .unwrap_or_default();
    let max_err = failed
        .iter()
        .chain(&dropped)
        .chain(&budget)
        .copied()
        .fold(1.0, f64::max);
    let m2 = panel(
        h,
        PANELS[2],
        "failed requests and dropped arrivals per second",
        max_err,
        &|v| format!("{v:.0}"),
    );
    if let Some(l) = error_limit {
        let _ = writeln!(
            h,
            "<g class=\"slo-limit\" data-limit=\"error_rate\" data-value=\"{l}\">"
        );
        polyline(
            h,
            "error-budget",
            "#c62828",
            true,
            &plot.pts(&budget, PANELS[2], m2),
        );
        let _ = writeln!(
            h,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#c62828\">SLO error rate &lt; {} of the target rate</text></g>",
            W - RIGHT - 4.0,
            PANELS[2].0 - 8.0,
            esc(&pct(l))
        );
    }
    polyline(
        h,
        "errors",
        "#c62828",
        false,
        &plot.pts(&failed, PANELS[2], m2),
    );
    polyline(
        h,
        "dropped",
        "#7b1fa2",
        false,
        &plot.pts(&dropped, PANELS[2], m2),
    );
}

/// Marks over everything, in time order; labels alternate between two rows so that close
/// marks stay readable, and those near the right edge end at their line.
fn marks(h: &mut String, tl: &crate::schema::Timeline, total: f64) {
    let (top, bottom) = panels_span();
    let mut marks: Vec<&crate::schema::Mark> = tl.marks.iter().collect();
    marks.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    for (i, m) in marks.into_iter().enumerate() {
        let ly = top - 38.0 + 13.0 * (i % 2) as f64;
        let at = m.at_s;
        let x = x_of(at, total);
        let colour = match m.kind {
            MarkKind::Guard => "#8e24aa",
            MarkKind::Recovered => "#2e7d32",
        };
        let kind = m.kind.as_str();
        let label = format!("{} at {}", m.label, fmt_t(at));
        let (tx, anchor) = if x + 7.0 * label.len() as f64 > W - RIGHT {
            (x - 3.0, "end")
        } else {
            (x + 3.0, "start")
        };
        let _ = writeln!(
            h,
            "<g class=\"mark {kind}\" data-at=\"{at}\"><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{}\" y2=\"{bottom}\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/><text x=\"{tx:.1}\" y=\"{ly}\" text-anchor=\"{anchor}\" fill=\"{colour}\">{}</text></g>",
            ly + 2.0,
            esc(&label)
        );
    }
}

fn time_axis(h: &mut String, total: f64) {
    let (_, bottom) = panels_span();
    let s = step(total, 10.0);
    let mut v = 0.0;
    while v <= total + 1e-9 {
        let x = x_of(v, total);
        let _ = writeln!(
            h,
            "<line class=\"axis\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{bottom}\" y2=\"{}\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            bottom + 5.0,
            bottom + 18.0,
            fmt_t(v)
        );
        v += s;
    }
}

fn legend(h: &mut String) {
    let mut lx = LEFT;
    for (name, colour) in [
        ("target", "#6b7280"),
        ("achieved", "#1f6fd1"),
        ("p50", "#2e7d32"),
        ("p95", "#ef6c00"),
        ("p99", "#ad1457"),
        ("errors/s", "#c62828"),
        ("dropped/s", "#7b1fa2"),
        ("fault applied", WINDOW_FILL),
    ] {
        let _ = writeln!(
            h,
            "<rect x=\"{lx}\" y=\"{}\" width=\"12\" height=\"10\" fill=\"{colour}\"/><text x=\"{}\" y=\"{}\">{name}</text>",
            H - 22.0,
            lx + 16.0,
            H - 13.0
        );
        lx += 24.0 + 7.0 * name.len() as f64;
    }
}

fn checks(h: &mut String, r: &Report) {
    let drills = &r.drills;
    if drills.is_empty() {
        return;
    }
    h.push_str("<section id=\"checks\"><h2>Drills and their checks</h2>\n");
    for d in drills {
        let _ = writeln!(
            h,
            "<h3 class=\"drill\" data-drill=\"{0}\">{0} <small>({1})</small></h3>",
            esc(&d.name),
            esc(&d.status.as_str().replace('_', " "))
        );
        if let Some(s) = &d.skipped {
            let _ = writeln!(h, "<p>Skipped: {}</p>", esc(s));
        }
        let checks = &d.checks;
        if checks.is_empty() {
            continue;
        }
        h.push_str("<table class=\"checks\"><tr><th>check</th><th>phase</th><th>measured</th><th>limit</th><th>verdict</th></tr>\n");
        for c in checks {
            let v: &str = Verdict::as_str(c.verdict);
            let _ = writeln!(
                h,
                "<tr class=\"check\" data-verdict=\"{v}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{v}\">{}</td></tr>",
                esc(&c.name),
                esc(&c.phase.to_string()),
                esc(&c.measured),
                esc(&c.limit),
                c.verdict.word()
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");
}

fn slo(h: &mut String, r: &Report) {
    let Some(ts) = r.slo.as_ref().filter(|a| !a.is_empty()) else {
        return;
    };
    h.push_str("<section id=\"slo\"><h2>Run-wide SLO</h2><table><tr><th>metric</th><th>measured</th><th>limit</th><th>verdict</th></tr>\n");
    for t in ts {
        let ratio = t.unit == Unit::Ratio;
        let ok = t.ok;
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{} {}</td><td class=\"{}\">{}</td></tr>",
            esc(&t.what()),
            t.show(t.measured),
            if ratio { "&lt;" } else { "≤" },
            t.show(t.limit),
            if ok { "pass" } else { "fail" },
            if ok { "PASS" } else { "FAIL" }
        );
    }
    h.push_str("</table></section>\n");
}

fn guards(h: &mut String, r: &Report) {
    let gs = &r.guards_tripped;
    if gs.is_empty() {
        return;
    }
    h.push_str("<section id=\"guards\"><h2>Guards tripped</h2><ul>\n");
    for g in gs {
        let _ = writeln!(
            h,
            "<li><b>{}</b> at {}: {} ({})</li>",
            esc(&g.name),
            fmt_t(g.at_s),
            esc(&g.condition),
            esc(&g.measured)
        );
    }
    h.push_str("</ul></section>\n");
}

fn faults(h: &mut String, r: &Report) {
    let fs = &r.faults;
    if fs.is_empty() {
        return;
    }
    h.push_str("<section id=\"faults\"><h2>Faults (from the ledger)</h2><table><tr><th>drill</th><th>fault</th><th>backend</th><th>state</th><th>applied</th><th>reverted</th><th>applied for</th></tr>\n");
    for f in fs {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.drill),
            esc(&f.fault),
            esc(&f.backend),
            esc(f.state.as_str()),
            esc(f.applied_at.as_deref().unwrap_or("")),
            esc(f.reverted_at.as_deref().unwrap_or("")),
            f.applied_for_s
                .map_or_else(|| "—".to_owned(), |s| format!("{s:.1} s"))
        );
    }
    h.push_str("</table></section>\n");
}

fn failures(h: &mut String, r: &Report) {
    let Some(fs) = r
        .traffic
        .as_ref()
        .map(|t| &t.failure_samples)
        .filter(|a| !a.is_empty())
    else {
        return;
    };
    h.push_str("<section id=\"failures\"><h2>Failed requests (samples)</h2><table><tr><th>at</th><th>request</th><th>class</th><th>status</th><th>latency</th><th>X-Request-Id</th></tr>\n");
    for f in fs.iter().take(40) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            format_args!("{:.3} s", f.at_s),
            esc(&f.request),
            esc(&f.class),
            f.status.map(|s| s.to_string()).unwrap_or_default(),
            fmt_ms(f.latency_ms),
            esc(f.request_id.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(step(100.0, 4.0), 50.0);
        assert_eq!(step(7.0, 4.0), 2.0);
        assert_eq!(step(540.0, 10.0), 100.0);
        assert_eq!(fmt_t(90.0), "1m30s");
        assert_eq!(fmt_t(120.0), "2m");
    }

    #[test]
    fn text_is_escaped() {
        let page = render(&crate::tests::report(serde_json::json!({
            "run": "<script>", "verdict": "FAIL", "status": "failed", "cause": "a & b"
        })));
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("a &amp; b"));
        assert!(!page.contains("<script>"));
    }
}
