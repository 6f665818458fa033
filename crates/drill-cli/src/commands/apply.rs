//! `drill apply`: a playbook end to end, through the engine; the summary is printed from the
//! engine's typed outcome.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use drill_engine::{Abort, LiveStatus, Options};

use crate::exit;
use crate::support::{
    DbArg, Output, PolicyArg, dur, load_scoped, log_to, on_signals, parse_scale, print_diags,
    runtime,
};

/// The options of `drill apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The playbook to run.
    pub playbook: PathBuf,
    /// Where `uses:` finds drills (default: drills/ beside or above the playbook, and ./drills).
    #[arg(long = "drills", value_name = "DIR")]
    pub drills: Vec<PathBuf>,
    /// Preflight only: resolve every target, run the preflight and read every probe, print
    /// what would change. Makes no mutating call, sends no traffic, records nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Multiply every duration by F (0.1 rehearses a 9-minute playbook in 54 s).
    #[arg(long, value_name = "F", default_value_t = 1.0, value_parser = parse_scale)]
    pub time_scale: f64,
    /// Write report.json, report.md, junit.xml and k6-summary.json to DIR/RUN_ID/.
    #[arg(long, value_name = "DIR", default_value = "drill-reports")]
    pub report_dir: PathBuf,
    /// Output format: text for people, json for tools.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// How long a failing revert is retried before the run gives up with exit 4.
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    pub revert_timeout: String,
    /// How long the run's lease lasts without a renewal, on the store's clock (renewed every
    /// third of it). Past it, any other `drill recover` or `drill apply` takes the run over,
    /// even if this process still exists (a frozen one); this process then changes nothing
    /// more and exits 3.
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    pub lease: String,
    /// Run it on a `drill daemon` instead (its API's base URL, like http://drill:8090): the
    /// playbook is validated here, posted, run there with the daemon's drills, and followed
    /// to the end; same verdict lines and exit codes. The token comes from DRILL_TOKEN.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// After the run, compare it with a baseline run: `last-pass` (the newest passed run of
    /// this playbook before it) or a run id. A metric of the SLO over 10% worse, in the whole
    /// traffic or any drill's phase, fails the run (exit 1) and prints the table. Without a
    /// baseline yet, says so and judges the run alone.
    #[arg(long, value_name = "last-pass|RUN")]
    pub baseline: Option<String>,
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub policy: PolicyArg,
}

