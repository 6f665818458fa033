//! The target's base URL, parsed once, and the one rule that resolves every other URL of a
//! playbook against it.
//!
//! The rule is the traffic's: the base URL's path is a *prefix*. `base_url:
//! http://h/api` with a request path, a probe URL or a call URL of `health` or `/health`
//! means `http://h/api/health`; an absolute URL (`https://other/x`) is kept as it is.
//! (`Url::join`'s rule — `health` replaces the last segment, `/health` the whole path — is
//! the browser's, and it is not what a user writing a base URL for an API means.) Validation,
//! the allow-list, the engine's calls and the traffic all go through [`BaseUrl::resolve`],
//! so what is checked is what is called.

use std::fmt;

/// `http(s)://host[:port][/prefix]`, parsed; the prefix has no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    url: url::Url,
    /// The path prefix without a trailing slash (`""` or `/api`).
    prefix: String,
}

/// Why a URL is not usable as a base URL or could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL \"{url}\": {why}")]
pub struct UrlError {
    pub url: String,
    pub why: String,
}

impl BaseUrl {
    /// Parses an absolute `http` or `https` URL with a host.
    pub fn parse(s: &str) -> Result<BaseUrl, UrlError> {
        let bad = |why: &str| UrlError {
            url: s.to_owned(),
            why: why.to_owned(),
        };
        let url = url::Url::parse(s).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("it has no host"));
        }
        let prefix = url.path().trim_end_matches('/').to_owned();
        Ok(BaseUrl { url, prefix })
    }

    /// Whether this is `https`.
    pub fn https(&self) -> bool {
        self.url.scheme() == "https"
    }

    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// The host, without IPv6 brackets.
    pub fn host(&self) -> String {
        match self.url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => String::new(),
        }
    }

    /// The port, or the scheme's default.
    pub fn port(&self) -> u16 {
        self.url
            .port_or_known_default()
            .unwrap_or(if self.https() { 443 } else { 80 })
    }

    /// `host:port`, with brackets around an IPv6 host: what a TCP connect takes.
    pub fn socket_addr(&self) -> String {
        match self.url.host() {
            Some(url::Host::Ipv6(a)) => format!("[{a}]:{}", self.port()),
            _ => format!("{}:{}", self.host(), self.port()),
        }
    }

    /// The path prefix every relative URL is put under (`""` or `/api`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Resolves `s` against this base: an absolute URL (with `://`) is kept; anything else is
    /// a path (and query) under the prefix, with or without a leading slash.
    pub fn resolve(&self, s: &str) -> Result<url::Url, UrlError> {
        if s.contains("://") {
            return url::Url::parse(s).map_err(|e| UrlError {
                url: s.to_owned(),
                why: e.to_string(),
            });
        }
        let mut origin = self.url.clone();
        origin.set_query(None);
        origin.set_fragment(None);
        let rel = s.trim_start_matches('/');
        let joined = format!(
            "{}://{}{}/{rel}",
            origin.scheme(),
            authority(&origin),
            self.prefix
        );
        url::Url::parse(&joined).map_err(|e| UrlError {
            url: s.to_owned(),
            why: e.to_string(),
        })
    }

    /// [`resolve`](Self::resolve) as a string; an unresolvable input is returned as it is
    /// (validation has already reported it).
    pub fn resolve_str(&self, s: &str) -> String {
        self.resolve(s)
            .map_or_else(|_| s.to_owned(), |u| u.to_string())
    }
}

fn authority(u: &url::Url) -> String {
    let host = match u.host() {
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    let userinfo = match (u.username(), u.password()) {
        ("", None) => String::new(),
        (user, None) => format!("{user}@"),
        (user, Some(p)) => format!("{user}:{p}@"),
    };
    match u.port() {
        Some(p) => format!("{userinfo}{host}:{p}"),
        None => format!("{userinfo}{host}"),
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> BaseUrl {
        BaseUrl::parse(s).expect("a valid base URL")
    }

    #[test]
    fn a_base_path_is_a_prefix_for_relative_urls_with_or_without_a_slash() {
        let b = base("http://h/api");
        assert_eq!(b.resolve_str("health"), "http://h/api/health");
        assert_eq!(b.resolve_str("/health"), "http://h/api/health");
        let b = base("http://h/api/");
        assert_eq!(b.resolve_str("health?x=1"), "http://h/api/health?x=1");
    }

    #[test]
    fn absolute_urls_are_kept_and_a_bare_host_resolves_to_its_root() {
        let b = base("http://127.0.0.1:8080/");
        assert_eq!(b.resolve_str("/health"), "http://127.0.0.1:8080/health");
        assert_eq!(b.resolve_str("https://b/x"), "https://b/x");
        assert_eq!(b.prefix(), "");
    }

    #[test]
    fn host_port_and_socket_address_come_from_one_parse() {
        let b = base("https://[::1]/v1");
        assert_eq!(b.host(), "::1");
        assert_eq!(b.port(), 443);
        assert_eq!(b.socket_addr(), "[::1]:443");
        assert_eq!(b.resolve_str("x"), "https://[::1]/v1/x");
        let b = base("http://localhost:9000");
        assert_eq!(b.socket_addr(), "localhost:9000");
    }

    #[test]
    fn a_base_url_needs_http_and_a_host() {
        assert!(BaseUrl::parse("ftp://h").is_err());
        assert!(BaseUrl::parse("/just/a/path").is_err());
        assert!(BaseUrl::parse("http://").is_err());
    }
}
