//! Semantic checks on a typed spec, and building the plan graph.

use std::collections::{HashMap, HashSet};

use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;
use spec::{ConnectorSpec, ParamSpec, ProcessSpec, StartSpec, StepSpec};

use crate::diagnostic::Diagnostic;
use crate::plan::{ConnectorCall, Edge, Param, ParamSource, Plan, Step, StepKind};
use crate::schema::did_you_mean;
use crate::template::Template;
use crate::{Catalog, jq};

struct Ctx<'a> {
    ids: HashMap<&'a str, NodeIndex>,
    names: Vec<&'a str>,
    spec: &'a ProcessSpec,
    /// The file as loaded, for what can still be read of steps that did not parse.
    raw: Raw<'a>,
    catalog: &'a dyn Catalog,
    diags: &'a mut Vec<Diagnostic>,
    edges: Vec<(NodeIndex, NodeIndex, Edge)>,
    used_connections: Vec<String>,
    /// Steps (and `connection:NAME`s) that did not parse; see `build`.
    broken: &'a [String],
    /// Set when an edge of a step could not be read, so that reachability cannot be known.
    reach_unknown: bool,
    /// jq programs to check together at the end: (step, pointer, message prefix, code).
    jq_programs: Vec<(String, String, String, String)>,
}

/// The file as loaded, for what the typed spec cannot hold.
#[derive(Clone, Copy)]
pub(crate) struct Raw<'a> {
    pub value: &'a Value,
    /// The repeated definitions of step ids (the first one is the one checked), by step id.
    pub repeated: &'a [(String, &'a Value)],
}

/// The edges that can be read from a step as written.
struct RawEdges<'a> {
    /// (key as named in messages, target, edge).
    edges: Vec<(String, &'a str, Edge)>,
    /// Some edge cannot be read, so what the step leads to is not known.
    unknown: bool,
    ty: Option<&'a str>,
    /// `ty` is a known type (for the start step, a start type).
    known: bool,
}

/// Reads the edges of a step from the file as written: the keys its type has (any edge key, for
/// an unknown type), each when it is a string (a list of strings for `paths`).
fn raw_edges<'a>(id: &str, step: &'a serde_json::Map<String, Value>) -> RawEdges<'a> {
    let ty = step.get("type").and_then(Value::as_str);
    let known = if id == "start" {
        matches!(ty, Some("no_data" | "connector" | "webhook"))
    } else {
        ty.is_some_and(|t| spec::STEP_TYPES.contains(&t))
    };
    // The edge keys of the type and whether they are required; any of them for an unknown type.
    let (keys, required): (&[&str], bool) = match ty {
        _ if !known => (&["next", "true", "false", "paths", "try", "catch"], false),
        _ if id == "start" => (&["next"], true),
        Some("message" | "map" | "set_properties" | "notify") => (&["next"], true),
        Some("connector") => (&["next"], false),
        Some("decision") => (&["true", "false"], true),
        Some("branch") => (&["paths"], true),
        Some("try_catch") => (&["try", "catch"], true),
        _ => (&[], false),
    };
    let mut out = RawEdges { edges: Vec::new(), unknown: false, ty, known };
    for &key in keys {
        match (key, step.get(key)) {
            (_, None) => out.unknown |= required,
            ("paths", Some(Value::Array(paths))) => {
                for (i, p) in paths.iter().enumerate() {
                    match p.as_str() {
                        Some(p) => out.edges.push((format!("paths/{i}"), p, Edge::Path(i))),
                        None => out.unknown = true,
                    }
                }
            }
            (_, Some(Value::String(to))) if key != "paths" => {
                let edge = match key {
                    "true" => Edge::True,
                    "false" => Edge::False,
                    "try" => Edge::Try,
                    "catch" => Edge::Catch,
                    _ => Edge::Next,
                };
                out.edges.push((key.to_owned(), to, edge));
            }
            _ => out.unknown = true,
        }
    }
    if !known && out.edges.is_empty() {
        // Nothing says where this step was meant to lead.
        out.unknown = true;
    }
    out
}

fn step_pointer(id: &str) -> String {
    if id == "start" { "/start".to_owned() } else { format!("/steps/{}", spec::escape_pointer(id)) }
}

