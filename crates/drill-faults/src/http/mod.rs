//! HTTP: probes (status, latency, a JSON-pointer value), calls (webhooks, as actions or as a
//! fault with its revert call) and Prometheus instant queries reduced to one number.
//! URLs here are absolute: the engine resolves paths against `target.base_url` first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use drill_spec::model::{Allow, HttpCall, HttpFault, HttpProbe, PrometheusProbe};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::{FaultError, Prepared, Reverted, allowed};

/// The calls of an HTTP fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub inject: HttpCall,
    pub revert: Option<HttpCall>,
}

/// The HTTP client every http fault, step and probe uses (rustls with ring, the web PKI
/// roots); also the CLI's client of the daemon (which follows no redirect: its calls carry a
/// token).
pub fn client(timeout: Duration) -> Result<reqwest::Client, FaultError> {
    client_with(timeout, reqwest::redirect::Policy::none())
}

/// The client of a call to a target: a `GET` follows a redirect (at most 10) only to a host
/// the allow-list (and the policy) covers, any other method none at all — a 307 must not
/// re-send a fault's `POST` somewhere the list does not name. A refused redirect is an error
/// that names it.
fn client_for(
    timeout: Duration,
    method: &reqwest::Method,
    allow: &Allow,
) -> Result<reqwest::Client, FaultError> {
    if method != reqwest::Method::GET {
        return client_with(timeout, reqwest::redirect::Policy::none());
    }
    let allow = allow.clone();
    client_with(
        timeout,
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error("more than 10 redirects");
            }
            let to = drill_spec::redact::url(attempt.url().as_str());
            match drill_spec::allow::http(&allow, attempt.url().as_str()) {
                Ok(()) => attempt.follow(),
                Err(r) => attempt.error(format!(
                    "redirected to {to}, which drill does not follow: {}",
                    r.message
                )),
            }
        }),
    )
}

fn client_with(
    timeout: Duration,
    redirect: reqwest::redirect::Policy,
) -> Result<reqwest::Client, FaultError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| FaultError::client("http", e))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .redirect(redirect)
        .build()
        .map_err(|e| FaultError::client("http", e))
}

fn absolute(url: &str) -> Result<(), FaultError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(FaultError::backend(
            "http",
            format!("\"{url}\" is relative: resolve it against target.base_url first"),
        ))
    }
}

/// Makes a call; returns its status, or an error when it is not the expected one.
pub async fn call(c: &HttpCall, allow: &Allow) -> Result<u16, FaultError> {
    absolute(&c.url)?;
    allowed(drill_spec::allow::http(allow, &c.url))?;
    let method = reqwest::Method::from_bytes(c.method.as_bytes())
        .map_err(|e| FaultError::client("http", e))?;
    let url = drill_spec::redact::url(&c.url);
    let mut req = client_for(c.timeout.0, &method, allow)?.request(method, &c.url);
    for (k, v) in &c.headers {
        req = req.header(k, v);
    }
    if let Some(b) = &c.body {
        req = req.json(b);
    }
    let resp = req.send().await.map_err(|e| {
        FaultError::backend("http", format!("{} {url}: {}", c.method, error_chain(&e)))
    })?;
    let status = resp.status().as_u16();
    if resp.status().is_redirection() && !c.expect_status.accepts(status) {
        let to = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map_or_else(|| "nowhere".to_owned(), drill_spec::redact::url);
        return Err(FaultError::backend(
            "http",
            format!(
                "{} {url} answered {status}, a redirect to {to}: drill follows no redirect of a {} (the call would be sent again elsewhere); call the final URL",
                c.method, c.method
            ),
        ));
    }
    if !c.expect_status.accepts(status) {
        return Err(FaultError::backend(
            "http",
            format!(
                "{} {url} answered {status}, expected {}",
                c.method, c.expect_status
            ),
        ));
    }
    Ok(status)
}

pub(crate) fn prepare(h: &HttpFault, allow: &Allow) -> Result<Prepared<Record>, FaultError> {
    for c in std::iter::once(&h.inject).chain(h.revert.iter()) {
        absolute(&c.url)?;
        allowed(drill_spec::allow::http(allow, &c.url))?;
    }
    let changes = vec![format!("{} {}", h.inject.method, h.inject.url)];
    Ok(Prepared {
        record: Record {
            inject: h.inject.clone(),
            revert: h.revert.clone(),
        },
        changes,
    })
}

/// The allow-list is checked at prepare; the record is trusted from there on, like the others.
fn allow_all(c: &HttpCall) -> Allow {
    let host = reqwest::Url::parse(&c.url).ok().and_then(|u| {
        u.host_str().map(|h| match u.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_owned(),
        })
    });
    Allow {
        http: host.into_iter().collect(),
        ..Allow::default()
    }
}

