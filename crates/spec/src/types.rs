//! The process file as written: step references are plain strings here.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};

/// A whole process file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub connections: IndexMap<String, ConnectionSpec>,
    #[serde(default, deserialize_with = "scalar_map")]
    pub properties: IndexMap<String, String>,
    #[serde(default)]
    pub schedules: Vec<ScheduleSpec>,
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Which documents production runs (`serve`) keep for the console.
    #[serde(default)]
    pub record: RecordMode,
    /// How many days kept documents stay.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    pub start: StartSpec,
    #[serde(default)]
    pub steps: IndexMap<String, StepSpec>,
}

/// Which documents a production run keeps: what entered each step.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RecordMode {
    /// None.
    None,
    /// Those of runs that did not complete cleanly (COMPLETE_WARN, ERROR, ABORTED); the default.
    #[default]
    Errors,
    /// Those of every run.
    All,
}

/// Kept documents stay a week unless the process says otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 7;

fn default_retention_days() -> u32 {
    DEFAULT_RETENTION_DAYS
}

/// Bounds on one run; past any of them the run (time) or the step (documents, bytes) fails.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// The longest a run may take, in seconds.
    #[serde(default = "LimitsSpec::default_timeout_secs")]
    pub timeout_secs: u64,
    /// The most documents one execution of a step may produce.
    #[serde(default = "LimitsSpec::default_max_documents_per_step")]
    pub max_documents_per_step: u64,
    /// The most document data, in bytes, one execution of a step may produce.
    #[serde(default = "LimitsSpec::default_max_bytes")]
    pub max_bytes: u64,
}

impl LimitsSpec {
    /// 4 hours.
    pub const DEFAULT_TIMEOUT_SECS: u64 = 4 * 3600;
    pub const DEFAULT_MAX_DOCUMENTS_PER_STEP: u64 = 5_000_000;
    /// 1 GiB.
    pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

    fn default_timeout_secs() -> u64 {
        Self::DEFAULT_TIMEOUT_SECS
    }

    fn default_max_documents_per_step() -> u64 {
        Self::DEFAULT_MAX_DOCUMENTS_PER_STEP
    }

    fn default_max_bytes() -> u64 {
        Self::DEFAULT_MAX_BYTES
    }
}

impl Default for LimitsSpec {
    fn default() -> Self {
        LimitsSpec {
            timeout_secs: Self::DEFAULT_TIMEOUT_SECS,
            max_documents_per_step: Self::DEFAULT_MAX_DOCUMENTS_PER_STEP,
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}

/// Where a secret comes from. A literal value is refused by the schema and the compiler.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSpec {
    Env(String),
    File(String),
}

/// A connection, tagged by `type`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConnectionSpec {
    Knowbe4 {
        #[serde(default = "default_region")]
        region: String,
        token: SecretSpec,
        #[serde(default)]
        base_url: Option<String>,
    },
    BoomiPlatform {
        account_id: String,
        email: String,
        token: SecretSpec,
        #[serde(default)]
        base_url: Option<String>,
        #[serde(default)]
        rate_per_second: Option<f64>,
    },
    Disk {
        directory: String,
    },
    /// A REST API over HTTP (section 11 of the process format).
    Http(HttpConnectionSpec),
}

/// A `type: http` connection.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConnectionSpec {
    /// https, or plain http to loopback only.
    pub base_url: String,
    #[serde(default)]
    pub auth: HttpAuthSpec,
    /// Headers sent with every request (never credentials: those go in `auth`).
    #[serde(default, deserialize_with = "scalar_map")]
    pub headers: IndexMap<String, String>,
    #[serde(default)]
    pub rate_per_second: Option<f64>,
    #[serde(default)]
    pub rate_per_minute: Option<f64>,
    /// The longest one request may take, in seconds (default 60).
    #[serde(default)]
    pub timeout_secs: Option<f64>,
    /// The longest opening a connection may take, in seconds (default 10).
    #[serde(default)]
    pub connect_timeout_secs: Option<f64>,
}

