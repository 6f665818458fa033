//! Revert records sealed in the ledger: a record holds what reverting needs — a database URL
//! with its password, an exec's environment (`API_KEY`), an HTTP call's headers — so the
//! ledger keeps it encrypted (ChaCha20-Poly1305, from `ring`, already in the tree through
//! rustls), with a key that is not in the store. A reader of the store (a PostgreSQL role
//! with SELECT, a backup, a copied SQLite file) sees which faults ran and their state, never
//! the records.
//!
//! The key: `DRILL_LEDGER_KEY` (64 hex digits) when set — what several daemons on one
//! PostgreSQL and the chart's watchdog share, from one Secret — else a key file made on first
//! use, mode 0600: `FILE.key` beside a SQLite store `FILE`, or `~/.local/share/drill/ledger.key`
//! for PostgreSQL. `drill recover` opens records with the same key, so it works where the run
//! ran (same host and user, or the same `DRILL_LEDGER_KEY`); elsewhere it says which key it
//! needs and changes nothing. Records written before sealing existed are read as they are.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};

/// What a sealed record starts with.
const PREFIX: &str = "sealed:v1:";

/// Why a record could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the ledger key {0}")]
    Key(String),
    #[error(
        "the record of fault {id} was sealed with another ledger key than {from}: recover it where the run ran, or set DRILL_LEDGER_KEY to that key"
    )]
    WrongKey { id: String, from: String },
    #[error("the record of fault {0} is damaged (not a sealed record)")]
    Damaged(String),
}

/// The ledger's key, and where it came from (for messages; never the key).
pub struct Key {
    key: LessSafeKey,
    from: String,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The key of one store, read (or made) on first use: a process that never seals nor opens a
/// record (a load shard, `drill runs`) never touches the key file.
#[derive(Debug)]
pub struct LazyKey {
    sqlite: Option<PathBuf>,
    default_file: PathBuf,
    cell: std::sync::OnceLock<Result<Key, String>>,
}

impl LazyKey {
    /// The key [`Key::for_store`] will read on first use.
    pub fn new(sqlite: Option<PathBuf>, default_file: PathBuf) -> Self {
        LazyKey {
            sqlite,
            default_file,
            cell: std::sync::OnceLock::new(),
        }
    }

    fn get(&self) -> Result<&Key, SealError> {
        self.cell
            .get_or_init(|| {
                Key::for_store(self.sqlite.as_deref(), &self.default_file)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| SealError::Key(e.trim_start_matches("the ledger key ").to_owned()))
    }

    /// See [`Key::seal`].
    pub fn seal(&self, id: &str, plain: &str) -> Result<String, SealError> {
        self.get()?.seal(id, plain)
    }

    /// See [`Key::open`]; a record that is not sealed needs no key.
    pub fn open(&self, id: &str, stored: &str) -> Result<String, SealError> {
        if !stored.starts_with(PREFIX) {
            return Ok(stored.to_owned());
        }
        self.get()?.open(id, stored)
    }
}

impl Key {
    /// The key of a store: `DRILL_LEDGER_KEY`, else `FILE.key` beside a SQLite store
    /// (`sqlite_path`), else `default_file` (made when missing).
    pub fn for_store(sqlite_path: Option<&Path>, default_file: &Path) -> Result<Key, SealError> {
        if let Ok(v) = std::env::var("DRILL_LEDGER_KEY")
            && !v.trim().is_empty()
        {
            let bytes = unhex(&v)
                .filter(|b| b.len() == 32)
                .ok_or_else(|| SealError::Key("DRILL_LEDGER_KEY is not 64 hex digits (32 bytes; `openssl rand -hex 32` makes one)".into()))?;
            return Key::new(&bytes, "DRILL_LEDGER_KEY".into());
        }
        let file = match sqlite_path {
            Some(p) => PathBuf::from(format!("{}.key", p.display())),
            None => default_file.to_owned(),
        };
        Key::from_file(&file)
    }

    fn new(bytes: &[u8], from: String) -> Result<Key, SealError> {
        let k = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .map_err(|_| SealError::Key(format!("{from} is not a 32-byte key")))?;
        Ok(Key {
            key: LessSafeKey::new(k),
            from,
        })
    }

    /// Reads the key file, or makes it (32 random bytes in hex, mode 0600) when missing.
    pub fn from_file(file: &Path) -> Result<Key, SealError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let shown = file.display().to_string();
        match std::fs::read_to_string(file) {
            Ok(text) => {
                let bytes = unhex(&text)
                    .filter(|b| b.len() == 32)
                    .ok_or_else(|| SealError::Key(format!("file {shown} is not 64 hex digits")))?;
                Key::new(&bytes, shown)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut bytes)
                    .map_err(|_| SealError::Key("cannot be made: no random bytes".into()))?;
                if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                    use std::os::unix::fs::DirBuilderExt as _;
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)
                        .map_err(|e| SealError::Key(format!("file {shown} cannot be made: {e}")))?;
                }
                // Two processes may race to make it: the one that loses reads the winner's.
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(file)
                {
                    Ok(mut f) => {
                        f.write_all(hex(&bytes).as_bytes()).map_err(|e| {
                            SealError::Key(format!("file {shown} cannot be written: {e}"))
                        })?;
                        Key::new(&bytes, shown)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        Key::from_file(file)
                    }
                    Err(e) => Err(SealError::Key(format!("file {shown} cannot be made: {e}"))),
                }
            }
            Err(e) => Err(SealError::Key(format!("file {shown} cannot be read: {e}"))),
        }
    }

    /// The record of fault `id`, sealed: `sealed:v1:` and base64 of nonce ‖ ciphertext ‖ tag,
    /// bound to `id` (a sealed record moved to another row does not open).
    pub fn seal(&self, id: &str, plain: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Key("cannot seal: no random bytes".into()))?;
        let mut buf = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SealError::Damaged(id.to_owned()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// The plain record of fault `id`; a record that is not sealed (written before sealing
    /// existed) is returned as it is.
    pub fn open(&self, id: &str, stored: &str) -> Result<String, SealError> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| SealError::Damaged(id.to_owned()))?;
        if raw.len() < NONCE_LEN {
            return Err(SealError::Damaged(id.to_owned()));
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| SealError::Damaged(id.to_owned()))?;
        let mut buf = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut buf)
            .map_err(|_| SealError::WrongKey {
                id: id.to_owned(),
                from: self.from.clone(),
            })?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Damaged(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_record_opens_with_its_key_only_and_on_its_row_only() {
        let dir = tempfile::tempdir().expect("dir");
        let k = Key::from_file(&dir.path().join("a.key")).expect("made");
        let plain = r#"{"backend":"exec","inject":{"env":{"API_KEY":"s3cret"}}}"#;
        let sealed = k.seal("run/1", plain).expect("sealed");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("s3cret"));
        assert_eq!(k.open("run/1", &sealed).expect("opens"), plain);
        assert!(k.open("run/2", &sealed).is_err(), "bound to its row");
        let again = Key::from_file(&dir.path().join("a.key")).expect("read back");
        assert_eq!(again.open("run/1", &sealed).expect("same key"), plain);
        let other = Key::from_file(&dir.path().join("b.key")).expect("another");
        assert!(matches!(
            other.open("run/1", &sealed),
            Err(SealError::WrongKey { .. })
        ));
        assert_eq!(k.open("x", plain).expect("plain stays"), plain);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("a.key"))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
