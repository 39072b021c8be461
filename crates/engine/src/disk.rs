//! The built-in `disk` connector: `get` reads files into documents, `send` writes documents out.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use compiler::{ConnectionSpec, DiskFormat, Operation};

use crate::connector::{
    ApiError, ConnectEnv, Connector, ConnectorError, ConnectorFactory, ErrorKind, FieldError, Input, OperationRef,
    Output,
};
use crate::document::Document;

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
    ApiError { kind: ErrorKind::Transport, status: None, message, details: Vec::new() }
}

impl Disk {
    fn files(&self, pattern: &str) -> Result<Vec<PathBuf>, ApiError> {
        if pattern.contains("..") || Path::new(pattern).is_absolute() {
            return Err(io_error(format!("pattern '{pattern}' must stay inside the connection's directory")));
        }
        let full = self.directory.join(pattern);
        let full = full.to_string_lossy();
        let mut files: Vec<PathBuf> = glob::glob(&full)
            .map_err(|e| io_error(format!("bad pattern '{pattern}': {e}")))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        Ok(files)
    }

    fn read(&self, path: &Path, format: DiskFormat, out: &mut Output) -> Result<(), ApiError> {
        let bytes = std::fs::read(path).map_err(|e| io_error(format!("cannot read '{}': {e}", path.display())))?;
        let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let mk = |data: Vec<u8>| Document::new(data).with_property("file_name", file_name.clone());
        match format {
            DiskFormat::Raw => out.ok(0, mk(bytes)),
            DiskFormat::Json => {
                serde_json::from_slice::<serde_json::Value>(&bytes)
                    .map_err(|e| io_error(format!("'{file_name}' is not JSON: {e}")))?;
                out.ok(0, mk(bytes));
            }
            DiskFormat::Jsonl => {
                for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(line) {
                        return Err(io_error(format!("'{file_name}' line {}: not JSON: {e}", i + 1)));
                    }
                    out.ok(0, mk(line.to_vec()));
                }
            }
            DiskFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes.as_slice());
                let headers = reader
                    .headers()
                    .map_err(|e| io_error(format!("'{file_name}': cannot read the CSV header row: {e}")))?
                    .clone();
                for (i, record) in reader.records().enumerate() {
                    let record = record.map_err(|e| io_error(format!("'{file_name}' row {}: {e}", i + 2)))?;
                    let mut obj = serde_json::Map::new();
                    for (h, v) in headers.iter().zip(record.iter()) {
                        obj.insert(h.trim().to_owned(), serde_json::Value::String(v.to_owned()));
                    }
                    let data = serde_json::to_vec(&obj).unwrap_or_default();
                    out.ok(0, mk(data));
                }
            }
        }
        Ok(())
    }

    fn write(&self, input: &Input) -> Result<Document, ApiError> {
        let name = match &input.file_name {
            Some(n) => n.clone(),
            None => format!("{}-{:06}.dat", self.run_id, self.counter.fetch_add(1, Ordering::Relaxed) + 1),
        };
        if name.is_empty() || name.contains('/') || name.contains('\\') || name == "." || name == ".." {
            return Err(ApiError {
                kind: ErrorKind::Validation,
                status: None,
                message: format!("file name '{name}' must be a plain file name"),
                details: vec![FieldError { field: "file_name".to_owned(), reason: "invalid".to_owned() }],
            });
        }
        std::fs::create_dir_all(&self.directory)
            .map_err(|e| io_error(format!("cannot create '{}': {e}", self.directory.display())))?;
        let path = self.directory.join(&name);
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                io_error(format!("'{}' already exists; it was not overwritten", path.display()))
            } else {
                io_error(format!("cannot create '{}': {e}", path.display()))
            }
        })?;
        file.write_all(&input.document.data)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(format!("cannot write '{}': {e}", path.display())))?;
        let mut doc = input.document.clone();
        doc.properties.insert("file_name".to_owned(), name);
        Ok(doc)
    }
}

#[async_trait::async_trait]
impl Connector for Disk {
    fn validate(&self, _op: &OperationRef<'_>, _input: &Input) -> Result<(), Vec<FieldError>> {
        Ok(())
    }

    async fn execute(&self, op: &OperationRef<'_>, inputs: &[Input], out: &mut Output) -> Result<(), ConnectorError> {
        match op.action {
            "get" => {
                let format = op.format.unwrap_or(DiskFormat::Raw);
                let pattern = op.pattern.unwrap_or("*");
                for (i, _) in inputs.iter().enumerate() {
                    let first = out.len();
                    match self.files(pattern) {
                        Ok(files) => {
                            for f in files {
                                let before = out.len();
                                if let Err(e) = self.read(&f, format, out) {
                                    // Keep the batch all-or-nothing per file.
                                    out.results.truncate(before);
                                    if out.fail(i, e) {
                                        return Ok(());
                                    }
                                }
                            }
                            for r in out.results[first..].iter_mut() {
                                r.0 = i;
                            }
                        }
                        Err(e) => {
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
                    match self.write(input) {
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
