//! A connector's user page kept in step with its input schemas: the object/action table between
//! the `BEGIN GENERATED` and `END GENERATED` markers of `docs/<connector>.md` is rebuilt from
//! the embedded schemas (`schemas/<connector>/<object>.<action>.json`), and the schema folder,
//! the embedded schemas and the connector's operations must name the same pairs. Each
//! connector runs both checks as tests with [`docs_tests!`](crate::docs_tests);
//! `UPDATE_EXPECT=1` makes the page check rewrite the page instead of failing.
//!
//! The columns are the same for every connector: object, action, what it does (the schema's
//! `title`), the API call behind it (the schema's annotation named by
//! [`ConnectorDocs::call_key`]), where the input comes from (`x-stepwise-input`), and the
//! required and optional input fields, which each connector describes in its own way
//! ([`ConnectorDocs::fields`]).

use std::path::{Path, PathBuf};

use compiler::Operation;
use serde_json::Value;

use crate::schema::SchemaSet;

const END: &str = "<!-- END GENERATED -->";

/// What does not match between a connector's schemas, operations and page.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Two lists of `object.action` pairs differ (schema files, embedded schemas, operations).
    #[error("{what} differ:\n  left:  {left:?}\n  right: {right:?}")]
    Mismatch { what: String, left: Vec<String>, right: Vec<String> },
    /// An embedded schema is not the file it was embedded from.
    #[error("the embedded schema {0} differs from its file")]
    Stale(String),
    /// The page has no generated region.
    #[error("{page} lacks the markers {begin} ... {END}")]
    Markers { page: String, begin: String },
    /// The page's generated region is not what the schemas give.
    #[error("{page}'s generated table is out of date; run with UPDATE_EXPECT=1\n--- expected\n{expected}")]
    OutOfDate { page: String, expected: String },
}

/// The required and optional cells of one operation's row, from its schema.
pub type Fields = fn(&Value) -> (String, String);

/// What one connector's generated table is made of.
pub struct ConnectorDocs {
    /// The connector crate's `CARGO_MANIFEST_DIR`; the repository is two folders up.
    pub manifest_dir: &'static str,
    /// The crate's package name, as in `cargo test -p <package>` (named in the begin marker).
    pub package: &'static str,
    /// The page, from the repository root (`docs/knowbe4.md`).
    pub page: &'static str,
    /// The schema folder, from the repository root (`schemas/knowbe4`).
    pub schema_dir: &'static str,
    /// The embedded schemas.
    pub schemas: &'static SchemaSet,
    /// The connector's operations, in the order of the table.
    pub operations: &'static [Operation],
    /// The heading of the API call column (`GraphQL`).
    pub call_column: &'static str,
    /// The schema annotation that names the API call (`x-graphql`).
    pub call_key: &'static str,
    /// The required and optional cells of a row.
    pub fields: Fields,
}

/// A list cell: the items joined with commas, or a dash when there are none.
pub fn list_cell(items: &[String]) -> String {
    if items.is_empty() { "–".to_owned() } else { items.join(", ") }
}

/// `text` as inline code.
pub fn code(text: &str) -> String {
    format!("`{text}`")
}

fn source_cell(schema: &Value) -> &str {
    match schema.get("x-stepwise-input").and_then(Value::as_str) {
        Some("parameters_or_document") => "parameters, or the document",
        Some(other) => other,
        None => "?",
    }
}

impl ConnectorDocs {
    fn repo(&self) -> PathBuf {
        Path::new(self.manifest_dir).join("../..")
    }

    fn begin(&self) -> String {
        format!("<!-- BEGIN GENERATED: cargo test -p {} (UPDATE_EXPECT=1 to rewrite) -->", self.package)
    }

    fn pairs(&self) -> Vec<String> {
        let mut ops: Vec<String> = self.operations.iter().map(|o| format!("{}.{}", o.object, o.action)).collect();
        ops.sort();
        ops
    }

    fn row(&self, name: &str, schema: &Value) -> String {
        let (object, action) = name.split_once('.').unwrap_or((name, ""));
        let (required, optional) = (self.fields)(schema);
        let source = source_cell(schema);
        let call = schema.get(self.call_key).and_then(Value::as_str).unwrap_or("?");
        let title = schema.get("title").and_then(Value::as_str).unwrap_or("");
        format!("| `{object}` | `{action}` | {title} | `{call}` | {source} | {required} | {optional} |")
    }

