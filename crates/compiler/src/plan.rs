//! The compiled plan: steps with resolved references, in a petgraph DAG.

use indexmap::IndexMap;
use petgraph::graph::{DiGraph, NodeIndex};
pub use spec::{
    CatchErrors, ConnectionSpec, DecisionOp, DiskFormat, Escape, ExecutionValue, HttpAuthSpec, HttpBody,
    HttpConnectionSpec, HttpMethod, LimitsSpec, NotifyLevel, PaginateSpec, Respond, ScheduleSpec, SecretSpec,
    WebhookSpec,
};

use crate::template::Template;

/// A process ready to run. Every step reference is a `NodeIndex` into `graph`.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub description: Option<String>,
    pub properties: IndexMap<String, String>,
    pub connections: IndexMap<String, ConnectionSpec>,
    pub schedules: Vec<ScheduleSpec>,
    /// Bounds on one run (time, documents and bytes per step).
    pub limits: LimitsSpec,
    /// Which documents production runs keep, and for how many days.
    pub record: spec::RecordMode,
    pub retention_days: u32,
    pub graph: DiGraph<Step, Edge>,
    pub start: NodeIndex,
    /// For a webhook start: its secret, headers, answer and body cap.
    pub webhook: Option<WebhookSpec>,
}

impl Plan {
    /// Why `--set` names a property the process does not declare (a typo would silently run
    /// with the default), listing the declared ones; `None` when every name is declared.
    pub fn undeclared_overrides(&self, set: &[(String, String)]) -> Option<String> {
        let unknown: Vec<&str> =
            set.iter().map(|(k, _)| k.as_str()).filter(|k| !self.properties.contains_key(*k)).collect();
        if unknown.is_empty() {
            return None;
        }
        let names = unknown.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
        let declared = if self.properties.is_empty() {
            "the process declares no properties".to_owned()
        } else {
            let list = self.properties.keys().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
            format!("its properties are {list}")
        };
        let noun = if unknown.len() == 1 { "property" } else { "properties" };
        Some(format!("--set: the process declares no {noun} {names} ({declared})"))
    }
}

impl Plan {
    pub fn step(&self, idx: NodeIndex) -> &Step {
        &self.graph[idx]
    }

    /// Step ids in a stable order: start first, then as written in the file.
    pub fn step_ids(&self) -> impl Iterator<Item = &str> {
        self.graph.node_indices().map(|i| self.graph[i].id.as_str())
    }
}

/// One step.
#[derive(Clone, Debug)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
}

/// How an edge leaves its step; the label drawn by `stepwise graph`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edge {
    Next,
    True,
    False,
    Path(usize),
    Try,
    Catch,
}

impl Edge {
    pub fn label(&self) -> String {
        match self {
            Edge::Next => String::new(),
            Edge::True => "true".to_owned(),
            Edge::False => "false".to_owned(),
            Edge::Path(i) => format!("{}", i + 1),
            Edge::Try => "try".to_owned(),
            Edge::Catch => "catch".to_owned(),
        }
    }
}

#[derive(Clone, Debug)]
pub enum StepKind {
    StartNoData {
        next: NodeIndex,
    },
    StartConnector {
        call: ConnectorCall,
        next: NodeIndex,
    },
    /// Emits the start document the run was given (a webhook's request), or one empty document.
    StartWebhook {
        next: NodeIndex,
    },
    Message {
        template: Template,
        params: Vec<Param>,
        combine: bool,
        next: NodeIndex,
    },
    Map {
        jq: String,
        next: NodeIndex,
    },
    SetProperties {
        document: Vec<(String, Vec<Param>)>,
        process: Vec<(String, Vec<Param>)>,
        next: NodeIndex,
    },
    Connector {
        call: ConnectorCall,
        next: Option<NodeIndex>,
    },
    Decision {
        left: Param,
        op: DecisionOp,
        right: Param,
        if_true: NodeIndex,
        if_false: NodeIndex,
    },
    Branch {
        paths: Vec<NodeIndex>,
    },
    TryCatch {
        try_path: NodeIndex,
        catch: NodeIndex,
        retries: u8,
        catch_errors: CatchErrors,
    },
    Exception {
        template: Template,
        params: Vec<Param>,
        stop_process: bool,
    },
    Notify {
        template: Template,
        params: Vec<Param>,
        level: NotifyLevel,
        next: NodeIndex,
    },
    Stop {
        keep_going: bool,
        respond: bool,
    },
}

impl StepKind {
    /// The step type as written in the file (`start` for the start step).
    pub fn type_name(&self) -> &'static str {
        match self {
            StepKind::StartNoData { .. } | StepKind::StartConnector { .. } | StepKind::StartWebhook { .. } => "start",
            StepKind::Message { .. } => "message",
            StepKind::Map { .. } => "map",
            StepKind::SetProperties { .. } => "set_properties",
            StepKind::Connector { .. } => "connector",
            StepKind::Decision { .. } => "decision",
            StepKind::Branch { .. } => "branch",
            StepKind::TryCatch { .. } => "try_catch",
            StepKind::Exception { .. } => "exception",
            StepKind::Notify { .. } => "notify",
            StepKind::Stop { .. } => "stop",
        }
    }
}

/// A resolved connector call.
#[derive(Clone, Debug)]
pub struct ConnectorCall {
    pub connection: String,
    pub connection_type: &'static str,
    pub object: Option<String>,
    pub action: String,
    pub parameters: Vec<(String, Param)>,
    pub error_response: bool,
    pub format: Option<DiskFormat>,
    pub pattern: Option<String>,
    pub file_name: Vec<Param>,
    /// Query parameters of a request (http).
    pub query: Vec<(String, Param)>,
    /// The connector's own keys as written (http: `method`, `path`, `body`, `records`,
    /// `paginate`, `schema`, `idempotent`), for the connector to read; empty for the others.
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// A parameter with its source resolved and checked.
#[derive(Clone, Debug)]
pub struct Param {
    pub source: ParamSource,
    pub default: Option<String>,
    /// How the value (found or default) is escaped.
    pub escape: Option<Escape>,
    /// How the parameter is named in messages: `parameter 2 (json /user/email)`.
    pub label: String,
}

#[derive(Clone, Debug)]
pub enum ParamSource {
    Static(String),
    CurrentData,
    Json(String),
    Jq(String),
    DocumentProperty(String),
    ProcessProperty(String),
    Date { format: String, offset_secs: i64 },
    Execution(ExecutionValue),
}
