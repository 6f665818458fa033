//! The API server.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use redis::AsyncCommands;
use serde_json::{Value, json};
use sqlx::Row;

use crate::Broken;
use crate::route::Route;

/// The feature flag the activity endpoint sits behind.
pub const FLAG: &str = "community_profile_activity";

/// Counters shown at `/internal/stats`.
#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    errors_5xx: AtomicU64,
    flag_fallbacks: AtomicU64,
    projection_builds: AtomicU64,
    /// Per cache key: times a request waited for another's rebuild (the stampede lock).
    lock_retries: Mutex<BTreeMap<String, u64>>,
    /// Per cache key: rebuilds.
    builds_per_key: Mutex<BTreeMap<String, u64>>,
}

/// The server's shared state.
#[derive(Debug)]
pub struct App {
    db: Route,
    redis: redis::aio::MultiplexedConnection,
    broken: Option<Broken>,
    stats: Stats,
}

type Resp = Response<Full<Bytes>>;

fn json_resp(status: StatusCode, v: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, msg: &str) -> Resp {
    json_resp(status, &json!({"message": msg}))
}

impl App {
    pub async fn new(db: &str, redis_url: &str, broken: Option<Broken>) -> anyhow::Result<App> {
        let client = redis::Client::open(redis_url)?;
        let cfg = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_connection_timeout(Some(Duration::from_secs(2)));
        let redis = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        Ok(App {
            db: Route::parse(db, 8)?,
            redis,
            broken,
            stats: Stats::default(),
        })
    }

    fn retry(&self) -> bool {
        self.broken != Some(Broken::NoRetry)
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Resp {
        let n = self.stats.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let rid = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| format!("dt-{}-{n}", std::process::id()), str::to_owned);
        let mut resp = self.route(req).await;
        if resp.status().is_server_error() {
            self.stats.errors_5xx.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(v) = hyper::header::HeaderValue::from_str(&rid) {
            resp.headers_mut().insert("x-request-id", v);
        }
        resp
    }

    async fn route(&self, req: Request<Incoming>) -> Resp {
        let path = req.uri().path().to_owned();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["health"] => json_resp(StatusCode::OK, &json!({"ok": true})),
            ["internal", "stats"] => json_resp(StatusCode::OK, &self.stats_json()),
            ["api", "v1", "communities", c, "members", m, "activity"] => {
                match (c.parse::<i64>(), m.parse::<i64>()) {
                    (Ok(c), Ok(m)) => self.activity(&req, c, m).await,
                    _ => error(StatusCode::NOT_FOUND, "not found"),
                }
            }
            _ => error(StatusCode::NOT_FOUND, "not found"),
        }
    }

    fn stats_json(&self) -> Value {
        let retries = self
            .stats
            .lock_retries
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default();
        let builds = self
            .stats
            .builds_per_key
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default();
        json!({
            "requests": self.stats.requests.load(Ordering::Relaxed),
            "errors_5xx": self.stats.errors_5xx.load(Ordering::Relaxed),
            "db_retries": self.db.retries(),
            "flag_fallbacks": self.stats.flag_fallbacks.load(Ordering::Relaxed),
            "projection_builds": self.stats.projection_builds.load(Ordering::Relaxed),
            "lock_retries_per_key": retries,
            "builds_per_key": builds,
            "broken": self.broken.map(|b| format!("{b:?}")),
        })
    }

