//! Shared helpers: services addressed by env vars with loopback defaults; a missing service
//! fails the test unless DRILL_TEST_SKIP_MISSING=1 (drill_testkit::service).

#![allow(dead_code)]

use drill_spec::fault::ValidFault;
use drill_spec::model::Allow;

#[allow(unused_imports)]
pub use drill_testkit::{redis_url, service};

/// A fault as validation types it (the raw fault, through the same rules).
pub fn fault(v: serde_json::Value) -> ValidFault {
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