/// How an `http` connection authenticates.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpAuthSpec {
    #[default]
    None,
    Bearer {
        token: SecretSpec,
    },
    Basic {
        username: String,
        password: SecretSpec,
    },
    Header {
        name: String,
        value: SecretSpec,
    },
    Oauth2ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: SecretSpec,
        #[serde(default)]
        scope: Option<String>,
    },
}

impl HttpAuthSpec {
    /// The secrets this auth reads.
    pub fn secrets(&self) -> Vec<&SecretSpec> {
        match self {
            HttpAuthSpec::None => Vec::new(),
            HttpAuthSpec::Bearer { token } => vec![token],
            HttpAuthSpec::Basic { password, .. } => vec![password],
            HttpAuthSpec::Header { value, .. } => vec![value],
            HttpAuthSpec::Oauth2ClientCredentials { client_secret, .. } => vec![client_secret],
        }
    }
}

fn default_region() -> String {
    "us".to_owned()
}

impl ConnectionSpec {
    /// The `type` key as written.
    pub fn type_name(&self) -> &'static str {
        match self {
            ConnectionSpec::Knowbe4 { .. } => "knowbe4",
            ConnectionSpec::BoomiPlatform { .. } => "boomi_platform",
            ConnectionSpec::Disk { .. } => "disk",
            ConnectionSpec::Http(_) => "http",
        }
    }

    /// Every secret the connection reads (for the redactor).
    pub fn secrets(&self) -> Vec<&SecretSpec> {
        match self {
            ConnectionSpec::Knowbe4 { token, .. } | ConnectionSpec::BoomiPlatform { token, .. } => vec![token],
            ConnectionSpec::Disk { .. } => Vec::new(),
            ConnectionSpec::Http(h) => h.auth.secrets(),
        }
    }
}

/// One entry of `schedules`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    pub cron: String,
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default)]
    pub overlap: Overlap,
    #[serde(default)]
    pub catch_up: CatchUp,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

fn yes() -> bool {
    true
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    #[default]
    Skip,
    Queue,
    Allow,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    None,
    #[default]
    Last,
    All,
}

/// The start step.
#[allow(clippy::large_enum_variant, reason = "configuration, built once per file; boxing would only add noise")]
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StartSpec {
    NoData { next: String },
    Connector(ConnectorSpec),
    Webhook(WebhookSpec),
}

impl StartSpec {
    pub fn next(&self) -> &str {
        match self {
            StartSpec::NoData { next } => next,
            StartSpec::Connector(c) => c.next.as_deref().unwrap_or(""),
            StartSpec::Webhook(w) => &w.next,
        }
    }
}

/// A webhook start (process format section 11): `serve --listen` runs the process once per
/// authenticated `POST /hooks/<process name>`, with the request body as the start document.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// The shared secret: a bearer token, or the key of the HMAC-SHA256 signature.
    pub secret: SecretSpec,
    /// Request headers copied into document properties of the same name (lower case).
    #[serde(default)]
    pub headers: Vec<String>,
    /// `sync`: the answer is the last document that reached a `stop` with `respond: true`.
    #[serde(default)]
    pub respond: Option<Respond>,
    /// How long a `respond: sync` request waits for the run, in seconds.
    #[serde(default = "WebhookSpec::default_respond_timeout_secs")]
    pub respond_timeout_secs: u64,
    /// The largest request body accepted, in bytes.
    #[serde(default = "WebhookSpec::default_max_body_bytes")]
    pub max_body_bytes: u64,
    pub next: String,
}

impl WebhookSpec {
    /// 30 seconds.
    pub const DEFAULT_RESPOND_TIMEOUT_SECS: u64 = 30;
    /// 1 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: u64 = 1 << 20;
    /// The most `max_body_bytes` may say (the body travels in the run store): 16 MiB.
    pub const MAX_BODY_BYTES_LIMIT: u64 = 16 << 20;
    /// The most `respond_timeout_secs` may say: 5 minutes.
    pub const MAX_RESPOND_TIMEOUT_SECS: u64 = 300;

    fn default_respond_timeout_secs() -> u64 {
        Self::DEFAULT_RESPOND_TIMEOUT_SECS
    }

    fn default_max_body_bytes() -> u64 {
        Self::DEFAULT_MAX_BODY_BYTES
    }
}

