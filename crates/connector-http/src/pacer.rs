//! A fair async pacer that keeps a caller under several request windows at once.
//!
//! APIs state limits such as "4 requests per second, and a burst limit of 50 per minute". The
//! server counts a request when it arrives; the client only knows when it sent it and when the
//! answer came back. The pacer therefore reserves a slot when a request starts and moves the
//! slot's timestamp to the moment the answer arrived ([`Permit::finish`]), which is never
//! earlier than the server's count: the next request that depends on this slot is sent a full
//! window after the server saw it, whatever the latency. A small `margin` absorbs clock jitter.
//!
//! Waiters are served in arrival order (a tokio mutex is fair), and a `429` can pause every
//! caller at once ([`Pacer::pause_until`]). Pacers are shared per API key with
//! [`shared_pacer`], so two connections or two runs with the same key share one budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// "`limit` requests per `per`", counted over a rolling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub limit: u32,
    pub per: Duration,
}

impl Window {
    pub fn per_second(limit: u32) -> Window {
        Window { limit, per: Duration::from_secs(1) }
    }

    pub fn per_minute(limit: u32) -> Window {
        Window { limit, per: Duration::from_secs(60) }
    }
}

#[derive(Debug)]
struct Slot {
    id: u64,
    at: Instant,
    /// The answer has come; until then the slot counts in every window whatever its age,
    /// because the server may count the request at any moment while it is in flight.
    done: bool,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    slots: Vec<Slot>,
    last_start: Option<Instant>,
    paused_until: Option<Instant>,
    /// The budget is used up (a quota) until then, for this reason.
    exhausted: Option<(Instant, String)>,
    acquired: u64,
    waited: Duration,
}

/// Keeps callers under every window at once. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Pacer {
    windows: Vec<Window>,
    min_interval: Duration,
    margin: Duration,
    turnstile: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

/// A reserved request slot. Call [`Permit::finish`] when the answer has arrived (dropping the
/// permit does the same).
#[derive(Debug)]
pub struct Permit<'a> {
    pacer: &'a Pacer,
    id: u64,
    done: bool,
}

