//! The daemon's HTTP API (axum, JSON, under `/api/v1/`), every route behind a bearer token
//! but `/healthz` and `/readyz`. The role a route needs follows from its method: `GET` needs
//! `viewer`, `POST` `operator`, and `POST /halt` and `/resume` `admin`. 401 without a
//! valid token, 403 without the role. Bodies are limited to 64 KiB; a malformed one is a
//! 400 that says what is wrong, and changes nothing. `docs/api.md` lists the routes.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::posted::{Refused, posted};
use crate::runs::launch;
use crate::state::{Shared, dir_of};
use crate::tokens::Role;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": msg.into()}))).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/playbooks", get(playbooks))
        .route("/runs", get(runs).post(trigger))
        .route("/runs/{id}", get(one_run))
        .route("/runs/{id}/report", get(report))
        .route("/runs/{id}/events", get(events))
        .route("/runs/{id}/abort", post(abort))
        .route("/fires", get(fires))
        .route("/audit", get(audit))
        .route("/halt", get(halt_state).post(halt))
        .route("/resume", post(resume))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(crate::openapi::openapi()) }),
        )
        .route_layer(middleware::from_fn_with_state(shared.clone(), auth))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route; see docs/api.md") });
    let mut metrics = Router::new().route("/metrics", get(metrics));
    if !shared.metrics_open {
        metrics = metrics.route_layer(middleware::from_fn_with_state(shared.clone(), auth));
    }
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(metrics)
        .nest("/api/v1", api)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route; see docs/api.md") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(json_errors))
        .with_state(shared)
}

/// Every error is `{"error": …}`: the ones axum and its extractors answer by themselves (a
/// body over the limit, a method a route does not take, a malformed query) come as plain
/// text or empty; they are rewritten here with what they said.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
    let msg = match (status, text.is_empty()) {
        (StatusCode::METHOD_NOT_ALLOWED, _) => {
            let allow = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            format!("method not allowed here; this route takes {allow} (see docs/api.md)")
        }
        (StatusCode::PAYLOAD_TOO_LARGE, _) => {
            format!("the body is over the {} KiB limit", BODY_LIMIT / 1024)
        }
        (_, true) => reason,
        (_, false) => format!("{reason}: {text}"),
    };
    let mut r = error(status, msg);
    for (k, v) in &parts.headers {
        if k == header::ALLOW || k == header::WWW_AUTHENTICATE {
            r.headers_mut().insert(k.clone(), v.clone());
        }
    }
    r
}

/// A value from a request, cut for a message or an audit row: a 60 KB path must not be
/// echoed, nor stored 100 times.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut c: String = s.chars().take(max).collect();
        c.push('…');
        c
    }
}

/// The token of an `Authorization: Bearer TOKEN` header; the scheme's name is
/// case-insensitive (RFC 7235 §2.1), so `bearer` works too.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The role a request needs.
fn needs(method: &Method, path: &str) -> Role {
    if *method == Method::GET || *method == Method::HEAD {
        Role::Viewer
    } else if path.ends_with("/halt") || path.ends_with("/resume") {
        Role::Admin
    } else {
        Role::Operator
    }
}

async fn auth(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path().to_owned(), |u| u.path().to_owned());
    let Some(who) = bearer(&headers).and_then(|t| s.tokens.check(t)) else {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required (Authorization: Bearer TOKEN; `drill token add` makes one)",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        tracing::warn!(
            method = %req.method(),
            %path,
            status = 401,
            "api call without a valid token"
        );
        return r;
    };
    let need = needs(req.method(), &path);
    let method = req.method().clone();
    let mutating = method != Method::GET && method != Method::HEAD;
    let resp = if who.role < need {
        error(
            StatusCode::FORBIDDEN,
            format!(
                "{} is {}; {method} {path} needs {}",
                who.subject,
                who.role.as_str(),
                need.as_str()
            ),
        )
    } else {
        next.run(req).await
    };
    let status = resp.status().as_u16();
    if !mutating {
        tracing::debug!(subject = %who.subject, role = who.role.as_str(), %method, %path, status, "api call");
        return resp;
    }
    tracing::info!(subject = %who.subject, role = who.role.as_str(), %method, %path, status, "api call");
    let record = drill_engine::fires::Audit {
        at_ms: drill_engine::store::now_ms(),
        subject: who.subject.clone(),
        role: who.role.as_str().into(),
        method: method.to_string(),
        path: cut(&path, 256),
        status: i64::from(status),
        detail: resp.extensions().get::<Detail>().map(|d| d.0.clone()),
    };
    if let Err(e) = s.store.audit(&record).await {
        (s.log)(&format!("daemon: api: cannot record the audit: {e}"));
    }
    resp
}

