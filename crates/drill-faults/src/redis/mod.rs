//! Redis: FLUSHALL / FLUSHDB, CLIENT PAUSE of writes (with its built-in timeout, undone early
//! by CLIENT UNPAUSE), CLIENT KILL by type, deleting keys by pattern without blocking the server (SCAN +
//! UNLINK in batches); enqueueing jobs in the formats of Laravel, RQ, Celery and Sidekiq, or
//! raw into a list, stream or sorted set (`jobs`); probes, pending jobs counted as each job
//! system counts them.
//!
//! Topology: a single Redis server, or a primary addressed directly. Cluster and Sentinel are
//! not supported yet: point
//! the URL at the node to act on. Redis 6.2+ is needed for CLIENT PAUSE WRITE/UNPAUSE.

use std::time::Duration;

use drill_spec::fault::RedisAction;
use drill_spec::model::{Allow, Enqueue, FlushScope, RedisProbe};
use drill_spec::probe::RedisReading;
use serde::{Deserialize, Serialize};

use crate::contract::{FaultError, Prepared, Reverted, allowed};
use conn::{connect, query};

mod conn;
mod jobs;

/// What a Redis fault does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    FlushAll,
    FlushDb,
    ClientPause { millis: u64 },
    ClientKill { client_type: String },
    DeleteKeys { pattern: String },
}

/// The endpoint and what it held before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub url: String,
    pub action: Action,
    /// DBSIZE before the fault.
    pub keys_before: u64,
    /// Keys per database before the fault (`INFO keyspace`: `db0` → count).
    #[serde(default)]
    pub keyspace_before: std::collections::BTreeMap<String, u64>,
    /// Job queues found in what the fault erases, with their lengths before it (lists under
    /// the well-known prefixes: Laravel's `queues:`, RQ's `rq:queue:`, Sidekiq's `queue:`,
    /// Celery's default `celery` list).
    #[serde(default)]
    pub queues_before: std::collections::BTreeMap<String, u64>,
}

/// Where job queues live in Redis, by the libraries that write them.
const QUEUE_PATTERNS: &[&str] = &["queues:*", "rq:queue:*", "queue:*", "celery"];

