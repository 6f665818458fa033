//! The write-ahead fault ledger (`drill_faults`, `drill_fault_steps`, `drill_calls`): a
//! fault's intent with its revert record before the mutation, its state after, the steps of
//! a composite fault, every other mutating call. Every write that records a mutation is
//! fenced by the run's lease (see the module above); reads are not.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{FenceError, Lease, RunRow, Store, StoreError, now_ms};

/// A text for the store, URL passwords and secret query parameters masked.
fn redact(s: &str) -> String {
    drill_spec::redact::text(s).into_owned()
}

/// A fault's place in the ledger: the report's type, stored by its name.
pub use drill_report::FaultState;

/// A stored state's name read back; an unknown name is the state that needs a person.
fn parse_state(s: &str) -> FaultState {
    match s {
        "intent" => FaultState::Intent,
        "applied" => FaultState::Applied,
        "reverted" => FaultState::Reverted,
        "permanent" => FaultState::Permanent,
        "not_applied" => FaultState::NotApplied,
        _ => FaultState::RevertFailed,
    }
}

/// One ledger row.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRow {
    pub id: String,
    pub run_id: String,
    pub seq: i64,
    pub drill: String,
    pub fault: String,
    pub backend: String,
    /// The revert record as stored: sealed JSON ([`Store::record`] opens it).
    pub record: String,
    pub changes: Vec<String>,
    pub manual_restore: String,
    pub state: FaultState,
    pub attempts: i64,
    pub error: Option<String>,
    pub intent_ms: i64,
    pub applied_ms: Option<i64>,
    pub reverted_ms: Option<i64>,
}

impl Store {
    /// Writes a fault's intent — with the record that reverts it — before the mutation.
    pub async fn fault_intent(&self, lease: &Lease, f: &FaultRow) -> Result<(), FenceError> {
        // The record is sealed; the texts beside it are shown to anyone who reads the store
        // (reports, the API), so they go through the one redaction rule.
        let record = self.key.seal(&f.id, &f.record).map_err(|e| {
            FenceError::Store(self.err("cannot seal the revert record")(
                sqlx::Error::Configuration(Box::new(e)),
            ))
        })?;
        let changes: Vec<String> = f.changes.iter().map(|c| redact(c)).collect();
        let write = sqlx::query(
            "INSERT INTO drill_faults (id, run_id, seq, drill, fault, backend, record, changes, manual_restore, state, attempts, intent_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'intent', 0, $10)",
        )
        .bind(&f.id)
        .bind(&f.run_id)
        .bind(f.seq)
        .bind(&f.drill)
        .bind(&f.fault)
        .bind(&f.backend)
        .bind(record)
        .bind(serde_json::to_string(&changes).unwrap_or_default())
        .bind(redact(&f.manual_restore))
        .bind(f.intent_ms);
        self.fenced(lease, "cannot write the fault's intent", write)
            .await?;
        Ok(())
    }

    /// Moves a fault to `state`, stamping the matching time; `error` for failed reverts.
    pub async fn fault_state(
        &self,
        lease: &Lease,
        id: &str,
        state: FaultState,
        error: Option<&str>,
    ) -> Result<(), FenceError> {
        let now = now_ms();
        let st = state.as_str();
        let error = error.map(redact);
        let q = match state {
            FaultState::Applied => sqlx::query(
                "UPDATE drill_faults SET state = $1, applied_ms = $2, error = $3 WHERE id = $4",
            )
            .bind(st)
            .bind(now)
            .bind(error)
            .bind(id),
            FaultState::Reverted | FaultState::Permanent | FaultState::NotApplied => sqlx::query(
                "UPDATE drill_faults SET state = $1, reverted_ms = $2, error = $3 WHERE id = $4",
            )
            .bind(st)
            .bind(now)
            .bind(error)
            .bind(id),
            FaultState::RevertFailed => {
                sqlx::query("UPDATE drill_faults SET state = $1, error = $2 WHERE id = $3")
                    .bind(st)
                    .bind(error)
                    .bind(id)
            }
            FaultState::Intent => {
                sqlx::query("UPDATE drill_faults SET state = $1, error = $2 WHERE id = $3")
                    .bind(st)
                    .bind(error)
                    .bind(id)
            }
        };
        self.fenced(lease, "cannot update the ledger", q).await?;
        Ok(())
    }

    /// Counts a revert attempt of a fault that is still outstanding, fenced; `false` when the
    /// fault is settled already (someone else reverted it): leave it alone.
    pub async fn revert_attempt(&self, lease: &Lease, id: &str) -> Result<bool, FenceError> {
        let n = self
            .fenced(
                lease,
                "cannot update the ledger",
                sqlx::query(
                    "UPDATE drill_faults SET attempts = attempts + 1
                     WHERE id = $1 AND state IN ('intent', 'applied', 'revert_failed')",
                )
                .bind(id),
            )
            .await?;
        Ok(n == 1)
    }

