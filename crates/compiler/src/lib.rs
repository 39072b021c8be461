//! Turns process file text into a validated `Plan`, collecting every diagnostic.
//!
//! **Architecture Invariant:** this crate does no IO (no files, no sockets, no tokio); it takes
//! bytes and returns a plan or diagnostics. It never panics on user input.

mod check;
mod diagnostic;
pub mod jq;
mod plan;
pub mod render;
pub mod schedule;
pub mod schema;
pub mod template;

pub use check::{MAX_DEPTH, check_regex, date_offset_secs, is_allowed_base_url, value_set};
pub use diagnostic::{Diagnostic, Severity};
pub use plan::*;
pub use spec::Location;

/// What connectors exist, and which (object, action) pairs each supports. The compiler asks it
/// about every connector step; the binary builds it from the registered connectors, so the
/// compiler knows no connector by name.
pub trait Catalog {
    /// `None` when no connector is registered for the connection type.
    fn operations(&self, connection_type: &str) -> Option<&[Operation]>;

    /// What the connector can tell of a step of a known (object, action) before any run: unknown
    /// parameters, static values its schema refuses, files outside its directory. None by default.
    fn check_call(&self, connection_type: &str, call: &StaticCall<'_>) -> Vec<CallProblem> {
        let _ = (connection_type, call);
        Vec::new()
    }
}

/// A connector step as `validate` knows it: what is fixed in the file, before any document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticCall<'a> {
    pub object: &'a str,
    pub action: &'a str,
    /// Each parameter's name and, when its source is `static`, its value.
    pub parameters: Vec<(&'a str, Option<&'a str>)>,
    pub pattern: Option<&'a str>,
    /// The file name, when every part of `file_name` is static.
    pub file_name: Option<String>,
    /// Each query parameter's name and, when its source is `static`, its value.
    pub query: Vec<(&'a str, Option<&'a str>)>,
    /// The connector's own keys as written (see [`ConnectorCall::options`]).
    pub options: &'a serde_json::Map<String, serde_json::Value>,
}

/// A problem a connector found in a [`StaticCall`]: the step field it is about (`parameters`,
/// `parameters/NAME`, `pattern` or `file_name`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallProblem {
    pub field: String,
    pub message: String,
}

/// One (object, action) pair a connector supports. Connectors without objects (disk) use `""`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    pub object: &'static str,
    pub action: &'static str,
}

/// A catalog from plain tables.
#[derive(Clone, Debug, Default)]
pub struct StaticCatalog {
    entries: Vec<(&'static str, Vec<Operation>)>,
}

impl StaticCatalog {
    pub fn new() -> StaticCatalog {
        StaticCatalog::default()
    }

