//! The request counters every simulator reports first in `GET /__sim/stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A counter's current value.
pub fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// What the request gate saw: requests by operation, refusals, and faults by kind.
#[derive(Default)]
pub struct RequestStats {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub faults: AtomicU64,
    pub unauthorized: AtomicU64,
    by_operation: Mutex<BTreeMap<String, u64>>,
    by_fault: Mutex<BTreeMap<&'static str, u64>>,
}

impl RequestStats {
    /// Counts one API request and each of its operations.
    pub fn request<'a>(&self, operations: impl IntoIterator<Item = &'a str>) {
        bump(&self.requests);
        let mut by_op = self.by_operation.lock().unwrap_or_else(|e| e.into_inner());
        for op in operations {
            *by_op.entry(op.to_string()).or_default() += 1;
        }
    }

    /// Counts one injected fault of `kind`.
    pub fn fault(&self, kind: &'static str) {
        bump(&self.faults);
        *self.by_fault.lock().unwrap_or_else(|e| e.into_inner()).entry(kind).or_default() += 1;
    }

    /// The counters as a JSON object, followed by the fields of `specific` (the simulator's own
    /// counters and object counts; ignored unless it is an object).
    pub fn to_json(&self, specific: Value) -> Value {
        let by_op = self.by_operation.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let by_fault = self.by_fault.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = json!({
            "requests": load(&self.requests),
            "by_operation": by_op,
            "throttled": load(&self.throttled),
            "faults": load(&self.faults),
            "faults_by_kind": by_fault,
            "unauthorized": load(&self.unauthorized),
        });
        if let (Value::Object(out), Value::Object(fields)) = (&mut out, specific) {
            out.extend(fields);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{RequestStats, bump};

    #[test]
    fn common_counters_come_first_then_the_simulators_own() {
        let stats = RequestStats::default();
        stats.request(["User.query", "User.query"]);
        stats.request(["unmatched"]);
        stats.fault("503");
        bump(&stats.throttled);
        let out = stats.to_json(json!({ "forbidden": 2 }));
        let keys: Vec<&str> = out.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        assert_eq!(
            keys,
            ["requests", "by_operation", "throttled", "faults", "faults_by_kind", "unauthorized", "forbidden"]
        );
        assert_eq!(out["requests"], 2);
        assert_eq!(out["by_operation"], json!({ "User.query": 2, "unmatched": 1 }));
        assert_eq!(out["faults_by_kind"], json!({ "503": 1 }));
        assert_eq!(out["throttled"], 1);
    }
}
