//! Turns process file text into a validated `Plan`, collecting every diagnostic.
//!
//! **Architecture Invariant:** this crate does no IO (no files, no sockets, no tokio); it takes
//! bytes and returns a plan or diagnostics. It never panics on user input.

mod check;
mod diagnostic;
pub mod jq;
mod plan;
pub mod render;
pub mod schema;
pub mod template;

pub use check::{date_offset_secs, is_allowed_base_url};
pub use diagnostic::{Diagnostic, Severity};
pub use plan::*;
pub use spec::Location;

/// What connectors exist, and which (object, action) pairs each supports. The compiler asks it
/// about every connector step; the binary builds it from the registered connectors, so the
/// compiler knows no connector by name.
pub trait Catalog {
    /// `None` when no connector is registered for the connection type.
    fn operations(&self, connection_type: &str) -> Option<&[Operation]>;
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
    let plan = match serde_json::from_value::<spec::ProcessSpec>(loaded.value.clone()) {
        Ok(spec) => check::build(spec, catalog, &mut diagnostics),
        Err(e) => {
            if diagnostics.is_empty() {
                diagnostics.push(Diagnostic::error(
                    None,
                    "",
                    format!("the file does not match the process format: {e}"),
                ));
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

#[cfg(test)]
mod tests;
