//! Sliding-window request limits per token: per second, per minute (burst) and per day.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which window refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Window {
    Second,
    Minute,
    Day,
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Second => "second",
            Window::Minute => "minute",
            Window::Day => "day",
        }
    }

    fn length(self) -> Duration {
        match self {
            Window::Second => Duration::from_secs(1),
            Window::Minute => Duration::from_secs(60),
            Window::Day => Duration::from_secs(86_400),
        }
    }
}

/// A refused request: which window and how long until it frees a slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Throttled {
    pub window: Window,
    pub retry_after_secs: u64,
}

#[derive(Default)]
struct Windows {
    admitted: [VecDeque<Instant>; 3],
}

/// The limits and the admitted-request log of each token.
pub(crate) struct Limiter {
    limits: [(Window, Option<u32>); 3],
    state: Mutex<HashMap<String, Windows>>,
}

impl Limiter {
    pub fn new(per_second: Option<u32>, per_minute: Option<u32>, per_day: Option<u32>) -> Self {
        Limiter {
            limits: [(Window::Second, per_second), (Window::Minute, per_minute), (Window::Day, per_day)],
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Admits a request of `token` now, or tells which window is full. Refused requests do not
    /// count against any window.
    pub fn check(&self, token: &str) -> Result<(), Throttled> {
        if self.limits.iter().all(|(_, l)| l.is_none()) {
            return Ok(());
        }
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let windows = state.entry(token.to_string()).or_default();
        let mut refused: Option<Throttled> = None;
        for (slot, (window, limit)) in self.limits.iter().enumerate() {
            let Some(limit) = limit else { continue };
            let log = &mut windows.admitted[slot];
            while log.front().is_some_and(|t| now.duration_since(*t) >= window.length()) {
                log.pop_front();
            }
            if log.len() >= *limit as usize {
                let oldest = log.front().copied().unwrap_or(now);
                let wait = window.length().saturating_sub(now.duration_since(oldest));
                let secs = wait.as_millis().div_ceil(1000).max(1);
                let secs = u64::try_from(secs).unwrap_or(u64::MAX);
                if refused.is_none_or(|r| secs > r.retry_after_secs) {
                    refused = Some(Throttled { window: *window, retry_after_secs: secs });
                }
            }
        }
        if let Some(r) = refused {
            return Err(r);
        }
        for (slot, (_, limit)) in self.limits.iter().enumerate() {
            if limit.is_some() {
                windows.admitted[slot].push_back(now);
            }
        }
        Ok(())
    }

    /// Forgets every admitted request (all windows start empty).
    pub fn reset(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
