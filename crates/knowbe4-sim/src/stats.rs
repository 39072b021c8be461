//! Counters behind `GET /__sim/stats`: the shared request counters, then KnowBe4's own.

use std::sync::atomic::AtomicU64;

use serde_json::{Value, json};
use sim_net::RequestStats;
use sim_net::stats::load;

use crate::model::Db;

#[derive(Default)]
pub(crate) struct Stats {
    /// Requests, refusals and faults of the request gate.
    pub gate: RequestStats,
    pub gateway_timeouts: AtomicU64,
}

impl Stats {
    pub fn to_json(&self, db: &Db) -> Value {
        self.gate.to_json(json!({
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
        }))
    }
}
