//! The daemon's records in the store: what became of each nominal time of a schedule (one
//! run or one missed record, unique by `(playbook, nominal_ms)`, so that a time fires once
//! however many daemons look at it), when a schedule was first seen (nothing before it is
//! owed), and the halt, a row every daemon obeys.

use serde::Serialize;
use sqlx::Row;

use crate::store::{RunRow, Store, StoreError, run_row};

/// Why a nominal time did not become a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MissReason {
    /// Later than the schedule's `starting_deadline`.
    Deadline,
    /// `concurrency: forbid` and the previous run still going.
    Forbid,
    /// The daemons are halted.
    Halted,
    /// `suspend: true`.
    Suspended,
    /// No daemon was running at the time, and a later time was owed instead.
    DaemonDown,
}

impl MissReason {
    pub fn as_str(self) -> &'static str {
        match self {
            MissReason::Deadline => "deadline",
            MissReason::Forbid => "forbid",
            MissReason::Halted => "halted",
            MissReason::Suspended => "suspended",
            MissReason::DaemonDown => "daemon-down",
        }
    }
}

/// One nominal time and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fire {
    pub playbook: String,
    pub nominal_ms: i64,
    /// `run` or `missed`.
    pub outcome: String,
    pub reason: Option<String>,
    pub run_id: Option<String>,
    pub owner: String,
    pub at_ms: i64,
}

/// One mutating call of the daemon's API: who, what, when, how it ended, and what it ran
/// (the playbook's name and SHA-256 for a run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Audit {
    pub at_ms: i64,
    pub subject: String,
    pub role: String,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub detail: Option<String>,
}

/// The halt in force: why, by whom, since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Halt {
    pub reason: String,
    pub by: String,
    pub since_ms: i64,
}

impl Store {
    /// When the daemons first saw this playbook's schedule; recorded now if never.
    pub async fn schedule_since(&self, playbook: &str, now_ms: i64) -> Result<i64, StoreError> {
        sqlx::query(
            "INSERT INTO drill_schedules (playbook, since_ms) VALUES ($1, $2) ON CONFLICT (playbook) DO NOTHING",
        )
        .bind(playbook)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(self.err("cannot record the schedule"))?;
        let row = sqlx::query("SELECT since_ms FROM drill_schedules WHERE playbook = $1")
            .bind(playbook)
            .fetch_one(&self.pool)
            .await
            .map_err(self.err("cannot read the schedule"))?;
        row.try_get("since_ms")
            .map_err(self.err("cannot read the schedule"))
    }

    /// The latest nominal time recorded for the playbook, run or missed.
    pub async fn last_fire(&self, playbook: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT MAX(nominal_ms) AS m FROM drill_fires WHERE playbook = $1")
            .bind(playbook)
            .fetch_one(&self.pool)
            .await
            .map_err(self.err("cannot read the fires"))?;
        row.try_get::<Option<i64>, _>("m")
            .map_err(self.err("cannot read the fires"))
    }

    /// Claims a nominal time for a run. False when it was already recorded (by this or
    /// another daemon): then nothing is started.
    pub async fn claim_fire(
        &self,
        playbook: &str,
        nominal_ms: i64,
        owner: &str,
    ) -> Result<bool, StoreError> {
        self.insert_fire(playbook, nominal_ms, "run", None, owner)
            .await
    }

