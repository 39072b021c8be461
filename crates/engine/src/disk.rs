//! The built-in `disk` connector: `get` reads files into documents, `send` writes documents out.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use compiler::{ConnectionSpec, DiskFormat, Operation};
use serde::de::IgnoredAny;

use crate::connector::{
    ApiError, ConnectEnv, Connector, ConnectorError, ConnectorFactory, ErrorKind, FieldError, Input, OperationRef,
    Output,
};
use crate::document::{Document, Properties};

/// A UTF-8 byte order mark, which editors on Windows put at the start of text files.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Makes disk connectors.
#[derive(Debug)]
pub struct DiskFactory;

const OPERATIONS: &[Operation] = &[Operation { object: "", action: "get" }, Operation { object: "", action: "send" }];

impl ConnectorFactory for DiskFactory {
    fn connection_type(&self) -> &'static str {
        "disk"
    }

    fn operations(&self) -> &'static [Operation] {
        OPERATIONS
    }

    /// A static `pattern` that leaves the directory or does not parse, and a static `file_name`
    /// that is not a plain file name, are known before any run.
    fn check_call(&self, call: &compiler::StaticCall<'_>) -> Vec<compiler::CallProblem> {
        let mut problems = Vec::new();
        let mut problem = |field: &str, message: String| {
            problems.push(compiler::CallProblem { field: field.to_owned(), message });
        };
        if let Some(pattern) = call.pattern
            && let Err(message) = check_pattern(pattern)
        {
            problem("pattern", message);
        }
        if let Some(name) = &call.file_name
            && check_name(name).is_err()
        {
            problem(
                "file_name",
                format!("file name '{name}' must be a plain file name inside the connection's directory"),
            );
        }
        problems
    }

    fn connect(
        &self,
        name: &str,
        spec: &ConnectionSpec,
        env: &ConnectEnv,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        let ConnectionSpec::Disk { directory } = spec else {
            return Err(ConnectorError::Config {
                connection: name.to_owned(),
                message: "not a disk connection".to_owned(),
            });
        };
        Ok(Arc::new(Disk {
            directory: env.base_dir.join(directory),
            run_id: env.run_id.clone(),
            counter: AtomicU64::new(0),
        }))
    }
}

struct Disk {
    directory: PathBuf,
    run_id: String,
    counter: AtomicU64,
}

fn io_error(message: String) -> ApiError {
    ApiError { body: None, kind: ErrorKind::Transport, status: None, message, details: Vec::new() }
}

/// A file that was read but does not parse in the connection's `format`.
fn data_error(message: String) -> ApiError {
    ApiError { body: None, kind: ErrorKind::Data, status: None, message, details: Vec::new() }
}

impl Disk {
    fn files(&self, pattern: &str) -> Result<Vec<PathBuf>, ApiError> {
        check_pattern(pattern).map_err(io_error)?;
        if !self.directory.is_dir() {
            return Err(io_error(format!("directory '{}' does not exist", self.directory.display())));
        }
        let full = format!("{}/{pattern}", glob::Pattern::escape(&self.directory.to_string_lossy()));
        let options = glob::MatchOptions { require_literal_leading_dot: true, ..glob::MatchOptions::new() };
        let mut files: Vec<PathBuf> = glob::glob_with(&full, options)
            .map_err(|e| io_error(format!("bad pattern '{pattern}': {e}")))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        Ok(files)
    }