    async fn activity(&self, req: &Request<Incoming>, community: i64, member: i64) -> Resp {
        // 1. The bearer token, checked (and its last use written) on every request.
        let Some(token) = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
        else {
            return error(StatusCode::UNAUTHORIZED, "unauthenticated");
        };
        let retry = self.retry();
        let started = Instant::now();
        let owner = self
            .db
            .run(retry, |mut c| {
                let token = token.clone();
                async move {
                    sqlx::query(
                        "UPDATE personal_access_tokens SET last_used_at = now() WHERE token = $1 RETURNING community_id",
                    )
                    .bind(token)
                    .fetch_optional(&mut *c)
                    .await
                }
            })
            .await;
        let _ = started;
        let token_community: i64 = match owner {
            Ok(Some(row)) => row.try_get("community_id").unwrap_or(0),
            Ok(None) => return error(StatusCode::UNAUTHORIZED, "unauthenticated"),
            Err(e) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("database unavailable: {e}"),
                );
            }
        };
        if token_community != community {
            return error(StatusCode::FORBIDDEN, "not a member of this community");
        }
        // 2. The feature flag, from Redis, else the database.
        match self.flag().await {
            Ok(true) => {}
            Ok(false) => return error(StatusCode::NOT_FOUND, "not found"),
            Err(_) if self.broken == Some(Broken::ErrorBody) => {
                return json_resp(StatusCode::OK, &json!({"error": "cache miss"}));
            }
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e),
        }
        // 3. The activity projection, cached per community.
        let items = match self.projection(community, member).await {
            Ok(v) => v,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e),
        };
        let q = req.uri().query().unwrap_or("");
        let param = |k: &str| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
        };
        let per_page = param("per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(50)
            .clamp(1, 100);
        let offset = param("cursor")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let all = items.as_array().cloned().unwrap_or_default();
        let page: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(per_page)
            .map(|i| json!({"type": i[0], "id": i[1], "at": i[2]}))
            .collect();
        let next = (offset + per_page < all.len()).then(|| (offset + per_page).to_string());
        json_resp(
            StatusCode::OK,
            &json!({"data": page, "meta": {"per_page": per_page, "next_cursor": next, "total": all.len()}}),
        )
    }

    async fn flag(&self) -> Result<bool, String> {
        let key = format!("flag:{FLAG}");
        let mut r = self.redis.clone();
        let cached: Result<Option<String>, _> = r.get(&key).await;
        if let Ok(Some(v)) = cached {
            return Ok(v == "1");
        }
        if matches!(self.broken, Some(Broken::NoDbFallback | Broken::ErrorBody)) {
            return Err("feature flags unavailable (no cache entry and no fallback)".into());
        }
        self.stats.flag_fallbacks.fetch_add(1, Ordering::Relaxed);
        let enabled = self
            .db
            .run(self.retry(), |mut c| async move {
                sqlx::query_scalar::<_, bool>("SELECT enabled FROM feature_flags WHERE name = $1")
                    .bind(FLAG)
                    .fetch_optional(&mut *c)
                    .await
            })
            .await
            .map_err(|e| format!("database unavailable: {e}"))?
            .unwrap_or(false);
        let _: Result<(), _> = r.set_ex(&key, if enabled { "1" } else { "0" }, 600).await;
        Ok(enabled)
    }

    async fn projection(&self, community: i64, member: i64) -> Result<Value, String> {
        let key = format!("activity:{community}");
        let mut r = self.redis.clone();
        let field = member.to_string();
        let cached: Result<Option<String>, _> = r.hget(&key, &field).await;
        if let Ok(Some(v)) = cached {
            return serde_json::from_str(&v).map_err(|e| e.to_string());
        }
        if self.broken == Some(Broken::NoStampedeLock) {
            return self.build(community, member).await;
        }
        let lock = format!("lock:{key}");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let won: bool = redis::cmd("SET")
                .arg(&lock)
                .arg(std::process::id())
                .arg("NX")
                .arg("PX")
                .arg(10_000)
                .query_async::<Option<String>>(&mut r)
                .await
                .map(|v| v.is_some())
                .unwrap_or(true);
            if won || Instant::now() > deadline {
                let out = self.build(community, member).await;
                let _: Result<(), _> = r.del(&lock).await;
                return out;
            }
            if let Ok(mut g) = self.stats.lock_retries.lock() {
                *g.entry(key.clone()).or_default() += 1;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            let cached: Result<Option<String>, _> = r.hget(&key, &field).await;
            if let Ok(Some(v)) = cached {
                return serde_json::from_str(&v).map_err(|e| e.to_string());
            }
        }
    }

    /// Rebuilds a community's projection from the database, caches it, returns one member's.
    async fn build(&self, community: i64, member: i64) -> Result<Value, String> {
        self.stats.projection_builds.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut g) = self.stats.builds_per_key.lock() {
            *g.entry(format!("activity:{community}")).or_default() += 1;
        }
        // PostgreSQL builds each member's list as JSON: [kind, id, unix time], newest first.
        let rows: Vec<(i64, String)> = self
            .db
            .run(self.retry(), |mut c| async move {
                sqlx::query_as(
                    "SELECT m.id, COALESCE(a.items, '[]') FROM members m LEFT JOIN (
                        SELECT member_id, json_agg(json_build_array(kind, id, at) ORDER BY at DESC, id DESC)::text AS items
                        FROM (
                            SELECT member_id, 'post' AS kind, id, EXTRACT(EPOCH FROM created_at)::BIGINT AS at FROM posts WHERE community_id = $1
                            UNION ALL SELECT member_id, 'comment', id, EXTRACT(EPOCH FROM created_at)::BIGINT FROM comments WHERE community_id = $1
                            UNION ALL SELECT member_id, 'reaction', id, EXTRACT(EPOCH FROM created_at)::BIGINT FROM reactions WHERE community_id = $1
                        ) u GROUP BY member_id
                     ) a ON a.member_id = m.id WHERE m.community_id = $1",
                )
                .bind(community)
                .fetch_all(&mut *c)
                .await
            })
            .await
            .map_err(|e| format!("database unavailable: {e}"))?;
        let mine = rows
            .iter()
            .find(|(m, _)| *m == member)
            .map(|(_, items)| serde_json::from_str(items).unwrap_or(Value::Array(Vec::new())))
            .unwrap_or(Value::Array(Vec::new()));
        let fields: Vec<(String, String)> = rows
            .into_iter()
            .map(|(m, items)| (m.to_string(), items))
            .collect();
        let mut r = self.redis.clone();
        let key = format!("activity:{community}");
        let _: Result<(), _> = r.hset_multiple(&key, &fields).await;
        let _: Result<(), _> = r.expire(&key, 3600).await;
        Ok(mine)
    }
}

/// Serves until the process is stopped. The flag cache is warmed from the database first
/// (as a deploy's `config:cache` would), so even the variant without a fallback starts
/// healthy; only a flush shows what the fallback is for.
pub async fn serve(app: App, listen: &str) -> anyhow::Result<()> {
    let enabled = app
        .db
        .run(true, |mut c| async move {
            sqlx::query_scalar::<_, bool>("SELECT enabled FROM feature_flags WHERE name = $1")
                .bind(FLAG)
                .fetch_optional(&mut *c)
                .await
        })
        .await?
        .unwrap_or(false);
    let mut r = app.redis.clone();
    let _: () = r
        .set_ex(
            format!("flag:{FLAG}"),
            if enabled { "1" } else { "0" },
            3600,
        )
        .await?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!(
        "drill-target: listening on http://{}{}",
        listener.local_addr()?,
        app.broken
            .map(|b| format!(" (broken: {b:?})"))
            .unwrap_or_default()
    );
    let app = Arc::new(app);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.handle(req).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
