//! Which program a command runs: the resolution `execvp` would do (a `PATH` lookup for a
//! bare name, the working directory for a relative path), done by drill first, so that the
//! allow-list and the policy judge the file that will run — and drill then runs that file
//! by its absolute path, never the name again.
//!
//! Pure: the filesystem is asked through [`Host`], which the caller implements (the CLI and
//! `drill-faults` with the real one, tests with a map). Why it matters: matching the program
//! *name* let `env: {PATH: DIR}` run `DIR/true` for an allowed `true`, and `dir:` move a
//! relative allowed script.

/// What resolution needs from the machine it runs on.
pub trait Host {
    /// The canonical path (symbolic links resolved) of `path` when it is an executable
    /// regular file, else `None`.
    fn executable(&self, path: &str) -> Option<String>;
    /// The process's working directory (where a relative path starts when `dir` is unset).
    fn cwd(&self) -> String;
    /// The process's own `PATH` (not a step's).
    fn path_var(&self) -> String;
}

/// A program found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The absolute path it was found at (what drill runs).
    pub path: String,
    /// The same file with every symbolic link resolved (what the lists are compared with).
    pub canonical: String,
}

/// Joins `rel` onto `base` and removes `.` and `..` components (lexically).
pub fn absolute(base: &str, rel: &str) -> String {
    let joined = if rel.starts_with('/') {
        rel.to_owned()
    } else {
        format!("{}/{rel}", base.trim_end_matches('/'))
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Finds `program` the way the command would run it: a name with a `/` from `dir` (or the
/// working directory), a bare name along `path` (the command's own `PATH` when its `env`
/// sets one, else the process's). Relative `PATH` entries are skipped: they would depend on
/// `dir`.
pub fn resolve(
    program: &str,
    dir: Option<&str>,
    path: Option<&str>,
    host: &dyn Host,
) -> Result<Resolved, String> {
    if program.is_empty() {
        return Err("the command is empty".into());
    }
    let cwd = host.cwd();
    if program.contains('/') {
        let base = dir.map_or_else(|| cwd.clone(), |d| absolute(&cwd, d));
        let path = absolute(&base, program);
        return match host.executable(&path) {
            Some(canonical) => Ok(Resolved { path, canonical }),
            None => Err(format!("{path} is not an executable file")),
        };
    }
    let search = path.map_or_else(|| host.path_var(), str::to_owned);
    for d in search.split(':').filter(|d| d.starts_with('/')) {
        let candidate = absolute(d, program);
        if let Some(canonical) = host.executable(&candidate) {
            return Ok(Resolved {
                path: candidate,
                canonical,
            });
        }
    }
    Err(format!("{program} is not found in PATH ({search})"))
}

/// Environment variables a command may not set under a policy unless the policy names them
/// (`allow.exec_env`): they change which program runs, or what an allowed program loads.
pub fn dangerous_env(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "PATH",
        "IFS",
        "ENV",
        "BASH_ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "CDPATH",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PERL5LIB",
        "PERL5OPT",
        "PERLLIB",
        "RUBYLIB",
        "RUBYOPT",
        "NODE_OPTIONS",
        "NODE_PATH",
        "GCONV_PATH",
        "LOCPATH",
        "HOSTALIASES",
        "GLIBC_TUNABLES",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "CLASSPATH",
        "PHPRC",
        "PHP_INI_SCAN_DIR",
        "HOME",
    ];
    const PREFIX: &[&str] = &["LD_", "DYLD_", "MALLOC_", "BASH_FUNC_"];
    let upper = name.to_ascii_uppercase();
    EXACT.contains(&upper.as_str()) || PREFIX.iter().any(|p| upper.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Fake {
        files: BTreeMap<&'static str, &'static str>,
    }

    impl Host for Fake {
        fn executable(&self, path: &str) -> Option<String> {
            self.files.get(path).map(|c| (*c).to_owned())
        }
        fn cwd(&self) -> String {
            "/work".into()
        }
        fn path_var(&self) -> String {
            "/usr/local/bin:/usr/bin:relative".into()
        }
    }

    fn host() -> Fake {
        Fake {
            files: BTreeMap::from([
                ("/usr/bin/true", "/usr/bin/true"),
                ("/usr/bin/psql", "/usr/lib/postgresql/15/bin/psql"),
                ("/tmp/evil/true", "/tmp/evil/true"),
                ("/work/scripts/failover.sh", "/work/scripts/failover.sh"),
                ("/tmp/x/scripts/failover.sh", "/tmp/x/scripts/failover.sh"),
            ]),
        }
    }

    #[test]
    fn a_bare_name_is_found_along_the_path_the_command_will_use() {
        let h = host();
        let r = resolve("true", None, None, &h).expect("found");
        assert_eq!(r.path, "/usr/bin/true");
        let r = resolve("true", None, Some("/tmp/evil:/usr/bin"), &h).expect("found");
        assert_eq!(
            r.path, "/tmp/evil/true",
            "the command's own PATH is what runs"
        );
        assert!(resolve("nope", None, None, &h).is_err());
    }

    #[test]
    fn an_allowed_name_does_not_cover_another_file_of_that_name() {
        let h = host();
        let mine = resolve("true", None, None, &h).expect("found");
        assert!(crate::allow::entry_covers("true", "true", &mine, &h));
        let theirs = resolve("true", None, Some("/tmp/evil"), &h).expect("found");
        assert!(
            !crate::allow::entry_covers("true", "true", &theirs, &h),
            "PATH=/tmp/evil makes `true` another program"
        );
        assert!(!crate::allow::entry_covers(
            "true",
            "/usr/bin/true",
            &mine,
            &h
        ));
        assert!(crate::allow::entry_covers("/usr/bin/*", "true", &mine, &h));
        // A symbolic link in the list covers the file it points to.
        let psql = resolve(
            "/usr/lib/postgresql/15/bin/psql",
            None,
            None,
            &Fake {
                files: BTreeMap::from([
                    (
                        "/usr/lib/postgresql/15/bin/psql",
                        "/usr/lib/postgresql/15/bin/psql",
                    ),
                    ("/usr/bin/psql", "/usr/lib/postgresql/15/bin/psql"),
                ]),
            },
        )
        .expect("found");
        assert!(crate::allow::entry_covers(
            "/usr/bin/psql",
            "x/psql",
            &psql,
            &Fake {
                files: BTreeMap::from([("/usr/bin/psql", "/usr/lib/postgresql/15/bin/psql")]),
            }
        ));
    }

    #[test]
    fn dir_cannot_move_a_relative_allowed_script() {
        let h = host();
        let here = resolve("./scripts/failover.sh", None, None, &h).expect("found");
        assert!(crate::allow::entry_covers(
            "./scripts/failover.sh",
            "./scripts/failover.sh",
            &here,
            &h
        ));
        let moved = resolve("./scripts/failover.sh", Some("/tmp/x"), None, &h).expect("found");
        assert_eq!(moved.path, "/tmp/x/scripts/failover.sh");
        assert!(!crate::allow::entry_covers(
            "./scripts/failover.sh",
            "./scripts/failover.sh",
            &moved,
            &h
        ));
    }

    #[test]
    fn paths_are_made_absolute_lexically() {
        assert_eq!(absolute("/a/b", "../c/./d"), "/a/c/d");
        assert_eq!(absolute("/a", "/x/../y"), "/y");
        assert!(dangerous_env("LD_PRELOAD") && dangerous_env("path") && !dangerous_env("API_KEY"));
    }
}
