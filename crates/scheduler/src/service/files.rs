//! Loading the process directory: new, changed and removed files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use super::{
    LoadedProcess, MAX_CATCH_UP, PendingFire, ProcessEntry, ScheduleEntry, Service, Stamp, blocking, missed_fires,
    process_files,
};
use crate::schedule::{CatchUp, Overlap};

/// Why the queued runs of a process whose file was removed are discarded (one node).
pub(super) const DISCARD_REMOVED: &str = "the process file was removed before the run started";

impl Service {
    /// Lists the directory and loads new and changed files; stops deleted ones.
    pub(super) async fn scan(&mut self) {
        let dir = self.config.dir.clone();
        let listing = blocking(move || -> std::io::Result<Vec<(PathBuf, Stamp)>> {
            let mut out = Vec::new();
            for path in process_files(&dir)? {
                // A file may vanish between listing and stat; it is then simply not there.
                if let Ok(meta) = std::fs::metadata(&path) {
                    out.push((path, Stamp { modified: meta.modified().ok(), len: meta.len() }));
                }
            }
            Ok(out)
        })
        .await;
        let listing = match listing {
            Ok(listing) => listing,
            Err(error) => {
                tracing::error!(message = "Cannot list the process directory.", dir = %self.config.dir.display(), %error);
                return;
            }
        };
        let present: std::collections::HashSet<&PathBuf> = listing.iter().map(|(p, _)| p).collect();
        let gone: Vec<PathBuf> = self.files.keys().filter(|p| !present.contains(p)).cloned().collect();
        if !gone.is_empty() {
            for path in &gone {
                self.metrics.set_invalid(path, None);
                self.files.remove(path);
                self.remove_process(path, "Process file removed; its schedules stopped.");
            }
            // Files rejected for a duplicate name may be valid now.
            let processes = &self.processes;
            self.files.retain(|path, _| processes.contains_key(path));
        }
        for (path, stamp) in listing {
            if self.files.get(&path) == Some(&stamp) {
                continue;
            }
            self.files.insert(path.clone(), stamp);
            let loader = self.loader.clone();
            let file = path.clone();
            let loaded = tokio::task::spawn_blocking(move || loader.load(&file)).await;
            match loaded {
                Ok(Ok(mut process)) => {
                    self.metrics.set_invalid(&path, None);
                    process.path = path.clone();
                    self.install(path, process).await;
                }
                Ok(Err(diagnostic)) => {
                    self.metrics.set_invalid(&path, Some(diagnostic.clone()));
                    let keeping = self.processes.contains_key(&path);
                    tracing::error!(
                        message = if keeping {
                            "Invalid process file; the previously loaded version keeps running."
                        } else {
                            "Invalid process file; it does not run."
                        },
                        path = %path.display(),
                        error = %diagnostic,
                    );
                }
                Err(error) => {
                    tracing::error!(message = "Process loader panicked.", path = %path.display(), %error);
                }
            }
        }
        self.metrics.processes.store(self.processes.len(), Ordering::Relaxed);
        self.count_schedules();
    }

    /// Sets `stepwise_schedules_active`: the schedules of the served processes not paused.
    pub(super) fn count_schedules(&self) {
        let active = self.processes.values().filter(|p| !self.paused.contains(&p.process.name));
        self.metrics.schedules.store(active.map(|p| p.schedules.len()).sum(), Ordering::Relaxed);
    }

    fn remove_process(&mut self, path: &Path, message: &'static str) {
        let Some(entry) = self.processes.remove(path) else {
            return;
        };
        let name = entry.process.name.clone();
        self.by_name.remove(&name);
        tracing::info!(message, process = %name, path = %path.display());
        let store = self.store.clone();
        // In a cluster another node may still serve the process: its queued runs and schedule
        // state stay. Alone, this node forgets the schedules and closes the queued runs.
        if !store.is_shared() {
            tokio::spawn(async move {
                if let Err(error) = store.retain_schedules(&name, &[]).await {
                    tracing::warn!(message = "Cannot forget schedule state.", process = %name, %error);
                }
                match store.discard_queued(std::slice::from_ref(&name), DISCARD_REMOVED).await {
                    Ok(0) => {}
                    Ok(count) => {
                        tracing::warn!(message = "Queued runs of a removed process were discarded.", process = %name, count)
                    }
                    Err(error) => {
                        tracing::error!(message = "Cannot discard the queued runs of a removed process.", process = %name, %error)
                    }
                }
            });
        }
    }

