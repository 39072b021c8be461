//! Retry policy (exponential backoff with jitter, `Retry-After`) and the classification of
//! failed calls.

use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// What kind of failure a call had, which decides whether it may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The server refused the call for rate limiting (429); it was not executed.
    Throttled,
    /// A fault that may go away. `maybe_executed` is true when the server may have executed
    /// the call before failing (timeouts, resets after sending, 500/502/504, unreadable
    /// answers); false when it surely did not (connection refused, 503 maintenance).
    Transient { maybe_executed: bool },
    /// Retrying will not help (4xx, a bad request, a redirect).
    Permanent,
}

/// The class of an HTTP status that is not a success.
pub fn classify_status(status: u16) -> Class {
    match status {
        429 => Class::Throttled,
        503 => Class::Transient { maybe_executed: false },
        408 | 500 | 502 | 504 | 520..=524 => Class::Transient { maybe_executed: true },
        _ => Class::Permanent,
    }
}

/// The class of a transport error.
pub fn classify_error(err: &reqwest::Error) -> Class {
    if err.is_builder() || err.is_redirect() {
        Class::Permanent
    } else if err.is_connect() {
        // The connection never opened: nothing reached the server.
        Class::Transient { maybe_executed: false }
    } else {
        // Timeouts, resets after sending, unreadable bodies: the server may have acted.
        Class::Transient { maybe_executed: true }
    }
}

/// The delay a `Retry-After` header asks for: seconds, or an HTTP date.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Some(secs) = v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0) {
        return Some(Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// How many times and how long to wait.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts of one call, the first included, for transient faults.
    pub max_attempts: u32,
    /// The first backoff; each next one doubles, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Throttled answers (429) tolerated per call; they do not use up `max_attempts`.
    pub max_throttled: u32,
    /// Treat a 429 like any transient fault instead: it uses up an attempt and waits the
    /// backoff (at least its `Retry-After`), for APIs whose callers are told to retry a 429
    /// a few times like a 503 (Boomi's Platform API).
    pub throttle_as_transient: bool,
    /// A `Retry-After` longer than this is not waited for: the call fails (a daily quota).
    pub max_retry_after: Duration,
    /// Wait after a 429 that carries no `Retry-After`.
    pub default_retry_after: Duration,
    /// How long a connector keeps looking for the result of a create whose outcome is unknown
    /// (a timeout or a dropped connection after sending) before it concludes that the create
    /// was not made: a slow commit can land seconds after the client gave up.
    pub recovery_window: Duration,
    /// After a second 429 without `Retry-After` (a quota used up), how long every call of the
    /// budget fails at once instead of being sent.
    pub exhausted_pause: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            max_throttled: 8,
            throttle_as_transient: false,
            max_retry_after: Duration::from_secs(180),
            default_retry_after: Duration::from_secs(60),
            recovery_window: Duration::from_secs(15),
            exhausted_pause: Duration::from_secs(15 * 60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> RetryPolicy {
        RetryPolicy { max_attempts: 1, max_throttled: 0, ..RetryPolicy::default() }
    }

    /// The wait before retry number `retry` (1 for the first retry): exponential, with "equal
    /// jitter" (half fixed, half random) so that clients that failed together do not retry
    /// together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << retry.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis().max(1) as u64);
        half + Duration::from_millis(jitter)
    }

    /// The wait after a throttled answer: `Retry-After` if given, plus a little jitter.
    pub fn throttle_wait(&self, retry_after: Option<Duration>) -> Duration {
        let base = retry_after.unwrap_or(self.default_retry_after);
        base + Duration::from_millis(rand::rng().random_range(50..=250))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses() {
        assert_eq!(classify_status(429), Class::Throttled);
        assert_eq!(classify_status(503), Class::Transient { maybe_executed: false });
        assert_eq!(classify_status(500), Class::Transient { maybe_executed: true });
        assert_eq!(classify_status(504), Class::Transient { maybe_executed: true });
        assert_eq!(classify_status(401), Class::Permanent);
        assert_eq!(classify_status(403), Class::Permanent);
        assert_eq!(classify_status(404), Class::Permanent);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(parse_retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        let p = RetryPolicy::default();
        for retry in 1..10 {
            let d = p.backoff(retry);
            let full = (p.base_delay * (1 << (retry - 1))).min(p.max_delay);
            assert!(d >= full / 2 && d <= full + Duration::from_millis(1), "{retry}: {d:?} vs {full:?}");
        }
        let spread: std::collections::HashSet<Duration> = (0..20).map(|_| p.backoff(3)).collect();
        assert!(spread.len() > 1, "no jitter");
    }
}
