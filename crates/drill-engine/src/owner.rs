//! Who owns a run: host, pid and the process's start time (so a reused pid is not mistaken
//! for the owner). On the same host, liveness is known at once; elsewhere, the lease decides.

/// A run's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start: u64,
}

impl Owner {
    /// This process.
    pub fn me() -> Owner {
        let pid = std::process::id();
        Owner {
            host: hostname(),
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    pub fn parse(s: &str) -> Option<Owner> {
        let mut it = s.rsplitn(3, '/');
        let start = it.next()?.parse().ok()?;
        let pid = it.next()?.parse().ok()?;
        let host = it.next()?.to_owned();
        Some(Owner { host, pid, start })
    }

    /// Whether the owner is alive: `Some` on its own host (where it can be known), `None`
    /// elsewhere.
    pub fn alive(&self) -> Option<bool> {
        if self.host != hostname() {
            return None;
        }
        match start_time(self.pid) {
            None => Some(false),
            Some(t) => Some(self.start == 0 || t == self.start),
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.host, self.pid, self.start)
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// A process's start time, or `None` when there is no such process (or it is a zombie).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); the start time is field 22.
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_pid_is_not() {
        let me = Owner::me();
        assert_eq!(Owner::parse(&me.to_string()), Some(me.clone()));
        assert_eq!(me.alive(), Some(true));
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        child.wait().expect("wait");
        let gone = Owner { pid, ..me.clone() };
        assert_eq!(gone.alive(), Some(false));
        let reused = Owner {
            start: me.start + 1,
            ..me
        };
        assert_eq!(reused.alive(), Some(false));
        let elsewhere = Owner {
            host: "elsewhere.invalid".into(),
            ..Owner::me()
        };
        assert_eq!(elsewhere.alive(), None);
    }
}
