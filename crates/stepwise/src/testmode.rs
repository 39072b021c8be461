//! `stepwise run --test`: wires the engine's dump recorder (`engine::dump`) into a run, and
//! prints where the dumps and the report went and what, if anything, was not recorded.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use compiler::Plan;
use engine::dump::{Dump, DumpConfig, DumpLimits, DumpSummary};
use engine::{Recorder, Redactor, RunReport};

/// What `run.json` says about how the run was started.
pub struct RunInputs {
    pub limits: DumpLimits,
    pub process_file: PathBuf,
    pub overrides: Vec<(String, String)>,
}

/// One test-mode run's dumps.
pub struct TestRun {
    dump: Dump,
}

impl TestRun {
    /// Prepares the dump directory: `dump`, or `.stepwise/test-runs/<run-id>/` by default.
    pub fn start(
        plan: &Plan,
        run_id: &str,
        dump: Option<PathBuf>,
        redactor: Redactor,
        run: RunInputs,
    ) -> anyhow::Result<TestRun> {
        let dir = dump.unwrap_or_else(|| PathBuf::from(".stepwise/test-runs").join(run_id));
        let mut config = DumpConfig::new(dir);
        config.limits = run.limits;
        config.process_file = Some(std::fs::canonicalize(&run.process_file).unwrap_or(run.process_file));
        config.overrides = run.overrides;
        let dump = Dump::create(plan, run_id, config, redactor).context("test mode cannot start")?;
        Ok(TestRun { dump })
    }

    pub fn recorder(&self) -> Arc<dyn Recorder> {
        self.dump.recorder()
    }

    /// Writes `run.json` and `report.html`.
    pub fn finish(self, report: &RunReport) -> anyhow::Result<DumpSummary> {
        let dir = self.dump.dir().to_owned();
        self.dump.finish(report).with_context(|| format!("test mode cannot finish the dumps in '{}'", dir.display()))
    }
}

/// Prints where the dumps are and every note about what was not recorded: after the human
/// summary on stdout, or on stderr when stdout holds the JSON summary.
pub fn print(summary: &DumpSummary, json: bool, stdout: &mut dyn Write) -> anyhow::Result<()> {
    let mut lines =
        vec![format!("test mode: dumps in {}, report {}", summary.dir.display(), summary.report_html.display())];
    for note in &summary.notes {
        lines.push(format!("test mode: not recorded: {note}"));
    }
    if json {
        let mut stderr = std::io::stderr().lock();
        for line in lines.iter().skip(1) {
            writeln!(stderr, "{line}")?;
        }
    } else {
        for line in &lines {
            writeln!(stdout, "{line}")?;
        }
    }
    Ok(())
}

/// Where the dumps and the report are, and what was not recorded: the `test_mode` object of
/// `run --json --test`.
pub fn json(summary: &DumpSummary) -> serde_json::Value {
    serde_json::json!({
        "dump_dir": summary.dir.display().to_string(),
        "report": summary.report_html.display().to_string(),
        "not_recorded": summary.notes,
    })
}

/// A byte count: digits with an optional `K`, `M` or `G` (`KiB`, `MiB`, `GiB`; powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("'{text}' is not a byte count (like 500000, 64K, 10M or 1G)"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return Err(format!("'{text}' has an unknown unit (use K, M or G, powers of 1024)")),
    };
    n.checked_mul(factor).ok_or_else(|| format!("'{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn parses_byte_counts() {
        assert_eq!(parse_bytes("500000"), Ok(500_000));
        assert_eq!(parse_bytes("64K"), Ok(65_536));
        assert_eq!(parse_bytes("10MiB"), Ok(10 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert!(parse_bytes("ten").is_err());
        assert!(parse_bytes("5X").is_err());
        assert!(parse_bytes("99999999999999G").is_err());
    }
}