impl Ctx<'_> {
    fn err(&mut self, step: &str, pointer: String, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(Some(step), pointer, message));
    }

    /// Resolves a reference from `from`'s `key` to a step.
    fn target(&mut self, from: &str, key: &str, to: &str, edge: Edge) -> NodeIndex {
        let pointer = format!("{}/{key}", step_pointer(from));
        match self.ids.get(to) {
            Some(&idx) if to != "start" => {
                self.edges.push((self.ids[from], idx, edge));
                idx
            }
            Some(_) => {
                self.err(from, pointer, format!("'{key}' cannot lead back to 'start'"));
                NodeIndex::end()
            }
            None => {
                let msg = if to.is_empty() {
                    format!("'{key}' is empty; name the step that follows")
                } else {
                    match did_you_mean(to, self.names.iter().copied()) {
                        Some(s) => format!("'{key}' names unknown step '{to}' (did you mean '{s}'?)"),
                        None => format!("'{key}' names unknown step '{to}'"),
                    }
                };
                self.err(from, pointer, msg);
                NodeIndex::end()
            }
        }
    }

    fn params(&mut self, step: &str, pointer: &str, specs: &[ParamSpec]) -> Vec<Param> {
        specs
            .iter()
            .enumerate()
            .map(|(i, p)| self.param(step, &format!("{pointer}/{i}"), &format!("parameter {}", i + 1), p))
            .collect()
    }

    fn param(&mut self, step: &str, pointer: &str, name: &str, p: &ParamSpec) -> Param {
        let mut sources = Vec::new();
        if let Some(v) = &p.static_value {
            sources.push(("static", ParamSource::Static(v.clone())));
        }
        if let Some(flag) = p.current_data {
            if !flag {
                self.err(step, format!("{pointer}/current_data"), format!("{name}: 'current_data' can only be true"));
            }
            sources.push(("current_data", ParamSource::CurrentData));
        }
        if let Some(ptr) = &p.json {
            if !(ptr.is_empty() || ptr.starts_with('/')) {
                self.err(
                    step,
                    format!("{pointer}/json"),
                    format!("{name}: '{ptr}' is not a JSON pointer (write '/{ptr}')"),
                );
            }
            sources.push(("json", ParamSource::Json(ptr.clone())));
        }
        if let Some(code) = &p.jq {
            self.jq_programs.push((step.to_owned(), format!("{pointer}/jq"), format!("{name}: "), code.clone()));
            sources.push(("jq", ParamSource::Jq(code.clone())));
        }
        if let Some(n) = &p.document_property {
            sources.push(("document_property", ParamSource::DocumentProperty(n.clone())));
        }
        if let Some(n) = &p.process_property {
            if !self.spec.properties.contains_key(n) && !self.writes_process_property(n) {
                self.diags.push(Diagnostic::warning(
                    Some(step),
                    format!("{pointer}/process_property"),
                    format!("{name}: process property '{n}' has no default in 'properties' and no step sets it"),
                ));
            }
            sources.push(("process_property", ParamSource::ProcessProperty(n.clone())));
        }
        if let Some(d) = &p.date {
            if let Err(e) = check_strftime(&d.format) {
                self.err(step, format!("{pointer}/date/format"), format!("{name}: {e}"));
            }
            let offset_secs = match d.offset.as_deref().map(date_offset_secs) {
                None => 0,
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    self.err(step, format!("{pointer}/date/offset"), format!("{name}: {e}"));
                    0
                }
            };
            sources.push(("date", ParamSource::Date { format: d.format.clone(), offset_secs }));
        }
        if let Some(e) = p.execution {
            sources.push(("execution", ParamSource::Execution(e)));
        }
        let kinds: Vec<&str> = sources.iter().map(|(k, _)| *k).collect();
        let label;
        let source = match param_sources_problem(name, &kinds) {
            None => {
                let (kind, source) = sources.pop().expect("one source");
                label = format!("{name} ({kind})");
                source
            }
            Some(message) => {
                self.err(step, pointer.to_owned(), message);
                label = name.to_owned();
                ParamSource::Static(String::new())
            }
        };
        Param { source, default: p.default.clone(), escape: p.escape, label }
    }

    /// Whether some step sets process property `name` (read from the file as written, so that a
    /// step with an unrelated problem still counts).
    fn writes_process_property(&self, name: &str) -> bool {
        self.spec
            .steps
            .values()
            .any(|s| matches!(s, StepSpec::SetProperties { process, .. } if process.contains_key(name)))
            || self
                .raw
                .value
                .get("steps")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .any(|(_, s)| s.get("process").and_then(Value::as_object).is_some_and(|p| p.contains_key(name)))
    }

    /// A webhook start: headers it may copy, schedules it cannot have, and a `respond: sync`
    /// that some `stop` answers.
    fn webhook(&mut self, w: &spec::WebhookSpec) {
        // These carry the secret: copying them into documents would put it in dumps and history.
        const SECRET_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "x-stepwise-signature"];
        let mut seen: Vec<String> = Vec::new();
        for (i, header) in w.headers.iter().enumerate() {
            let lower = header.to_ascii_lowercase();
            let pointer = format!("/start/headers/{i}");
            if SECRET_HEADERS.contains(&lower.as_str()) {
                self.err(
                    "start",
                    pointer,
                    format!("header '{header}' carries the webhook's secret and cannot become a document property"),
                );
            } else if seen.contains(&lower) {
                self.err("start", pointer, format!("header '{header}' is listed twice"));
            }
            seen.push(lower);
        }
        if !self.spec.schedules.is_empty() {
            self.diags.push(Diagnostic::error(
                None,
                "/schedules",
                "a process with a webhook start runs once per request to its hook; it cannot have schedules",
            ));
        }
        let responders = self.spec.steps.values().filter(|s| matches!(s, StepSpec::Stop { respond: true, .. })).count();
        if w.respond == Some(spec::Respond::Sync) && responders == 0 {
            self.err(
                "start",
                "/start/respond".to_owned(),
                "'respond: sync' needs a 'stop' step with 'respond: true' (its last document is the answer)",
            );
        }
    }

    /// The parts of a step that did not parse (its typed form is a placeholder) that can still be
    /// checked: each check runs when its own input is well-formed in the file. Its edges are
    /// resolved too, so that the graph checks still run; when an edge cannot be read,
    /// reachability is not checked at all rather than guessed.
    fn salvage(&mut self, id: &str) {
        let base = step_pointer(id);
        let raw = self.raw.value;
        let Some(step) = raw.pointer(&base).and_then(Value::as_object) else {
            self.reach_unknown = true;
            return;
        };
        let edges = raw_edges(id, step);
        self.reach_unknown |= edges.unknown;
        if let Some(paths) = step.get("paths").and_then(Value::as_array) {
            let mut seen = Vec::new();
            for (i, p) in paths.iter().enumerate().filter_map(|(i, p)| Some((i, p.as_str()?))) {
                if seen.contains(&p) {
                    self.err(id, format!("{base}/paths/{i}"), format!("path '{p}' is listed twice"));
                }
                seen.push(p);
            }
        }
        for (key, to, edge) in edges.edges {
            self.target(id, &key, to, edge);
        }
        let (ty, known) = (edges.ty, edges.known);

        // The other checks, for the keys the type has (every key, when the type is unknown).
        let has = |key: &str| -> bool {
            let fields: &[&str] = match ty {
                _ if !known => &["template", "parameters", "jq", "left", "right"],
                Some("message" | "exception" | "notify") => &["template", "parameters"],
                Some("map") => &["jq"],
                Some("set_properties") => &["document", "process"],
                Some("connector") => &["parameters", "file_name"],
                Some("decision") => &["left", "right"],
                _ => &[],
            };
            fields.contains(&key) && step.contains_key(key)
        };
        let parse = |v: &Value| serde_json::from_value::<ParamSpec>(v.clone()).ok();
        if has("parameters") {
            match &step["parameters"] {
                Value::Array(list) => self.salvage_params(id, &format!("{base}/parameters"), list),
                Value::Object(named) => {
                    for (name, p) in named {
                        if let Some(p) = parse(p) {
                            let pointer = format!("{base}/parameters/{}", spec::escape_pointer(name));
                            self.param(id, &pointer, &format!("parameter '{name}'"), &p);
                        }
                    }
                }
                _ => {}
            }
        }
        if has("file_name")
            && let Some(list) = step["file_name"].as_array()
        {
            self.salvage_params(id, &format!("{base}/file_name"), list);
        }
        for group in ["document", "process"] {
            if has(group) {
                for (name, list) in step[group].as_object().into_iter().flatten() {
                    if let Some(list) = list.as_array() {
                        let pointer = format!("{base}/{group}/{}", spec::escape_pointer(name));
                        self.salvage_params(id, &pointer, list);
                    }
                }
            }
        }
        if has("template")
            && let Some(text) = step["template"].as_str()
        {
            let n_params = match step.get("parameters") {
                None => Some(0),
                Some(Value::Array(list)) => Some(list.len()),
                Some(_) => None,
            };
            self.template_checked(id, text, n_params);
        }
        if has("jq")
            && let Some(code) = step["jq"].as_str()
        {
            self.jq_programs.push((id.to_owned(), format!("{base}/jq"), String::new(), code.to_owned()));
        }
        if has("left")
            && let Some(left) = parse(&step["left"])
        {
            self.param(id, &format!("{base}/left"), "left", &left);
        }
        if has("right")
            && let Some(right) = parse(&step["right"])
        {
            let right = self.param(id, &format!("{base}/right"), "right", &right);
            match step.get("op").and_then(Value::as_str) {
                Some("regex") => self.check_static_regex(id, &right.source),
                Some("in") => self.check_static_values(id, &right.source),
                _ => {}
            }
        }
    }

    /// Checks each parameter of a list that parses on its own.
    fn salvage_params(&mut self, step: &str, pointer: &str, list: &[Value]) {
        for (i, p) in list.iter().enumerate() {
            if let Ok(p) = serde_json::from_value::<ParamSpec>(p.clone()) {
                self.param(step, &format!("{pointer}/{i}"), &format!("parameter {}", i + 1), &p);
            }
        }
    }

    fn check_static_regex(&mut self, step: &str, right: &ParamSource) {
        if let ParamSource::Static(re) = right
            && let Err(e) = check_regex(re)
        {
            self.err(
                step,
                format!("{}/right", step_pointer(step)),
                format!("'right' is not a valid regular expression: {e}"),
            );
        }
    }

    fn check_static_values(&mut self, step: &str, right: &ParamSource) {
        if let ParamSource::Static(text) = right
            && let Err(e) = value_set(text)
        {
            self.err(step, format!("{}/right", step_pointer(step)), format!("'right' of op 'in': {e}"));
        }
    }

    fn template(&mut self, step: &str, text: &str, n_params: usize) -> Template {
        self.template_checked(step, text, Some(n_params))
    }

    /// Parses a template; `n_params` is `None` when the number of parameters is not known.
    fn template_checked(&mut self, step: &str, text: &str, n_params: Option<usize>) -> Template {
        let pointer = format!("{}/template", step_pointer(step));
        match Template::parse(text) {
            Ok(t) => {
                if let Some(n_params) = n_params
                    && t.max_param() > n_params
                {
                    let have = match n_params {
                        0 => "no parameters are given".to_owned(),
                        1 => "only 1 parameter is given".to_owned(),
                        n => format!("only {n} parameters are given"),
                    };
                    self.err(step, pointer, format!("template names parameter {{{}}} but {have}", t.max_param()));
                }
                t
            }
            Err(e) => {
                self.err(step, pointer, e.to_string());
                Template::parse("").expect("empty template parses")
            }
        }
    }

    fn connector(&mut self, step: &str, c: &ConnectorSpec) -> ConnectorCall {
        let base = step_pointer(step);
        let connection_type = match self.spec.connections.get(&c.connection) {
            Some(conn) => conn.type_name(),
            None if self.broken.iter().any(|b| b.strip_prefix("connection:") == Some(c.connection.as_str())) => "",
            None => {
                let known: Vec<&str> = self.spec.connections.keys().map(String::as_str).collect();
                let msg = match did_you_mean(&c.connection, known.iter().copied()) {
                    Some(s) => format!("unknown connection '{}' (did you mean '{s}'?)", c.connection),
                    None if known.is_empty() => {
                        format!("unknown connection '{}'; the process has no 'connections'", c.connection)
                    }
                    None => format!("unknown connection '{}'; known: {}", c.connection, known.join(", ")),
                };
                self.err(step, format!("{base}/connection"), msg);
                ""
            }
        };
        self.used_connections.push(c.connection.clone());
        let action = self.action(step, &base, connection_type, c);
        let known_operation = !connection_type.is_empty() && self.operation(step, &base, connection_type, c, &action);
        let is_disk = connection_type == "disk";
        if !is_disk && !connection_type.is_empty() {
            for (key, present) in
                [("format", c.format.is_some()), ("pattern", c.pattern.is_some()), ("file_name", c.file_name.is_some())]
            {
                if present {
                    self.err(step, format!("{base}/{key}"), format!("'{key}' only applies to disk connections"));
                }
            }
        }
        let mut parameters = Vec::new();
        for (name, p) in &c.parameters {
            let param = self.param(
                step,
                &format!("{base}/parameters/{}", spec::escape_pointer(name)),
                &format!("parameter '{name}'"),
                p,
            );
            parameters.push((name.clone(), param));
        }
        let file_name = self.params(step, &format!("{base}/file_name"), c.file_name.as_deref().unwrap_or(&[]));
        let mut query = Vec::new();
        for (name, p) in &c.query {
            let pointer = format!("{base}/query/{}", spec::escape_pointer(name));
            query.push((name.clone(), self.param(step, &pointer, &format!("query parameter '{name}'"), p)));
        }
        let call = ConnectorCall {
            connection: c.connection.clone(),
            connection_type,
            object: c.object.clone(),
            action,
            parameters,
            error_response: c.error_response,
            format: c.format,
            pattern: c.pattern.clone(),
            file_name,
            query,
            options: http_options(c),
        };
        if known_operation {
            self.check_call(step, &base, &call);
        }
        call
    }

    /// Checks that a connector is registered for `connection_type` and has the step's (object,
    /// action); true if so.
    /// The step's action: `action` as written, or for an http connection its `method`. Keys of
    /// the other kind of connection are reported where they are.
    fn action(&mut self, step: &str, base: &str, connection_type: &str, c: &ConnectorSpec) -> String {
        let is_http = connection_type == "http";
        if !is_http && !connection_type.is_empty() {
            for key in HTTP_KEYS.iter().filter(|k| http_key_present(c, k)) {
                self.err(step, format!("{base}/{key}"), format!("'{key}' only applies to http connections"));
            }
        }
        match (&c.action, &c.method) {
            (Some(_), _) if is_http => {
                self.err(step, format!("{base}/action"), "an 'http' step has no 'action'; give its 'method'");
                c.method.map(|m| m.as_str().to_owned()).unwrap_or_default()
            }
            (_, Some(method)) if is_http => method.as_str().to_owned(),
            (None, _) if is_http => {
                self.err(step, base.to_owned(), "missing required key 'method' (get, post, put, patch or delete)");
                String::new()
            }
            (Some(action), _) => action.clone(),
            (None, _) => {
                if !connection_type.is_empty() {
                    self.err(step, base.to_owned(), "missing required key 'action'");
                }
                String::new()
            }
        }
    }

    fn operation(&mut self, step: &str, base: &str, connection_type: &str, c: &ConnectorSpec, action: &str) -> bool {
        if action.is_empty() {
            return false;
        }
        let Some(ops) = self.catalog.operations(connection_type) else {
            self.err(
                step,
                format!("{base}/connection"),
                format!("no connector is registered for connection type '{connection_type}'"),
            );
            return false;
        };
        let object = c.object.as_deref().unwrap_or("");
        let has_objects = ops.iter().any(|o| !o.object.is_empty());
        let (field, message) = if has_objects && object.is_empty() {
            ("action", format!("a '{connection_type}' step needs an 'object'"))
        } else if !has_objects && !object.is_empty() {
            ("object", format!("a '{connection_type}' connection has no objects; remove 'object'"))
        } else if ops.iter().any(|o| o.object == object && o.action == action) {
            return true;
        } else if has_objects && !ops.iter().any(|o| o.object == object) {
            let mut objects: Vec<&str> = ops.iter().map(|o| o.object).collect();
            objects.dedup();
            let hint = did_you_mean(object, objects.iter().copied())
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            ("object", format!("'{connection_type}' has no object '{object}'{hint}; known: {}", objects.join(", ")))
        } else {
            let actions: Vec<&str> = ops.iter().filter(|o| o.object == object).map(|o| o.action).collect();
            let what = if object.is_empty() { String::new() } else { format!(" for object '{object}'") };
            let field = if connection_type == "http" { "method" } else { "action" };
            let noun = if connection_type == "http" { "method" } else { "action" };
            (field, format!("'{connection_type}' has no {noun} '{action}'{what}; known: {}", actions.join(", ")))
        };
        self.err(step, format!("{base}/{field}"), message);
        false
    }

    /// Asks the connector what it can tell of the step before a run (parameters against the
    /// action's schema, files outside the connection's directory), each at its field.
    fn check_call(&mut self, step: &str, base: &str, call: &ConnectorCall) {
        fn static_value(p: &Param) -> Option<&str> {
            match &p.source {
                ParamSource::Static(v) if p.escape.is_none() => Some(v.as_str()),
                _ => None,
            }
        }
        let file_name: Option<Vec<&str>> = call.file_name.iter().map(static_value).collect();
        let view = crate::StaticCall {
            object: call.object.as_deref().unwrap_or(""),
            action: &call.action,
            parameters: call.parameters.iter().map(|(n, p)| (n.as_str(), static_value(p))).collect(),
            pattern: call.pattern.as_deref(),
            file_name: file_name.filter(|parts| !parts.is_empty()).map(|parts| parts.concat()),
            query: call.query.iter().map(|(n, p)| (n.as_str(), static_value(p))).collect(),
            options: &call.options,
        };
        for problem in self.catalog.check_call(call.connection_type, &view) {
            let field = match problem.field.strip_prefix("parameters/") {
                Some(name) => format!("parameters/{}", spec::escape_pointer(name)),
                None => problem.field,
            };
            self.err(step, format!("{base}/{field}"), problem.message);
        }
    }
}

