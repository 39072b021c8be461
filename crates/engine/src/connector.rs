//! The one trait every connector implements, and the registry that maps connection types to
//! connectors. The engine owns the `error_response` semantics; connectors only validate
//! documents and make calls.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use compiler::{Catalog, ConnectionSpec, Operation};
use indexmap::IndexMap;
use spec::SecretSpec;

use crate::document::Document;

/// A secret value (an API token). Its `Debug` and `Display` never show the value.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for building an `Authorization` header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Every secret value seen in a run, so that whatever is written (dumps, history, errors) can
/// be scrubbed of them.
/// Its `Debug` says how many secrets it holds, never which.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Replaced whole when a secret is added: a reader takes the list under the lock and scans
    /// outside it, so threads scrubbing at once do not wait on each other.
    values: Arc<Mutex<Arc<Vec<String>>>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.values.lock().map(|v| v.len()).unwrap_or_else(|e| e.into_inner().len());
        write!(f, "Redactor {{ secrets: {n} }}")
    }
}

impl Redactor {
    /// Adds a secret: its text, and the forms it takes when written escaped (inside a JSON
    /// string, or by a `{:?}`), so that a secret with a quote, a backslash or a control
    /// character in it is masked there too.
    pub fn add(&self, value: &str) {
        if value.len() < 4 {
            return;
        }
        let debug = format!("{value:?}");
        let json = serde_json::to_string(value).unwrap_or_default();
        let forms = [value, unquote(&debug), unquote(&json)];
        let mut v = self.values.lock().unwrap_or_else(|e| e.into_inner());
        for form in forms {
            if !form.is_empty() && !v.iter().any(|x| x == form) {
                Arc::make_mut(&mut v).push(form.to_owned());
            }
        }
    }

    fn secrets(&self) -> Arc<Vec<String>> {
        self.values.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `text` with every known secret replaced by `***`, and whatever looks like a credential
    /// too: the value of an `Authorization:` (and similar) header, and a bare `Bearer <token>`.
    /// The terminal, history, errors and test-mode dumps all mask through this one function.
    pub fn redact(&self, text: &str) -> String {
        self.redact_cow(text).into_owned()
    }

    /// As [`Redactor::redact`], borrowing `text` when there is nothing to mask (the common case:
    /// recorded documents are scrubbed by the tens of thousands).
    pub fn redact_cow<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for s in self.secrets().iter() {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), "***"));
            }
        }
        match out {
            Cow::Borrowed(text) => mask_credentials(text),
            Cow::Owned(text) => Cow::Owned(mask_credentials(&text).into_owned()),
        }
    }

    /// Whether [`Redactor::redact`] could change `bytes` (read as text): a known secret occurs
    /// in them, or a word a credential pattern starts with. Scans the bytes as they are, so data
    /// that needs nothing is not even checked for UTF-8.
    pub fn may_change(&self, bytes: &[u8]) -> bool {
        self.secrets().iter().any(|s| memchr::memmem::find(bytes, s.as_bytes()).is_some())
            || may_hold_credentials(bytes)
    }

    pub fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        match std::str::from_utf8(bytes) {
            Ok(s) => self.redact(s).into_bytes(),
            Err(_) => bytes.to_vec(),
        }
    }
}

/// `text` without the quotes around it.
fn unquote(text: &str) -> &str {
    text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text)
}

/// Credential headers (`Authorization: ...`, `"authorization": "..."`, `x-api-key=...`) and bare
/// `Bearer <token>`s, each with its value replaced by `***`.
///
/// A quick pass comes first ([`may_hold_credentials`]): most text holds none of the words the
/// patterns start with, and is then returned as it is, without running the (case-insensitive,
/// Unicode) regexes.
fn mask_credentials(text: &str) -> Cow<'_, str> {
    static HEADER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        constant_regex(
            r#"(?i)(\b(?:proxy-)?authorization|\bx-api-key|\bx-auth-token)(["']?[ \t]*[:=][ \t]*["']?)[^"'\r\n]+"#,
        )
    });
    static BEARER: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| constant_regex(r"(?i)\b(bearer)([ \t]+)[A-Za-z0-9\-._~+/]{8,}=*"));
    if !may_hold_credentials(text.as_bytes()) {
        return Cow::Borrowed(text);
    }
    let mut out = Cow::Borrowed(text);
    for re in [&*HEADER, &*BEARER] {
        if re.is_match(&out) {
            out = Cow::Owned(re.replace_all(&out, "${1}${2}***").into_owned());
        }
    }
    out
}