    /// Records nominal times as missed, with the reason; times already recorded stay as they
    /// are. Returns how many were recorded.
    pub async fn missed(
        &self,
        playbook: &str,
        nominal_ms: &[i64],
        reason: MissReason,
        owner: &str,
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("cannot record missed fires"))?;
        for t in nominal_ms {
            let done = sqlx::query(
                "INSERT INTO drill_fires (playbook, nominal_ms, outcome, reason, owner, at_ms)
                 VALUES ($1, $2, 'missed', $3, $4, $5) ON CONFLICT (playbook, nominal_ms) DO NOTHING",
            )
            .bind(playbook)
            .bind(*t)
            .bind(reason.as_str())
            .bind(owner)
            .bind(crate::store::now_ms())
            .execute(&mut *tx)
            .await
            .map_err(self.err("cannot record a missed fire"))?;
            n += done.rows_affected();
        }
        tx.commit()
            .await
            .map_err(self.err("cannot record missed fires"))?;
        Ok(n)
    }

    async fn insert_fire(
        &self,
        playbook: &str,
        nominal_ms: i64,
        outcome: &str,
        reason: Option<&str>,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO drill_fires (playbook, nominal_ms, outcome, reason, owner, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (playbook, nominal_ms) DO NOTHING",
        )
        .bind(playbook)
        .bind(nominal_ms)
        .bind(outcome)
        .bind(reason)
        .bind(owner)
        .bind(crate::store::now_ms())
        .execute(&self.pool)
        .await
        .map_err(self.err("cannot record a fire"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Names the run a claimed nominal time started.
    pub async fn fire_run(
        &self,
        playbook: &str,
        nominal_ms: i64,
        run_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE drill_fires SET run_id = $1 WHERE playbook = $2 AND nominal_ms = $3")
            .bind(run_id)
            .bind(playbook)
            .bind(nominal_ms)
            .execute(&self.pool)
            .await
            .map_err(self.err("cannot record the fire's run"))?;
        Ok(())
    }

    /// The newest fires, runs and missed, of one playbook or all.
    pub async fn fires(&self, playbook: Option<&str>, limit: i64) -> Result<Vec<Fire>, StoreError> {
        const COLUMNS: &str =
            "SELECT playbook, nominal_ms, outcome, reason, run_id, owner, at_ms FROM drill_fires";
        let rows = match playbook {
            Some(p) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{COLUMNS} WHERE playbook = $1 ORDER BY nominal_ms DESC LIMIT $2"
                )))
                .bind(p)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{COLUMNS} ORDER BY nominal_ms DESC, playbook LIMIT $1"
                )))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(self.err("cannot list the fires"))?;
        rows.iter()
            .map(|r| {
                Ok(Fire {
                    playbook: r.try_get("playbook")?,
                    nominal_ms: r.try_get("nominal_ms")?,
                    outcome: r.try_get("outcome")?,
                    reason: r.try_get("reason")?,
                    run_id: r.try_get("run_id")?,
                    owner: r.try_get("owner")?,
                    at_ms: r.try_get("at_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(self.err("cannot read a fire"))
    }

    /// The runs of a playbook that are still going: status `running` with a lease that has
    /// not expired on the store's clock (whoever owns them).
    pub async fn running(&self, playbook: &str) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(self.run_select("WHERE playbook = $1 AND status = 'running'"))
            .bind(playbook)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("cannot list running runs"))?;
        let runs: Vec<RunRow> = rows
            .iter()
            .map(run_row)
            .collect::<Result<_, _>>()
            .map_err(self.err("cannot read a run"))?;
        Ok(runs.into_iter().filter(|r| !r.expired()).collect())
    }

    /// Halts every daemon on this store. Idempotent: a halt in force stays as it was (its
    /// first reason and time). Returns the halt in force.
    pub async fn halt(&self, reason: &str, by: &str) -> Result<Halt, StoreError> {
        sqlx::query(
            "INSERT INTO drill_halt (id, reason, by_whom, since_ms) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(reason)
        .bind(by)
        .bind(crate::store::now_ms())
        .execute(&self.pool)
        .await
        .map_err(self.err("cannot record the halt"))?;
        self.halted()
            .await?
            .ok_or_else(|| self.err("cannot read the halt")(sqlx::Error::RowNotFound))
    }

    /// Lifts the halt. Returns the halt that was in force, if any.
    pub async fn resume(&self) -> Result<Option<Halt>, StoreError> {
        let was = self.halted().await?;
        sqlx::query("DELETE FROM drill_halt WHERE id = 1")
            .execute(&self.pool)
            .await
            .map_err(self.err("cannot lift the halt"))?;
        Ok(was)
    }

    /// Asks a run to abort, whichever process owns it: its heartbeat reads the request (at
    /// every renewal, a third of its lease) and aborts, which reverts its faults. `false`
    /// when the run is not running (unknown, or over): nothing is recorded then.
    pub async fn request_abort(
        &self,
        run_id: &str,
        reason: &str,
        by: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO drill_abort_requests (run_id, reason, by_whom, at_ms)
             SELECT id, $2, $3, $4 FROM drill_runs WHERE id = $1 AND status = 'running'
             ON CONFLICT (run_id) DO NOTHING",
        )
        .bind(run_id)
        .bind(reason)
        .bind(by)
        .bind(crate::store::now_ms())
        .execute(&self.pool)
        .await
        .map_err(self.err("cannot record the abort request"))?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        // Already asked, or not running.
        let row = sqlx::query(
            "SELECT count(*) AS n FROM drill_abort_requests a JOIN drill_runs r ON r.id = a.run_id
             WHERE a.run_id = $1 AND r.status = 'running'",
        )
        .bind(run_id)
        .fetch_one(&self.pool)
        .await
        .map_err(self.err("cannot read the abort requests"))?;
        Ok(row
            .try_get::<i64, _>("n")
            .map_err(self.err("cannot read the abort requests"))?
            > 0)
    }

    /// Why a run was asked to abort, if it was: "REASON (asked by WHO)".
    pub async fn abort_requested(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT reason, by_whom FROM drill_abort_requests WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("cannot read the abort requests"))?;
        row.map(|r| {
            let reason: String = r.try_get("reason")?;
            let by: String = r.try_get("by_whom")?;
            Ok(format!("{reason} (asked by {by})"))
        })
        .transpose()
        .map_err(self.err("cannot read the abort requests"))
    }

    /// The halt in force, if any.
    pub async fn halted(&self) -> Result<Option<Halt>, StoreError> {
        let row = sqlx::query("SELECT reason, by_whom, since_ms FROM drill_halt WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("cannot read the halt"))?;
        row.map(|r| {
            Ok(Halt {
                reason: r.try_get("reason")?,
                by: r.try_get("by_whom")?,
                since_ms: r.try_get("since_ms")?,
            })
        })
        .transpose()
        .map_err(self.err("cannot read the halt"))
    }

    /// Records a call of the API.
    pub async fn audit(&self, a: &Audit) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO drill_audit (at_ms, subject, role, method, path, status, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(a.at_ms)
        .bind(&a.subject)
        .bind(&a.role)
        .bind(&a.method)
        .bind(&a.path)
        .bind(a.status)
        .bind(&a.detail)
        .execute(&self.pool)
        .await
        .map_err(self.err("cannot record the audit"))?;
        Ok(())
    }

    /// The newest audit records.
    pub async fn audits(&self, limit: i64) -> Result<Vec<Audit>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, subject, role, method, path, status, detail FROM drill_audit ORDER BY at_ms DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("cannot list the audit"))?;
        rows.iter()
            .map(|r| {
                Ok(Audit {
                    at_ms: r.try_get("at_ms")?,
                    subject: r.try_get("subject")?,
                    role: r.try_get("role")?,
                    method: r.try_get("method")?,
                    path: r.try_get("path")?,
                    status: r.try_get("status")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(self.err("cannot read the audit"))
    }
}