/// The keys of a connector step that only http connections take.
const HTTP_KEYS: [&str; 8] = ["method", "path", "query", "body", "records", "paginate", "schema", "idempotent"];

fn http_key_present(c: &ConnectorSpec, key: &str) -> bool {
    match key {
        "method" => c.method.is_some(),
        "path" => c.path.is_some(),
        "query" => !c.query.is_empty(),
        "body" => c.body.is_some(),
        "records" => c.records.is_some(),
        "paginate" => c.paginate.is_some(),
        "schema" => c.schema.is_some(),
        "idempotent" => c.idempotent,
        _ => false,
    }
}

/// The http keys of a step as JSON, for the connector to read ([`ConnectorCall::options`]).
fn http_options(c: &ConnectorSpec) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    };
    put("method", c.method.map(|m| Value::String(m.as_str().to_owned())));
    put("path", c.path.clone().map(Value::String));
    put("body", c.body.and_then(|b| serde_json::to_value(b).ok()));
    put("records", c.records.clone().map(Value::String));
    put("paginate", c.paginate.as_ref().and_then(|p| serde_json::to_value(p).ok()));
    put("schema", c.schema.clone().map(Value::String));
    put("idempotent", c.idempotent.then_some(Value::Bool(true)));
    m
}

/// The source keys of a parameter, in the order messages list them.
pub(crate) const PARAM_SOURCES: [&str; 8] =
    ["static", "current_data", "json", "jq", "document_property", "process_property", "date", "execution"];

