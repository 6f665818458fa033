//! The [`RunHandle`] a caller holds for a run it started with [`start`]: abort it, watch
//! its [`LiveStatus`], wait for its [`Outcome`].

use std::path::PathBuf;

use drill_spec::ValidPlaybook;
use tokio::sync::watch;

use crate::context::Abort;
use crate::error::EngineError;
use crate::run::Options;
use crate::status::LiveStatus;
use crate::{Outcome, Store};

/// A run started with [`start`]: abort it, watch it, wait for its outcome.
#[derive(Debug)]
pub struct RunHandle {
    abort: Abort,
    status: watch::Receiver<LiveStatus>,
    task: tokio::task::JoinHandle<Result<Outcome, EngineError>>,
}

impl RunHandle {
    /// Stops the run: traffic stops, every fault is reverted, the outcome says why.
    pub fn abort(&self, reason: impl Into<String>) {
        self.abort.trigger(reason);
    }

    /// The abort signal, to wire to signals or to an API.
    pub fn aborter(&self) -> Abort {
        self.abort.clone()
    }

    /// A watch of the live status.
    pub fn status(&self) -> watch::Receiver<LiveStatus> {
        self.status.clone()
    }

    /// The outcome, once the run is over.
    pub async fn wait(self) -> Result<Outcome, EngineError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(EngineError::Panicked(e.to_string())),
        }
    }
}

/// Starts a run on the current tokio runtime; see [`crate::apply`] for what it does.
pub fn start(store: Store, vp: ValidPlaybook, dir: PathBuf, opts: Options) -> RunHandle {
    let abort = Abort::default();
    let (tx, rx) = watch::channel(LiveStatus::new(&vp, opts.time_scale));
    let task = {
        let abort = abort.clone();
        tokio::spawn(async move { crate::run::run(&store, &vp, &dir, &opts, abort, tx).await })
    };
    RunHandle {
        abort,
        status: rx,
        task,
    }
}
