//! Cases run in parallel, bounded by `jobs`, and their results come back in file order. Proved
//! by the instants each case recorded (when it began and ended), never by durations.

use engine::Registry;

const PROCESS: &str = "name: busy
start: { type: no_data, next: work }
steps:
  work: { type: map, jq: '[range(0; 1000000)] | length', next: done }
  done: { type: stop }
";

/// A test file of `n` cases named `case 1`..`case n`, each busy for a while.
fn files(dir: &std::path::Path, n: usize) -> Vec<proctest::Loaded> {
    std::fs::write(dir.join("p.yaml"), PROCESS).unwrap();
    let mut test = String::from("process: p.yaml\ncases:\n");
    for i in 1..=n {
        test.push_str(&format!(
            "  - name: case {i}\n    expect: {{ entered: {{ done: {{ documents: [1000000] }} }} }}\n"
        ));
    }
    std::fs::write(dir.join("p.test.yaml"), test).unwrap();
    vec![proctest::load(&dir.join("p.test.yaml"), &Registry::with_builtins()).unwrap()]
}

#[test]
fn with_two_jobs_a_case_starts_before_the_one_before_it_ends_and_results_stay_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = files(dir.path(), 4);
    let results = proctest::run_all(&loaded, &Registry::with_builtins(), 2).unwrap();
    let names: Vec<&str> = results.iter().map(|r| r.case.as_str()).collect();
    assert_eq!(names, ["case 1", "case 2", "case 3", "case 4"]);
    assert!(results.iter().all(|r| r.passed()), "{results:?}");
    assert!(results[1].started < results[0].ended, "cases 1 and 2 overlap: {results:?}");
    // Never more than two at once: each case from the third on starts after some earlier one ended.
    for (i, r) in results.iter().enumerate().skip(2) {
        let free = results[..i].iter().filter(|e| e.ended <= r.started).count();
        assert!(free >= i - 1, "case {} started while {} cases ran: {results:?}", i + 1, i - free);
    }
}

#[test]
fn with_one_job_every_case_starts_after_the_one_before_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = files(dir.path(), 3);
    let results = proctest::run_all(&loaded, &Registry::with_builtins(), 1).unwrap();
    assert_eq!(results.len(), 3);
    for pair in results.windows(2) {
        assert!(pair[1].started >= pair[0].ended, "{results:?}");
    }
}
