//! PostgreSQL through a multi-host route: `postgres://user@h1:p1,h2:p2/db`. A connection is
//! only kept on a host that accepts writes (`transaction_read_only = off`), like libpq's
//! `target_session_attrs=read-write`; when connecting fails, the hosts are tried again in
//! order. After a failover (the replica promoted, the old primary fenced read-only and its
//! sessions terminated) the route lands on the new primary.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

/// The marker of a host refused because it is read-only.
const READ_ONLY: &str = "drill-target: host is read-only";

/// A multi-host route to the writable primary.
#[derive(Debug)]
pub struct Route {
    hosts: Vec<(String, u16)>,
    user: String,
    database: String,
    /// The pool on the current host, with its generation.
    current: Mutex<Option<(u64, PgPool)>>,
    /// One resolution at a time: concurrent requests wait for it instead of each opening
    /// a pool of their own.
    resolving: tokio::sync::Mutex<u64>,
    pool_size: u32,
    retries: std::sync::atomic::AtomicU64,
}

impl Route {
    /// Parses `postgres://user@h1:p1,h2:p2/db`.
    pub fn parse(url: &str, pool_size: u32) -> anyhow::Result<Route> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| anyhow::anyhow!("{url}: expected postgres://user@host:port,…/db"))?;
        let (auth, rest) = rest.split_once('@').unwrap_or(("postgres", rest));
        let (hosts, database) = rest.split_once('/').unwrap_or((rest, "postgres"));
        let hosts = hosts
            .split(',')
            .map(|h| {
                let (host, port) = h.rsplit_once(':').unwrap_or((h, "5432"));
                Ok((host.to_owned(), port.parse()?))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Route {
            hosts,
            user: auth.split(':').next().unwrap_or("postgres").to_owned(),
            database: database.split('?').next().unwrap_or(database).to_owned(),
            current: Mutex::new(None),
            resolving: tokio::sync::Mutex::new(0),
            pool_size,
            retries: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How many requests were retried after meeting a dropped connection.
    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn current(&self) -> Option<(u64, PgPool)> {
        self.current.lock().ok().and_then(|g| g.clone())
    }

    /// Forgets the host of generation `generation`; the next request resolves the route
    /// again. A newer route (resolved meanwhile by another request) is kept.
    pub fn reset(&self, generation: u64) {
        let old = match self.current.lock() {
            Ok(mut g) if g.as_ref().is_some_and(|(n, _)| *n == generation) => g.take(),
            _ => None,
        };
        // Requests waiting for a connection from the old pool fail at once (PoolClosed) and
        // take the new route, instead of waiting out the acquire timeout.
        if let Some((_, pool)) = old {
            tokio::spawn(async move { pool.close().await });
        }
    }

    /// The pool on the writable primary, resolving the route when there is none.
    pub async fn pool(&self) -> Result<(u64, PgPool), sqlx::Error> {
        if let Some(p) = self.current() {
            return Ok(p);
        }
        let mut generation = self.resolving.lock().await;
        if let Some(p) = self.current() {
            return Ok(p);
        }
        let mut last = sqlx::Error::PoolClosed;
        for (host, port) in &self.hosts {
            let opts = PgConnectOptions::new()
                .host(host)
                .port(*port)
                .username(&self.user)
                .database(&self.database);
            let pool = PgPoolOptions::new()
                .max_connections(self.pool_size)
                .min_connections(self.pool_size)
                // Like persistent PHP connections: a pooled connection is not pinged before
                // use, so a dropped one is only noticed by the query that meets it.
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(1))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        let ro: String = sqlx::query_scalar("SHOW transaction_read_only")
                            .fetch_one(&mut *conn)
                            .await?;
                        if ro == "on" {
                            return Err(sqlx::Error::Protocol(READ_ONLY.into()));
                        }
                        Ok(())
                    })
                })
                .connect_with(opts)
                .await;
            match pool {
                Ok(p) => {
                    *generation += 1;
                    if let Ok(mut g) = self.current.lock() {
                        *g = Some((*generation, p.clone()));
                    }
                    eprintln!("drill-target: database route → {host}:{port}");
                    return Ok((*generation, p));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Runs `f` on a connection to the primary. Failing to get a connection resolves the
    /// route again. When the query meets a dropped connection and `retry` is on, the route is
    /// resolved again and `f` runs once more (idempotent requests only).
    pub async fn run<T, F, Fut>(&self, retry: bool, f: F) -> Result<T, sqlx::Error>
    where
        F: Fn(PoolConnection<Postgres>) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let mut attempts = if retry { 2 } else { 1 };
        loop {
            attempts -= 1;
            let (generation, conn) = match self.pool().await {
                Ok((n, p)) => (n, p.acquire().await),
                Err(e) => (0, Err(e)),
            };
            let conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    self.reset(generation);
                    if attempts > 0 {
                        continue;
                    }
                    return Err(e);
                }
            };
            match f(conn).await {
                Err(e) if dropped(&e) && attempts > 0 => {
                    eprintln!("drill-target: {e}; retrying once on a fresh route");
                    self.retries
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.reset(generation);
                }
                r => return r,
            }
        }
    }
}

/// Whether an error means the connection (or its host's role) is gone.
pub fn dropped(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Protocol(m) => m.contains(READ_ONLY) || m.contains("closed"),
        sqlx::Error::Database(d) => matches!(
            d.code().as_deref(),
            // admin_shutdown (terminated), read_only_sql_transaction, cannot_connect_now
            Some("57P01" | "25006" | "57P03")
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_multi_host_url_is_parsed() {
        let r = super::Route::parse("postgres://app@127.0.0.1:5453,127.0.0.1:5454/demo", 4)
            .expect("parse");
        assert_eq!(
            r.hosts,
            vec![
                ("127.0.0.1".to_owned(), 5453),
                ("127.0.0.1".to_owned(), 5454)
            ]
        );
        assert_eq!((r.user.as_str(), r.database.as_str()), ("app", "demo"));
    }
}
