//! The traffic generator against a real HTTP server on loopback (drill-fixture), with
//! controlled latency, freezes and errors. Every load here is bounded in rate and time.

use std::time::Duration;

use drill_fixture::{Behaviour, Server};
use drill_load::{AdHoc, Report, Run, Stop};

fn ad_hoc(url: String, rate: f64, secs: f64) -> AdHoc {
    AdHoc {
        url,
        method: http::Method::GET,
        headers: Vec::new(),
        body: None,
        rate: Some(rate),
        connections: None,
        duration: Duration::from_secs_f64(secs),
        max_in_flight: None,
        workers: None,
        timeout: Duration::from_secs(10),
        http: drill_spec::model::HttpVersion::Http1,
        insecure: false,
        late_tolerance: drill_load::DEFAULT_LATE_TOLERANCE,
    }
}

async fn run(a: &AdHoc) -> Report {
    Run::ad_hoc(a)
        .expect("valid load")
        .execute(Stop::default())
        .await
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn rate_is_achieved(rate: f64) {
    rate_is_achieved_by(rate, None).await;
}

async fn rate_is_achieved_by(rate: f64, workers: Option<usize>) {
    let server = Server::start(Behaviour::default()).await.expect("server");
    let mut a = ad_hoc(server.url("/"), rate, 10.0);
    a.workers = workers;
    let r = run(&a).await;
    let expected = rate * 10.0;
    let got = server.requests() as f64;
    eprintln!(
        "{rate}/s: server counted {got} of {expected}, dropped {}, p99 {:.2} ms",
        r.dropped(),
        ms(r.measurements.overall.latency_at(99.0))
    );
    // Behaviour, not speed: the schedule is exact, and what the server counts is the rate
    // within a bound a shared 2-core machine always meets. The tight figures (±1%, 0 dropped)
    // are the benchmark's (tests/bench/load_bench.py, docs/PERFORMANCE.md).
    assert_eq!(r.measurements.counters.scheduled, expected as u64);
    assert!(
        (got - expected).abs() / expected <= 0.05,
        "server counted {got}, expected {expected} ±5%"
    );
    assert!(
        r.dropped() as f64 <= expected * 0.01,
        "{} of {expected} arrivals dropped",
        r.dropped()
    );
    assert!(
        got as u64 + r.dropped() <= expected as u64,
        "the server saw {got} requests and {} were dropped, of {expected} scheduled: an arrival was sent twice",
        r.dropped()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_requests_per_second_are_scheduled_exactly_and_achieved() {
    rate_is_achieved(10.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_requests_per_second_are_scheduled_exactly_and_achieved() {
    rate_is_achieved(500.0).await;
}

/// Three workers stripe one schedule (arrivals `w, w+3, w+6, …`): every arrival is sent
/// once, by one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_one_schedule_and_send_every_arrival_once() {
    rate_is_achieved_by(3000.0, Some(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_requests_per_second_are_scheduled_exactly_and_achieved() {
    rate_is_achieved(5000.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentiles_follow_the_injected_latency_and_never_undercut_it() {
    const INJECTED: f64 = 100.0;
    let server = Server::start(Behaviour {
        delay: Duration::from_millis(INJECTED as u64),
        ..Behaviour::default()
    })
    .await
    .expect("server");
    // 1,000 samples: p99 is the 10th slowest, not a single scheduling hiccup.
    let r = run(&ad_hoc(server.url("/"), 200.0, 5.0)).await;
    let o = &r.measurements.overall;
    // Behaviour: the percentiles sit on the injected 100 ms, and nothing is ever below it.
    // The bounds are what a shared, busy 2-core CI machine adds (seen: p95 +6.4 ms there over
    // an injected 20 ms, +0.7 ms on a quiet machine); the injected latency is large beside that
    // noise so the test judges drill, not the machine. Tight figures are the benchmark's.
    for (q, bound) in [(50.0, 15.0), (90.0, 20.0), (95.0, 20.0), (99.0, 40.0)] {
        let got = ms(o.latency_at(q));
        eprintln!("p{q}: {got:.3} ms");
        assert!(
            (INJECTED..=INJECTED + bound).contains(&got),
            "p{q} = {got:.3} ms, injected {INJECTED} ms, allowed up to +{bound} ms"
        );
    }
    // The histogram keeps 3 significant figures: near 100 ms a bucket is 64 µs wide and the
    // minimum reads as its bucket's lowest value.
    assert!(
        ms(o.latency_min()) >= INJECTED - 0.064,
        "nothing can be faster than the injected latency: min {:.3} ms",
        ms(o.latency_min())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_second_freeze_at_120_per_second_shows_as_the_open_model_predicts() {
    let server = std::sync::Arc::new(Server::start(Behaviour::default()).await.expect("server"));
    let s = server.clone();
    // Freeze the server for 2 s, 4 s into a 10 s run: requests arriving in the freeze wait for
    // its end, so their latency is spread evenly over 0–2 s. They are 20% of the traffic.
    let freezer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(4)).await;
        s.freeze(Duration::from_secs(2));
    });
    let r = run(&ad_hoc(server.url("/"), 120.0, 10.0)).await;
    let _ = freezer.await;
    let o = &r.measurements.overall;
    let (p90, p95, p99) = (
        o.latency_at(90.0).as_secs_f64(),
        o.latency_at(95.0).as_secs_f64(),
        o.latency_at(99.0).as_secs_f64(),
    );
    eprintln!(
        "p90 {p90:.3}s p95 {p95:.3}s p99 {p99:.3}s, dropped {}",
        r.dropped()
    );
    assert!((p90 - 1.0).abs() <= 0.1, "p90 {p90}");
    assert!((p95 - 1.5).abs() <= 0.15, "p95 {p95}");
    assert!((p99 - 1.9).abs() <= 0.19, "p99 {p99}");
    assert_eq!(
        r.dropped(),
        0,
        "the default in-flight cap holds a 2 s freeze at 120/s"
    );
    // Service time hides the freeze's queueing only when the client waits; in an open model
    // requests are sent on time, so service time sees the freeze too.
    assert!(o.service.max() >= 1_900_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_beyond_the_client_is_reported_as_dropped() {
    let server = Server::start(Behaviour::default()).await.expect("server");
    let mut a = ad_hoc(server.url("/"), 2_000_000.0, 0.5);
    a.max_in_flight = Some(64);
    let r = run(&a).await;
    let c = r.measurements.counters;
    eprintln!(
        "scheduled {} sent {} dropped {} (cap {}, late {})",
        c.scheduled,
        c.sent,
        c.dropped(),
        c.dropped_cap,
        c.dropped_late
    );
    assert!(r.dropped() > 0);
    assert_eq!(
        c.scheduled,
        c.sent + c.dropped(),
        "every arrival is either sent or counted as dropped"
    );
    assert_eq!(
        r.k6_summary()["metrics"]["dropped_iterations"]["count"],
        c.dropped()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_in_flight_cap_drops_arrivals_instead_of_delaying_them() {
    let server = Server::start(Behaviour {
        delay: Duration::from_millis(200),
        ..Behaviour::default()
    })
    .await
    .expect("server");
    let mut a = ad_hoc(server.url("/"), 100.0, 2.0);
    a.max_in_flight = Some(5);
    let r = run(&a).await;
    let c = r.measurements.counters;
    // 5 in flight, each 200 ms: 25/s can start; the other ~75/s are dropped at the cap.
    assert!(c.dropped_cap >= 120 && c.dropped_cap <= 160, "{c:?}");
    assert_eq!(c.dropped_late, 0);
    assert!(c.in_flight_peak <= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_429_and_5xx_count_as_failed_and_keep_their_request_id() {
    for status in [429u16, 503] {
        let server = Server::start(Behaviour {
            fail_every: Some((4, status)),
            ..Behaviour::default()
        })
        .await
        .expect("server");
        let r = run(&ad_hoc(server.url("/"), 100.0, 2.0)).await;
        let o = &r.measurements.overall;
        assert_eq!(o.requests, 200);
        assert_eq!(o.failed, 50, "every 4th of 200 requests answered {status}");
        let class = if status == 429 { "429" } else { "5xx" };
        assert_eq!(o.by_class.get(class), Some(&50), "{:?}", o.by_class);
        let f = &r.measurements.failures[0];
        assert_eq!(f.status, Some(status));
        let id = f.request_id.as_deref().expect("X-Request-Id captured");
        assert!(id.starts_with("req-"), "{id}");
        let k6 = r.k6_summary();
        assert_eq!(k6["metrics"]["http_req_failed"]["passes"], 50);
        assert_eq!(k6["metrics"]["http_req_failed"]["fails"], 150);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_connect_error() {
    // Bind and drop a listener: the port is then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let r = run(&ad_hoc(format!("http://127.0.0.1:{port}/"), 20.0, 0.5)).await;
    assert_eq!(r.measurements.overall.failed, 10);
    assert_eq!(r.measurements.overall.by_class.get("connect"), Some(&10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_keeps_its_connections_busy() {
    let server = Server::start(Behaviour::default()).await.expect("server");
    let mut a = ad_hoc(server.url("/"), 0.0, 1.0);
    a.rate = None;
    a.connections = Some(4);
    let r = run(&a).await;
    assert!(
        r.measurements.overall.requests > 100,
        "{}",
        r.measurements.overall.requests
    );
    assert_eq!(r.measurements.overall.requests, server.requests());
    assert_eq!(r.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_by_prior_knowledge_multiplexes_one_connection() {
    let server = Server::start(Behaviour::default()).await.expect("server");
    let mut a = ad_hoc(server.url("/"), 100.0, 1.0);
    a.http = drill_spec::model::HttpVersion::Http2;
    let r = run(&a).await;
    assert_eq!(r.measurements.overall.failed, 0);
    assert_eq!(
        server.seen().versions.get("HTTP/2.0"),
        Some(&100),
        "{:?}",
        server.seen().versions
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_trusts_a_ca_file_or_skips_verification_and_refuses_otherwise() {
    let (server, pem) = Server::start_tls(Behaviour::default())
        .await
        .expect("tls server");
    let url = format!("https://localhost:{}/", server.addr.port());
    let dir = std::env::temp_dir().join(format!("drill-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pem).expect("write ca");

    // Unknown issuer: every request fails to connect.
    let r = run(&ad_hoc(url.clone(), 20.0, 0.5)).await;
    assert_eq!(
        r.measurements.overall.by_class.get("connect"),
        Some(&10),
        "{:?}",
        r.measurements.overall.by_class
    );

    // Skipping verification (staging only) works, and ALPN picks HTTP/2.
    let mut a = ad_hoc(url.clone(), 20.0, 0.5);
    a.insecure = true;
    a.http = drill_spec::model::HttpVersion::Auto;
    let r = run(&a).await;
    assert_eq!(r.measurements.overall.failed, 0);
    assert_eq!(server.seen().versions.get("HTTP/2.0"), Some(&10));

    // Trusting the CA file works too (through a playbook's traffic.tls).
    let yaml = format!(
        "apiVersion: drill/v1\nkind: Playbook\nmetadata: {{name: t}}\ntarget:\n  base_url: {url}\n  allow: {{http: [localhost]}}\ntraffic:\n  requests: [{{name: home, path: /}}]\n  profile: [{{rate: 20/s, hold: 500ms}}]\n  http: http1\n  tls: {{ca_file: {}}}\n",
        ca.display()
    );
    let env: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut loader = drill_spec::Loader::new(&env);
    loader.add("t.yaml", &yaml, true);
    let out = loader.finish();
    assert!(!out.has_errors(), "{:?}", out.diags);
    let r = Run::from_playbook(&out.playbooks[0].playbook, &dir, 1.0)
        .expect("run")
        .execute(Stop::default())
        .await;
    assert_eq!(r.measurements.overall.failed, 0);
    assert_eq!(server.seen().versions.get("HTTP/1.1"), Some(&10));
}
