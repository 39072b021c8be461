//! The loop of the service: fires offered to the store, runs claimed from it, leases kept,
//! ends recorded, shutdown.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use store::{Claim, ClaimedRun, Completion, Fire, FireOutcome, LogLine, RunEnd, RunStatus};
use tokio::task::JoinError;

use super::{
    CatchUp, MAX_CATCH_UP, MAX_SLEEP, PendingFire, RunDone, RunOutcome, RunRequest, RunningRun, Service, missed_fires,
};
use crate::schedule::Overlap;

/// Fires offered to the store at once.
const FIRE_CONCURRENCY: usize = 8;

/// How long cancelled runs get to end after the grace period before they are cut off.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// Fires at most this late are offered one by one whatever `catch_up` says: the node was up,
/// only slow (or another node may have recorded them).
const LATE_LIMIT: chrono::Duration = chrono::Duration::seconds(60);

/// How soon a failed store write (a fire, a run's end) is tried again.
const RETRY: Duration = Duration::from_secs(1);

fn store_overlap(overlap: Overlap) -> store::Overlap {
    match overlap {
        Overlap::Skip => store::Overlap::Skip,
        Overlap::Queue => store::Overlap::Queue,
        Overlap::Allow => store::Overlap::Allow,
    }
}

impl Service {
    pub(super) async fn run(&mut self, shutdown: impl Future<Output = ()> + Send) {
        self.read_paused().await;
        self.scan().await;
        self.discard_unserved().await;
        let mut shutdown = std::pin::pin!(shutdown);
        let start = tokio::time::Instant::now() + self.reload_interval;
        let mut reload = tokio::time::interval_at(start, self.reload_interval);
        reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let renew_every = (self.config.lease / 3).clamp(Duration::from_millis(100), Duration::from_secs(10));
        let mut leases = tokio::time::interval(renew_every);
        leases.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut claims = tokio::time::interval(self.config.claim_interval.max(Duration::from_millis(10)));
        claims.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.fire_due(Utc::now());
            self.flush_fires().await;
            self.save_watermarks().await;
            self.flush_ends();
            if std::mem::take(&mut self.claim_wanted) {
                self.claim().await;
            }
            let mut sleep = match self.earliest_next() {
                Some(next) => (next - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(MAX_SLEEP),
                None => MAX_SLEEP,
            };
            if !self.pending_fires.is_empty() {
                sleep = sleep.min(RETRY);
            }
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    // Every run that has ended by now, so that their ends are written together.
                    self.on_done(done).await;
                    while let Some(done) = self.tasks.try_join_next_with_id() {
                        self.on_done(done).await;
                    }
                }
                // Recorded ends free their processes (overlap): queued runs may now be taken.
                Some(_) = self.completions.join_next(), if !self.completions.is_empty() => self.claim_wanted = true,
                _ = leases.tick() => self.keep_leases().await,
                _ = reload.tick() => {
                    self.scan().await;
                    self.read_paused().await;
                }
                Some(command) = self.commands.recv() => self.on_command(command).await,
                _ = claims.tick() => self.claim_wanted = true,
                () = tokio::time::sleep(sleep) => {}
            }
        }
        self.shut_down().await;
    }

    /// Alone on its store, a node discards the queued runs of processes it does not hold (their
    /// file was removed or became invalid while it was down): nobody else would run them.
    async fn discard_unserved(&mut self) {
        if self.store.is_shared() {
            return;
        }
        let filter = store::ListFilter { status: Some(RunStatus::Queued.as_str().to_owned()), ..Default::default() };
        let queued = match self.store.list(&filter).await {
            Ok(queued) => queued,
            Err(error) => {
                tracing::error!(message = "Cannot list queued runs.", %error);
                return;
            }
        };
        let unserved: HashSet<String> =
            queued.into_iter().map(|r| r.process).filter(|p| !self.by_name.contains_key(p)).collect();
        if unserved.is_empty() {
            return;
        }
        let unserved: Vec<String> = unserved.into_iter().collect();
        let reason = "the process is no longer served (its file was removed or is invalid)";
        match self.store.discard_queued(&unserved, reason).await {
            Ok(count) => {
                tracing::warn!(message = "Queued runs of processes no longer served were discarded.", count, processes = ?unserved)
            }
            Err(error) => tracing::error!(message = "Cannot discard queued runs.", %error),
        }
    }

    async fn shut_down(&mut self) {
        self.shutting_down = true;
        tracing::info!(
            message = "Shutting down; queued runs stay queued in the store.",
            running = self.tasks.len(),
            grace_secs = self.config.grace.as_secs_f64(),
        );
        // Fires already due are still recorded, so that the queue keeps them.
        self.flush_fires().await;
        // A huge grace (e.g. `Duration::MAX` for "wait forever") must not overflow.
        let grace = self.config.grace.min(Duration::from_secs(100 * 365 * 24 * 3600));
        self.wait_for_runs(tokio::time::Instant::now() + grace).await;
        if !self.tasks.is_empty() {
            tracing::warn!(message = "Grace period over; cancelling runs.", count = self.tasks.len());
            for run in self.running.values() {
                let _ = run.cancel.send(Some("abandoned: the service shut down before the run ended".to_owned()));
            }
            self.wait_for_runs(tokio::time::Instant::now() + CANCEL_WAIT).await;
        }
        if !self.tasks.is_empty() {
            self.tasks.abort_all();
            while let Some(done) = self.tasks.join_next_with_id().await {
                self.on_done(done).await;
            }
        }
        // Ends not recorded yet get a last chance (the store may be unreachable).
        self.flush_ends();
        let deadline = tokio::time::Instant::now() + CANCEL_WAIT * 2;
        while !self.completions.is_empty() {
            tokio::select! {
                _ = self.completions.join_next() => {}
                () = tokio::time::sleep_until(deadline) => {
                    tracing::error!(
                        message = "Run ends could not be recorded before the service stopped; their leases will expire and the runs be recorded ABORTED.",
                        count = self.completions.len(),
                    );
                    self.completions.abort_all();
                    break;
                }
            }
        }
        self.save_watermarks().await;
    }

    async fn wait_for_runs(&mut self, deadline: tokio::time::Instant) {
        while !self.tasks.is_empty() {
            tokio::select! {
                Some(done) = self.tasks.join_next_with_id() => self.on_done(done).await,
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
    }

    fn earliest_next(&self) -> Option<DateTime<Utc>> {
        self.processes.values().flat_map(|p| p.schedules.iter()).filter_map(|s| s.next).min()
    }

    /// Fires every schedule that is due at `now` (into `pending_fires`) and plans the next fires.
    pub(super) fn fire_due(&mut self, now: DateTime<Utc>) {
        let mut fires = Vec::new();
        let mut lags = Vec::new();
        let mut replan = false;
        for entry in self.processes.values_mut() {
            let name = &entry.process.name;
            let process = &entry.process;
            for sched in &mut entry.schedules {
                let Some(next) = sched.next.filter(|next| *next <= now) else {
                    continue;
                };
                if now < next + chrono::Duration::seconds(1) {
                    // The usual case. Fires are whole seconds apart, so only `next` is due: start
                    // it first and compute the one after it once every due run has started.
                    fires.push(PendingFire {
                        process: process.clone(),
                        schedule: sched.key.clone(),
                        overlap: sched.overlap,
                        at: next,
                        catch_up: false,
                    });
                    lags.push((now - next).to_std().unwrap_or(Duration::ZERO).as_secs_f64());
                    sched.watermark = next;
                    sched.replan = true;
                    replan = true;
                    self.dirty.push((name.clone(), sched.key.clone(), next));
                    continue;
                }
                // Fires of the last LATE_LIMIT are late, not missed: each is offered (another
                // node may have recorded it already). Older ones (the machine was suspended)
                // follow `catch_up`: `all` offers each, otherwise only the latest runs.
                let recent_from = sched.watermark.max(now - LATE_LIMIT);
                let (recent, _) = missed_fires(&sched.schedule, recent_from, now, MAX_CATCH_UP);
                let cap = if sched.catch_up == CatchUp::All { MAX_CATCH_UP } else { 1 };
                let (older, more) = if recent_from > sched.watermark {
                    missed_fires(&sched.schedule, sched.watermark, recent_from, cap)
                } else {
                    (Vec::new(), false)
                };
                let Some(&latest) = recent.last().or(older.last()) else {
                    sched.next = sched.schedule.next_after(sched.watermark).map(|t| t.with_timezone(&Utc));
                    continue;
                };
                if !older.is_empty() || more {
                    tracing::warn!(
                        message = "Service fell behind; fires older than a minute follow catch_up.",
                        process = %name,
                        cron = %sched.schedule.cron(),
                        catch_up = %sched.catch_up,
                    );
                }
                let older: Vec<DateTime<Utc>> = match (sched.catch_up, recent.is_empty()) {
                    (CatchUp::All, _) => older,
                    (_, true) => older.last().copied().into_iter().collect(),
                    (_, false) => Vec::new(),
                };
                for at in older {
                    let catch_up = sched.catch_up == CatchUp::All;
                    let (schedule, overlap) = (sched.key.clone(), sched.overlap);
                    fires.push(PendingFire { process: process.clone(), schedule, overlap, at, catch_up });
                }
                for at in recent {
                    let (schedule, overlap) = (sched.key.clone(), sched.overlap);
                    fires.push(PendingFire { process: process.clone(), schedule, overlap, at, catch_up: false });
                }
                sched.watermark = latest;
                sched.next = sched.schedule.next_after(latest).map(|t| t.with_timezone(&Utc));
                self.dirty.push((name.clone(), sched.key.clone(), latest));
            }
        }
        fires.sort_by_key(|f| f.at);
        if !self.shutting_down {
            self.pending_fires.extend(fires);
        }
        if !lags.is_empty() {
            let mut histogram = self.metrics.lag.lock().unwrap_or_else(|e| e.into_inner());
            for lag in lags {
                histogram.observe(lag);
            }
        }
        if replan {
            for sched in self.processes.values_mut().flat_map(|p| p.schedules.iter_mut()) {
                if std::mem::take(&mut sched.replan) {
                    sched.next = sched.schedule.next_after(sched.watermark).map(|t| t.with_timezone(&Utc));
                }
            }
        }
    }

    /// Offers the pending fires to the store; the ones it cannot take stay pending.
    async fn flush_fires(&mut self) {
        // A paused process's fires (catch-up ones too) pass unrecorded; resuming catches none up.
        self.pending_fires.retain(|f| !self.paused.contains(&f.process.name));
        if self.pending_fires.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending_fires);
        let node = self.config.node.clone();
        let store = self.store.clone();
        let fires: Vec<Fire> = pending
            .iter()
            .map(|p| Fire {
                run_id: uuid::Uuid::now_v7().to_string(),
                process: p.process.name.clone(),
                schedule: p.schedule.clone(),
                instant: p.at,
                overlap: store_overlap(p.overlap),
                catch_up: p.catch_up,
                content_hash: p.process.content_hash.clone(),
                node: node.clone(),
                at: Utc::now(),
            })
            .collect();
        // A shared store takes concurrent fires from a pool of connections; a local one records
        // them in one transaction.
        let outcomes: Vec<Result<FireOutcome, store::StoreError>> = if store.is_shared() {
            futures::stream::iter(fires)
                .map(|fire| {
                    let store = store.clone();
                    async move { store.fire(&fire).await }
                })
                .buffered(FIRE_CONCURRENCY)
                .collect()
                .await
        } else {
            store.fire_many(&fires).await
        };
        let results: Vec<(PendingFire, Result<FireOutcome, store::StoreError>)> =
            pending.into_iter().zip(outcomes).collect();
        let mut failed = 0;
        for (pending, result) in results {
            let name = &pending.process.name;
            match result {
                Ok(FireOutcome::Queued) => {
                    self.claim_wanted = true;
                    tracing::debug!(message = "Fire queued.", process = %name, scheduled_for = %pending.at);
                }
                Ok(FireOutcome::Discarded(reason)) => {
                    tracing::info!(message = "Run discarded.", process = %name, scheduled_for = %pending.at, reason = %reason);
                    self.metrics.count_run(name, RunStatus::Discarded);
                }
                Ok(FireOutcome::Duplicate) => {
                    tracing::debug!(message = "Fire already recorded by another node.", process = %name, scheduled_for = %pending.at);
                }
                Err(error) => {
                    failed += 1;
                    if failed == 1 {
                        tracing::error!(message = "Cannot record fires in the store; trying again.", %error);
                    }
                    self.pending_fires.push(pending);
                }
            }
        }
    }

    /// Takes queued runs for the free workers.
    async fn claim(&mut self) {
        let free = self.config.workers.max(1).saturating_sub(self.running.len());
        if self.shutting_down || free == 0 || self.processes.is_empty() {
            return;
        }
        let claim = Claim {
            node: self.config.node.clone(),
            processes: self
                .processes
                .values()
                .map(|p| (p.process.name.clone(), p.process.content_hash.clone()))
                .collect(),
            max: free,
            lease: self.config.lease,
            now: Utc::now(),
        };
        let claimed = match self.store.claim(&claim).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(message = "Cannot take queued runs from the store.", %error);
                return;
            }
        };
        for (run_id, process, wanted) in claimed.other_version {
            if self.other_version_logged.len() > 10_000 {
                self.other_version_logged.clear();
            }
            if self.other_version_logged.insert(run_id.clone()) {
                tracing::warn!(
                    message = "A queued run is for another version of a process file; leaving it to a node that holds that version.",
                    process = %process,
                    run_id = %run_id,
                    wanted_hash = %wanted,
                );
            }
        }
        // All free workers filled: more may wait, to be taken as runs end.
        self.claim_wanted = claimed.runs.len() >= free;
        for run in claimed.runs {
            self.start_run(run);
        }
    }

    fn start_run(&mut self, run: ClaimedRun) {
        let Some(entry) = self.by_name.get(&run.process).and_then(|path| self.processes.get(path)) else {
            let mut outcome = RunOutcome::new(RunStatus::Aborted);
            outcome.error = Some("the process was unloaded before the run started".to_owned());
            self.complete(outcome.into_end(run.run_id));
            return;
        };
        let process = entry.process.clone();
        tracing::info!(message = "Run starting.", process = %run.process, run_id = %run.run_id, trigger = %run.trigger, scheduled_for = ?run.scheduled_for);
        let (cancel, cancelled) = tokio::sync::watch::channel(None);
        let request = RunRequest {
            run_id: run.run_id.clone(),
            trigger: run.trigger,
            scheduled_for: run.scheduled_for,
            overrides: run.overrides,
            start_document: run.start_document,
        };
        let runner = self.runner.clone();
        let handle = self.tasks.spawn_on(
            async move {
                let started = Instant::now();
                let outcome = runner.run(&process, request, cancelled).await;
                RunDone { outcome, elapsed: started.elapsed() }
            },
            &self.runs_runtime,
        );
        self.running.insert(handle.id(), RunningRun { process: run.process, run_id: run.run_id, cancel });
        self.metrics.in_progress.fetch_add(1, Ordering::Relaxed);
    }

    async fn on_done(&mut self, done: Result<(tokio::task::Id, RunDone), JoinError>) {
        let id = match &done {
            Ok((id, _)) => *id,
            Err(error) => error.id(),
        };
        let Some(info) = self.running.remove(&id) else {
            return;
        };
        self.metrics.in_progress.fetch_sub(1, Ordering::Relaxed);
        let outcome = match done {
            Ok((_, RunDone { outcome, elapsed })) => {
                tracing::info!(
                    message = "Run ended.",
                    process = %info.process,
                    run_id = %info.run_id,
                    status = %outcome.status,
                    millis = elapsed.as_millis() as u64,
                    error = outcome.error.as_deref().unwrap_or(""),
                );
                self.metrics.observe_duration(&info.process, elapsed.as_secs_f64());
                outcome
            }
            Err(error) if error.is_cancelled() => {
                tracing::warn!(message = "Run cut off by the shutdown; recording it as ABORTED.", process = %info.process, run_id = %info.run_id);
                let mut outcome = RunOutcome::new(RunStatus::Aborted);
                outcome.error = Some("abandoned: the service shut down before the run ended".to_owned());
                outcome
            }
            Err(error) => {
                tracing::error!(message = "Run panicked; recording it as ABORTED.", process = %info.process, run_id = %info.run_id, %error);
                let mut outcome = RunOutcome::new(RunStatus::Aborted);
                outcome.error = Some(format!("the run panicked: {error}"));
                outcome
            }
        };
        self.metrics.count_run(&info.process, outcome.status);
        self.complete(outcome.into_end(info.run_id));
    }

    /// Keeps a run's end to be recorded with the others of this loop iteration; a worker is
    /// free again (and, once the end is recorded, the process: see the loop).
    fn complete(&mut self, end: RunEnd) {
        self.pending_ends.push(end);
        self.claim_wanted = true;
    }

    /// Records the pending run ends in a task of their own (the loop never waits for the store).
    fn flush_ends(&mut self) {
        if self.pending_ends.is_empty() {
            return;
        }
        let ends = std::mem::take(&mut self.pending_ends);
        self.completions.spawn(record_ends(self.store.clone(), self.config.node.clone(), ends));
    }

    /// Renews the leases of this node's runs (cancelling the ones it lost) and closes the runs of
    /// nodes that stopped renewing theirs.
    async fn keep_leases(&mut self) {
        let ids: Vec<String> = self.running.values().map(|r| r.run_id.clone()).collect();
        if ids.is_empty() {
            self.last_renewed = Instant::now();
        } else {
            match self.store.renew(&self.config.node, &ids, self.config.lease).await {
                Ok(renewed) => {
                    self.last_renewed = Instant::now();
                    let held: HashSet<String> = renewed.held.into_iter().collect();
                    self.cancel_runs(
                        |r| !held.contains(&r.run_id),
                        "lease lost: the run was closed by another node (node lost)",
                    );
                    // Cancels asked for on another node (the console's cancel).
                    for (run_id, reason) in renewed.cancel {
                        self.cancel_runs(|r| r.run_id == run_id, &reason);
                    }
                }
                Err(error) => {
                    tracing::warn!(message = "Cannot renew the leases of this node's runs.", %error);
                    if self.last_renewed.elapsed() >= self.config.lease {
                        self.cancel_runs(|_| true, "lease lost: the store was unreachable for longer than the lease");
                    }
                }
            }
        }
        match self.store.expire_leases().await {
            Ok(expired) => {
                for (run_id, node) in expired {
                    tracing::warn!(message = "A node stopped renewing a run's lease; the run is recorded ABORTED (node lost).", run_id = %run_id, node = %node);
                    self.log(
                        &run_id,
                        "warn",
                        format!("node '{node}' lost; run closed as ABORTED by node '{}'", self.config.node),
                    );
                }
            }
            Err(error) => tracing::debug!(message = "Cannot close runs of lost nodes.", %error),
        }
    }

    pub(super) fn cancel_runs(&self, which: impl Fn(&RunningRun) -> bool, reason: &str) {
        for run in self.running.values().filter(|r| which(r)) {
            if run.cancel.borrow().is_none() {
                tracing::warn!(message = "Cancelling a run.", run_id = %run.run_id, process = %run.process, reason);
                let _ = run.cancel.send(Some(reason.to_owned()));
            }
        }
    }

    /// Appends a line to a run's log without waiting for it.
    fn log(&self, run_id: &str, level: &str, message: String) {
        let store = self.store.clone();
        let run_id = run_id.to_owned();
        let line = LogLine { at: Utc::now(), level: level.to_owned(), node: self.config.node.clone(), message };
        tokio::spawn(async move {
            if let Err(error) = store.append_logs(&run_id, std::slice::from_ref(&line)).await {
                tracing::debug!(message = "Cannot write a run log line.", %error);
            }
        });
    }

    async fn save_watermarks(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let entries = std::mem::take(&mut self.dirty);
        if let Err(error) = self.store.save_last_fired(&entries).await {
            tracing::error!(message = "Cannot save last fired instants; a restart may offer fires again.", %error);
        }
    }
}

