//! Jobs written the way each job system's own library writes them to Redis, so that its
//! workers take them, and pending counts read the way each library counts them. Each format
//! is tested against the real library (tests/queues in drill-cli: RQ and Celery from PyPI,
//! Sidekiq from Debian's packages).
//!
//! - Laravel (`Illuminate\Queue\RedisQueue`): a JSON payload RPUSHed to `queues:NAME`;
//!   `size()` = LLEN + ZCARD `:delayed` + ZCARD `:reserved`.
//! - RQ (`rq.Queue.enqueue`): HSET `rq:job:ID` (the call `(func, None, args, {})` pickled and
//!   zlib-compressed in `data`, `status: queued`, `origin`), RPUSH the id to `rq:queue:NAME`,
//!   SADD `rq:queues`; `Queue.count` = LLEN. An id without its hash is dropped by the worker,
//!   which is why a bare list push does not make an RQ backlog.
//! - Celery (kombu's Redis transport, message protocol 2, JSON body, base64): LPUSH to the
//!   list NAME (consumers BRPOP it); kombu's `_size` adds the priority lists `NAME\x06\x16P`.
//! - Sidekiq (`Sidekiq::Client#raw_push`): SADD `queues` NAME, LPUSH `queue:NAME` the JSON
//!   job; `Sidekiq::Queue#size` = LLEN.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use drill_spec::model::{Enqueue, JobFormat, QueueKind, QueueRef};
use serde_json::{Value, json};

use super::conn::query;
use crate::contract::FaultError;

/// A Laravel/Horizon-style queued job; `{n}` is the job number, `{uuid}` a fresh id.
pub const LARAVEL_JOB: &str = r#"{"uuid":"{uuid}","displayName":"App\\Notifications\\DrillNotification","job":"Illuminate\\Queue\\CallQueuedHandler@call","maxTries":null,"maxExceptions":null,"failOnTimeout":false,"backoff":null,"timeout":null,"retryUntil":null,"data":{"commandName":"Illuminate\\Notifications\\SendQueuedNotifications","command":"drill-job-{n}"},"id":"{uuid}","attempts":0,"pushedAt":"{now}"}"#;

/// Celery's default priority steps (kombu `PRIORITY_STEPS`) and its key separator.
const CELERY_PRIORITIES: [u8; 3] = [3, 6, 9];
const CELERY_SEP: &str = "\x06\x16";

/// What one enqueue writes for job `n`: the commands, queued on `pipe`.
pub(super) struct Writer<'a> {
    e: &'a Enqueue,
    key: String,
    queue: String,
    salt: u128,
    now: f64,
}

