//! Text rendering of runs for `stepwise history`.

use std::fmt::Write as _;

use chrono::SecondsFormat;

use crate::model::{RunRecord, StepRecord};

/// Formats runs as an aligned text table, newest first as given (`stepwise history`).
pub fn render_runs_table(runs: &[RunRecord]) -> String {
    if runs.is_empty() {
        return "no runs recorded\n".to_owned();
    }
    let header = ["RUN", "PROCESS", "TRIGGER", "NODE", "STARTED (UTC)", "DURATION", "STATUS", "IN", "OUT", "ERRORS"];
    let rows: Vec<[String; 10]> = runs
        .iter()
        .map(|run| {
            [
                run.run_id.clone(),
                run.process.clone(),
                run.trigger.to_string(),
                run.node.clone().unwrap_or_else(|| "-".to_owned()),
                run.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                duration_text(run),
                run.status.clone(),
                run.documents_in.to_string(),
                run.documents_out.to_string(),
                run.documents_error.to_string(),
            ]
        })
        .collect();
    let numeric = [false, false, false, false, false, true, false, true, true, true];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            if numeric[i] {
                let _ = write!(text, "{cell:>width$}", width = widths[i]);
            } else {
                let _ = write!(text, "{cell:<width$}", width = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

/// Formats one run and its steps (`stepwise history RUN_ID`).
pub fn render_run_detail(run: &RunRecord, steps: &[StepRecord]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "run        {}", run.run_id);
    let _ = writeln!(out, "process    {}", run.process);
    match run.scheduled_for {
        Some(at) => {
            let _ = writeln!(
                out,
                "trigger    {} (scheduled for {})",
                run.trigger,
                at.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
        }
        None => {
            let _ = writeln!(out, "trigger    {}", run.trigger);
        }
    }
    let _ = writeln!(out, "status     {}", run.status);
    if let Some(node) = &run.node {
        let _ = writeln!(out, "node       {node}");
    }
    if let Some(queued) = run.queued_at {
        let _ = writeln!(out, "queued     {}", queued.to_rfc3339_opts(SecondsFormat::Millis, true));
    }
    if run.status != "QUEUED" {
        let _ = writeln!(out, "started    {}", run.started_at.to_rfc3339_opts(SecondsFormat::Millis, true));
    }
    if let Some(ended) = run.ended_at {
        let _ =
            writeln!(out, "ended      {} ({})", ended.to_rfc3339_opts(SecondsFormat::Millis, true), duration_text(run));
    }
    let _ =
        writeln!(out, "documents  {} in, {} out, {} errors", run.documents_in, run.documents_out, run.documents_error);
    if let Some(error) = &run.error {
        let _ = writeln!(out, "error      {error}");
    }
    if !steps.is_empty() {
        let width = steps.iter().map(|s| s.step.chars().count()).max().unwrap_or(0).max(4);
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}", "STEP", "IN", "OUT", "ERRORS", "MS");
        for step in steps {
            let _ = writeln!(
                out,
                "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}",
                step.step, step.documents_in, step.documents_out, step.documents_error, step.millis
            );
        }
    }
    out
}

fn duration_text(run: &RunRecord) -> String {
    match run.ended_at {
        Some(ended) => {
            let millis = (ended - run.started_at).num_milliseconds().max(0);
            format!("{}.{:03}s", millis / 1000, millis % 1000)
        }
        _ => "-".to_owned(),
    }
}