    /// Records a step of a composite fault: `intent` before its mutation, `done` after.
    pub async fn fault_step(
        &self,
        lease: &Lease,
        fault: &str,
        step: &str,
        state: &str,
    ) -> Result<(), FenceError> {
        let q = if state == "intent" {
            sqlx::query(
                "INSERT INTO drill_fault_steps (fault_id, step, state, at_ms) VALUES ($1, $2, $3, $4)",
            )
            .bind(fault)
            .bind(step)
            .bind(state)
            .bind(now_ms())
        } else {
            sqlx::query(
                "UPDATE drill_fault_steps SET state = $3, at_ms = $4 WHERE fault_id = $1 AND step = $2",
            )
            .bind(fault)
            .bind(step)
            .bind(state)
            .bind(now_ms())
        };
        self.fenced(lease, "cannot record the fault's step", q)
            .await?;
        Ok(())
    }

    /// The steps of a fault that completed, in order.
    pub async fn steps_done(&self, fault: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT step FROM drill_fault_steps WHERE fault_id = $1 AND state = 'done' ORDER BY at_ms",
        )
        .bind(fault)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("cannot read the fault's steps"))?;
        rows.iter()
            .map(|r| {
                r.try_get("step")
                    .map_err(self.err("cannot read the fault's steps"))
            })
            .collect()
    }

    /// Records a mutating call that is not a fault (a setup or teardown step, an action),
    /// fenced: it may be made only if this returns `Ok`.
    pub async fn record_call(
        &self,
        lease: &Lease,
        kind: &str,
        label: &str,
    ) -> Result<(), FenceError> {
        let label = redact(label);
        self.fenced(
            lease,
            "cannot record the call",
            sqlx::query(
                "INSERT INTO drill_calls (run_id, epoch, at_ms, kind, label) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&lease.run_id)
            .bind(lease.epoch)
            .bind(now_ms())
            .bind(kind)
            .bind(label),
        )
        .await?;
        Ok(())
    }

    /// The calls recorded for a run: `(epoch, kind, label)`, in order.
    pub async fn calls(&self, run: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT epoch, kind, label FROM drill_calls WHERE run_id = $1 ORDER BY at_ms",
        )
        .bind(run)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("cannot read the calls"))?;
        rows.iter()
            .map(|r| Ok((r.try_get("epoch")?, r.try_get("kind")?, r.try_get("label")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(self.err("cannot read the calls"))
    }

    /// The ledger of one run, in order.
    pub async fn faults(&self, run: &str) -> Result<Vec<FaultRow>, StoreError> {
        let rows = sqlx::query(fault_select("WHERE run_id = $1 ORDER BY seq"))
            .bind(run)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("cannot read the ledger"))?;
        rows.iter()
            .map(|r| fault_row(r).map_err(self.err("cannot read the ledger")))
            .collect()
    }

    /// Every fault that may still be changed, with its run, oldest first.
    pub async fn outstanding(&self) -> Result<Vec<(FaultRow, RunRow)>, StoreError> {
        let rows = sqlx::query(fault_select(
            "WHERE state IN ('intent', 'applied', 'revert_failed') ORDER BY intent_ms, seq",
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("cannot read the ledger"))?;
        let mut out = Vec::new();
        for r in &rows {
            let f = fault_row(r).map_err(self.err("cannot read the ledger"))?;
            if let Some(run) = self.run(&f.run_id).await? {
                out.push((f, run));
            }
        }
        Ok(out)
    }
}

const FAULT_COLUMNS: &str = "id, run_id, seq, drill, fault, backend, record, changes, manual_restore, state, attempts, error, intent_ms, applied_ms, reverted_ms";

impl Store {
    /// A fault's revert record, opened (it is stored sealed, see [`crate::seal`]): what
    /// `drill recover` reverts from. Fails, touching nothing, when the record was sealed with
    /// another key than this process has.
    pub fn record(&self, f: &FaultRow) -> Result<String, crate::seal::SealError> {
        self.key.open(&f.id, &f.record)
    }
}

fn fault_select(rest: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("SELECT {FAULT_COLUMNS} FROM drill_faults {rest}"))
}

fn fault_row(r: &AnyRow) -> Result<FaultRow, sqlx::Error> {
    let changes: String = r.try_get("changes")?;
    let state: String = r.try_get("state")?;
    Ok(FaultRow {
        id: r.try_get("id")?,
        run_id: r.try_get("run_id")?,
        seq: r.try_get("seq")?,
        drill: r.try_get("drill")?,
        fault: r.try_get("fault")?,
        backend: r.try_get("backend")?,
        record: r.try_get("record")?,
        changes: serde_json::from_str(&changes).unwrap_or_default(),
        manual_restore: r.try_get("manual_restore")?,
        state: parse_state(&state),
        attempts: r.try_get("attempts")?,
        error: r.try_get("error")?,
        intent_ms: r.try_get("intent_ms")?,
        applied_ms: r.try_get("applied_ms")?,
        reverted_ms: r.try_get("reverted_ms")?,
    })
}
