//! Every shipped process in `processes/` runs with `--sandbox` (no credentials) and produces the
//! output its description promises.

use std::path::Path;

use crate::support::{Dir, repo, stepwise};

/// Copies `processes/` (files and sample data) into a temporary directory, so runs write there.
pub(crate) fn copy_processes() -> Dir {
    let dir = Dir::new();
    copy_dir(&repo().join("processes"), &dir.join("processes"));
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "out" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

pub(crate) fn run_sandbox(dir: &Dir, process: &str) -> serde_json::Value {
    let file = format!("processes/{process}.yaml");
    let mut args = vec!["run", &file, "--sandbox", "--json", "--no-history"];
    // A webhook process runs on its sample request body.
    let sample = format!("processes/data/webhooks/{process}.json");
    if dir.join(&sample).exists() {
        args.extend(["--input", &sample]);
    }
    let run = stepwise(dir.path(), &args);
    assert_eq!(run.code, 0, "{process}: {run:?}");
    let report = run.json();
    let status = report["status"].as_str().unwrap();
    assert!(status == "COMPLETE" || status == "COMPLETE_WARN", "{process}: {report:#}");
    report
}

pub(crate) fn step<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["steps"].as_array().unwrap().iter().find(|s| s["step"] == id).unwrap_or_else(|| panic!("no step {id}"))
}

/// The one file a process wrote into `processes/out/<sub>/`.
pub(crate) fn output(dir: &Dir, sub: &str) -> String {
    let out = dir.join("processes/out").join(sub);
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::read_to_string(&files[0]).unwrap()
}

#[test]
fn every_shipped_process_runs_in_the_sandbox() {
    let dir = copy_processes();
    let mut n = 0;
    for entry in std::fs::read_dir(dir.join("processes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        run_sandbox(&dir, &name);
        n += 1;
    }
    assert!(n >= 6, "{n}");
    let outputs = well_formed_outputs(&dir.join("processes/out"));
    assert!(outputs >= 4, "{outputs} output files");
}

/// Checks every file under `dir` is a well-formed text file: it ends with a newline, and a
/// `.jsonl` file has one JSON value per line, a `.json` file is one JSON value. How many.
fn well_formed_outputs(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            n += well_formed_outputs(&path);
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'), "{} does not end with a newline: {text:?}", path.display());
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl") => {
                for line in text.lines() {
                    serde_json::from_str::<serde_json::Value>(line)
                        .unwrap_or_else(|e| panic!("{}: line {line:?}: {e}", path.display()));
                }
            }
            Some("json") => {
                serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
            _ => {}
        }
        n += 1;
    }
    n
}

#[test]
fn onboarding_creates_users_and_reports_refused_rows() {
    let dir = copy_processes();
    let report = run_sandbox(&dir, "onboard-new-hires");
    assert_eq!(report["status"], "COMPLETE_WARN");
    assert_eq!(step(&report, "create_user")["documents_in"], 5);
    assert_eq!(step(&report, "add_to_group")["documents_in"], 3);
    assert_eq!(step(&report, "enrol")["documents_in"], 3);
    let failures = output(&dir, "onboarding");
    let lines: Vec<serde_json::Value> = failures.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{failures}");
    assert_eq!(lines[0]["email"], "not-an-email");
    assert_eq!(lines[0]["kind"], "validation");
    assert_eq!(lines[0]["details"][0]["field"], "email");
    assert_eq!(lines[1]["email"], "victor.taylor1@example.com");
    assert_eq!(lines[1]["details"][0]["reason"], "taken");
}

#[test]
fn offboarding_archives_known_users_and_reports_unknown_emails() {
    let dir = copy_processes();
    let report = run_sandbox(&dir, "offboard-leavers");
    assert_eq!(step(&report, "archive")["documents_out"], 2);
    let unknown = output(&dir, "offboarding");
    assert!(unknown.contains("nobody.here@example.com"), "{unknown}");
    assert_eq!(unknown.lines().count(), 1);
    let notes = report["notifications"].as_array().unwrap();
    assert!(notes.iter().any(|n| n["message"].as_str().unwrap().contains("nobody.here@example.com")));
}

#[test]
fn group_sync_adds_the_missing_and_removes_the_extra() {
    let dir = copy_processes();
    for process in ["sync-group-membership", "nightly-group-sync"] {
        let report = run_sandbox(&dir, process);
        // Four listed users are members already; two are added; one is unknown.
        assert_eq!(step(&report, "stays")["documents_in"], 4, "{process}");
        assert_eq!(step(&report, "add")["documents_in"], 2, "{process}");
        assert_eq!(step(&report, "unknown")["documents_in"], 1, "{process}");
        let removed = step(&report, "remove")["documents_in"].as_u64().unwrap();
        assert!(removed > 0, "{process}");
        // Every removal is a member who is not on the list.
        let notes = report["notifications"].as_array().unwrap();
        for n in notes.iter().filter(|n| n["step"] == "removed") {
            let msg = n["message"].as_str().unwrap();
            assert!(!msg.contains("grace.patel4") && !msg.contains("olivia.ito7"), "{msg}");
        }
    }
}

#[test]
fn phishing_report_writes_one_line_per_run() {
    let dir = copy_processes();
    let report = run_sandbox(&dir, "phishing-report");
    let text = output(&dir, "phishing");
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len() as u64, step(&report, "runs")["documents_out"].as_u64().unwrap());
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(l["campaignId"].is_u64() && l["campaignName"].is_string() && l["run"]["runId"].is_u64(), "{l}");
    }
}

#[test]
fn partner_billing_writes_a_csv_with_a_header() {
    let dir = copy_processes();
    run_sandbox(&dir, "partner-billing");
    let csv = output(&dir, "billing");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("account,active_users,seats"));
    let rows: Vec<&str> = lines.collect();
    assert!(!rows.is_empty());
    for row in rows {
        let fields: Vec<&str> = row.rsplitn(3, ',').collect();
        assert!(fields[0].parse::<u64>().is_ok() && fields[1].parse::<u64>().is_ok(), "{row}");
    }
}
