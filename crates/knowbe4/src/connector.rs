//! The connected KnowBe4 connector: validates inputs against their schemas and performs the
//! operations of [`crate::ops::OPS`] over the KSAT GraphQL API, one paced call at a time.

use std::collections::{HashMap, HashSet};

use connector_http::reqwest::{Method, Url};
use connector_http::{Caller, JsonRequest, Safety, SendError, invalid_input};
use engine::{
    ApiError, Connector, ConnectorError, Document, ErrorKind, FieldError, Input, OperationRef, Output, Secret,
};
use serde_json::{Map, Value, json};

use crate::bulk::{self, Item};
use crate::graphql::{self, PayloadError};
use crate::ops::{self, Arg, BULK_SIZE, Call, ERRORS, Exists, MAX_PER, OpSpec, Out, Write};
use crate::schemas;

/// One connection of one run.
pub(crate) struct KnowBe4 {
    pub connection: String,
    pub url: Url,
    pub token: Secret,
    pub caller: Caller,
    /// The partner token and its caller (for `account`), when one is configured.
    pub partner: Option<(Secret, Caller)>,
}

/// Why a call failed.
enum CallError {
    /// A call that is not idempotent may or may not have been executed.
    Ambiguous(String),
    Api(ApiError),
}

fn api(kind: ErrorKind, status: Option<u16>, message: String) -> ApiError {
    ApiError { body: None, kind, status, message, details: Vec::new() }
}

fn document(node: &Value) -> Document {
    Document::new(serde_json::to_vec(node).unwrap_or_default())
}

/// Emits the documents of one input, or its failure; `true` when the step must stop.
fn emit(out: &mut Output, input: usize, result: Result<Vec<Value>, ApiError>) -> bool {
    match result {
        Ok(nodes) => {
            for n in &nodes {
                out.ok(input, document(n));
            }
            false
        }
        Err(e) => out.fail(input, e),
    }
}

fn ids_of(value: Option<&Value>) -> Vec<i64> {
    value.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_i64).collect()).unwrap_or_default()
}

fn payload_select(out: Out) -> String {
    match out {
        Out::Node(s) | Out::NodeList(s) => format!("node {{ {s} }} {ERRORS}"),
        Out::Nodes(s) => format!("nodes {{ {s} }} {ERRORS}"),
        Out::Flag { field, .. } => format!("{field} {ERRORS}"),
        Out::FlagPerId { .. } => format!("node {ERRORS}"),
    }
}

/// The documents a successful mutation payload yields.
fn outputs(out: Out, operation: &str, payload: &Value, input: &Map<String, Value>) -> Result<Vec<Value>, ApiError> {
    let missing = || api(ErrorKind::Api, Some(200), format!("KnowBe4's answer to {operation} has no node"));
    match out {
        Out::Node(_) => match payload.get("node") {
            Some(n) if n.is_object() => Ok(vec![n.clone()]),
            _ => Err(missing()),
        },
        Out::NodeList(_) | Out::Nodes(_) => {
            let key = if matches!(out, Out::Nodes(_)) { "nodes" } else { "node" };
            match payload.get(key) {
                Some(Value::Array(items)) => Ok(items.clone()),
                Some(n) if n.is_object() => Ok(vec![n.clone()]),
                _ => Err(missing()),
            }
        }
        Out::Flag { field, name } => {
            let mut doc = input.clone();
            doc.insert(name.to_owned(), payload.get(field).cloned().unwrap_or(Value::Null));
            Ok(vec![Value::Object(doc)])
        }
        Out::FlagPerId { ids, name } => {
            let flag = payload.get("node").cloned().unwrap_or(Value::Bool(true));
            Ok(ids_of(input.get(ids)).into_iter().map(|id| json!({ "id": id, name: flag })).collect())
        }
    }
}

