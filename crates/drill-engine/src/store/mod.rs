//! The history store and write-ahead fault ledger, through sqlx: a SQLite file by default,
//! PostgreSQL for a `postgres://` URL. One schema and one set of statements serve both (sqlx's
//! `Any` driver; `$N` placeholders work in both), with the migrations embedded
//! (`migrations.rs`). This file holds the runs, their leases and the target locks;
//! `ledger.rs` the fault ledger. The daemon's tables (`drill_fires`, `drill_schedules`,
//! `drill_halt`, `drill_audit`, migration 3; `drill_abort_requests`, migration 4) are
//! migrated here and read and written by `fires.rs`; the load shards' (`drill_shard_plans`,
//! `drill_shard_reports`, migration 5) by `shards/`.
//!
//! Tables: `drill_runs` (one row per run: status, owner and lease heartbeat, reports),
//! `drill_faults` (the ledger: one row per injected fault, written as an *intent* with its
//! revert record before the mutation, then `applied`, then `reverted` / `permanent` — or
//! `revert_failed` with the error and the attempt count), `drill_fault_steps` (the steps of a
//! composite fault, each an intent then done), `drill_calls` (every other mutating call: setup
//! and teardown steps, actions), `drill_locks` (which run holds which target).
//!
//! **Fencing.** A run is owned through a [`Lease`]: its owner and an epoch that grows by one on
//! every takeover ([`Store::claim`]). Every write that records a mutation first renews the
//! lease *in the same transaction* with `UPDATE … WHERE id AND owner AND epoch`; 0 rows means
//! the run was taken over, the write does not happen, and the caller gets
//! [`FenceError::Lost`] — and must make no further mutating call. Lease expiry is judged on
//! the store's own clock (`clock_timestamp()` in PostgreSQL, `julianday('now')` in SQLite),
//! never on a process's, so hosts with skewed clocks agree on it.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row, SqlSafeStr};

use crate::owner::Owner;

mod ledger;
mod migrations;

pub use ledger::{FaultRow, FaultState};
use migrations::MIGRATIONS;

/// A store error, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("history store ({url}): {what}")]
pub struct StoreError {
    url: String,
    what: &'static str,
    #[source]
    source: sqlx::Error,
}

/// Where the history lives when neither `--db` nor `DATABASE_URL` says: the user's data
/// directory (`$XDG_DATA_HOME/drill/history.db`, else `~/.local/share/drill/history.db`).
pub fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("drill").join("history.db")
}

/// One run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunRow {
    pub id: String,
    pub playbook: String,
    pub file: String,
    pub status: String,
    pub reason: Option<String>,
    pub owner: String,
    pub heartbeat_ms: i64,
    pub lease_ms: i64,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub time_scale: f64,
    /// The fencing epoch: 0 for the run's own process, one more on every takeover.
    pub epoch: i64,
    /// How long ago the lease was last renewed, on the store's clock (when read).
    pub age_ms: i64,
}

impl RunRow {
    /// Whether a live process still owns this run: it is running and its lease, renewed
    /// `age_ms` ago on the store's clock, has not expired. Whatever its pid says: a stopped
    /// process is alive and useless. The pid may only shorten the wait: an owner on this host
    /// whose process is gone needs no waiting for.
    pub fn live(&self) -> bool {
        self.status == "running"
            && self.age_ms <= self.lease_ms
            && Owner::parse(&self.owner).and_then(|o| o.alive()) != Some(false)
    }

    /// Whether the lease has run out (as opposed to the owner's process being gone).
    pub fn expired(&self) -> bool {
        self.age_ms > self.lease_ms
    }
}

/// The right to mutate on behalf of a run: held by its owner at one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub run_id: String,
    pub owner: String,
    pub epoch: i64,
    /// How long it lasts without a renewal.
    pub ttl_ms: i64,
}

impl Lease {
    /// How long a confirmation of this lease (a fenced write that went through, timed from
    /// before it was sent) may be relied on without the store: 90% of its length, a margin
    /// for clock rates and the write's own latency.
    pub fn trust(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(self.ttl_ms).unwrap_or(0) * 9 / 10)
    }
}

/// The run was taken over: who holds it now.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "run {run_id} is no longer ours: {owner} took it over (epoch {epoch}, now {status}); this process makes no further change"
)]
pub struct LostLease {
    pub run_id: String,
    pub owner: String,
    pub epoch: i64,
    pub status: String,
}

/// A fenced write failed.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    #[error(transparent)]
    Lost(LostLease),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A target held by another run.