    /// The generated region: a header and one row per operation.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "| object | action | does | {} | input from | required | optional |\n",
            self.call_column
        ));
        out.push_str("|---|---|---|---|---|---|---|\n");
        for op in self.operations {
            let name = format!("{}.{}", op.object, op.action);
            let text = self.schemas.sources().iter().find(|(n, _)| *n == name).map(|(_, t)| *t).unwrap_or("{}");
            let schema: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            out.push_str(&self.row(&name, &schema));
            out.push('\n');
        }
        out
    }

    /// Every operation has a schema file, every file is an operation's, each is embedded, and
    /// each embedded schema is its file's current text.
    pub fn check_schema_files(&self) -> Result<(), DocsError> {
        let dir = self.repo().join(self.schema_dir);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| DocsError::Io { path, source }
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let name = entry.map_err(io(&dir))?.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".json") {
                files.push(stem.to_owned());
            }
        }
        files.sort();
        let ops = self.pairs();
        if files != ops {
            let what = format!("{}/*.json and the operations", self.schema_dir);
            return Err(DocsError::Mismatch { what, left: files, right: ops });
        }
        let mut embedded: Vec<String> = self.schemas.sources().iter().map(|(n, _)| (*n).to_owned()).collect();
        embedded.sort();
        if embedded != ops {
            let what = "embedded schemas and the operations".to_owned();
            return Err(DocsError::Mismatch { what, left: embedded, right: ops });
        }
        for (name, text) in self.schemas.sources() {
            let path = dir.join(format!("{name}.json"));
            if std::fs::read_to_string(&path).map_err(io(&path))? != *text {
                return Err(DocsError::Stale((*name).to_owned()));
            }
        }
        Ok(())
    }

    /// The page's generated region is [`ConnectorDocs::table`]; with `UPDATE_EXPECT` set in the
    /// environment, a region that differs is rewritten instead.
    pub fn check_page(&self) -> Result<(), DocsError> {
        let path = self.repo().join(self.page);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = self.table();
        let begin = self.begin();
        let (Some(b), Some(e)) = (current.find(&begin), current.find(END)) else {
            return Err(DocsError::Markers { page: self.page.to_owned(), begin });
        };
        let start = b + begin.len() + 1;
        let existing = current.get(start..e).unwrap_or("");
        if existing == generated {
            return Ok(());
        }
        if std::env::var_os("UPDATE_EXPECT").is_none() {
            return Err(DocsError::OutOfDate { page: self.page.to_owned(), expected: generated });
        }
        let updated = format!("{}{}{}", &current[..start], generated, &current[e..]);
        std::fs::write(&path, updated).map_err(|source| DocsError::Io { path, source })?;
        tracing::info!(page = self.page, "Rewrote the generated table.");
        Ok(())
    }
}

/// The two tests of a connector's [`ConnectorDocs`] (a `static`), in the module that invokes it:
/// `every_operation_has_a_schema_file_and_every_file_is_used`
/// ([`ConnectorDocs::check_schema_files`]) and `docs_table_matches_the_schemas`
/// ([`ConnectorDocs::check_page`]).
#[macro_export]
macro_rules! docs_tests {
    ($docs:expr) => {
        #[test]
        fn every_operation_has_a_schema_file_and_every_file_is_used() {
            ($docs).check_schema_files().unwrap_or_else(|e| panic!("{e}"));
        }

        #[test]
        fn docs_table_matches_the_schemas() {
            ($docs).check_page().unwrap_or_else(|e| panic!("{e}"));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(schema: &Value) -> (String, String) {
        let names = |key: &str| -> Vec<String> {
            schema
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(code)
                .collect()
        };
        (list_cell(&names("required")), list_cell(&names("optional")))
    }

    static SCHEMAS: SchemaSet = SchemaSet::new(&[
        (
            "thing.get",
            r#"{"title": "Reads a thing.", "x-call": "GET /thing", "x-stepwise-input": "parameters_or_document", "required": ["id"]}"#,
        ),
        ("thing.list", r#"{"x-stepwise-input": "parameters", "optional": ["a", "b"]}"#),
    ]);
    const OPERATIONS: &[Operation] = &[
        Operation { object: "thing", action: "get" },
        Operation { object: "thing", action: "list" },
        Operation { object: "thing", action: "gone" },
    ];

    fn docs() -> ConnectorDocs {
        ConnectorDocs {
            manifest_dir: env!("CARGO_MANIFEST_DIR"),
            package: "connector-http",
            page: "docs/none.md",
            schema_dir: "schemas/none",
            schemas: &SCHEMAS,
            operations: OPERATIONS,
            call_column: "Call",
            call_key: "x-call",
            fields,
        }
    }

    #[test]
    fn one_row_per_operation_in_their_order() {
        assert_eq!(
            docs().table(),
            "| object | action | does | Call | input from | required | optional |\n\
             |---|---|---|---|---|---|---|\n\
             | `thing` | `get` | Reads a thing. | `GET /thing` | parameters, or the document | `id` | – |\n\
             | `thing` | `list` |  | `?` | parameters | – | `a`, `b` |\n\
             | `thing` | `gone` |  | `?` | ? | – | – |\n"
        );
        assert_eq!(fields(&json!({})), ("–".to_owned(), "–".to_owned()));
    }

    #[test]
    fn a_page_without_markers_is_an_error() {
        let e = docs().check_page().unwrap_err();
        assert!(matches!(e, DocsError::Markers { .. }), "{e}");
        assert!(e.to_string().contains("cargo test -p connector-http"), "{e}");
    }

    #[test]
    fn a_missing_schema_folder_is_an_error() {
        assert!(matches!(docs().check_schema_files(), Err(DocsError::Io { .. })));
    }
}
