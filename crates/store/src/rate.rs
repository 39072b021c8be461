//! Rate budgets kept in the store, so that every node of a cluster shares them (process format
//! section 8): the types of [`Store::reserve_rate`](crate::Store::reserve_rate) and its kin.

use std::time::Duration;

/// The limits of a budget, sent with every reservation (the store keeps only the slots).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// `(limit, per)`: at most `limit` requests in any span of `per`.
    pub windows: Vec<(u32, Duration)>,
    /// At least this long between two starts.
    pub min_interval: Duration,
    /// Added to every window (clock jitter).
    pub margin: Duration,
    /// A request in flight for longer than this (its node died mid-call) counts as answered
    /// then; until then it counts in every window as if sent now.
    pub in_flight_cap: Duration,
}

/// What a reservation gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// A slot, to be given back with [`Store::finish_rate`](crate::Store::finish_rate) when the
    /// answer has come.
    Granted(i64),
    /// Every window is not free yet: ask again after this long.
    Wait(Duration),
    /// The budget is used up (a quota), for this reason.
    Exhausted(String),
}

/// A hold on every caller of a budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RateHold {
    /// No request starts for this long (a `429` with `Retry-After`).
    Pause(Duration),
    /// Every request is refused for this long, with this reason (a quota used up).
    Exhaust(Duration, String),
}
