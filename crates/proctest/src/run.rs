//! Running one case: the real engine on the compiled plan, with the case's properties, its
//! start documents, a mock transport under each network connection, and the disk connector
//! rooted in a temporary directory of the case.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use compiler::{ConnectionSpec, Plan, StepKind};
use engine::{
    ConnectEnv, Connector, ConnectorError, ConnectorFactory, Document, FieldError, Input, OperationRef, Output,
    Recorder, Registry, RunOptions, RunReport, SandboxTarget, Transports,
};
use serde_json::Value;

use crate::format::Case;
use crate::mock::MockTransport;

/// What a case's run left to assert on.
pub struct Outcome {
    pub report: RunReport,
    /// Per step, the documents that entered it, in order.
    pub entered: HashMap<String, Vec<Document>>,
    pub mocks: BTreeMap<String, Arc<MockTransport>>,
    /// Where the process's directory was for this run (disk connections write under it).
    pub dir: tempfile::TempDir,
}

/// Keeps the documents that entered each step.
#[derive(Default)]
struct Entered(Mutex<HashMap<String, Vec<Document>>>);

impl Recorder for Entered {
    fn source(&self, step: &str, document: &Document) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).entry(step.to_owned()).or_default().push(document.clone());
    }
    fn exchange(&self, _step: &str, _exchange: &Value) {}
}

/// Never reached: every network connection of a case sends through its mock.
const NOWHERE: &str = "http://127.0.0.1:9";

/// Runs `case` of `plan`. `Err` when the case cannot run (a network connection has no mock,
/// the temporary directory cannot be made).
pub async fn run_case(plan: &Plan, registry: &Registry, case: &Case) -> Result<Outcome, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    put_files(dir.path(), case)?;
    // A token of its own per case: connectors pace requests per API key, as in production, so
    // each case gets a rate budget of its own and cases do not wait for each other.
    let token = format!("stepwise-test-{}", CASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let mut mocks = BTreeMap::new();
    let mut transports = HashMap::new();
    let mut sandbox = HashMap::new();
    for (name, spec) in &plan.connections {
        if let ConnectionSpec::Disk { .. } = spec {
            continue;
        }
        let Some(mock) = case.mocks.get(name) else {
            return Err(format!(
                "connection '{name}' ({}) has no mock in this case: tests never reach a network",
                spec.type_name()
            ));
        };
        let transport = Arc::new(MockTransport::new(name, mock.clone()));
        let dynamic: Arc<dyn connector_http::Transport> = transport.clone();
        transports.insert(name.clone(), Arc::new(dynamic) as Arc<dyn std::any::Any + Send + Sync>);
        mocks.insert(name.clone(), transport);
        sandbox.insert(spec.type_name().to_owned(), sandbox_target(spec, &token));
    }
    let start = plan.graph[plan.start].clone();
    let mut start_document = None;
    let start_docs = match (&start.kind, &case.start) {
        (StepKind::StartConnector { call, .. }, Some(docs)) => Some((call.connection.clone(), documents(docs)?)),
        (StepKind::StartWebhook { .. }, Some(docs)) => {
            let [doc] = <[Document; 1]>::try_from(documents(docs)?)
                .map_err(|_| "a webhook start receives one request: 'start' holds its one body".to_owned())?;
            start_document = Some(doc);
            None
        }
        (_, Some(_)) => return Err(format!("the start step '{}' reads nothing; 'start' cannot replace it", start.id)),
        (_, None) => None,
    };
    let registry = wrap(registry, plan, start.id.clone(), start_docs);
    let entered = Arc::new(Entered::default());
    let options = RunOptions {
        run_id: format!("test-{}", std::process::id()),
        overrides: case.properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        env: ConnectEnv {
            base_dir: dir.path().to_owned(),
            sandbox,
            transports: Transports(transports),
            ..ConnectEnv::default()
        },
        recorder: Some(entered.clone()),
        abort: None,
        start_document,
        progress: None,
    };
    let report = engine::run(plan, &registry, options).await;
    let entered = std::mem::take(&mut *entered.0.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Outcome { report, entered, mocks, dir })
}

