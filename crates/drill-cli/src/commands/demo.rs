//! `drill demo`: the reference target up, the local playbook applied against it, down.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::apply::ApplyArgs;
use crate::exit;
use crate::support::{DbArg, Output, parse_scale};

/// The options of `drill demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Multiply every duration of the playbook by F (0.2 runs the 9-minute seed plan in under
    /// 2 minutes).
    #[arg(long, value_name = "F", default_value_t = 0.2, value_parser = parse_scale)]
    pub time_scale: f64,
    /// Leave the environment running afterwards (`scripts/demo-env.sh down` removes it).
    #[arg(long)]
    pub keep: bool,
    /// Run against a broken variant of the reference target: no-db-fallback,
    /// no-worker-restart, no-retry, no-stampede-lock or error-body (a 200 whose body is an
    /// error).
    #[arg(long, value_name = "VARIANT", value_parser = ["no-db-fallback", "no-worker-restart", "no-retry", "no-stampede-lock", "error-body"])]
    pub broken: Option<String>,
    /// Where the queue workers run: docker (two containers, playbooks/local.yaml) or
    /// processes (one local process, playbooks/local-processes.yaml); default: docker when
    /// the Docker engine answers, else processes.
    #[arg(long, value_name = "HOW", value_enum)]
    pub workers: Option<Workers>,
    /// Write the reports to DIR/RUN_ID/.
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
pub fn run(args: DemoArgs) -> Result<ExitCode> {
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
        return Ok(exit::code(exit::INVALID));
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
        super::apply::run(ApplyArgs {
            playbook,
            drills: vec![root.join("drills")],
            dry_run: false,
            time_scale: args.time_scale,
            report_dir: args.report_dir.clone(),
            output: Output::Text,
            revert_timeout: "2m".into(),
            lease: "15s".into(),
            server: None,
            baseline: None,
            db: args.db.clone(),
            policy: crate::support::PolicyArg::default(),
        })
    } else {
        eprintln!("drill demo: the environment did not come up; nothing was run");
        Ok(exit::code(exit::ABORTED))
    };
    if args.keep {
        eprintln!(
            "drill demo: the environment is still running (API http://127.0.0.1:8088); `scripts/demo-env.sh down` removes it"
        );
    } else {
        let mut down = std::process::Command::new("bash");
        down.arg(&script).arg("down");
        // The verdict's closing line stays the last line on stdout.
        down.stdout(std::io::stderr());
        env(&mut down);
        let _ = down.status();
    }
    code
}
