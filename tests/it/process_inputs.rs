//! The shipped processes given input that a regex, a wildcard or an unescaped template gets
//! wrong: a quote, a backslash, a newline, a `+`, non-ASCII letters, MessageFormat braces and a
//! JSON injection, in every field of their input files. Run with `--sandbox`, whose KnowBe4
//! simulator also holds a plus-addressed member of Sales and names with quotes.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::processes::{copy_processes, output, run_sandbox, step};
use crate::support::stepwise;

/// Values that break a template without escaping, or a comparison that is not exact.
const HOSTILE: &[&str] = &["o\"neil", "back\\slash", "new\nline", "plus+tag", "Zoë 日本", "'{1}' {2}", "\", \"x\": \""];

/// Two members of Sales that the sandbox seeds (`seed_edge_cases`).
const PLUS_MEMBER: &str = "sam.lee+sales@example.com";
const APOSTROPHE_MEMBER: &str = "zoe.o'brien@example.com";

/// CSV text: a header and rows, every field quoted.
fn csv(header: &str, rows: &[Vec<String>]) -> String {
    let mut text = format!("{header}\n");
    for row in rows {
        let fields: Vec<String> = row.iter().map(|f| format!("\"{}\"", f.replace('"', "\"\""))).collect();
        text.push_str(&fields.join(","));
        text.push('\n');
    }
    text
}

