//! The daemon's API tokens: a file of `ROLE SUBJECT SHA256` lines (the hash of each token,
//! never the token), written by `drill token add`, which prints the token once.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

/// What a token may do: `viewer` reads, `operator` also triggers and aborts runs, `admin`
/// also halts and resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub subject: String,
    pub role: Role,
}

#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_hash: Vec<(String, Holder)>,
}

fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Tokens {
    /// Reads a token file; a line that is not `ROLE SUBJECT SHA256` is an error naming it.
    pub fn load(path: &Path) -> Result<Tokens> {
        let text = drill_engine::files::read(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?;
        let mut by_hash = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            let ok = f.len() == 3
                && f[2].len() == 64
                && f[2].bytes().all(|b| b.is_ascii_hexdigit())
                && valid_subject(f[1]);
            let role = f.first().and_then(|r| Role::parse(r));
            match (ok, role) {
                (true, Some(role)) => by_hash.push((
                    f[2].to_ascii_lowercase(),
                    Holder {
                        subject: f[1].to_owned(),
                        role,
                    },
                )),
                _ => bail!(
                    "{}:{}: expected `ROLE SUBJECT SHA256` (role viewer, operator or admin; a subject of printable characters; the token's SHA-256 in hex); `drill token add` writes such lines",
                    path.display(),
                    i + 1
                ),
            }
        }
        if by_hash.is_empty() {
            bail!(
                "{} holds no token; add one with `drill token add --tokens {} --role admin --subject NAME`",
                path.display(),
                path.display()
            );
        }
        Ok(Tokens { by_hash })
    }

    /// The holder of a bearer token, if it is one of the file's.
    pub fn check(&self, token: &str) -> Option<&Holder> {
        let h = sha256_hex(token);
        self.by_hash
            .iter()
            .find(|(x, _)| *x == h)
            .map(|(_, who)| who)
    }
}

/// A subject is one word of printable characters: it is logged and audited.
fn valid_subject(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| !c.is_control() && !c.is_whitespace())
}

/// The file's permissions when others than its owner may read or write it.
pub fn too_open(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// The token file as the daemon serves it: read again when it changes (checked every second
/// by [`Live::watch`]), so a token removed from the file is refused within about a second,
/// with no restart. A new version that is invalid is logged and the last good one stays.
#[derive(Debug)]
pub struct Live {
    path: Option<PathBuf>,
    current: std::sync::RwLock<Tokens>,
    seen: std::sync::Mutex<Option<(u64, u64, Option<std::time::SystemTime>)>>,
}

fn stamp(path: &Path) -> Option<(u64, u64, Option<std::time::SystemTime>)> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.len(), m.modified().ok()))
}

impl Live {
    /// No API: no token at all.
    pub fn none() -> Self {
        Live {
            path: None,
            current: std::sync::RwLock::new(Tokens::default()),
            seen: std::sync::Mutex::new(None),
        }
    }

    pub fn load(path: &Path) -> Result<Self> {
        let seen = stamp(path);
        let tokens = Tokens::load(path)?;
        Ok(Live {
            path: Some(path.to_owned()),
            current: std::sync::RwLock::new(tokens),
            seen: std::sync::Mutex::new(seen),
        })
    }

    /// The holder of a bearer token, if it is one of the file's now.
    pub fn check(&self, token: &str) -> Option<Holder> {
        self.current.read().ok()?.check(token).cloned()
    }

    /// Reads the file again if it changed; returns what to log.
    pub fn refresh(&self) -> Option<String> {
        let path = self.path.as_ref()?;
        let now = stamp(path);
        let mut seen = self.seen.lock().ok()?;
        if *seen == now {
            return None;
        }
        *seen = now;
        match Tokens::load(path) {
            Ok(t) => {
                let n = t.by_hash.len();
                if let Ok(mut c) = self.current.write() {
                    *c = t;
                }
                Some(format!(
                    "daemon: {} changed: {n} token(s) now{}",
                    path.display(),
                    too_open(path)
                        .map(|m| format!(
                            "; warning: it is mode {m:o}, readable by others: chmod 600 it"
                        ))
                        .unwrap_or_default()
                ))
            }
            Err(e) => Some(format!(
                "daemon: error: {e:#}; the tokens read before stay in force until the file is fixed"
            )),
        }
    }

    /// Checks the file every second for ever (spawn it).
    pub async fn watch(self: std::sync::Arc<Self>, log: drill_engine::Log) {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let me = self.clone();
            if let Ok(Some(line)) = tokio::task::spawn_blocking(move || me.refresh()).await {
                log(&line);
            }
        }
    }
}

/// Creates a random token of `role` for `subject`: its hash is appended to the token file
/// (created mode 0600 when missing); the token is returned, to be shown once and kept
/// nowhere. `Err` names what is wrong (a subject that is not one printable word, a file that
/// cannot be written).
pub fn add(tokens: &Path, role: Role, subject: &str) -> Result<String> {
    if !valid_subject(subject) {
        anyhow::bail!("--subject must be one word of printable characters, like alice or ci-bot");
    }
    let mut raw = [0u8; 32];
    getrandom::getrandom(&mut raw).map_err(|e| anyhow::anyhow!("cannot read random bytes: {e}"))?;
    let token: String = std::iter::once("drill_".to_owned())
        .chain(raw.iter().map(|b| format!("{b:02x}")))
        .collect();
    let mut f = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(tokens)
            .with_context(|| format!("cannot open {}", tokens.display()))?
    };
    writeln!(f, "{} {subject} {}", role.as_str(), sha256_hex(&token))
        .with_context(|| format!("cannot write {}", tokens.display()))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_known_by_its_hash_only() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("tokens");
        std::fs::write(
            &p,
            format!("# comment\nadmin alice {}\n", sha256_hex("secret")),
        )
        .expect("write");
        let t = Tokens::load(&p).expect("load");
        assert_eq!(
            t.check("secret"),
            Some(&Holder {
                subject: "alice".into(),
                role: Role::Admin
            })
        );
        assert_eq!(t.check("other"), None);
        assert!(
            !std::fs::read_to_string(&p)
                .expect("read")
                .contains("secret\n")
        );
        std::fs::write(&p, "root alice abc\n").expect("write");
        let e = Tokens::load(&p).expect_err("bad line");
        assert!(
            format!("{e:#}").contains(":1: expected `ROLE SUBJECT SHA256`"),
            "{e:#}"
        );
    }
}