/// What a mutating call did, for its audit record (set by the handler on its response).
#[derive(Debug, Clone)]
struct Detail(String);

fn with_detail(mut r: Response, d: String) -> Response {
    r.extensions_mut().insert(Detail(d));
    r
}

async fn audit(State(s): State<Arc<Shared>>, Query(q): Query<Limit>) -> Response {
    match s
        .store
        .audits(q.limit.unwrap_or(100).clamp(1, 10_000))
        .await
    {
        Ok(a) => axum::Json(json!({"audit": a})).into_response(),
        Err(e) => internal(e),
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    match s.store.halted().await {
        Ok(_) => "ready\n".into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store does not answer: {e}"),
        ),
    }
}

async fn playbooks(State(s): State<Arc<Shared>>) -> Response {
    let (good, bad) = match s.loaded.lock() {
        Ok(l) => (l.good.clone(), l.errors.clone()),
        Err(_) => return internal("the playbook list is poisoned"),
    };
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for (file, vp) in &good {
        let name = &vp.playbook.metadata.name;
        let last = s
            .store
            .fires(Some(name), 1)
            .await
            .ok()
            .and_then(|f| f.into_iter().next());
        out.push(json!({
            "name": name,
            "file": file,
            "schedule": vp.playbook.schedule,
            "next_fire": vp.schedule.as_ref().and_then(|c| c.after(&now).next()).map(|t| t.to_rfc3339()),
            "last_fire": last,
            "errors": bad.get(file).cloned().unwrap_or_default(),
        }));
    }
    for (file, errs) in bad.iter().filter(|(f, _)| !good.contains_key(*f)) {
        out.push(json!({"name": null, "file": file, "errors": errs}));
    }
    axum::Json(json!({"playbooks": out})).into_response()
}

#[derive(Debug, Deserialize)]
struct Limit {
    limit: Option<i64>,
    playbook: Option<String>,
}

async fn runs(State(s): State<Arc<Shared>>, Query(q): Query<Limit>) -> Response {
    match s.store.runs(q.limit.unwrap_or(50).clamp(1, 1000)).await {
        Ok(r) => axum::Json(json!({"runs": r})).into_response(),
        Err(e) => internal(e),
    }
}

async fn fires(State(s): State<Arc<Shared>>, Query(q): Query<Limit>) -> Response {
    match s
        .store
        .fires(
            q.playbook.as_deref(),
            q.limit.unwrap_or(100).clamp(1, 10_000),
        )
        .await
    {
        Ok(f) => axum::Json(json!({"fires": f})).into_response(),
        Err(e) => internal(e),
    }
}

async fn one_run(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let row = match s.store.run(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no run {}", cut(&id, 64))),
        Err(e) => return internal(e),
    };
    let live = s
        .runs
        .lock()
        .ok()
        .and_then(|r| {
            r.get(&row.id)
                .map(|x| serde_json::to_value(&*x.status.borrow()).ok())
        })
        .flatten();
    axum::Json(json!({"run": row, "live": live})).into_response()
}

#[derive(Debug, Deserialize)]
struct Format {
    format: Option<String>,
}

