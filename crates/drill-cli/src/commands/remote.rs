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
        v["error"].as_str().unwrap_or(&v.to_string())
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
    let text = crate::files::read(args.playbook)
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
                println!("dry run on {shown}: nothing was changed, no traffic was sent");
                for w in v["report"]["would"].as_array().into_iter().flatten() {
                    println!("  {}", w.as_str().unwrap_or_default());
                }
                for e in v["report"]["errors"].as_array().into_iter().flatten() {
                    eprintln!("error: {}", e.as_str().unwrap_or_default());
                }
                let ok = v["status"] == "dry_run";
                return Ok(exit::code(if ok { exit::OK } else { exit::ABORTED }));
            }
            _ => {
                eprintln!(
                    "drill: {shown} refused the run ({status}): {}",
                    v["error"].as_str().unwrap_or(&v.to_string())
                );
                for e in v["errors"].as_array().into_iter().flatten() {
                    eprintln!("  {}", e.as_str().unwrap_or_default());
                }
                let code = if (400..500).contains(&status) {
                    exit::INVALID
                } else {
                    exit::ABORTED
                };
                return Ok(exit::code(code));
            }
        }
        let id = v["run"].as_str().unwrap_or_default().to_owned();
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
            let stages: Vec<String> = v["live"]["drills"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    format!(
                        "{}: {}",
                        d["name"].as_str().unwrap_or("?"),
                        d["stage"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            let now = stages.join(", ");
            if !now.is_empty() && now != seen {
                eprintln!("  {now}");
                seen = now;
            }
            if v["run"]["status"] != "running" {
                break v["run"].clone();
            }
        };
        let (_, report) = send(
            client
                .get(format!("{base}/api/v1/runs/{id}/report?format=json"))
                .header("Authorization", &auth),
            "GET the report",
        )
        .await?;
        crate::verdict::print(&report, &[]);
        let code = match row["status"].as_str().unwrap_or_default() {
            "passed" => exit::OK,
            "failed" => exit::CHECK_FAILED,
            "revert_failed" => exit::REVERT_FAILED,
            _ => exit::ABORTED,
        };
        Ok(exit::code(code))
    })
}
