//! `drill apply --server URL`: the CLI as a client of a `drill daemon`. Posts the playbook's
//! text, follows the run until it ends (its live status: each drill's stage as it changes),
//! then prints the run's verdict lines from its stored report, exactly as a local apply
//! prints them, and exits with the same code.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use crate::exit;
use crate::support::runtime;

/// The daemon's answers, as this client reads them: read typed, so that an answer of another
/// shape is an error that says so, not a blank.
pub mod reply {
    use serde::Deserialize;

    /// A refusal: `{"error": …, "errors": [...]}`.
    #[derive(Debug, Default, Deserialize)]
    pub struct Refusal {
        #[serde(default)]
        pub error: Option<String>,
        #[serde(default)]
        pub errors: Vec<String>,
    }

    /// `POST /api/v1/runs` with `dry_run`.
    #[derive(Debug, Deserialize)]
    pub struct DryRun {
        pub status: drill_report::Status,
        #[serde(default)]
        pub report: Option<drill_report::DryRun>,
    }

    /// `POST /api/v1/runs`: the run started.
    #[derive(Debug, Deserialize)]
    pub struct Started {
        pub run: String,
    }

    /// `GET /api/v1/runs/ID`: the row, and while it runs, its live status.
    #[derive(Debug, Deserialize)]
    pub struct Run {
        pub run: drill_engine::store::RunRow,
        #[serde(default)]
        pub live: Option<Live>,
    }

    #[derive(Debug, Default, Deserialize)]
    pub struct Live {
        #[serde(default)]
        pub drills: Vec<LiveDrill>,
    }

    #[derive(Debug, Deserialize)]
    pub struct LiveDrill {
        pub name: String,
        pub stage: String,
    }

    /// `GET /api/v1/runs`.
    #[derive(Debug, Deserialize)]
    pub struct Runs {
        pub runs: Vec<drill_engine::store::RunRow>,
    }

    /// `POST /api/v1/halt` and `/resume`: who halted, and why.
    #[derive(Debug, Deserialize)]
    pub struct Halt {
        pub by: String,
        pub reason: String,
    }

    #[derive(Debug, Deserialize)]
    pub struct Halted {
        pub halt: Halt,
    }

    #[derive(Debug, Deserialize)]
    pub struct Resumed {
        #[serde(default)]
        pub resumed: Option<Halt>,
    }
}

/// Reads an answer typed; an answer of another shape is an error naming what was asked.
pub fn read<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T> {
    serde_json::from_value(v).with_context(|| format!("{what}: the daemon's answer does not read"))
}

/// What a refusal said, or its body when it is not one.
fn said(v: &Value) -> String {
    match serde_json::from_value::<reply::Refusal>(v.clone()) {
        Ok(reply::Refusal { error: Some(e), .. }) => e,
        _ => v.to_string(),
    }
}

fn token() -> Result<String> {
    match std::env::var("DRILL_TOKEN") {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
        _ => bail!(
            "DRILL_TOKEN is not set: the daemon's API needs a token (an operator's, from `drill token add`)"
        ),
    }
}

async fn send(req: reqwest::RequestBuilder, what: &str) -> Result<(u16, Value)> {
    // Whatever a URL carries (`--server http://user:password@…`) is never printed.
    let what = drill_spec::redact::text(what);
    let resp = req.send().await.map_err(|e| {
        anyhow::anyhow!(
            "{what}: no answer: {}",
            drill_spec::redact::text(&drill_faults::chain(&e))
        )
    })?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| {
        anyhow::anyhow!(
            "{what}: no body: {}",
            drill_spec::redact::text(&e.to_string())
        )
    })?;
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, v))
}

