//! SQL through sqlx: PostgreSQL failover (promote a streaming replica with `pg_promote()`,
//! wait until `pg_is_in_recovery()` is false, then an optional route-switch step), arbitrary
//! SQL as a fault with its revert SQL, and scalar SQL probes.
//!
//! MySQL/MariaDB promotion is not built yet; a `mysql://` target is `Unsupported`.

use std::time::{Duration, Instant};

use drill_spec::model::{Allow, Fault, FaultAction, SqlProbe, Step};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, Row};

use crate::{FaultError, Prepared, RevertRecord, Reverted, allowed};

/// What a SQL fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Action {
    /// Promote the replica; then run the route switch, if any.
    Promote {
        route_switch: Option<Box<Step>>,
        was_in_recovery: bool,
    },
    /// Run `inject`; revert runs `revert`.
    Statements {
        inject: String,
        revert: Option<String>,
    },
}

/// The database and what the fault does to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub url: String,
    pub action: Action,
}

impl Record {
    pub(crate) fn permanent(&self) -> Option<String> {
        match &self.action {
            Action::Promote {
                was_in_recovery: true,
                ..
            } => Some(format!(
                "promoted the replica at {} to primary; the old primary no longer receives writes: rebuild a replica (pg_basebackup from the new primary) to restore redundancy",
                redact(&self.url)
            )),
            Action::Statements {
                revert: None,
                inject,
            } => Some(format!("ran SQL with no revert: {inject}")),
            _ => None,
        }
    }

