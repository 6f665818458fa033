//! The shards' rows in the store: the plan they share (with the stop they obey) and the
//! reports they write, every half second, until their last.

use sqlx::Row;

use crate::store::{Store, StoreError, now_ms};

/// One report of one shard.
#[derive(Debug, Clone)]
pub struct ReportRow {
    pub shard: u32,
    pub seq: i64,
    pub done: bool,
    pub error: Option<String>,
    pub body: String,
}

/// What a shard must do next, read in one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    Go,
    /// Stop sending: why.
    Stop(String),
}

impl Store {
    /// Writes the plan the run's shards share (before any of them starts).
    pub async fn put_shard_plan(
        &self,
        run_id: &str,
        shards: u32,
        plan: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO drill_shard_plans (run_id, shards, plan, stop_reason, created_ms) VALUES ($1, $2, $3, NULL, $4)",
        )
        .bind(run_id)
        .bind(i64::from(shards))
        .bind(plan)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(self.err("cannot write the shards' plan"))?;
        Ok(())
    }

    /// The plan of a run's shards, if written.
    pub async fn shard_plan(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT plan FROM drill_shard_plans WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("cannot read the shards' plan"))?;
        row.map(|r| r.try_get::<String, _>("plan"))
            .transpose()
            .map_err(self.err("cannot read the shards' plan"))
    }

    /// Tells every shard of the run to stop (the first reason stays).
    pub async fn stop_shards(&self, run_id: &str, reason: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE drill_shard_plans SET stop_reason = $2 WHERE run_id = $1 AND stop_reason IS NULL",
        )
        .bind(run_id)
        .bind(reason)
        .execute(&self.pool)
        .await
        .map_err(self.err("cannot stop the shards"))?;
        Ok(())
    }

    /// Whether a shard may go on: not when told to stop, nor when the run is no longer
    /// running or its lease has run out on the store's clock (its engine is gone).
    pub async fn shard_signal(&self, run_id: &str) -> Result<Signal, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT p.stop_reason, r.status, {} - r.heartbeat_ms AS age_ms, r.lease_ms
             FROM drill_shard_plans p JOIN drill_runs r ON r.id = p.run_id WHERE p.run_id = $1",
            self.now_sql()
        )))
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err("cannot read the shards' stop"))?;
        let Some(row) = row else {
            return Ok(Signal::Stop(format!("run {run_id} has no shard plan")));
        };
        let read = |e| self.err("cannot read the shards' stop")(e);
        let reason: Option<String> = row.try_get("stop_reason").map_err(read)?;
        let status: String = row.try_get("status").map_err(read)?;
        let age: i64 = row.try_get("age_ms").map_err(read)?;
        let lease: i64 = row.try_get("lease_ms").map_err(read)?;
        Ok(if let Some(r) = reason {
            Signal::Stop(r)
        } else if status != "running" {
            Signal::Stop(format!("the run is {status}"))
        } else if age > lease {
            Signal::Stop(format!(
                "the run's lease ran out {:.1}s ago (its engine is gone)",
                (age - lease) as f64 / 1000.0
            ))
        } else {
            Signal::Go
        })
    }

    /// Writes one report of a shard. Writing the same `seq` again changes nothing: a shard
    /// retries a report whose answer it did not get, which the store may have kept.
    pub async fn put_shard_report(
        &self,
        run_id: &str,
        shard: u32,
        seq: i64,
        done: bool,
        error: Option<&str>,
        body: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO drill_shard_reports (run_id, shard, seq, at_ms, done, error, body) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (run_id, shard, seq) DO NOTHING",
        )
        .bind(run_id)
        .bind(i64::from(shard))
        .bind(seq)
        .bind(now_ms())
        .bind(i64::from(done))
        .bind(error)
        .bind(body)
        .execute(&self.pool)
        .await
        .map_err(self.err("cannot write a shard's report"))?;
        Ok(())
    }

    /// The reports with `seq` above `after`, in order (the caller skips those it has).
    pub async fn shard_reports(
        &self,
        run_id: &str,
        after: i64,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT shard, seq, done, error, body FROM drill_shard_reports
             WHERE run_id = $1 AND seq > $2 ORDER BY seq, shard",
        )
        .bind(run_id)
        .bind(after)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("cannot read the shards' reports"))?;
        rows.iter()
            .map(|r| {
                Ok(ReportRow {
                    shard: u32::try_from(r.try_get::<i64, _>("shard")?).unwrap_or(u32::MAX),
                    seq: r.try_get("seq")?,
                    done: r.try_get::<i64, _>("done")? != 0,
                    error: r.try_get("error")?,
                    body: r.try_get("body")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(self.err("cannot read the shards' reports"))
    }

    /// Forgets a finished run's reports (its measurements are in its report now).
    pub async fn drop_shard_reports(&self, run_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM drill_shard_reports WHERE run_id = $1")
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(self.err("cannot delete the shards' reports"))?;
        Ok(())
    }
}
