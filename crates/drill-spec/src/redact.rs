//! One redaction rule for everything drill prints, logs, stores or answers: a URL's password,
//! a secret header's value, an exec's environment values, and any value interpolated from
//! the environment (shown as the `${NAME}` it came from).
//!
//! [`url`] and [`text`] are pure string functions; [`Redactor`] holds the interpolated values
//! of one playbook, so the sinks (plan, logs, reports, API errors) can print `${NAME}`
//! instead of what the variable held.

use std::borrow::Cow;

/// What a removed secret is shown as.
pub const MASK: &str = "***";

/// A URL with its password replaced by `***` (`postgres://drill:***@db/drill`); the rest,
/// user name included, stays readable. Text that is not a URL is returned as is.
pub fn url(s: &str) -> String {
    text(s).into_owned()
}

/// Every `scheme://user:password@` in `s` with the password masked: URLs inside messages,
/// command lines and error chains too.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.contains("://") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        // The authority ends at the first '/', '?', '#' or whitespace; its userinfo at the
        // last '@' before that.
        let end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '"' || c == '\''
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, pass)) if !pass.is_empty() && pass != MASK => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(MASK);
                        changed = true;
                    }
                    // `redis://:password@host` has an empty user; a bare token is a secret too.
                    None if looks_like_token(userinfo) => {
                        out.push_str(MASK);
                        changed = true;
                    }
                    _ => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    // Query parameters that carry secrets (`?password=x`, `?sslpassword=`, `token=`).
    let out = mask_query_secrets(&out, &mut changed);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

/// A user name alone before `@` is usually a name; a long random-looking one is a token
/// (`https://ghp_xxx@github.com`).
fn looks_like_token(u: &str) -> bool {
    u.len() >= 20
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn mask_query_secrets(s: &str, changed: &mut bool) -> String {
    const KEYS: &[&str] = &[
        "password=",
        "sslpassword=",
        "pass=",
        "passwd=",
        "token=",
        "access_token=",
        "secret=",
        "api_key=",
        "apikey=",
    ];
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < s.len() {
        let at_param = i > 0 && matches!(bytes[i - 1], b'?' | b'&' | b';');
        let lower_rest = s[i..].get(..16).unwrap_or(&s[i..]).to_ascii_lowercase();
        if at_param && let Some(k) = KEYS.iter().find(|k| lower_rest.starts_with(**k)) {
            out.push_str(&s[i..i + k.len()]);
            i += k.len();
            let end = s[i..]
                .find(|c: char| matches!(c, '&' | '#' | ';' | '"' | '\'') || c.is_whitespace())
                .map_or(s.len(), |e| i + e);
            if end > i {
                out.push_str(MASK);
                *changed = true;
            }
            i = end;
            continue;
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Is this header's value a secret? Credentials, cookies, and any name that says key, token,
/// secret, password or signature.
pub fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || [
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "signature",
        "auth",
        "session",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// A header as it may be printed: its value masked when it is a secret.
pub fn header(name: &str, value: &str) -> String {
    if secret_header(name) {
        format!("{name}: {MASK}")
    } else {
        format!("{name}: {}", text(value))
    }
}

/// The values a playbook's `${NAME}` took from the environment, to print as `${NAME}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    /// (value, `${NAME}`), longest value first so a value inside another is not cut.
    pairs: Vec<(String, String)>,
}

impl Redactor {
    /// Values shorter than this are not replaced: `1`, `true` or a port would garble every
    /// line, and a secret that short protects nothing.
    pub const MIN_LEN: usize = 6;

    pub fn add(&mut self, name: &str, value: &str) {
        if value.len() < Self::MIN_LEN || self.pairs.iter().any(|(v, _)| v == value) {
            return;
        }
        self.pairs.push((value.to_owned(), format!("${{{name}}}")));
        self.pairs.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    }

    pub fn extend(&mut self, other: &Redactor) {
        for (v, n) in &other.pairs {
            let name = n.trim_start_matches("${").trim_end_matches('}');
            self.add(name, v);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// `s` with every interpolated value shown as its `${NAME}`, then every URL password and
    /// secret query parameter masked.
    pub fn apply<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let mut out: Cow<'a, str> = Cow::Borrowed(s);
        for (value, name) in &self.pairs {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), name));
            }
        }
        match out {
            Cow::Borrowed(b) => text(b),
            Cow::Owned(o) => Cow::Owned(text(&o).into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked_wherever_they_appear() {
        assert_eq!(
            url("postgres://drill:s3cret@db:5432/drill"),
            "postgres://drill:***@db:5432/drill"
        );
        assert_eq!(
            url("redis://:pw@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(url("mysql://u:x@h/db?ssl=1"), "mysql://u:***@h/db?ssl=1");
        assert_eq!(url("http://127.0.0.1:8080/x"), "http://127.0.0.1:8080/x");
        assert_eq!(
            text("cannot connect to postgres://a:b@h/db: refused, then http://u:p@x/y")
                .into_owned(),
            "cannot connect to postgres://a:***@h/db: refused, then http://u:***@x/y"
        );
        assert_eq!(
            url("postgres://h/db?user=a&password=x&sslmode=disable"),
            "postgres://h/db?user=a&password=***&sslmode=disable"
        );
        assert_eq!(
            url("https://u@h/p"),
            "https://u@h/p",
            "a user name alone is kept"
        );
        assert_eq!(
            url("https://ghp_abcdefghijklmnopqrstuvwxyz@github.com/x"),
            "https://***@github.com/x"
        );
    }

    #[test]
    fn secret_headers_are_masked() {
        assert_eq!(header("Authorization", "Bearer abc"), "Authorization: ***");
        assert_eq!(header("X-Api-Key", "k"), "X-Api-Key: ***");
        assert_eq!(header("Accept", "text/html"), "Accept: text/html");
    }

    #[test]
    fn interpolated_values_print_as_their_variable() {
        let mut r = Redactor::default();
        r.add("DATABASE_URL", "postgres://drill:PASSWORD@db/drill");
        r.add("PORT", "80");
        assert_eq!(
            r.apply("invalid duration \"postgres://drill:PASSWORD@db/drill\" on 80")
                .into_owned(),
            "invalid duration \"${DATABASE_URL}\" on 80"
        );
    }
}
