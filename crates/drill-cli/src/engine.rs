//! `drill apply`, `drill runs`, `drill report`, `drill recover`: the engine's commands.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use drill_engine::run::Status;
use drill_engine::{Abort, Log, Options, Store};
use drill_spec::units::Dur;

use crate::cli::{EXIT_ABORTED, EXIT_INVALID, EXIT_OK, EXIT_REVERT_FAILED};

/// Where the run history is kept.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArg {
    /// The history store: a SQLite file path (default: ~/.local/share/drill/history.db) or a
    /// postgres:// URL. DATABASE_URL is used when this is not given.
    #[arg(long, value_name = "PATH|URL", global = true)]
    pub db: Option<String>,
}

impl DbArg {
    fn url(&self) -> Result<String> {
        let url = self
            .db
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| drill_engine::store::default_path().display().to_string());
        if let Some((scheme, _)) = url.split_once("://")
            && !matches!(scheme, "postgres" | "postgresql" | "sqlite")
        {
            bail!("--db {url}: the history store is a SQLite file or a postgres:// URL");
        }
        Ok(url)
    }

    async fn open(&self) -> Result<Store> {
        Ok(Store::open(&self.url()?).await?)
    }
}

/// The options of `drill apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The playbook to run.
    pub playbook: PathBuf,
    #[arg(long = "drills", value_name = "DIR")]
    pub drills: Vec<PathBuf>,
    /// Preflight only: resolve every target, run the preflight and read every probe, print
    /// what would change. Makes no mutating call, sends no traffic, records nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Multiply every duration by F (0.1 rehearses a 9-minute playbook in 54 s).
    #[arg(long, value_name = "F", default_value_t = 1.0, value_parser = crate::cli::parse_scale)]
    pub time_scale: f64,
    /// Write report.json, report.md, junit.xml and k6-summary.json to DIR/RUN_ID/.
    #[arg(long, value_name = "DIR", default_value = "drill-reports")]
    pub report_dir: PathBuf,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// How long a failing revert is retried before the run gives up with exit 4.
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    pub revert_timeout: String,
    /// How long the run's lease lasts without a heartbeat (another host's `drill recover`
    /// waits this long before taking over).
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    pub lease: String,
    #[command(flatten)]
    pub db: DbArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Json,
    Junit,
}

fn dur(s: &str, flag: &str) -> Result<Duration> {
    s.parse::<Dur>()
        .map(|d| d.0)
        .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// A log that prints above the progress bar when there is one.
fn log_to(bar: Option<indicatif::ProgressBar>) -> Log {
    Arc::new(move |line: &str| match &bar {
        Some(b) => {
            b.set_message(line.to_owned());
            b.println(line);
        }
        None => eprintln!("{line}"),
    })
}

pub fn apply(args: ApplyArgs) -> Result<ExitCode> {
    let (outcome, unreadable) =
        crate::cli::load(std::slice::from_ref(&args.playbook), &args.drills)?;
    crate::cli::print_diags(&outcome);
    let Some(vp) = outcome
        .playbooks
        .first()
        .filter(|_| !outcome.has_errors() && unreadable == 0)
    else {
        eprintln!(
            "the playbook is invalid; run `drill validate {}` for details; nothing was executed",
            args.playbook.display()
        );
        return Ok(ExitCode::from(EXIT_INVALID));
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
                "{elapsed_precise}/~{duration_precise} [{bar:30}] {wide_msg}",
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
        let abort = Abort::default();
        watch_signals(abort.clone());
        if let Some(b) = bar.clone() {
            tokio::spawn(async move {
                let start = std::time::Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    b.set_position(start.elapsed().as_millis() as u64);
                }
            });
        }
        anyhow::Ok(drill_engine::apply(&store, vp, &dir, &opts, abort).await?)
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let out = result?;
    if args.dry_run {
        print_dry_run(&out);
        return Ok(ExitCode::from(out.status.exit_code()));
    }
    match args.output {
        Output::Json if !out.report.is_null() => {
            println!("{}", serde_json::to_string_pretty(&out.report)?);
        }
        _ => print_summary(&out),
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
    Ok(ExitCode::from(out.status.exit_code()))
}

/// First SIGINT/SIGTERM: stop the traffic, revert everything, report (exit 3). Second: exit at
/// once; the ledger lets `drill recover` finish the revert.
fn watch_signals(abort: Abort) {
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        let mut first = true;
        loop {
            let name = tokio::select! {
                r = tokio::signal::ctrl_c() => { if r.is_err() { return; } "SIGINT" }
                _ = term.recv() => "SIGTERM",
            };
            if first {
                first = false;
                eprintln!(
                    "drill: {name}: stopping the traffic and reverting every fault (again to exit at once; `drill recover` then finishes the revert)"
                );
                abort.trigger(format!("interrupted by {name}"));
            } else {
                eprintln!(
                    "drill: {name} again: exiting now; run `drill recover` to revert what is still changed"
                );
                std::process::exit(i32::from(EXIT_ABORTED));
            }
        }
    });
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

fn print_summary(out: &drill_engine::Outcome) {
    let mut o = std::io::stdout().lock();
    let id = out.run_id.as_deref().unwrap_or("-");
    let _ = writeln!(o, "\nrun {id}: {}", out.status.verdict());
    if let Some(r) = &out.reason {
        let _ = writeln!(o, "  {r}");
    }
    if let Some(drills) = out.report.get("drills").and_then(|d| d.as_array()) {
        let _ = writeln!(
            o,
            "\n  {:<18} {:<28} {:<6} {:<52} LIMIT",
            "DRILL", "CHECK", "", "MEASURED"
        );
        for d in drills {
            let name = d["name"].as_str().unwrap_or("");
            let checks = d["checks"].as_array().cloned().unwrap_or_default();
            if checks.is_empty() {
                let _ = writeln!(o, "  {name:<18} ({})", d["status"].as_str().unwrap_or(""));
            }
            for c in checks {
                let _ = writeln!(
                    o,
                    "  {:<18} {:<28} {:<6} {:<52} {}",
                    name,
                    c["name"].as_str().unwrap_or(""),
                    if c["passed"].as_bool() == Some(true) {
                        "PASS"
                    } else {
                        "FAIL"
                    },
                    c["measured"].as_str().unwrap_or(""),
                    c["limit"].as_str().unwrap_or("")
                );
            }
        }
    }
    if let Some(slo) = out.report.get("slo").and_then(|s| s.as_array()) {
        for t in slo {
            if t["ok"].as_bool() == Some(false) {
                let _ = writeln!(
                    o,
                    "  run-wide SLO {} FAILED: measured {} {}, limit {}",
                    t["k6"].as_str().unwrap_or(""),
                    t["measured"],
                    t["unit"].as_str().unwrap_or(""),
                    t["limit"]
                );
            }
        }
    }
    if !out.written.is_empty() {
        let _ = writeln!(o, "\nreports:");
        for w in &out.written {
            let _ = writeln!(o, "  {}", w.display());
        }
    }
    if out.status == Status::Passed {
        let _ = writeln!(o, "\nPASS: every check held and every fault was reverted");
    }
}

/// The options of `drill runs`.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// How many runs, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub db: DbArg,
}