/// `db0: 6116 keys, db1: 3 keys`.
fn keyspace_words(k: &std::collections::BTreeMap<String, u64>) -> String {
    if k.is_empty() {
        return "no keys".into();
    }
    k.iter()
        .map(|(db, n)| format!("{db}: {n} keys"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `6000 queued jobs (queues:notifications: 6000)`, or nothing.
fn queue_words(q: &std::collections::BTreeMap<String, u64>) -> Option<String> {
    let total: u64 = q.values().sum();
    (total > 0).then(|| {
        let each: Vec<String> = q
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        format!("{total} queued jobs ({})", each.join(", "))
    })
}

impl Record {
    pub(crate) fn permanent(&self) -> Option<String> {
        match &self.action {
            Action::FlushAll => Some(format!(
                "flushed every database (before: {}){}",
                keyspace_words(&self.keyspace_before),
                queue_words(&self.queues_before)
                    .map(|q| format!(", erasing {q}"))
                    .unwrap_or_default()
            )),
            Action::FlushDb => Some(format!(
                "flushed the database ({} keys before){}",
                self.keys_before,
                queue_words(&self.queues_before)
                    .map(|q| format!(", erasing {q}"))
                    .unwrap_or_default()
            )),
            Action::DeleteKeys { pattern } => Some(format!("deleted the keys matching {pattern}")),
            Action::ClientKill { client_type } => Some(format!(
                "closed the {client_type} client connections; clients reconnect"
            )),
            Action::ClientPause { .. } => None,
        }
    }

    pub(crate) fn manual_restore(&self) -> String {
        match &self.action {
            Action::ClientPause { .. } => format!("redis-cli -u {} CLIENT UNPAUSE", self.url),
            Action::FlushAll
            | Action::FlushDb
            | Action::ClientKill { .. }
            | Action::DeleteKeys { .. } => "nothing to restore: this fault cannot be undone".into(),
        }
    }
}

pub(crate) async fn prepare(
    action: &RedisAction,
    url: &str,
    allow: &Allow,
    hold: Duration,
) -> Result<Prepared<Record>, FaultError> {
    allowed(drill_spec::allow::redis(allow, url))?;
    let action = match action {
        RedisAction::Flush(FlushScope::Db) => Action::FlushDb,
        RedisAction::Flush(FlushScope::All) => Action::FlushAll,
        RedisAction::ClientPause => Action::ClientPause {
            millis: u64::try_from(hold.as_millis()).unwrap_or(u64::MAX).max(1),
        },
        RedisAction::ClientKill { client_type } => Action::ClientKill {
            client_type: client_type.clone(),
        },
        RedisAction::DeleteKeys { pattern } => Action::DeleteKeys {
            pattern: pattern.clone(),
        },
    };
    let mut con = connect(url).await?;
    let keys_before: u64 = query(&mut con, &redis::cmd("DBSIZE")).await?;
    let keyspace_before = keyspace(&mut con).await?;
    let queues_before = match &action {
        Action::FlushAll | Action::FlushDb => queues(&mut con).await?,
        // Only a flush erases whole queues.
        Action::ClientPause { .. } | Action::ClientKill { .. } | Action::DeleteKeys { .. } => {
            Default::default()
        }
    };
    let erasing = queue_words(&queues_before)
        .map(|q| format!("; it also erases {q}"))
        .unwrap_or_default();
    let change = match &action {
        Action::FlushAll => format!(
            "FLUSHALL on {url} (now {}), for good{erasing}",
            keyspace_words(&keyspace_before)
        ),
        Action::FlushDb => format!("FLUSHDB on {url} ({keys_before} keys), for good{erasing}"),
        Action::ClientPause { millis } => format!(
            "CLIENT PAUSE {millis} WRITE on {url} (writes wait, reads go on), then CLIENT UNPAUSE"
        ),
        Action::ClientKill { client_type } => format!("CLIENT KILL TYPE {client_type} on {url}"),
        Action::DeleteKeys { pattern } => {
            format!("delete keys matching {pattern} on {url} (SCAN + UNLINK), for good")
        }
    };
    Ok(Prepared {
        record: Record {
            url: url.to_owned(),
            action,
            keys_before,
            keyspace_before,
            queues_before,
        },
        changes: vec![change],
    })
}

/// Keys per database (`INFO keyspace`: `db0:keys=6116,expires=0,avg_ttl=0`).
async fn keyspace(
    con: &mut redis::aio::MultiplexedConnection,
) -> Result<std::collections::BTreeMap<String, u64>, FaultError> {
    let info: String = query(con, redis::cmd("INFO").arg("keyspace")).await?;
    Ok(info
        .lines()
        .filter_map(|l| {
            let (db, rest) = l.trim().split_once(':')?;
            let keys = rest.split(',').find_map(|kv| kv.strip_prefix("keys="))?;
            Some((db.to_owned(), keys.parse().ok()?))
        })
        .collect())
}

/// The job queues in the selected database, with their lengths (at most 10,000 keys are
/// looked at, so a large cache is not walked whole).
async fn queues(
    con: &mut redis::aio::MultiplexedConnection,
) -> Result<std::collections::BTreeMap<String, u64>, FaultError> {
    let mut out = std::collections::BTreeMap::new();
    for pattern in QUEUE_PATTERNS {
        let mut cursor: u64 = 0;
        let mut seen = 0usize;
        loop {
            let (next, keys): (u64, Vec<String>) = query(
                con,
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(*pattern)
                    .arg("COUNT")
                    .arg(1000),
            )
            .await?;
            for k in keys {
                let kind: String = query(con, redis::cmd("TYPE").arg(&k)).await?;
                if kind == "list" {
                    let n: u64 = query(con, redis::cmd("LLEN").arg(&k)).await?;
                    out.insert(k, n);
                }
            }
            seen += 1000;
            if next == 0 || seen >= 10_000 {
                break;
            }
            cursor = next;
        }
    }
    Ok(out)
}

/// Deletes keys matching `pattern` in batches, so the server keeps serving. Returns how many.
pub async fn delete_keys(url: &str, pattern: &str) -> Result<u64, FaultError> {
    let mut con = connect(url).await?;
    let mut cursor: u64 = 0;
    let mut deleted = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = query(
            &mut con,
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(500),
        )
        .await?;
        if !keys.is_empty() {
            let n: u64 = query(&mut con, redis::cmd("UNLINK").arg(&keys)).await?;
            deleted += n;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

pub(crate) async fn apply(r: &Record) -> Result<(), FaultError> {
    let mut con = connect(&r.url).await?;
    match &r.action {
        Action::FlushAll => query::<()>(&mut con, &redis::cmd("FLUSHALL")).await,
        Action::FlushDb => query::<()>(&mut con, &redis::cmd("FLUSHDB")).await,
        // WRITE mode: reads go on, writes wait. It can be lifted early by CLIENT UNPAUSE
        // (ALL mode cannot: Redis holds the UNPAUSE too), and its timeout ends it anyway if
        // drill dies — the built-in revert.
        Action::ClientPause { millis } => {
            query::<()>(
                &mut con,
                redis::cmd("CLIENT").arg("PAUSE").arg(*millis).arg("WRITE"),
            )
            .await
        }
        Action::ClientKill { client_type } => query::<u64>(
            &mut con,
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg(client_type)
                .arg("SKIPME")
                .arg("yes"),
        )
        .await
        .map(|_| ()),
        Action::DeleteKeys { pattern } => delete_keys(&r.url, pattern).await.map(|_| ()),
    }
}

pub(crate) async fn revert(r: &Record) -> Result<Reverted, FaultError> {
    match &r.action {
        Action::ClientPause { .. } => {
            let mut con = connect(&r.url).await?;
            query::<()>(&mut con, redis::cmd("CLIENT").arg("UNPAUSE")).await?;
            Ok(Reverted::Restored(vec![format!(
                "CLIENT UNPAUSE on {}",
                r.url
            )]))
        }
        Action::FlushAll | Action::FlushDb => {
            // Said as measured: what it held before, and what it holds now.
            let mut con = connect(&r.url).await?;
            let now = keyspace(&mut con).await?;
            Ok(Reverted::Permanent(format!(
                "{}; now {}",
                r.permanent().unwrap_or_default(),
                keyspace_words(&now)
            )))
        }
        Action::ClientKill { .. } | Action::DeleteKeys { .. } => {
            Ok(Reverted::Permanent(r.permanent().unwrap_or_default()))
        }
    }
}

pub use jobs::LARAVEL_JOB;

/// Pushes `e.jobs` jobs into the queue in its format; returns the jobs pending in it
/// afterwards, counted as its library counts them.
pub async fn enqueue(e: &Enqueue, allow: &Allow) -> Result<u64, FaultError> {
    allowed(drill_spec::allow::redis(allow, &e.redis))?;
    let mut con = connect(&e.redis).await?;
    let w = jobs::Writer::new(e);
    let mut pipe = redis::pipe();
    w.register(&mut pipe);
    let mut n: u64 = 0;
    while n < u64::from(e.jobs) {
        let batch = (u64::from(e.jobs) - n).min(500);
        for i in n..n + batch {
            w.job(&mut pipe, i)?;
        }
        pipe.query_async::<()>(&mut con)
            .await
            .map_err(|err| FaultError::client("redis", err))?;
        pipe = redis::pipe();
        n += batch;
    }
    jobs::pending(&mut con, &e.queue_ref()).await
}

/// Reads a Redis probe: a length, a numeric value, 0/1 for EXISTS, DBSIZE, or an INFO field.
pub(crate) async fn probe(p: &RedisProbe, allow: &Allow) -> Result<f64, FaultError> {
    allowed(drill_spec::allow::redis(allow, &p.url))?;
    let mut con = connect(&p.url).await?;
    let as_f64 = |v: Option<String>, what: &str| -> Result<f64, FaultError> {
        match v {
            None => Ok(0.0),
            Some(s) => s.trim().parse().map_err(|_| {
                FaultError::backend("redis", format!("{what} is \"{s}\", not a number"))
            }),
        }
    };
    let count = |cmd: &str, k: &str| {
        let mut c = redis::cmd(cmd);
        c.arg(k);
        c
    };
    let Some(reading) = p.reading() else {
        return Err(FaultError::backend(
            "redis",
            "the probe sets no reading, or several (validation refuses that)",
        ));
    };
    match reading {
        RedisReading::Llen(k) => query::<u64>(&mut con, &count("LLEN", k))
            .await
            .map(|n| n as f64),
        RedisReading::Xlen(k) => query::<u64>(&mut con, &count("XLEN", k))
            .await
            .map(|n| n as f64),
        RedisReading::Zcard(k) => query::<u64>(&mut con, &count("ZCARD", k))
            .await
            .map(|n| n as f64),
        RedisReading::Exists(k) => query::<u64>(&mut con, &count("EXISTS", k))
            .await
            .map(|n| n as f64),
        RedisReading::Get(k) => {
            let v: Option<String> = query(&mut con, redis::cmd("GET").arg(k)).await?;
            as_f64(v, k)
        }
        RedisReading::Pending(q) => jobs::pending(&mut con, q).await.map(|n| n as f64),
        RedisReading::Info(field) => {
            let info: String = query(&mut con, &redis::cmd("INFO")).await?;
            let v = info
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_owned));
            if v.is_none() {
                return Err(FaultError::backend(
                    "redis",
                    format!("INFO has no field {field}"),
                ));
            }
            as_f64(v, field)
        }
        RedisReading::Dbsize => query::<u64>(&mut con, &redis::cmd("DBSIZE"))
            .await
            .map(|n| n as f64),
    }
}
