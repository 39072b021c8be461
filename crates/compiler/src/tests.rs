//! Compiler tests: inline snapshots, and the data-driven `test_data/{ok,err}` walk.

use std::path::Path;

use expect_test::{Expect, expect, expect_file};

use crate::{Operation, StaticCatalog, compile};

pub(crate) fn catalog() -> StaticCatalog {
    StaticCatalog::new()
        .with("disk", &[Operation { object: "", action: "get" }, Operation { object: "", action: "send" }])
        .with(
            "knowbe4",
            &[
                Operation { object: "user", action: "create" },
                Operation { object: "user", action: "list" },
                Operation { object: "group_membership", action: "add" },
            ],
        )
}

fn render(yaml: &str) -> String {
    let compiled = compile(yaml.as_bytes(), &catalog());
    let mut out = String::new();
    for d in &compiled.diagnostics {
        out.push_str(&d.render("p.yaml"));
        out.push('\n');
    }
    if let Some(plan) = &compiled.plan {
        out.push_str(&crate::render::mermaid(plan));
    }
    out
}

#[track_caller]
fn check(yaml: &str, expect: Expect) {
    expect.assert_eq(&render(yaml));
}

#[test]
fn smoke() {
    check(
        "name: p\nstart: {type: no_data, next: a}\nsteps:\n  a: {type: stop}\n",
        expect![[r#"
            flowchart TD
                s_start(["start<br/><i>start</i>"])
                s_a(("a<br/><i>stop</i>"))
                s_start --> s_a
        "#]],
    );
}

#[test]
fn reports_a_cycle() {
    check(
        "name: p\nstart: {type: no_data, next: a}\nsteps:\n  a: {type: map, jq: '.', next: b}\n  b: {type: map, jq: '.', next: a}\n",
        expect![[r#"
            p.yaml:4:3: error: step 'a': the process graph has a cycle: a -> b -> a
        "#]],
    );
}

/// Walks `test_data/ok` (no errors) and `test_data/err` (at least one error); each `X.yaml` has an
/// `X.txt` snapshot of the diagnostics (`UPDATE_EXPECT=1 cargo test` rewrites them).
#[test]
fn test_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data");
    let mut n = 0;
    for (dir, want_errors) in [("ok", false), ("err", true)] {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")) {
            let bytes = std::fs::read(&path).unwrap();
            let compiled = compile(&bytes, &catalog());
            assert_eq!(compiled.has_errors(), want_errors, "{}: {:#?}", path.display(), compiled.diagnostics);
            let mut out = String::new();
            for d in &compiled.diagnostics {
                out.push_str(&d.render(path.file_name().unwrap().to_str().unwrap()));
                out.push('\n');
            }
            expect_file![path.with_extension("txt")].assert_eq(&out);
            n += 1;
        }
    }
    assert!(n > 20, "only {n} test files");
}