/// Records run ends of `node`, trying the ones the store could not take again until it does.
async fn record_ends(store: std::sync::Arc<dyn store::Store>, node: String, mut ends: Vec<RunEnd>) {
    let mut failures = 0u32;
    while !ends.is_empty() {
        let outcomes = store.complete_many(&node, &ends).await;
        let mut again = Vec::new();
        let mut last_error = None;
        for (end, outcome) in ends.into_iter().zip(outcomes) {
            match outcome {
                Ok(Completion::Recorded) => {}
                Ok(Completion::Discarded) => late_result_discarded(store.as_ref(), &node, &end).await,
                Err(store::StoreError::UnknownRun(run_id)) => {
                    tracing::error!(message = "The store does not know a run that ended.", run_id = %run_id);
                }
                Err(error) => {
                    last_error = Some(error);
                    again.push(end);
                }
            }
        }
        ends = again;
        if let Some(error) = last_error {
            failures += 1;
            if failures == 1 || failures.is_multiple_of(60) {
                tracing::error!(message = "Cannot record the ends of runs; trying again.", count = ends.len(), %error);
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}

async fn late_result_discarded(store: &dyn store::Store, node: &str, end: &RunEnd) {
    tracing::warn!(
        message = "Late result discarded: this node lost the run's lease and the run was closed as ABORTED.",
        run_id = %end.run_id,
        status = %end.status,
    );
    let message = format!("late result {} from node '{node}' discarded: the node had lost the run's lease", end.status);
    let line = LogLine { at: Utc::now(), level: "warn".to_owned(), node: node.to_owned(), message };
    let _ = store.append_logs(&end.run_id, std::slice::from_ref(&line)).await;
}