impl<'a> Writer<'a> {
    pub(super) fn new(e: &'a Enqueue) -> Writer<'a> {
        let q = e.queue_ref();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Writer {
            e,
            key: q.key(),
            queue: q.name().to_owned(),
            salt: now.as_nanos(),
            now: now.as_secs_f64(),
        }
    }

    /// Commands run once before the jobs: registering the queue where the library does.
    pub(super) fn register(&self, pipe: &mut redis::Pipeline) {
        match self.e.format {
            JobFormat::Rq => {
                pipe.cmd("SADD").arg("rq:queues").arg(&self.key).ignore();
            }
            JobFormat::Sidekiq => {
                pipe.cmd("SADD").arg("queues").arg(&self.queue).ignore();
            }
            // Their workers find the queue by its key alone.
            JobFormat::Laravel | JobFormat::Celery | JobFormat::Raw => {}
        }
    }

    pub(super) fn job(&self, pipe: &mut redis::Pipeline, n: u64) -> Result<(), FaultError> {
        let id = uuid_for(n, self.salt);
        let args: Vec<Value> = self.e.args.iter().map(|a| numbered(a, n)).collect();
        match self.e.format {
            JobFormat::Laravel => {
                let mut payload = fill(LARAVEL_JOB, n, &id, self.now);
                if let Some(t) = &self.e.task {
                    // displayName, JSON-escaped.
                    let name = Value::String(t.clone()).to_string();
                    payload = payload.replace(r#""App\\Notifications\\DrillNotification""#, &name);
                }
                pipe.cmd("RPUSH").arg(&self.key).arg(payload).ignore();
            }
            JobFormat::Rq => {
                let func = self.e.task.as_deref().unwrap_or_default();
                let call = (func, (), &args, serde_json::Map::new());
                let pickled = serde_pickle::to_vec(&call, serde_pickle::SerOptions::new())
                    .map_err(|e| FaultError::context("redis", "rq job", e))?;
                let data = zlib(&pickled)?;
                let at = rq_time(self.now);
                let description = format!(
                    "{func}({})",
                    args.iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                pipe.cmd("HSET")
                    .arg(format!("rq:job:{id}"))
                    .arg("created_at")
                    .arg(&at)
                    .arg("enqueued_at")
                    .arg(&at)
                    .arg("data")
                    .arg(data)
                    .arg("origin")
                    .arg(&self.queue)
                    .arg("description")
                    .arg(description)
                    .arg("status")
                    .arg("queued")
                    .arg("timeout")
                    .arg(180)
                    .ignore();
                pipe.cmd("RPUSH").arg(&self.key).arg(&id).ignore();
            }
            JobFormat::Celery => {
                let task = self.e.task.as_deref().unwrap_or_default();
                let body = json!([args, {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]);
                let message = json!({
                    "body": base64::engine::general_purpose::STANDARD.encode(body.to_string()),
                    "content-encoding": "utf-8",
                    "content-type": "application/json",
                    "headers": {
                        "lang": "py", "task": task, "id": id, "shadow": null, "eta": null,
                        "expires": null, "group": null, "group_index": null, "retries": 0,
                        "timelimit": [null, null], "root_id": id, "parent_id": null,
                        "argsrepr": Value::Array(args.clone()).to_string(), "kwargsrepr": "{}",
                        "origin": "drill", "ignore_result": false,
                    },
                    "properties": {
                        "correlation_id": id, "reply_to": "", "delivery_mode": 2,
                        "delivery_info": {"exchange": "", "routing_key": self.queue},
                        "priority": 0, "body_encoding": "base64",
                        "delivery_tag": uuid_for(n ^ 0x5a5a, self.salt),
                    },
                });
                pipe.cmd("LPUSH")
                    .arg(&self.key)
                    .arg(message.to_string())
                    .ignore();
            }
            JobFormat::Sidekiq => {
                let jid: String = id.chars().filter(|c| *c != '-').take(24).collect();
                let job = json!({
                    "retry": true, "queue": self.queue,
                    "class": self.e.task.as_deref().unwrap_or_default(),
                    "args": args, "jid": jid,
                    "created_at": self.now, "enqueued_at": self.now,
                });
                pipe.cmd("LPUSH")
                    .arg(&self.key)
                    .arg(job.to_string())
                    .ignore();
            }
            JobFormat::Raw => {
                let payload = fill(self.e.payload.as_deref().unwrap_or("{n}"), n, &id, self.now);
                match self.e.into.unwrap_or_default() {
                    QueueKind::List => pipe.cmd("RPUSH").arg(&self.key).arg(payload).ignore(),
                    QueueKind::Stream => pipe
                        .cmd("XADD")
                        .arg(&self.key)
                        .arg("*")
                        .arg("payload")
                        .arg(payload)
                        .ignore(),
                    QueueKind::Zset => pipe
                        .cmd("ZADD")
                        .arg(&self.key)
                        .arg(self.now)
                        .arg(payload)
                        .ignore(),
                };
            }
        }
        Ok(())
    }
}

/// The jobs pending in a queue, counted as its library counts them (see the module doc).
pub(super) async fn pending(
    con: &mut redis::aio::MultiplexedConnection,
    q: &QueueRef,
) -> Result<u64, FaultError> {
    let key = q.key();
    let llen = |k: String| {
        let mut c = redis::cmd("LLEN");
        c.arg(k);
        c
    };
    let zcard = |k: String| {
        let mut c = redis::cmd("ZCARD");
        c.arg(k);
        c
    };
    let mut total: u64 = 0;
    match q.format {
        JobFormat::Laravel => {
            total += query::<u64>(con, &llen(key.clone())).await?;
            total += query::<u64>(con, &zcard(format!("{key}:delayed"))).await?;
            total += query::<u64>(con, &zcard(format!("{key}:reserved"))).await?;
        }
        JobFormat::Rq | JobFormat::Sidekiq => total = query(con, &llen(key)).await?,
        JobFormat::Celery => {
            total += query::<u64>(con, &llen(key.clone())).await?;
            for p in CELERY_PRIORITIES {
                total += query::<u64>(con, &llen(format!("{key}{CELERY_SEP}{p}"))).await?;
            }
        }
        JobFormat::Raw => {
            let kind: String = query(con, redis::cmd("TYPE").arg(&key)).await?;
            total = match kind.as_str() {
                "none" => 0,
                "list" => query(con, &llen(key)).await?,
                "zset" => query(con, &zcard(key)).await?,
                "stream" => query(con, redis::cmd("XLEN").arg(&key)).await?,
                other => {
                    return Err(FaultError::backend(
                        "redis",
                        format!("{key} is a {other}, not a list, stream or sorted set"),
                    ));
                }
            };
        }
    }
    Ok(total)
}

fn fill(template: &str, n: u64, id: &str, now: f64) -> String {
    template
        .replace("{n}", &n.to_string())
        .replace("{uuid}", id)
        .replace("{now}", &format!("{now:.4}"))
}

/// `{n}` in the argument's strings replaced by the job number.
fn numbered(v: &Value, n: u64) -> Value {
    match v {
        Value::String(s) if s.contains("{n}") => {
            let t = s.replace("{n}", &n.to_string());
            // A whole "{n}" stays a number.
            if s == "{n}" {
                Value::from(n)
            } else {
                Value::String(t)
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| numbered(x, n)).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), numbered(x, n))).collect())
        }
        other => other.clone(),
    }
}