pub(crate) async fn apply(r: &Record) -> Result<(), FaultError> {
    call(&r.inject, &allow_all(&r.inject)).await.map(|_| ())
}

pub(crate) async fn revert(r: &Record) -> Result<Reverted, FaultError> {
    match &r.revert {
        None => Ok(Reverted::Permanent(format!(
            "called {} {} with no revert call",
            r.inject.method, r.inject.url
        ))),
        Some(c) => {
            let status = call(c, &allow_all(c)).await?;
            Ok(Reverted::Restored(vec![format!(
                "{} {} answered {status}",
                c.method, c.url
            )]))
        }
    }
}

/// A client error with its sources (reqwest says "error sending request" and keeps the
/// reason, a refused redirect among them, in its sources), URL passwords masked.
/// A Prometheus call's error, its URL and the error's text both redacted (a reqwest error's
/// text carries the URL).
fn prometheus_error(url: &reqwest::Url, e: &reqwest::Error) -> FaultError {
    FaultError::backend(
        "prometheus",
        format!(
            "{}: {}",
            drill_spec::redact::url(url.as_str()),
            error_chain(e)
        ),
    )
}

fn error_chain(e: &reqwest::Error) -> String {
    drill_spec::redact::text(&crate::contract::chain(e)).into_owned()
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An HTTP reading: the number at `pointer` in the JSON body, else the latency in ms.
pub(crate) async fn probe(p: &HttpProbe, allow: &Allow) -> Result<f64, FaultError> {
    absolute(&p.url)?;
    allowed(drill_spec::allow::http(allow, &p.url))?;
    let started = Instant::now();
    let resp = client_for(Duration::from_secs(10), &reqwest::Method::GET, allow)?
        .get(&p.url)
        .send()
        .await
        .map_err(|e| {
            FaultError::backend(
                "http",
                format!(
                    "GET {}: {}",
                    drill_spec::redact::url(&p.url),
                    error_chain(&e)
                ),
            )
        })?;
    let status = resp.status().as_u16();
    let body = resp
        .bytes()
        .await
        .map_err(|e| FaultError::client("http", e))?;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if !p.expect_status.is_empty() && !p.expect_status.accepts(status) {
        return Err(FaultError::backend(
            "http",
            format!(
                "GET {} answered {status}, expected {}",
                p.url, p.expect_status
            ),
        ));
    }
    let Some(pointer) = &p.pointer else {
        return Ok(latency_ms);
    };
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| FaultError::context("http", format!("GET {}: not JSON", p.url), e))?;
    v.pointer(pointer).and_then(number).ok_or_else(|| {
        FaultError::backend("http", format!("GET {}: no number at {pointer}", p.url))
    })
}

/// A Prometheus instant query; it must return exactly one series (or a scalar).
pub(crate) async fn prometheus(p: &PrometheusProbe, allow: &Allow) -> Result<f64, FaultError> {
    absolute(&p.url)?;
    allowed(drill_spec::allow::http(allow, &p.url))?;
    let mut url = reqwest::Url::parse(&format!("{}/api/v1/query", p.url.trim_end_matches('/')))
        .map_err(|e| FaultError::client("prometheus", e))?;
    url.query_pairs_mut().append_pair("query", &p.query);
    let resp = client_for(Duration::from_secs(10), &reqwest::Method::GET, allow)?
        .get(url.clone())
        .send()
        .await
        .map_err(|e| prometheus_error(&url, &e))?;
    let v: Value = resp.json().await.map_err(|e| prometheus_error(&url, &e))?;
    if v["status"] != "success" {
        return Err(FaultError::backend(
            "prometheus",
            format!("query failed: {}", v["error"]),
        ));
    }
    let data = &v["data"];
    let sample = match data["resultType"].as_str() {
        Some("scalar") => &data["result"],
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([one]) => &one["value"],
            Some([]) => {
                return Err(FaultError::backend(
                    "prometheus",
                    format!("{} returned no series", p.query),
                ));
            }
            Some(many) => {
                return Err(FaultError::backend(
                    "prometheus",
                    format!(
                        "{} returned {} series; aggregate it to one (sum, max, …)",
                        p.query,
                        many.len()
                    ),
                ));
            }
            None => return Err(FaultError::backend("prometheus", "malformed vector result")),
        },
        other => {
            return Err(FaultError::backend(
                "prometheus",
                format!("unsupported result type {other:?}"),
            ));
        }
    };
    number(&sample[1]).ok_or_else(|| {
        FaultError::backend(
            "prometheus",
            format!("{} returned a value that is not a number", p.query),
        )
    })
}
