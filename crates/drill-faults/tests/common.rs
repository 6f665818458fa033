//! Shared helpers: services addressed by env vars with loopback defaults; under CI a missing
//! service fails the test instead of skipping it.

#![allow(dead_code)]

use drill_spec::model::{Allow, Fault};

pub fn redis_url() -> String {
    std::env::var("DRILL_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// True when the service is there; otherwise skips (prints why) or, under CI, fails.
pub fn service(name: &str, up: bool) -> bool {
    if up {
        return true;
    }
    let msg = format!("{name} is not available: run tests/services/up.sh");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("skipped: {msg}");
    false
}

pub fn fault(v: serde_json::Value) -> Fault {
    serde_json::from_value(v).expect("valid fault")
}

pub fn allow(v: serde_json::Value) -> Allow {
    serde_json::from_value(v).expect("valid allow-list")
}

/// Serializes a record and reads it back, as a fresh process holding only the record would.
pub fn roundtrip(r: &drill_faults::RevertRecord) -> drill_faults::RevertRecord {
    let json = serde_json::to_string(r).expect("serializable");
    serde_json::from_str(&json).expect("deserializable")
}
