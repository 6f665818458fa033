//! Redis faults, actions and probes against a real server (tests/services/up.sh starts one).

mod common;

use std::time::{Duration, Instant};

use common::{allow, fault, redis_url, roundtrip, service};
use drill_faults::{FaultError, Reverted, apply, prepare, probe, revert};
use serde_json::json;

async fn con() -> Option<redis::aio::MultiplexedConnection> {
    let c = redis::Client::open(redis_url()).ok()?;
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
    tokio::time::timeout(
        Duration::from_secs(2),
        c.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    .ok()?
    .ok()
}

async fn set(c: &mut redis::aio::MultiplexedConnection, k: &str, v: &str) {
    redis::cmd("SET")
        .arg(k)
        .arg(v)
        .query_async::<()>(c)
        .await
        .expect("set");
}

async fn dbsize(c: &mut redis::aio::MultiplexedConnection) -> u64 {
    redis::cmd("DBSIZE").query_async(c).await.expect("dbsize")
}

// One test touches the whole server (FLUSHALL), so the Redis tests run in sequence in one
// function; each part says what it proves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_faults_actions_and_probes() {
    let Some(mut c) = con().await else {
        service("redis", false);
        return;
    };
    let url = redis_url();
    let a = allow(json!({"redis": [url]}));

    // FLUSHALL: changes the real state, says it is permanent, reverting is a no-op.
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut c)
        .await
        .expect("clean");
    set(&mut c, "drill:test:a", "1").await;
    set(&mut c, "cache:x", "2").await;
    // A queue shares the Redis: the flush must say it erases it, with the count.
    let _: () = redis::cmd("RPUSH")
        .arg("queues:drill-test")
        .arg(&["j1", "j2", "j3"])
        .query_async(&mut c)
        .await
        .expect("rpush");
    let f = fault(
        json!({"name": "flush", "action": "flush", "target": {"redis": url}, "irreversible": true}),
    );
    let p = prepare(&f, &a, Duration::from_secs(1))
        .await
        .expect("prepare");
    assert_eq!(dbsize(&mut c).await, 3, "preflight changes nothing");
    assert!(p.changes[0].starts_with("FLUSHALL"), "{:?}", p.changes);
    assert!(
        p.changes[0].contains("db0: 3 keys")
            && p.changes[0].contains("erases 3 queued jobs (queues:drill-test: 3)"),
        "the warning is measured: {:?}",
        p.changes
    );
    apply(&p.record).await.expect("flush");
    assert_eq!(dbsize(&mut c).await, 0);
    let record = roundtrip(&p.record);
    let perm = record.permanent().unwrap_or_default();
    assert!(
        perm.contains("flushed every database (before: db0: 3 keys)"),
        "{perm}"
    );
    assert!(
        !perm.contains("refills"),
        "no promise about the application: {perm}"
    );
    set(&mut c, "cache:refilled", "1").await;
    match revert(&record).await.expect("revert") {
        Reverted::Permanent(s) => assert!(s.ends_with("now db0: 1 keys"), "measured now: {s}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        revert(&record).await.expect("again"),
        Reverted::Permanent(_)
    ));

    // delete-keys: SCAN + UNLINK removes exactly the pattern.
    for i in 0..1200 {
        set(&mut c, &format!("cache:k{i}"), "v").await;
    }
    set(&mut c, "keep:me", "1").await;
    let f = fault(
        json!({"name": "purge", "action": "delete-keys", "target": {"redis": url}, "pattern": "cache:*", "irreversible": true}),
    );
    let p = prepare(&f, &a, Duration::from_secs(1))
        .await
        .expect("prepare");
    apply(&p.record).await.expect("delete");
    assert_eq!(dbsize(&mut c).await, 1);

    // CLIENT PAUSE: writes wait while paused; revert unpauses at once, and twice is fine.
    let f = fault(json!({"name": "pause", "action": "client-pause", "target": {"redis": url}}));
    let p = prepare(&f, &a, Duration::from_secs(10))
        .await
        .expect("prepare");
    apply(&p.record).await.expect("pause");
    let mut writer = con().await.expect("second connection");
    let started = Instant::now();
    let write = tokio::spawn(async move {
        redis::cmd("SET")
            .arg("during:pause")
            .arg("1")
            .query_async::<()>(&mut writer)
            .await
            .expect("set after unpause");
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!write.is_finished(), "the write is held by the pause");
    let record = roundtrip(&p.record);
    assert!(matches!(
        revert(&record).await.expect("unpause"),
        Reverted::Restored(_)
    ));
    write.await.expect("write done");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "unpaused long before the 10 s timeout"
    );
    assert!(matches!(
        revert(&record).await.expect("unpause again"),
        Reverted::Restored(_)
    ));

    // Enqueue a Laravel-style job batch and read it back with the probes.
    let e: drill_spec::model::Enqueue =
        serde_json::from_value(json!({"redis": url, "key": "queues:drill", "jobs": 1234}))
            .expect("enqueue");
    let len = drill_faults::redis::enqueue(&e, &a).await.expect("enqueue");
    assert_eq!(len, 1234);
    let first: String = redis::cmd("LINDEX")
        .arg("queues:drill")
        .arg(0)
        .query_async(&mut c)
        .await
        .expect("lindex");
    let job: serde_json::Value = serde_json::from_str(&first).expect("a JSON job payload");
    assert_eq!(job["job"], "Illuminate\\Queue\\CallQueuedHandler@call");
    let p = |v: serde_json::Value| {
        serde_json::from_value::<drill_spec::model::Probe>(json!({"redis": v})).expect("probe")
    };
    assert_eq!(
        probe(&p(json!({"url": url, "llen": "queues:drill"})), &a)
            .await
            .expect("llen"),
        1234.0
    );
    // Laravel counts pending jobs as its RedisQueue::size does: the list, the delayed and
    // the reserved sets.
    let _: () = redis::cmd("ZADD")
        .arg("queues:drill:reserved")
        .arg(1)
        .arg("a job a worker holds")
        .query_async(&mut c)
        .await
        .expect("zadd");
    assert_eq!(
        probe(
            &p(json!({"url": url, "pending": {"format": "laravel", "queue": "drill"}})),
            &a
        )
        .await
        .expect("pending"),
        1235.0
    );
    set(&mut c, "flag:count", "42").await;
    assert_eq!(
        probe(&p(json!({"url": url, "get": "flag:count"})), &a)
            .await
            .expect("get"),
        42.0
    );
    assert_eq!(
        probe(&p(json!({"url": url, "exists": "nope"})), &a)
            .await
            .expect("exists"),
        0.0
    );
    assert!(
        probe(&p(json!({"url": url, "dbsize": true})), &a)
            .await
            .expect("dbsize")
            >= 3.0
    );
    assert!(
        probe(&p(json!({"url": url, "info": "connected_clients"})), &a)
            .await
            .expect("info")
            >= 1.0
    );
    let e2: drill_spec::model::Enqueue = serde_json::from_value(
        json!({"redis": url, "format": "raw", "key": "jobs:stream", "jobs": 10, "into": "stream", "payload": "{\"n\": {n}}"}),
    )
    .expect("enqueue");
    assert_eq!(
        drill_faults::redis::enqueue(&e2, &a).await.expect("xadd"),
        10
    );
    assert_eq!(
        probe(&p(json!({"url": url, "xlen": "jobs:stream"})), &a)
            .await
            .expect("xlen"),
        10.0
    );

    // ZSET queues and ZCARD.
    let e3: drill_spec::model::Enqueue = serde_json::from_value(
        json!({"redis": url, "format": "raw", "key": "jobs:delayed", "jobs": 7, "into": "zset", "payload": "job-{n}"}),
    )
    .expect("enqueue");
    assert_eq!(
        drill_faults::redis::enqueue(&e3, &a).await.expect("zadd"),
        7
    );
    assert_eq!(
        probe(&p(json!({"url": url, "zcard": "jobs:delayed"})), &a)
            .await
            .expect("zcard"),
        7.0
    );
    for (key, n) in [
        ("jobs:delayed", 7.0),
        ("jobs:stream", 10.0),
        ("nothing:here", 0.0),
    ] {
        assert_eq!(
            probe(
                &p(json!({"url": url, "pending": {"format": "raw", "key": key}})),
                &a
            )
            .await
            .expect("pending"),
            n,
            "{key}"
        );
    }

    // FLUSHDB empties the selected database only.
    let db2 = format!("{}/2", url.trim_end_matches('/'));
    let a2 = allow(json!({"redis": [url]}));
    let mut c2 = redis::Client::open(db2.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("db 2");
    set(&mut c2, "only:in:db2", "1").await;
    let before_db0 = dbsize(&mut c).await;
    let f = fault(
        json!({"name": "flushdb", "action": "flush", "scope": "db", "target": {"redis": db2}, "irreversible": true}),
    );
    let prepared = prepare(&f, &a2, Duration::from_secs(1))
        .await
        .expect("prepare");
    apply(&prepared.record).await.expect("flushdb");
    assert_eq!(dbsize(&mut c2).await, 0);
    assert_eq!(dbsize(&mut c).await, before_db0, "database 0 untouched");

    // CLIENT KILL TYPE normal closes other clients' connections (not drill's own).
    let mut victim = con().await.expect("victim");
    let f = fault(
        json!({"name": "kill-clients", "action": "client-kill", "client_type": "normal", "target": {"redis": url}, "irreversible": true}),
    );
    let prepared = prepare(&f, &a, Duration::from_secs(1))
        .await
        .expect("prepare");
    apply(&prepared.record).await.expect("client kill");
    let after: Result<(), _> = redis::cmd("PING").query_async(&mut victim).await;
    assert!(after.is_err(), "the victim's connection was closed");
    assert!(
        matches!(revert(&prepared.record).await.expect("revert"), Reverted::Permanent(s) if s.contains("clients reconnect"))
    );
    let mut c = con().await.expect("reconnect");

    // An endpoint outside the allow-list is refused before any connection is tried.
    let f = fault(
        json!({"name": "flush", "action": "flush", "target": {"redis": "redis://127.0.0.1:1"}, "irreversible": true}),
    );
    let e = prepare(&f, &a, Duration::from_secs(1))
        .await
        .expect_err("refused");
    assert!(matches!(e, FaultError::NotAllowed(..)), "{e}");
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut c)
        .await
        .expect("clean up");
}
