//! One function per subcommand.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use tracing::Instrument as _;

use crate::load::{compile_file, expand, registry};

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Process files, or directories: the *.yaml and *.yml files directly in them, not hidden
    /// (what `stepwise serve DIR` loads).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Treat warnings as errors.
    #[arg(long)]
    deny_warnings: bool,
}

pub fn validate(args: ValidateArgs) -> anyhow::Result<u8> {
    let registry = registry();
    let files = expand(&args.files)?;
    if files.is_empty() {
        anyhow::bail!(
            "no process files found in {}",
            args.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let mut invalid = 0;
    let mut stdout = std::io::stdout().lock();
    for file in &files {
        let name = file.display().to_string();
        let compiled = match compile_file(file, &registry) {
            Ok(c) => c,
            // A file that cannot be read is reported like an invalid one; the others are
            // still checked.
            Err(e) => {
                eprintln!("{name}: error: {e:#}");
                invalid += 1;
                continue;
            }
        };
        for d in &compiled.diagnostics {
            eprintln!("{}", d.render(&name));
        }
        let warned = compiled.diagnostics.iter().any(|d| !d.is_error());
        if compiled.has_errors() || (args.deny_warnings && warned) {
            invalid += 1;
        } else {
            writeln!(stdout, "{name}: ok")?;
        }
    }
    Ok(if invalid > 0 { 1 } else { 0 })
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(clap::Args, Debug)]
pub struct GraphArgs {
    file: PathBuf,
    #[arg(long, value_enum, default_value = "mermaid")]
    format: GraphFormat,
}

pub fn graph(args: GraphArgs) -> anyhow::Result<u8> {
    let name = args.file.display().to_string();
    let Some(compiled) = compile_or_report(&args.file, &name) else { return Ok(1) };
    for d in &compiled.diagnostics {
        eprintln!("{}", d.render(&name));
    }
    let Some(plan) = compiled.plan else { return Ok(1) };
    let text = match args.format {
        GraphFormat::Mermaid => compiler::render::mermaid(&plan),
        GraphFormat::Dot => compiler::render::dot(&plan),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    file: PathBuf,
    /// Override a process property (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    set: Vec<(String, String)>,
    /// Print the run summary as JSON.
    #[arg(long)]
    json: bool,
    /// Test mode: record every step's source data to dumps.
    #[arg(long)]
    test: bool,
    /// Where test mode writes (default .stepwise/test-runs/<run-id>/).
    #[arg(long, requires = "test")]
    dump: Option<PathBuf>,
    /// Test mode: record at most the first N documents (and N connector calls) of each step.
    #[arg(long, value_name = "N", requires = "test")]
    dump_max_documents_per_step: Option<u64>,
    /// Test mode: stop recording once N bytes are written (suffixes K, M, G: powers of 1024).
    #[arg(long, value_name = "N", requires = "test", value_parser = crate::testmode::parse_bytes)]
    dump_max_bytes: Option<u64>,
    /// Point every simulated connection at an in-process simulator (no credentials needed).
    #[arg(long)]
    sandbox: bool,
    #[command(flatten)]
    store: crate::scheduling::StoreArgs,
    /// Do not record this run in the history.
    #[arg(long)]
    no_history: bool,
    /// A webhook process: the file whose bytes are the start document (the request body);
    /// `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// A webhook process: a request header, as the hook would copy it into a document property
    /// (repeatable; only the headers the process names are kept).
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_set, requires = "input")]
    headers: Vec<(String, String)>,
}

/// The start document of `stepwise run` for a webhook process: `--input` and `--header`, as the
/// hook would build it; `Err` is a usage message.
fn start_document(plan: &compiler::Plan, args: &RunArgs) -> Result<Option<engine::Document>, String> {
    let (Some(webhook), Some(input)) = (&plan.webhook, &args.input) else {
        return match (&plan.webhook, &args.input) {
            (Some(_), None) => {
                Err("the process starts with a webhook: give its request body with --input FILE (or - for stdin)"
                    .to_owned())
            }
            (None, Some(_)) => Err("--input is only for a process with a webhook start".to_owned()),
            _ => Ok(None),
        };
    };
    let cap = webhook.max_body_bytes;
    let mut data = Vec::new();
    let read = if input.as_os_str() == "-" {
        std::io::Read::read_to_end(&mut std::io::Read::take(std::io::stdin().lock(), cap + 1), &mut data)
    } else {
        std::fs::File::open(input)
            .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, cap + 1), &mut data))
    };
    read.map_err(|e| format!("--input '{}': {e}", input.display()))?;
    if data.len() as u64 > cap {
        return Err(format!("--input '{}' is larger than the webhook's max_body_bytes ({cap})", input.display()));
    }
    let mut doc = engine::Document::new(data);
    for name in &webhook.headers {
        if let Some((_, value)) = args.headers.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            doc.properties.insert(name.clone(), value.clone());
        }
    }
    Ok(Some(doc))
}

pub(crate) fn parse_set(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("'{s}' is not NAME=VALUE")),
    }
}