fn zlib(bytes: &[u8]) -> Result<Vec<u8>, FaultError> {
    use std::io::Write as _;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(bytes)
        .and_then(|()| z.finish())
        .map_err(|e| FaultError::context("redis", "rq job: zlib", e))
}

/// RQ's timestamp format, `%Y-%m-%dT%H:%M:%S.%fZ`, in UTC.
fn rq_time(unix: f64) -> String {
    let secs = unix.floor() as i64;
    let micros = ((unix - unix.floor()) * 1e6) as u32;
    chrono::DateTime::from_timestamp(secs, micros * 1000)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

pub(super) fn uuid_for(n: u64, salt: u128) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_replace_n_and_a_whole_n_stays_a_number() {
        assert_eq!(
            numbered(&json!(["user-{n}", "{n}", {"k": "{n}"}, 3]), 7),
            json!(["user-7", 7, {"k": 7}, 3])
        );
    }

    #[test]
    fn rq_times_are_rqs_format() {
        assert_eq!(rq_time(1_700_000_000.25), "2023-11-14T22:13:20.250000Z");
    }

    #[test]
    fn an_rq_call_pickles_as_the_four_values_rq_unpacks() {
        let call = (
            "app.tasks.notify",
            (),
            &vec![json!(1)],
            serde_json::Map::new(),
        );
        let bytes = serde_pickle::to_vec(&call, serde_pickle::SerOptions::new()).expect("pickle");
        let back: serde_pickle::Value =
            serde_pickle::from_slice(&bytes, serde_pickle::DeOptions::new()).expect("unpickle");
        // RQ unpacks it as `func, instance, args, kwargs = loads(data)` (the real RQ worker
        // runs it in tests/queues).
        let (serde_pickle::Value::Tuple(t) | serde_pickle::Value::List(t)) = back else {
            panic!("a sequence: {back:?}")
        };
        assert_eq!(t.len(), 4);
        assert_eq!(t[0], serde_pickle::Value::String("app.tasks.notify".into()));
        assert_eq!(t[1], serde_pickle::Value::None);
    }
}
