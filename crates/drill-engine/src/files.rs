//! Reading playbook and drill files from disk into a [`drill_spec::Loader`]: the one way the
//! CLI and the daemon read them (regular files only, bounded, never blocking on a FIFO), and
//! validate them against an operator's policy when one is in force. It prints nothing: a file
//! that cannot be read comes back with its error, for the caller to say where it says things.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use drill_spec::Loader;

/// Documents drill reads: `*.yaml` and `*.yml`.
fn is_yaml(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// Expands directories (one level, sorted) into their YAML files.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && is_yaml(f))
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Where drills named by `uses:` are looked up: `--drills` directories, else `drills/` beside
/// or above each playbook and in the current directory.
pub fn library_dirs(explicit: &[PathBuf], given: &[PathBuf]) -> Vec<PathBuf> {
    if !given.is_empty() {
        return given.to_vec();
    }
    let mut dirs = Vec::new();
    for f in explicit {
        let parent = f.parent().unwrap_or(Path::new("."));
        dirs.push(parent.join("drills"));
        dirs.push(parent.join("..").join("drills"));
    }
    dirs.push(PathBuf::from("drills"));
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// A named file that could not be read, and why.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub file: PathBuf,
    pub error: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: error: {}", self.file.display(), self.error)
    }
}

/// Adds the named files (validated in full) and the library's drills to a loader; returns
/// the named files that could not be read (a library file that cannot be read is skipped).
pub fn load(
    loader: &mut Loader<'_>,
    explicit: &[PathBuf],
    library: &[PathBuf],
) -> Result<Vec<Unreadable>> {
    let mut seen = BTreeSet::new();
    let mut unreadable = Vec::new();
    for f in explicit {
        let key = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        if !seen.insert(key) {
            continue;
        }
        match read(f) {
            Ok(text) => {
                loader.add(&f.display().to_string(), &text, true);
            }
            Err(e) => unreadable.push(Unreadable {
                file: f.clone(),
                error: format!("{e:#}"),
            }),
        }
    }
    for dir in library {
        for f in expand(std::slice::from_ref(dir))? {
            let key = std::fs::canonicalize(&f).unwrap_or_else(|_| f.clone());
            if !seen.insert(key) {
                continue;
            }
            if let Ok(text) = read(&f) {
                loader.add(&f.display().to_string(), &text, false);
            }
        }
    }
    Ok(unreadable)
}

/// Reads a playbook, drill or policy file: a regular file only, at most
/// [`drill_spec::node::MAX_INPUT_BYTES`], the limit enforced while reading (a file that
/// grows, or `/dev/zero`, stops there). Opened without blocking, so a FIFO named `x.yaml`
/// is refused at once instead of waiting for a writer that never comes.
pub fn read(f: &Path) -> Result<String> {
    use std::io::Read as _;
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let max = drill_spec::node::MAX_INPUT_BYTES;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(f)
        .context("cannot read the file")?;
    let meta = file.metadata().context("cannot read the file")?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        bail!("it is {what}; drill reads regular files only");
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).min(max + 1));
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .context("cannot read the file")?;
    if bytes.len() > max {
        bail!(
            "the file is more than the {} MiB drill reads",
            max / (1024 * 1024)
        );
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "the file is not UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// How programs are found on this machine, for a policy's exec rules.
pub static HOST: drill_faults::exec::Real = drill_faults::exec::Real;

/// Loads playbooks (files or directories of them) with the drills they use, validated
/// against `policy` when one is in force, reading `${NAME}`s from this process's
/// environment; returns the validation's outcome and the named files that could not be read.
pub fn load_scoped(
    paths: &[PathBuf],
    drills: &[PathBuf],
    policy: Option<&drill_spec::policy::Policy>,
) -> Result<(drill_spec::Outcome, Vec<Unreadable>)> {
    let explicit = expand(paths)?;
    let library = library_dirs(&explicit, drills);
    let env = |name: &str| std::env::var(name).ok();
    let mut loader = Loader::new(&env);
    if let Some(policy) = policy {
        loader = loader.with_scope(drill_spec::policy::Scope {
            policy,
            origin: drill_spec::policy::Origin::Loaded,
            host: Some(&HOST),
        });
    }
    let unreadable = load(&mut loader, &explicit, &library)?;
    Ok((loader.finish(), unreadable))
}
