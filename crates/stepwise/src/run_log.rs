//! The run log: what a run's own code logs (its start and end, its notify steps' messages,
//! connectors' warnings, retries, aborts), captured from `tracing` inside the run's span
//! ([`span`]) by a [`Layer`] and kept with the run in the store ([`save`]), where
//! `history RUN_ID --json`, the API and the console's run page (with its level filter) show it.
//!
//! Only `info`, `warn` and `error` events are kept, at most [`MAX_LINES`] per run; each is its
//! message and its fields but those that carry document data or repeat the run (`document`,
//! `body`, `data`, `input`, `run_id`, `process`), scrubbed with the run's redactor before it is
//! saved.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, Utc};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The name of a run's span.
pub const SPAN: &str = "stepwise_run";

/// The most lines one run keeps; past it, a last line says how many more there were.
pub const MAX_LINES: usize = 1000;

/// Fields never kept: document data, or the run itself again.
const LEFT_OUT: [&str; 6] = ["document", "body", "data", "input", "run_id", "process"];

/// The span a run goes in: events inside it (and inside its steps' futures) are its log.
pub fn span(run_id: &str) -> tracing::Span {
    tracing::info_span!(SPAN, run_id = %run_id)
}

/// One captured line.
#[derive(Debug, Clone)]
pub struct Line {
    pub at: DateTime<Utc>,
    pub level: &'static str,
    pub text: String,
}

#[derive(Default)]
struct Collected {
    lines: Vec<Line>,
    dropped: usize,
}

/// The lines of runs going in this process, by run id.
static RUNS: LazyLock<Mutex<HashMap<String, Collected>>> = LazyLock::new(Mutex::default);

fn runs() -> std::sync::MutexGuard<'static, HashMap<String, Collected>> {
    RUNS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes what the run `run_id` logged (its lines, then how many more were not kept).
pub fn take(run_id: &str) -> (Vec<Line>, usize) {
    let collected = runs().remove(run_id).unwrap_or_default();
    (collected.lines, collected.dropped)
}

/// The run id a span was opened with.
struct RunId(String);

/// Reads the `run_id` field of a run's span.
struct RunIdField(Option<String>);

impl Visit for RunIdField {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "run_id" {
            self.0 = Some(format!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "run_id" {
            self.0 = Some(value.to_owned());
        }
    }
}

/// Writes an event as `message field=value ...`, leaving out [`LEFT_OUT`].
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            name if LEFT_OUT.contains(&name) => {}
            name => {
                let _ = write!(self.fields, " {name}={value:?}");
            }
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            name if LEFT_OUT.contains(&name) => {}
            name => {
                let _ = write!(self.fields, " {name}={value}");
            }
        }
    }
}

fn level_name(level: Level) -> Option<&'static str> {
    match level {
        Level::ERROR => Some("error"),
        Level::WARN => Some("warn"),
        Level::INFO => Some("info"),
        _ => None,
    }
}

/// The `tracing` layer that captures the events of runs' spans.
#[derive(Debug, Default)]
pub struct Layer;

impl<S> tracing_subscriber::Layer<S> for Layer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != SPAN {
            return;
        }
        let mut field = RunIdField(None);
        attrs.record(&mut field);
        if let (Some(run_id), Some(span)) = (field.0, ctx.span(id)) {
            runs().entry(run_id.clone()).or_default();
            span.extensions_mut().insert(RunId(run_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(level) = level_name(*event.metadata().level()) else { return };
        let Some(scope) = ctx.event_scope(event) else { return };
        let Some(run_id) = scope.from_root().find_map(|span| span.extensions().get::<RunId>().map(|r| r.0.clone()))
        else {
            return;
        };
        let mut text = Text::default();
        event.record(&mut text);
        let line = Line { at: Utc::now(), level, text: format!("{}{}", text.message, text.fields) };
        let mut runs = runs();
        // A run whose lines were taken already (it ended) keeps no more.
        let Some(collected) = runs.get_mut(&run_id) else { return };
        if collected.lines.len() < MAX_LINES {
            collected.lines.push(line);
        } else {
            collected.dropped += 1;
        }
    }
}

/// Saves what run `run_id` logged into its log in the store, as node `node` wrote it, scrubbed
/// with `redactor`. A failure is logged, never the run's.
pub async fn save(store: &dyn store::Store, run_id: &str, node: &str, redactor: &engine::Redactor) {
    let (lines, dropped) = take(run_id);
    let mut saved: Vec<store::LogLine> = lines
        .into_iter()
        .map(|l| store::LogLine {
            at: l.at,
            level: l.level.to_owned(),
            node: node.to_owned(),
            message: redactor.redact(&l.text),
        })
        .collect();
    if dropped > 0 {
        saved.push(store::LogLine {
            at: Utc::now(),
            level: "warn".to_owned(),
            node: node.to_owned(),
            message: format!("{dropped} more log lines of this run were not kept (at most {MAX_LINES} are)"),
        });
    }
    for line in &saved {
        if let Err(error) = store.append_log(run_id, line).await {
            tracing::warn!(run_id, error = %error, "The run's log could not be saved.");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing::Instrument as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn events_in_a_runs_span_are_its_log_without_document_data() {
        let subscriber = tracing_subscriber::registry().with(Layer);
        tracing::subscriber::with_default(subscriber, || {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(
                async {
                    tracing::info!(step = "notify", "Hello {}", "ada");
                    tracing::warn!(step = "fetch", document = "secret data", connection = "kb4", "Refused.");
                    tracing::debug!("not kept");
                    tokio::task::yield_now().await;
                    tracing::error!(run_id = "r1", process = "p", "Run ended.");
                }
                .instrument(span("r1")),
            );
            tracing::warn!("outside any run");
        });
        let (lines, dropped) = take("r1");
        let texts: Vec<(&str, &str)> = lines.iter().map(|l| (l.level, l.text.as_str())).collect();
        assert_eq!(
            texts,
            [
                ("info", "Hello ada step=notify"),
                ("warn", "Refused. step=fetch connection=kb4"),
                ("error", "Run ended.")
            ]
        );
        assert_eq!(dropped, 0);
        assert!(take("r1").0.is_empty());
    }

    #[test]
    fn a_run_keeps_at_most_max_lines() {
        let subscriber = tracing_subscriber::registry().with(Layer);
        tracing::subscriber::with_default(subscriber, || {
            let _entered = span("r2").entered();
            for n in 0..MAX_LINES + 5 {
                tracing::info!("line {n}");
            }
        });
        let (lines, dropped) = take("r2");
        assert_eq!((lines.len(), dropped), (MAX_LINES, 5));
    }
}
