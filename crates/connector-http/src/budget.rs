//! Where rate budgets live: in this OS process ([`Pacer`]s shared per key, the default), or
//! outside it when the program installs a [`BudgetSource`] (the command line does when the run
//! store is shared by a cluster, so that every node with one token keeps one budget).
//!
//! Connectors ask [`shared_budget`] and never know which: the source is installed once, before
//! any connection is made.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::pacer::{Pacer, RateBudget, shared_pacer};

/// Makes the budget of a key when budgets are kept outside this OS process.
pub trait BudgetSource: Send + Sync + std::fmt::Debug {
    /// The budget of `key` (a service and a hash of its credential, see
    /// [`budget_key`](crate::budget_key)); `local` is this process's pacer of the key: the
    /// limits to keep, and the budget to fall back on.
    fn budget(&self, key: &str, local: Arc<Pacer>) -> Arc<dyn RateBudget>;
}

fn source() -> &'static OnceLock<Arc<dyn BudgetSource>> {
    static SOURCE: OnceLock<Arc<dyn BudgetSource>> = OnceLock::new();
    &SOURCE
}

/// Keeps every budget made from now on in `source`. Once per OS process; `false` if a source
/// was already installed (it stays).
pub fn install_budget_source(budgets: Arc<dyn BudgetSource>) -> bool {
    source().set(budgets).is_ok()
}

/// The budget of `key`: from the installed [`BudgetSource`], or this process's pacer made by
/// `make` the first time (see [`shared_pacer`]).
pub fn shared_budget(key: &str, make: impl FnOnce() -> Pacer) -> Arc<dyn RateBudget> {
    let local = shared_pacer(key, make);
    match source().get() {
        Some(budgets) => budgets.budget(key, local),
        None => local,
    }
}

/// The limits of a pacer, for a budget kept elsewhere: `(limit, per)` windows, the minimum
/// spacing of starts, and the margin added to every window.
pub fn limits_of(pacer: &Pacer) -> (Vec<(u32, Duration)>, Duration, Duration) {
    let windows = pacer.windows().iter().map(|w| (w.limit, w.per)).collect();
    (windows, pacer.min_interval(), pacer.margin())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pacer::Window;

    #[test]
    fn without_a_source_budgets_are_this_process_pacers() {
        let a = shared_budget("budget-test k", || Pacer::new(vec![Window::per_second(4)]));
        let b = shared_pacer("budget-test k", Pacer::unlimited);
        assert!(std::ptr::addr_eq(Arc::as_ptr(&a), Arc::as_ptr(&b)));
    }

    #[test]
    fn limits_of_a_pacer_are_its_windows_spacing_and_margin() {
        let pacer = Pacer::new(vec![Window::per_second(4), Window::per_minute(50)])
            .with_min_interval(Duration::from_millis(250))
            .with_margin(Duration::from_millis(20));
        let (windows, min_interval, margin) = limits_of(&pacer);
        assert_eq!(windows, vec![(4, Duration::from_secs(1)), (50, Duration::from_secs(60))]);
        assert_eq!((min_interval, margin), (Duration::from_millis(250), Duration::from_millis(20)));
    }
}