/// How a webhook is answered.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Respond {
    /// Wait for the run and answer with its response document.
    Sync,
}

/// A connector call: the `connector` step, and a connector start.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSpec {
    pub connection: String,
    #[serde(default)]
    pub object: Option<String>,
    /// Required by every connector but `http`, whose steps give `method` instead.
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub parameters: IndexMap<String, ParamSpec>,
    #[serde(default)]
    pub error_response: bool,
    /// http: the request method.
    #[serde(default)]
    pub method: Option<HttpMethod>,
    /// http: the path after the base URL, with `{name}` placeholders filled from `parameters`.
    #[serde(default)]
    pub path: Option<String>,
    /// http: query parameters.
    #[serde(default)]
    pub query: IndexMap<String, ParamSpec>,
    /// http: how the document becomes the request body (`json` by default for post, put and
    /// patch; `none` sends no body).
    #[serde(default)]
    pub body: Option<HttpBody>,
    /// http: a JSON pointer to the array of records in the answer.
    #[serde(default)]
    pub records: Option<String>,
    /// http: how to read the following pages.
    #[serde(default)]
    pub paginate: Option<PaginateSpec>,
    /// http: a JSON Schema file (relative to the process file) each document must match.
    #[serde(default)]
    pub schema: Option<String>,
    /// http: a POST or PATCH that may be retried after a fault the server may have executed.
    #[serde(default)]
    pub idempotent: bool,
    /// Disk `get`: how file contents become documents.
    #[serde(default)]
    pub format: Option<DiskFormat>,
    /// Disk `get`: which files to read (a glob relative to the directory).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Disk `send`: the file name of each document (parameters concatenated).
    #[serde(default)]
    pub file_name: Option<Vec<ParamSpec>>,
    #[serde(default)]
    pub next: Option<String>,
}

/// The method of an http step.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    /// The method as written.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "get",
            HttpMethod::Post => "post",
            HttpMethod::Put => "put",
            HttpMethod::Patch => "patch",
            HttpMethod::Delete => "delete",
        }
    }
}

/// How an http step's document becomes the request body.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpBody {
    Json,
    Text,
    None,
}

/// How an http step reads the pages after the first.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PaginateSpec {
    /// The `Link` header's `rel="next"` URL.
    LinkHeader {
        #[serde(default)]
        max_pages: Option<u64>,
    },
    /// A URL at a JSON pointer of the answer (Microsoft Graph's `/@odata.nextLink`).
    NextUrl {
        pointer: String,
        #[serde(default)]
        max_pages: Option<u64>,
    },
    /// A token at a JSON pointer of the answer, sent back in a query parameter.
    Cursor {
        pointer: String,
        param: String,
        #[serde(default)]
        max_pages: Option<u64>,
    },
    /// A page number in a query parameter, from `start` (default 1), until a page has fewer
    /// records than `size` (or none when `size` is not given).
    Page {
        param: String,
        #[serde(default)]
        start: Option<u64>,
        #[serde(default)]
        size: Option<u64>,
        #[serde(default)]
        size_param: Option<String>,
        #[serde(default)]
        max_pages: Option<u64>,
    },
    /// A record offset in a query parameter, from 0, until a page has fewer records than `size`.
    Offset {
        param: String,
        size: u64,
        #[serde(default)]
        size_param: Option<String>,
        #[serde(default)]
        max_pages: Option<u64>,
    },
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DiskFormat {
    Json,
    Jsonl,
    Csv,
    Raw,
}