pub fn runs(args: RunsArgs) -> Result<ExitCode> {
    let rows = runtime()?.block_on(async {
        let store = args.db.open().await?;
        anyhow::Ok(store.runs(args.limit).await?)
    })?;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::from(EXIT_OK));
    }
    if rows.is_empty() {
        println!("no runs yet");
        return Ok(ExitCode::from(EXIT_OK));
    }
    println!(
        "{:<22} {:<20} {:<24} {:<14} {:>9}  REASON",
        "RUN", "STARTED (UTC)", "PLAYBOOK", "STATUS", "DURATION"
    );
    for r in rows {
        let started = chrono::DateTime::from_timestamp_millis(r.started_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let took = r
            .finished_ms
            .map(|f| format!("{:.1}s", (f - r.started_ms) as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        let mut reason = r.reason.unwrap_or_default();
        if reason.len() > 80 {
            let mut cut = 77;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            reason.push_str("...");
        }
        println!(
            "{:<22} {:<20} {:<24} {:<14} {:>9}  {}",
            r.id, started, r.playbook, r.status, took, reason
        );
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// The options of `drill report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The run (its id, or a unique prefix; `drill runs` lists them).
    pub run: String,
    #[arg(long, value_enum, default_value_t = Format::Md)]
    pub format: Format,
    #[command(flatten)]
    pub db: DbArg,
}

pub fn report(args: ReportArgs) -> Result<ExitCode> {
    let text = runtime()?.block_on(async {
        let store = args.db.open().await?;
        let Some(run) = store.run(&args.run).await? else {
            return anyhow::Ok(Err(format!(
                "no run {} in {}; `drill runs` lists them",
                args.run,
                store.url()
            )));
        };
        let fmt = match args.format {
            Format::Md => "markdown",
            Format::Json => "json",
            Format::Junit => "junit",
        };
        Ok(store.report(&run.id, fmt).await?.ok_or_else(|| {
            format!(
                "run {} has no report yet (status {}{})",
                run.id,
                run.status,
                run.reason.map(|r| format!(": {r}")).unwrap_or_default()
            )
        }))
    })?;
    match text {
        Ok(t) => {
            print!("{t}");
            if !t.ends_with('\n') {
                println!();
            }
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

/// The options of `drill recover`.
#[derive(Debug, clap::Args)]
pub struct RecoverArgs {
    /// How long each failing revert is retried.
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    pub revert_timeout: String,
    #[command(flatten)]
    pub db: DbArg,
}

pub fn recover(args: RecoverArgs) -> Result<ExitCode> {
    let budget = dur(&args.revert_timeout, "revert-timeout")?;
    let log = log_to(None);
    let rec = runtime()?.block_on(async {
        let store = args.db.open().await?;
        anyhow::Ok(drill_engine::recover::reconcile(&store, None, budget, &log).await?)
    })?;
    if rec.is_empty() {
        println!("nothing to recover: no run without a live owner has anything changed");
        return Ok(ExitCode::from(EXIT_OK));
    }
    for (run, reason) in &rec.runs {
        println!("run {run}: {reason}");
    }
    for (run, f, what) in &rec.reverted {
        println!("restored: run {run}: {f}: {what}");
    }
    for (run, f, what) in &rec.permanent {
        println!("cannot be undone: run {run}: {f}: {what}");
    }
    for (run, f, e, how) in &rec.failed {
        eprintln!("STILL CHANGED: run {run}: {f}: {e}\n  restore with: {how}");
    }
    Ok(ExitCode::from(if rec.failed.is_empty() {
        EXIT_OK
    } else {
        EXIT_REVERT_FAILED
    }))
}

/// The options of `drill demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Multiply every duration of the playbook by F (0.2 runs the 9-minute seed plan in under
    /// 2 minutes).
    #[arg(long, value_name = "F", default_value_t = 0.2, value_parser = crate::cli::parse_scale)]
    pub time_scale: f64,
    /// Leave the environment running afterwards (`scripts/demo-env.sh down` removes it).
    #[arg(long)]
    pub keep: bool,
    /// Run against a broken variant of the reference target: no-db-fallback,
    /// no-worker-restart, no-retry or no-stampede-lock.
    #[arg(long, value_name = "VARIANT", value_parser = ["no-db-fallback", "no-worker-restart", "no-retry", "no-stampede-lock"])]
    pub broken: Option<String>,
    /// Where the queue workers run: docker (two containers, playbooks/local.yaml) or
    /// processes (one local process, playbooks/local-processes.yaml); default: docker when
    /// the Docker engine answers, else processes.
    #[arg(long, value_name = "HOW", value_enum)]
    pub workers: Option<Workers>,
    #[arg(long, value_name = "DIR", default_value = "drill-reports")]
    pub report_dir: PathBuf,
    #[command(flatten)]
    pub db: DbArg,
}

/// Where the demo's queue workers run, and so which playbook drills them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workers {
    Docker,
    Processes,
}

impl Workers {
    /// The name `scripts/demo-env.sh up --workers` takes.
    fn as_str(self) -> &'static str {
        match self {
            Workers::Docker => "docker",
            Workers::Processes => "processes",
        }
    }

    fn playbook(self) -> &'static str {
        match self {
            Workers::Docker => "playbooks/local.yaml",
            Workers::Processes => "playbooks/local-processes.yaml",
        }
    }
}

/// Whether the Docker engine answers (`docker info`).
fn docker_answers() -> bool {
    std::process::Command::new("docker")
        .arg("info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `drill demo`: the environment up (scripts/demo-env.sh), playbooks/local.yaml (workers in
/// containers) or playbooks/local-processes.yaml (a worker process) applied, the environment
/// down.
pub fn demo(args: DemoArgs) -> Result<ExitCode> {
    let root = std::env::current_dir()?;
    let script = root.join("scripts/demo-env.sh");
    let workers = match args.workers {
        Some(w) => w,
        None if docker_answers() => Workers::Docker,
        None => {
            eprintln!(
                "drill demo: the Docker engine does not answer: the queue worker runs as a process"
            );
            Workers::Processes
        }
    };
    let playbook = root.join(workers.playbook());
    if !script.is_file() || !playbook.is_file() {
        eprintln!(
            "error: drill demo runs from the root of a drill checkout (it needs scripts/demo-env.sh and {})",
            workers.playbook()
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let env = |cmd: &mut std::process::Command| {
        // The reference target built beside this binary (cargo builds both for the tests),
        // else the script builds it.
        if let Some(bin) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("drill-target")))
            .filter(|b| b.is_file())
        {
            cmd.env("DRILL_TARGET_BIN", bin);
        }
    };
    let mut up = std::process::Command::new("bash");
    up.arg(&script).args(["up", "--workers", workers.as_str()]);
    if let Some(b) = &args.broken {
        up.args(["--broken", b]);
    }
    env(&mut up);
    eprintln!("drill demo: bringing the environment up (scripts/demo-env.sh up)");
    let ok = up.status().is_ok_and(|s| s.success());
    let code = if ok {
        apply(ApplyArgs {
            playbook,
            drills: vec![root.join("drills")],
            dry_run: false,
            time_scale: args.time_scale,
            report_dir: args.report_dir.clone(),
            output: Output::Text,
            revert_timeout: "2m".into(),
            lease: "15s".into(),
            db: args.db.clone(),
        })
    } else {
        eprintln!("drill demo: the environment did not come up; nothing was run");
        Ok(ExitCode::from(EXIT_ABORTED))
    };
    if args.keep {
        eprintln!(
            "drill demo: the environment is still running (API http://127.0.0.1:8088); `scripts/demo-env.sh down` removes it"
        );
    } else {
        let mut down = std::process::Command::new("bash");
        down.arg(&script).arg("down");
        env(&mut down);
        let _ = down.status();
    }
    code
}
