//! The JUnit XML report of `stepwise test --junit FILE`: one `testsuite` per test file, one
//! `testcase` per case, a `failure` per failed case with everything that differed.

use std::path::PathBuf;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::CaseResult;

fn seconds(millis: u64) -> String {
    format!("{:.3}", millis as f64 / 1000.0)
}

/// The report of `results` (in file order) as JUnit XML.
pub fn render(results: &[CaseResult]) -> Result<String, std::io::Error> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let failed = |rs: &[&CaseResult]| rs.iter().filter(|r| !r.passed()).count().to_string();
    let all: Vec<&CaseResult> = results.iter().collect();
    let total_ms: u64 = results.iter().map(|r| r.millis).sum();
    let suites = BytesStart::new("testsuites").with_attributes([
        ("name", "stepwise test"),
        ("tests", all.len().to_string().as_str()),
        ("failures", failed(&all).as_str()),
        ("time", seconds(total_ms).as_str()),
    ]);
    w.write_event(Event::Start(suites))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for r in results {
        if !files.contains(&r.file) {
            files.push(r.file.clone());
        }
    }
    for file in &files {
        let cases: Vec<&CaseResult> = results.iter().filter(|r| &r.file == file).collect();
        let name = file.display().to_string();
        let suite = BytesStart::new("testsuite").with_attributes([
            ("name", name.as_str()),
            ("tests", cases.len().to_string().as_str()),
            ("failures", failed(&cases).as_str()),
            ("errors", "0"),
            ("time", seconds(cases.iter().map(|c| c.millis).sum()).as_str()),
        ]);
        w.write_event(Event::Start(suite))?;
        for c in cases {
            let case = BytesStart::new("testcase").with_attributes([
                ("name", c.case.as_str()),
                ("classname", name.as_str()),
                ("time", seconds(c.millis).as_str()),
            ]);
            if c.passed() {
                w.write_event(Event::Empty(case))?;
                continue;
            }
            w.write_event(Event::Start(case))?;
            let first = c.failures.first().map(|f| format!("{}: {}", f.at, f.message)).unwrap_or_default();
            let text: Vec<String> = c.failures.iter().map(|f| f.render()).collect();
            w.write_event(Event::Start(BytesStart::new("failure").with_attributes([("message", first.as_str())])))?;
            w.write_event(Event::Text(BytesText::new(&text.join("\n"))))?;
            w.write_event(Event::End(BytesEnd::new("failure")))?;
            w.write_event(Event::End(BytesEnd::new("testcase")))?;
        }
        w.write_event(Event::End(BytesEnd::new("testsuite")))?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuites")))?;
    Ok(String::from_utf8_lossy(&w.into_inner()).into_owned())
}
