//! Redis: FLUSHALL / FLUSHDB, CLIENT PAUSE of writes (with its built-in timeout, undone early
//! by CLIENT UNPAUSE), CLIENT KILL by type, deleting keys by pattern without blocking the server (SCAN +
//! UNLINK in batches); enqueueing jobs into a list, stream or sorted set; probes.
//!
//! Topology: a single Redis server, or a primary addressed directly. Cluster and Sentinel are
//! not supported yet: point
//! the URL at the node to act on. Redis 6.2+ is needed for CLIENT PAUSE WRITE/UNPAUSE.

use std::time::Duration;

use drill_spec::fault::RedisAction;
use drill_spec::model::{Allow, Enqueue, FlushScope, QueueKind, RedisProbe};
use serde::{Deserialize, Serialize};

use crate::{FaultError, Prepared, RevertRecord, Reverted, allowed};

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
}

impl Record {
    pub(crate) fn permanent(&self) -> Option<String> {
        match &self.action {
            Action::FlushAll => Some(format!(
                "flushed every database ({} keys in the selected one); the application refills its cache",
                self.keys_before
            )),
            Action::FlushDb => Some(format!(
                "flushed the database ({} keys); the application refills its cache",
                self.keys_before
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
            _ => "nothing to restore: this fault cannot be undone".into(),
        }
    }
}

async fn connect(url: &str) -> Result<redis::aio::MultiplexedConnection, FaultError> {
    let client = redis::Client::open(url)
        .map_err(|e| FaultError::backend("redis", format!("{url}: {e}")))?;
    // redis-rs gives up on a reply after 500 ms by default; FLUSHALL on a large dataset takes
    // longer, and a failed-looking flush that did happen would be worse than a slow one.
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(60)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| FaultError::backend("redis", format!("cannot connect: {e}")))
}

async fn query<T: redis::FromRedisValue>(
    con: &mut redis::aio::MultiplexedConnection,
    cmd: &redis::Cmd,
) -> Result<T, FaultError> {
    cmd.query_async(con)
        .await
        .map_err(|e| FaultError::client("redis", e))
}

pub(crate) async fn prepare(
    action: &RedisAction,
    url: &str,
    allow: &Allow,
    hold: Duration,
) -> Result<Prepared, FaultError> {
    allowed(drill_spec::allow::endpoint(
        &allow.redis,
        url,
        "redis",
        "redis",
    ))?;
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
    let change = match &action {
        Action::FlushAll => {
            format!("FLUSHALL on {url} ({keys_before} keys in the selected database), for good")
        }
        Action::FlushDb => format!("FLUSHDB on {url} ({keys_before} keys), for good"),
        Action::ClientPause { millis } => format!(
            "CLIENT PAUSE {millis} WRITE on {url} (writes wait, reads go on), then CLIENT UNPAUSE"
        ),
        Action::ClientKill { client_type } => format!("CLIENT KILL TYPE {client_type} on {url}"),
        Action::DeleteKeys { pattern } => {
            format!("delete keys matching {pattern} on {url} (SCAN + UNLINK), for good")
        }
    };
    Ok(Prepared {
        record: RevertRecord::Redis(Record {
            url: url.to_owned(),
            action,
            keys_before,
        }),
        changes: vec![change],
    })
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
        _ => Ok(Reverted::Permanent(r.permanent().unwrap_or_default())),
    }
}

/// A Laravel/Horizon-style queued job; `{n}` is the job number, `{uuid}` a fresh id.
pub const LARAVEL_JOB: &str = r#"{"uuid":"{uuid}","displayName":"App\\Notifications\\DrillNotification","job":"Illuminate\\Queue\\CallQueuedHandler@call","maxTries":null,"maxExceptions":null,"failOnTimeout":false,"backoff":null,"timeout":null,"retryUntil":null,"data":{"commandName":"Illuminate\\Notifications\\SendQueuedNotifications","command":"drill-job-{n}"},"id":"{uuid}","attempts":0,"pushedAt":"{now}"}"#;

