//! The records of the console (process format section 9): API tokens (only their hash), the
//! audit trail and paused processes.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What a token may do; each role may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads processes, runs, steps and logs.
    Viewer,
    /// Also runs now, cancels, pauses and resumes.
    Operator,
    /// Also manages tokens and reads the audit trail.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role '{s}'; expected viewer, operator or admin"))
    }
}

/// What [`crate::Store::revoke_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The token is gone, and its sessions with it.
    Revoked,
    /// There was no token of that name.
    NoSuchToken,
    /// It is the last admin token, asked to be kept: nothing changed.
    LastAdmin,
}

/// A token to record ([`crate::Store::create_token`]). The token itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// A unique name, for people (`token revoke NAME`, the audit trail).
    pub name: String,
    /// The SHA-256 of the token, lower-case hex.
    pub hash: String,
    /// What it may do.
    pub role: Role,
    /// Whether it may see document contents.
    pub view_data: bool,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// A recorded token, without its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    /// Its name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Whether it may see document contents.
    pub view_data: bool,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was last accepted.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// One line of the audit trail: who did what to what, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// The token's name (or `cli` for the command line).
    pub actor: String,
    /// What: `run_now`, `cancel`, `pause`, `resume`, `token_create`, `token_revoke`.
    pub action: String,
    /// On what: a process name, a run id, a token name.
    pub target: String,
    /// More, for people (a run id queued, the outcome).
    pub detail: Option<String>,
}

/// A process whose schedules do not fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Paused {
    /// The process name.
    pub process: String,
    /// Who paused it.
    pub paused_by: String,
    /// When.
    pub paused_at: DateTime<Utc>,
}
