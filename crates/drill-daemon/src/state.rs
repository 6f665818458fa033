//! What the daemon's loop and its API share ([`Shared`]), and the reading of the playbook
//! directory: each file on its own, validated against the policy, off the async threads and
//! bounded in time, swapped in under a short lock.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use drill_engine::schedule::Entry;
use drill_engine::{Abort, LiveStatus, Log, Options, Store};
use drill_spec::ValidPlaybook;
use drill_spec::policy::Policy;
use tokio::sync::{Notify, watch};

use crate::{metrics, tokens};

/// The playbooks of the directory, as last loaded with success, by file, and the errors of
/// the files whose newest version is invalid.
#[derive(Debug, Default)]
pub struct Loaded {
    fingerprint: Fingerprint,
    pub good: BTreeMap<PathBuf, ValidPlaybook>,
    pub errors: BTreeMap<PathBuf, Vec<String>>,
}

/// One run of this daemon: its abort signal and its live status.
#[derive(Debug)]
pub struct RunEntry {
    pub abort: Abort,
    pub status: watch::Receiver<LiveStatus>,
}

/// What the scheduler loop and the API share.
pub struct Shared {
    pub store: Store,
    pub loaded: Mutex<Loaded>,
    pub runs: Mutex<HashMap<String, RunEntry>>,
    pub tokens: Arc<tokens::Live>,
    pub opts: Options,
    pub log: Log,
    /// Wakes the loop at once after a halt or resume through the API.
    pub halt_now: Notify,
    pub metrics: metrics::Metrics,
    pub metrics_open: bool,
    pub playbooks_dir: PathBuf,
    pub drills: Vec<PathBuf>,
    /// The operator's policy (the safe default without `--policy`).
    pub policy: Policy,
    /// A reading of the playbook directory is under way.
    pub reloading: std::sync::atomic::AtomicBool,
    /// Every run of this daemon, scheduled or started through the API: what it waits for
    /// when it stops.
    pub tracker: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("store", &self.store.url())
            .field("playbooks_dir", &self.playbooks_dir)
            .field("metrics_open", &self.metrics_open)
            .finish_non_exhaustive()
    }
}

/// Where a playbook's relative paths start.
pub fn dir_of(file: &Path) -> PathBuf {
    file.parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn fingerprint(dir: &Path) -> Fingerprint {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.path()
                .extension()
                .is_some_and(|x| x == "yaml" || x == "yml")
        })
        .map(|e| {
            let m = e.metadata().ok();
            (
                e.path(),
                m.as_ref().map_or(0, std::fs::Metadata::len),
                m.and_then(|m| m.modified().ok()),
            )
        })
        .collect();
    out.sort();
    out
}

/// One file of the directory, read and validated: its playbook, or its errors.
type FileLoad = (PathBuf, Result<ValidPlaybook, Vec<String>>);

/// Reads and validates every file of the directory against the policy (blocking: run it off
/// the async threads). Each file on its own, so one invalid file does not hold the others
/// back.
fn load_dir(files: &Fingerprint, drills: &[PathBuf], policy: &Policy) -> Vec<FileLoad> {
    files
        .iter()
        .map(|(file, ..)| {
            // A file that cannot be read (a FIFO, a device, too big) says why in its errors.
            if let Err(e) = drill_engine::files::read(file) {
                return (
                    file.clone(),
                    Err(vec![format!("{}: {e:#}", file.display())]),
                );
            }
            let loaded =
                drill_engine::files::load_scoped(std::slice::from_ref(file), drills, Some(policy));
            let r = match loaded {
                Ok((outcome, unreadable))
                    if unreadable.is_empty()
                        && !outcome.has_errors()
                        && outcome.playbooks.len() == 1 =>
                {
                    Ok(outcome.playbooks.into_iter().next().expect("one playbook"))
                }
                Ok((outcome, unreadable)) => {
                    let mut errs: Vec<String> = outcome
                        .diags
                        .iter()
                        .filter(|d| d.severity == drill_spec::Severity::Error)
                        .map(|d| outcome.sources.render(d))
                        .collect();
                    errs.extend(unreadable.iter().map(ToString::to_string));
                    if errs.is_empty() {
                        errs.push({
                            format!("{}: holds no playbook (kind: Playbook)", file.display())
                        });
                    }
                    Err(errs)
                }
                Err(e) => Err(vec![format!("{e:#}")]),
            };
            (file.clone(), r)
        })
        .collect()
}