    /// Reads one file into documents, each carrying the property `file_name`.
    fn read(&self, path: &Path, format: DiskFormat, out: &mut Output) -> Result<(), ApiError> {
        let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let cannot_read = |e: std::io::Error| io_error(format!("cannot read '{}': {e}", path.display()));
        // One property map for every document of the file.
        let properties: Properties = [("file_name".to_owned(), file_name.clone())].into_iter().collect();
        let mk = |data: Vec<u8>| {
            let mut d = Document::new(data);
            d.properties = properties.clone();
            d
        };
        match format {
            DiskFormat::Raw => out.ok(0, mk(std::fs::read(path).map_err(cannot_read)?)),
            DiskFormat::Json => {
                let mut bytes = std::fs::read(path).map_err(cannot_read)?;
                if bytes.starts_with(BOM) {
                    bytes.drain(..BOM.len());
                }
                serde_json::from_slice::<IgnoredAny>(&bytes)
                    .map_err(|e| data_error(format!("'{file_name}' is not JSON: {e}")))?;
                out.ok(0, mk(bytes));
            }
            DiskFormat::Jsonl => {
                let mut reader = BufReader::with_capacity(256 * 1024, File::open(path).map_err(cannot_read)?);
                let mut line = Vec::new();
                let mut number = 0usize;
                loop {
                    line.clear();
                    if reader.read_until(b'\n', &mut line).map_err(cannot_read)? == 0 {
                        break;
                    }
                    number += 1;
                    let mut text = line.as_slice();
                    if number == 1 {
                        text = text.strip_prefix(BOM).unwrap_or(text);
                    }
                    let text = text.trim_ascii_end();
                    if text.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    if let Err(e) = serde_json::from_slice::<IgnoredAny>(text) {
                        return Err(data_error(format!("'{file_name}' line {number}: not JSON: {e}")));
                    }
                    out.ok(0, mk(text.to_vec()));
                }
            }
            DiskFormat::Csv => {
                let file = File::open(path).map_err(cannot_read)?;
                let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(BufReader::new(file));
                let headers: Vec<String> = reader
                    .headers()
                    .map_err(|e| data_error(format!("'{file_name}': cannot read the CSV header row: {e}")))?
                    .iter()
                    .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
                    .collect();
                let mut record = csv::StringRecord::new();
                let mut row = 1usize;
                loop {
                    row += 1;
                    let more = reader
                        .read_record(&mut record)
                        .map_err(|e| data_error(format!("'{file_name}' row {row}: {e}")))?;
                    if !more {
                        break;
                    }
                    let mut obj = serde_json::Map::with_capacity(headers.len());
                    for (h, v) in headers.iter().zip(record.iter()) {
                        obj.insert(h.clone(), serde_json::Value::String(v.to_owned()));
                    }
                    out.ok(0, mk(serde_json::to_vec(&obj).unwrap_or_default()));
                }
            }
        }
        Ok(())
    }

    /// The file name a `send` input is written to: its `file_name` parameters, or a fresh name.
    fn name_for(&self, input: &Input) -> String {
        match &input.file_name {
            Some(n) => n.clone(),
            None => format!("{}-{:06}.dat", self.run_id, self.counter.fetch_add(1, Ordering::Relaxed) + 1),
        }
    }

    fn write(&self, input: &Input, name: String) -> Result<Document, ApiError> {
        check_name(&name).map_err(|details| ApiError {
            body: None,
            kind: ErrorKind::Validation,
            status: None,
            message: format!("file name '{name}' must be a plain file name"),
            details,
        })?;
        std::fs::create_dir_all(&self.directory)
            .map_err(|e| io_error(format!("cannot create '{}': {e}", self.directory.display())))?;
        let path = self.directory.join(&name);
        // `create_new`: an existing file is never overwritten.
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                exists(&path)
            } else {
                io_error(format!("cannot create '{}': {e}", path.display()))
            }
        })?;
        if let Err(e) = file.write_all(&input.document.data).and_then(|()| file.sync_all()) {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(io_error(format!("cannot write '{}': {e}", path.display())));
        }
        let mut doc = input.document.clone();
        doc.properties.insert("file_name".to_owned(), name);
        Ok(doc)
    }
}

fn exists(path: &Path) -> ApiError {
    ApiError {
        body: None,
        kind: ErrorKind::Api,
        status: None,
        message: format!("'{}' already exists; it was not overwritten", path.display()),
        details: vec![FieldError { field: "file_name".to_owned(), reason: "already exists".to_owned() }],
    }
}

/// A `get` pattern must stay inside the connection's directory and be a glob pattern.
fn check_pattern(pattern: &str) -> Result<(), String> {
    let escapes = Path::new(pattern).components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes {
        return Err(format!("pattern '{pattern}' must stay inside the connection's directory"));
    }
    glob::Pattern::new(pattern).map(|_| ()).map_err(|e| format!("bad pattern '{pattern}': {e}"))
}

