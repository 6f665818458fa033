//! Who owns a run: host, pid, the process's start time (so a reused pid is not mistaken for
//! the owner) and a random id drawn when the process starts — the identity itself: two
//! processes never share it, whatever their hostnames. Whether an owner still holds its run is
//! the lease's business (`store/`, on the store's clock); the pid may only tell, on the same
//! host, that an owner is certainly gone.

/// A run's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start: u64,
    /// Random, per process (16 hex digits); empty in rows written before it existed.
    pub id: String,
}

impl Owner {
    /// This process (the same identity every time it is asked).
    pub fn me() -> Owner {
        static ME: std::sync::OnceLock<Owner> = std::sync::OnceLock::new();
        ME.get_or_init(|| {
            use std::hash::{BuildHasher, Hasher};
            let pid = std::process::id();
            // std seeds every RandomState from the OS's random source.
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(pid);
            Owner {
                host: hostname(),
                pid,
                start: start_time(pid).unwrap_or(0),
                id: format!("{:016x}", h.finish()),
            }
        })
        .clone()
    }

    pub fn parse(s: &str) -> Option<Owner> {
        let parts: Vec<&str> = s.rsplitn(4, '/').collect();
        let (id, rest) = match parts.as_slice() {
            [id, start, pid, host]
                if id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                (id.to_string(), [*start, *pid, *host])
            }
            _ => {
                let mut it = s.rsplitn(3, '/');
                (String::new(), [it.next()?, it.next()?, it.next()?])
            }
        };
        Some(Owner {
            host: rest[2].to_owned(),
            pid: rest[1].parse().ok()?,
            start: rest[0].parse().ok()?,
            id,
        })
    }

    /// Whether the owner's process exists: `Some` on its own host (where it can be known),
    /// `None` elsewhere. A stopped (frozen) process exists: this says nothing about whether
    /// it still holds a lease.
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
        write!(f, "{}/{}/{}", self.host, self.pid, self.start)?;
        if !self.id.is_empty() {
            write!(f, "/{}", self.id)?;
        }
        Ok(())
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
            ..me.clone()
        };
        assert_eq!(reused.alive(), Some(false));
        let elsewhere = Owner {
            host: "elsewhere.invalid".into(),
            ..Owner::me()
        };
        assert_eq!(elsewhere.alive(), None);
        assert_eq!(me.id.len(), 16);
        assert_eq!(Owner::me(), me, "one identity per process");
        let old = Owner::parse("host.example/12/34").expect("a row from before the id");
        assert_eq!((old.pid, old.start, old.id.as_str()), (12, 34, ""));
    }
}
