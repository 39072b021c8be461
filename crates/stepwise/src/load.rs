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

/// The process files named: files as given, directories searched for `*.yaml` and `*.yml`.
pub fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found).with_context(|| format!("cannot list '{}'", p.display()))?;
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}