/// The case's `files`, written under `dir` (the process's directory for the run).
fn put_files(dir: &Path, case: &Case) -> Result<(), String> {
    for (name, content) in &case.files {
        let relative = Path::new(name);
        if relative.is_absolute() || relative.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err(format!("the file '{name}' must be a path inside the process's directory"));
        }
        let path = dir.join(relative);
        let written =
            path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::write(&path, content));
        written.map_err(|e| format!("cannot write the file '{name}': {e}"))?;
    }
    Ok(())
}

/// Numbers the cases of this process (for their tokens).
static CASES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A target with a token that is no secret, so that the connector needs no credentials.
fn sandbox_target(spec: &ConnectionSpec, token: &str) -> SandboxTarget {
    let mut extra = BTreeMap::new();
    if let ConnectionSpec::BoomiPlatform { account_id, email, .. } = spec {
        extra.insert("account_id".to_owned(), account_id.clone());
        extra.insert("email".to_owned(), email.clone());
    }
    SandboxTarget { base_url: NOWHERE.to_owned(), token: token.to_owned(), extra }
}

/// A case's start documents: a string is the text, anything else its JSON.
pub fn documents(values: &[Value]) -> Result<Vec<Document>, String> {
    values
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(Document::new(s.as_bytes().to_vec())),
            other => serde_json::to_vec(other).map(Document::new).map_err(|e| e.to_string()),
        })
        .collect()
}

/// The registry with each factory wrapped, so that the start step's connection answers the
/// start step with the case's documents.
fn wrap(registry: &Registry, plan: &Plan, start_step: String, start: Option<(String, Vec<Document>)>) -> Registry {
    let Some((connection, docs)) = start else { return registry.clone() };
    let mut out = registry.clone();
    let kind = plan.connections.get(&connection).map(ConnectionSpec::type_name);
    if let Some(inner) = kind.and_then(|k| registry.get(k)).cloned() {
        out.register(Arc::new(StartFactory { inner, connection, start_step, docs }));
    }
    out
}

struct StartFactory {
    inner: Arc<dyn ConnectorFactory>,
    connection: String,
    start_step: String,
    docs: Vec<Document>,
}

impl ConnectorFactory for StartFactory {
    fn connection_type(&self) -> &'static str {
        self.inner.connection_type()
    }
    fn operations(&self) -> &'static [compiler::Operation] {
        self.inner.operations()
    }
    fn connect(
        &self,
        name: &str,
        spec: &ConnectionSpec,
        env: &ConnectEnv,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        let inner = self.inner.connect(name, spec, env)?;
        if name != self.connection {
            return Ok(inner);
        }
        Ok(Arc::new(StartConnector { inner, start_step: self.start_step.clone(), docs: self.docs.clone() }))
    }
}

/// The real connector, except that the start step gets the case's documents.
struct StartConnector {
    inner: Arc<dyn Connector>,
    start_step: String,
    docs: Vec<Document>,
}

#[async_trait::async_trait]
impl Connector for StartConnector {
    fn validate(&self, op: &OperationRef<'_>, input: &Input) -> Result<(), Vec<FieldError>> {
        if op.step == self.start_step { Ok(()) } else { self.inner.validate(op, input) }
    }

    async fn execute(&self, op: &OperationRef<'_>, inputs: &[Input], out: &mut Output) -> Result<(), ConnectorError> {
        if op.step != self.start_step {
            return self.inner.execute(op, inputs, out).await;
        }
        for d in &self.docs {
            out.ok(0, d.clone());
        }
        Ok(())
    }
}

/// The files under `dir` matching `pattern` (relative to `dir`).
pub fn files_matching(dir: &Path, pattern: &str) -> Result<Vec<std::path::PathBuf>, String> {
    let full = dir.join(pattern);
    let full = full.to_str().ok_or_else(|| format!("the pattern '{pattern}' is not UTF-8"))?;
    let paths = glob::glob(full).map_err(|e| format!("the pattern '{pattern}': {e}"))?;
    Ok(paths.filter_map(Result::ok).filter(|p| p.is_file()).collect())
}
