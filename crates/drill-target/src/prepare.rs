//! The dataset, like the seed's `community:loadtest:prepare --communities=3 --members=120
//! --posts=8 --comments=12 --reactions=30 --points=6 --tokens=25`: communities, members, posts
//! (per member), comments and reactions (per post), point events (per member) and API tokens
//! (per community), all derived from `--seed` by arithmetic, so the same seed gives the same
//! rows and tokens. Writes the credentials file the traffic generator reads.

use serde_json::json;
use sqlx::Connection;

/// What to generate.
#[derive(Debug, Clone, clap::Args)]
pub struct Counts {
    #[arg(long, default_value_t = 3)]
    pub communities: i64,
    /// Members per community.
    #[arg(long, default_value_t = 120)]
    pub members: i64,
    /// Posts per member.
    #[arg(long, default_value_t = 8)]
    pub posts: i64,
    /// Comments per post.
    #[arg(long, default_value_t = 12)]
    pub comments: i64,
    /// Reactions per post.
    #[arg(long, default_value_t = 30)]
    pub reactions: i64,
    /// Point events per member.
    #[arg(long, default_value_t = 6)]
    pub points: i64,
    /// API tokens per community (for its first members).
    #[arg(long, default_value_t = 25)]
    pub tokens: i64,
    #[arg(long, default_value_t = 42)]
    pub seed: i64,
}

/// The row counts written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    pub communities: i64,
    pub members: i64,
    pub posts: i64,
    pub comments: i64,
    pub reactions: i64,
    pub points: i64,
    pub tokens: i64,
}

const SCHEMA: &str = "
DROP TABLE IF EXISTS communities, members, posts, comments, reactions, point_events,
    personal_access_tokens, feature_flags CASCADE;