/// The documents of a write that was found already done after an unknown outcome.
fn done_outputs(out: Out, input: &Map<String, Value>) -> Vec<Value> {
    match out {
        Out::Flag { name, .. } => {
            let mut doc = input.clone();
            doc.insert(name.to_owned(), Value::Bool(true));
            vec![Value::Object(doc)]
        }
        Out::FlagPerId { ids, name } => {
            ids_of(input.get(ids)).into_iter().map(|id| json!({ "id": id, name: true })).collect()
        }
        Out::Nodes(_) | Out::NodeList(_) if input.contains_key("ids") => {
            ids_of(input.get("ids")).into_iter().map(|id| json!({ "id": id })).collect()
        }
        _ => vec![Value::Object(input.clone())],
    }
}

fn created_since(node: &Value, since: chrono::DateTime<chrono::Utc>) -> bool {
    node.get("createdAt")
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .is_some_and(|t| t.with_timezone(&chrono::Utc) >= since - chrono::Duration::seconds(120))
}

impl KnowBe4 {
    fn auth(&self, partner: bool) -> (&Secret, &Caller) {
        match (&self.partner, partner) {
            (Some((t, c)), true) => (t, c),
            _ => (&self.token, &self.caller),
        }
    }

    fn call_error(&self, operation: &str, e: SendError) -> CallError {
        match e {
            SendError::Ambiguous { message, .. } => CallError::Ambiguous(message),
            SendError::Status { status: status @ (401 | 403), message, .. } => CallError::Api(api(
                ErrorKind::Api,
                Some(status),
                format!(
                    "KnowBe4 refused the token for {operation} (HTTP {status}: {message}); check the token, its scope \
                     (Read/Write for changes, a partner token for accounts) and the connection's region"
                ),
            )),
            SendError::Status { status, message, .. } => {
                CallError::Api(api(ErrorKind::Api, Some(status), format!("{operation}: HTTP {status}: {message}")))
            }
            SendError::Transport { message, attempts } => CallError::Api(api(
                ErrorKind::Transport,
                None,
                format!("{operation}: {message} (after {attempts} attempt{})", if attempts == 1 { "" } else { "s" }),
            )),
        }
    }

    /// Sends one GraphQL request and records the exchange (never the token) for input `input`.
    async fn send(
        &self,
        partner: bool,
        req: &graphql::Request,
        operation: &str,
        safety: Safety,
        out: &mut Output,
        input: usize,
    ) -> Result<Value, CallError> {
        let (token, caller) = self.auth(partner);
        let body = req.body();
        let jr = JsonRequest {
            method: Method::POST,
            url: &self.url,
            bearer: Some(token.expose()),
            body: Some(&body),
            label: operation,
            timeout: None,
        };
        let result = caller.send_json(&jr, safety).await;
        let request = json!({ "method": "POST", "url": self.url.as_str(), "body": body });
        let exchange = match &result {
            Ok(r) => {
                json!({ "request": request, "response": { "status": r.status, "body": r.body }, "attempts": r.attempts })
            }
            Err(e) => json!({
                "request": request,
                "response": { "status": e.status(), "error": e.to_string(), "body": e.body() },
                "attempts": e.attempts(),
            }),
        };
        out.exchange(input, exchange);
        match result {
            Ok(r) => Ok(r.body),
            Err(e) => Err(self.call_error(operation, e)),
        }
    }

    /// A read: retried on any transient fault.
    async fn query(
        &self,
        partner: bool,
        req: &graphql::Request,
        field: &str,
        out: &mut Output,
        input: usize,
    ) -> Result<Value, ApiError> {
        match self.send(partner, req, field, Safety::Idempotent, out, input).await {
            Ok(body) => graphql::field_of(&body, field, field),
            Err(CallError::Api(e)) => Err(e),
            Err(CallError::Ambiguous(m)) => Err(api(ErrorKind::Transport, None, m)),
        }
    }

