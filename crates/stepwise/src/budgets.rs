//! Rate budgets kept in a shared run store: the bridge between the store's rate operations
//! ([`store::Store::reserve_rate`]) and connector-http's [`RateBudget`], so that every node of a
//! cluster with one token keeps under one budget (process format section 8). The engine and the
//! connectors know nothing of it: the command line installs it as the process's
//! [`BudgetSource`] when the store is shared.
//!
//! * A node asks the store for a slot in one statement per request; callers on one node queue in
//!   arrival order behind one lock per budget, so a node has at most one reservation of a budget
//!   going at a time. When the windows are full the store says how long until one frees, and
//!   the node sleeps that long (no polling in between).
//! * The slot is given back when the answer comes (a second statement, sent in the background):
//!   until then it counts in every window.
//! * A `429` pauses (or, for a used-up quota, exhausts) the budget for every node.
//! * When the store cannot be reached (twice in a row), the request is paced by this node's own
//!   budget instead, with a warning: the node keeps to the limits alone, and the cluster's
//!   requests are shared again as soon as the store answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connector_http::{BudgetSource, Exhausted, Pacer, RateBudget};
use futures::future::BoxFuture;
use store::{RateHold, RateLimits, Reservation, Store};
use tokio::runtime::Handle;
use tokio::time::Instant;

/// A request in flight for longer than this (twice the HTTP request timeout) counts as
/// answered: a node killed mid-call does not hold a slot of the budget for ever.
const IN_FLIGHT_CAP: Duration = Duration::from_secs(120);

/// Marks the ids of slots taken from the node's own budget (the store's ids are positive
/// 63-bit numbers).
const LOCAL: u64 = 1 << 63;

/// Keeps budgets in the store when it is shared by a cluster; returns whether it does.
pub fn install(store: &Arc<dyn Store>) -> bool {
    if !store.shares_rate_budgets() {
        return false;
    }
    let source = StoreBudgets { store: store.clone(), runtime: Handle::current(), budgets: Mutex::default() };
    if connector_http::install_budget_source(Arc::new(source)) {
        tracing::debug!(store = %store.describe(), "Rate budgets are shared through the run store.");
    }
    true
}

/// The budgets of this OS process, kept in `store`.
#[derive(Debug)]
struct StoreBudgets {
    store: Arc<dyn Store>,
    /// The runtime that owns the store's connections; the runs' own threads call through it.
    runtime: Handle,
    budgets: Mutex<HashMap<String, Arc<StoreBudget>>>,
}

impl BudgetSource for StoreBudgets {
    fn budget(&self, key: &str, local: Arc<Pacer>) -> Arc<dyn RateBudget> {
        if local.windows().is_empty() && local.min_interval().is_zero() {
            // Pacing is switched off (`STEPWISE_KNOWBE4_RATE=off`): nothing to share.
            return local;
        }
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        budgets
            .entry(key.to_owned())
            .or_insert_with(|| {
                let (windows, min_interval, margin) = connector_http::limits_of(&local);
                Arc::new(StoreBudget {
                    key: key.to_owned(),
                    store: self.store.clone(),
                    runtime: self.runtime.clone(),
                    limits: RateLimits { windows, min_interval, margin, in_flight_cap: IN_FLIGHT_CAP },
                    local,
                    turn: tokio::sync::Mutex::new(()),
                    unreachable: AtomicBool::new(false),
                })
            })
            .clone()
    }
}

/// One budget (a service and a token hash) kept in the store.
#[derive(Debug)]
struct StoreBudget {
    key: String,
    store: Arc<dyn Store>,
    runtime: Handle,
    limits: RateLimits,
    /// This node's own budget of the key, used while the store cannot be reached.
    local: Arc<Pacer>,
    /// The node's callers take turns, in arrival order.
    turn: tokio::sync::Mutex<()>,
    /// The last reservation failed (logged once per outage).
    unreachable: AtomicBool,
}

impl StoreBudget {
    /// One reservation, retried once (a connection the database dropped fails one call; the
    /// pool opens a new one for the next).
    async fn reserve(&self) -> Result<Reservation, String> {
        let mut error = String::new();
        for _ in 0..2 {
            let (store, key, limits) = (self.store.clone(), self.key.clone(), self.limits.clone());
            let (answer, answered) = tokio::sync::oneshot::channel();
            self.runtime.spawn(async move {
                let result = store.reserve_rate(&key, &limits).await;
                // The caller went away (its run was cancelled) while the slot was granted: give
                // it back rather than let it count until the in-flight cap.
                if let Err(Ok(Reservation::Granted(slot))) = answer.send(result) {
                    let _ = store.finish_rate(&key, slot).await;
                }
            });
            match answered.await {
                Ok(Ok(reservation)) => return Ok(reservation),
                Ok(Err(e)) => error = e.to_string(),
                Err(e) => error = e.to_string(),
            }
        }
        Err(error)
    }

    /// Sends `hold` to the store in the background.
    fn hold(&self, hold: RateHold) {
        let (store, key) = (self.store.clone(), self.key.clone());
        self.runtime.spawn(async move {
            if let Err(error) = store.hold_rate(&key, &hold).await {
                tracing::warn!(%error, "Cannot pause the shared rate budget in the run store; other nodes learn of the limit from their own answers.");
            }
        });
    }
}

impl RateBudget for StoreBudget {
    fn acquire(&self) -> BoxFuture<'_, Result<u64, Exhausted>> {
        Box::pin(async move {
            let _turn = self.turn.lock().await;
            loop {
                match self.reserve().await {
                    Ok(Reservation::Granted(slot)) => {
                        if self.unreachable.swap(false, Ordering::Relaxed) {
                            tracing::info!("The run store answers again; requests share the cluster's rate budget.");
                        }
                        return Ok(u64::try_from(slot).unwrap_or(0));
                    }
                    Ok(Reservation::Wait(wait)) => tokio::time::sleep(wait).await,
                    Ok(Reservation::Exhausted(reason)) => return Err(Exhausted { reason }),
                    Err(error) => {
                        if !self.unreachable.swap(true, Ordering::Relaxed) {
                            tracing::warn!(%error, "Cannot reserve a request in the shared rate budget (run store unreachable); this node keeps to the limits on its own until the store answers.");
                        }
                        return RateBudget::acquire(self.local.as_ref()).await.map(|id| id | LOCAL);
                    }
                }
            }
        })
    }

    fn finish(&self, id: u64) {
        if id & LOCAL != 0 {
            RateBudget::finish(self.local.as_ref(), id & !LOCAL);
            return;
        }
        let (store, key) = (self.store.clone(), self.key.clone());
        let slot = i64::try_from(id).unwrap_or(i64::MAX);
        self.runtime.spawn(async move {
            if let Err(error) = store.finish_rate(&key, slot).await {
                // The slot keeps counting until the in-flight cap: slower, never over the limit.
                tracing::debug!(%error, "Cannot mark a request of the shared rate budget answered.");
            }
        });
    }

    fn pause_until(&self, until: Instant) {
        RateBudget::pause_until(self.local.as_ref(), until);
        self.hold(RateHold::Pause(until.saturating_duration_since(Instant::now())));
    }

    fn exhaust(&self, until: Instant, reason: String) {
        RateBudget::exhaust(self.local.as_ref(), until, reason.clone());
        self.hold(RateHold::Exhaust(until.saturating_duration_since(Instant::now()), reason));
    }
}