/// How long one reading of the playbook directory may take before the daemon gives up on it
/// (the playbooks loaded before stay): a file on a hung mount must not stall the scheduler,
/// the API or the halt.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the directory again when it changed, off the async threads and bounded in time, and
/// swaps the result in under a short lock.
pub async fn reload(shared: &Arc<Shared>) {
    use std::sync::atomic::Ordering;
    if shared.reloading.swap(true, Ordering::AcqRel) {
        return; // the last reading has not ended (stuck on a file): not another thread
    }
    let known = shared
        .loaded
        .lock()
        .map(|l| l.fingerprint.clone())
        .unwrap_or_default();
    let (dir, drills, policy) = (
        shared.playbooks_dir.clone(),
        shared.drills.clone(),
        shared.policy.clone(),
    );
    let flag = shared.clone();
    let job = tokio::task::spawn_blocking(move || {
        let now = fingerprint(&dir);
        let out = (now != known).then(|| {
            let loads = load_dir(&now, &drills, &policy);
            (now, loads)
        });
        flag.reloading.store(false, Ordering::Release);
        out
    });
    match tokio::time::timeout(RELOAD_TIMEOUT, job).await {
        Ok(Ok(Some((now, loads)))) => {
            if let Ok(mut l) = shared.loaded.lock() {
                l.apply(now, loads, &shared.log);
            }
        }
        Ok(Ok(None)) => {}
        Ok(Err(e)) => (shared.log)(&format!(
            "daemon: cannot read {}: {e}",
            shared.playbooks_dir.display()
        )),
        Err(_) => (shared.log)(&format!(
            "daemon: warning: reading {} took more than {} s; the playbooks loaded before stay",
            shared.playbooks_dir.display(),
            RELOAD_TIMEOUT.as_secs()
        )),
    }
}

impl Loaded {
    /// Takes a new reading of the directory: a valid file replaces its last version, an
    /// invalid one keeps it (and its errors are logged), a removed file is dropped.
    fn apply(&mut self, now: Fingerprint, loads: Vec<FileLoad>, log: &Log) {
        self.fingerprint = now;
        let seen: Vec<PathBuf> = loads.iter().map(|(f, _)| f.clone()).collect();
        for (file, r) in loads {
            match r {
                Ok(vp) => {
                    let what = match &vp.playbook.schedule {
                        Some(s) => format!("schedule {}", s.cron),
                        None => "no schedule (not fired)".into(),
                    };
                    log(&format!(
                        "daemon: loaded {} ({}): {what}",
                        vp.playbook.metadata.name,
                        file.display()
                    ));
                    self.good.insert(file.clone(), vp);
                    self.errors.remove(&file);
                }
                Err(errs) => {
                    let kept = if self.good.contains_key(&file) {
                        "the last good version stays"
                    } else {
                        "not loaded"
                    };
                    log(&format!("daemon: {} is invalid, {kept}:", file.display()));
                    for e in &errs {
                        log(&format!("  {e}"));
                    }
                    self.errors.insert(file, errs);
                }
            }
        }
        self.good.retain(|f, _| seen.contains(f));
        self.errors.retain(|f, _| seen.contains(f));
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.good
            .values()
            .filter_map(|vp| {
                Some(Entry {
                    playbook: vp.playbook.metadata.name.clone(),
                    cron: vp.schedule.clone()?,
                    spec: vp.playbook.schedule.clone()?,
                })
            })
            .collect()
    }

    pub fn get(&self, playbook: &str) -> Option<(PathBuf, ValidPlaybook)> {
        self.good
            .iter()
            .find(|(_, vp)| vp.playbook.metadata.name == playbook)
            .map(|(f, vp)| (f.clone(), vp.clone()))
    }
}
