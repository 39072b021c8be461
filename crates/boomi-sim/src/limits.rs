//! The account's request limit: a sliding one-second window shared by every authenticated
//! request of the account (Boomi: 10 requests per second per account, HTTP 503 beyond).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Admitted-request log of the last second.
pub(crate) struct Limiter {
    per_second: Option<u32>,
    admitted: Mutex<VecDeque<Instant>>,
}

impl Limiter {
    pub fn new(per_second: Option<u32>) -> Self {
        Limiter { per_second, admitted: Mutex::new(VecDeque::new()) }
    }

    /// Admits a request now (true) or refuses it (false). Refused requests do not count.
    pub fn admit(&self) -> bool {
        let Some(limit) = self.per_second else {
            return true;
        };
        let now = Instant::now();
        let window = Duration::from_secs(1);
        let mut log = self.admitted.lock().unwrap_or_else(|e| e.into_inner());
        while log.front().is_some_and(|t| now.duration_since(*t) >= window) {
            log.pop_front();
        }
        if log.len() >= limit as usize {
            return false;
        }
        log.push_back(now);
        true
    }
}