#[derive(Debug, Clone)]
pub struct Held {
    pub target: String,
    pub run: RunRow,
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    url: String,
    /// The URL as given, password included: what a load shard this run starts connects to.
    given: String,
    sqlite: bool,
    /// Seals the revert records of the ledger ([`crate::seal`]).
    pub(crate) key: std::sync::Arc<crate::seal::LazyKey>,
}

/// The current time, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Opens (creating if needed) and migrates the store at `url`: `postgres://…`,
    /// `sqlite://PATH`, or a plain file path (SQLite).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let shown = redact(url);
        let err = |what: &'static str| {
            let url = shown.clone();
            move |source| StoreError { url, what, source }
        };
        let mut sqlite_file = None;
        let (conn_url, sqlite) =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                (url.to_owned(), false)
            } else {
                let path = url.strip_prefix("sqlite://").unwrap_or(url);
                if let Some(dir) = Path::new(path)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    use std::os::unix::fs::DirBuilderExt as _;
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)
                        .map_err(|e| err("cannot create its directory")(sqlx::Error::Io(e)))?;
                }
                match private_sqlite(path) {
                    Ok(Some(narrowed)) => tracing::warn!(
                        files = %narrowed,
                        "the store's files were readable by others; made them 0600"
                    ),
                    Ok(None) => {}
                    Err(e) => return Err(err("cannot make it private (0600)")(sqlx::Error::Io(e))),
                }
                sqlite_file = Some(PathBuf::from(path.split('?').next().unwrap_or(path)));
                (format!("sqlite://{path}?mode=rwc"), true)
            };
        let key = crate::seal::LazyKey::new(
            sqlite_file,
            default_path()
                .parent()
                .map_or_else(|| PathBuf::from("ledger.key"), |d| d.join("ledger.key")),
        );
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 2 } else { 4 })
            .acquire_timeout(Duration::from_secs(15))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if !sqlite {
                        // A process frozen inside one of its (two-statement) transactions
                        // must not hold the run's row locked for ever: the server ends such
                        // a transaction, and a fenced write waits for a lock at most 10 s.
                        sqlx::raw_sql(
                            "SET idle_in_transaction_session_timeout = '5s'; SET lock_timeout = '10s'",
                        )
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&conn_url)
            .await
            .map_err(err("cannot connect"))?;
        if sqlite {
            // WAL lets `drill recover` read while a run writes; the busy timeout (sqlx: 5 s)
            // covers the rest.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await
                .map_err(err("cannot enable WAL"))?;
        }
        let migrations = MIGRATIONS
            .iter()
            .map(|(v, d, sql)| {
                Migration::new(
                    *v,
                    Cow::Borrowed(*d),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&pool)
            .await
            .map_err(|e| err("cannot migrate")(sqlx::Error::Migrate(Box::new(e))))?;
        Ok(Store {
            pool,
            url: shown,
            given: url.to_owned(),
            sqlite,
            key: std::sync::Arc::new(key),
        })
    }

    /// The URL, with any password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL as given (with its password), for the load shards a run starts.
    pub(crate) fn given_url(&self) -> &str {
        &self.given
    }

    /// Whether this is a SQLite file (reachable from this host only).
    pub fn is_sqlite(&self) -> bool {
        self.sqlite
    }

    pub(crate) fn err(&self, what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        move |source| StoreError {
            url: self.url.clone(),
            what,
            source,
        }
    }

    /// The store's clock, in milliseconds since the epoch, as SQL.
    pub(crate) fn now_sql(&self) -> &'static str {
        if self.sqlite {
            "CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)"
        } else {
            "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
        }
    }

    pub(crate) fn run_select(&self, rest: &str) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS}, {} - heartbeat_ms AS age_ms FROM drill_runs {rest}",
            self.now_sql()
        ))
    }

    /// Records a new run, owned by this process at epoch 0, its lease starting now on the
    /// store's clock.
    pub async fn create_run(&self, r: &RunRow) -> Result<Lease, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO drill_runs (id, playbook, file, status, reason, owner, heartbeat_ms, lease_ms, started_ms, time_scale, epoch)
             VALUES ($1, $2, $3, $4, $5, $6, {}, $7, $8, $9, 0)",
            self.now_sql()
        )))
        .bind(&r.id)
        .bind(&r.playbook)
        .bind(&r.file)
        .bind(&r.status)
        .bind(&r.reason)
        .bind(&r.owner)
        .bind(r.lease_ms)
        .bind(r.started_ms)
        .bind(r.time_scale)
        .execute(&self.pool)
        .await
        .map_err(self.err("cannot record the run"))?;
        Ok(Lease {
            run_id: r.id.clone(),
            owner: r.owner.clone(),
            epoch: 0,
            ttl_ms: r.lease_ms,
        })
    }

    /// Renews a run's lease, only where this owner still holds it at this epoch (the fence).
    async fn fence(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        lease: &Lease,
    ) -> Result<(), FenceError> {
        let n = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE drill_runs SET heartbeat_ms = {} WHERE id = $1 AND owner = $2 AND epoch = $3",
            self.now_sql()
        )))
        .bind(&lease.run_id)
        .bind(&lease.owner)
        .bind(lease.epoch)
        .execute(&mut **tx)
        .await
        .map_err(self.err("cannot renew the lease"))?
        .rows_affected();
        if n == 1 {
            return Ok(());
        }
        let now = sqlx::query("SELECT owner, epoch, status FROM drill_runs WHERE id = $1")
            .bind(&lease.run_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(self.err("cannot read the run"))?;
        let get = |c: &str| -> String {
            now.as_ref()
                .and_then(|r| r.try_get::<String, _>(c).ok())
                .unwrap_or_else(|| "nobody".into())
        };
        Err(FenceError::Lost(LostLease {
            run_id: lease.run_id.clone(),
            owner: get("owner"),
            epoch: now
                .as_ref()
                .and_then(|r| r.try_get::<i64, _>("epoch").ok())
                .unwrap_or(-1),
            status: get("status"),
        }))
    }

    /// A transaction whose first statement renewed the lease (the fence): what follows in it
    /// is committed only while the lease holds.
    async fn begin_fenced(
        &self,
        lease: &Lease,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, FenceError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("cannot start a transaction"))?;
        self.fence(&mut tx, lease).await?;
        Ok(tx)
    }

    /// Runs `write` in one transaction after the fence: it happens only if the lease holds.
    async fn fenced<'q>(
        &self,
        lease: &Lease,
        what: &'static str,
        write: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<u64, FenceError> {
        let mut tx = self.begin_fenced(lease).await?;
        let n = write
            .execute(&mut *tx)
            .await
            .map_err(self.err(what))?
            .rows_affected();
        tx.commit().await.map_err(self.err(what))?;
        Ok(n)
    }

    /// Renews a run's lease; [`FenceError::Lost`] when another owner took it over.
    pub async fn renew(&self, lease: &Lease) -> Result<(), FenceError> {
        let tx = self.begin_fenced(lease).await?;
        tx.commit()
            .await
            .map_err(self.err("cannot renew the lease"))?;
        Ok(())
    }

    /// Takes over a run whose owner is gone: its lease expired on the store's clock, or
    /// `owner_gone` (its process is known dead on this host), or it is no longer running but
    /// left faults. Bumps the epoch, so every fenced write of the old owner fails from now on.
    /// `None` when it is not claimable (any more): it renewed, or someone else claimed it.
    pub async fn claim(
        &self,
        run: &RunRow,
        me: &str,
        owner_gone: bool,
    ) -> Result<Option<Lease>, StoreError> {
        let n = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE drill_runs SET owner = $1, epoch = epoch + 1, heartbeat_ms = {now}
             WHERE id = $2 AND epoch = $3
               AND (status <> 'running' OR {now} - heartbeat_ms > lease_ms OR $4 = 1)",
            now = self.now_sql()
        )))
        .bind(me)
        .bind(&run.id)
        .bind(run.epoch)
        .bind(i64::from(owner_gone))
        .execute(&self.pool)
        .await
        .map_err(self.err("cannot take over the run"))?
        .rows_affected();
        Ok((n == 1).then(|| Lease {
            run_id: run.id.clone(),
            owner: me.to_owned(),
            epoch: run.epoch + 1,
            ttl_ms: run.lease_ms,
        }))
    }

    /// Ends a run with its status and reason.
    pub async fn finish_run(
        &self,
        lease: &Lease,
        status: &str,
        reason: Option<&str>,
    ) -> Result<(), FenceError> {
        self.fenced(
            lease,
            "cannot finish the run",
            sqlx::query(
                "UPDATE drill_runs SET status = $1, reason = $2, finished_ms = $3 WHERE id = $4",
            )
            .bind(status)
            .bind(reason)
            .bind(now_ms())
            .bind(&lease.run_id),
        )
        .await?;
        Ok(())
    }

    /// Stores a run's reports.
    pub async fn save_reports(
        &self,
        lease: &Lease,
        json: &str,
        markdown: &str,
        junit: &str,
    ) -> Result<(), FenceError> {
        self.fenced(
            lease,
            "cannot store the reports",
            sqlx::query(
                "UPDATE drill_runs SET report = $1, markdown = $2, junit = $3 WHERE id = $4",
            )
            .bind(json)
            .bind(markdown)
            .bind(junit)
            .bind(&lease.run_id),
        )
        .await?;
        Ok(())
    }

    /// The most recent runs, newest first.
    pub async fn runs(&self, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        self.list_runs(None, limit).await
    }

    /// The most recent runs of one playbook, newest first.
    pub async fn runs_of(&self, playbook: &str, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        self.list_runs(Some(playbook), limit).await
    }

    async fn list_runs(
        &self,
        playbook: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RunRow>, StoreError> {
        let query = match playbook {
            Some(p) => sqlx::query(
                self.run_select("WHERE playbook = $1 ORDER BY started_ms DESC, id DESC LIMIT $2"),
            )
            .bind(p.to_owned()),
            None => sqlx::query(self.run_select("ORDER BY started_ms DESC, id DESC LIMIT $1")),
        };
        let rows = query
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("cannot list runs"))?;
        rows.iter()
            .map(|r| run_row(r).map_err(self.err("cannot read a run")))
            .collect()
    }

    /// The newest passed run of `run`'s playbook that started before it: the baseline of
    /// `--baseline last-pass`.
    pub async fn last_pass_before(&self, run: &RunRow) -> Result<Option<RunRow>, StoreError> {
        Ok(self
            .runs_of(&run.playbook, 500)
            .await?
            .into_iter()
            .find(|r| r.id != run.id && r.status == "passed" && r.started_ms <= run.started_ms))
    }

    /// One run; a unique prefix of its id is enough.
    pub async fn run(&self, id: &str) -> Result<Option<RunRow>, StoreError> {
        // Run ids are letters, digits and dashes; a prefix of at least 4 of them finds a run
        // too. Anything else (`%`, `_`, a 50,000-character id) is no run, without a query.
        if !is_run_id(id) {
            return Ok(None);
        }
        let prefix = if id.len() >= 4 {
            format!("{id}%")
        } else {
            id.to_owned()
        };
        let rows = sqlx::query(self.run_select("WHERE id = $1 OR id LIKE $2 ORDER BY id LIMIT 2"))
            .bind(id)
            .bind(prefix)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("cannot read the run"))?;
        match rows.as_slice() {
            [one] => Ok(Some(run_row(one).map_err(self.err("cannot read the run"))?)),
            [a, _] if a.try_get::<String, _>("id").ok().as_deref() == Some(id) => {
                Ok(Some(run_row(a).map_err(self.err("cannot read the run"))?))
            }
            _ => Ok(None),
        }
    }

    /// A stored report of a run: `json`, `markdown` or `junit`.
    pub async fn report(&self, run: &str, format: &str) -> Result<Option<String>, StoreError> {
        let col = match format {
            "markdown" | "md" => "markdown",
            "junit" => "junit",
            _ => "report",
        };
        let sql = format!("SELECT {col} AS r FROM drill_runs WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("cannot read the report"))?;
        Ok(row.and_then(|r| r.try_get::<Option<String>, _>("r").ok().flatten()))
    }

    /// Runs that need recovering: marked running with no live owner (see [`RunRow::live`]),
    /// or finished with faults still outstanding; oldest first.
    pub async fn recoverable(&self) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(self.run_select(
            "WHERE status = 'running' OR id IN (SELECT run_id FROM drill_faults WHERE state IN ('intent', 'applied', 'revert_failed')) ORDER BY started_ms",
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("cannot list runs"))?;
        let mut out = Vec::new();
        for r in &rows {
            let run = run_row(r).map_err(self.err("cannot read a run"))?;
            if !run.live() {
                out.push(run);
            }
        }
        Ok(out)
    }

    /// Takes every target for `run`, or names the first one another run holds. A lock whose
    /// holder is finished with nothing left changed is stale and taken over.
    pub async fn lock(&self, run: &str, targets: &[String]) -> Result<Option<Held>, StoreError> {
        let mut taken = Vec::new();
        for t in targets {
            loop {
                let inserted = sqlx::query(
                    "INSERT INTO drill_locks (target, run_id, since_ms) VALUES ($1, $2, $3) ON CONFLICT (target) DO NOTHING",
                )
                .bind(t)
                .bind(run)
                .bind(now_ms())
                .execute(&self.pool)
                .await
                .map_err(self.err("cannot take a target lock"))?
                .rows_affected();
                if inserted == 1 {
                    taken.push(t.clone());
                    break;
                }
                let holder: Option<String> =
                    sqlx::query("SELECT run_id FROM drill_locks WHERE target = $1")
                        .bind(t)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(self.err("cannot read a target lock"))?
                        .and_then(|r| r.try_get("run_id").ok());
                let Some(holder) = holder else { continue };
                if holder == run {
                    break;
                }
                let holder_run = self.run(&holder).await?;
                let still_changed = self
                    .faults(&holder)
                    .await?
                    .iter()
                    .any(|f| f.state.outstanding());
                match holder_run {
                    Some(h) if h.live() || still_changed => {
                        self.unlock_targets(run, &taken).await?;
                        return Ok(Some(Held {
                            target: t.clone(),
                            run: h,
                        }));
                    }
                    _ => {
                        sqlx::query("DELETE FROM drill_locks WHERE target = $1 AND run_id = $2")
                            .bind(t)
                            .bind(&holder)
                            .execute(&self.pool)
                            .await
                            .map_err(self.err("cannot clear a stale lock"))?;
                    }
                }
            }
        }
        Ok(None)
    }

    async fn unlock_targets(&self, run: &str, targets: &[String]) -> Result<(), StoreError> {
        for t in targets {
            sqlx::query("DELETE FROM drill_locks WHERE target = $1 AND run_id = $2")
                .bind(t)
                .bind(run)
                .execute(&self.pool)
                .await
                .map_err(self.err("cannot release a lock"))?;
        }
        Ok(())
    }

    /// Releases every lock a run holds.
    pub async fn unlock(&self, lease: &Lease) -> Result<(), FenceError> {
        self.fenced(
            lease,
            "cannot release the locks",
            sqlx::query("DELETE FROM drill_locks WHERE run_id = $1").bind(&lease.run_id),
        )
        .await?;
        Ok(())
    }

    /// Which run holds a target, if any (read-only; for dry runs).
    pub async fn holder(&self, target: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query("SELECT run_id FROM drill_locks WHERE target = $1")
                .bind(target)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.err("cannot read a target lock"))?
                .and_then(|r| r.try_get("run_id").ok()),
        )
    }
}

