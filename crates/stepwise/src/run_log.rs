//! The run log: what a run's own code logs (its start and end, its notify steps' messages,
//! connectors' warnings, retries, aborts), captured from `tracing` inside the run's span by a
//! [`Layer`] while a [`Capture`] of the run is open, and kept with the run in the store
//! ([`Capture::save`]), where `history RUN_ID --json`, the API and the console's run page (with
//! its level filter) show it.
//!
//! Only `info`, `warn` and `error` events are kept, at most [`MAX_LINES`] per run and
//! [`MAX_LINE_BYTES`] per line; each is its message and those of its fields named in [`KEPT`]
//! (never a field that may carry document data), scrubbed with the run's redactor before it is
//! saved.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// The longest line kept, in bytes; a longer one is cut and ends with `…`.
pub const MAX_LINE_BYTES: usize = 4096;

/// How much of an event is captured: more than is kept, so that a secret across
/// [`MAX_LINE_BYTES`] is still whole when the line is scrubbed, before it is cut.
const CAPTURED_BYTES: usize = MAX_LINE_BYTES + 64 * 1024;

/// The only fields of an event a run log keeps: names, ids, counts and reasons, never document
/// data (a field not named here, such as `document` or `body`, is left out).
pub const KEPT: [&str; 17] = [
    "step",
    "connection",
    "call",
    "attempt",
    "wait_ms",
    "wait_secs",
    "documents",
    "error",
    "reason",
    "status",
    "millis",
    "timeout_secs",
    "limit",
    "account",
    "user",
    "object",
    "page",
];

/// What one run logs, captured from its span while this is open. Dropping it without
/// [`Capture::save`] (a run that keeps no history, or whose task was dropped) forgets the lines.
#[derive(Debug)]
pub struct Capture {
    run_id: String,
    /// Which capture of `run_id` this is: a capture never takes or forgets another's lines.
    generation: u64,
}

impl Capture {
    /// Starts capturing what run `run_id` logs inside [`Capture::span`].
    pub fn start(run_id: &str) -> Self {
        static GENERATIONS: AtomicU64 = AtomicU64::new(0);
        let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        runs().insert(run_id.to_owned(), Collected { generation, ..Collected::default() });
        Self { run_id: run_id.to_owned(), generation }
    }

    /// Ends the capture: what the run logged (its lines, then how many more were not kept).
    fn take(&self) -> (Vec<Line>, usize) {
        let mut runs = runs();
        match runs.get(&self.run_id) {
            Some(collected) if collected.generation == self.generation => {
                let collected = runs.remove(&self.run_id).unwrap_or_default();
                (collected.lines, collected.dropped)
            }
            _ => (Vec::new(), 0),
        }
    }

    /// The span the run goes in: events inside it (and inside its steps' futures) are its log.
    pub fn span(&self) -> tracing::Span {
        tracing::info_span!(SPAN, run_id = %self.run_id)
    }

    /// Ends the capture and saves what the run logged into its log in the store, as node `node`
    /// wrote it, scrubbed with `redactor`, in one write. A failure is logged, never the run's.
    pub async fn save(self, store: &dyn store::Store, node: &str, redactor: &engine::Redactor) {
        let (lines, dropped) = self.take();
        let saved = log_lines(lines, dropped, node, redactor);
        if let Err(error) = store.append_logs(&self.run_id, &saved).await {
            tracing::warn!(run_id = %self.run_id, error = %error, "The run's log could not be saved.");
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        drop(self.take());
    }
}

/// The store's lines for captured `lines` (and `dropped` more), as node `node` wrote them:
/// each scrubbed with `redactor` whole, then cut to [`MAX_LINE_BYTES`] (so that a secret across
/// the cut is masked, not half kept).
fn log_lines(lines: Vec<Line>, dropped: usize, node: &str, redactor: &engine::Redactor) -> Vec<store::LogLine> {
    let mut saved: Vec<store::LogLine> = lines
        .into_iter()
        .map(|l| {
            let mut message = redactor.redact(&l.text);
            cut(&mut message, MAX_LINE_BYTES);
            store::LogLine { at: l.at, level: l.level.to_owned(), node: node.to_owned(), message }
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
    saved
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
    generation: u64,
    lines: Vec<Line>,
    dropped: usize,
}

/// The lines of runs going in this process, by run id.
static RUNS: LazyLock<Mutex<HashMap<String, Collected>>> = LazyLock::new(Mutex::default);

fn runs() -> std::sync::MutexGuard<'static, HashMap<String, Collected>> {
    RUNS.lock().unwrap_or_else(|e| e.into_inner())
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

/// Writes an event as `message field=value ...`, keeping only the fields in [`KEPT`], each part
/// at most [`CAPTURED_BYTES`] (formatting stops there).
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

/// A `String` that takes at most `CAPTURED_BYTES`; past them, writing fails (and stops).
struct Capped<'a>(&'a mut String);

impl std::fmt::Write for Capped<'_> {
    fn write_str(&mut self, piece: &str) -> std::fmt::Result {
        let room = CAPTURED_BYTES.saturating_sub(self.0.len());
        if piece.len() <= room {
            self.0.push_str(piece);
            return Ok(());
        }
        let mut end = room;
        while !piece.is_char_boundary(end) {
            end -= 1;
        }
        self.0.push_str(&piece[..end]);
        Err(std::fmt::Error)
    }
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(Capped(&mut self.message), "{value:?}");
            }
            name if KEPT.contains(&name) => {
                let _ = write!(Capped(&mut self.fields), " {name}={value:?}");
            }
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => {
                let _ = Capped(&mut self.message).write_str(value);
            }
            name if KEPT.contains(&name) => {
                let _ = write!(Capped(&mut self.fields), " {name}={value}");
            }
            _ => {}
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
        // A run not captured (or whose capture ended) keeps nothing; a full one only counts.
        match runs().get_mut(&run_id) {
            None => return,
            Some(collected) if collected.lines.len() >= MAX_LINES => {
                collected.dropped += 1;
                return;
            }
            Some(_) => {}
        }
        let mut text = Text::default();
        event.record(&mut text);
        let mut text = format!("{}{}", text.message, text.fields);
        cut(&mut text, CAPTURED_BYTES);
        let line = Line { at: Utc::now(), level, text };
        if let Some(collected) = runs().get_mut(&run_id) {
            if collected.lines.len() < MAX_LINES {
                collected.lines.push(line);
            } else {
                collected.dropped += 1;
            }
        }
    }
}

