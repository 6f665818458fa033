//! Requests from a playbook's traffic section: templates filled from dataset records (which
//! rotate, and with them the bearer tokens), a weighted mix, cursor pagination and body checks.

use bytes::Bytes;
use drill_spec::model::{BodyCheck, Follow, RequestSpec};
use http_body_util::Full;
use serde_json::Value;

/// Errors preparing requests.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("cannot read dataset {path}: {source}")]
    DatasetRead {
        path: String,
        source: std::io::Error,
    },
    #[error("dataset {path} is not JSON: {source}")]
    DatasetJson {
        path: String,
        source: serde_json::Error,
    },
    #[error(
        "dataset {path} holds no records: expected an array of objects, or an object with one under \"tokens\", \"credentials\", \"records\" or \"data\""
    )]
    DatasetEmpty { path: String },
    #[error(
        "request \"{request}\" uses {{{field}}}, which the dataset's records do not have (they have: {have})"
    )]
    MissingField {
        request: String,
        field: String,
        have: String,
    },
    #[error("request \"{request}\" uses {{{field}}} but there is no dataset")]
    NoDataset { request: String, field: String },
    #[error("request \"{request}\" has an invalid {what}: {detail}")]
    Invalid {
        request: String,
        what: &'static str,
        detail: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Var(String),
}

/// A `{field}` template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Part>);

impl Template {
    pub fn parse(s: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(i) = rest.find('{') {
            let after = &rest[i + 1..];
            match after.find('}') {
                Some(j)
                    if !after[..j].is_empty()
                        && after[..j]
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    if i > 0 {
                        parts.push(Part::Lit(rest[..i].to_owned()));
                    }
                    parts.push(Part::Var(after[..j].to_owned()));
                    rest = &after[j + 1..];
                }
                _ => {
                    parts.push(Part::Lit(rest[..=i].to_owned()));
                    rest = after;
                }
            }
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        Template(parts)
    }

    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Lit(_) => None,
        })
    }

    pub fn fill(&self, record: Option<&serde_json::Map<String, Value>>) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => match record.and_then(|r| r.get(v)) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(other) => out.push_str(&other.to_string()),
                    None => {}
                },
            }
        }
        out
    }
}

/// A request ready to be sent many times.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub name: String,
    pub method: http::Method,
    pub path: Template,
    pub headers: Vec<(http::HeaderName, Template)>,
    pub bearer: Option<Template>,
    pub body: Option<Template>,
    pub follow: Option<Follow>,
    pub expect: Option<BodyCheck>,
}

/// The traffic's requests, their mix and the dataset.
#[derive(Debug, Clone)]
pub struct Mix {
    pub requests: Vec<Prepared>,
    /// One full cycle of the weighted mix; arrival `k` uses `cycle[k % len]`.
    cycle: Vec<usize>,
    records: Vec<serde_json::Map<String, Value>>,
    authority: String,
}

/// Reads a dataset file: an array of objects, or an object holding one.
pub fn load_dataset(path: &str) -> Result<Vec<serde_json::Map<String, Value>>, RequestError> {
    let text = std::fs::read_to_string(path).map_err(|source| RequestError::DatasetRead {
        path: path.into(),
        source,
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|source| RequestError::DatasetJson {
        path: path.into(),
        source,
    })?;
    let arr = match &v {
        Value::Array(a) => Some(a.clone()),
        Value::Object(o) => ["tokens", "credentials", "records", "data"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_array).cloned()),
        _ => None,
    };
    let records: Vec<_> = arr
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| match r {
            Value::Object(o) => Some(o),
            _ => None,
        })
        .collect();
    if records.is_empty() {
        return Err(RequestError::DatasetEmpty { path: path.into() });
    }
    Ok(records)
}

/// Smooth weighted round-robin: the heaviest request is spread out, not bunched.
fn weighted_cycle(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut cycle = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(weights) {
            *c += i64::from(*w);
        }
        let Some((best, _)) = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
        else {
            break;
        };
        current[best] -= total;
        cycle.push(best);
    }
    cycle
}

impl Mix {
    /// Prepares `specs`; `records` come from the dataset, if any. Every `{field}` must exist in
    /// the records.
    pub fn new(
        specs: &[RequestSpec],
        records: Vec<serde_json::Map<String, Value>>,
        authority: String,
    ) -> Result<Self, RequestError> {
        let mut requests = Vec::new();
        for s in specs {
            let invalid = |what: &'static str, detail: String| RequestError::Invalid {
                request: s.name.clone(),
                what,
                detail,
            };
            let method = http::Method::from_bytes(s.method.as_bytes())
                .map_err(|e| invalid("method", e.to_string()))?;
            let mut headers = Vec::new();
            for (k, v) in &s.headers {
                let name = http::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| invalid("header name", e.to_string()))?;
                headers.push((name, Template::parse(v)));
            }
            let body = s.body.as_ref().map(|b| {
                Template::parse(&match b {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            });
            let p = Prepared {
                name: s.name.clone(),
                method,
                path: Template::parse(&s.path),
                headers,
                bearer: s.bearer.as_deref().map(Template::parse),
                body,
                follow: s.follow.clone(),
                expect: s.expect.clone(),
            };
            let vars: Vec<String> = p
                .path
                .vars()
                .chain(p.bearer.iter().flat_map(Template::vars))
                .chain(p.headers.iter().flat_map(|(_, t)| t.vars()))
                .chain(p.body.iter().flat_map(Template::vars))
                .map(str::to_owned)
                .collect();
            for field in vars {
                match records.first() {
                    None => {
                        return Err(RequestError::NoDataset {
                            request: s.name.clone(),
                            field,
                        });
                    }
                    Some(r) if !r.contains_key(&field) => {
                        return Err(RequestError::MissingField {
                            request: s.name.clone(),
                            field,
                            have: r.keys().cloned().collect::<Vec<_>>().join(", "),
                        });
                    }
                    _ => {}
                }
            }
            requests.push(p);
        }
        let weights: Vec<u32> = specs.iter().map(|s| s.weight.max(1)).collect();
        Ok(Self {
            requests,
            cycle: weighted_cycle(&weights),
            records,
            authority,
        })
    }