/// The messages of one step's notifications.
fn notes(report: &Value, step_id: &str) -> Vec<String> {
    report["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["step"] == step_id)
        .map(|n| n["message"].as_str().unwrap().to_owned())
        .collect()
}

fn count(report: &Value, step_id: &str, key: &str) -> u64 {
    step(report, step_id)[key].as_u64().unwrap_or_else(|| panic!("{step_id}.{key}"))
}

/// JSON Lines text, each line parsed.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

#[test]
fn group_sync_compares_emails_exactly() {
    let dir = copy_processes();
    let sample = dir.read("processes/data/knowbe4/membership/sales-team.csv");
    let mut rows: Vec<Vec<String>> = sample.lines().skip(1).map(|l| vec![l.to_owned()]).collect();
    // Listed members whose emails a regex reads as a pattern; as written by hand (case differs).
    rows.push(vec!["Sam.Lee+sales@example.com".to_owned()]);
    rows.push(vec![APOSTROPHE_MEMBER.to_owned()]);
    // A line that, read as a pattern, would keep every member.
    rows.push(vec!["[a-z0-9.]*@example.com".to_owned()]);
    rows.extend(HOSTILE.iter().map(|h| vec![format!("{h}@example.com")]));
    dir.write("processes/data/knowbe4/membership/sales-team.csv", csv("Email", &rows));
    for process in ["sync-group-membership", "nightly-group-sync"] {
        let report = run_sandbox(&dir, process);
        let removed = notes(&report, "removed");
        for listed in [PLUS_MEMBER, APOSTROPHE_MEMBER, "grace.patel4", "olivia.ito7"] {
            assert!(!removed.iter().any(|m| m.contains(listed)), "{process}: {listed} was removed: {removed:#?}");
        }
        // The four sample members and the two above stay; every other member is removed.
        assert_eq!(count(&report, "stays", "documents_in"), 6, "{process}");
        let members = count(&report, "members", "documents_out");
        assert_eq!(count(&report, "remove", "documents_out"), members - 6, "{process}");
        assert!(members > 6, "{process}");
        // The pattern and the hostile lines are emails KnowBe4 does not know.
        assert_eq!(count(&report, "unknown", "documents_in"), 2 + HOSTILE.len() as u64, "{process}");
        assert_eq!(count(&report, "add", "documents_in"), 2, "{process}");
    }
}

#[test]
fn offboarding_reports_hostile_emails_exactly() {
    let dir = copy_processes();
    let mut rows = vec![
        vec![APOSTROPHE_MEMBER.to_owned(), "2026-11-20".to_owned()],
        vec![PLUS_MEMBER.to_owned(), HOSTILE[0].to_owned()],
    ];
    let unknown: Vec<String> = HOSTILE.iter().map(|h| format!("{h}@example.com")).collect();
    for (email, day) in unknown.iter().zip(HOSTILE.iter().cycle().skip(1)) {
        rows.push(vec![email.clone(), (*day).to_owned()]);
    }
    dir.write("processes/data/knowbe4/leavers/leavers.csv", csv("Email,LastDay", &rows));
    let report = run_sandbox(&dir, "offboard-leavers");
    assert_eq!(count(&report, "archive", "documents_out"), 2);
    let lines = json_lines(&output(&dir, "offboarding"));
    let reported: BTreeSet<&str> = lines.iter().map(|l| l["email"].as_str().unwrap()).collect();
    assert_eq!(reported, unknown.iter().map(String::as_str).collect(), "{lines:#?}");
    for l in &lines {
        assert!(l["reason"].as_str().is_some_and(|r| !r.is_empty()), "{l}");
        assert_eq!(l.as_object().unwrap().len(), 2, "{l}");
    }
}

#[test]
fn onboarding_keeps_hostile_names_exact() {
    let dir = copy_processes();
    let mut rows = Vec::new();
    for (i, h) in HOSTILE.iter().enumerate() {
        let email = if i % 2 == 0 { format!("new{i}+hire@example.com") } else { format!("o'new{i}@example.com") };
        rows.push(vec![email, (*h).to_owned(), format!("{h} {i}"), format!("title {h}"), format!("{h} dept")]);
    }
    // Not valid emails (`plus+tag@example.com` is, so it is left out).
    let bad: Vec<String> =
        HOSTILE.iter().map(|h| format!("{h}@example.com")).filter(|e| e != "plus+tag@example.com").collect();
    for email in &bad {
        rows.push(vec![email.clone(), "Bad".to_owned(), "Row".to_owned(), "Intern".to_owned(), "Sales".to_owned()]);
    }
    dir.write("processes/data/knowbe4/hr/new-hires.csv", csv("Email,First,Last,Title,Department", &rows));
    let run = stepwise(
        dir.path(),
        &["run", "processes/onboard-new-hires.yaml", "--sandbox", "--json", "--no-history", "--test", "--dump", "dump"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    assert_eq!(count(&report, "add_to_group", "documents_in"), HOSTILE.len() as u64);
    // Every created user holds exactly what the row said.
    let created = dir.join("dump/steps/created/source");
    let mut users: Vec<Value> = std::fs::read_dir(&created)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .filter(|v: &Value| v.get("error").is_none())
        .collect();
    users.sort_by_key(|u| u["email"].as_str().unwrap().to_owned());
    let mut expected: Vec<&Vec<String>> = rows.iter().take(HOSTILE.len()).collect();
    expected.sort_by_key(|r| r[0].clone());
    let got: Vec<[&str; 5]> = users
        .iter()
        .map(|u| ["email", "firstName", "lastName", "jobTitle", "department"].map(|k| u[k].as_str().unwrap_or("")))
        .collect();
    let want: Vec<[&str; 5]> = expected.iter().map(|r| [0, 1, 2, 3, 4].map(|i| r[i].as_str())).collect();
    assert_eq!(got, want);
    // Refused rows are reported with their email as written.
    let failures = json_lines(&output(&dir, "onboarding"));
    let refused: BTreeSet<&str> = failures.iter().map(|f| f["email"].as_str().unwrap()).collect();
    assert_eq!(refused, bad.iter().map(String::as_str).collect());
}

#[test]
fn access_requests_report_hostile_rows_exactly() {
    let dir = copy_processes();
    let mut rows = vec![vec!["grant".to_owned(), PLUS_MEMBER.to_owned(), "Standard User".to_owned(), String::new()]];
    for h in HOSTILE {
        rows.push(vec![(*h).to_owned(), "a@example.com".to_owned(), "Standard User".to_owned(), String::new()]);
        rows.push(vec!["grant".to_owned(), format!("{h}@example.com"), "Standard User".to_owned(), String::new()]);
        rows.push(vec!["revoke".to_owned(), "a@example.com".to_owned(), (*h).to_owned(), String::new()]);
        rows.push(vec!["grant".to_owned(), "a@example.com".to_owned(), "Standard User".to_owned(), (*h).to_owned()]);
    }
    dir.write("processes/data/boomi/requests/access-requests.csv", csv("action,email,role,group", &rows));
    let report = run_sandbox(&dir, "boomi-access-requests");
    // The plus-addressed users' grants are made; every other row is refused.
    let applied = notes(&report, "log_applied");
    assert_eq!(applied.len(), 2, "{applied:#?}");
    assert!(applied.iter().any(|m| m.contains(PLUS_MEMBER)) && applied.iter().any(|m| m.contains("plus+tag@")));
    let reports = dir.join("processes/data/boomi/request-reports");
    let files: Vec<_> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.ends_with('\n'), "{text}");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let refused: Vec<Vec<String>> = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
    // Reported with their fields as written.
    let mut got: Vec<Vec<String>> = refused.iter().map(|r| r[..4].to_vec()).collect();
    let mut want: Vec<Vec<String>> =
        rows.iter().filter(|r| !(r[0] == "grant" && r[1].contains('+') && r[3].is_empty())).cloned().collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{text}");
    assert!(refused.iter().all(|r| r.len() == 5 && !r[4].is_empty()), "{text}");
}

/// The Boomi processes read their input from the services: the sandbox's Boomi account has a
/// plus-addressed user (who is also a KnowBe4 user) and one whose names hold a quote, an
/// apostrophe, a backslash, non-ASCII letters and a newline.
#[test]
fn boomi_processes_take_edge_case_users_exactly() {
    const PAT: &str = "pat.o'hara+boomi@example.com";
    let dir = copy_processes();
    run_sandbox(&dir, "boomi-access-review");
    let reviews = dir.join("processes/data/boomi/access-review");
    let files: Vec<_> = std::fs::read_dir(&reviews)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.ends_with('\n'), "{text}");
    let rows: Vec<Vec<String>> = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    let row = |email: &str| rows.iter().find(|r| r[0] == email).unwrap_or_else(|| panic!("no {email}:\n{text}"));
    assert_eq!(row(PAT)[1..], ["Pat \"PJ\"", "O'Hara \\ Zoë\nJr.", "global", "", "Standard User"]);
    assert_eq!(row(PLUS_MEMBER)[1..], ["Sam", "Lee", "global", "", "Standard User"]);

    // Security training: Pat is created in KnowBe4 with the names as written; Sam, a KnowBe4
    // user already, is matched exactly and not created again.
    let report = run_sandbox(&dir, "boomi-security-training");
    assert_eq!(report["status"], "COMPLETE", "{report:#}");
    let created = notes(&report, "log_created");
    assert!(created.iter().any(|m| m.starts_with(&format!("created KnowBe4 user {PAT} ("))), "{created:#?}");
    assert!(!created.iter().any(|m| m.contains(PLUS_MEMBER)), "{created:#?}");
    assert_eq!(count(&report, "create_failed", "documents_in"), 0, "{report:#}");
}