/// The words a credential pattern of [`mask_credentials`] starts with (`proxy-authorization`
/// holds `authorization`).
const CREDENTIAL_WORDS: [&str; 4] = ["authorization", "x-api-key", "x-auth-token", "bearer"];

/// Whether `bytes` hold one of [`CREDENTIAL_WORDS`] in any ASCII case, or a letter that Unicode
/// case folding maps onto an ASCII one (the Kelvin sign onto `k`, the long s onto `s`), which
/// the regexes would fold too. The search is for the words' first three bytes in every case
/// (20 short patterns: aho-corasick's SIMD searcher, several GB/s), each hit checked whole.
fn may_hold_credentials(bytes: &[u8]) -> bool {
    static STARTS: std::sync::LazyLock<aho_corasick::AhoCorasick> = std::sync::LazyLock::new(|| {
        let mut starts: Vec<Vec<u8>> = Vec::new();
        for word in CREDENTIAL_WORDS {
            let head = &word.as_bytes()[..3];
            for mask in 0..1u8 << 3 {
                let variant: Vec<u8> = head
                    .iter()
                    .enumerate()
                    .map(|(i, b)| if mask >> i & 1 == 1 { b.to_ascii_uppercase() } else { *b })
                    .collect();
                if !starts.contains(&variant) {
                    starts.push(variant);
                }
            }
        }
        // Leftmost-first: the semantics aho-corasick's packed (Teddy) SIMD searcher supports;
        // every hit is checked, and the search goes on from the next byte.
        #[allow(clippy::expect_used)]
        aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(starts)
            .expect("the redactor's words are valid constants")
    });
    if !bytes.is_ascii() && ["\u{212A}", "\u{17F}"].iter().any(|c| memchr::memmem::find(bytes, c.as_bytes()).is_some())
    {
        return true;
    }
    let mut from = 0;
    while let Some(hit) = STARTS.find(aho_corasick::Input::new(bytes).range(from..)) {
        let rest = &bytes[hit.start()..];
        let whole = |word: &str| rest.get(..word.len()).is_some_and(|r| r.eq_ignore_ascii_case(word.as_bytes()));
        if CREDENTIAL_WORDS.iter().any(|w| whole(w)) {
            return true;
        }
        from = hit.start() + 1;
    }
    false
}

fn constant_regex(pattern: &str) -> regex::Regex {
    #[allow(clippy::expect_used)]
    regex::Regex::new(pattern).expect("the redactor's patterns are valid constants")
}

/// Where `--sandbox` sends a connection type: a simulator's base URL and the token it accepts.
/// Its `Debug` leaves the token out.
#[derive(Clone, Default)]
pub struct SandboxTarget {
    pub base_url: String,
    pub token: String,
    /// Other settings the simulator needs the connection to use (for `boomi_platform`:
    /// `account_id` and `email`).
    pub extra: std::collections::BTreeMap<String, String>,
}

impl fmt::Debug for SandboxTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxTarget")
            .field("base_url", &self.base_url)
            .field("token", &"***")
            .field("extra", &self.extra)
            .finish()
    }
}

/// What a connector needs from its surroundings when it connects.
#[derive(Clone, Debug, Default)]
pub struct ConnectEnv {
    /// The directory of the process file; relative paths are relative to it.
    pub base_dir: PathBuf,
    /// Per connection type, where `--sandbox` points it.
    pub sandbox: HashMap<String, SandboxTarget>,
    pub redactor: Redactor,
    /// The run id, for connectors that name things after it.
    pub run_id: String,
    /// Per connection name, what its connector sends requests through instead of the network
    /// (process tests give mocks). Opaque here: the HTTP connectors downcast it.
    pub transports: Transports,
}

/// Values a caller gives connections by name, opaque to the engine.
#[derive(Clone, Default)]
pub struct Transports(pub HashMap<String, Arc<dyn std::any::Any + Send + Sync>>);

impl Transports {
    /// The value for `connection`, if there is one of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self, connection: &str) -> Option<T> {
        self.0.get(connection).and_then(|v| v.downcast_ref::<T>()).cloned()
    }
}