    /// Installs a freshly loaded process: new, or a new version of a loaded file.
    async fn install(&mut self, path: PathBuf, process: LoadedProcess) {
        if let Some(owner) = self.by_name.get(&process.name).filter(|owner| **owner != path) {
            tracing::error!(
                message = "Duplicate process name; this file does not run.",
                process = %process.name,
                path = %path.display(),
                first = %owner.display(),
            );
            return;
        }
        let mut old = None;
        if let Some(existing) = self.processes.get(&path) {
            if existing.process.fingerprint == process.fingerprint && existing.process.name == process.name {
                return;
            }
            if existing.process.name == process.name {
                old = self.processes.remove(&path);
            } else {
                self.remove_process(&path, "Process renamed; the old name stopped.");
            }
        }
        let name = process.name.clone();
        let now = Utc::now();
        let stored = if old.is_none() {
            match self.store.last_fired(&name).await {
                Ok(stored) => stored,
                Err(error) => {
                    tracing::error!(message = "Cannot read last fired instants; nothing is caught up.", process = %name, %error);
                    HashMap::new()
                }
            }
        } else {
            HashMap::new()
        };
        let mut previous: HashMap<String, ScheduleEntry> =
            old.map(|o| o.schedules.into_iter().map(|s| (s.key.clone(), s)).collect()).unwrap_or_default();
        let mut schedules = Vec::new();
        let mut catch_up: Vec<(DateTime<Utc>, String)> = Vec::new();
        for (idx, spec) in process.schedules.iter().enumerate() {
            if !spec.enabled {
                continue;
            }
            let schedule = match spec.compile() {
                Ok(schedule) => schedule,
                Err(error) => {
                    tracing::error!(message = "Invalid schedule; it does not fire.", process = %name, schedule = idx, %error);
                    continue;
                }
            };
            let mut key = format!("{}|{}", schedule.cron(), schedule.timezone().name());
            if schedules.iter().any(|s: &ScheduleEntry| s.key == key) {
                key = format!("{key}#{idx}");
            }
            if let Some(mut kept) = previous.remove(&key) {
                kept.overlap = spec.overlap;
                kept.catch_up = spec.catch_up;
                schedules.push(kept);
                continue;
            }
            let watermark = match stored.get(&key) {
                Some(&last) => {
                    let cap = match spec.catch_up {
                        CatchUp::All => MAX_CATCH_UP,
                        CatchUp::Last | CatchUp::None => 1,
                    };
                    let (missed, more) = missed_fires(&schedule, last, now, cap);
                    if let Some(&latest) = missed.last() {
                        match spec.catch_up {
                            CatchUp::None => {
                                tracing::info!(message = "Skipping fires missed while the service was down.", process = %name, cron = %schedule.cron(), since = %last);
                            }
                            CatchUp::Last | CatchUp::All => {
                                if more && spec.catch_up == CatchUp::All {
                                    tracing::warn!(
                                        message = "Too many missed fires; catching up only the latest ones.",
                                        process = %name,
                                        cron = %schedule.cron(),
                                        cap = MAX_CATCH_UP,
                                    );
                                }
                                tracing::info!(message = "Catching up fires missed while the service was down.", process = %name, cron = %schedule.cron(), count = missed.len(), catch_up = %spec.catch_up);
                                catch_up.extend(missed.iter().map(|at| (*at, key.clone())));
                            }
                        }
                        self.dirty.push((name.clone(), key.clone(), latest));
                        latest
                    } else {
                        last
                    }
                }
                None => {
                    self.dirty.push((name.clone(), key.clone(), now));
                    now
                }
            };
            let next = schedule.next_after(watermark).map(|t| t.with_timezone(&Utc));
            schedules.push(ScheduleEntry {
                key,
                schedule,
                overlap: spec.overlap,
                catch_up: spec.catch_up,
                watermark,
                next,
                replan: false,
            });
        }
        let keep: Vec<String> = schedules.iter().map(|s| s.key.clone()).collect();
        if let Err(error) = self.store.retain_schedules(&name, &keep).await {
            tracing::warn!(message = "Cannot forget old schedule state.", process = %name, %error);
        }
        tracing::info!(
            message = "Process loaded.",
            process = %name,
            path = %path.display(),
            schedules = schedules.len(),
        );
        self.by_name.insert(name.clone(), path.clone());
        // Two schedules due at the same instant catch it up once.
        catch_up.sort();
        catch_up.dedup_by_key(|(at, _)| *at);
        let process = Arc::new(process);
        self.processes.insert(path, ProcessEntry { process: process.clone(), schedules });
        for (at, schedule) in catch_up {
            self.pending_fires.push(PendingFire {
                process: process.clone(),
                schedule,
                overlap: Overlap::Queue,
                at,
                catch_up: true,
            });
        }
    }
}