impl Permit<'_> {
    /// Marks the request as answered now: its slot counts from this instant.
    pub fn finish(mut self) {
        self.release();
    }

    fn release(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.pacer.finish_slot(self.id);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

impl Pacer {
    /// A pacer with these windows, no minimum spacing, and a 20 ms safety margin.
    pub fn new(windows: Vec<Window>) -> Pacer {
        let windows = windows.into_iter().filter(|w| w.limit > 0 && !w.per.is_zero()).collect();
        Pacer {
            windows,
            min_interval: Duration::ZERO,
            margin: Duration::from_millis(20),
            turnstile: tokio::sync::Mutex::new(()),
            state: Mutex::new(State::default()),
        }
    }

    /// A pacer that never waits (except for [`Pacer::pause_until`]).
    pub fn unlimited() -> Pacer {
        Pacer::new(Vec::new())
    }

    /// Also keeps this much time between the starts of two requests (spreads a per-second
    /// budget evenly, for servers that count with a leaky bucket).
    pub fn with_min_interval(mut self, interval: Duration) -> Pacer {
        self.min_interval = interval;
        self
    }

    /// Extra time added to every window.
    pub fn with_margin(mut self, margin: Duration) -> Pacer {
        self.margin = margin;
        self
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// The minimum time between the starts of two requests.
    pub fn min_interval(&self) -> Duration {
        self.min_interval
    }

    /// The time added to every window.
    pub fn margin(&self) -> Duration {
        self.margin
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks slot `id` as answered now: it counts from this instant.
    fn finish_slot(&self, id: u64) {
        let now = Instant::now();
        let mut s = self.lock();
        if let Some(slot) = s.slots.iter_mut().find(|x| x.id == id) {
            slot.at = slot.at.max(now);
            slot.done = true;
        }
    }

    /// Waits (fairly, in arrival order) until a request may start, and reserves its slot.
    pub async fn acquire(&self) -> Permit<'_> {
        let id = self.acquire_slot().await;
        Permit { pacer: self, id, done: false }
    }

    /// [`Pacer::acquire`] without the guard: the caller must [`finish_slot`](Pacer::finish_slot).
    async fn acquire_slot(&self) -> u64 {
        let _turn = self.turnstile.lock().await;
        let began = Instant::now();
        loop {
            let wait = {
                let mut s = self.lock();
                let now = Instant::now();
                match self.wait_needed(&mut s, now) {
                    None => {
                        let id = s.next_id;
                        s.next_id += 1;
                        s.slots.push(Slot { id, at: now, done: false });
                        s.last_start = Some(now);
                        s.acquired += 1;
                        s.waited += now.saturating_duration_since(began);
                        return id;
                    }
                    Some(d) => d,
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// How long until a request may start, or `None` if it may start now.
    fn wait_needed(&self, s: &mut State, now: Instant) -> Option<Duration> {
        let longest = self.windows.iter().map(|w| w.per).max().unwrap_or(Duration::ZERO) + self.margin;
        s.slots.retain(|x| !x.done || x.at + longest > now);
        let mut until = now;
        if let Some(p) = s.paused_until {
            until = until.max(p);
        }
        if let Some(last) = s.last_start {
            until = until.max(last + self.min_interval);
        }
        let mut times: Vec<Instant> = Vec::new();
        for w in &self.windows {
            let span = w.per + self.margin;
            times.clear();
            // A slot in flight counts as if its request were counted now.
            times.extend(
                s.slots.iter().map(|x| if x.done { x.at } else { x.at.max(now) }).filter(|at| *at + span > now),
            );
            let limit = w.limit as usize;
            if times.len() >= limit {
                times.sort_unstable();
                let freeing = times[times.len() - limit] + span;
                if freeing > until {
                    until = freeing;
                }
            }
        }
        (until > now).then(|| until - now)
    }

    /// Stops every caller until `until` (a `429` with `Retry-After`).
    pub fn pause_until(&self, until: Instant) {
        let mut s = self.lock();
        if s.paused_until.is_none_or(|p| p < until) {
            s.paused_until = Some(until);
        }
    }

    /// Requests let through so far, and the total time they waited.
    pub fn stats(&self) -> (u64, Duration) {
        let s = self.lock();
        (s.acquired, s.waited)
    }
}

fn registry() -> &'static Mutex<HashMap<String, Arc<Pacer>>> {
    static PACERS: OnceLock<Mutex<HashMap<String, Arc<Pacer>>>> = OnceLock::new();
    PACERS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The pacer of `key` (see [`budget_key`]: the service plus a hash of the API key), made by
/// `make` the first time. Every connection, step and run of the process that uses the same key
/// shares it, and it outlives them: a run that starts right after another finds the windows
/// the first one filled (a few bytes per key, kept for the life of the process).
pub fn shared_pacer(key: &str, make: impl FnOnce() -> Pacer) -> Arc<Pacer> {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    map.entry(key.to_owned()).or_insert_with(|| Arc::new(make())).clone()
}

/// The key of a budget: the service (for example `knowbe4 https://.../graphql`) and a hash of
/// the credential (SHA-256), which is never stored.
pub fn budget_key(service: &str, credential: &str) -> String {
    use sha2::{Digest, Sha256};
    // A stable hash (the same on every node and every version), since a cluster's nodes share
    // budgets by this key; its first 16 bytes name the credential without revealing it.
    let digest = Sha256::digest(credential.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{service} {hex}")
}

/// A request budget shared by every caller of one service and credential: the windows, a
/// pause after a throttled answer, and exhaustion (a quota used up). [`Pacer`] is the
/// in-process implementation; a budget shared by a cluster (kept in a database) implements the
/// same trait.
pub trait RateBudget: Send + Sync + std::fmt::Debug {
    /// Waits until a request may start and reserves its slot; `Err` (at once) while the budget
    /// is exhausted.
    fn acquire(&self) -> futures::future::BoxFuture<'_, Result<u64, Exhausted>>;
    /// The answer to the request of slot `id` has come (or it failed).
    fn finish(&self, id: u64);
    /// Stops every caller until `until` (a `429` with `Retry-After`).
    fn pause_until(&self, until: Instant);
    /// Refuses every request until `until` (a quota used up), with `reason`.
    fn exhaust(&self, until: Instant, reason: String);
}

/// The budget is used up.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{reason}")]
pub struct Exhausted {
    pub reason: String,
}

impl RateBudget for Pacer {
    fn acquire(&self) -> futures::future::BoxFuture<'_, Result<u64, Exhausted>> {
        Box::pin(async move {
            if let Some((until, reason)) = self.lock().exhausted.clone()
                && Instant::now() < until
            {
                return Err(Exhausted { reason });
            }
            Ok(self.acquire_slot().await)
        })
    }

    fn finish(&self, id: u64) {
        self.finish_slot(id);
    }

    fn pause_until(&self, until: Instant) {
        Pacer::pause_until(self, until);
    }

    fn exhaust(&self, until: Instant, reason: String) {
        self.lock().exhausted = Some((until, reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Start times of `n` requests through `pacer`, each answered after `latency`.
    async fn run(pacer: &Pacer, n: usize, latency: Duration) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..n {
            let p = pacer.acquire().await;
            starts.push(t0.elapsed());
            tokio::time::sleep(latency).await;
            p.finish();
        }
        starts
    }

    fn max_in_window(starts: &[Duration], per: Duration) -> usize {
        (0..starts.len()).map(|i| starts[i..].iter().take_while(|t| **t < starts[i] + per).count()).max().unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_under_every_window_at_once() {
        let pacer = Pacer::new(vec![Window::per_second(4), Window::per_minute(50)]).with_margin(Duration::ZERO);
        let starts = run(&pacer, 120, Duration::from_millis(5)).await;
        assert!(max_in_window(&starts, Duration::from_secs(1)) <= 4);
        assert!(max_in_window(&starts, Duration::from_secs(60)) <= 50);
        // 120 requests: the 101st can start 2 minutes (plus latencies) after the first.
        let last = starts[119];
        assert!(last >= Duration::from_secs(120), "{last:?}");
        assert!(last < Duration::from_secs(125), "{last:?}");
        // The first 50 go at 4 per second.
        assert!(starts[49] >= Duration::from_secs(12) && starts[49] < Duration::from_secs(13), "{:?}", starts[49]);
    }

    #[tokio::test(start_paused = true)]
    async fn windows_count_from_the_answer() {
        // With a slow answer, the next slot counts from when the answer came.
        let pacer = Pacer::new(vec![Window::per_second(1)]).with_margin(Duration::ZERO);
        let starts = run(&pacer, 3, Duration::from_millis(300)).await;
        assert!(starts[1] >= Duration::from_millis(1300), "{starts:?}");
        assert!(starts[2] >= Duration::from_millis(2600), "{starts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn min_interval_spreads_requests() {
        let pacer = Pacer::new(vec![Window::per_second(4)]).with_min_interval(Duration::from_millis(250));
        let starts = run(&pacer, 4, Duration::ZERO).await;
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(250), "{starts:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pause_stops_everyone() {
        let pacer = Pacer::unlimited();
        pacer.pause_until(Instant::now() + Duration::from_secs(3));
        let starts = run(&pacer, 2, Duration::ZERO).await;
        assert!(starts[0] >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_budget_fairly() {
        let pacer = Arc::new(Pacer::new(vec![Window::per_second(2)]).with_margin(Duration::ZERO));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for who in 0..3 {
            let p = pacer.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..4 {
                    let permit = p.acquire().await;
                    got.push((t0.elapsed(), who));
                    permit.finish();
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        let starts: Vec<Duration> = all.iter().map(|x| x.0).collect();
        assert!(max_in_window(&starts, Duration::from_secs(1)) <= 2);
        // Fair: within the first 6 grants every caller got at least one.
        for who in 0..3 {
            assert!(all[..6].iter().any(|x| x.1 == who), "{all:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_count_in_every_window() {
        // 2 per second; the first two requests take 3 s to answer: a third may start only a
        // second after their answers, not a second after they were sent.
        let pacer = Arc::new(Pacer::new(vec![Window::per_second(2)]).with_margin(Duration::ZERO));
        let t0 = Instant::now();
        let a = pacer.acquire_slot().await;
        let b = pacer.acquire_slot().await;
        let p = pacer.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            p.finish_slot(a);
            p.finish_slot(b);
        });
        let _c = pacer.acquire().await;
        assert!(t0.elapsed() >= Duration::from_secs(4), "{:?}", t0.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn an_exhausted_budget_refuses_at_once() {
        let pacer = Pacer::unlimited();
        RateBudget::exhaust(&pacer, Instant::now() + Duration::from_secs(60), "quota".to_owned());
        assert_eq!(RateBudget::acquire(&pacer).await.unwrap_err().reason, "quota");
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert!(RateBudget::acquire(&pacer).await.is_ok());
    }

    #[test]
    fn budgets_outlive_their_users() {
        let key = budget_key("svc", "token");
        assert!(!key.contains("token"));
        let first = shared_pacer(&key, || Pacer::new(vec![Window::per_minute(5)]));
        let ptr = Arc::as_ptr(&first);
        drop(first);
        // A run that starts after the first one ended shares its windows.
        let again = shared_pacer(&key, Pacer::unlimited);
        assert_eq!(Arc::as_ptr(&again), ptr);
        assert_eq!(again.windows().len(), 1);
    }

    #[test]
    fn shared_pacers_are_shared_per_key() {
        let a = shared_pacer("k1", Pacer::unlimited);
        let b = shared_pacer("k1", || Pacer::new(vec![Window::per_second(1)]));
        assert!(Arc::ptr_eq(&a, &b));
        let c = shared_pacer("k2", Pacer::unlimited);
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