/// What is wrong with a parameter (called `name` in messages) that has the source keys `kinds`,
/// unless it has exactly one. The schema check words the same problem the same way, so that it is
/// reported once.
pub(crate) fn param_sources_problem(name: &str, kinds: &[&str]) -> Option<String> {
    match kinds.len() {
        1 => None,
        0 => Some(format!("{name} has no source; give one of {}", PARAM_SOURCES.join(", "))),
        _ => Some(format!("{name} has several sources ({}); give exactly one", kinds.join(", "))),
    }
}

/// Checks a strftime format by rendering it once.
fn check_strftime(format: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    if StrftimeItems::new(format).any(|i| matches!(i, Item::Error)) {
        return Err(format!("date format '{format}' is not a valid strftime format"));
    }
    Ok(())
}

/// Parses a date offset such as `-1d`, `+2h`, `30m`, `10s`, `1w` into seconds.
pub fn date_offset_secs(text: &str) -> Result<i64, String> {
    let bad = || format!("date offset '{text}' is not like -1d, +2h, 30m, 10s or 1w");
    let t = text.trim();
    let (sign, rest) = match t.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let unit = rest.chars().last().ok_or_else(bad)?;
    let n: i64 = rest[..rest.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).map(|v| v * sign).ok_or_else(bad)
}

