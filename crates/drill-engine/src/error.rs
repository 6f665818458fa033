//! The engine's error: what stops it before a run has an outcome.

use std::path::PathBuf;

use crate::store::StoreError;

/// An error that stops the engine: the store failed, reports could not be written, or the
/// run's task died.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the report {}", path.display())]
    Report {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the run's task ended without an outcome: {0}")]
    Panicked(String),
}
