//! Comparing what a case's run did with what the case expects. Every mismatch is one
//! `Failure` naming where (the step, the connection or the file), with a readable diff.

use serde_json::Value;

use crate::format::{Entered, Expect, NotificationMatch, Notifications, Requests};
use crate::mock::{contains, matches};
use crate::run::{Outcome, files_matching};

/// One expectation not met.
#[derive(Clone, Debug)]
pub struct Failure {
    /// `status`, `step 'ID'`, `connection 'NAME'`, `file 'GLOB'`.
    pub at: String,
    pub message: String,
    /// Expected against actual, as a unified diff, when both are texts worth comparing.
    pub diff: Option<String>,
}

impl Failure {
    fn new(at: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure { at: at.into(), message: message.into(), diff: None }
    }

    fn with_diff(mut self, expected: &str, actual: &str) -> Failure {
        self.diff = Some(diff(expected, actual));
        self
    }

    pub fn render(&self) -> String {
        let mut s = format!("{}: {}", self.at, self.message);
        if let Some(d) = &self.diff {
            for line in d.lines() {
                s.push_str("\n    ");
                s.push_str(line);
            }
        }
        s
    }
}

/// A unified diff of two texts (`-` expected, `+` actual).
pub fn diff(expected: &str, actual: &str) -> String {
    let with_newline = |s: &str| if s.ends_with('\n') { s.to_owned() } else { format!("{s}\n") };
    let (e, a) = (with_newline(expected), with_newline(actual));
    similar::TextDiff::from_lines(&e, &a).unified_diff().context_radius(3).header("expected", "actual").to_string()
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Every expectation of `expect` not met by `outcome`.
pub fn check(expect: &Expect, outcome: &Outcome) -> Vec<Failure> {
    let mut out = Vec::new();
    for mock in outcome.mocks.values() {
        out.extend(mock.unanswered().into_iter().map(|why| Failure::new("mock", why)));
    }
    if let Some(status) = &expect.status {
        let actual = outcome.report.status.as_str();
        if status != actual {
            let error = outcome
                .report
                .error
                .as_ref()
                .map(|e| format!(" (step '{}': {})", e.step, e.message))
                .unwrap_or_default();
            out.push(Failure::new("status", format!("expected {status}, got {actual}{error}")));
        }
    }
    for (step, counts) in &expect.steps {
        let stats = outcome.report.steps.iter().find(|s| &s.step == step);
        let actual = stats.map(|s| (s.documents_in, s.documents_out, s.documents_error)).unwrap_or_default();
        let pairs = [
            ("in", counts.documents_in, actual.0),
            ("out", counts.documents_out, actual.1),
            ("errors", counts.documents_error, actual.2),
        ];
        for (what, expected, actual) in pairs {
            if let Some(expected) = expected.filter(|e| *e != actual) {
                out.push(Failure::new(
                    format!("step '{step}'"),
                    format!("documents {what}: expected {expected}, got {actual}"),
                ));
            }
        }
    }
    for (step, entered) in &expect.entered {
        let docs = outcome.entered.get(step).map(Vec::as_slice).unwrap_or_default();
        out.extend(check_entered(step, entered, docs));
    }
    for (connection, requests) in &expect.requests {
        let received = outcome.mocks.get(connection).map(|m| m.received()).unwrap_or_default();
        out.extend(check_requests(connection, requests, &received));
    }
    for (pattern, content) in &expect.files {
        out.extend(check_file(outcome, pattern, content));
    }
    if let Some(n) = &expect.notifications {
        out.extend(check_notifications(n, &outcome.report.notifications));
    }
    out
}

fn check_entered(step: &str, expect: &Entered, docs: &[engine::Document]) -> Vec<Failure> {
    let at = format!("step '{step}'");
    let mut out = Vec::new();
    let values: Vec<Value> =
        docs.iter().map(|d| d.json().unwrap_or_else(|_| Value::String(d.text().into_owned()))).collect();
    let actual = Value::Array(values.clone());
    if let Some(count) = expect.count.filter(|c| *c != values.len()) {
        out.push(Failure::new(&at, format!("documents entered: expected {count}, got {}", values.len())));
    }
    if let Some(expected) = &expect.documents {
        let expected = Value::Array(expected.clone());
        if expected != actual {
            out.push(
                Failure::new(&at, "the documents that entered differ").with_diff(&pretty(&expected), &pretty(&actual)),
            );
        }
    }
    if let Some(expected) = &expect.subset {
        let expected = Value::Array(expected.clone());
        if !contains(&actual, &expected) {
            let message = "the documents that entered do not contain the expected ones";
            out.push(Failure::new(&at, message).with_diff(&pretty(&expected), &pretty(&actual)));
        }
    }
    if let Some(expected) = &expect.properties {
        out.extend(check_properties(&at, expected, docs));
    }
    if let Some(program) = &expect.all {
        match compiler::jq::compile(program) {
            Err(e) => out.push(Failure::new(&at, format!("jq: {e}"))),
            Ok(filter) => {
                for (i, v) in values.iter().enumerate() {
                    let result = compiler::jq::run(&filter, v.clone());
                    if result.as_deref() != Ok(&[Value::Bool(true)][..]) {
                        let got = match result {
                            Ok(vs) => vs.iter().map(Value::to_string).collect::<Vec<_>>().join(", "),
                            Err(e) => e,
                        };
                        out.push(Failure::new(
                            &at,
                            format!("document {} gives `{program}` = {got}, not true: {v}", i + 1),
                        ));
                    }
                }
            }
        }
    }
    out
}

fn check_requests(connection: &str, expect: &Requests, received: &[Value]) -> Vec<Failure> {
    let at = format!("connection '{connection}'");
    let mut out = Vec::new();
    if let Some(count) = expect.count.filter(|c| *c != received.len()) {
        out.push(Failure::new(&at, format!("requests: expected {count}, got {}", received.len())));
    }
    for m in &expect.includes {
        if !received.iter().any(|r| matches(r, m)) {
            let wanted =
                serde_json::json!({"method": m.method, "path": m.path, "operation": m.operation, "body": m.body});
            out.push(
                Failure::new(&at, "no request received matches the expected one")
                    .with_diff(&pretty(&wanted), &pretty(&Value::Array(received.to_vec()))),
            );
        }
    }
    out
}

fn check_file(outcome: &Outcome, pattern: &str, content: &str) -> Option<Failure> {
    let at = format!("file '{pattern}'");
    let found = match files_matching(outcome.dir.path(), pattern) {
        Ok(f) => f,
        Err(e) => return Some(Failure::new(at, e)),
    };
    let [path] = found.as_slice() else {
        return Some(Failure::new(at, format!("expected one file written, found {}", found.len())));
    };
    let actual = match std::fs::read_to_string(path) {
        Ok(a) => a,
        Err(e) => return Some(Failure::new(at, format!("cannot read it: {e}"))),
    };
    (actual != content).then(|| Failure::new(at, "the content differs").with_diff(content, &actual))
}

/// Each document carries (at least) the properties given at its position; as many documents.
fn check_properties(
    at: &str,
    expected: &[indexmap::IndexMap<String, String>],
    docs: &[engine::Document],
) -> Option<Failure> {
    let actual: Vec<Value> = docs
        .iter()
        .zip(expected.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(d, wanted)| {
            // Only the properties the case names, so that the diff shows what matters.
            let props = d.properties.iter().filter(|(k, _)| wanted.is_none_or(|w| w.contains_key(k.as_str())));
            Value::Object(props.map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
        })
        .collect();
    let expected: Vec<Value> = expected
        .iter()
        .map(|m| Value::Object(m.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()))
        .collect();
    (actual != expected).then(|| {
        Failure::new(at, "the properties of the documents that entered differ")
            .with_diff(&pretty(&Value::Array(expected)), &pretty(&Value::Array(actual)))
    })
}

fn notification_matches(n: &engine::Notification, m: &NotificationMatch) -> bool {
    m.step.as_deref().is_none_or(|s| s == n.step)
        && m.level.as_deref().is_none_or(|l| l.eq_ignore_ascii_case(&n.level))
        && m.message.as_deref().is_none_or(|x| x == n.message)
        && m.contains.as_deref().is_none_or(|x| n.message.contains(x))
}

fn describe_notifications(ns: &[engine::Notification]) -> String {
    let lines: Vec<String> = ns.iter().map(|n| format!("{} [{}]: {}", n.step, n.level, n.message)).collect();
    lines.join("\n")
}

fn describe_match(m: &NotificationMatch) -> String {
    let text = match (&m.message, &m.contains) {
        (Some(message), _) => message.clone(),
        (None, Some(part)) => format!("...{part}..."),
        (None, None) => "*".to_owned(),
    };
    format!("{} [{}]: {text}", m.step.as_deref().unwrap_or("*"), m.level.as_deref().unwrap_or("*"))
}

fn check_notifications(expect: &Notifications, actual: &[engine::Notification]) -> Vec<Failure> {
    let at = "notifications";
    let mut out = Vec::new();
    if let Some(count) = expect.count.filter(|c| *c != actual.len()) {
        out.push(Failure::new(at, format!("expected {count}, got {}", actual.len())));
    }
    if let Some(exactly) = &expect.exactly {
        let same = exactly.len() == actual.len() && actual.iter().zip(exactly).all(|(n, m)| notification_matches(n, m));
        if !same {
            let wanted: Vec<String> = exactly.iter().map(describe_match).collect();
            out.push(
                Failure::new(at, "the notifications differ")
                    .with_diff(&wanted.join("\n"), &describe_notifications(actual)),
            );
        }
    }
    for m in &expect.includes {
        if !actual.iter().any(|n| notification_matches(n, m)) {
            out.push(
                Failure::new(at, "no notification matches the expected one")
                    .with_diff(&describe_match(m), &describe_notifications(actual)),
            );
        }
    }
    out
}