/// A base URL is https, or plain http to a loopback host.
pub fn is_allowed_base_url(url: &str) -> Result<(), String> {
    if let Some(rest) = url.strip_prefix("https://") {
        if rest.is_empty() {
            return Err(format!("'{url}' has no host"));
        }
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let host_port = rest.split('/').next().unwrap_or("");
        let host = if let Some(h) = host_port.strip_prefix('[') {
            h.split(']').next().unwrap_or("")
        } else {
            host_port.split(':').next().unwrap_or("")
        };
        // Only a name that is loopback by definition, or a loopback IP literal: a DNS name that
        // merely starts with "127." may resolve anywhere.
        let loopback =
            host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if loopback {
            return Ok(());
        }
        return Err(format!("'{url}' uses plain http to a host that is not loopback; use https"));
    }
    Err(format!("'{url}' is not an http(s) URL"))
}

/// Connection checks, on the file as written so that they run even when another key of the
/// connection has a problem.
fn check_connections(raw: &Value, diags: &mut Vec<Diagnostic>) {
    for (name, conn) in raw.get("connections").and_then(Value::as_object).into_iter().flatten() {
        let base = format!("/connections/{}", spec::escape_pointer(name));
        let text = |key: &str| conn.get(key).and_then(Value::as_str);
        match text("type") {
            Some("http") => check_http_connection(name, &base, conn, diags),
            Some("knowbe4" | "boomi_platform") => {
                if let Some(url) = text("base_url")
                    && let Err(e) = is_allowed_base_url(url)
                {
                    diags.push(Diagnostic::error(
                        None,
                        format!("{base}/base_url"),
                        format!("connection '{name}': {e}"),
                    ));
                }
            }
            Some("disk") if text("directory").is_some_and(|d| d.trim().is_empty()) => {
                diags.push(Diagnostic::error(
                    None,
                    format!("{base}/directory"),
                    format!("connection '{name}': 'directory' is empty"),
                ));
            }
            _ => {}
        }
    }
}

/// The URLs of an http connection (base and OAuth2 token URL: plain http only to loopback),
/// and headers that would carry a credential in the file.
fn check_http_connection(name: &str, base: &str, conn: &Value, diags: &mut Vec<Diagnostic>) {
    let urls = [("base_url", conn.get("base_url")), ("auth/token_url", conn.pointer("/auth/token_url"))];
    for (key, url) in urls {
        if let Some(url) = url.and_then(Value::as_str)
            && let Err(e) = is_allowed_base_url(url)
        {
            diags.push(Diagnostic::error(None, format!("{base}/{key}"), format!("connection '{name}': {e}")));
        }
    }
    const CREDENTIAL_HEADERS: [&str; 5] =
        ["authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token"];
    for header in conn.get("headers").and_then(Value::as_object).into_iter().flatten().map(|(k, _)| k) {
        if CREDENTIAL_HEADERS.contains(&header.to_ascii_lowercase().as_str()) {
            diags.push(Diagnostic::error(
                None,
                format!("{base}/headers/{}", spec::escape_pointer(header)),
                format!(
                    "connection '{name}': header '{header}' carries a credential, which a process file must not hold; \
                     use 'auth' (bearer, basic, header or oauth2_client_credentials) with {{env: NAME}} or {{file: PATH}}"
                ),
            ));
        }
    }
}