/// A file name must name a file directly inside the connection's directory.
fn check_name(name: &str) -> Result<(), Vec<FieldError>> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.chars().any(char::is_control);
    if bad {
        return Err(vec![FieldError {
            field: "file_name".to_owned(),
            reason: format!("'{name}' is not a plain file name"),
        }]);
    }
    Ok(())
}

#[async_trait::async_trait]
impl Connector for Disk {
    /// `send`: a file name given by the step must be a plain name and must not exist yet, so that
    /// with `error_response: false` nothing at all is written when one document would fail.
    fn validate(&self, op: &OperationRef<'_>, input: &Input) -> Result<(), Vec<FieldError>> {
        if op.action != "send" {
            return Ok(());
        }
        let Some(name) = &input.file_name else { return Ok(()) };
        check_name(name)?;
        if self.directory.join(name).exists() {
            return Err(vec![FieldError {
                field: "file_name".to_owned(),
                reason: format!("'{name}' already exists in '{}'", self.directory.display()),
            }]);
        }
        Ok(())
    }

    async fn execute(&self, op: &OperationRef<'_>, inputs: &[Input], out: &mut Output) -> Result<(), ConnectorError> {
        match op.action {
            "get" => {
                let format = op.format.unwrap_or(DiskFormat::Raw);
                let pattern = op.pattern.unwrap_or("*");
                // Test mode records, as a connector step's connection data, what was asked of the
                // directory and what each file gave.
                let request = out.recording().then(|| {
                    serde_json::json!({
                        "action": "get",
                        "directory": self.directory.display().to_string(),
                        "pattern": pattern,
                        "format": format!("{format:?}").to_lowercase(),
                    })
                });
                let record = |out: &mut Output, i: usize, response: serde_json::Value| {
                    if let Some(request) = &request {
                        out.exchange(i, serde_json::json!({ "request": request, "response": response }));
                    }
                };
                for (i, _) in inputs.iter().enumerate() {
                    let first = out.len();
                    match self.files(pattern) {
                        Ok(files) => {
                            let mut read = Vec::new();
                            let mut documents = 0;
                            for f in files {
                                let before = out.len();
                                let file = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                                match self.read(&f, format, out) {
                                    Ok(()) => {
                                        documents += out.len() - before;
                                        read.push(serde_json::json!({ "file": file, "documents": out.len() - before }));
                                    }
                                    Err(e) => {
                                        // Keep the batch all-or-nothing per file.
                                        out.results.truncate(before);
                                        read.push(serde_json::json!({ "file": file, "error": e.message }));
                                        if out.fail(i, e) {
                                            record(out, i, serde_json::json!({ "files": read }));
                                            return Ok(());
                                        }
                                    }
                                }
                            }
                            for r in out.results[first..].iter_mut() {
                                r.0 = i;
                            }
                            record(out, i, serde_json::json!({ "files": read, "documents": documents }));
                        }
                        Err(e) => {
                            record(out, i, serde_json::json!({ "error": e.message }));
                            if out.fail(i, e) {
                                return Ok(());
                            }
                        }
                    }
                }
                Ok(())
            }
            "send" => {
                for (i, input) in inputs.iter().enumerate() {
                    let name = self.name_for(input);
                    let request = out.recording().then(|| {
                        serde_json::json!({
                            "action": "send",
                            "directory": self.directory.display().to_string(),
                            "file_name": name,
                            "bytes": input.document.data.len(),
                        })
                    });
                    let result = self.write(input, name);
                    if let Some(request) = request {
                        let response = match &result {
                            Ok(_) => serde_json::json!({ "written": true }),
                            Err(e) => serde_json::json!({ "written": false, "error": e.message }),
                        };
                        out.exchange(i, serde_json::json!({ "request": request, "response": response }));
                    }
                    match result {
                        Ok(doc) => out.ok(i, doc),
                        Err(e) => {
                            if out.fail(i, e) {
                                return Ok(());
                            }
                        }
                    }
                }
                Ok(())
            }
            other => Err(ConnectorError::Failed(format!("disk has no action '{other}'"))),
        }
    }
}
