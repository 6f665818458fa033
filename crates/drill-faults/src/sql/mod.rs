//! SQL through sqlx: PostgreSQL failover (promote a streaming replica with `pg_promote()`,
//! wait until `pg_is_in_recovery()` is false, then an optional route-switch step), arbitrary
//! SQL as a fault with its revert SQL, and scalar SQL probes.
//!
//! MySQL/MariaDB failover: `STOP REPLICA; RESET REPLICA ALL; SET GLOBAL read_only = OFF`
//! (MySQL 8.0.22+ / MariaDB 10.5.1+ spellings), then the route switch.
//!
//! A failover is two steps, `promote` then `route_switch`, which the engine records one by one.
//! The promotion cannot be undone, so [`settle`] never "reverts" it: it reads whether the
//! replica was really promoted (nothing changed if not), and if it was but the route switch
//! did not complete, it runs the route switch (*rolls forward*): the one way out of two
//! writable primaries. A route switch must therefore be idempotent.

use std::time::{Duration, Instant};

use drill_spec::call::{Call, ValidStep};
use drill_spec::fault::SqlAction;
use drill_spec::model::{Allow, SqlFault, SqlProbe};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, MySqlConnection, PgConnection, Row};

use crate::contract::{FaultError, Guard, Prepared, Reverted, allowed, guarded};

/// What a SQL fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Action {
    /// MySQL/MariaDB: stop replicating, forget the source, accept writes; then the route switch.
    PromoteMysql {
        route_switch: Option<Box<ValidStep>>,
        read_only_before: bool,
    },
    /// Promote the replica; then run the route switch, if any.
    Promote {
        route_switch: Option<Box<ValidStep>>,
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
    /// The steps of [`apply`], in order.
    pub(crate) fn steps(&self) -> &'static [&'static str] {
        match &self.action {
            Action::Promote {
                route_switch: Some(_),
                ..
            }
            | Action::PromoteMysql {
                route_switch: Some(_),
                ..
            } => &["promote", "route_switch"],
            Action::Promote { .. } | Action::PromoteMysql { .. } => &["promote"],
            Action::Statements { .. } => &["apply"],
        }
    }

    fn route_switch(&self) -> Option<&ValidStep> {
        match &self.action {
            Action::Promote { route_switch, .. } | Action::PromoteMysql { route_switch, .. } => {
                route_switch.as_deref()
            }
            Action::Statements { .. } => None,
        }
    }

    pub(crate) fn permanent(&self) -> Option<String> {
        match &self.action {
            Action::PromoteMysql { .. } => Some(format!(
                "promoted the replica at {} to a writable primary (replication stopped and reset); rebuild a replica from it to restore redundancy",
                redact(&self.url)
            )),
            Action::Promote {
                was_in_recovery: true,
                ..
            } => Some(format!(
                "promoted the replica at {} to primary, for good: rebuild a replica from it (pg_basebackup from the new primary) to restore redundancy",
                redact(&self.url)
            )),
            Action::Statements {
                revert: None,
                inject,
            } => Some(format!("ran SQL with no revert: {inject}")),
            // A replica that was not in recovery was not promoted by this fault; statements
            // with a revert are undone.
            Action::Promote {
                was_in_recovery: false,
                ..
            }
            | Action::Statements {
                revert: Some(_), ..
            } => None,
        }
    }

    pub(crate) fn manual_restore(&self) -> String {
        match &self.action {
            Action::Statements {
                revert: Some(r), ..
            } if is_mysql(&self.url) => format!("mysql (to {}) -e {r:?}", redact(&self.url)),
            Action::Statements {
                revert: Some(r), ..
            } => format!("psql {} -c {r:?}", redact(&self.url)),
            Action::Statements { revert: None, .. }
            | Action::Promote { .. }
            | Action::PromoteMysql { .. } => match self.route_switch().map(|s| &s.call) {
                Some(Call::Exec(e)) => format!(
                    "the promotion cannot be undone; if the route switch did not run, run it: {}",
                    crate::exec::shown(e)
                ),
                Some(Call::Http(_)) | None => "nothing to run: this fault cannot be undone".into(),
            },
        }
    }
}