const RUN_COLUMNS: &str = "id, playbook, file, status, reason, owner, heartbeat_ms, lease_ms, started_ms, finished_ms, time_scale, epoch";

pub(crate) fn run_row(r: &AnyRow) -> Result<RunRow, sqlx::Error> {
    Ok(RunRow {
        id: r.try_get("id")?,
        playbook: r.try_get("playbook")?,
        file: r.try_get("file")?,
        status: r.try_get("status")?,
        reason: r.try_get("reason")?,
        owner: r.try_get("owner")?,
        heartbeat_ms: r.try_get("heartbeat_ms")?,
        lease_ms: r.try_get("lease_ms")?,
        started_ms: r.try_get("started_ms")?,
        finished_ms: r.try_get("finished_ms")?,
        time_scale: r.try_get("time_scale")?,
        epoch: r.try_get("epoch")?,
        age_ms: r.try_get("age_ms")?,
    })
}

/// Hides the password in a URL.
/// Could this be a run id (or a prefix of one)? Letters, digits and dashes, 1 to 64.
pub fn is_run_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The URL without its password (or a secret query parameter): [`drill_spec::redact::url`].
fn redact(url: &str) -> String {
    drill_spec::redact::url(url)
}

/// Makes the SQLite file (and its `-wal`, `-shm`) readable by its owner only: the store holds
/// the ledger, reports and audit. A new file is created 0600 before SQLite opens it (SQLite
/// gives its `-wal` and `-shm` the database file's mode); an existing wider one is narrowed,
/// and the log says so.
fn private_sqlite(path: &str) -> std::io::Result<Option<String>> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    if path == ":memory:" || path.starts_with("file::memory") {
        return Ok(None);
    }
    let file = Path::new(path.split('?').next().unwrap_or(path));
    if !file.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(file)?;
        return Ok(None);
    }
    let mut narrowed = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", file.display()));
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
            narrowed.push(format!("{} ({:o} → 600)", p.display(), mode));
        }
    }
    Ok((!narrowed.is_empty()).then(|| narrowed.join(", ")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            super::redact("postgres://drill:secret@127.0.0.1:5433/x"),
            "postgres://drill:***@127.0.0.1:5433/x"
        );
        assert_eq!(super::redact("/tmp/h.db"), "/tmp/h.db");
    }
}
