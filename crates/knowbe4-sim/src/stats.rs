//! Counters behind `GET /__sim/stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::model::Db;

#[derive(Default)]
pub(crate) struct Stats {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub faults: AtomicU64,
    pub unauthorized: AtomicU64,
    pub gateway_timeouts: AtomicU64,
    by_operation: Mutex<BTreeMap<String, u64>>,
    by_fault: Mutex<BTreeMap<&'static str, u64>>,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    /// Counts one API request and its operations.
    pub fn request(&self, operations: &[String]) {
        bump(&self.requests);
        let mut by_op = self.by_operation.lock().unwrap_or_else(|e| e.into_inner());
        for op in operations {
            *by_op.entry(op.clone()).or_default() += 1;
        }
    }

    pub fn fault(&self, kind: &'static str) {
        bump(&self.faults);
        *self.by_fault.lock().unwrap_or_else(|e| e.into_inner()).entry(kind).or_default() += 1;
    }

    pub fn to_json(&self, db: &Db) -> Value {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let by_op = self.by_operation.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let by_fault = self.by_fault.lock().unwrap_or_else(|e| e.into_inner()).clone();
        json!({
            "requests": load(&self.requests),
            "by_operation": by_op,
            "throttled": load(&self.throttled),
            "faults": load(&self.faults),
            "faults_by_kind": by_fault,
            "unauthorized": load(&self.unauthorized),
            "gateway_timeouts": load(&self.gateway_timeouts),
            "objects": {
                "users": db.users.len(),
                "groups": db.groups.len(),
                "training_campaigns": db.training_campaigns.len(),
                "phishing_campaigns": db.phishing_campaigns.len(),
                "accounts": db.accounts.len(),
                "enrollments": db.enrollments.len(),
                "phishing_campaign_runs": db.runs.len(),
            },
        })
    }
}
