//! `drill load`: the traffic of a playbook (with its SLOs as thresholds), or an ad-hoc load on
//! one URL.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use drill_load::{AdHoc, Report, Run, Stop};
use drill_spec::units::Rate;

use crate::exit;
use crate::support::{DbArg, dur, load, parse_scale, print_diags};

/// The options of `drill load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// A playbook whose traffic to run (its SLOs become thresholds).
    #[arg(conflicts_with_all = ["url", "rate", "connections", "run"])]
    pub playbook: Option<PathBuf>,
    /// Run one shard of a distributed run (`traffic.distributed`): its plan, the stop it
    /// obeys and its reports are in the history store (--db or DATABASE_URL). What the
    /// engine starts, as processes or as the pods of an Indexed Job.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["url", "rate", "connections"])]
    pub run: Option<String>,
    /// Send only shard K of N of the schedule: arrivals K, K+N, K+2N, … (with --run, or with
    /// an ad-hoc --rate and a shared --t0).
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<drill_load::Shard>,
    /// With --run: this many shards, this one's index from JOB_COMPLETION_INDEX (the pods of
    /// a Kubernetes Indexed Job).
    #[arg(long, value_name = "N", requires = "run", conflicts_with = "shard")]
    pub shards: Option<u32>,
    /// The schedule's zero, in milliseconds since the Unix epoch, shared by the shards of
    /// an ad-hoc load (default: now). Arrivals already past are sent late or dropped.
    #[arg(long, value_name = "MS", requires = "shard")]
    pub t0: Option<i64>,
    #[command(flatten)]
    pub db: DbArg,
    /// Where `uses:` finds drills (default: drills/ beside or above the playbook, and ./drills).
    #[arg(long = "drills", value_name = "DIR")]
    pub drills: Vec<PathBuf>,
    /// Multiply every duration of the playbook's profile by F.
    #[arg(long, value_name = "F", default_value_t = 1.0, value_parser = parse_scale)]
    pub time_scale: f64,
    /// Write k6's --summary-export JSON here.
    #[arg(long, value_name = "FILE")]
    pub summary_export: Option<PathBuf>,
    /// Write the per-second timeline (rate, percentiles, errors) as JSON here.
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,
    /// Write a Markdown summary here.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Ad hoc: the URL to load.
    #[arg(long, value_name = "URL", required_unless_present_any = ["playbook", "run"])]
    pub url: Option<String>,
    /// Ad hoc, open model: arrivals per unit of time, like 2000/s.
    #[arg(long, value_name = "RATE", conflicts_with = "connections")]
    pub rate: Option<String>,
    /// Ad hoc, closed loop: this many connections, each sending as fast as it can.
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
    /// Ad hoc: how long.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub duration: String,
    /// Ad hoc: a header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Ad hoc: the HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Ad hoc: the request body, sent as it is.
    #[arg(long)]
    pub body: Option<String>,
    /// Ad hoc: most requests in flight (open model); arrivals beyond it are dropped.
    /// Default: rate × timeout (every arrival may wait its whole timeout), at least 64, at
    /// most 100,000. They share at most 1,024 connections (and the open-file limit, raised
    /// to its hard limit, less 256), waiting for a free one within their timeout.
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<u64>,
    /// Ad hoc: worker threads of the open model, each owning its connections. Default: one
    /// per 40,000/s of rate, at most one per core.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Ad hoc: per-request timeout.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub timeout: String,
    /// Ad hoc: force HTTP/2 (h2c on http://, ALPN on https://).
    #[arg(long)]
    pub http2: bool,
    /// Ad hoc: skip TLS certificate verification.
    #[arg(long)]
    pub insecure: bool,
}

fn parse_shard(s: &str) -> Result<drill_load::Shard, String> {
    drill_load::Shard::parse(s)
}

