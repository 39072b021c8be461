//! The connected Boomi Platform connector: validates inputs against their schemas, reads roles,
//! account groups and grants, and makes grant changes under the safety rules of
//! `docs/boomi-platform.md`:
//!
//! 1. No action deletes a user: there is no user object, and a global role is never deleted
//!    when that would leave the user without one (Boomi removes such a user from the account).
//! 2. Deleting a global role other than Standard User first makes sure the user holds Standard
//!    User (found by name; an idempotent create), whatever the user's roles look like, because
//!    another run may be revoking their other roles at the same moment; deleting Standard User
//!    when it is the user's only role is refused as a validation error. One user's global-role
//!    deletes are made one at a time in a process (a lock shared by every run).
//! 3. On an account that is not primary, account group lists yield nothing, with a warning.
//! 4. Roles whose id is not a standard UUID are marked `"assignable": false` and cannot be
//!    granted (their schemas refuse such a `roleId`).
//! 5. Every call is safe to repeat: a grant that already exists counts as created, a grant
//!    already gone as deleted.
//!
//! Grants of different users are sent a few at a time (the pacer keeps the account's rate);
//! the grants of one user are made in input order.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use connector_http::invalid_input;
use connector_http::reqwest::Method;
use engine::{ApiError, Connector, ConnectorError, Document, ErrorKind, FieldError, Input, OperationRef, Output};
use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

use crate::api::{Api, CallFailed, Trace, query_body};
use crate::ops::{self, Action, Object};
use crate::schemas;

/// Users whose grants are in flight at once; the pacer keeps the rate whatever this is.
const CONCURRENCY: usize = 4;

/// The role every user of the account keeps (safety rule 2), found by name.
pub const STANDARD_USER: &str = "Standard User";

/// The document property that says what a create or delete did: `created`, `already_existed`,
/// `deleted` or `already_gone`.
pub const OUTCOME: &str = "boomi_outcome";

/// One connection of one run.
pub(crate) struct Boomi {
    pub connection: String,
    /// The account the connection works on (the simulator's in `--sandbox`).
    pub account_id: String,
    pub api: Api,
    /// Whether the account is primary (has account groups), asked once.
    pub primary: OnceCell<bool>,
    /// The id of the Standard User role, looked up once.
    pub standard_user: OnceCell<String>,
}

/// What one input gave: the exchanges to dump and its documents or its error.
struct Done {
    input: usize,
    trace: Trace,
    result: Result<Vec<Document>, ApiError>,
}

/// The grant a global-role delete is about.
#[derive(Clone, Debug)]
struct Target {
    user_id: String,
    role_id: String,
    id: Option<String>,
}

/// The lock of one user's global roles in this process, shared by every run and connection.
fn user_lock(account_id: &str, user_id: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    use std::sync::{Arc, Mutex, OnceLock, Weak};
    static LOCKS: OnceLock<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    locks.retain(|_, w| w.strong_count() > 0);
    let key = format!("{account_id}\u{0}{}", user_id.to_lowercase());
    if let Some(lock) = locks.get(&key).and_then(Weak::upgrade) {
        return lock;
    }
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    locks.insert(key, Arc::downgrade(&lock));
    lock
}