async fn report(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(f): Query<Format>,
) -> Response {
    let format = f.format.unwrap_or_else(|| "json".into());
    let (kind, stored) = match format.as_str() {
        "json" => ("application/json", "json"),
        "md" | "markdown" => ("text/markdown; charset=utf-8", "markdown"),
        "junit" => ("application/xml", "junit"),
        // Drawn from the stored JSON, as `drill report --format html` does.
        "html" => ("text/html; charset=utf-8", "json"),
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "format \"{}\" is not one of json, md, junit, html",
                    cut(other, 32)
                ),
            );
        }
    };
    let id = match s.store.run(&id).await {
        Ok(Some(r)) => r.id,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no run {}", cut(&id, 64))),
        Err(e) => return internal(e),
    };
    match s.store.report(&id, stored).await {
        Ok(Some(text)) if format == "html" => match drill_report::parse(&text) {
            Ok(v) => {
                let mut r = (
                    [(header::CONTENT_TYPE, kind)],
                    drill_report::html::render(&v),
                )
                    .into_response();
                // The page is drill's own and self-contained: nothing may load from elsewhere.
                r.headers_mut().insert(
                    header::CONTENT_SECURITY_POLICY,
                    header::HeaderValue::from_static(
                        "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                    ),
                );
                r
            }
            Err(e) => internal(format!("the stored report is not JSON: {e}")),
        },
        Ok(Some(text)) => ([(header::CONTENT_TYPE, kind)], text).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("run {id} has no {format} report"),
        ),
        Err(e) => internal(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trigger {
    /// A loaded playbook's name…
    #[serde(default)]
    playbook: Option<String>,
    /// …or a playbook's YAML, validated here with the daemon's drills.
    #[serde(default)]
    yaml: Option<String>,
    /// The values of a posted playbook's `${NAME}`s (the daemon's environment is not read,
    /// but for the names its policy exposes).
    #[serde(default)]
    params: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    time_scale: Option<f64>,
    #[serde(default)]
    dry_run: bool,
}

/// The most `params` a request may carry, and the longest value.
const MAX_PARAMS: usize = 64;
const MAX_PARAM_BYTES: usize = 4096;

fn check_params(p: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    if p.len() > MAX_PARAMS {
        return Err(format!("{} params: at most {MAX_PARAMS}", p.len()));
    }
    for (k, v) in p {
        let ok = !k.is_empty()
            && k.len() <= 64
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with(|c: char| c.is_ascii_digit());
        if !ok {
            return Err("a param's name is letters, digits and _, not starting with a digit, at most 64 characters (like BASE_URL)".into());
        }
        if v.len() > MAX_PARAM_BYTES {
            return Err(format!(
                "param {k} is {} bytes: at most {MAX_PARAM_BYTES}",
                v.len()
            ));
        }
    }
    Ok(())
}

async fn trigger(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let t: Trigger = match serde_json::from_slice(&body) {
        Ok(t) => t,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body is not a run request: {e}; send {{\"playbook\": NAME, \"time_scale\": F, \"dry_run\": BOOL}}"
                ),
            );
        }
    };
    if let Err(e) = check_params(&t.params) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    if t.playbook.is_some() && !t.params.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "params fill a posted playbook's ${NAME}s; a loaded playbook was interpolated when it was loaded",
        );
    }
    let scale = t.time_scale.unwrap_or(s.opts.time_scale);
    if !(scale.is_finite() && scale > 0.0 && scale <= 100.0) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("time_scale must be above 0 and at most 100, found {scale}"),
        );
    }
    match s.store.halted().await {
        Ok(Some(h)) => {
            return error(
                StatusCode::CONFLICT,
                format!(
                    "halted by {}: {}; POST /api/v1/resume first",
                    h.by, h.reason
                ),
            );
        }
        Ok(None) => {}
        Err(e) => return internal(e),
    }
    let (file, vp) = match (&t.playbook, &t.yaml) {
        (Some(name), None) => {
            let found = s.loaded.lock().ok().and_then(|l| l.get(name));
            let Some(found) = found else {
                return error(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no valid playbook named {name} is loaded (GET /api/v1/playbooks lists them)"
                    ),
                );
            };
            found
        }
        (None, Some(text)) => match posted(&s, text, &t.params) {
            Ok(found) => found,
            Err(refused) => {
                let hash = sha256_hex(text.as_bytes());
                let (status, what, errors) = match refused {
                    Refused::Invalid(e) => (
                        StatusCode::BAD_REQUEST,
                        "the playbook is invalid; nothing was run",
                        e,
                    ),
                    Refused::Policy(e) => (
                        StatusCode::FORBIDDEN,
                        "the playbook is outside this daemon's policy; nothing was run",
                        e,
                    ),
                };
                let detail = format!(
                    "posted playbook sha256 {hash} refused: {}",
                    audit_summary(&errors)
                );
                return with_detail(
                    (status, axum::Json(json!({"error": what, "errors": errors}))).into_response(),
                    detail,
                );
            }
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "send either playbook (a loaded playbook's name) or yaml (a playbook's text)",
            );
        }
    };
    let mut opts = s.opts.clone();
    opts.time_scale = scale;
    opts.dry_run = t.dry_run;
    if t.dry_run {
        let dir = dir_of(&file);
        let out = drill_engine::start(s.store.clone(), vp, dir, opts)
            .wait()
            .await;
        return match out {
            Ok(o) => axum::Json(
                json!({"dry_run": true, "status": o.status.as_str(), "report": o.dry_run}),
            )
            .into_response(),
            Err(e) => internal(drill_engine::chain(&e)),
        };
    }
    // The text that runs, hashed for the audit: the posted one, or the file's (read off the
    // async loop).
    let text = match &t.yaml {
        Some(y) => y.clone(),
        None => tokio::fs::read_to_string(&file).await.unwrap_or_default(),
    };
    let detail = format!(
        "playbook {} sha256 {}",
        vp.playbook.metadata.name,
        sha256_hex(text.as_bytes())
    );
    let (id, task) = launch(s.clone(), file, vp, opts, None).await;
    s.tracker.spawn(task);
    let r = match &id {
        Some(id) => (StatusCode::ACCEPTED, axum::Json(json!({"run": id}))).into_response(),
        None => internal("the run ended before it was recorded; see the daemon's log"),
    };
    with_detail(r, format!("{detail} run {}", id.as_deref().unwrap_or("-")))
}