pub fn run(args: LoadArgs) -> Result<ExitCode> {
    if let Some(id) = &args.run {
        return shard_of_run(id, &args, &args.db);
    }
    let (run, title) = match &args.playbook {
        Some(path) => {
            let (outcome, unreadable) = load(std::slice::from_ref(path), &args.drills)?;
            print_diags(&outcome);
            let Some(pb) = outcome
                .playbooks
                .first()
                .filter(|_| !outcome.has_errors() && unreadable == 0)
            else {
                eprintln!(
                    "the playbook is invalid; run `drill validate {}` for details",
                    path.display()
                );
                return Ok(exit::code(exit::INVALID));
            };
            let dir = path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            let run = match Run::from_playbook(&pb.playbook, &dir, args.time_scale) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{}: error: {e}", path.display());
                    return Ok(exit::code(exit::INVALID));
                }
            };
            (run, format!("drill load {}", pb.playbook.metadata.name))
        }
        None => {
            let url = args
                .url
                .clone()
                .context("--url is required without a playbook")?;
            let rate = args
                .rate
                .as_deref()
                .map(|r| {
                    r.parse::<Rate>()
                        .map(Rate::per_second)
                        .map_err(|e| anyhow::anyhow!("--rate: {e}"))
                })
                .transpose()?;
            if rate.is_none() && args.connections.is_none() {
                bail!("give --rate (open model, like 2000/s) or --connections (closed loop)");
            }
            let max = drill_spec::policy::MAX_RATE_PER_PROCESS;
            if let Some(r) = rate
                && !(r.is_finite() && r <= max)
            {
                bail!(
                    "--rate {}: above drill's maximum of {max}/s per process; lower it, or split it over processes with --shard K/N",
                    args.rate.as_deref().unwrap_or_default()
                );
            }
            let mut headers = Vec::new();
            for h in &args.headers {
                let (k, v) = h
                    .split_once(':')
                    .with_context(|| format!("--header \"{h}\": write it as `Name: value`"))?;
                let name = http::HeaderName::from_bytes(k.trim().as_bytes())
                    .with_context(|| format!("--header \"{h}\": invalid name"))?;
                headers.push((name, v.trim().to_owned()));
            }
            let duration = dur(&args.duration, "duration")?;
            if duration > drill_spec::policy::MAX_TRAFFIC.0 {
                bail!(
                    "--duration {}: longer than drill's maximum of {}",
                    args.duration,
                    drill_spec::policy::MAX_TRAFFIC
                );
            }
            let a = AdHoc {
                url: url.clone(),
                method: http::Method::from_bytes(args.method.as_bytes()).context("--method")?,
                headers,
                body: args.body.clone(),
                rate,
                connections: args.connections,
                duration,
                max_in_flight: args.max_in_flight.map(|n| n.max(1)),
                workers: args.workers.map(|n| n.max(1)),
                timeout: dur(&args.timeout, "timeout")?,
                http: if args.http2 {
                    drill_spec::model::HttpVersion::Http2
                } else {
                    drill_spec::model::HttpVersion::Http1
                },
                insecure: args.insecure,
                late_tolerance: drill_load::DEFAULT_LATE_TOLERANCE,
            };
            let mut run = Run::ad_hoc(&a).map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(s) = args.shard {
                run = run
                    .shard(s, a.max_in_flight)
                    .map_err(|e| anyhow::anyhow!("--shard: {e}"))?;
            }
            (run, format!("drill load {url}"))
        }
    };
    if args.shard.is_some() && args.playbook.is_some() {
        bail!(
            "--shard with a playbook: run the playbook with `drill apply` and traffic.distributed, which starts and adds up the shards"
        );
    }
    let start = match args.t0 {
        Some(t0) => instant_of(t0),
        None => std::time::Instant::now(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let (report, interrupted) = rt.block_on(execute(run, start));
    print_report(&report);
    write_outputs(&args, &report, &title)?;
    if let Some(w) = report.drop_warning() {
        eprintln!("warning: {w}");
    }
    if interrupted {
        eprintln!("stopped by signal: the figures cover the traffic sent until then");
        return Ok(exit::code(exit::ABORTED));
    }
    Ok(exit::code(if report.passed() {
        exit::OK
    } else {
        exit::CHECK_FAILED
    }))
}

/// The `Instant` of `t0_ms` (milliseconds since the Unix epoch) on this host's clock.
fn instant_of(t0_ms: i64) -> std::time::Instant {
    let ahead = t0_ms - chrono::Utc::now().timestamp_millis();
    let now = std::time::Instant::now();
    let d = Duration::from_millis(ahead.unsigned_abs());
    if ahead >= 0 {
        now + d
    } else {
        now.checked_sub(d).unwrap_or(now)
    }
}

/// `drill load --run RUN --shard K/N` (or `--shards N` in an Indexed Job's pod).
fn shard_of_run(id: &str, args: &LoadArgs, db: &DbArg) -> Result<ExitCode> {
    let shard = match (args.shard, args.shards) {
        (Some(s), _) => s,
        (None, Some(n)) => {
            let k = std::env::var("JOB_COMPLETION_INDEX")
                .context("--shards N takes this shard's index from JOB_COMPLETION_INDEX, which is not set: give --shard K/N")?;
            drill_load::Shard::parse(&format!("{}/{n}", k.trim()))
                .map_err(|e| anyhow::anyhow!("JOB_COMPLETION_INDEX: {e}"))?
        }
        (None, None) => bail!("--run needs --shard K/N (or --shards N with JOB_COMPLETION_INDEX)"),
    };
    let rt = crate::support::runtime()?;
    rt.block_on(async {
        let store = db.open().await?;
        let log: drill_engine::Log = std::sync::Arc::new(|l: &str| eprintln!("{l}"));
        // A Ctrl-C in the terminal reaches the engine and its local shards together, and a
        // deleted pod gets SIGTERM: the shard stops sending and still sends its last report.
        let (tx, rx) = tokio::sync::oneshot::channel::<&'static str>();
        crate::support::on_signals(
            move |name| {
                let _ = tx.send(name);
            },
            "exiting now, without the last report",
        );
        let interrupt = async move {
            match rx.await {
                Ok(name) => format!("interrupted by {name}"),
                Err(_) => std::future::pending().await,
            }
        };
        match drill_engine::shards::runner::run(&store, id, shard, log, interrupt).await {
            Ok(end) => {
                eprintln!(
                    "shard {shard}: {} sent, {} dropped{}",
                    end.sent,
                    end.dropped,
                    end.stopped
                        .map(|s| format!("; stopped: {s}"))
                        .unwrap_or_default()
                );
                Ok(exit::code(exit::OK))
            }
            Err(e) => {
                let why = drill_engine::chain(&e);
                eprintln!("shard {shard}: error: {why}");
                drill_engine::shards::report_failure(&store, id, shard, &why).await;
                Ok(exit::code(exit::ABORTED))
            }
        }
    })
}

async fn execute(run: Run, start: std::time::Instant) -> (Report, bool) {
    let stop = Stop::default();
    let recorder = run.recorder();
    let total = run.duration;
    let target = run.target_rate;
    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total.as_millis() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise}/{duration_precise} [{bar:30}] {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let watcher = progress.clone().map(|bar| {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            let start = std::time::Instant::now();
            let mut last = (0u64, start);
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let s = recorder.snapshot();
                let now = std::time::Instant::now();
                let rate =
                    (s.counters.sent - last.0) as f64 / (now - last.1).as_secs_f64().max(1e-3);
                last = (s.counters.sent, now);
                let err = if s.requests == 0 {
                    0.0
                } else {
                    s.failed as f64 * 100.0 / s.requests as f64
                };
                let target = target
                    .map(|t| format!(" (target {t:.0}/s)"))
                    .unwrap_or_default();
                bar.set_position(start.elapsed().as_millis() as u64);
                bar.set_message(format!(
                    "{rate:.0}/s{target}  p95 {:.1} ms  errors {err:.2}%  dropped {}",
                    s.p95_recent.as_secs_f64() * 1e3,
                    s.counters.dropped()
                ));
            }
        })
    });
    {
        let stop = stop.clone();
        crate::support::on_signals(
            move |_| {
                eprintln!(
                    "\nstopping: finishing the requests in flight (press Ctrl-C again to quit at once)"
                );
                stop.stop();
            },
            "quitting now",
        );
    }
    let report = run.execute_from(stop.clone(), start).await;
    if let Some(w) = watcher {
        w.abort();
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    (report, stop.stopped())
}

fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1e3)
}

fn print_report(r: &Report) {
    let m = &r.measurements;
    let o = &m.overall;
    let c = &m.counters;
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    println!("\n  scheduled........: {}", c.scheduled);
    println!(
        "  sent.............: {}  ({} cursor follow-ups)",
        c.sent, c.follow_ups
    );
    println!("  completed........: {}", c.completed);
    println!("  dropped..........: {}", c.dropped());
    match r.target_rate {
        Some(t) => println!(
            "  rate.............: {:.1}/s achieved, target {t:.1}/s",
            c.scheduled.saturating_sub(c.dropped()) as f64 / secs
        ),
        None => println!("  rate.............: {:.1}/s", c.sent as f64 / secs),
    }
    println!(
        "  http_req_duration: avg={} min={} med={} max={} p(90)={} p(95)={} p(99)={}  (from the intended start)",
        ms(o.latency_mean()),
        ms(o.latency_min()),
        ms(o.latency_at(50.0)),
        ms(o.latency_max()),
        ms(o.latency_at(90.0)),
        ms(o.latency_at(95.0)),
        ms(o.latency_at(99.0))
    );
    println!(
        "  http_req_failed..: {:.2}%  {} of {}",
        o.error_rate() * 100.0,
        o.failed,
        o.requests
    );
    for (class, n) in &o.by_class {
        println!("    {class:<15}: {n}");
    }
    for f in m.failures.iter().take(5) {
        println!(
            "    e.g. at {:.3}s {} {} {:.1}ms X-Request-Id: {}",
            f.at_s,
            f.class,
            f.status.map(|s| s.to_string()).unwrap_or_default(),
            f.latency_ms,
            f.request_id.as_deref().unwrap_or("-")
        );
    }
    for t in &r.thresholds {
        println!(
            "  {} {} {}: {}",
            if t.ok { "✓" } else { "✗" },
            t.scope,
            t.k6,
            t.sentence()
        );
    }
}

fn write_outputs(args: &LoadArgs, r: &Report, title: &str) -> Result<()> {
    if let Some(f) = &args.summary_export {
        std::fs::write(
            f,
            format!("{}\n", serde_json::to_string_pretty(&r.k6_summary())?),
        )
        .with_context(|| format!("cannot write {}", f.display()))?;
    }
    if let Some(f) = &args.timeline {
        std::fs::write(
            f,
            format!("{}\n", serde_json::to_string_pretty(&r.timeline())?),
        )
        .with_context(|| format!("cannot write {}", f.display()))?;
    }
    if let Some(f) = &args.markdown {
        std::fs::write(f, r.markdown(title))
            .with_context(|| format!("cannot write {}", f.display()))?;
    }
    Ok(())
}