/// A step of `steps`, tagged by `type`.
#[allow(clippy::large_enum_variant, reason = "configuration, built once per file; boxing would only add noise")]
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepSpec {
    Message {
        template: String,
        #[serde(default)]
        parameters: Vec<ParamSpec>,
        #[serde(default)]
        combine: bool,
        next: String,
    },
    Map {
        jq: String,
        next: String,
    },
    SetProperties {
        #[serde(default)]
        document: IndexMap<String, Vec<ParamSpec>>,
        #[serde(default)]
        process: IndexMap<String, Vec<ParamSpec>>,
        next: String,
    },
    Connector(ConnectorSpec),
    Decision {
        left: ParamSpec,
        op: DecisionOp,
        right: ParamSpec,
        #[serde(rename = "true")]
        if_true: String,
        #[serde(rename = "false")]
        if_false: String,
    },
    Branch {
        paths: Vec<String>,
    },
    TryCatch {
        #[serde(rename = "try")]
        try_path: String,
        catch: String,
        #[serde(default)]
        retries: u8,
        #[serde(default)]
        catch_errors: CatchErrors,
    },
    Exception {
        template: String,
        #[serde(default)]
        parameters: Vec<ParamSpec>,
        #[serde(default)]
        stop_process: bool,
    },
    Notify {
        template: String,
        #[serde(default)]
        parameters: Vec<ParamSpec>,
        #[serde(default)]
        level: NotifyLevel,
        next: String,
    },
    Stop {
        #[serde(rename = "continue", default = "yes")]
        keep_going: bool,
        /// The documents reaching this stop are the answer to a `respond: sync` webhook (the
        /// last one wins).
        #[serde(default)]
        respond: bool,
        /// Present only so that the compiler can say "a stop has no next" instead of "unknown key".
        #[serde(default)]
        next: Option<String>,
    },
}

impl StepSpec {
    /// The `type` key as written.
    pub fn type_name(&self) -> &'static str {
        match self {
            StepSpec::Message { .. } => "message",
            StepSpec::Map { .. } => "map",
            StepSpec::SetProperties { .. } => "set_properties",
            StepSpec::Connector(_) => "connector",
            StepSpec::Decision { .. } => "decision",
            StepSpec::Branch { .. } => "branch",
            StepSpec::TryCatch { .. } => "try_catch",
            StepSpec::Exception { .. } => "exception",
            StepSpec::Notify { .. } => "notify",
            StepSpec::Stop { .. } => "stop",
        }
    }
}

/// Every step type, as written in `type:`.
pub const STEP_TYPES: &[&str] = &[
    "message",
    "map",
    "set_properties",
    "connector",
    "decision",
    "branch",
    "try_catch",
    "exception",
    "notify",
    "stop",
];

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Regex,
    Wildcard,
    /// `left` is one of the values of `right`, a JSON array, compared exactly.
    In,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CatchErrors {
    #[default]
    Document,
    All,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NotifyLevel {
    #[default]
    Info,
    Warn,
    Error,
}

/// A parameter: exactly one source key, and an optional `default`. The compiler checks that
/// exactly one source is given.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(default, rename = "static", deserialize_with = "opt_scalar")]
    pub static_value: Option<String>,
    #[serde(default)]
    pub current_data: Option<bool>,
    #[serde(default)]
    pub json: Option<String>,
    #[serde(default)]
    pub jq: Option<String>,
    #[serde(default)]
    pub document_property: Option<String>,
    #[serde(default)]
    pub process_property: Option<String>,
    #[serde(default)]
    pub date: Option<DateSpec>,
    #[serde(default)]
    pub execution: Option<ExecutionValue>,
    #[serde(default, deserialize_with = "opt_scalar")]
    pub default: Option<String>,
    /// How the value is escaped before use; none by default (Boomi's rule).
    #[serde(default)]
    pub escape: Option<Escape>,
}

/// How a parameter's value is escaped.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Escape {
    /// For the inside of a JSON string: `"`, `\` and control characters as JSON escapes.
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateSpec {
    #[serde(default = "default_date_format")]
    pub format: String,
    #[serde(default)]
    pub offset: Option<String>,
}

fn default_date_format() -> String {
    "%Y-%m-%dT%H:%M:%SZ".to_owned()
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionValue {
    RunId,
    ProcessName,
    DocumentCount,
}

/// Accepts a YAML string, number or boolean as text (so `default: 5` means "5").
fn opt_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => scalar_text(v).map(Some).map_err(serde::de::Error::custom),
    }
}

fn scalar_map<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, String>, D::Error> {
    let raw = IndexMap::<String, serde_json::Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| scalar_text(v).map(|s| (k, s)))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

fn scalar_text(v: serde_json::Value) -> Result<String, &'static str> {
    match v {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err("expected text, a number or a boolean"),
    }
}
