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

use serde_json::Value;

// Escaping for text and attribute values: the JUnit report's XML escaping, which HTML reads
// the same.

/// Colour of a fault window: also what a screenshot's pixels are counted by.
pub const WINDOW_FILL: &str = "#fbd3d3";

const W: f64 = 1100.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 24.0;
/// (top, height) of the rate, latency and error panels.
const PANELS: [(f64, f64); 3] = [(64.0, 150.0), (254.0, 200.0), (494.0, 120.0)];
const H: f64 = 664.0;

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(0.0)).collect())
        .unwrap_or_default()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
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
pub fn render(r: &Value) -> String {
    let mut h = String::new();
    let verdict = text(&r["verdict"]);
    let run = text(&r["run"]);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>drill run {} — {}</title>\n<style>{CSS}</style></head>\n<body>\n",
        esc(&run),
        esc(&verdict)
    );
    let class = match r["status"].as_str() {
        Some("passed") => "pass",
        Some("failed") => "fail",
        _ => "abort",
    };
    let _ = writeln!(
        h,
        "<header><h1>drill run <code>{}</code> <span class=\"verdict {class}\" id=\"verdict\">{}</span></h1>",
        esc(&run),
        esc(&verdict)
    );
    if let Some(c) = r["cause"].as_str() {
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
        esc(&text(&r["playbook"])),
        esc(&text(&r["file"])),
        esc(&text(&r["started_at"])),
        esc(&text(&r["finished_at"])),
        r["time_scale"]
            .as_f64()
            .filter(|s| (s - 1.0).abs() > f64::EPSILON)
            .map(|s| format!(" · time scale {s}"))
            .unwrap_or_default()
    );
    if let Some(t) = r["traffic"].as_object() {
        let _ = writeln!(
            h,
            "<p class=\"meta\">{} requests ({} expected), {} failed ({}), {} dropped · p50 {} · p95 {} · p99 {} · max {}</p>",
            text(&t["requests"]),
            text(&t["expected"]),
            text(&t["failed"]),
            drill_load::summary::pct(t["error_rate"].as_f64().unwrap_or(0.0)),
            text(&t["dropped"]),
            fmt_ms(t["p50_ms"].as_f64().unwrap_or(0.0)),
            fmt_ms(t["p95_ms"].as_f64().unwrap_or(0.0)),
            fmt_ms(t["p99_ms"].as_f64().unwrap_or(0.0)),
            fmt_ms(t["max_ms"].as_f64().unwrap_or(0.0)),
        );
        shards(&mut h, &t["shards"]);
    }
    if r["timeline"].is_object() {
        h.push_str("<section id=\"timeline\">\n");
        chart(&mut h, r);
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
fn shards(h: &mut String, sh: &Value) {
    let Some(each) = sh["each"].as_array() else {
        return;
    };
    let n = text(&sh["count"]);
    let _ = writeln!(
        h,
        "<p class=\"meta\">{n} shards ({}), one schedule, judged on their merged measurements</p>\n<table><tr><th>shard</th><th>scheduled</th><th>sent</th><th>dropped</th><th>failed</th><th>last report</th><th>stopped early</th></tr>",
        esc(&text(&sh["run_on"]))
    );
    for p in each {
        let finished = p["finished"].as_bool().unwrap_or(false);
        let dropped = p["dropped"].as_u64().unwrap_or(0);
        let _ = writeln!(
            h,
            "<tr><td>{}/{n}</td><td>{}</td><td>{}</td><td{}>{dropped}</td><td>{}</td><td{}>{}</td><td>{}</td></tr>",
            text(&p["shard"]),
            text(&p["scheduled"]),
            text(&p["sent"]),
            if dropped > 0 { " class=\"fail\"" } else { "" },
            text(&p["failed"]),
            if finished { "" } else { " class=\"fail\"" },
            if finished { "yes" } else { "missing" },
            esc(p["stopped"].as_str().unwrap_or("")),
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

fn chart(h: &mut String, r: &Value) {
    let tl = &r["timeline"];
    let t = nums(&tl["t"]);
    let total = tl["duration_s"]
        .as_f64()
        .or_else(|| t.last().map(|x| x + 1.0))
        .unwrap_or(1.0)
        .max(1.0);
    let target = nums(&tl["target"]);
    // Arrivals sent, comparable with the target (cursor follow-ups are extra requests).
    let requests = nums(&tl["arrivals"]);
    let failed = nums(&tl["failed"]);
    let dropped = nums(&tl["dropped"]);
    let (p50, p95, p99) = (
        nums(&tl["p50_ms"]),
        nums(&tl["p95_ms"]),
        nums(&tl["p99_ms"]),
    );
    let limits: Vec<(String, f64, String)> = r["slo"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|th| th["scope"] == "overall")
                .map(|th| {
                    (
                        th["stat"]
                            .as_str()
                            .unwrap_or("")
                            .replace("p(", "p")
                            .replace(')', ""),
                        th["limit"].as_f64().unwrap_or(0.0),
                        th["unit"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let error_limit = limits.iter().find(|l| l.2 == "ratio").map(|l| l.1);

    let _ = writeln!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"chart\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"timeline of the run\">"
    );
    let (top, bottom) = (PANELS[0].0, PANELS[2].0 + PANELS[2].1);
    // Fault windows first, under everything.
    for w in tl["windows"].as_array().into_iter().flatten() {
        let from = w["from_s"].as_f64().unwrap_or(0.0);
        let to = w["to_s"].as_f64().unwrap_or(total);
        let (x0, x1) = (x_of(from, total), x_of(to, total));
        let label = format!("{}/{}", text(&w["drill"]), text(&w["fault"]));
        let _ = writeln!(
            h,
            "<rect class=\"fault-window\" data-drill=\"{}\" data-fault=\"{}\" data-from=\"{from}\" data-to=\"{to}\" x=\"{x0:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{}\" fill=\"{WINDOW_FILL}\"><title>{} applied {}–{}</title></rect><text x=\"{:.1}\" y=\"{}\" fill=\"#a33\">{}</text>",
            esc(&text(&w["drill"])),
            esc(&text(&w["fault"])),
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
    let xs: Vec<f64> = t.iter().map(|s| x_of(s + 0.5, total)).collect();
    let pts = |v: &[f64], top: f64, height: f64, max: f64| -> Vec<(f64, f64)> {
        xs.iter()
            .zip(v)
            .map(|(x, y)| (*x, top + height - height * (y / max).clamp(0.0, 1.05)))
            .collect()
    };

    // Rate.
    let max_rate = target.iter().chain(&requests).copied().fold(1.0, f64::max);
    let (top0, h0) = PANELS[0];
    let m0 = panel(
        h,
        PANELS[0],
        "arrivals per second: target (dashed) and achieved",
        max_rate,
        &|v| format!("{v:.0}/s"),
    );
    polyline(h, "target", "#6b7280", true, &pts(&target, top0, h0, m0));
    polyline(
        h,
        "achieved",
        "#1f6fd1",
        false,
        &pts(&requests, top0, h0, m0),
    );

    // Latency.
    let lat_limits: Vec<&(String, f64, String)> = limits.iter().filter(|l| l.2 == "ms").collect();
    let max_lat = p99
        .iter()
        .chain(&p95)
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
    polyline(h, "p50", "#2e7d32", false, &pts(&p50, top1, h1, m1));
    polyline(h, "p95", "#ef6c00", false, &pts(&p95, top1, h1, m1));
    polyline(h, "p99", "#ad1457", false, &pts(&p99, top1, h1, m1));

    // Errors.
    let budget: Vec<f64> = error_limit
        .map(|l| target.iter().map(|r| r * l).collect())
        .unwrap_or_default();
    let max_err = failed
        .iter()
        .chain(&dropped)
        .chain(&budget)
        .copied()
        .fold(1.0, f64::max);
    let (top2, h2) = PANELS[2];
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
            &pts(&budget, top2, h2, m2),
        );
        let _ = writeln!(
            h,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#c62828\">SLO error rate &lt; {} of the target rate</text></g>",
            W - RIGHT - 4.0,
            top2 - 8.0,
            esc(&drill_load::summary::pct(l))
        );
    }
    polyline(h, "errors", "#c62828", false, &pts(&failed, top2, h2, m2));
    polyline(h, "dropped", "#7b1fa2", false, &pts(&dropped, top2, h2, m2));

    // Marks over everything, in time order; labels alternate between two rows so that close
    // marks stay readable, and those near the right edge end at their line.
    let mut marks: Vec<&Value> = r["timeline"]["marks"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    marks.sort_by(|a, b| {
        let at = |m: &Value| m["at_s"].as_f64().unwrap_or(0.0);
        at(a).total_cmp(&at(b))
    });
    for (i, m) in marks.into_iter().enumerate() {
        let ly = top - 38.0 + 13.0 * (i % 2) as f64;
        let at = m["at_s"].as_f64().unwrap_or(0.0);
        let x = x_of(at, total);
        let (colour, kind) = match m["kind"].as_str() {
            Some("guard") => ("#8e24aa", "guard"),
            _ => ("#2e7d32", "recovered"),
        };
        let label = format!("{} at {}", text(&m["label"]), fmt_t(at));
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
    // The time axis.
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
    // Legend.
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
    h.push_str("</svg>\n");
}

fn checks(h: &mut String, r: &Value) {
    let drills = r["drills"].as_array().cloned().unwrap_or_default();
    if drills.is_empty() {
        return;
    }
    h.push_str("<section id=\"checks\"><h2>Drills and their checks</h2>\n");
    for d in &drills {
        let _ = writeln!(
            h,
            "<h3 class=\"drill\" data-drill=\"{0}\">{0} <small>({1})</small></h3>",
            esc(&text(&d["name"])),
            esc(&text(&d["status"]).replace('_', " "))
        );
        if let Some(s) = d["skipped"].as_str() {
            let _ = writeln!(h, "<p>Skipped: {}</p>", esc(s));
        }
        let checks = d["checks"].as_array().cloned().unwrap_or_default();
        if checks.is_empty() {
            continue;
        }
        h.push_str("<table class=\"checks\"><tr><th>check</th><th>phase</th><th>measured</th><th>limit</th><th>verdict</th></tr>\n");
        for c in &checks {
            let v =
                c["verdict"]
                    .as_str()
                    .unwrap_or(if c["passed"] == true { "pass" } else { "fail" });
            let _ = writeln!(
                h,
                "<tr class=\"check\" data-verdict=\"{v}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{v}\">{}</td></tr>",
                esc(&text(&c["name"])),
                esc(&text(&c["phase"])),
                esc(&text(&c["measured"])),
                esc(&text(&c["limit"])),
                v.to_uppercase()
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");
}

fn slo(h: &mut String, r: &Value) {
    let Some(ts) = r["slo"].as_array().filter(|a| !a.is_empty()) else {
        return;
    };
    h.push_str("<section id=\"slo\"><h2>Run-wide SLO</h2><table><tr><th>metric</th><th>measured</th><th>limit</th><th>verdict</th></tr>\n");
    for t in ts {
        let ratio = t["unit"] == "ratio";
        let show = |v: f64| {
            if ratio {
                drill_load::summary::pct(v)
            } else {
                drill_load::summary::millis(v)
            }
        };
        let ok = t["ok"] == true;
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{} {}</td><td class=\"{}\">{}</td></tr>",
            esc(&if ratio {
                "error_rate".to_owned()
            } else {
                text(&t["stat"]).replace("p(", "p").replace(')', "")
            }),
            show(t["measured"].as_f64().unwrap_or(0.0)),
            if ratio { "&lt;" } else { "≤" },
            show(t["limit"].as_f64().unwrap_or(0.0)),
            if ok { "pass" } else { "fail" },
            if ok { "PASS" } else { "FAIL" }
        );
    }
    h.push_str("</table></section>\n");
}

fn guards(h: &mut String, r: &Value) {
    let Some(gs) = r["guards_tripped"].as_array().filter(|a| !a.is_empty()) else {
        return;
    };
    h.push_str("<section id=\"guards\"><h2>Guards tripped</h2><ul>\n");
    for g in gs {
        let _ = writeln!(
            h,
            "<li><b>{}</b> at {}: {} ({})</li>",
            esc(&text(&g["name"])),
            fmt_t(g["at_s"].as_f64().unwrap_or(0.0)),
            esc(&text(&g["condition"])),
            esc(&text(&g["measured"]))
        );
    }
    h.push_str("</ul></section>\n");
}

fn faults(h: &mut String, r: &Value) {
    let Some(fs) = r["faults"].as_array().filter(|a| !a.is_empty()) else {
        return;
    };
    h.push_str("<section id=\"faults\"><h2>Faults (from the ledger)</h2><table><tr><th>drill</th><th>fault</th><th>backend</th><th>state</th><th>applied</th><th>reverted</th><th>applied for</th></tr>\n");
    for f in fs {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&text(&f["drill"])),
            esc(&text(&f["fault"])),
            esc(&text(&f["backend"])),
            esc(&text(&f["state"])),
            esc(&text(&f["applied_at"])),
            esc(&text(&f["reverted_at"])),
            f["applied_for_s"]
                .as_f64()
                .map_or_else(|| "—".to_owned(), |s| format!("{s:.1} s"))
        );
    }
    h.push_str("</table></section>\n");
}

fn failures(h: &mut String, r: &Value) {
    let Some(fs) = r["traffic"]["failure_samples"]
        .as_array()
        .filter(|a| !a.is_empty())
    else {
        return;
    };
    h.push_str("<section id=\"failures\"><h2>Failed requests (samples)</h2><table><tr><th>at</th><th>request</th><th>class</th><th>status</th><th>latency</th><th>X-Request-Id</th></tr>\n");
    for f in fs.iter().take(40) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            format_args!("{:.3} s", f["at_s"].as_f64().unwrap_or(0.0)),
            esc(&text(&f["request"])),
            esc(&text(&f["class"])),
            esc(&text(&f["status"])),
            fmt_ms(f["latency_ms"].as_f64().unwrap_or(0.0)),
            esc(&text(&f["request_id"]))
        );
    }
    h.push_str("</table></section>\n");
}

/// XML and HTML text escaping (the JUnit and the HTML reports).
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => o.push(c),
        }
    }
    o
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
        let page = render(&serde_json::json!({
            "run": "<script>", "verdict": "FAIL", "status": "failed", "cause": "a & b"
        }));
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("a &amp; b"));
        assert!(!page.contains("<script>"));
    }
}
