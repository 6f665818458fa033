//! drill-fixture: a small HTTP server for tests, bound to 127.0.0.1 on a free port.
//!
//! What it is: a target (HTTP/1.1 and HTTP/2, plain or TLS with a fresh self-signed
//! certificate) whose behaviour a test sets and whose view a test reads — injected
//! latency (precise to microseconds), a freeze
//! (every request waits until it ends), a status every Nth request, cursor-paginated JSON,
//! an `X-Request-Id` on every response, and counts of what it received (requests, bearer
//! tokens, cursors). What it is not: the reference target of the drills (that one has a
//! database, a cache and workers).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

/// What the server does; tests change it while it runs.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Every response waits this long.
    pub delay: Duration,
    /// Every `n`th request (1-based) answers with this status.
    pub fail_every: Option<(u64, u16)>,
    /// Pages of cursor pagination served on paths containing `/activity`.
    pub pages: u32,
    /// The value a Prometheus instant query at `/api/v1/query` returns (one series).
    pub prometheus: Option<f64>,
}

#[derive(Debug, Default)]
struct State {
    behaviour: Mutex<Behaviour>,
    frozen_until: Mutex<Option<Instant>>,
    requests: AtomicU64,
    seen: Mutex<Seen>,
}

/// What the server saw.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Requests per bearer token.
    pub tokens: BTreeMap<String, u64>,
    /// Requests per cursor value (`""` for first pages).
    pub cursors: BTreeMap<String, u64>,
    /// Requests per path, query excluded.
    pub paths: BTreeMap<String, u64>,
    /// Requests per HTTP version (`HTTP/1.1`, `HTTP/2.0`).
    pub versions: BTreeMap<String, u64>,
}

/// A running fixture server. Dropping it stops it.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Starts a server on 127.0.0.1 with a free port, on the current runtime. It speaks
    /// HTTP/1.1 and HTTP/2 (prior knowledge).
    pub async fn start(behaviour: Behaviour) -> std::io::Result<Self> {
        Self::serve(behaviour, None).await
    }

    /// Starts an HTTPS server (HTTP/1.1 and HTTP/2 by ALPN) with a fresh self-signed
    /// certificate for `localhost` and 127.0.0.1; returns the certificate as PEM, to trust.
    pub async fn start_tls(behaviour: Behaviour) -> std::io::Result<(Self, String)> {
        let other = |e: String| std::io::Error::other(e);
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .map_err(|e| other(e.to_string()))?;
        let pem = ck.cert.pem();
        let cert = ck.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der())
            .map_err(|e| other(e.to_string()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| other(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| other(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let server = Self::serve(
            behaviour,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
        .await?;
        Ok((server, pem))
    }

    async fn serve(
        behaviour: Behaviour,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            behaviour: Mutex::new(behaviour),
            ..State::default()
        });
        let s = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let s = s.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(s.clone(), req));
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                            }
                        }
                    }
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    pub fn seen(&self) -> Seen {
        self.state
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    pub fn set(&self, b: Behaviour) {
        if let Ok(mut g) = self.state.behaviour.lock() {
            *g = b;
        }
    }

    /// Every request, including those in progress, waits until `d` from now.
    pub fn freeze(&self, d: Duration) {
        if let Ok(mut g) = self.state.frozen_until.lock() {
            *g = Some(Instant::now() + d);
        }
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let n = state.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let b = state
        .behaviour
        .lock()
        .map(|b| b.clone())
        .unwrap_or_default();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let cursor = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("cursor="))
        .unwrap_or("")
        .to_owned();
    if let Ok(mut seen) = state.seen.lock() {
        if let Some(t) = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            *seen.tokens.entry(t.to_owned()).or_default() += 1;
        }
        *seen.cursors.entry(cursor.clone()).or_default() += 1;
        *seen.paths.entry(path.clone()).or_default() += 1;
        *seen
            .versions
            .entry(format!("{:?}", req.version()))
            .or_default() += 1;
    }
    let frozen = state.frozen_until.lock().ok().and_then(|g| *g);
    if let Some(until) = frozen {
        let now = Instant::now();
        if until > now {
            tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
        }
    }
    if !b.delay.is_zero() {
        // tokio's timer rounds up to the millisecond: sleep most of the delay on it, then the
        // rest on a blocking thread, whose sleep is precise to tens of microseconds. (Spinning
        // instead would take a runtime worker from the client under test.)
        let until = started + b.delay;
        if let Some(coarse) = b.delay.checked_sub(Duration::from_millis(2)) {
            tokio::time::sleep_until(tokio::time::Instant::from_std(started + coarse)).await;
        }
        let rest = until.saturating_duration_since(Instant::now());
        if !rest.is_zero() {
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
        }
    }
    let status = match b.fail_every {
        Some((every, status)) if every > 0 && n.is_multiple_of(every) => status,
        _ => 200,
    };
    let body = if path == "/api/v1/query" {
        let query = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("query="))
            .unwrap_or("")
            .to_owned();
        let result = match b.prometheus {
            Some(v) => {
                serde_json::json!([{"metric": {"__name__": query}, "value": [1_700_000_000.0, v.to_string()]}])
            }
            None => serde_json::json!([]),
        };
        serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result}})
            .to_string()
    } else if path.contains("/activity") && b.pages > 0 {
        let page: u32 = cursor
            .strip_prefix("p")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let next = if page + 1 < b.pages {
            serde_json::json!(format!("p{}", page + 1))
        } else {
            serde_json::Value::Null
        };
        serde_json::json!({"data": [{"id": page}], "meta": {"next_cursor": next}}).to_string()
    } else {
        r#"{"ok":true}"#.to_string()
    };
    let resp = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-request-id", format!("req-{n}"))
        .body(Full::new(Bytes::from(body)));
    Ok(resp.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}