/// One call of a daemon's API with DRILL_TOKEN: its status and JSON body. Exit code 2
/// (with the reason printed) when there is no token.
pub fn call(
    server: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Result<(u16, Value), u8>> {
    let token = match token() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("drill: {e}");
            return Ok(Err(exit::INVALID));
        }
    };
    let url = format!("{}{path}", server.trim_end_matches('/'));
    runtime()?.block_on(async move {
        let client = drill_faults::http::client(Duration::from_secs(30))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut req = match method {
            "POST" => client.post(&url),
            _ => client.get(&url),
        }
        .header("Authorization", format!("Bearer {token}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        Ok(Ok(send(req, &format!("{method} {url}")).await?))
    })
}

/// Prints a refused call's error and returns its exit code (4xx: 2, else 3).
pub fn refused(server: &str, status: u16, v: &Value) -> ExitCode {
    eprintln!(
        "drill: {} answered {status}: {}",
        drill_spec::redact::url(server),
        said(v)
    );
    exit::code(if (400..500).contains(&status) {
        exit::INVALID
    } else {
        exit::ABORTED
    })
}

/// What `drill apply --server` sends: the playbook's file, the time scale, a dry run or not.
#[derive(Debug, Clone)]
pub struct Remote<'a> {
    pub playbook: &'a std::path::Path,
    pub time_scale: f64,
    pub dry_run: bool,
}

pub fn apply(server: &str, args: &Remote<'_>) -> Result<ExitCode> {
    let token = match token() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("drill: {e}");
            return Ok(exit::code(exit::INVALID));
        }
    };
    let text = drill_engine::files::read(args.playbook)
        .with_context(|| format!("cannot read {}", args.playbook.display()))?;
    // The daemon reads no environment for a posted playbook: the values of its `${NAME}`s
    // are this caller's, sent as the run's params.
    let params: std::collections::BTreeMap<String, String> = drill_spec::interp::referenced(&text)
        .into_iter()
        .filter_map(|n| std::env::var(&n).ok().map(|v| (n, v)))
        .collect();
    let base = server.trim_end_matches('/').to_owned();
    let shown = drill_spec::redact::url(&base);
    runtime()?.block_on(async move {
        let client = drill_faults::http::client(Duration::from_secs(60))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let auth = format!("Bearer {token}");
        let (status, v) = send(
            client
                .post(format!("{base}/api/v1/runs"))
                .header("Authorization", &auth)
                .json(
                    &json!({"yaml": text, "params": params, "time_scale": args.time_scale, "dry_run": args.dry_run}),
                ),
            "POST /api/v1/runs",
        )
        .await?;
        match status {
            202 => {}
            200 if args.dry_run => {
                let d: reply::DryRun = read(v, "the dry run")?;
                println!("dry run on {shown}: nothing was changed, no traffic was sent");
                let found = d.report.unwrap_or_default();
                for w in &found.would {
                    println!("  {w}");
                }
                for e in &found.errors {
                    eprintln!("error: {e}");
                }
                let ok = d.status == drill_report::Status::DryRun;
                return Ok(exit::code(if ok { exit::OK } else { exit::ABORTED }));
            }
            _ => {
                eprintln!("drill: {shown} refused the run ({status}): {}", said(&v));
                let r: reply::Refusal = serde_json::from_value(v).unwrap_or_default();
                for e in &r.errors {
                    eprintln!("  {e}");
                }
                let code = if (400..500).contains(&status) {
                    exit::INVALID
                } else {
                    exit::ABORTED
                };
                return Ok(exit::code(code));
            }
        }
        let id = read::<reply::Started>(v, "POST /api/v1/runs")?.run;
        eprintln!("run {id}: running on {shown}");
        let mut seen = String::new();
        let row = loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (s, v) = send(
                client
                    .get(format!("{base}/api/v1/runs/{id}"))
                    .header("Authorization", &auth),
                "GET the run",
            )
            .await?;
            if s != 200 {
                bail!("{shown} lost run {id} ({s}): {v}");
            }
            let v: reply::Run = read(v, "GET the run")?;
            let stages: Vec<String> = v
                .live
                .unwrap_or_default()
                .drills
                .iter()
                .map(|d| format!("{}: {}", d.name, d.stage))
                .collect();
            let now = stages.join(", ");
            if !now.is_empty() && now != seen {
                eprintln!("  {now}");
                seen = now;
            }
            if v.run.status != "running" {
                break v.run;
            }
        };
        let (_, report) = send(
            client
                .get(format!("{base}/api/v1/runs/{id}/report?format=json"))
                .header("Authorization", &auth),
            "GET the report",
        )
        .await?;
        let report: drill_report::Report = read(report, "GET the report")?;
        crate::verdict::print(&report, &[]);
        let code = match row.status.as_str() {
            "passed" => exit::OK,
            "failed" => exit::CHECK_FAILED,
            "revert_failed" => exit::REVERT_FAILED,
            _ => exit::ABORTED,
        };
        Ok(exit::code(code))
    })
}