    /// A mix of one plain request, for `drill load --url`.
    pub fn single(
        method: http::Method,
        path: String,
        headers: Vec<(http::HeaderName, String)>,
        body: Option<String>,
        authority: String,
    ) -> Self {
        let p = Prepared {
            name: "default".into(),
            method,
            path: Template(vec![Part::Lit(path)]),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k, Template(vec![Part::Lit(v)])))
                .collect(),
            bearer: None,
            body: body.map(|b| Template(vec![Part::Lit(b)])),
            follow: None,
            expect: None,
        };
        Self {
            requests: vec![p],
            cycle: vec![0],
            records: Vec::new(),
            authority,
        }
    }

    /// The dataset's records.
    pub fn records(&self) -> &[serde_json::Map<String, Value>] {
        &self.records
    }

    /// Which request and record arrival `k` uses.
    pub fn pick(&self, k: u64) -> (usize, Option<usize>) {
        let req = self.cycle[usize::try_from(k % self.cycle.len().max(1) as u64).unwrap_or(0)];
        let rec = (!self.records.is_empty())
            .then(|| usize::try_from(k % self.records.len() as u64).unwrap_or(0));
        (req, rec)
    }

    /// Builds the HTTP request for request `i` with record `rec`, optionally with a cursor.
    pub fn build(
        &self,
        i: usize,
        rec: Option<usize>,
        cursor: Option<&str>,
    ) -> http::Request<Full<Bytes>> {
        let p = &self.requests[i];
        let record = rec.and_then(|r| self.records.get(r));
        let mut uri = p.path.fill(record);
        if let (Some(c), Some(f)) = (cursor, &p.follow) {
            let sep = if uri.contains('?') { '&' } else { '?' };
            uri = format!("{uri}{sep}{}={}", f.param, encode(c));
        }
        let mut b = http::Request::builder()
            .method(p.method.clone())
            .uri(uri)
            .header(http::header::HOST, &self.authority);
        for (k, v) in &p.headers {
            b = b.header(k, v.fill(record));
        }
        if let Some(t) = &p.bearer {
            b = b.header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", t.fill(record)),
            );
        }
        let body = p
            .body
            .as_ref()
            .map(|t| Bytes::from(t.fill(record)))
            .unwrap_or_default();
        if !body.is_empty()
            && !p
                .headers
                .iter()
                .any(|(k, _)| k == http::header::CONTENT_TYPE)
        {
            b = b.header(http::header::CONTENT_TYPE, "application/json");
        }
        // Parts are validated in `Mix::new`; a value that still fails becomes a plain GET /.
        b.body(Full::new(body))
            .unwrap_or_else(|_| http::Request::new(Full::new(Bytes::new())))
    }
}

/// Percent-encodes a cursor for a query string.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Applies a body check; `None` when the request has none.
pub fn check_body(check: &BodyCheck, body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let found = v.pointer(&check.pointer);
    match (&check.equals, found) {
        (Some(want), Some(got)) => want == got,
        (Some(_), None) => false,
        (None, f) => f.is_some() == check.exists,
    }
}

/// The next cursor in a response, if pagination continues.
pub fn next_cursor(follow: &Follow, body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    match v.pointer(&follow.cursor)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_from_records() {
        let t = Template::parse("/c/{community_id}/m/{member_id}/activity?per_page=50&x={");
        let rec: serde_json::Map<String, Value> =
            serde_json::from_str(r#"{"community_id": 3, "member_id": "m7"}"#).expect("json");
        assert_eq!(t.fill(Some(&rec)), "/c/3/m/m7/activity?per_page=50&x={");
        assert_eq!(t.vars().collect::<Vec<_>>(), ["community_id", "member_id"]);
    }

    #[test]
    fn weights_interleave_smoothly() {
        assert_eq!(weighted_cycle(&[3, 1]), [0, 0, 1, 0]);
        assert_eq!(weighted_cycle(&[1, 1, 1]), [0, 1, 2]);
    }

    #[test]
    fn cursors_and_checks_follow_json_pointers() {
        let f = Follow {
            cursor: "/meta/next_cursor".into(),
            param: "cursor".into(),
            max_pages: 3,
        };
        assert_eq!(
            next_cursor(&f, br#"{"meta": {"next_cursor": "abc=="}}"#),
            Some("abc==".into())
        );
        assert_eq!(next_cursor(&f, br#"{"meta": {"next_cursor": null}}"#), None);
        let c = BodyCheck {
            pointer: "/data".into(),
            exists: true,
            equals: None,
            error: true,
        };
        assert!(check_body(&c, br#"{"data": []}"#));
        assert!(!check_body(&c, b"not json"));
        assert_eq!(encode("a b/="), "a%20b%2F%3D");
    }
}