impl fmt::Debug for Transports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl ConnectEnv {
    /// Reads a secret from the environment or a file (relative to the process file). The value
    /// is registered with the redactor.
    pub fn secret(&self, connection: &str, spec: &SecretSpec) -> Result<Secret, ConnectorError> {
        let value = match spec {
            SecretSpec::Env(name) => std::env::var(name).map_err(|_| ConnectorError::Config {
                connection: connection.to_owned(),
                message: format!("the token environment variable '{name}' is not set"),
            })?,
            SecretSpec::File(path) => {
                let p = self.base_dir.join(path);
                std::fs::read_to_string(&p)
                    .map_err(|e| ConnectorError::Config {
                        connection: connection.to_owned(),
                        message: format!("cannot read the token file '{}': {e}", p.display()),
                    })?
                    .trim()
                    .to_owned()
            }
        };
        if value.is_empty() {
            return Err(ConnectorError::Config {
                connection: connection.to_owned(),
                message: "the token is empty".to_owned(),
            });
        }
        self.redactor.add(&value);
        Ok(Secret(value))
    }

    /// The sandbox target for a connection type, with its token registered for redaction.
    pub fn sandbox_for(&self, connection_type: &str) -> Option<SandboxTarget> {
        let t = self.sandbox.get(connection_type)?.clone();
        self.redactor.add(&t.token);
        Some(t)
    }
}

/// The operation a connector step performs.
#[derive(Clone, Debug)]
pub struct OperationRef<'a> {
    pub step: &'a str,
    pub connection: &'a str,
    pub object: Option<&'a str>,
    pub action: &'a str,
    pub error_response: bool,
    /// Disk options (unused by other connectors).
    pub format: Option<compiler::DiskFormat>,
    pub pattern: Option<&'a str>,
    /// The connector's own keys of the step as written (http: `method`, `path`, `records`,
    /// `paginate`, ...); empty for the others.
    pub options: &'a serde_json::Map<String, serde_json::Value>,
}

/// One input document with the step's parameters evaluated for it.
#[derive(Clone, Debug)]
pub struct Input {
    pub document: Document,
    pub parameters: IndexMap<String, String>,
    /// For `file_name` on disk send: the parameters concatenated.
    pub file_name: Option<String>,
    /// The step's `query` parameters evaluated for this document (http).
    pub query: IndexMap<String, String>,
}

/// One invalid field of a document.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Validation,
    Api,
    Transport,
    /// Data the connector read does not parse (a CSV or JSON file): the data is wrong, not the
    /// way to it.
    Data,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Validation => "validation",
            ErrorKind::Api => "api",
            ErrorKind::Transport => "transport",
            ErrorKind::Data => "data",
        }
    }

    /// The `kind` of an error document, one of the process format's `validation`, `api` and
    /// `transport`: data that does not parse is invalid input, `validation`.
    pub fn document_kind(self) -> &'static str {
        match self {
            ErrorKind::Data => "validation",
            other => other.as_str(),
        }
    }
}

/// A failed call for one input document.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub message: String,
    pub details: Vec<FieldError>,
    /// The body of the answer that refused the call, when the connector keeps it (http): the
    /// error document carries it as `body`.
    pub body: Option<Box<serde_json::Value>>,
}

/// Errors that stop a connector step as a whole (not one document).
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("connection '{connection}': {message}")]
    Config { connection: String, message: String },
    #[error("{0}")]
    Failed(String),
}

/// Where a connector puts its results. Results are tied to the index of the input they answer.
#[derive(Debug, Default)]
pub struct Output {
    pub(crate) results: Vec<(usize, Result<Document, ApiError>)>,
    pub(crate) exchanges: Vec<(usize, serde_json::Value)>,
    pub(crate) stop_on_error: bool,
    pub(crate) failed: bool,
    /// Whether exchanges are kept: only test mode writes them.
    pub(crate) recording: bool,
}

impl Output {
    pub fn new(stop_on_error: bool, recording: bool) -> Output {
        Output { stop_on_error, recording, ..Output::default() }
    }

    /// Whether [`Output::exchange`] keeps what it is given (test mode). A connector can skip
    /// building its exchanges when not.
    pub fn recording(&self) -> bool {
        self.recording
    }