/// Cron and time zone checks, on the file as written: each schedule is checked, at its own
/// index, even when it or another schedule has a problem elsewhere.
fn check_schedules(raw: &Value, diags: &mut Vec<Diagnostic>) {
    let schedules = raw.get("schedules").and_then(Value::as_array).into_iter().flatten();
    for (i, s) in schedules.enumerate() {
        let base = format!("/schedules/{i}");
        // The same parser the service uses, so validate and serve never disagree.
        if let Some(cron) = s.get("cron").and_then(Value::as_str)
            && let Err(e) = crate::schedule::Schedule::parse(cron, "UTC")
        {
            diags.push(Diagnostic::error(None, format!("{base}/cron"), e.to_string()));
        }
        if let Some(tz) = s.get("timezone").and_then(Value::as_str)
            && let Err(e) = crate::schedule::parse_timezone(tz)
        {
            diags.push(Diagnostic::error(None, format!("{base}/timezone"), e.to_string()));
        }
    }
}

/// Checks the typed spec and builds the plan; pushes every problem found. `raw` is the file as
/// loaded. `broken` names the steps (and `start`) that did not parse: they stand in as
/// placeholders so that references to them resolve, and what can be read of them in `raw` is
/// checked (see `Ctx::salvage`), their edges included.
pub(crate) fn build(
    spec: ProcessSpec,
    raw: Raw<'_>,
    broken: &[String],
    catalog: &dyn Catalog,
    diags: &mut Vec<Diagnostic>,
) -> Option<Plan> {
    let n_errors_before = diags.iter().filter(|d| d.is_error()).count();
    check_connections(raw.value, diags);
    check_schedules(raw.value, diags);

    let mut ids: HashMap<&str, NodeIndex> = HashMap::new();
    let mut names = vec!["start"];
    ids.insert("start", NodeIndex::new(0));
    if spec.steps.contains_key("start") {
        diags.push(Diagnostic::error(
            Some("start"),
            "/steps/start",
            "step id 'start' is taken by the start step; rename this step",
        ));
    }
    for id in spec.steps.keys() {
        if id != "start" {
            ids.insert(id.as_str(), NodeIndex::new(names.len()));
            names.push(id.as_str());
        }
    }
    let mut ctx = Ctx {
        ids,
        names,
        spec: &spec,
        raw,
        catalog,
        diags,
        edges: Vec::new(),
        used_connections: Vec::new(),
        broken,
        reach_unknown: false,
        jq_programs: Vec::new(),
    };

    let start_broken = broken.iter().any(|b| b == "start");
    let start_kind = match &spec.start {
        _ if start_broken => {
            ctx.salvage("start");
            StepKind::StartNoData { next: NodeIndex::end() }
        }
        StartSpec::NoData { next } => StepKind::StartNoData { next: ctx.target("start", "next", next, Edge::Next) },
        StartSpec::Connector(c) => {
            let call = ctx.connector("start", c);
            let next = match &c.next {
                Some(n) => ctx.target("start", "next", n, Edge::Next),
                None => {
                    ctx.err("start", "/start".to_owned(), "missing required key 'next'");
                    ctx.reach_unknown = true;
                    NodeIndex::end()
                }
            };
            StepKind::StartConnector { call, next }
        }
        StartSpec::Webhook(w) => {
            ctx.webhook(w);
            StepKind::StartWebhook { next: ctx.target("start", "next", &w.next, Edge::Next) }
        }
    };
    let mut steps = vec![Step { id: "start".to_owned(), kind: start_kind }];
    for (id, step) in &spec.steps {
        if id == "start" {
            continue;
        }
        let base = step_pointer(id);
        if broken.contains(id) {
            ctx.salvage(id);
            steps.push(Step { id: id.clone(), kind: StepKind::Stop { keep_going: true, respond: false } });
            continue;
        }
        let kind = match step {
            StepSpec::Message { template, parameters, combine, next } => {
                let params = ctx.params(id, &format!("{base}/parameters"), parameters);
                let template = ctx.template(id, template, params.len());
                StepKind::Message {
                    template,
                    params,
                    combine: *combine,
                    next: ctx.target(id, "next", next, Edge::Next),
                }
            }
            StepSpec::Map { jq: code, next } => {
                ctx.jq_programs.push((id.clone(), format!("{base}/jq"), String::new(), code.clone()));
                StepKind::Map { jq: code.clone(), next: ctx.target(id, "next", next, Edge::Next) }
            }
            StepSpec::SetProperties { document, process, next } => {
                if document.is_empty() && process.is_empty() {
                    ctx.err(id, base.clone(), "sets no properties; give 'document' or 'process'");
                }
                let mut doc = Vec::new();
                for (name, ps) in document {
                    doc.push((
                        name.clone(),
                        ctx.params(id, &format!("{base}/document/{}", spec::escape_pointer(name)), ps),
                    ));
                }
                let mut proc_ = Vec::new();
                for (name, ps) in process {
                    proc_.push((
                        name.clone(),
                        ctx.params(id, &format!("{base}/process/{}", spec::escape_pointer(name)), ps),
                    ));
                }
                StepKind::SetProperties {
                    document: doc,
                    process: proc_,
                    next: ctx.target(id, "next", next, Edge::Next),
                }
            }
            StepSpec::Connector(c) => {
                let call = ctx.connector(id, c);
                let next = c.next.as_ref().map(|n| ctx.target(id, "next", n, Edge::Next));
                StepKind::Connector { call, next }
            }
            StepSpec::Decision { left, op, right, if_true, if_false } => {
                let left = ctx.param(id, &format!("{base}/left"), "left", left);
                let right = ctx.param(id, &format!("{base}/right"), "right", right);
                match op {
                    spec::DecisionOp::Regex => ctx.check_static_regex(id, &right.source),
                    spec::DecisionOp::In => ctx.check_static_values(id, &right.source),
                    _ => {}
                }
                StepKind::Decision {
                    left,
                    op: *op,
                    right,
                    if_true: ctx.target(id, "true", if_true, Edge::True),
                    if_false: ctx.target(id, "false", if_false, Edge::False),
                }
            }
            StepSpec::Branch { paths } => {
                let mut seen = Vec::new();
                let mut resolved = Vec::new();
                for (i, p) in paths.iter().enumerate() {
                    if seen.contains(&p) {
                        ctx.err(id, format!("{base}/paths/{i}"), format!("path '{p}' is listed twice"));
                    }
                    seen.push(p);
                    resolved.push(ctx.target(id, &format!("paths/{i}"), p, Edge::Path(i)));
                }
                StepKind::Branch { paths: resolved }
            }
            StepSpec::TryCatch { try_path, catch, retries, catch_errors } => StepKind::TryCatch {
                try_path: ctx.target(id, "try", try_path, Edge::Try),
                catch: ctx.target(id, "catch", catch, Edge::Catch),
                retries: *retries,
                catch_errors: *catch_errors,
            },
            StepSpec::Exception { template, parameters, stop_process } => {
                let params = ctx.params(id, &format!("{base}/parameters"), parameters);
                let template = ctx.template(id, template, params.len());
                StepKind::Exception { template, params, stop_process: *stop_process }
            }
            StepSpec::Notify { template, parameters, level, next } => {
                let params = ctx.params(id, &format!("{base}/parameters"), parameters);
                let template = ctx.template(id, template, params.len());
                StepKind::Notify { template, params, level: *level, next: ctx.target(id, "next", next, Edge::Next) }
            }
            StepSpec::Stop { keep_going, respond, next } => {
                if next.is_some() {
                    ctx.err(id, format!("{base}/next"), "a 'stop' step ends its path and cannot have a 'next'");
                }
                let sync = matches!(&spec.start, StartSpec::Webhook(w) if w.respond == Some(spec::Respond::Sync));
                if *respond && !sync {
                    ctx.diags.push(Diagnostic::warning(
                        Some(id),
                        format!("{base}/respond"),
                        "'respond: true' has no effect: the process does not start with a webhook with 'respond: sync'",
                    ));
                }
                StepKind::Stop { keep_going: *keep_going, respond: *respond }
            }
        };
        steps.push(Step { id: id.clone(), kind });
    }

    let programs: Vec<&str> = ctx.jq_programs.iter().map(|(_, _, _, code)| code.as_str()).collect();
    let checked = jq::check_all(&programs);
    let programs = std::mem::take(&mut ctx.jq_programs);
    for ((step, pointer, prefix, _), result) in programs.into_iter().zip(checked) {
        if let Err(e) = result {
            ctx.err(&step, pointer, format!("{prefix}{e}"));
        }
    }

    for name in spec.connections.keys().filter(|_| broken.is_empty()) {
        if !ctx.used_connections.contains(name) {
            ctx.diags.push(Diagnostic::warning(
                None,
                format!("/connections/{}", spec::escape_pointer(name)),
                format!("connection '{name}' is not used by any step"),
            ));
        }
    }

    let edges = std::mem::take(&mut ctx.edges);
    // A repeated step id: what its other definitions lead to counts for reachability (they are
    // not checked otherwise; the duplicate is an error of its own).
    let mut also_reach = Vec::new();
    for (id, value) in raw.repeated {
        let (Some(&from), Some(step)) = (ctx.ids.get(id.as_str()), value.as_object()) else {
            ctx.reach_unknown = true;
            continue;
        };
        let read = raw_edges(id, step);
        ctx.reach_unknown |= read.unknown;
        also_reach.extend(read.edges.iter().filter_map(|(_, to, _)| ctx.ids.get(to).map(|&to| (from, to))));
    }
    let reach_unknown = ctx.reach_unknown;
    let mut graph: DiGraph<Step, Edge> = DiGraph::with_capacity(steps.len(), edges.len());
    for s in steps {
        graph.add_node(s);
    }
    for (a, b, e) in edges {
        graph.add_edge(a, b, e);
    }
    check_graph(&graph, (!reach_unknown).then_some(&also_reach[..]), diags);

    let n_errors = diags.iter().filter(|d| d.is_error()).count();
    if n_errors > n_errors_before {
        return None;
    }
    Some(Plan {
        name: spec.name.clone(),
        description: spec.description.clone(),
        properties: spec.properties.clone(),
        connections: spec.connections.clone(),
        schedules: spec.schedules.clone(),
        limits: spec.limits,
        record: spec.record,
        retention_days: spec.retention_days,
        graph,
        start: NodeIndex::new(0),
        webhook: match &spec.start {
            StartSpec::Webhook(w) => Some(w.clone()),
            _ => None,
        },
    })
}

