//! `stepwise test`: finds test files, loads them all (any invalid one is a usage error, exit 2,
//! before anything runs), runs their cases (crate `proctest`), prints one line per case and
//! `N passed, N failed` last; `--junit FILE` also writes JUnit XML.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::load::registry;

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Test files (`*.test.yaml`) or directories searched recursively for them.
    #[arg(default_value = "processes")]
    paths: Vec<PathBuf>,
    /// Also write the results as JUnit XML to FILE (for CI systems).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Cases run at once (default: the number of cores). Output stays in file order.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Write a test case from a test-mode run's dumps (`stepwise run FILE --test --dump DIR`).
    #[arg(long, value_name = "DUMP_DIR", conflicts_with_all = ["junit", "jobs"])]
    record: Option<PathBuf>,
    /// With --record: write the test file to FILE instead of printing it.
    #[arg(long, value_name = "FILE", requires = "record")]
    out: Option<PathBuf>,
}

pub fn test(args: TestArgs) -> anyhow::Result<u8> {
    let registry = registry();
    if let Some(dump) = &args.record {
        return record(dump, args.out.as_deref(), &registry);
    }
    let files = match proctest::discover(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return Ok(2);
        }
    };
    let mut loaded = Vec::new();
    let mut invalid = false;
    for f in &files {
        match proctest::load(f, &registry) {
            Ok(l) => loaded.push(l),
            Err(e) => {
                eprintln!("{e}");
                invalid = true;
            }
        }
    }
    if invalid {
        return Ok(2);
    }
    let jobs =
        args.jobs.map(usize::from).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let results = proctest::run_all(&loaded, &registry, jobs)?;
    let mut stdout = std::io::stdout().lock();
    for r in &results {
        let mark = if r.passed() { "ok  " } else { "FAIL" };
        writeln!(stdout, "{mark} {}: {}", r.file.display(), r.case)?;
        for f in &r.failures {
            writeln!(stdout, "  {}", f.render().replace('\n', "\n  "))?;
        }
    }
    if let Some(path) = &args.junit {
        let xml = proctest::junit::render(&results).context("cannot write the JUnit report")?;
        std::fs::write(path, xml).with_context(|| format!("cannot write '{}'", path.display()))?;
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    writeln!(stdout, "{} passed, {failed} failed", results.len() - failed)?;
    Ok(if failed == 0 { 0 } else { 1 })
}

/// `--record DUMP_DIR [--out FILE]`: the test case, printed or written; exit 2 when the dump
/// cannot be recorded.
fn record(dump: &std::path::Path, out: Option<&std::path::Path>, registry: &engine::Registry) -> anyhow::Result<u8> {
    let out_dir = match out.and_then(std::path::Path::parent) {
        Some(p) if !p.as_os_str().is_empty() => {
            std::fs::create_dir_all(p).with_context(|| format!("cannot create '{}'", p.display()))?;
            p.to_owned()
        }
        _ => std::env::current_dir().context("cannot read the current directory")?,
    };
    let yaml = match proctest::record::record(dump, &out_dir, registry) {
        Ok(y) => y,
        Err(e) => {
            eprintln!("error: cannot record: {e}");
            return Ok(2);
        }
    };
    match out {
        Some(file) => {
            std::fs::write(file, yaml).with_context(|| format!("cannot write '{}'", file.display()))?;
            eprintln!("recorded {} into {}", dump.display(), file.display());
        }
        None => std::io::stdout().lock().write_all(yaml.as_bytes())?,
    }
    Ok(0)
}
