//! Stopping a run from outside: a signal, a service shutting down, a console's "cancel".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

/// A cancellation flag shared by whoever may stop runs and the runs themselves. Cheap to clone;
/// one token may serve many runs (a service's shutdown). The engine looks at it between steps,
/// between documents, and inside jq's loops, so CPU-bound work stops too.
#[derive(Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    flag: Arc<AtomicBool>,
    reason: OnceLock<String>,
    notify: Notify,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel").field("reason", &self.reason()).finish()
    }
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks every run holding this token to stop; the first reason given is kept.
    pub fn cancel(&self, reason: impl Into<String>) {
        let _ = self.inner.reason.set(reason.into());
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Why the token was cancelled; `None` while it is not.
    pub fn reason(&self) -> Option<String> {
        self.is_cancelled().then(|| self.inner.reason.get().cloned().unwrap_or_default())
    }

    /// Resolves with the reason once the token is cancelled.
    pub async fn cancelled(&self) -> String {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(reason) = self.reason() {
                return reason;
            }
            notified.await;
        }
    }

    /// The flag itself, for jq's guard.
    pub(crate) fn flag(&self) -> Arc<AtomicBool> {
        self.inner.flag.clone()
    }
}