/// The engine matches with the regex crate; checking with its own parser and compiler means
/// validate accepts exactly the patterns a run accepts. The message is one line, with the
/// 1-based character where the pattern goes wrong.
pub fn check_regex(re: &str) -> Result<(), String> {
    let (kind, span) = match regex_syntax::Parser::new().parse(re) {
        Ok(_) => return regex::Regex::new(re).map(drop).map_err(|e| e.to_string().replace('\n', " ")),
        Err(regex_syntax::Error::Parse(e)) => (e.kind().to_string(), *e.span()),
        Err(regex_syntax::Error::Translate(e)) => (e.kind().to_string(), *e.span()),
        Err(e) => return Err(e.to_string().replace('\n', " ")),
    };
    Err(format!("{kind} (at character {})", span.start.column))
}

/// The values of a Decision's `in` list: `text` must be a JSON array whose elements are strings
/// (their text), numbers or booleans (their JSON text: `2002`, `true`); nulls are left out, so
/// that the `[{1}null]` idiom works. The engine compares `left` with each value exactly.
pub fn value_set(text: &str) -> Result<HashSet<String>, String> {
    let list: Vec<Value> = serde_json::from_str(text).map_err(|e| format!("the list is not a JSON array ({e})"))?;
    let mut values = HashSet::with_capacity(list.len());
    for (i, v) in list.into_iter().enumerate() {
        match v {
            Value::String(s) => {
                values.insert(s);
            }
            Value::Null => {}
            Value::Number(n) => {
                values.insert(n.to_string());
            }
            Value::Bool(b) => {
                values.insert(b.to_string());
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(format!(
                    "element {} is an array or an object; the list holds strings, numbers or booleans",
                    i + 1
                ));
            }
        }
    }
    Ok(values)
}