/// The URL without its password, for messages ([`drill_spec::redact::url`]).
pub fn redact(url: &str) -> String {
    drill_spec::redact::url(url)
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

async fn connect(url: &str) -> Result<PgConnection, FaultError> {
    if !is_postgres(url) {
        return Err(FaultError::backend(
            "sql",
            format!("{} is not a PostgreSQL URL", redact(url)),
        ));
    }
    tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(url))
        .await
        .map_err(|_| {
            FaultError::backend("sql", format!("{} did not answer within 10s", redact(url)))
        })?
        .map_err(|e| FaultError::context("sql", redact(url), e))
}

async fn in_recovery(con: &mut PgConnection) -> Result<bool, FaultError> {
    sqlx::query("select pg_is_in_recovery()")
        .fetch_one(con)
        .await
        .and_then(|r| r.try_get::<bool, _>(0))
        .map_err(|e| FaultError::client("sql", e))
}

pub(crate) async fn prepare(
    name: &str,
    typed: &SqlAction,
    url: &str,
    allow: &Allow,
) -> Result<Prepared<Record>, FaultError> {
    allowed(drill_spec::allow::sql(allow, url))?;
    // The route switch as it will run: its program resolved and checked here.
    let route_switch = match typed {
        SqlAction::Promote {
            route_switch: Some(s),
        } => {
            let Call::Exec(e) = &s.call else {
                return Err(FaultError::Unsupported(
                    "http route switch (use an exec step)",
                ));
            };
            Some(Box::new(ValidStep {
                name: s.name.clone(),
                call: Call::Exec(crate::exec::resolve(e, allow)?),
            }))
        }
        SqlAction::Promote { route_switch: None } | SqlAction::Statements(_) => None,
    };
    if is_mysql(url) {
        return prepare_mysql(name, typed, url, route_switch).await;
    }
    let mut con = connect(url).await?;
    let (action, change) = match typed {
        SqlAction::Promote { .. } => {
            let was = in_recovery(&mut con).await?;
            if !was {
                return Err(FaultError::Invalid {
                    fault: name.to_owned(),
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
            if let Some(s) = &route_switch {
                change.push_str(&format!(
                    ", then switch the route ({})",
                    s.name.clone().unwrap_or_else(|| "route_switch".into())
                ));
            }
            (
                Action::Promote {
                    route_switch,
                    was_in_recovery: was,
                },
                change,
            )
        }
        SqlAction::Statements(s) => statements(s, url),
    };
    let _ = con.close().await;
    Ok(prepared(url, action, change))
}

pub(crate) async fn apply(r: &Record) -> Result<(), FaultError> {
    for step in r.steps() {
        apply_step(r, step, &crate::contract::unguarded).await?;
    }
    Ok(())
}

/// Performs one step of [`Record::steps`], asking `guard` right before the mutation.
pub(crate) async fn apply_step(r: &Record, step: &str, guard: Guard<'_>) -> Result<(), FaultError> {
    match (&r.action, step) {
        (Action::Promote { .. }, "promote") if !is_mysql(&r.url) => promote(&r.url, guard).await,
        (Action::PromoteMysql { .. }, "promote") if is_mysql(&r.url) => {
            guarded(guard)?;
            promote_mysql(r).await
        }
        (Action::Statements { inject, .. }, "apply") => {
            guarded(guard)?;
            execute(&r.url, inject).await
        }
        (_, "route_switch") => {
            guarded(guard)?;
            run_route_switch(r).await
        }
        (Action::Promote { .. }, _) => Err(FaultError::backend(
            "sql",
            "a PostgreSQL promotion on a MySQL URL",
        )),
        (Action::PromoteMysql { .. }, _) => Err(FaultError::backend(
            "sql",
            "a MySQL promotion on a PostgreSQL URL",
        )),
        (Action::Statements { .. }, _) => Err(FaultError::backend(
            "sql",
            format!("a sql statements fault has no step {step:?}"),
        )),
    }
}

async fn run_route_switch(r: &Record) -> Result<(), FaultError> {
    match r.route_switch().map(|s| &s.call) {
        Some(Call::Exec(e)) => crate::exec::run(e).await.map(drop),
        Some(Call::Http(_)) => Err(FaultError::Unsupported(
            "http route switch (use an exec step)",
        )),
        None => Ok(()),
    }
}

/// Whether the database at the record's URL accepts writes now. A PostgreSQL replica is read
/// for up to 5 s: `pg_promote(false)` returns before the promotion completes, so a crash just
/// after it can leave a promotion in flight.
async fn promoted(r: &Record) -> Result<bool, FaultError> {
    if is_mysql(&r.url) {
        let mut con = connect_mysql(&r.url).await?;
        let replica = mysql_is_replica(&mut con).await? || mysql_read_only(&mut con).await?;
        return Ok(!replica);
    }
    let mut con = connect(&r.url).await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if !in_recovery(&mut con).await? {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Settles a fault an interrupted run left (see the module's header for the failover rule).
pub(crate) async fn settle(
    r: &Record,
    done: &[String],
    guard: Guard<'_>,
) -> Result<Reverted, FaultError> {
    if matches!(r.action, Action::Statements { .. }) {
        guarded(guard)?;
        return revert(r).await;
    }
    let permanent = r.permanent().unwrap_or_default();
    if !promoted(r).await? {
        return Ok(Reverted::NotApplied(format!(
            "the replica at {} is still a read-only replica: it was never promoted",
            redact(&r.url)
        )));
    }
    if r.route_switch().is_none() || done.iter().any(|d| d == "route_switch") {
        return Ok(Reverted::Permanent(permanent));
    }
    guarded(guard)?;
    match run_route_switch(r).await {
        Ok(()) => Ok(Reverted::Permanent(format!(
            "{permanent}; the route switch had not completed when the run stopped, so it was run now (rolled forward)"
        ))),
        Err(e) => Err(FaultError::backend(
            "sql",
            format!(
                "INCONSISTENT: the replica at {} was promoted and accepts writes, but the route switch did not complete and failed again now ({}); the old primary may still accept writes too. {}",
                redact(&r.url),
                crate::contract::chain(&e),
                r.manual_restore()
            ),
        )),
    }
}

/// Promotes a PostgreSQL replica and waits until it is out of recovery. On a hot standby
/// under write load any query, `pg_promote` included, can be cancelled by a recovery conflict
/// (SQLSTATE 40001); such failures are retried on a fresh connection for up to 60 s.
async fn promote(url: &str, guard: Guard<'_>) -> Result<(), FaultError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = async {
            let mut con = connect(url).await?;
            if in_recovery(&mut con).await? {
                // Asked here, after the connection and the read: a process frozen before
                // this point and taken over meanwhile does not promote.
                guarded(guard)?;
                // Not waiting inside the call: a long statement is what a conflict cancels.
                sqlx::query("select pg_promote(false)")
                    .execute(&mut con)
                    .await
                    .map_err(|e| FaultError::context("sql", "pg_promote", e))?;
            }
            while in_recovery(&mut con).await? {
                if Instant::now() > deadline {
                    return Err(FaultError::backend(
                        "sql",
                        "still in recovery 60s after pg_promote",
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(())
        }
        .await;
        match attempt {
            Ok(()) => return Ok(()),
            // The guard's refusal is final, never retried.
            Err(e @ FaultError::Refused(_)) => return Err(e),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

pub(crate) async fn revert(r: &Record) -> Result<Reverted, FaultError> {
    match &r.action {
        Action::Promote { .. } | Action::PromoteMysql { .. } => {
            Ok(Reverted::Permanent(r.permanent().unwrap_or_default()))
        }
        Action::Statements { revert: None, .. } => {
            Ok(Reverted::Permanent(r.permanent().unwrap_or_default()))
        }
        Action::Statements {
            revert: Some(sql), ..
        } => {
            execute(&r.url, sql).await?;
            Ok(Reverted::Restored(vec![format!(
                "ran SQL on {}: {sql}",
                redact(&r.url)
            )]))
        }
    }
}

/// Runs a scalar query: one row, one column, numeric or boolean.
pub(crate) async fn probe(p: &SqlProbe, allow: &Allow) -> Result<f64, FaultError> {
    allowed(drill_spec::allow::sql(allow, &p.url))?;
    if is_mysql(&p.url) {
        return probe_mysql(p).await;
    }
    let mut con = connect(&p.url).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(p.query.clone()))
        .fetch_one(&mut con)
        .await
        .map_err(|e| FaultError::client("sql", e))?;
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

fn is_mysql(url: &str) -> bool {
    url.starts_with("mysql://") || url.starts_with("mariadb://")
}

async fn connect_mysql(url: &str) -> Result<MySqlConnection, FaultError> {
    let u = url.replacen("mariadb://", "mysql://", 1);
    tokio::time::timeout(Duration::from_secs(10), MySqlConnection::connect(&u))
        .await
        .map_err(|_| {
            FaultError::backend("sql", format!("{} did not answer within 10s", redact(url)))
        })?
        .map_err(|e| FaultError::context("sql", redact(url), e))
}

/// Runs statements on either engine.
async fn execute(url: &str, sql: &str) -> Result<(), FaultError> {
    let q = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()));
    if is_mysql(url) {
        let mut con = connect_mysql(url).await?;
        q.execute(&mut con)
            .await
            .map(|_| ())
            .map_err(|e| FaultError::client("sql", e))
    } else {
        let mut con = connect(url).await?;
        q.execute(&mut con)
            .await
            .map(|_| ())
            .map_err(|e| FaultError::client("sql", e))
    }
}

async fn mysql_is_replica(con: &mut MySqlConnection) -> Result<bool, FaultError> {
    let rows = sqlx::query("SHOW REPLICA STATUS")
        .fetch_all(con)
        .await
        .map_err(|e| FaultError::client("sql", e))?;
    Ok(!rows.is_empty())
}

async fn mysql_read_only(con: &mut MySqlConnection) -> Result<bool, FaultError> {
    let row = sqlx::query("SELECT @@global.read_only")
        .fetch_one(con)
        .await
        .map_err(|e| FaultError::client("sql", e))?;
    Ok(row
        .try_get::<i64, _>(0)
        .map(|v| v != 0)
        .or_else(|_| row.try_get::<bool, _>(0))
        .unwrap_or(false))
}

async fn prepare_mysql(
    name: &str,
    typed: &SqlAction,
    url: &str,
    route_switch: Option<Box<ValidStep>>,
) -> Result<Prepared<Record>, FaultError> {
    let mut con = connect_mysql(url).await?;
    let (action, change) = match typed {
        SqlAction::Promote { .. } => {
            if !mysql_is_replica(&mut con).await? {
                return Err(FaultError::Invalid {
                    fault: name.to_owned(),
                    message: format!(
                        "{} is not a replica (SHOW REPLICA STATUS is empty)",
                        redact(url)
                    ),
                });
            }
            let read_only_before = mysql_read_only(&mut con).await?;
            (
                Action::PromoteMysql {
                    route_switch,
                    read_only_before,
                },
                format!(
                    "promote the replica at {} (STOP REPLICA; RESET REPLICA ALL; SET GLOBAL read_only = OFF), for good",
                    redact(url)
                ),
            )
        }
        SqlAction::Statements(s) => statements(s, url),
    };
    let _ = con.close().await;
    Ok(prepared(url, action, change))
}

async fn promote_mysql(r: &Record) -> Result<(), FaultError> {
    let mut con = connect_mysql(&r.url).await?;
    for stmt in [
        "STOP REPLICA",
        "RESET REPLICA ALL",
        "SET GLOBAL read_only = OFF",
    ] {
        sqlx::raw_sql(stmt)
            .execute(&mut con)
            .await
            .map_err(|e| FaultError::context("sql", stmt, e))?;
    }
    if mysql_is_replica(&mut con).await? || mysql_read_only(&mut con).await? {
        return Err(FaultError::backend(
            "sql",
            "still a read-only replica after the promotion",
        ));
    }
    Ok(())
}

async fn probe_mysql(p: &SqlProbe) -> Result<f64, FaultError> {
    let mut con = connect_mysql(&p.url).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(p.query.clone()))
        .fetch_one(&mut con)
        .await
        .map_err(|e| FaultError::client("sql", e))?;
    if let Ok(v) = row.try_get::<f64, _>(0) {
        return Ok(v);
    }
    if let Ok(v) = row.try_get::<i64, _>(0) {
        return Ok(v as f64);
    }
    if let Ok(v) = row.try_get::<u64, _>(0) {
        return Ok(v as f64);
    }
    if let Ok(v) = row.try_get::<String, _>(0) {
        return v.trim().parse().map_err(|_| {
            FaultError::backend("sql", format!("the probe returned \"{v}\", not a number"))
        });
    }
    Err(FaultError::backend(
        "sql",
        "the probe's first column is not a number",
    ))
}

/// The statements of a `sql` fault, the same on either engine.
fn statements(s: &SqlFault, url: &str) -> (Action, String) {
    let change = format!("run SQL on {}: {}", redact(url), s.inject);
    (
        Action::Statements {
            inject: s.inject.clone(),
            revert: s.revert.clone(),
        },
        change,
    )
}

fn prepared(url: &str, action: Action, change: String) -> Prepared<Record> {
    Prepared {
        record: Record {
            url: url.to_owned(),
            action,
        },
        changes: vec![change],
    }
}
