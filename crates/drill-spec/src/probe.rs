//! What a probe reads, decided once: a Redis probe's one reading ([`RedisReading`], the
//! one-of of [`RedisProbe`]'s fields), which validation, preflight, the backend and the plan
//! all match on.

use crate::model::{QueueRef, RedisProbe};

/// The one reading a Redis probe makes: the one-of of [`RedisProbe`], decided once, here
/// (validation refuses a probe that sets none or several).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisReading<'a> {
    Llen(&'a str),
    Xlen(&'a str),
    Zcard(&'a str),
    Get(&'a str),
    Exists(&'a str),
    Dbsize,
    Info(&'a str),
    Pending(&'a QueueRef),
}

impl RedisProbe {
    /// Every reading set, in the order the fields are written; a valid probe has exactly one.
    pub fn readings(&self) -> Vec<RedisReading<'_>> {
        let mut out = Vec::new();
        if let Some(k) = &self.llen {
            out.push(RedisReading::Llen(k));
        }
        if let Some(k) = &self.xlen {
            out.push(RedisReading::Xlen(k));
        }
        if let Some(k) = &self.zcard {
            out.push(RedisReading::Zcard(k));
        }
        if let Some(k) = &self.get {
            out.push(RedisReading::Get(k));
        }
        if let Some(k) = &self.exists {
            out.push(RedisReading::Exists(k));
        }
        if self.dbsize {
            out.push(RedisReading::Dbsize);
        }
        if let Some(k) = &self.info {
            out.push(RedisReading::Info(k));
        }
        if let Some(q) = &self.pending {
            out.push(RedisReading::Pending(q));
        }
        out
    }

    /// The reading of a valid probe (validation checked there is exactly one).
    pub fn reading(&self) -> Option<RedisReading<'_>> {
        match self.readings().as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

impl RedisReading<'_> {
    /// Every reading's key, in the order of [`RedisProbe`]'s fields.
    pub const NAMES: [&'static str; 8] = [
        "llen", "xlen", "zcard", "get", "exists", "dbsize", "info", "pending",
    ];

    /// Its key in the playbook (`llen`, `pending`, …).
    pub fn name(self) -> &'static str {
        match self {
            RedisReading::Llen(_) => "llen",
            RedisReading::Xlen(_) => "xlen",
            RedisReading::Zcard(_) => "zcard",
            RedisReading::Get(_) => "get",
            RedisReading::Exists(_) => "exists",
            RedisReading::Dbsize => "dbsize",
            RedisReading::Info(_) => "info",
            RedisReading::Pending(_) => "pending",
        }
    }

    /// A queue's backlog (a length, or a job system's pending jobs)?
    pub fn is_backlog(self) -> bool {
        matches!(
            self,
            RedisReading::Llen(_)
                | RedisReading::Xlen(_)
                | RedisReading::Zcard(_)
                | RedisReading::Pending(_)
        )
    }
}
