//! Finding test files and loading one: YAML with locations (`spec::load`), the JSON Schema of
//! test files, then the process it names, compiled, and the names the cases use checked
//! against it. Problems are `compiler::Diagnostic`s, printed like `stepwise validate`'s.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use compiler::{Diagnostic, Plan};
use engine::Registry;
use jsonschema::error::ValidationErrorKind;

use crate::format::TestFile;

/// The test file format's JSON Schema, as shipped in `schemas/`.
pub const TEST_SCHEMA: &str = include_str!("../../../schemas/process-test.schema.json");

/// A test file read, checked, with its compiled process.
pub struct Loaded {
    pub path: PathBuf,
    pub file: TestFile,
    pub process_path: PathBuf,
    pub plan: Plan,
}

/// Why a test file cannot run: its diagnostics, rendered as `FILE:LINE:COL: error: ...`.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct Invalid(pub Vec<String>);

/// The `*.test.yaml` files of `paths`: files as given, directories searched recursively
/// (sorted, hidden entries skipped).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Invalid> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out).map_err(|e| Invalid(vec![format!("{}: error: cannot read: {e}", p.display())]))?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(Invalid(vec![format!("{}: error: no such file or directory", p.display())]));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if name.ends_with(".test.yaml") {
            out.push(p);
        }
    }
    Ok(())
}

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(TEST_SCHEMA).expect("the bundled test schema is JSON (tested)");
        jsonschema::draft7::options().build(&schema).expect("the bundled test schema compiles (tested)")
    })
}

/// Reads and checks one test file and compiles its process.
pub fn load(path: &Path, registry: &Registry) -> Result<Loaded, Invalid> {
    let name = path.display().to_string();
    let fail = |message: String| Invalid(vec![format!("{name}: error: {message}")]);
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let loaded = spec::load(&bytes).map_err(|e| fail(e.to_string()))?;
    let locate = |mut d: Diagnostic| {
        d.location = loaded.source_map.locate(&d.pointer);
        d.render(&name)
    };
    let mut problems: Vec<String> = loaded
        .duplicates
        .iter()
        .map(|d| locate(Diagnostic::error(None, d.pointer.clone(), format!("duplicate key '{}'", d.key))))
        .collect();
    for e in validator().iter_errors(&loaded.value) {
        let pointer = e.instance_path.to_string();
        if let ValidationErrorKind::AdditionalProperties { unexpected } = &e.kind {
            for key in unexpected {
                let child = format!("{pointer}/{}", spec::escape_pointer(key));
                problems.push(locate(Diagnostic::error(None, child, format!("unknown key '{key}'"))));
            }
            continue;
        }
        let at = if pointer.is_empty() { String::new() } else { format!("'{pointer}': ") };
        problems.push(locate(Diagnostic::error(None, pointer, format!("{at}{e}"))));
    }
    if !problems.is_empty() {
        return Err(Invalid(problems));
    }
    let file: TestFile = serde_json::from_value(loaded.value.clone()).map_err(|e| fail(e.to_string()))?;
    let process_path = path.parent().unwrap_or(Path::new(".")).join(&file.process);
    let process_bytes = std::fs::read(&process_path).map_err(|e| {
        let d =
            Diagnostic::error(None, "/process", format!("cannot read the process '{}': {e}", process_path.display()));
        Invalid(vec![locate(d)])
    })?;
    let compiled = compiler::compile(&process_bytes, registry);
    let process_name = process_path.display().to_string();
    let Some(plan) = compiled.plan.filter(|_| !compiled.diagnostics.iter().any(Diagnostic::is_error)) else {
        let mut lines =
            vec![locate(Diagnostic::error(None, "/process", format!("the process '{process_name}' is invalid")))];
        lines.extend(compiled.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.render(&process_name)));
        return Err(Invalid(lines));
    };
    let problems = check_names(&file, &plan);
    if !problems.is_empty() {
        return Err(Invalid(problems.into_iter().map(locate).collect()));
    }
    Ok(Loaded { path: path.to_owned(), file, process_path, plan })
}

/// Steps, connections and properties the cases name must exist in the process.
fn check_names(file: &TestFile, plan: &Plan) -> Vec<Diagnostic> {
    let steps: Vec<&str> = plan.graph.node_weights().map(|s| s.id.as_str()).collect();
    let mut out = Vec::new();
    for (i, case) in file.cases.iter().enumerate() {
        let at = |rest: String| format!("/cases/{i}/{rest}");
        for name in case.properties.keys() {
            if !plan.properties.contains_key(name) {
                let msg = format!("the process declares no property '{name}'");
                out.push(Diagnostic::error(None, at(format!("properties/{}", spec::escape_pointer(name))), msg));
            }
        }
        let connections =
            case.mocks.keys().map(|n| (n, "mocks")).chain(case.expect.requests.keys().map(|n| (n, "expect/requests")));
        for (name, key) in connections {
            if !plan.connections.contains_key(name) {
                let msg = format!("the process has no connection '{name}'");
                out.push(Diagnostic::error(None, at(format!("{key}/{}", spec::escape_pointer(name))), msg));
            }
        }
        let named =
            case.expect.steps.keys().map(|n| (n, "steps")).chain(case.expect.entered.keys().map(|n| (n, "entered")));
        for (name, key) in named {
            if !steps.contains(&name.as_str()) {
                let msg = format!("the process has no step '{name}'");
                out.push(Diagnostic::error(
                    Some(name),
                    at(format!("expect/{key}/{}", spec::escape_pointer(name))),
                    msg,
                ));
            }
        }
        out.extend(check_notified_steps(case, &steps, i));
        for (name, entered) in &case.expect.entered {
            if let Some(Err(e)) = entered.all.as_deref().map(compiler::jq::compile) {
                let pointer = at(format!("expect/entered/{}/all", spec::escape_pointer(name)));
                out.push(Diagnostic::error(Some(name), pointer, format!("jq: {e}")));
            }
        }
    }
    out
}

/// The steps the notification expectations of case `i` name must exist.
fn check_notified_steps(case: &crate::format::Case, steps: &[&str], i: usize) -> Vec<Diagnostic> {
    let Some(n) = &case.expect.notifications else { return Vec::new() };
    let exactly = n.exactly.iter().flatten().enumerate().map(|(j, m)| (format!("exactly/{j}"), m));
    let includes = n.includes.iter().enumerate().map(|(j, m)| (format!("includes/{j}"), m));
    exactly
        .chain(includes)
        .filter_map(|(k, m)| m.step.as_ref().map(|s| (k, s)))
        .filter(|(_, step)| !steps.contains(&step.as_str()))
        .map(|(key, step)| {
            let pointer = format!("/cases/{i}/expect/notifications/{key}/step");
            Diagnostic::error(Some(step), pointer, format!("the process has no step '{step}'"))
        })
        .collect()
}