CREATE TABLE communities (id BIGINT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE members (id BIGINT PRIMARY KEY, community_id BIGINT NOT NULL, name TEXT NOT NULL);
CREATE TABLE posts (id BIGINT PRIMARY KEY, community_id BIGINT NOT NULL, member_id BIGINT NOT NULL, created_at TIMESTAMPTZ NOT NULL);
CREATE TABLE comments (id BIGINT PRIMARY KEY, post_id BIGINT NOT NULL, community_id BIGINT NOT NULL, member_id BIGINT NOT NULL, created_at TIMESTAMPTZ NOT NULL);
CREATE TABLE reactions (id BIGINT PRIMARY KEY, post_id BIGINT NOT NULL, community_id BIGINT NOT NULL, member_id BIGINT NOT NULL, kind TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL);
CREATE TABLE point_events (id BIGINT PRIMARY KEY, member_id BIGINT NOT NULL, points INT NOT NULL);
CREATE TABLE personal_access_tokens (token TEXT PRIMARY KEY, member_id BIGINT NOT NULL, community_id BIGINT NOT NULL, last_used_at TIMESTAMPTZ);
CREATE TABLE feature_flags (name TEXT PRIMARY KEY, enabled BOOLEAN NOT NULL);
";

/// A deterministic pseudo-random number in SQL from an integer expression and the seed.
fn h(expr: &str) -> String {
    format!("((({expr}) * 2654435761 + $1 * 40503 + 12345) % 2147483647)")
}

/// Creates the schema and the rows; returns the counts and the credentials records.
pub async fn prepare(url: &str, n: &Counts) -> anyhow::Result<(Written, serde_json::Value)> {
    let mut c = sqlx::PgConnection::connect(url).await?;
    sqlx::raw_sql(SCHEMA).execute(&mut c).await?;
    let mut tx = c.begin().await?;
    let (cm, m, p, cmt, r, pts, tok) = (
        n.communities,
        n.members,
        n.posts,
        n.comments,
        n.reactions,
        n.points,
        n.tokens.min(n.members),
    );
    // Member k of community c has id (c-1)*M + k; post i belongs to member (i-1)/P + 1.
    let member_of_post = format!("((i - 1) / {p} + 1)");
    let community_of_member = |mexpr: &str| format!("(({mexpr} - 1) / {m} + 1)");
    let at = |expr: &str| {
        format!(
            "(TIMESTAMPTZ '2026-01-01 00:00:00+00' + ({} % 2592000) * INTERVAL '1 second')",
            h(expr)
        )
    };
    let stmts = [
        format!("INSERT INTO communities SELECT i, 'community ' || i FROM generate_series(1, {cm}) i WHERE $1 = $1"),
        format!("INSERT INTO members SELECT i, (i - 1) / {m} + 1, 'member ' || i FROM generate_series(1, {cm} * {m}) i WHERE $1 = $1"),
        format!(
            "INSERT INTO posts SELECT i, {}, {member_of_post}, {} FROM generate_series(1, {cm} * {m} * {p}) i",
            community_of_member(&member_of_post),
            at("i")
        ),
        // Comment j is on post (j-1)/C+1, by a member of the post's community.
        format!(
            "INSERT INTO comments SELECT j, post, comm, (comm - 1) * {m} + {} % {m} + 1, {} FROM (
                SELECT j, (j - 1) / {cmt} + 1 AS post, (((j - 1) / {cmt}) / {p}) / {m} + 1 AS comm
                FROM generate_series(1, {cm} * {m} * {p} * {cmt}) j) s",
            h("j"),
            at("j + 7")
        ),
        format!(
            "INSERT INTO reactions SELECT j, post, comm, (comm - 1) * {m} + {} % {m} + 1,
                (ARRAY['like','love','laugh','wow'])[{} % 4 + 1], {} FROM (
                SELECT j, (j - 1) / {r} + 1 AS post, (((j - 1) / {r}) / {p}) / {m} + 1 AS comm
                FROM generate_series(1, {cm} * {m} * {p} * {r}) j) s",
            h("j + 3"),
            h("j + 5"),
            at("j + 11")
        ),
        format!(
            "INSERT INTO point_events SELECT i, (i - 1) / {pts} + 1, {} % 50 + 1 FROM generate_series(1, {cm} * {m} * {pts}) i",
            h("i + 13")
        ),
        format!(
            "INSERT INTO personal_access_tokens (token, member_id, community_id)
             SELECT md5('drill-demo-' || $1 || '-' || mid), mid, c FROM (
                SELECT c, (c - 1) * {m} + k AS mid FROM generate_series(1, {cm}) c, generate_series(1, {tok}) k) s"
        ),
        "INSERT INTO feature_flags VALUES ('community_profile_activity', true) ON CONFLICT DO NOTHING"
            .to_owned(),
    ];
    for s in &stmts {
        let q = sqlx::query(sqlx::AssertSqlSafe(s.clone()));
        let q = if s.contains("$1") { q.bind(n.seed) } else { q };
        q.execute(&mut *tx).await?;
    }
    for s in [
        "CREATE INDEX ON posts (community_id)",
        "CREATE INDEX ON comments (community_id)",
        "CREATE INDEX ON reactions (community_id)",
        "ANALYZE",
    ] {
        sqlx::query(s).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let count = |t: &'static str| {
        let sql = format!("SELECT count(*) FROM {t}");
        async move { sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)) }
    };
    let mut out = Vec::new();
    for t in [
        "communities",
        "members",
        "posts",
        "comments",
        "reactions",
        "point_events",
        "personal_access_tokens",
    ] {
        out.push(count(t).await.fetch_one(&mut c).await?);
    }
    let written = Written {
        communities: out[0],
        members: out[1],
        posts: out[2],
        comments: out[3],
        reactions: out[4],
        points: out[5],
        tokens: out[6],
    };
    let rows = sqlx::query_as::<_, (i64, i64, String)>(
        "SELECT community_id, member_id, token FROM personal_access_tokens ORDER BY community_id, member_id",
    )
    .fetch_all(&mut c)
    .await?;
    let creds = json!({
        "seed": n.seed,
        "tokens": rows.iter().map(|(c, m, t)| json!({"community_id": c, "member_id": m, "token": t})).collect::<Vec<_>>(),
    });
    Ok((written, creds))
}