    /// A response document for input `input`.
    pub fn ok(&mut self, input: usize, document: Document) {
        self.results.push((input, Ok(document)));
    }

    /// A failed call for input `input`. Returns `true` when the connector must stop making
    /// calls (the step has `error_response: false`, so the run fails here).
    ///
    /// An input's results are all or nothing: the documents already pushed for `input` (the
    /// pages of a list read before a later page failed) are withdrawn, so that a part of a list
    /// never goes downstream as if it were the whole.
    pub fn fail(&mut self, input: usize, error: ApiError) -> bool {
        if self.results.iter().any(|(i, r)| *i == input && r.is_ok()) {
            let before = self.results.len();
            self.results.retain(|(i, r)| *i != input || r.is_err());
            tracing::debug!(
                input,
                withdrawn = before - self.results.len(),
                "An input failed; its documents are withdrawn."
            );
        }
        self.results.push((input, Err(error)));
        self.failed = true;
        self.stop_on_error
    }

    /// True once a failure has been reported and the step must stop.
    pub fn must_stop(&self) -> bool {
        self.stop_on_error && self.failed
    }

    /// Records the request sent and the response got, for test-mode dumps (dropped when not
    /// [`recording`](Output::recording)). Never include credentials; the engine redacts known
    /// secrets again before writing.
    pub fn exchange(&mut self, input: usize, exchange: serde_json::Value) {
        if self.recording {
            self.exchanges.push((input, exchange));
        }
    }

    /// How many results have been pushed.
    pub fn len(&self) -> usize {
        self.results.len()
    }

    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// Drains the documents pushed so far (for streaming starts). Documents drained cannot be
    /// withdrawn by a later [`Output::fail`] of their input: drain only inputs that are done.
    pub fn take_documents(&mut self) -> Vec<(usize, Result<Document, ApiError>)> {
        std::mem::take(&mut self.results)
    }
}

/// A connected connector: one per connection per run.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// Checks one input before any request is made (JSON Schema of the object and action).
    fn validate(&self, op: &OperationRef<'_>, input: &Input) -> Result<(), Vec<FieldError>>;

    /// Performs the operation for every input, pushing results into `out`.
    async fn execute(&self, op: &OperationRef<'_>, inputs: &[Input], out: &mut Output) -> Result<(), ConnectorError>;
}

/// Makes connectors of one connection type.
pub trait ConnectorFactory: Send + Sync {
    fn connection_type(&self) -> &'static str;
    /// The (object, action) pairs, for `stepwise validate`.
    fn operations(&self) -> &'static [Operation];
    /// What `validate` can know of a step of one of [`Self::operations`] before a run (see
    /// [`compiler::Catalog::check_call`]). None by default.
    fn check_call(&self, call: &compiler::StaticCall<'_>) -> Vec<compiler::CallProblem> {
        let _ = call;
        Vec::new()
    }
    fn connect(
        &self,
        name: &str,
        spec: &ConnectionSpec,
        env: &ConnectEnv,
    ) -> Result<Arc<dyn Connector>, ConnectorError>;
}

/// The registered connector factories, by connection type.
#[derive(Clone, Default)]
pub struct Registry {
    factories: Vec<Arc<dyn ConnectorFactory>>,
}

impl Registry {
    /// A registry with the built-in disk connector.
    pub fn with_builtins() -> Registry {
        let mut r = Registry::default();
        r.register(Arc::new(crate::disk::DiskFactory));
        r
    }

    pub fn register(&mut self, factory: Arc<dyn ConnectorFactory>) {
        self.factories.retain(|f| f.connection_type() != factory.connection_type());
        self.factories.push(factory);
    }

    pub fn get(&self, connection_type: &str) -> Option<&Arc<dyn ConnectorFactory>> {
        self.factories.iter().find(|f| f.connection_type() == connection_type)
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.factories.iter().map(|x| x.connection_type())).finish()
    }
}

impl Catalog for Registry {
    fn operations(&self, connection_type: &str) -> Option<&[Operation]> {
        self.get(connection_type).map(|f| f.operations())
    }

    fn check_call(&self, connection_type: &str, call: &compiler::StaticCall<'_>) -> Vec<compiler::CallProblem> {
        self.get(connection_type).map(|f| f.check_call(call)).unwrap_or_default()
    }
}