pub fn run(args: ApplyArgs) -> Result<ExitCode> {
    let Ok(policy) = args.policy.read() else {
        return Ok(exit::code(exit::INVALID));
    };
    let (outcome, unreadable) = load_scoped(
        std::slice::from_ref(&args.playbook),
        &args.drills,
        policy.as_ref(),
    )?;
    if let Some(server) = args.server.clone() {
        print_diags(&outcome);
        if outcome.has_errors() || unreadable > 0 || outcome.playbooks.is_empty() {
            eprintln!(
                "the playbook is invalid; run `drill validate {}` for details; nothing was sent",
                args.playbook.display()
            );
            return Ok(exit::code(exit::INVALID));
        }
        return super::remote::apply(
            &server,
            &super::remote::Remote {
                playbook: &args.playbook,
                time_scale: args.time_scale,
                dry_run: args.dry_run,
            },
        );
    }
    print_diags(&outcome);
    let Some(vp) = outcome
        .playbooks
        .first()
        .filter(|_| !outcome.has_errors() && unreadable == 0)
    else {
        eprintln!(
            "the playbook is invalid; run `drill validate {}` for details; nothing was executed",
            args.playbook.display()
        );
        return Ok(exit::code(exit::INVALID));
    };
    let revert_budget = dur(&args.revert_timeout, "revert-timeout")?;
    let lease = dur(&args.lease, "lease")?;
    let dir = args
        .playbook
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let plan = vp.plan(args.time_scale);
    let total = plan
        .drills
        .iter()
        .map(|d| d.end_latest)
        .chain([plan.traffic.duration])
        .max()
        .unwrap_or_default();
    let bar = (std::io::stderr().is_terminal() && !args.dry_run).then(|| {
        let b = indicatif::ProgressBar::new(total.0.as_millis() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise}/~{duration_precise} [{bar:30}] {prefix} {wide_msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let opts = Options {
        time_scale: args.time_scale,
        dry_run: args.dry_run,
        report_dir: Some(args.report_dir.clone()),
        lease,
        revert_budget,
        log: log_to(bar.clone()),
    };
    let rt = runtime()?;
    let result = rt.block_on(async {
        let store = args.db.open().await?;
        let run = drill_engine::start(store.clone(), vp.clone(), dir, opts);
        watch_signals(run.aborter());
        if let Some(b) = bar.clone() {
            let status = run.status();
            tokio::spawn(async move {
                let start = std::time::Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    b.set_position(start.elapsed().as_millis() as u64);
                    b.set_prefix(progress_line(&status.borrow()));
                }
            });
        }
        let out = run.wait().await?;
        let gate = match (&args.baseline, &out.run_id) {
            (Some(which), Some(id)) if out.report.is_some() => Some(gate(&store, id, which).await?),
            _ => None,
        };
        anyhow::Ok((out, gate))
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let (out, gate) = result?;
    if args.dry_run {
        print_dry_run(&out);
        return Ok(exit::code(exit::of(out.status)));
    }
    match (args.output, &out.report) {
        (Output::Json, Some(report)) => {
            println!("{}", serde_json::to_string_pretty(report)?);
        }
        (_, Some(report)) => crate::verdict::print(report, &out.written),
        (_, None) => {
            // No report: the run was refused before it began (a held lock).
            println!(
                "\nrun {}: {}",
                out.run_id.as_deref().unwrap_or("-"),
                out.status.verdict()
            );
            println!(
                "\n{}: {}",
                out.status.verdict(),
                out.cause.as_deref().or(out.reason.as_deref()).unwrap_or("")
            );
        }
    }
    if !out.still_changed.is_empty() {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(
            e,
            "\nerror: {} fault(s) are STILL CHANGED; the run is not passed. Restore by hand:",
            out.still_changed.len()
        );
        for c in &out.still_changed {
            let _ = writeln!(e, "  {}/{}: {}", c.drill, c.fault, c.error);
            let _ = writeln!(e, "    restore with: {}", c.manual_restore);
        }
        let _ = writeln!(
            e,
            "`drill recover` keeps retrying from the ledger (it is safe to run from cron)."
        );
    }
    let code = exit::of(out.status);
    if let Some(g) = gate {
        print!("\n{}", g.text);
        if g.regressed && code == exit::OK {
            println!(
                "\nFAIL: the run passed its checks but regressed against baseline run {}: {}",
                g.base, g.first
            );
            return Ok(exit::code(exit::CHECK_FAILED));
        }
    }
    Ok(exit::code(code))
}

/// The baseline gate's verdict on a finished run.
struct Gate {
    text: String,
    regressed: bool,
    base: String,
    first: String,
}

async fn gate(store: &drill_engine::Store, id: &str, which: &str) -> Result<Gate> {
    use crate::commands::report::{baseline_of, run_and_report};
    let none = |text: String| Gate {
        text,
        regressed: false,
        base: String::new(),
        first: String::new(),
    };
    let (run, report) = match run_and_report(store, id).await? {
        Ok(x) => x,
        Err(e) => return Ok(none(format!("baseline: {e}\n"))),
    };
    let (base_row, base) = match baseline_of(store, &run, which).await? {
        Ok(x) => x,
        Err(e) => return Ok(none(format!("baseline: {e}\n"))),
    };
    let c = drill_report::compare::compare(&base, &report);
    let first = c
        .regressed()
        .next()
        .map(|r| format!("{} {} {}", r.scope, r.metric, r.change()))
        .unwrap_or_default();
    Ok(Gate {
        text: c.table(),
        regressed: c.has_regression(),
        base: base_row.id,
        first,
    })
}

/// The live figures beside the progress bar: achieved vs target rate, recent p95 and
/// errors, and the faults applied now.
fn progress_line(s: &LiveStatus) -> String {
    let mut line = format!(
        "{:.0}/{:.0} req/s p95 {:.0}ms err {:.2}%",
        s.achieved_rate,
        s.target_rate,
        s.recent_p95_ms,
        s.recent_error_rate * 100.0
    );
    let done = s
        .drills
        .iter()
        .filter(|d| d.stage == drill_engine::status::Stage::Done)
        .count();
    let now: Vec<String> = s
        .drills
        .iter()
        .filter(|d| {
            matches!(
                d.stage,
                drill_engine::status::Stage::Fault | drill_engine::status::Stage::Recovery
            )
        })
        .map(|d| format!("{} {}", d.name, format!("{:?}", d.stage).to_lowercase()))
        .collect();
    if !s.drills.is_empty() {
        line.push_str(&format!(" | drills {done}/{} done", s.drills.len()));
        if !now.is_empty() {
            line.push_str(&format!(", {}", now.join(", ")));
        }
    }
    if !s.active_faults.is_empty() {
        let names: Vec<String> = s
            .active_faults
            .iter()
            .map(|f| format!("{}/{}", f.drill, f.fault))
            .collect();
        line.push_str(&format!(" | faults: {}", names.join(", ")));
    }
    line
}

/// First SIGINT/SIGTERM: stop the traffic, revert everything, report (exit 3). Second: exit at
/// once; the ledger lets `drill recover` finish the revert.
fn watch_signals(abort: Abort) {
    on_signals(
        move |name| {
            eprintln!(
                "drill: {name}: stopping the traffic and reverting every fault (again to exit at once; `drill recover` then finishes the revert)"
            );
            abort.trigger(format!("interrupted by {name}"));
        },
        "exiting now; run `drill recover` to revert what is still changed",
    );
}

fn print_dry_run(out: &drill_engine::Outcome) {
    println!("dry run: nothing was changed, no traffic was sent");
    for p in &out.preview {
        println!("  {p}");
    }
    if let Some(r) = &out.reason {
        eprintln!("error: {r}");
    } else {
        println!("preflight passed: `drill apply` would make the changes above");
    }
}