/// The errors of a refused playbook, bounded for its audit row: the count, and the first
/// few (each cut at 300 characters).
fn audit_summary(errors: &[String]) -> String {
    let first: Vec<String> = errors
        .iter()
        .take(5)
        .map(|e| e.chars().take(300).collect())
        .collect();
    let more = errors.len().saturating_sub(first.len());
    format!(
        "{} error(s): {}{}",
        errors.len(),
        first.join(" | "),
        if more > 0 {
            format!(" | … {more} more")
        } else {
            String::new()
        }
    )
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A run's live status as server-sent events (`status` about twice a second, then one
/// `end` with the run's row), for a browser or `curl -N`.
async fn events(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let row = match s.store.run(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no run {}", cut(&id, 64))),
        Err(e) => return internal(e),
    };
    let status = s
        .runs
        .lock()
        .ok()
        .and_then(|r| r.get(&row.id).map(|x| x.status.clone()));
    let store = s.store.clone();
    let id = row.id.clone();
    let stream = futures_util::stream::unfold(
        (status, store, id, false),
        |(mut status, store, id, ended)| async move {
            if ended {
                return None;
            }
            if let Some(rx) = &mut status
                && rx.changed().await.is_ok()
            {
                let ev = Event::default()
                    .event("status")
                    .json_data(&*rx.borrow())
                    .unwrap_or_default();
                return Some((
                    Ok::<_, std::convert::Infallible>(ev),
                    (status, store, id, false),
                ));
            }
            // The run is over (or was never ours): its row, as stored.
            let row = store.run(&id).await.ok().flatten();
            let ev = Event::default()
                .event("end")
                .json_data(&row)
                .unwrap_or_default();
            Some((Ok(ev), (None, store, id, true)))
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn abort(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let a = s
        .runs
        .lock()
        .ok()
        .and_then(|r| r.get(&id).map(|x| x.abort.clone()));
    match a {
        Some(a) => {
            a.trigger("aborted through the API");
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({"run": id, "aborting": true})),
            )
                .into_response()
        }
        // Another daemon's run (behind one Service, the call may reach any replica): asked
        // through the store; its owner aborts it at its next lease renewal.
        None => {
            let by = drill_engine::owner::Owner::me().to_string();
            match s
                .store
                .request_abort(&id, "aborted through the API", &by)
                .await
            {
                Ok(true) => (
                    StatusCode::ACCEPTED,
                    axum::Json(json!({"run": id, "aborting": true, "through": "store"})),
                )
                    .into_response(),
                Ok(false) => error(
                    StatusCode::NOT_FOUND,
                    format!("run {id} is not running (no daemon on this store runs it)"),
                ),
                Err(e) => internal(e),
            }
        }
    }
}

async fn halt_state(State(s): State<Arc<Shared>>) -> Response {
    match s.store.halted().await {
        Ok(h) => axum::Json(json!({"halt": h})).into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HaltBody {
    reason: String,
}

async fn halt(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let h = match serde_json::from_slice::<HaltBody>(&body) {
        Ok(h) if !h.reason.trim().is_empty() => h,
        Ok(_) => return error(StatusCode::BAD_REQUEST, "reason must say why"),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not a halt: {e}; send {{\"reason\": TEXT}}"),
            );
        }
    };
    let by = bearer(&headers)
        .and_then(|t| s.tokens.check(t))
        .map_or_else(|| "api".to_owned(), |w| w.subject);
    match s.store.halt(&h.reason, &by).await {
        Ok(now) => {
            s.halt_now.notify_one();
            with_detail(
                axum::Json(json!({"halt": now})).into_response(),
                format!("halt: {}", h.reason),
            )
        }
        Err(e) => internal(e),
    }
}

async fn resume(State(s): State<Arc<Shared>>) -> Response {
    match s.store.resume().await {
        Ok(was) => {
            s.halt_now.notify_one();
            axum::Json(json!({"resumed": was})).into_response()
        }
        Err(e) => internal(e),
    }
}
