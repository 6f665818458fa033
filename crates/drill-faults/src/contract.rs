//! The contract every backend follows (`docs/specs/fault.md`), as types: what a preflight
//! prepared ([`Prepared`]: the record to store and what would change), what a revert did
//! ([`Reverted`]), the guard asked right before each mutating call ([`Guard`]), and the one
//! error type ([`FaultError`]) with the allow-list refusal ([`allowed`]). The backends depend
//! on this and on nothing of each other but `exec` (commands); `lib.rs` dispatches to them.

/// Why a fault could not be prepared, applied or reverted.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("{0} is outside the allow-list; {1}")]
    NotAllowed(String, String),
    #[error("target not found: {0}")]
    NotFound(String),
    /// What drill itself found wrong, in words.
    #[error("{backend} backend: {message}")]
    Backend {
        backend: &'static str,
        message: String,
    },
    /// A client library's error, kept as the source (print the chain).
    #[error("{backend} backend")]
    Client {
        backend: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A client library's error, with what drill was doing when it came, kept as the source.
    #[error("{backend} backend: {what}")]
    Context {
        backend: &'static str,
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the {0} backend is not built yet")]
    Unsupported(&'static str),
    #[error("fault \"{fault}\": {message}")]
    Invalid { fault: String, message: String },
    /// The caller's guard refused the mutating call (the engine: this process is no longer
    /// sure it owns the run). Final: never retried.
    #[error("refused before the call: {0}")]
    Refused(String),
}

impl FaultError {
    pub(crate) fn backend(backend: &'static str, e: impl std::fmt::Display) -> Self {
        FaultError::Backend {
            backend,
            message: e.to_string(),
        }
    }

    /// A client library's error `e`, met while doing `what` (the message says what, the
    /// source says why; [`chain`] prints both).
    pub(crate) fn context(
        backend: &'static str,
        what: impl Into<String>,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        FaultError::Context {
            backend,
            what: what.into(),
            source: Box::new(e),
        }
    }

    pub(crate) fn client(
        backend: &'static str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        FaultError::Client {
            backend,
            source: Box::new(e),
        }
    }
}

/// An error and its sources, joined by ": ", the way drill prints errors in its log lines,
/// reasons and messages (library errors keep their sources as `#[source]`, not in their text).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Turns an allow-list refusal into an error, before anything is contacted.
pub fn allowed(r: Result<(), drill_spec::allow::Refusal>) -> Result<(), FaultError> {
    r.map_err(|r| FaultError::NotAllowed(r.message, r.hint))
}

/// The result of a backend's preflight: the record to store (its own type; `lib.rs` wraps
/// it into a [`crate::RevertRecord`]), and what exactly would change.
#[derive(Debug, Clone)]
pub struct Prepared<R> {
    pub record: R,
    pub changes: Vec<String>,
}

impl<R> Prepared<R> {
    /// The same change, its record wrapped (`RevertRecord::Docker`, …).
    pub fn map<S>(self, f: impl FnOnce(R) -> S) -> Prepared<S> {
        Prepared {
            record: f(self.record),
            changes: self.changes,
        }
    }
}

/// What a revert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reverted {
    /// The original state was restored now.
    Restored(Vec<String>),
    /// Nothing needed doing: already in the original state, or the target is gone.
    AlreadyRestored,
    /// The fault cannot be undone (see [`RevertRecord::permanent`]).
    Permanent(String),
    /// The target was read and the fault never took effect (say, the replica is still a
    /// replica): nothing was changed.
    NotApplied(String),
}

/// Asked immediately before each mutating call: `Err` says why the caller may no longer make
/// it (the engine: this process is not sure it still holds the run's lease). Backends that
/// read or connect before they mutate ask again right before the mutation.
pub type Guard<'a> = &'a (dyn Fn() -> Result<(), String> + Send + Sync);

/// A guard that always allows (tests, `drill revert`).
pub fn unguarded() -> Result<(), String> {
    Ok(())
}

pub(crate) fn guarded(guard: Guard<'_>) -> Result<(), FaultError> {
    guard().map_err(FaultError::Refused)
}
