//! What a new user hit in their first hour (issue 14): each rough edge, through the binary.

use crate::support::{Dir, stepwise};

/// A process with one no-data start, a property and a stop.
const ONE_PROPERTY: &str =
    "name: p\nproperties: {group: '1'}\nstart: {type: no_data, next: done}\nsteps:\n  done: {type: stop}\n";

#[test]
fn set_of_an_undeclared_property_is_a_usage_error_listing_the_declared_ones() {
    let dir = Dir::new();
    let p = dir.write("p.yaml", ONE_PROPERTY);
    let run = stepwise(dir.path(), &["run", p.to_str().unwrap(), "--no-history", "--set", "gruop=7"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("--set: the process declares no property 'gruop' (its properties are 'group')"),
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "nothing ran: {run:?}");

    let ok = stepwise(dir.path(), &["run", p.to_str().unwrap(), "--no-history", "--set", "group=7"]);
    assert_eq!(ok.code, 0, "{ok:?}");
}

#[test]
fn run_json_in_test_mode_says_where_the_dumps_and_the_report_are() {
    let dir = Dir::new();
    let p = dir.write("p.yaml", ONE_PROPERTY);
    let dump = dir.join("dumps");
    let run = stepwise(
        dir.path(),
        &["run", p.to_str().unwrap(), "--no-history", "--json", "--test", "--dump", dump.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let json = run.json();
    let test_mode = &json["test_mode"];
    assert_eq!(test_mode["dump_dir"], dump.display().to_string(), "{run:?}");
    let report = test_mode["report"].as_str().expect("a report path");
    assert!(std::path::Path::new(report).is_file(), "{report} is not a file: {run:?}");
    assert_eq!(test_mode["not_recorded"], serde_json::json!([]), "{run:?}");
    assert_eq!(json["status"], "COMPLETE", "{run:?}");
}

#[test]
fn schedule_of_a_valid_process_without_schedules_exits_0_and_says_so() {
    let dir = Dir::new();
    let p = dir.write("p.yaml", ONE_PROPERTY);
    let run = stepwise(dir.path(), &["schedule", p.to_str().unwrap(), "--next", "3"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(run.stderr.contains("the process has no schedules"), "{run:?}");

    // An invalid process is still exit 1.
    let bad = dir.write("bad.yaml", "name: p\nstart: {type: no_data, next: nowhere}\nsteps: {}\n");
    assert_eq!(stepwise(dir.path(), &["schedule", bad.to_str().unwrap()]).code, 1);
}

#[test]
fn a_cron_that_never_fires_is_caught_by_validate_as_schedules_md_says() {
    let dir = Dir::new();
    let p = dir.write(
        "p.yaml",
        "name: p\nstart: {type: no_data, next: done}\nsteps:\n  done: {type: stop}\nschedules:\n  - cron: '0 0 30 2 *'\n",
    );
    for command in ["validate", "schedule"] {
        let run = stepwise(dir.path(), &[command, p.to_str().unwrap()]);
        assert_eq!(run.code, 1, "{command}: {run:?}");
        assert!(run.stderr.contains(":6:5: error: cron expression '0 0 30 2 *' never fires"), "{command}: {run:?}");
    }
    let doc = std::fs::read_to_string(crate::support::repo().join("docs/schedules.md")).unwrap();
    assert!(!doc.contains("does not catch this case yet"), "docs/schedules.md still has the stale note");
}