/// Cycles, and steps that no path from start leads to, following the graph's edges and
/// `also_reach`; `None` when reachability is not known.
fn check_graph(
    graph: &DiGraph<Step, Edge>,
    also_reach: Option<&[(NodeIndex, NodeIndex)]>,
    diags: &mut Vec<Diagnostic>,
) {
    // Cycles: every strongly connected component larger than one node, or a self loop.
    let mut cyclic = false;
    for scc in petgraph::algo::tarjan_scc(graph) {
        let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
        if scc.len() < 2 && !self_loop {
            continue;
        }
        cyclic = true;
        let cycle = find_cycle(graph, &scc);
        let names: Vec<&str> = cycle.iter().map(|&i| graph[i].id.as_str()).collect();
        let first = names[0];
        diags.push(Diagnostic::error(
            Some(first),
            step_pointer(first),
            format!("the process graph has a cycle: {}", names.join(" -> ")),
        ));
    }
    if !cyclic {
        check_depth(graph, diags);
    }
    let Some(also_reach) = also_reach else {
        return;
    };
    // Reachability from start.
    let mut seen = vec![false; graph.node_count()];
    let mut todo = vec![NodeIndex::new(0)];
    while let Some(n) = todo.pop() {
        if std::mem::replace(&mut seen[n.index()], true) {
            continue;
        }
        todo.extend(graph.neighbors(n));
        todo.extend(also_reach.iter().filter(|(from, _)| *from == n).map(|(_, to)| *to));
    }
    for idx in graph.node_indices() {
        if !seen[idx.index()] {
            let id = &graph[idx].id;
            diags.push(Diagnostic::error(
                Some(id),
                step_pointer(id),
                "unreachable: no path from 'start' leads to this step",
            ));
        }
    }
}

/// The deepest a plan may be: the most steps on one path from start, a try/catch counting twice
/// (the engine goes one level deeper for its try path). The engine's stack is sized for it.
pub const MAX_DEPTH: usize = 10_000;

/// How much a step adds to the depth of a path through it.
fn depth_weight(step: &Step) -> usize {
    if matches!(step.kind, StepKind::TryCatch { .. }) { 2 } else { 1 }
}

/// Rejects a plan deeper than [`MAX_DEPTH`] (an acyclic graph), at the first step past it.
fn check_depth(graph: &DiGraph<Step, Edge>, diags: &mut Vec<Diagnostic>) {
    let Ok(order) = petgraph::algo::toposort(graph, None) else { return };
    let mut depth = vec![0usize; graph.node_count()];
    for n in order {
        let here = depth[n.index()] + depth_weight(&graph[n]);
        if here > MAX_DEPTH {
            let id = &graph[n].id;
            diags.push(Diagnostic::error(
                Some(id),
                step_pointer(id),
                format!(
                    "the process is too deep: this step is {here} steps from 'start' (a try_catch counts twice); \
                     the most is {MAX_DEPTH}"
                ),
            ));
            return;
        }
        for next in graph.neighbors(n) {
            depth[next.index()] = depth[next.index()].max(here);
        }
    }
}

/// A cycle inside one strongly connected component, as a closed path (first == last).
fn find_cycle(graph: &DiGraph<Step, Edge>, scc: &[NodeIndex]) -> Vec<NodeIndex> {
    let mut start = scc[0];
    for &n in scc {
        if graph[n].id < graph[start].id {
            start = n;
        }
    }
    let mut path = vec![start];
    let mut visited = vec![start];
    let mut cur = start;
    loop {
        let next = graph.neighbors(cur).filter(|n| scc.contains(n)).find(|n| *n == start || !visited.contains(n));
        match next {
            Some(n) if n == start => {
                path.push(n);
                return path;
            }
            Some(n) => {
                path.push(n);
                visited.push(n);
                cur = n;
            }
            None => {
                // Dead end within the component: fall back to naming its members.
                let mut all: Vec<NodeIndex> = scc.to_vec();
                all.push(scc[0]);
                return all;
            }
        }
    }
}