/// `stepwise run`, on a thread whose stack holds the deepest plan the compiler accepts.
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    std::thread::Builder::new()
        .name("run".to_owned())
        .stack_size(engine::RUN_STACK_BYTES)
        .spawn(move || run_here(args))
        .context("cannot start the run's thread")?
        .join()
        .map_err(|_| anyhow::anyhow!("the run's thread panicked"))?
}

fn run_here(args: RunArgs) -> anyhow::Result<u8> {
    let registry = registry();
    let name = args.file.display().to_string();
    let compiled = compile_file(&args.file, &registry)?;
    for d in &compiled.diagnostics {
        eprintln!("{}", d.render(&name));
    }
    let Some(plan) = compiled.plan else {
        eprintln!("{name}: the process is invalid; nothing was run");
        return Ok(2);
    };
    if let Some(message) = plan.undeclared_overrides(&args.set) {
        eprintln!("{name}: error: {message}; nothing was run");
        return Ok(2);
    }
    let start_document = match start_document(&plan, &args) {
        Ok(doc) => doc,
        Err(message) => {
            eprintln!("{name}: error: {message}; nothing was run");
            return Ok(2);
        }
    };
    // The run itself goes on this thread (`block_on`); the worker thread is free to notice a
    // signal while a step keeps this one busy, and to cancel the run.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let run_id = uuid::Uuid::now_v7().to_string();
    let base_dir = args
        .file
        .parent()
        .map(|p| if p.as_os_str().is_empty() { PathBuf::from(".") } else { p.to_path_buf() })
        .unwrap_or_else(|| PathBuf::from("."));
    let redactor = engine::Redactor::default();
    let test_run = if args.test {
        let limits = engine::dump::DumpLimits {
            max_documents_per_step: args.dump_max_documents_per_step,
            max_bytes: args.dump_max_bytes,
        };
        let inputs =
            crate::testmode::RunInputs { limits, process_file: args.file.clone(), overrides: args.set.clone() };
        Some(crate::testmode::TestRun::start(&plan, &run_id, args.dump.clone(), redactor.clone(), inputs)?)
    } else {
        None
    };
    // Checked before the run, so that a bad --store is a usage error, not a warning.
    args.store.url()?;
    let trigger = if args.test { store::Trigger::Test } else { store::Trigger::Manual };
    let report = runtime.block_on(async {
        // SIGINT or SIGTERM stops the run: it ends ABORTED, and is still reported and recorded.
        let signal = crate::scheduling::shutdown_signal()?;
        let cancel = engine::Cancel::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            let signal = signal.await;
            on_signal.cancel(format!("interrupted by {signal}"));
        });
        let sandbox = if args.sandbox { Some(crate::sandbox::Sandbox::start().await?) } else { None };
        let mut history =
            if args.no_history { None } else { crate::scheduling::RunRecorder::open(&args.store).await? };
        if let Some(h) = &mut history {
            h.start(&run_id, &plan.name, trigger, &args.set, &cancel).await;
        }
        let env = engine::ConnectEnv {
            base_dir,
            sandbox: sandbox.as_ref().map(|s| s.targets()).unwrap_or_default(),
            redactor: redactor.clone(),
            ..engine::ConnectEnv::default()
        };
        let recorder = test_run.as_ref().map(|t| t.recorder());
        let options = engine::RunOptions {
            run_id: run_id.clone(),
            overrides: args.set.clone(),
            env,
            recorder,
            abort: Some(cancel),
            start_document,
            progress: None,
        };
        let capture = crate::run_log::Capture::start(&run_id);
        let report = engine::run(&plan, &registry, options).instrument(capture.span()).await;
        if let Some(s) = sandbox {
            s.shutdown().await;
        }
        match &mut history {
            Some(h) => {
                h.save_log(capture, &redactor).await;
                h.end(&report).await;
            }
            None => drop(capture),
        }
        anyhow::Ok(report)
    })?;
    let mut stdout = std::io::stdout().lock();
    let test_summary = test_run.map(|t| t.finish(&report)).transpose()?;
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        if let (Some(summary), Some(object)) = (&test_summary, value.as_object_mut()) {
            object.insert("test_mode".to_owned(), crate::testmode::json(summary));
        }
        writeln!(stdout, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        write!(stdout, "{}", report.render())?;
    }
    if let Some(summary) = &test_summary {
        crate::testmode::print(summary, args.json, &mut stdout)?;
    }
    Ok(match report.status {
        engine::RunStatus::Complete | engine::RunStatus::CompleteWarn => 0,
        _ => 1,
    })
}

/// Compiles `file`, or prints why it cannot be read (`FILE: error: ...`) and gives `None`: for
/// the commands whose only failure exit is 1 (invalid).
pub fn compile_or_report(file: &std::path::Path, name: &str) -> Option<compiler::Compiled> {
    match compile_file(file, &registry()) {
        Ok(compiled) => Some(compiled),
        Err(e) => {
            eprintln!("{name}: error: {e:#}");
            None
        }
    }
}
