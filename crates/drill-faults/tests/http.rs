//! HTTP probes, webhook faults and Prometheus queries against the loopback fixture server.

mod common;

use std::time::Duration;

use common::{allow, fault, roundtrip};
use drill_faults::{FaultError, Reverted, apply, prepare, probe, revert};
use drill_fixture::{Behaviour, Server};
use serde_json::json;

fn p(v: serde_json::Value) -> drill_spec::model::Probe {
    serde_json::from_value(v).expect("probe")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_probes_read_a_json_pointer_or_the_latency_and_check_the_status() {
    let server = Server::start(Behaviour {
        delay: Duration::from_millis(30),
        ..Behaviour::default()
    })
    .await
    .expect("server");
    let a = allow(json!({"http": [server.addr.to_string()]}));
    assert_eq!(
        probe(
            &p(json!({"http": {"url": server.url("/"), "pointer": "/ok"}})),
            &a
        )
        .await
        .expect("pointer"),
        1.0
    );
    let latency = probe(
        &p(json!({"http": {"url": server.url("/"), "expect_status": 200}})),
        &a,
    )
    .await
    .expect("latency");
    assert!((30.0..1000.0).contains(&latency), "{latency} ms");
    server.set(Behaviour {
        fail_every: Some((1, 503)),
        ..Behaviour::default()
    });
    let e = probe(
        &p(json!({"http": {"url": server.url("/"), "expect_status": 200}})),
        &a,
    )
    .await
    .expect_err("503");
    assert!(e.to_string().contains("answered 503, expected 200"), "{e}");
    let e = probe(&p(json!({"http": {"url": "http://127.0.0.1:1/"}})), &a)
        .await
        .expect_err("outside");
    assert!(matches!(e, FaultError::NotAllowed(..)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_fault_calls_its_webhook_and_its_revert_calls_the_other() {
    let server = Server::start(Behaviour::default()).await.expect("server");
    let a = allow(json!({"http": [server.addr.to_string()]}));
    let f = fault(json!({
        "name": "pause-horizon", "action": "http",
        "http": {"inject": {"url": server.url("/hooks/pause"), "body": {"reason": "drill"}},
                 "revert": {"url": server.url("/hooks/continue")}}
    }));
    let prepared = prepare(&f, &a, Duration::from_secs(1))
        .await
        .expect("prepare");
    assert_eq!(server.requests(), 0, "preflight calls nothing");
    apply(&prepared.record).await.expect("inject");
    assert_eq!(server.seen().paths.get("/hooks/pause"), Some(&1));
    let record = roundtrip(&prepared.record);
    assert!(matches!(
        revert(&record).await.expect("revert"),
        Reverted::Restored(_)
    ));
    assert_eq!(server.seen().paths.get("/hooks/continue"), Some(&1));
    // A webhook that fails is an error with its status.
    server.set(Behaviour {
        fail_every: Some((1, 500)),
        ..Behaviour::default()
    });
    let e = revert(&record).await.expect_err("500");
    assert!(e.to_string().contains("answered 500"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_instant_queries_reduce_to_one_number() {
    let server = Server::start(Behaviour {
        prometheus: Some(1234.5),
        ..Behaviour::default()
    })
    .await
    .expect("server");
    let a = allow(json!({"http": [server.addr.to_string()]}));
    let q = p(json!({"prometheus": {"url": server.url(""), "query": "sum(horizon_jobs_pending)"}}));
    assert_eq!(probe(&q, &a).await.expect("query"), 1234.5);
    server.set(Behaviour {
        prometheus: None,
        ..Behaviour::default()
    });
    let e = probe(&q, &a).await.expect_err("no series");
    assert!(e.to_string().contains("returned no series"), "{e}");
}
