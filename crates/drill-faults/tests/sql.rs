//! PostgreSQL: a real primary and streaming replica (tests/services/postgres.sh), a real
//! promotion, SQL faults with their revert, and scalar probes.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{allow, fault, roundtrip, service};
use drill_faults::{FaultError, Reverted, apply, prepare, probe, revert};
use serde_json::json;
use sqlx::{Connection, PgConnection, Row};

const PRIMARY: &str = "postgres://postgres@127.0.0.1:5433/postgres";
const REPLICA: &str = "postgres://postgres@127.0.0.1:5434/postgres";

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/services/postgres.sh")
}

async fn con(url: &str) -> Option<PgConnection> {
    tokio::time::timeout(Duration::from_secs(3), PgConnection::connect(url))
        .await
        .ok()?
        .ok()
}

async fn scalar_bool(c: &mut PgConnection, q: &'static str) -> bool {
    sqlx::query(q)
        .fetch_one(c)
        .await
        .and_then(|r| r.try_get::<bool, _>(0))
        .expect("query")
}

/// Makes sure the replica is a replica again (an earlier run may have promoted it).
fn reset_replica() -> bool {
    Command::new("bash")
        .arg(script())
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promoting_the_replica_makes_it_primary_and_runs_the_route_switch() {
    if !service(
        "postgres primary + replica (tests/services/postgres.sh)",
        reset_replica(),
    ) {
        return;
    }
    let (Some(mut p), Some(mut r)) = (con(PRIMARY).await, con(REPLICA).await) else {
        service("postgres on 5433/5434", false);
        return;
    };
    // The replica is real: a write on the primary shows up on it.
    sqlx::raw_sql(
        "create table if not exists drill_probe(id int); insert into drill_probe values (1)",
    )
    .execute(&mut p)
    .await
    .expect("write");
    let mut seen = false;
    for _ in 0..50 {
        if sqlx::query("select count(*) from pg_class where relname = 'drill_probe'")
            .fetch_one(&mut r)
            .await
            .and_then(|row| row.try_get::<i64, _>(0))
            .unwrap_or(0)
            == 1
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the replica streams from the primary");
    assert!(scalar_bool(&mut r, "select pg_is_in_recovery()").await);

    let flag = std::env::temp_dir().join(format!("drill-route-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    // The route switch records what the replica was when it ran: promoted already, or not.
    let f = fault(json!({
        "name": "promote", "action": "promote", "irreversible": true,
        "target": {"sql": REPLICA},
        "route_switch": {"exec": {"command": ["sh", "-c", format!(
            "psql -h 127.0.0.1 -p 5434 -U postgres -Atqc 'select pg_is_in_recovery()' > {}",
            flag.display()
        )]}}
    }));
    let a = allow(json!({"sql": ["postgres://127.0.0.1:5434"], "exec": ["sh"]}));
    let prepared = prepare(&f, &a, Duration::from_secs(1))
        .await
        .expect("prepare");
    assert!(
        prepared.changes[0].starts_with(
            "promote the replica at postgres://postgres@127.0.0.1:5434/postgres to primary"
        ),
        "{:?}",
        prepared.changes
    );
    assert!(
        scalar_bool(&mut r, "select pg_is_in_recovery()").await,
        "preflight changes nothing"
    );
    apply(&prepared.record).await.expect("promote");
    assert!(
        !scalar_bool(&mut r, "select pg_is_in_recovery()").await,
        "promoted"
    );
    assert_eq!(
        std::fs::read_to_string(&flag)
            .expect("the route switch ran")
            .trim(),
        "f",
        "the route switch ran after the promotion (the replica was no longer in recovery)"
    );
    let _ = std::fs::remove_file(&flag);
    let record = roundtrip(&prepared.record);
    assert!(
        matches!(revert(&record).await.expect("revert"), Reverted::Permanent(s) if s.contains("rebuild a replica"))
    );
    assert!(matches!(
        revert(&record).await.expect("again"),
        Reverted::Permanent(_)
    ));
    // Preparing again refuses: it is no longer a replica.
    assert!(matches!(
        prepare(&f, &a, Duration::from_secs(1)).await,
        Err(FaultError::Invalid { .. })
    ));
    // Leave a replica behind for the next run.
    assert!(reset_replica(), "the replica was rebuilt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_fault_runs_its_statement_and_its_revert_and_probes_read_scalars() {
    let Some(mut p) = con(PRIMARY).await else {
        service(
            "postgres primary on 5433 (tests/services/postgres.sh)",
            false,
        );
        return;
    };
    sqlx::raw_sql("create table if not exists drill_flags(name text primary key, enabled bool); insert into drill_flags values ('community_profile_activity', true) on conflict (name) do update set enabled = true")
        .execute(&mut p)
        .await
        .expect("setup");
    let a = allow(json!({"sql": ["postgres://127.0.0.1:5433"]}));
    let f = fault(json!({
        "name": "flag-off", "action": "sql", "target": {"sql": PRIMARY},
        "sql": {"inject": "update drill_flags set enabled = false where name = 'community_profile_activity'",
                "revert": "update drill_flags set enabled = true where name = 'community_profile_activity'"}
    }));
    let probe_q = serde_json::from_value::<drill_spec::model::Probe>(json!({"sql": {"url": PRIMARY, "query": "select enabled from drill_flags where name = 'community_profile_activity'"}})).expect("probe");
    assert_eq!(probe(&probe_q, &a).await.expect("probe"), 1.0);
    let prepared = prepare(&f, &a, Duration::from_secs(1))
        .await
        .expect("prepare");
    apply(&prepared.record).await.expect("inject");
    assert_eq!(probe(&probe_q, &a).await.expect("probe"), 0.0);
    let record = roundtrip(&prepared.record);
    assert!(matches!(
        revert(&record).await.expect("revert"),
        Reverted::Restored(_)
    ));
    assert_eq!(probe(&probe_q, &a).await.expect("probe"), 1.0);
    revert(&record).await.expect("revert twice");
    assert_eq!(probe(&probe_q, &a).await.expect("probe"), 1.0);
    let count = serde_json::from_value::<drill_spec::model::Probe>(
        json!({"sql": {"url": PRIMARY, "query": "select count(*) from drill_flags"}}),
    )
    .expect("probe");
    assert!(probe(&count, &a).await.expect("count") >= 1.0);

    // Outside the allow-list: refused before connecting (port 1 would not answer anyway).
    let outside = serde_json::from_value::<drill_spec::model::Probe>(
        json!({"sql": {"url": "postgres://postgres@127.0.0.1:1/x", "query": "select 1"}}),
    )
    .expect("probe");
    assert!(matches!(
        probe(&outside, &a).await,
        Err(FaultError::NotAllowed(..))
    ));
}

const MARIA_REPLICA: &str = "mysql://drill:drill@127.0.0.1:3308/drill";

fn mariadb_script() -> bool {
    let s =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/services/mariadb.sh");
    Command::new("bash")
        .arg(s)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promoting_a_mariadb_replica_stops_replication_and_makes_it_writable() {
    if !service(
        "mariadb primary + replica (tests/services/mariadb.sh)",
        mariadb_script(),
    ) {
        return;
    }
    let a = allow(json!({"sql": ["mysql://127.0.0.1:3308"], "exec": ["sh"]}));
    let q = |query: &str| {
        serde_json::from_value::<drill_spec::model::Probe>(
            json!({"sql": {"url": MARIA_REPLICA, "query": query}}),
        )
        .expect("probe")
    };
    assert_eq!(
        probe(&q("SELECT @@global.read_only"), &a)
            .await
            .expect("read_only"),
        1.0
    );
    // Replication really runs before the promotion.
    assert_eq!(
        probe(
            &q("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'"),
            &a
        )
        .await
        .expect("io"),
        1.0,
        "the replica's IO thread runs before the promotion"
    );
    let flag = std::env::temp_dir().join(format!("drill-maria-route-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let f = fault(json!({
        "name": "promote", "action": "promote", "irreversible": true,
        "target": {"sql": MARIA_REPLICA},
        "route_switch": {"exec": {"command": ["sh", "-c", format!(
            "mariadb -h 127.0.0.1 -P 3308 -udrill -pdrill -N -e 'SELECT @@global.read_only' > {}",
            flag.display()
        )]}}
    }));
    let prepared = prepare(&f, &a, Duration::from_secs(1))
        .await
        .expect("prepare");
    assert!(
        prepared.changes[0].contains("STOP REPLICA; RESET REPLICA ALL; SET GLOBAL read_only = OFF"),
        "{:?}",
        prepared.changes
    );
    assert_eq!(
        probe(&q("SELECT @@global.read_only"), &a)
            .await
            .expect("read_only"),
        1.0,
        "preflight changes nothing"
    );
    apply(&prepared.record).await.expect("promote");
    assert_eq!(
        probe(&q("SELECT @@global.read_only"), &a)
            .await
            .expect("read_only"),
        0.0
    );
    assert_eq!(
        probe(
            &q("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'"),
            &a
        )
        .await
        .expect("io"),
        0.0
    );
    assert_eq!(
        std::fs::read_to_string(&flag)
            .expect("the route switch ran")
            .trim(),
        "0",
        "the route switch ran after the promotion (the replica was writable)"
    );
    let _ = std::fs::remove_file(&flag);
    assert!(
        matches!(revert(&roundtrip(&prepared.record)).await.expect("revert"), Reverted::Permanent(s) if s.contains("rebuild a replica"))
    );
    assert!(
        matches!(
            prepare(&f, &a, Duration::from_secs(1)).await,
            Err(FaultError::Invalid { .. })
        ),
        "no longer a replica"
    );
    assert!(mariadb_script(), "the replica was re-attached");
}
