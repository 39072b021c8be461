//! Reading process files from disk and compiling them with the registered connectors.

use std::path::{Path, PathBuf};

use anyhow::Context;
use compiler::Compiled;
use engine::Registry;

/// Every connector this binary knows.
pub fn registry() -> Registry {
    let mut r = Registry::with_builtins();
    r.register(std::sync::Arc::new(knowbe4::KnowBe4Factory));
    r.register(std::sync::Arc::new(boomi_platform::BoomiPlatformFactory));
    r.register(std::sync::Arc::new(connector_rest::HttpFactory));
    r
}

/// Reads and compiles one file. `Err` only when the file cannot be read at all.
pub fn compile_file(path: &Path, registry: &Registry) -> anyhow::Result<Compiled> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    if meta.is_dir() {
        anyhow::bail!("'{}' is a directory", path.display());
    }
    if meta.len() > spec::load_limit() as u64 {
        // Do not even read a huge file into memory.
        let d = compiler::Diagnostic::error(
            None,
            "",
            format!("the file is {} bytes; process files are limited to {} bytes", meta.len(), spec::load_limit()),
        );
        return Ok(Compiled { plan: None, diagnostics: vec![d] });
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    Ok(compiler::compile(&bytes, registry))
}

/// The process files named: files as given; for a directory, the files `stepwise serve` would
/// load from it (`scheduler::service::process_files`: `*.yaml` and `*.yml` directly in it, not
/// hidden, sorted), so that `validate DIR` checks exactly what `serve DIR` runs.
pub fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let found =
                scheduler::service::process_files(p).with_context(|| format!("cannot list '{}'", p.display()))?;
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}