/// Cuts `text` to at most `max` bytes (on a character boundary), ending it with `…` when cut.
fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
}

#[cfg(test)]
mod tests {
    use tracing::Instrument as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn events_in_a_runs_span_are_its_log_without_document_data() {
        let subscriber = tracing_subscriber::registry().with(Layer);
        let capture = Capture::start("r1");
        tracing::subscriber::with_default(subscriber, || {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(
                async {
                    tracing::info!(step = "notify", "Hello {}", "ada");
                    tracing::warn!(step = "fetch", document = "secret data", connection = "kb4", "Refused.");
                    tracing::warn!(step = "fetch", email = "ada@example.com", payload = ?["x"], "Unknown fields.");
                    tracing::debug!("not kept");
                    tokio::task::yield_now().await;
                    tracing::error!(run_id = "r1", process = "p", "Run ended.");
                }
                .instrument(capture.span()),
            );
            tracing::warn!("outside any run");
        });
        let (lines, dropped) = capture.take();
        let texts: Vec<(&str, &str)> = lines.iter().map(|l| (l.level, l.text.as_str())).collect();
        assert_eq!(
            texts,
            [
                ("info", "Hello ada step=notify"),
                ("warn", "Refused. step=fetch connection=kb4"),
                ("warn", "Unknown fields. step=fetch"),
                ("error", "Run ended.")
            ]
        );
        assert_eq!(dropped, 0);
        assert!(capture.take().0.is_empty());
    }

    #[test]
    fn a_run_keeps_at_most_max_lines_of_at_most_max_line_bytes_scrubbed_before_the_cut() {
        let subscriber = tracing_subscriber::registry().with(Layer);
        let capture = Capture::start("r2");
        let secret = "s3cr\"et-VALUE";
        tracing::subscriber::with_default(subscriber, || {
            let _entered = capture.span().entered();
            tracing::info!("{}{secret}", "é".repeat(MAX_LINE_BYTES / 2 - 4));
            tracing::info!(error = ?secret, "debug-formatted");
            tracing::info!("{}", "x".repeat(10 * CAPTURED_BYTES));
            for n in 3..MAX_LINES + 5 {
                tracing::info!("line {n}");
            }
        });
        let (lines, dropped) = capture.take();
        assert_eq!((lines.len(), dropped), (MAX_LINES, 5));
        assert!(lines[2].text.len() <= CAPTURED_BYTES, "captured lines are bounded");
        let redactor = engine::Redactor::default();
        redactor.add(secret);
        let saved = log_lines(lines, dropped, "n1", &redactor);
        assert_eq!(saved.len(), MAX_LINES + 1);
        assert!(saved.iter().all(|l| l.message.len() <= MAX_LINE_BYTES && l.node == "n1"));
        // The secret crossed the cut: it is masked whole, and the line fits once masked.
        assert_eq!(saved[0].message, format!("{}***", "é".repeat(MAX_LINE_BYTES / 2 - 4)));
        assert!(saved[2].message.len() <= MAX_LINE_BYTES && saved[2].message.ends_with("x…"));
        assert_eq!(saved[1].message, "debug-formatted error=\"***\"");
        assert_eq!(saved[3].message, "line 3");
        assert!(saved[MAX_LINES].message.starts_with("5 more log lines"));
    }

    #[test]
    fn a_capture_of_the_same_run_id_leaves_another_captures_lines_alone() {
        let first = Capture::start("r4");
        let second = Capture::start("r4");
        drop(first);
        assert!(runs().contains_key("r4"), "the first capture forgot the second's lines");
        drop(second);
        assert!(!runs().contains_key("r4"));
    }

    #[test]
    fn a_dropped_capture_forgets_its_lines_and_a_span_without_one_keeps_none() {
        let subscriber = tracing_subscriber::registry().with(Layer);
        let capture = Capture::start("r3");
        tracing::subscriber::with_default(subscriber, || {
            let span = capture.span();
            span.in_scope(|| tracing::info!("kept until dropped"));
            assert_eq!(runs().get("r3").map(|c| c.lines.len()), Some(1));
            drop(capture);
            span.in_scope(|| tracing::info!("after the capture"));
        });
        assert!(!runs().contains_key("r3"));
    }
}