/// Whether `id` is a standard UUID (8-4-4-4-12 hexadecimal digits): Boomi assigns only such roles.
pub fn is_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `(roleId, userId, accountId)` of a conceptual `AccountUserRole` id (URL-safe base64 of
/// `roleId|userId|accountId`), when it is one.
fn decode_id(id: &str) -> Option<(String, String, String)> {
    let engine = GeneralPurpose::new(
        &URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let text = String::from_utf8(engine.decode(id).ok()?).ok()?;
    let mut parts = text.split('|');
    let (role, user, account) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || role.is_empty() || user.is_empty() || account.is_empty() {
        return None;
    }
    Some((role.to_owned(), user.to_owned(), account.to_owned()))
}

fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

fn document(value: &Value, outcome: Option<&str>) -> Document {
    let doc = Document::new(serde_json::to_vec(value).unwrap_or_default());
    match outcome {
        Some(o) => doc.with_property(OUTCOME, o),
        None => doc,
    }
}

fn api_error(e: CallFailed) -> ApiError {
    e.to_api_error()
}

/// Rule 2's refusal.
fn last_role(user_id: &str) -> ApiError {
    ApiError {
        body: None,
        kind: ErrorKind::Validation,
        status: None,
        message: format!(
            "user {user_id} holds no global role but {STANDARD_USER}; removing it would remove them from the Boomi \
             account, and this connector never removes users"
        ),
        details: vec![FieldError { field: "roleId".to_owned(), reason: "last_role".to_owned() }],
    }
}

/// A grant that is already gone: the input, marked deleted.
fn gone(map: &Map<String, Value>) -> Vec<Document> {
    let mut doc = map.clone();
    doc.insert("deleted".to_owned(), Value::Bool(true));
    vec![document(&Value::Object(doc), Some("already_gone"))]
}

/// Pushes one input's exchanges and results; `true` when the step must stop.
fn emit(out: &mut Output, done: Done) -> bool {
    for exchange in done.trace {
        out.exchange(done.input, exchange);
    }
    match done.result {
        Ok(docs) => {
            for d in docs {
                out.ok(done.input, d);
            }
            false
        }
        Err(e) => out.fail(done.input, e),
    }
}

impl Boomi {
    /// A delete's `accountId` (list output carries one) must be this connection's account.
    fn check_account(&self, action: &str, map: &Map<String, Value>) -> Result<(), Vec<FieldError>> {
        match map.get("accountId") {
            Some(Value::String(a)) if action == "delete" && *a != self.account_id => {
                Err(vec![FieldError { field: "accountId".to_owned(), reason: "not_this_account".to_owned() }])
            }
            _ => Ok(()),
        }
    }

    /// Role documents say whether the role can be assigned (safety rule 4).
    fn shape(object: Object, mut record: Value) -> Value {
        if let (Object::Role, Some(obj)) = (object, record.as_object_mut()) {
            let assignable = obj.get("id").and_then(Value::as_str).is_some_and(is_uuid);
            obj.insert("assignable".to_owned(), Value::Bool(assignable));
        }
        record
    }

    /// Whether the account is primary: a primary account has account groups (at least "All
    /// Accounts"); another account has none, or is refused with a message about primary accounts.
    async fn is_primary(&self, trace: &mut Trace) -> Result<bool, ApiError> {
        let primary = self
            .primary
            .get_or_try_init(|| async {
                let body = query_body(&Map::new());
                match self
                    .api
                    .call(Method::POST, &["AccountGroup", "query"], Some(&body), "AccountGroup query", trace)
                    .await
                {
                    Ok(page) => Ok(page.get("result").and_then(Value::as_array).is_some_and(|r| !r.is_empty())),
                    Err(e)
                        if matches!(e.status, Some(400 | 403 | 404))
                            && e.message.to_ascii_lowercase().contains("primary") =>
                    {
                        Ok(false)
                    }
                    Err(e) => Err(api_error(e)),
                }
            })
            .await?;
        Ok(*primary)
    }

    /// The id of the Standard User role, found by name (a default role, `accountId` "1", first).
    async fn standard_user(&self, trace: &mut Trace) -> Result<String, ApiError> {
        let id =
            self.standard_user
                .get_or_try_init(|| async {
                    let filters: Map<String, Value> = [("name".to_owned(), json!(STANDARD_USER))].into_iter().collect();
                    let roles = self.api.query(Object::Role, &filters, trace).await.map_err(api_error)?;
                    let id_of = |r: &Value| r.get("id").and_then(Value::as_str).map(str::to_owned);
                    let default = roles.iter().find(|r| r.get("accountId").and_then(Value::as_str) == Some("1"));
                    default.or(roles.first()).and_then(id_of).ok_or_else(|| ApiError { body: None,
                    kind: ErrorKind::Api,
                    status: None,
                    message: format!(
                        "the account has no role named '{STANDARD_USER}', which a user keeps when their last global \
                         role is removed; nothing was changed"
                    ),
                    details: Vec::new(),
                })
                })
                .await?;
        Ok(id.clone())
    }

    /// `get` and `list`.
    async fn read(
        &self,
        op: &OperationRef<'_>,
        object: Object,
        action: Action,
        map: &Map<String, Value>,
        trace: &mut Trace,
    ) -> Result<Vec<Document>, ApiError> {
        let name = object.api_name();
        if action == Action::Get {
            let id = text(map, "id").unwrap_or_default();
            let record = self
                .api
                .call(Method::GET, &[name, id], None, &format!("{name} get"), trace)
                .await
                .map_err(api_error)?;
            return Ok(vec![document(&Self::shape(object, record), None)]);
        }
        if object.needs_primary() && !self.is_primary(trace).await? {
            tracing::warn!(
                connection = %self.connection,
                step = op.step,
                account = %self.account_id,
                "Account {} is not a primary account; account groups exist only on primary accounts, so '{} list' \
                 yields no documents.",
                self.account_id,
                op.object.unwrap_or_default(),
            );
            return Ok(Vec::new());
        }
        let records = self.api.query(object, map, trace).await.map_err(api_error)?;
        tracing::debug!(connection = %self.connection, object = name, records = records.len(), "Listed.");
        Ok(records.into_iter().map(|r| document(&Self::shape(object, r), None)).collect())
    }

    /// The records of a query; when none match and the user id has capitals, the query is
    /// repeated with it in lower case (Boomi keeps user ids as they were first written).
    async fn query_user(
        &self,
        object: Object,
        mut filters: Map<String, Value>,
        trace: &mut Trace,
    ) -> Result<Vec<Value>, ApiError> {
        let records = self.api.query(object, &filters, trace).await.map_err(api_error)?;
        let user = text(&filters, "userId").unwrap_or_default().to_owned();
        if !records.is_empty() || user == user.to_lowercase() {
            return Ok(records);
        }
        filters.insert("userId".to_owned(), Value::String(user.to_lowercase()));
        self.api.query(object, &filters, trace).await.map_err(api_error)
    }

    /// A user's global grants.
    async fn user_roles(&self, user_id: &str, trace: &mut Trace) -> Result<Vec<Value>, ApiError> {
        let filters: Map<String, Value> = [("userId".to_owned(), json!(user_id))].into_iter().collect();
        self.query_user(Object::AccountUserRole, filters, trace).await
    }

    /// The user and role of a global-role delete; `None` when its id names no grant.
    async fn target(&self, map: &Map<String, Value>, trace: &mut Trace) -> Result<Option<Target>, ApiError> {
        let id = text(map, "id").map(str::to_owned);
        if let (Some(user_id), Some(role_id)) = (text(map, "userId"), text(map, "roleId")) {
            return Ok(Some(Target { user_id: user_id.to_owned(), role_id: role_id.to_owned(), id }));
        }
        let Some(id) = id else {
            return Err(invalid_input(vec![FieldError { field: String::new(), reason: "anyOf".to_owned() }]));
        };
        if let Some((role_id, user_id, _)) = decode_id(&id).filter(|(_, _, account)| *account == self.account_id) {
            return Ok(Some(Target { user_id, role_id, id: Some(id) }));
        }
        // Not an id this connector can read: look for it among every grant of the account.
        let all = self.api.query(Object::AccountUserRole, &Map::new(), trace).await.map_err(api_error)?;
        let found = all.iter().find(|g| g.get("id").and_then(Value::as_str) == Some(id.as_str()));
        Ok(found.map(|g| Target {
            user_id: g.get("userId").and_then(Value::as_str).unwrap_or_default().to_owned(),
            role_id: g.get("roleId").and_then(Value::as_str).unwrap_or_default().to_owned(),
            id: Some(id.clone()),
        }))
    }

    /// Creates a grant; one that already exists counts as created (rule 5).
    async fn create(
        &self,
        object: Object,
        map: &Map<String, Value>,
        trace: &mut Trace,
    ) -> Result<(Value, &'static str), ApiError> {
        let name = object.api_name();
        let mut body = Map::new();
        if object == Object::AccountUserRole {
            body.insert("accountId".to_owned(), Value::String(self.account_id.clone()));
        }
        for (k, v) in map {
            body.insert(k.clone(), v.clone());
        }
        let body = Value::Object(body);
        match self.api.call(Method::POST, &[name], Some(&body), &format!("{name} create"), trace).await {
            Ok(record) => Ok((record, "created")),
            Err(e) if e.already_exists() => {
                tracing::info!(connection = %self.connection, object = name, "The grant already exists; counted as created.");
                let mut filters = Map::new();
                for key in ["accountGroupId", "userId", "roleId"] {
                    if let Some(v) = map.get(key) {
                        filters.insert(key.to_owned(), v.clone());
                    }
                }
                let existing = self.query_user(object, filters, trace).await.ok().and_then(|r| r.into_iter().next());
                Ok((existing.unwrap_or(body), "already_existed"))
            }
            Err(e) => Err(api_error(e)),
        }
    }

    /// Deletes a global grant under rules 1, 2 and 5. The global-role changes of one user are
    /// made one at a time in this process (every run shares the lock).
    async fn delete_global(&self, map: &Map<String, Value>, trace: &mut Trace) -> Result<Vec<Document>, ApiError> {
        let Some(target) = self.target(map, trace).await? else {
            return Ok(gone(map));
        };
        let lock = user_lock(&self.account_id, &target.user_id);
        let _held = lock.lock().await;
        let roles = self.user_roles(&target.user_id, trace).await?;
        let field = |g: &Value, k: &str| g.get(k).and_then(Value::as_str).map(str::to_owned);
        let by_id = target.id.as_deref().and_then(|id| roles.iter().find(|g| field(g, "id").as_deref() == Some(id)));
        let grant = by_id.or_else(|| roles.iter().find(|g| field(g, "roleId").as_deref() == Some(&target.role_id)));
        let Some(mut grant) = grant.cloned() else {
            return Ok(gone(map));
        };
        let user_id = field(&grant, "userId").unwrap_or(target.user_id);
        let standard = self.standard_user(trace).await?;
        let mut assigned = false;
        if field(&grant, "roleId").as_deref() == Some(standard.as_str()) {
            if roles.len() == 1 {
                return Err(last_role(&user_id));
            }
        } else {
            // Whatever this read says, another run may be revoking the user's other roles at
            // this moment: Standard User is made sure of first (an idempotent create), so the
            // user always keeps a global role.
            let grant_standard: Map<String, Value> =
                [("userId".to_owned(), json!(user_id)), ("roleId".to_owned(), json!(standard))].into_iter().collect();
            let (_, outcome) = self.create(Object::AccountUserRole, &grant_standard, trace).await?;
            assigned = outcome == "created";
            if assigned {
                tracing::info!(connection = %self.connection, user = %user_id, "Assigned {STANDARD_USER} before removing one of the user's global roles.");
            }
        }
        let id = field(&grant, "id").unwrap_or_default();
        let outcome =
            match self.api.call(Method::DELETE, &["AccountUserRole", &id], None, "AccountUserRole delete", trace).await
            {
                Ok(_) => "deleted",
                Err(e) if e.not_found() => "already_gone",
                Err(e) => return Err(api_error(e)),
            };
        if let Some(obj) = grant.as_object_mut() {
            obj.insert("deleted".to_owned(), Value::Bool(true));
            if assigned {
                obj.insert("standardUserAssigned".to_owned(), Value::Bool(true));
            }
        }
        Ok(vec![document(&grant, Some(outcome))])
    }

    /// Deletes a group grant (rule 5: one already gone counts as deleted).
    async fn delete_group(&self, map: &Map<String, Value>, trace: &mut Trace) -> Result<Vec<Document>, ApiError> {
        let mut record = match text(map, "id") {
            Some(_) => Value::Object(map.clone()),
            None => {
                let mut filters = Map::new();
                for key in ["accountGroupId", "userId", "roleId"] {
                    if let Some(v) = map.get(key) {
                        filters.insert(key.to_owned(), v.clone());
                    }
                }
                match self.query_user(Object::AccountGroupUserRole, filters, trace).await?.into_iter().next() {
                    Some(r) => r,
                    None => return Ok(gone(map)),
                }
            }
        };
        let id = record.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let outcome = match self
            .api
            .call(Method::DELETE, &["AccountGroupUserRole", &id], None, "AccountGroupUserRole delete", trace)
            .await
        {
            Ok(_) => "deleted",
            Err(e) if e.not_found() => "already_gone",
            Err(e) => return Err(api_error(e)),
        };
        if let Some(obj) = record.as_object_mut() {
            obj.insert("deleted".to_owned(), Value::Bool(true));
        }
        Ok(vec![document(&record, Some(outcome))])
    }

    async fn change(
        &self,
        object: Object,
        action: Action,
        map: &Map<String, Value>,
        trace: &mut Trace,
    ) -> Result<Vec<Document>, ApiError> {
        match (object, action) {
            (_, Action::Create) => self.create(object, map, trace).await.map(|(r, o)| vec![document(&r, Some(o))]),
            (Object::AccountUserRole, Action::Delete) => self.delete_global(map, trace).await,
            (_, Action::Delete) => self.delete_group(map, trace).await,
            _ => Err(invalid_input(vec![FieldError { field: String::new(), reason: "unknown_operation".to_owned() }])),
        }
    }

    /// The user whose grants an input changes (inputs of one user are made in order).
    fn user_key(map: &Map<String, Value>) -> Option<String> {
        if let Some(user) = text(map, "userId") {
            return Some(user.to_lowercase());
        }
        text(map, "id").and_then(decode_id).map(|(_, user, _)| user.to_lowercase())
    }

    /// Rule 2 for a whole batch before any change, when one refusal must stop the step: each
    /// user's global roles are read once and the batch's deletes are applied to them in order.
    /// Returns the first refused input.
    async fn precheck_deletes(
        &self,
        parsed: &[Result<Map<String, Value>, ApiError>],
        out: &mut Output,
    ) -> Option<Done> {
        let mut held: HashMap<String, Vec<String>> = HashMap::new();
        for (i, p) in parsed.iter().enumerate() {
            let Ok(map) = p else { continue };
            let mut trace = Trace::new();
            let checked = async {
                let Some(target) = self.target(map, &mut trace).await? else { return Ok(()) };
                let roles = match held.entry(target.user_id.to_lowercase()) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => {
                        let records = self.user_roles(&target.user_id, &mut trace).await?;
                        let ids =
                            records.iter().filter_map(|g| g.get("roleId").and_then(Value::as_str).map(str::to_owned));
                        e.insert(ids.collect())
                    }
                };
                if !roles.contains(&target.role_id) {
                    return Ok(());
                }
                let standard = self.standard_user(&mut trace).await?;
                if target.role_id == standard && roles.len() == 1 {
                    return Err(last_role(&target.user_id));
                }
                roles.retain(|r| *r != target.role_id);
                if target.role_id != standard && !roles.contains(&standard) {
                    roles.push(standard);
                }
                Ok(())
            }
            .await;
            match checked {
                Ok(()) => {
                    for exchange in trace {
                        out.exchange(i, exchange);
                    }
                }
                Err(e) => return Some(Done { input: i, trace, result: Err(e) }),
            }
        }
        None
    }

    /// Creates and deletes: users a few at a time, each user's inputs in order.
    async fn changes(
        &self,
        op: &OperationRef<'_>,
        object: Object,
        action: Action,
        parsed: Vec<Result<Map<String, Value>, ApiError>>,
        out: &mut Output,
    ) {
        let stop_on_error = !op.error_response;
        let precheck = stop_on_error && object == Object::AccountUserRole && action == Action::Delete;
        let refused = if precheck { self.precheck_deletes(&parsed, out).await } else { None };
        if let Some(refused) = refused {
            emit(out, refused);
            return;
        }
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut by_user: HashMap<String, usize> = HashMap::new();
        let mut sequential = false;
        for (i, p) in parsed.iter().enumerate() {
            match p.as_ref().ok().map(Self::user_key) {
                Some(Some(user)) => match by_user.entry(user) {
                    Entry::Occupied(e) => groups[*e.get()].push(i),
                    Entry::Vacant(e) => {
                        e.insert(groups.len());
                        groups.push(vec![i]);
                    }
                },
                Some(None) => sequential = true,
                None => groups.push(vec![i]),
            }
        }
        if sequential {
            // An id whose user cannot be read from it: keep the whole batch in order.
            groups = vec![(0..parsed.len()).collect()];
        }
        tracing::debug!(connection = %self.connection, object = object.api_name(), inputs = parsed.len(), users = groups.len(), "Grant changes.");
        let stop = AtomicBool::new(false);
        let (parsed, stop) = (&parsed, &stop);
        let results: Vec<Vec<Done>> = futures::stream::iter(groups)
            .map(|group| async move {
                let mut done = Vec::with_capacity(group.len());
                for input in group {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let mut trace = Trace::new();
                    let result = match &parsed[input] {
                        Ok(map) => self.change(object, action, map, &mut trace).await,
                        Err(e) => Err(e.clone()),
                    };
                    if result.is_err() && stop_on_error {
                        stop.store(true, Ordering::Relaxed);
                    }
                    done.push(Done { input, trace, result });
                }
                done
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut all: Vec<Done> = results.into_iter().flatten().collect();
        all.sort_by_key(|d| d.input);
        // Every grant change that completed is reported, those of other users after a failure
        // too: access changes are audited (the engine records them when the run stops).
        for done in all {
            emit(out, done);
        }
    }
}

#[async_trait::async_trait]
impl Connector for Boomi {
    fn validate(&self, op: &OperationRef<'_>, input: &Input) -> Result<(), Vec<FieldError>> {
        let object = op.object.unwrap_or("");
        let schema = schemas::SCHEMAS.for_validation(object, op.action)?;
        let map = schemas::input_json(schema, &input.document, &input.parameters)?;
        self.check_account(op.action, &map)
    }

    async fn execute(&self, op: &OperationRef<'_>, inputs: &[Input], out: &mut Output) -> Result<(), ConnectorError> {
        let object_name = op.object.unwrap_or("");
        let (object, action) = ops::find(object_name, op.action).ok_or_else(|| {
            ConnectorError::Failed(format!("boomi_platform has no operation '{object_name}' '{}'", op.action))
        })?;
        let schema = schemas::SCHEMAS.get(object_name, op.action).map_err(ConnectorError::Failed)?;
        tracing::debug!(connection = %self.connection, step = op.step, object = object_name, action = op.action, documents = inputs.len(), "Boomi Platform step.");
        let parsed: Vec<Result<Map<String, Value>, ApiError>> = inputs
            .iter()
            .map(|input| {
                schemas::input_json(schema, &input.document, &input.parameters)
                    .and_then(|map| self.check_account(op.action, &map).map(|()| map))
                    .map_err(invalid_input)
            })
            .collect();
        match action {
            Action::Get | Action::List => {
                for (input, p) in parsed.into_iter().enumerate() {
                    let mut trace = Trace::new();
                    let result = match p {
                        Ok(map) => self.read(op, object, action, &map, &mut trace).await,
                        Err(e) => Err(e),
                    };
                    if emit(out, Done { input, trace, result }) {
                        return Ok(());
                    }
                }
            }
            Action::Create | Action::Delete => self.changes(op, object, action, parsed, out).await,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        assert!(is_uuid("fcb6e2d0-0ca8-11e2-a477-1231381987a5"));
        assert!(is_uuid("FCB6E2D0-0CA8-11E2-A477-1231381987A5"));
        assert!(!is_uuid("7c1e6a0b-39d2-4f8e-b5a1-0d4f2c9e8b7a61"), "13 characters in the last group");
        assert!(!is_uuid("fcb6e2d0-0ca8-11e2-a477"));
        assert!(!is_uuid("gcb6e2d0-0ca8-11e2-a477-1231381987a5"));
        assert!(!is_uuid(""));
    }

    #[test]
    fn conceptual_ids() {
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("r-1|ann@example.com|acme-1");
        assert_eq!(decode_id(&id), Some(("r-1".into(), "ann@example.com".into(), "acme-1".into())));
        let padded = base64::engine::general_purpose::URL_SAFE.encode("r|u@x.io|a");
        assert_eq!(decode_id(&padded), Some(("r".into(), "u@x.io".into(), "a".into())));
        assert_eq!(decode_id("not base64!"), None);
        assert_eq!(decode_id(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("a|b")), None);
    }

    #[test]
    fn roles_say_whether_they_can_be_assigned() {
        let r = Boomi::shape(Object::Role, json!({"id": "fcb6e2d0-0ca8-11e2-a477-1231381987a5"}));
        assert_eq!(r["assignable"], true);
        let r = Boomi::shape(Object::Role, json!({"id": "7c1e6a0b-39d2-4f8e-b5a1-0d4f2c9e8b7a61"}));
        assert_eq!(r["assignable"], false);
        let g = Boomi::shape(Object::AccountGroup, json!({"id": "x"}));
        assert!(g.get("assignable").is_none());
    }
}