    async fn get(
        &self,
        field: &str,
        select: &str,
        what: &str,
        input: &Map<String, Value>,
        out: &mut Output,
        i: usize,
    ) -> bool {
        let (field, arg) = if field == "user" && input.contains_key("email") {
            ("userByEmail", Arg { name: "email", ty: "String!" })
        } else {
            (field, Arg { name: "id", ty: "Int!" })
        };
        let req = graphql::build("query", field, &[arg], input, &[], "", select);
        let result = match self.query(false, &req, field, out, i).await {
            Ok(Value::Null) => {
                let key = input.get(arg.name).map(|v| v.to_string().trim_matches('"').to_owned()).unwrap_or_default();
                Err(ApiError {
                    body: None,
                    kind: ErrorKind::Api,
                    status: Some(200),
                    message: format!("KnowBe4 has no {what} with {} {key}", arg.name),
                    details: vec![FieldError { field: arg.name.to_owned(), reason: "not_found".to_owned() }],
                })
            }
            Ok(node) => Ok(vec![node]),
            Err(e) => Err(e),
        };
        emit(out, i, result)
    }

    /// Every page of a list, one document per record; if a page fails, the input yields only
    /// its error (`Output::fail` withdraws the records of the pages read).
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        field: &str,
        args: &[Arg],
        select: &str,
        partner: bool,
        input: &Map<String, Value>,
        out: &mut Output,
        i: usize,
    ) -> bool {
        let select = format!("nodes {{ {select} }} pagination {{ page pages per totalCount }}");
        let mut page: i64 = 1;
        loop {
            let extra = [
                (Arg { name: "page", ty: "Int!" }, Value::from(page)),
                (Arg { name: "per", ty: "Int!" }, Value::from(MAX_PER)),
            ];
            let req = graphql::build("query", field, args, input, &extra, "", &select);
            let value = match self.query(partner, &req, field, out, i).await {
                Ok(v) => v,
                Err(e) => return out.fail(i, e),
            };
            let Some(nodes) = value.get("nodes").and_then(Value::as_array) else {
                let e = api(ErrorKind::Api, Some(200), format!("KnowBe4's answer to {field} has no nodes"));
                return out.fail(i, e);
            };
            for n in nodes {
                out.ok(i, document(n));
            }
            let more = match value.pointer("/pagination/pages").and_then(Value::as_i64) {
                Some(pages) => page < pages,
                None => nodes.len() >= MAX_PER as usize,
            };
            if !more || nodes.is_empty() {
                tracing::debug!(connection = %self.connection, field, pages = page, "List read.");
                return false;
            }
            page += 1;
        }
    }

    /// Looks for the object a create whose outcome is unknown would have made: one of its name
    /// (or email) created since the create was sent, never an older one (a group of the same
    /// name archived last year). `createdAt` is read for the check and kept only if `select`
    /// asks for it.
    async fn existing(
        &self,
        exists: Exists,
        select: &str,
        input: &Map<String, Value>,
        since: chrono::DateTime<chrono::Utc>,
        out: &mut Output,
        i: usize,
    ) -> Result<Option<Value>, ApiError> {
        let asked = select.split_whitespace().any(|f| f == "createdAt");
        let with_created = if asked { select.to_owned() } else { format!("{select} createdAt") };
        let found = self.lookup(exists, &with_created, input, since, out, i).await?;
        Ok(found.map(|mut n| {
            if let (false, Some(obj)) = (asked, n.as_object_mut()) {
                obj.remove("createdAt");
            }
            n
        }))
    }

    /// The lookups of [`KnowBe4::existing`].
    async fn lookup(
        &self,
        exists: Exists,
        select: &str,
        input: &Map<String, Value>,
        since: chrono::DateTime<chrono::Utc>,
        out: &mut Output,
        i: usize,
    ) -> Result<Option<Value>, ApiError> {
        match exists {
            Exists::UserByEmail => {
                let req = graphql::build(
                    "query",
                    "userByEmail",
                    &[Arg { name: "email", ty: "String!" }],
                    input,
                    &[],
                    "",
                    select,
                );
                let node = self.query(false, &req, "userByEmail", out, i).await?;
                Ok(Some(node).filter(|n| created_since(n, since)))
            }
            Exists::GroupByName => {
                let name = input
                    .get("attributes")
                    .and_then(|a| a.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                let vars: Map<String, Value> = [("search".to_owned(), Value::from(name.clone()))].into_iter().collect();
                let extra = [(Arg { name: "per", ty: "Int!" }, Value::from(MAX_PER))];
                let req = graphql::build(
                    "query",
                    "groups",
                    &[Arg { name: "search", ty: "String!" }],
                    &vars,
                    &extra,
                    "status: ALL",
                    &format!("nodes {{ {select} }}"),
                );
                let value = self.query(false, &req, "groups", out, i).await?;
                let found = value.get("nodes").and_then(Value::as_array).and_then(|nodes| {
                    nodes
                        .iter()
                        .find(|n| {
                            n.get("name").and_then(Value::as_str).is_some_and(|x| x.trim().eq_ignore_ascii_case(&name))
                                && created_since(n, since)
                        })
                        .cloned()
                });
                Ok(found)
            }
            Exists::ListedSince { field, filter } => {
                let name = input
                    .get("attributes")
                    .and_then(|a| a.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                let mut page: i64 = 1;
                loop {
                    let extra = [
                        (Arg { name: "page", ty: "Int!" }, Value::from(page)),
                        (Arg { name: "per", ty: "Int!" }, Value::from(MAX_PER)),
                    ];
                    let sel = format!("nodes {{ {select} }} pagination {{ page pages }}");
                    let req = graphql::build("query", field, &[], &Map::new(), &extra, filter, &sel);
                    let value = self.query(false, &req, field, out, i).await?;
                    let nodes = value.get("nodes").and_then(Value::as_array).cloned().unwrap_or_default();
                    let found = nodes.iter().rev().find(|n| {
                        n.get("name").and_then(Value::as_str).is_some_and(|x| x.trim() == name)
                            && created_since(n, since)
                    });
                    if let Some(n) = found {
                        return Ok(Some(n.clone()));
                    }
                    let pages = value.pointer("/pagination/pages").and_then(Value::as_i64).unwrap_or(page);
                    if page >= pages || nodes.is_empty() {
                        return Ok(None);
                    }
                    page += 1;
                }
            }
        }
    }

    /// [`KnowBe4::existing`], asked again with growing waits until the object shows or the
    /// policy's recovery window has passed: a slow commit may land after the client gave up.
    async fn recover(
        &self,
        exists: Exists,
        select: &str,
        input: &Map<String, Value>,
        since: chrono::DateTime<chrono::Utc>,
        out: &mut Output,
        i: usize,
    ) -> Result<Option<Value>, ApiError> {
        let window = self.caller.policy().recovery_window;
        let started = tokio::time::Instant::now();
        let mut wait = std::time::Duration::from_millis(500);
        loop {
            if let Some(found) = self.existing(exists, select, input, since, out, i).await? {
                return Ok(Some(found));
            }
            let left = window.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(None);
            }
            tokio::time::sleep(wait.min(left)).await;
            wait = (wait * 2).min(std::time::Duration::from_secs(8));
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn mutate(
        &self,
        field: &str,
        args: &[Arg],
        kind: Out,
        write: Write,
        input: &Map<String, Value>,
        out: &mut Output,
        i: usize,
    ) -> bool {
        let req = graphql::build("mutation", field, args, input, &[], "", &payload_select(kind));
        let safety = if matches!(write, Write::Idempotent) { Safety::Idempotent } else { Safety::NotIdempotent };
        let since = chrono::Utc::now();
        let mut sends = 0;
        let mut after_unknown = false;
        loop {
            sends += 1;
            let body = match self.send(false, &req, field, safety, out, i).await {
                Ok(body) => body,
                Err(CallError::Api(e)) => return out.fail(i, e),
                Err(CallError::Ambiguous(message)) => {
                    // A write is only sent again after a check found it not done (or, for
                    // tolerant writes, because a repeat is recognised), so the attempt budget
                    // of the retry policy applies.
                    if sends >= self.caller.policy().max_attempts {
                        let e = api(
                            ErrorKind::Transport,
                            None,
                            format!(
                                "the outcome of {field} is unknown after {sends} tries; not sending it again: {message}"
                            ),
                        );
                        return out.fail(i, e);
                    }
                    tokio::time::sleep(self.caller.policy().backoff(sends)).await;
                    match write {
                        Write::Create(exists) => {
                            let select = match kind {
                                Out::Node(s) | Out::NodeList(s) | Out::Nodes(s) => s,
                                _ => "id",
                            };
                            match self.recover(exists, select, input, since, out, i).await {
                                Ok(Some(node)) => {
                                    tracing::info!(connection = %self.connection, field, "The create's outcome was unknown; the object exists, so it is not sent again.");
                                    return emit(out, i, Ok(vec![node]));
                                }
                                Ok(None) => {
                                    tracing::info!(connection = %self.connection, field, "The create's outcome was unknown; the object does not exist, sending it again.");
                                    continue;
                                }
                                Err(e) => {
                                    let e = ApiError {
                                        body: None,
                                        message: format!(
                                            "the outcome of {field} is unknown ({message}), and checking whether it was done failed: {}",
                                            e.message
                                        ),
                                        ..e
                                    };
                                    return out.fail(i, e);
                                }
                            }
                        }
                        _ => {
                            after_unknown = true;
                            continue;
                        }
                    }
                }
            };
            let payload = match graphql::field_of(&body, field, field) {
                Ok(p) => p,
                Err(e) => return out.fail(i, e),
            };
            let errors = graphql::payload_errors(&payload);
            if errors.is_empty() {
                return emit(out, i, outputs(kind, field, &payload, input));
            }
            if let Write::Tolerant { done, refetch } = write {
                let all_done =
                    errors.iter().all(|e| done.iter().any(|(f, r)| e.field.as_deref() == Some(*f) && e.reason == *r));
                if after_unknown && all_done {
                    tracing::info!(connection = %self.connection, field, "The first send's outcome was unknown; the re-send shows it was done.");
                    let result = match refetch {
                        Some((get, var, select)) => {
                            let vars: Map<String, Value> =
                                [("id".to_owned(), input.get(var).cloned().unwrap_or(Value::Null))]
                                    .into_iter()
                                    .collect();
                            let req =
                                graphql::build("query", get, &[Arg { name: "id", ty: "Int!" }], &vars, &[], "", select);
                            self.query(false, &req, get, out, i).await.map(|n| vec![n])
                        }
                        None => Ok(done_outputs(kind, input)),
                    };
                    return emit(out, i, result);
                }
            }
            return out.fail(i, graphql::refused(field, &errors));
        }
    }

    /// Id-list mutations batched across documents.
    async fn bulk(
        &self,
        spec: &OpSpec,
        input_schema: &schemas::InputSchema,
        inputs: &[Input],
        out: &mut Output,
    ) -> Result<(), ConnectorError> {
        let Call::Bulk { field, ids: ids_arg, key, fixed, out: kind } = spec.call else {
            return Err(ConnectorError::Failed("not a bulk operation".to_owned()));
        };
        let mut items: Vec<Item> = Vec::with_capacity(inputs.len());
        let mut failed: HashSet<usize> = HashSet::new();
        for (i, input) in inputs.iter().enumerate() {
            match schemas::input_json(input_schema, &input.document, &input.parameters) {
                Ok(Value::Object(mut map)) => {
                    let ids = ids_of(map.get(ids_arg.name));
                    map.remove(ids_arg.name);
                    items.push(Item { key: map, ids });
                }
                other => {
                    items.push(Item { key: Map::new(), ids: Vec::new() });
                    failed.insert(i);
                    let e = invalid_input(other.err().unwrap_or_default());
                    if out.fail(i, e) {
                        return Ok(());
                    }
                }
            }
        }
        let select = payload_select(kind);
        let mut args: Vec<Arg> = key.to_vec();
        args.push(ids_arg);
        let mut nodes: HashMap<i64, Value> = HashMap::new();
        let valid: Vec<Item> = items
            .iter()
            .enumerate()
            .map(|(i, it)| if failed.contains(&i) { Item { key: it.key.clone(), ids: Vec::new() } } else { it.clone() })
            .collect();
        let chunks = bulk::plan(&valid, BULK_SIZE);
        tracing::debug!(connection = %self.connection, field, documents = inputs.len(), calls = chunks.len(), "Bulk operation planned.");
        for chunk in chunks {
            let mut live: Vec<usize> = chunk.inputs.iter().copied().filter(|m| !failed.contains(m)).collect();
            loop {
                let ids: Vec<i64> =
                    chunk.ids.iter().copied().filter(|id| live.iter().any(|m| items[*m].ids.contains(id))).collect();
                let Some(&first) = live.first() else { break };
                if ids.is_empty() {
                    break;
                }
                let mut vars = chunk.key.clone();
                vars.insert(ids_arg.name.to_owned(), Value::from(ids.clone()));
                let req = graphql::build("mutation", field, &args, &vars, &[], fixed, &select);
                let result = match self.send(false, &req, field, Safety::Idempotent, out, first).await {
                    Ok(body) => graphql::field_of(&body, field, field),
                    Err(CallError::Api(e)) => Err(e),
                    Err(CallError::Ambiguous(m)) => Err(api(ErrorKind::Transport, None, m)),
                };
                let payload = match result {
                    Ok(p) => p,
                    Err(e) => {
                        for m in live {
                            failed.insert(m);
                            if out.fail(m, e.clone()) {
                                return Ok(());
                            }
                        }
                        break;
                    }
                };
                let errors = graphql::payload_errors(&payload);
                if errors.is_empty() {
                    let empty = Map::new();
                    match outputs(kind, field, &payload, &empty) {
                        Ok(list) => {
                            for n in list {
                                if let Some(id) = n.get("id").and_then(Value::as_i64) {
                                    nodes.insert(id, n);
                                }
                            }
                        }
                        Err(e) => {
                            for m in live {
                                failed.insert(m);
                                if out.fail(m, e.clone()) {
                                    return Ok(());
                                }
                            }
                        }
                    }
                    break;
                }
                // Blame each error on the documents it names; the others are sent again.
                let mut blamed: Vec<(usize, Vec<PayloadError>)> = Vec::new();
                for e in &errors {
                    let named: Vec<usize> = match (&e.field, e.record_id) {
                        (Some(f), Some(r)) if f == ids_arg.name => {
                            live.iter().copied().filter(|m| items[*m].ids.contains(&r)).collect()
                        }
                        _ => Vec::new(),
                    };
                    let targets = if named.is_empty() { live.clone() } else { named };
                    for t in targets {
                        match blamed.iter_mut().find(|(m, _)| *m == t) {
                            Some((_, list)) => list.push(e.clone()),
                            None => blamed.push((t, vec![e.clone()])),
                        }
                    }
                }
                blamed.sort_by_key(|(m, _)| *m);
                for (m, errs) in blamed {
                    failed.insert(m);
                    if out.fail(m, graphql::refused(field, &errs)) {
                        return Ok(());
                    }
                }
                live.retain(|m| !failed.contains(m));
            }
        }
        for (i, item) in items.iter().enumerate() {
            if failed.contains(&i) {
                continue;
            }
            let mut seen = HashSet::new();
            for n in item.ids.iter().filter(|id| seen.insert(**id)).filter_map(|id| nodes.get(id)) {
                out.ok(i, document(n));
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Connector for KnowBe4 {
    fn validate(&self, op: &OperationRef<'_>, input: &Input) -> Result<(), Vec<FieldError>> {
        let object = op.object.unwrap_or("");
        let schema = schemas::SCHEMAS.for_validation(object, op.action)?;
        schemas::input_json(schema, &input.document, &input.parameters).map(|_| ())
    }

    async fn execute(&self, op: &OperationRef<'_>, inputs: &[Input], out: &mut Output) -> Result<(), ConnectorError> {
        let object = op.object.unwrap_or("");
        let spec = ops::find(object, op.action)
            .ok_or_else(|| ConnectorError::Failed(format!("knowbe4 has no operation '{object}' '{}'", op.action)))?;
        let input_schema = schemas::SCHEMAS.get(object, op.action).map_err(ConnectorError::Failed)?;
        tracing::debug!(connection = %self.connection, step = op.step, object, action = op.action, documents = inputs.len(), "KnowBe4 step.");
        if matches!(spec.call, Call::Bulk { .. }) {
            return self.bulk(spec, input_schema, inputs, out).await;
        }
        for (i, input) in inputs.iter().enumerate() {
            let value = match schemas::input_json(input_schema, &input.document, &input.parameters) {
                Ok(Value::Object(map)) => map,
                other => {
                    let e = invalid_input(other.err().unwrap_or_default());
                    if out.fail(i, e) {
                        return Ok(());
                    }
                    continue;
                }
            };
            let stop = match spec.call {
                Call::Get { field, select, what } => self.get(field, select, what, &value, out, i).await,
                Call::List { field, args, select, partner } => {
                    self.list(field, args, select, partner, &value, out, i).await
                }
                Call::Mutate { field, args, out: kind, write } => {
                    self.mutate(field, args, kind, write, &value, out, i).await
                }
                Call::Bulk { .. } => false,
            };
            if stop || out.must_stop() {
                return Ok(());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_of_payloads() {
        let input = json!({"trainingCampaignId": 3, "userId": 4});
        let input = input.as_object().unwrap();
        let got = outputs(Out::Flag { field: "node", name: "added" }, "x", &json!({"node": true}), input).unwrap();
        assert_eq!(got, vec![json!({"trainingCampaignId": 3, "userId": 4, "added": true})]);
        let got = outputs(
            Out::FlagPerId { ids: "ids", name: "deleted" },
            "x",
            &json!({"node": true}),
            json!({"ids": [1, 2]}).as_object().unwrap(),
        )
        .unwrap();
        assert_eq!(got, vec![json!({"id": 1, "deleted": true}), json!({"id": 2, "deleted": true})]);
        let got = outputs(Out::NodeList("id"), "x", &json!({"node": [{"id": 1}, {"id": 2}]}), input).unwrap();
        assert_eq!(got.len(), 2);
        assert!(outputs(Out::Node("id"), "x", &json!({"node": null}), input).is_err());
        assert_eq!(done_outputs(Out::Nodes("id"), json!({"ids": [9]}).as_object().unwrap()), vec![json!({"id": 9})]);
    }

    #[test]
    fn created_since_tolerates_clock_skew() {
        let now = chrono::Utc::now();
        let at = |d: chrono::Duration| json!({"createdAt": (now + d).to_rfc3339()});
        assert!(created_since(&at(chrono::Duration::seconds(1)), now));
        assert!(created_since(&at(chrono::Duration::seconds(-60)), now));
        assert!(!created_since(&at(chrono::Duration::seconds(-3600)), now));
        assert!(!created_since(&json!({}), now));
    }
}