fn uuid_for(n: u64, salt: u128) -> String {
    // Unique per job and run, formatted like a UUID; not random, and it need not be.
    let x = salt ^ (u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
    let h = format!("{x:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Pushes `e.jobs` jobs into the queue; returns the queue's length afterwards.
pub async fn enqueue(e: &Enqueue, allow: &Allow) -> Result<u64, FaultError> {
    allowed(drill_spec::allow::endpoint(
        &allow.redis,
        &e.redis,
        "redis",
        "redis",
    ))?;
    let mut con = connect(&e.redis).await?;
    let template = e.payload.as_deref().unwrap_or(LARAVEL_JOB);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let salt = now.as_nanos();
    let now_s = format!("{:.4}", now.as_secs_f64());
    let mut n: u64 = 0;
    while n < u64::from(e.jobs) {
        let batch = (u64::from(e.jobs) - n).min(500);
        let mut pipe = redis::pipe();
        for i in n..n + batch {
            let payload = template
                .replace("{n}", &i.to_string())
                .replace("{uuid}", &uuid_for(i, salt))
                .replace("{now}", &now_s);
            match e.into {
                QueueKind::List => pipe.cmd("RPUSH").arg(&e.key).arg(payload).ignore(),
                QueueKind::Stream => pipe
                    .cmd("XADD")
                    .arg(&e.key)
                    .arg("*")
                    .arg("payload")
                    .arg(payload)
                    .ignore(),
                QueueKind::Zset => pipe
                    .cmd("ZADD")
                    .arg(&e.key)
                    .arg(now.as_secs_f64())
                    .arg(payload)
                    .ignore(),
            };
        }
        pipe.query_async::<()>(&mut con)
            .await
            .map_err(|err| FaultError::client("redis", err))?;
        n += batch;
    }
    let len_cmd = match e.into {
        QueueKind::List => "LLEN",
        QueueKind::Stream => "XLEN",
        QueueKind::Zset => "ZCARD",
    };
    query(&mut con, redis::cmd(len_cmd).arg(&e.key)).await
}

/// Reads a Redis probe: a length, a numeric value, 0/1 for EXISTS, DBSIZE, or an INFO field.
pub(crate) async fn probe(p: &RedisProbe, allow: &Allow) -> Result<f64, FaultError> {
    allowed(drill_spec::allow::endpoint(
        &allow.redis,
        &p.url,
        "redis",
        "redis",
    ))?;
    let mut con = connect(&p.url).await?;
    let as_f64 = |v: Option<String>, what: &str| -> Result<f64, FaultError> {
        match v {
            None => Ok(0.0),
            Some(s) => s.trim().parse().map_err(|_| {
                FaultError::backend("redis", format!("{what} is \"{s}\", not a number"))
            }),
        }
    };
    if let Some(k) = &p.llen {
        return query::<u64>(&mut con, redis::cmd("LLEN").arg(k))
            .await
            .map(|n| n as f64);
    }
    if let Some(k) = &p.xlen {
        return query::<u64>(&mut con, redis::cmd("XLEN").arg(k))
            .await
            .map(|n| n as f64);
    }
    if let Some(k) = &p.zcard {
        return query::<u64>(&mut con, redis::cmd("ZCARD").arg(k))
            .await
            .map(|n| n as f64);
    }
    if let Some(k) = &p.get {
        let v: Option<String> = query(&mut con, redis::cmd("GET").arg(k)).await?;
        return as_f64(v, k);
    }
    if let Some(k) = &p.exists {
        return query::<u64>(&mut con, redis::cmd("EXISTS").arg(k))
            .await
            .map(|n| n as f64);
    }
    if let Some(field) = &p.info {
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
        return as_f64(v, field);
    }
    query::<u64>(&mut con, &redis::cmd("DBSIZE"))
        .await
        .map(|n| n as f64)
}