    pub fn with(mut self, connection_type: &'static str, operations: &[Operation]) -> StaticCatalog {
        self.entries.push((connection_type, operations.to_vec()));
        self
    }
}

impl Catalog for StaticCatalog {
    fn operations(&self, connection_type: &str) -> Option<&[Operation]> {
        self.entries.iter().find(|(t, _)| *t == connection_type).map(|(_, ops)| ops.as_slice())
    }
}

/// The result of compiling one file: a plan when there are no errors, and every diagnostic.
#[derive(Debug)]
pub struct Compiled {
    pub plan: Option<Plan>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Compiled {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Compiles process file bytes.
pub fn compile(bytes: &[u8], catalog: &dyn Catalog) -> Compiled {
    let loaded = match spec::load(bytes) {
        Ok(l) => l,
        Err(e) => {
            let mut d = Diagnostic::error(None, "", e.to_string());
            d.location = e.location();
            return Compiled { plan: None, diagnostics: vec![d] };
        }
    };
    let mut diagnostics = schema::check(&loaded.value);
    diagnostics.extend(loaded.duplicates.iter().map(duplicate_key));
    // The repeated definitions of step ids: reachability counts their edges too.
    let repeated: Vec<(String, &serde_json::Value)> = loaded
        .duplicates
        .iter()
        .filter_map(|d| match d.pointer.strip_prefix("/steps/") {
            Some(_) if d.pointer.matches('/').count() == 2 => Some((d.key.clone(), &d.value)),
            _ if d.pointer == "/start" => Some(("start".to_owned(), &d.value)),
            _ => None,
        })
        .collect();
    let raw = check::Raw { value: &loaded.value, repeated: &repeated };
    let plan = match serde_json::from_value::<spec::ProcessSpec>(loaded.value.clone()) {
        Ok(spec) => check::build(spec, raw, &[], catalog, &mut diagnostics),
        Err(e) => {
            if diagnostics.is_empty() {
                diagnostics.push(Diagnostic::error(
                    None,
                    "",
                    format!("the file does not match the process format: {e}"),
                ));
            }
            // Keep going with what does parse, so that every problem is reported at once.
            if let Some((spec, broken)) = partial_spec(&loaded.value) {
                check::build(spec, raw, &broken, catalog, &mut diagnostics);
            }
            None
        }
    };
    for d in &mut diagnostics {
        if d.location.is_none() {
            d.location = loaded.source_map.locate(&d.pointer);
        }
    }
    diagnostics.sort_by(|a, b| (a.location, &a.message).cmp(&(b.location, &b.message)));
    diagnostics.dedup();
    let plan = if diagnostics.iter().any(Diagnostic::is_error) { None } else { plan };
    Compiled { plan, diagnostics }
}

/// A key given twice: the first definition is the one checked, the repeat is reported where it is.
fn duplicate_key(dup: &spec::DuplicateKey) -> Diagnostic {
    let first = dup.first.map(|l| format!(" (first at line {})", l.line)).unwrap_or_default();
    let parent = &dup.pointer[..dup.pointer.rfind('/').unwrap_or(0)];
    let key = &dup.key;
    let mut d = match parent {
        "/steps" => Diagnostic::error(Some(key), &dup.pointer, format!("duplicate step id '{key}'{first}")),
        "/connections" => Diagnostic::error(None, &dup.pointer, format!("duplicate connection name '{key}'{first}")),
        _ => Diagnostic::error(
            diagnostic::step_of(&dup.pointer).as_deref(),
            &dup.pointer,
            format!("duplicate key '{key}'{first}"),
        ),
    };
    d.location = dup.location;
    d
}

/// The parts of a process that parse on their own, and the ids of the steps that do not (they
/// stand in as `stop` placeholders). `None` when not even the top level is a mapping.
fn parse<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

fn partial_spec(value: &serde_json::Value) -> Option<(spec::ProcessSpec, Vec<String>)> {
    use serde_json::Value;
    let obj = value.as_object()?;
    let mut broken = Vec::new();
    let start = match obj.get("start").and_then(parse) {
        Some(s) => s,
        None => {
            broken.push("start".to_owned());
            spec::StartSpec::NoData { next: String::new() }
        }
    };
    let mut steps = indexmap::IndexMap::new();
    for (id, raw) in obj.get("steps").and_then(Value::as_object).into_iter().flatten() {
        let step = match parse(raw) {
            Some(s) => s,
            None => {
                broken.push(id.clone());
                spec::StepSpec::Stop { keep_going: true, respond: false, next: None }
            }
        };
        steps.insert(id.clone(), step);
    }
    let mut connections = indexmap::IndexMap::new();
    for (name, raw) in obj.get("connections").and_then(Value::as_object).into_iter().flatten() {
        match parse(raw) {
            Some(c) => {
                connections.insert(name.clone(), c);
            }
            None => broken.push(format!("connection:{name}")),
        }
    }
    let schedules = obj.get("schedules").and_then(Value::as_array).into_iter().flatten().filter_map(parse).collect();
    let properties = obj
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k.clone(), s.clone())),
            Value::Number(_) | Value::Bool(_) => Some((k.clone(), v.to_string())),
            _ => None,
        })
        .collect();
    let spec = spec::ProcessSpec {
        name: obj.get("name").and_then(Value::as_str).unwrap_or("process").to_owned(),
        description: None,
        connections,
        properties,
        schedules,
        limits: obj.get("limits").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default(),
        record: spec::RecordMode::default(),
        retention_days: spec::DEFAULT_RETENTION_DAYS,
        start,
        steps,
    };
    Some((spec, broken))
}

#[cfg(test)]
mod tests;
