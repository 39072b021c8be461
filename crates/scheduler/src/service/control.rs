//! The narrow interface through which others (the console) see and steer a running service:
//! the processes it holds, `/health` and `/metrics` bodies, cancelling a run going on this
//! node, and noticing that the store's paused processes changed. It carries no HTTP.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use store::RunStatus;
use tokio::sync::{mpsc, oneshot};

use super::Service;
use super::http::Metrics;

/// Commands queued for the loop at most; more wait for room.
const COMMAND_QUEUE: usize = 64;

/// A process the service holds, as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessView {
    /// The process name.
    pub name: String,
    /// Its file.
    pub path: String,
    /// The version this node runs (SHA-256 of the file).
    pub content_hash: String,
    /// Whether its schedules are paused.
    pub paused: bool,
    /// Its enabled schedules.
    pub schedules: Vec<ScheduleView>,
    /// Its webhook start (never serialized: it says where the secret is).
    #[serde(skip)]
    pub webhook: Option<Arc<super::Webhook>>,
    /// What the loader told of it: properties and steps.
    #[serde(flatten)]
    pub outline: Outline,
}

/// What a process is, for those who look at it (the console): its description, its
/// properties with their defaults, and its steps with where they lead. The loader fills it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outline {
    /// The process's description.
    pub description: Option<String>,
    /// Declared properties and their defaults, in file order.
    pub properties: Vec<PropertyView>,
    /// The steps, the start step first.
    pub steps: Vec<StepView>,
}

/// A declared property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PropertyView {
    /// Its name.
    pub name: String,
    /// Its default value.
    pub default: String,
}

/// A step and the steps it leads to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepView {
    /// The step id.
    pub id: String,
    /// Its type (`connector`, `map`, ...).
    pub kind: String,
    /// The steps it leads to, with the edge's label (a branch or a decision's outcome).
    pub next: Vec<(String, String)>,
}

/// One schedule of a [`ProcessView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleView {
    /// The cron expression.
    pub cron: String,
    /// The time zone.
    pub timezone: String,
    /// The next fire instant (it does not fire while the process is paused).
    pub next: Option<DateTime<Utc>>,
}

/// The service stopped; it answers no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the service is not running")]
pub struct Stopped;

pub(super) enum Command {
    Processes(oneshot::Sender<Vec<ProcessView>>),
    Cancel { run_id: String, reason: String, reply: oneshot::Sender<bool> },
    PausedChanged(oneshot::Sender<()>),
}

/// A handle on a running service; cheap to clone.
#[derive(Clone)]
pub struct Control {
    commands: mpsc::Sender<Command>,
    metrics: Arc<Metrics>,
    node: String,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").field("node", &self.node).finish_non_exhaustive()
    }
}

/// The service's end of a [`Control`]; give it to [`super::serve_with`].
pub struct ControlHook {
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) metrics: Arc<Metrics>,
}

/// A [`Control`] and the hook to give the service of node `node`.
pub fn control(node: &str) -> (Control, ControlHook) {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let metrics = Arc::new(Metrics::default());
    (Control { commands: tx, metrics: metrics.clone(), node: node.to_owned() }, ControlHook { commands: rx, metrics })
}

impl Control {
    /// The `/health` body (JSON).
    pub fn health(&self) -> serde_json::Value {
        self.metrics.health(&self.node)
    }

    /// The `/metrics` body (Prometheus text).
    pub fn metrics(&self) -> String {
        self.metrics.render()
    }

    /// The processes the service holds, by name.
    pub async fn processes(&self) -> Result<Vec<ProcessView>, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Processes(reply)).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// Cancels the run `run_id` if it is going on this node (it ends `ABORTED` with `reason`);
    /// whether it was.
    pub async fn cancel(&self, run_id: &str, reason: &str) -> Result<bool, Stopped> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Cancel { run_id: run_id.to_owned(), reason: reason.to_owned(), reply };
        self.commands.send(command).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// Counts a queued run of `process` that was discarded outside the service (a cancel from
    /// the console) in `stepwise_runs_total`, as the service counts the runs it discards.
    pub fn count_discarded(&self, process: &str) {
        self.metrics.count_run(process, RunStatus::Discarded);
    }

    /// Tells the service that the store's paused processes changed; returns once it has read
    /// them again. (Other nodes read them at their next reload.)
    pub async fn paused_changed(&self) -> Result<(), Stopped> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::PausedChanged(reply)).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }
}

impl Service {
    pub(super) async fn on_command(&mut self, command: Command) {
        match command {
            Command::Processes(reply) => {
                let _ = reply.send(self.process_views());
            }
            Command::Cancel { run_id, reason, reply } => {
                let found = self.running.values().any(|run| run.run_id == run_id);
                self.cancel_runs(|run| run.run_id == run_id, &reason);
                let _ = reply.send(found);
            }
            Command::PausedChanged(reply) => {
                self.read_paused().await;
                let _ = reply.send(());
            }
        }
    }

    /// Reads the paused processes from the store; on failure the previous ones stay.
    pub(super) async fn read_paused(&mut self) {
        match self.store.paused().await {
            Ok(paused) => {
                self.paused = paused.into_iter().map(|p| p.process).collect::<HashSet<_>>();
                self.count_schedules();
            }
            Err(error) => tracing::error!(message = "Cannot read paused processes; keeping the last known.", %error),
        }
    }

    fn process_views(&self) -> Vec<ProcessView> {
        let mut views: Vec<ProcessView> = self
            .processes
            .values()
            .map(|entry| ProcessView {
                name: entry.process.name.clone(),
                path: entry.process.path.display().to_string(),
                content_hash: entry.process.content_hash.clone(),
                paused: self.paused.contains(&entry.process.name),
                schedules: entry
                    .schedules
                    .iter()
                    .map(|s| ScheduleView {
                        cron: s.schedule.cron().to_owned(),
                        timezone: s.schedule.timezone().name().to_owned(),
                        next: s.next,
                    })
                    .collect(),
                webhook: entry.process.webhook.clone(),
                outline: entry.process.outline.clone(),
            })
            .collect();
        views.sort_by(|a, b| a.name.cmp(&b.name));
        views
    }
}
