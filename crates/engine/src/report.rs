//! What a run did: status, per-step counts and timings (Boomi's Process State), the error.

use indexmap::IndexMap;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Complete,
    CompleteWarn,
    Error,
    Aborted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Complete => "COMPLETE",
            RunStatus::CompleteWarn => "COMPLETE_WARN",
            RunStatus::Error => "ERROR",
            RunStatus::Aborted => "ABORTED",
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct StepStats {
    pub step: String,
    #[serde(rename = "type")]
    pub step_type: String,
    pub documents_in: u64,
    pub documents_out: u64,
    pub documents_error: u64,
    /// Error documents this connector step made of refused inputs (`error_response: true`);
    /// they are among its `documents_out`, and count in the run's `documents_error`.
    pub error_documents: u64,
    pub millis: u64,
    /// How many times the step ran (once per arriving batch).
    pub executions: u64,
}

/// The error that ended a run, or the first uncaught document error.
#[derive(Clone, Debug, Serialize)]
pub struct RunError {
    pub step: String,
    /// 1-based number of the failing document among those that entered the step, when it is one.
    pub document: Option<u64>,
    pub message: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Notification {
    pub step: String,
    pub level: String,
    pub message: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub process: String,
    pub status: RunStatus,
    pub started_at: String,
    pub ended_at: String,
    pub millis: u64,
    pub documents_in: u64,
    pub documents_out: u64,
    pub documents_error: u64,
    pub steps: Vec<StepStats>,
    pub error: Option<RunError>,
    pub errors: Vec<RunError>,
    pub notifications: Vec<Notification>,
    /// The data of the last document that reached a `stop` with `respond: true` (the answer to
    /// a `respond: sync` webhook).
    #[serde(skip)]
    pub response: Option<Vec<u8>>,
}

impl RunReport {
    /// The human summary printed by `stepwise run`.
    pub fn render(&self) -> String {
        let mut out = format!(
            "run {}  process {}  status {}  {} ms\n",
            self.run_id,
            self.process,
            self.status.as_str(),
            self.millis
        );
        let width = self.steps.iter().map(|s| s.step.len()).max().unwrap_or(4).max(4);
        out.push_str(&format!(
            "{:<width$}  {:<14} {:>9} {:>9} {:>7} {:>8}\n",
            "step", "type", "in", "out", "errors", "ms"
        ));
        for s in &self.steps {
            out.push_str(&format!(
                "{:<width$}  {:<14} {:>9} {:>9} {:>7} {:>8}\n",
                s.step, s.step_type, s.documents_in, s.documents_out, s.documents_error, s.millis
            ));
        }
        for s in self.steps.iter().filter(|s| s.error_documents > 0) {
            let noun = if s.error_documents == 1 { "document" } else { "documents" };
            out.push_str(&format!(
                "step '{}' made {} error {noun} of refused inputs (error_response)\n",
                s.step, s.error_documents
            ));
        }
        for n in &self.notifications {
            out.push_str(&format!("notify {} [{}]: {}\n", n.step, n.level, n.message));
        }
        if let Some(e) = &self.error {
            match e.document {
                Some(d) => out.push_str(&format!("error: step '{}': document {d}: {}\n", e.step, e.message)),
                None => out.push_str(&format!("error: step '{}': {}\n", e.step, e.message)),
            }
            if self.errors.len() > 1 {
                out.push_str(&format!("({} more document errors; see --json)\n", self.errors.len() - 1));
            }
        }
        out
    }

    pub(crate) fn stats_from(steps: IndexMap<String, StepStats>) -> Vec<StepStats> {
        steps.into_values().collect()
    }
}