    pub(crate) fn manual_restore(&self) -> String {
        match &self.action {
            Action::Statements {
                revert: Some(r), ..
            } => format!("psql {} -c {r:?}", redact(&self.url)),
            _ => "nothing to run: this fault cannot be undone".into(),
        }
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

async fn connect(url: &str) -> Result<PgConnection, FaultError> {
    if !is_postgres(url) {
        return Err(FaultError::Unsupported("mysql"));
    }
    tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(url))
        .await
        .map_err(|_| {
            FaultError::backend("sql", format!("{} did not answer within 10s", redact(url)))
        })?
        .map_err(|e| FaultError::backend("sql", format!("{}: {e}", redact(url))))
}

async fn in_recovery(con: &mut PgConnection) -> Result<bool, FaultError> {
    sqlx::query("select pg_is_in_recovery()")
        .fetch_one(con)
        .await
        .and_then(|r| r.try_get::<bool, _>(0))
        .map_err(|e| FaultError::backend("sql", e))
}

pub(crate) async fn prepare(
    fault: &Fault,
    url: &str,
    allow: &Allow,
) -> Result<Prepared, FaultError> {
    allowed(drill_spec::allow::endpoint(&allow.sql, url, "sql", "sql"))?;
    if let Some(Step { exec: Some(e), .. }) = &fault.route_switch {
        allowed(drill_spec::allow::exec(allow, &e.command))?;
    }
    if fault
        .route_switch
        .as_ref()
        .is_some_and(|s| s.http.is_some())
    {
        return Err(FaultError::Unsupported(
            "http route switch (use an exec step)",
        ));
    }
    let mut con = connect(url).await?;
    let (action, change) = match fault.action {
        FaultAction::Promote => {
            let was = in_recovery(&mut con).await?;
            if !was {
                return Err(FaultError::Invalid {
                    fault: fault.name.clone(),
                    message: format!(
                        "{} is not a replica (pg_is_in_recovery() is false)",
                        redact(url)
                    ),
                });
            }
            let mut change = format!(
                "promote the replica at {} to primary (pg_promote), for good",
                redact(url)
            );
            if let Some(s) = &fault.route_switch {
                change.push_str(&format!(
                    ", then switch the route ({})",
                    s.name.clone().unwrap_or_else(|| "route_switch".into())
                ));
            }
            (
                Action::Promote {
                    route_switch: fault.route_switch.clone().map(Box::new),
                    was_in_recovery: was,
                },
                change,
            )
        }
        FaultAction::Sql => {
            let Some(s) = &fault.sql else {
                return Err(FaultError::Invalid {
                    fault: fault.name.clone(),
                    message: "a sql fault needs `sql`".into(),
                });
            };
            (
                Action::Statements {
                    inject: s.inject.clone(),
                    revert: s.revert.clone(),
                },
                format!("run SQL on {}: {}", redact(url), s.inject),
            )
        }
        other => {
            return Err(FaultError::Invalid {
                fault: fault.name.clone(),
                message: format!("{} does not apply to sql", other.name()),
            });
        }
    };
    let _ = con.close().await;
    Ok(Prepared {
        record: RevertRecord::Sql(Record {
            url: url.to_owned(),
            action,
        }),
        changes: vec![change],
    })
}

pub(crate) async fn apply(r: &Record) -> Result<(), FaultError> {
    let mut con = connect(&r.url).await?;
    match &r.action {
        Action::Promote { route_switch, .. } => {
            if in_recovery(&mut con).await? {
                sqlx::query("select pg_promote(true, 60)")
                    .execute(&mut con)
                    .await
                    .map_err(|e| FaultError::backend("sql", format!("pg_promote: {e}")))?;
            }
            // pg_promote(wait => true) returns once promoted; check, as the contract says.
            let deadline = Instant::now() + Duration::from_secs(60);
            while in_recovery(&mut con).await? {
                if Instant::now() > deadline {
                    return Err(FaultError::backend(
                        "sql",
                        "still in recovery 60s after pg_promote",
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if let Some(e) = route_switch.as_ref().and_then(|s| s.exec.as_ref()) {
                crate::exec::run(e).await?;
            }
            Ok(())
        }
        Action::Statements { inject, .. } => sqlx::raw_sql(sqlx::AssertSqlSafe(inject.clone()))
            .execute(&mut con)
            .await
            .map(|_| ())
            .map_err(|e| FaultError::backend("sql", e)),
    }
}

pub(crate) async fn revert(r: &Record) -> Result<Reverted, FaultError> {
    match &r.action {
        Action::Promote { .. } => Ok(Reverted::Permanent(r.permanent().unwrap_or_default())),
        Action::Statements { revert: None, .. } => {
            Ok(Reverted::Permanent(r.permanent().unwrap_or_default()))
        }
        Action::Statements {
            revert: Some(sql), ..
        } => {
            let mut con = connect(&r.url).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&mut con)
                .await
                .map_err(|e| FaultError::backend("sql", e))?;
            Ok(Reverted::Restored(vec![format!(
                "ran SQL on {}: {sql}",
                redact(&r.url)
            )]))
        }
    }
}

/// Runs a scalar query: one row, one column, numeric or boolean.
pub(crate) async fn probe(p: &SqlProbe, allow: &Allow) -> Result<f64, FaultError> {
    allowed(drill_spec::allow::endpoint(
        &allow.sql, &p.url, "sql", "sql",
    ))?;
    let mut con = connect(&p.url).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(p.query.clone()))
        .fetch_one(&mut con)
        .await
        .map_err(|e| FaultError::backend("sql", e))?;
    if let Ok(v) = row.try_get::<f64, _>(0) {
        return Ok(v);
    }
    if let Ok(v) = row.try_get::<i64, _>(0) {
        return Ok(v as f64);
    }
    if let Ok(v) = row.try_get::<i32, _>(0) {
        return Ok(f64::from(v));
    }
    if let Ok(v) = row.try_get::<bool, _>(0) {
        return Ok(if v { 1.0 } else { 0.0 });
    }
    if let Ok(v) = row.try_get::<String, _>(0) {
        return v.trim().parse().map_err(|_| {
            FaultError::backend("sql", format!("the probe returned \"{v}\", not a number"))
        });
    }
    Err(FaultError::backend(
        "sql",
        "the probe's first column is not a number or a boolean",
    ))
}
