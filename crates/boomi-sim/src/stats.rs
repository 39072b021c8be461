//! Counters behind `GET /__sim/stats`: the shared request counters, then Boomi's own.

use std::sync::atomic::AtomicU64;

use serde_json::{Value, json};
use sim_net::RequestStats;
use sim_net::stats::load;

use crate::model::Db;

#[derive(Default)]
pub(crate) struct Stats {
    /// Requests (by `Object.operation`, or `unmatched`), refusals and faults of the request gate.
    pub gate: RequestStats,
    pub forbidden: AtomicU64,
}

impl Stats {
    pub fn to_json(&self, db: &Db) -> Value {
        self.gate.to_json(json!({
            "forbidden": load(&self.forbidden),
            "invitations": db.invitations,
            "users_removed": db.users_removed,
            "users": db.users.len(),
            "account_user_roles": db.user_roles.len(),
            "account_group_user_roles": db.group_roles.len(),
        }))
    }
}
