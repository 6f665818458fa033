//! drill-target: a reference target that behaves like the seed plan's API, so that drill can be
//! tested end to end and a newcomer can watch it work (`drill demo`).
//!
//! What it is:
//! - [`serve`] — `GET /api/v1/communities/{c}/members/{m}/activity?cursor=…&per_page=50`:
//!   bearer tokens checked against PostgreSQL on every request (and `last_used_at` written,
//!   as Laravel Sanctum does), a feature flag read by middleware from Redis with a database
//!   fallback, the community's activity projection cached in Redis (a hash per community)
//!   and rebuilt under a lock against stampedes (lock waits counted per key), cursor
//!   pagination, an `X-Request-Id` on every response. `/internal/stats` shows the counters.
//! - [`route`] — PostgreSQL through a multi-host route that finds the writable primary
//!   (libpq's `target_session_attrs=read-write`), so promoting the replica and fencing the old
//!   primary is a real failover; a request that meets a dropped connection is retried once.
//! - [`worker`] — Horizon-like queue workers popping jobs from a Redis list; run as processes
//!   or in Docker containers.
//! - [`prepare`] — the seed's `community:loadtest:prepare`: a deterministic dataset and the
//!   credentials file the traffic generator reads.
//! - [`Broken`] — the variants that should make a drill fail.
//!
//! What it is not: a product. It keeps no state of its own besides counters; everything is in
//! Redis and PostgreSQL.

pub mod prepare;
pub mod route;
pub mod serve;
pub mod worker;

/// A deliberately broken variant (`--broken`, or `DRILL_TARGET_BROKEN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Broken {
    /// The flag middleware has no database fallback: a flushed cache means 503s.
    NoDbFallback,
    /// Workers stopped once never process jobs again (they wait for a supervisor that never
    /// comes).
    NoWorkerRestart,
    /// A request that meets a dropped database connection fails instead of being retried.
    NoRetry,
    /// Cache misses rebuild the projection without the lock: a stampede on the database.
    NoStampedeLock,
    /// The flag middleware has no database fallback and hides it: a flushed cache means
    /// `200 {"error": "cache miss"}` (an application error behind a success status).
    ErrorBody,
}
