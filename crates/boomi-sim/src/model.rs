//! The account's data and Boomi's rules over it: roles, users (the distinct `userId`s of the
//! global grants), global grants (`AccountUserRole`), account groups, group grants
//! (`AccountGroupUserRole`), and the query cursors behind `queryMore`.
//!
//! Conceptual ids: an `AccountUserRole` id is the unpadded URL-safe base64 of
//! `roleId|userId|accountId`, an `AccountGroupUserRole` id that of `roleId|userId|accountGroupId`
//! (the `userId` as the user was first created). URL-safe, so an id goes into a path as it is.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::filter;
use crate::reply::ApiError;

/// Boomi's default Standard User role.
pub const STANDARD_USER_ROLE_ID: &str = "fcb6e2d0-0ca8-11e2-a477-1231381987a5";
/// Boomi's default Administrator role.
pub const ADMINISTRATOR_ROLE_ID: &str = "fcb6dd44-0ca8-11e2-a477-1231381987a5";
/// Boomi's default Production Support role.
pub const PRODUCTION_SUPPORT_ROLE_ID: &str = "fcb6e3b6-0ca8-11e2-a477-1231381987a5";
/// Boomi's default Support role.
pub const SUPPORT_ROLE_ID: &str = "fcb6e474-0ca8-11e2-a477-1231381987a5";
/// A global role whose id is not a standard UUID (13 characters in its last group); it is held
/// by some seeded users but cannot be assigned through the API.
pub const NON_UUID_ROLE_ID: &str = "7c1e6a0b-39d2-4f8e-b5a1-0d4f2c9e8b7a61";

/// Results per query page.
pub(crate) const PAGE_SIZE: usize = 100;
/// Paged queries whose tokens are kept; older ones are forgotten (bounded memory in long runs).
pub(crate) const KEPT_QUERIES: usize = 1000;
/// Most ids in one bulk GET.
pub(crate) const BULK_MAX: usize = 100;

/// The API objects the simulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Object {
    AccountUserRole,
    Role,
    AccountGroup,
    AccountGroupUserRole,
}

impl Object {
    pub fn parse(name: &str) -> Option<Object> {
        Some(match name {
            "AccountUserRole" => Object::AccountUserRole,
            "Role" => Object::Role,
            "AccountGroup" => Object::AccountGroup,
            "AccountGroupUserRole" => Object::AccountGroupUserRole,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Object::AccountUserRole => "AccountUserRole",
            Object::Role => "Role",
            Object::AccountGroup => "AccountGroup",
            Object::AccountGroupUserRole => "AccountGroupUserRole",
        }
    }

    /// The properties a `QueryFilter` may name.
    pub fn filterable(self) -> &'static [&'static str] {
        match self {
            Object::AccountUserRole => &["accountId", "userId", "roleId"],
            Object::Role => &["name", "parentId"],
            Object::AccountGroup => &["id", "accountId", "name", "defaultGroup", "autoSubscribeAlertLevel"],
            Object::AccountGroupUserRole => &["accountGroupId", "userId", "roleId"],
        }
    }
}

/// A role (default, custom, or a non-assignable one with a non-UUID id).
#[derive(Clone, Debug)]
pub(crate) struct Role {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub parent_id: Option<String>,
    pub privileges: Vec<&'static str>,
    pub assignable: bool,
}

/// A user of the account.
#[derive(Clone, Debug)]
pub(crate) struct User {
    /// The email as first created; the map key is its lowercase form.
    pub user_id: String,
    pub first_name: String,
    pub last_name: String,
    pub logged_in: bool,
    /// Created through the API (an invitation was sent).
    pub invited: bool,
}

/// A global grant.
#[derive(Clone, Debug)]
pub(crate) struct UserRole {
    pub id: String,
    pub user_key: String,
    pub role_id: String,
}

/// An account group.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub id: String,
    pub name: String,
    pub default_group: bool,
    pub alert_level: &'static str,
    /// (resourceId, resourceName) of the sub-accounts in the group.
    pub resources: Vec<(String, String)>,
}

/// A role a user holds within an account group.
#[derive(Clone, Debug)]
pub(crate) struct GroupRole {
    pub id: String,
    pub group_id: String,
    pub user_key: String,
    pub role_id: String,
}

/// The rest of a query: a snapshot of every match, taken by the query, and where the next page starts.
struct Cursor {
    object: Object,
    query_no: u64,
    items: Arc<Vec<Value>>,
    offset: usize,
}

/// The whole account.
pub(crate) struct Db {
    pub account_id: String,
    pub primary: bool,
    pub roles: Vec<Role>,
    pub users: BTreeMap<String, User>,
    pub user_roles: Vec<UserRole>,
    pub groups: Vec<Group>,
    pub group_roles: Vec<GroupRole>,
    pub invitations: u64,
    pub users_removed: u64,
    cursors: HashMap<String, Cursor>,
    /// Query numbers that have cursors, oldest first.
    paged: VecDeque<u64>,
    queries: u64,
}

fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text.as_bytes())
}

/// The conceptual id of a global grant.
pub(crate) fn user_role_id(role_id: &str, user_id: &str, account_id: &str) -> String {
    b64(&format!("{role_id}|{user_id}|{account_id}"))
}

/// The conceptual id of a group grant.
pub(crate) fn group_role_id(role_id: &str, user_id: &str, group_id: &str) -> String {
    b64(&format!("{role_id}|{user_id}|{group_id}"))
}

fn str_field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(ApiError::malformed(format!("{name} must be a string"))),
    }
}

fn required<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a str, ApiError> {
    match str_field(body, name)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(ApiError::malformed(format!("{name} is required"))),
    }
}

fn notify_user(body: &Map<String, Value>) -> Result<Option<bool>, ApiError> {
    match body.get("notifyUser") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
        Some(_) => Err(ApiError::malformed("notifyUser must be a boolean")),
    }
}

fn email_like(user_id: &str) -> bool {
    let trimmed = user_id.trim();
    trimmed == user_id
        && !user_id.contains(char::is_whitespace)
        && user_id.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
}

impl Db {
    pub fn new(account_id: &str, primary: bool) -> Self {
        Db {
            account_id: account_id.to_string(),
            primary,
            roles: Vec::new(),
            users: BTreeMap::new(),
            user_roles: Vec::new(),
            groups: Vec::new(),
            group_roles: Vec::new(),
            invitations: 0,
            users_removed: 0,
            cursors: HashMap::new(),
            paged: VecDeque::new(),
            queries: 0,
        }
    }

    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    fn user(&self, key: &str) -> Option<&User> {
        self.users.get(key)
    }

    fn user_id_of<'a>(&'a self, key: &'a str) -> &'a str {
        self.user(key).map_or(key, |u| u.user_id.as_str())
    }

    // ---- JSON forms -------------------------------------------------------------------------

    pub fn role_json(role: &Role) -> Value {
        let privileges: Vec<Value> = role.privileges.iter().map(|p| json!({ "@type": "", "name": p })).collect();
        let mut out = json!({
            "@type": "Role",
            "id": role.id,
            "accountId": role.account_id,
            "name": role.name,
            "Description": role.description,
        });
        if let Some(parent) = &role.parent_id {
            out["parentId"] = json!(parent);
        }
        out["Privileges"] = json!({ "@type": "Privileges", "Privilege": privileges });
        out
    }

    fn names_into(&self, out: &mut Value, key: &str) {
        if let Some(user) = self.user(key) {
            if !user.first_name.is_empty() {
                out["firstName"] = json!(user.first_name);
            }
            if !user.last_name.is_empty() {
                out["lastName"] = json!(user.last_name);
            }
        }
    }

    fn user_role_json(&self, grant: &UserRole) -> Value {
        let mut out = json!({
            "@type": "AccountUserRole",
            "id": grant.id,
            "accountId": self.account_id,
            "userId": self.user_id_of(&grant.user_key),
            "roleId": grant.role_id,
        });
        self.names_into(&mut out, &grant.user_key);
        out
    }

    fn group_json(&self, group: &Group) -> Value {
        let resources: Vec<Value> = group
            .resources
            .iter()
            .map(|(id, name)| json!({ "@type": "Resource", "resourceId": id, "resourceName": name, "objectType": "ACCOUNT" }))
            .collect();
        json!({
            "@type": "AccountGroup",
            "id": group.id,
            "accountId": self.account_id,
            "name": group.name,
            "defaultGroup": group.default_group,
            "autoSubscribeAlertLevel": group.alert_level,
            "Resources": { "@type": "Resources", "Resource": resources },
        })
    }

    fn group_role_json(&self, grant: &GroupRole) -> Value {
        let mut out = json!({
            "@type": "AccountGroupUserRole",
            "id": grant.id,
            "accountGroupId": grant.group_id,
            "userId": self.user_id_of(&grant.user_key),
            "roleId": grant.role_id,
        });
        self.names_into(&mut out, &grant.user_key);
        out
    }

    fn all_json(&self, object: Object) -> Vec<Value> {
        match object {
            Object::AccountUserRole => self.user_roles.iter().map(|g| self.user_role_json(g)).collect(),
            Object::Role => self.roles.iter().map(Db::role_json).collect(),
            Object::AccountGroup if self.primary => self.groups.iter().map(|g| self.group_json(g)).collect(),
            Object::AccountGroupUserRole if self.primary => {
                self.group_roles.iter().map(|g| self.group_role_json(g)).collect()
            }
            Object::AccountGroup | Object::AccountGroupUserRole => Vec::new(),
        }
    }

    // ---- queries ----------------------------------------------------------------------------

    /// `POST /{Object}/query`.
    pub fn query(&mut self, object: Object, body: &Value) -> Result<Value, ApiError> {
        let expr = filter::parse_query(body, object.name(), object.filterable()).map_err(ApiError::rule)?;
        let items: Vec<Value> =
            self.all_json(object).into_iter().filter(|v| expr.as_ref().is_none_or(|e| e.matches(v))).collect();
        self.queries += 1;
        let query_no = self.queries;
        Ok(self.page(object, query_no, Arc::new(items), 0))
    }

    /// `POST /{Object}/queryMore` with the bare token as the body.
    pub fn query_more(&mut self, object: Object, token: &str) -> Result<Value, ApiError> {
        let Some(cursor) = self.cursors.get(token) else {
            return Err(ApiError::rule(format!("Unknown queryToken for {}", object.name())));
        };
        if cursor.object != object {
            return Err(ApiError::rule(format!(
                "The queryToken belongs to a {} query, not to {}",
                cursor.object.name(),
                object.name()
            )));
        }
        let (query_no, items, offset) = (cursor.query_no, Arc::clone(&cursor.items), cursor.offset);
        Ok(self.page(object, query_no, items, offset))
    }

    fn page(&mut self, object: Object, query_no: u64, items: Arc<Vec<Value>>, offset: usize) -> Value {
        let start = offset.min(items.len());
        let end = (start + PAGE_SIZE).min(items.len());
        let result: Vec<Value> = items[start..end].to_vec();
        let mut out = json!({ "@type": "QueryResult", "numberOfResults": result.len() });
        if end < items.len() {
            // The same page always gets the same token, so a retried queryMore is harmless.
            let token = b64(&format!("{}|{query_no}|{end}", object.name()));
            out["queryToken"] = json!(token);
            self.cursors.insert(token, Cursor { object, query_no, items, offset: end });
            if start == 0 && !self.paged.contains(&query_no) {
                self.paged.push_back(query_no);
                let evicted = if self.paged.len() > KEPT_QUERIES { self.paged.pop_front() } else { None };
                if let Some(old) = evicted {
                    self.cursors.retain(|_, c| c.query_no != old);
                }
            }
        }
        out["result"] = Value::Array(result);
        out
    }

    // ---- roles and groups -------------------------------------------------------------------

    /// `GET /Role/{id}`.
    pub fn get_role(&self, id: &str) -> Result<Value, ApiError> {
        self.role(id).map(Db::role_json).ok_or_else(|| ApiError::not_found(format!("Role not found: {id}")))
    }

    /// `POST /Role/bulk`: `{"type": "GET", "request": [{"id": ...}, ...]}`, at most 100 ids.
    pub fn bulk_roles(&self, body: &Value) -> Result<Value, ApiError> {
        let Some(obj) = body.as_object() else {
            return Err(ApiError::malformed("the bulk request must be a JSON object"));
        };
        match obj.get("type").and_then(Value::as_str) {
            Some("GET") => {}
            _ => return Err(ApiError::rule("A bulk request's type must be \"GET\"")),
        }
        let Some(requests) = obj.get("request").and_then(Value::as_array) else {
            return Err(ApiError::malformed("request must be an array of {\"id\": ...}"));
        };
        if requests.len() > BULK_MAX {
            return Err(ApiError::rule(format!(
                "A bulk GET takes at most {BULK_MAX} ids; this one has {}",
                requests.len()
            )));
        }
        let mut responses = Vec::with_capacity(requests.len());
        for (index, req) in requests.iter().enumerate() {
            let Some(id) = req.get("id").and_then(Value::as_str) else {
                return Err(ApiError::malformed(format!("request[{index}] needs a string id")));
            };
            let response = match self.role(id) {
                Some(role) => json!({
                    "@type": "BulkResponse", "Result": Db::role_json(role), "index": index, "id": id, "statusCode": 200,
                }),
                None => json!({
                    "@type": "BulkResponse", "index": index, "id": id, "statusCode": 400,
                    "errorMessage": format!("No such role: {id}"),
                }),
            };
            responses.push(response);
        }
        Ok(json!({ "@type": "BulkResult", "response": responses }))
    }

    /// `GET /AccountGroup/{id}`; a non-primary account has none.
    pub fn get_group(&self, id: &str) -> Result<Value, ApiError> {
        self.groups
            .iter()
            .find(|g| g.id == id && self.primary)
            .map(|g| self.group_json(g))
            .ok_or_else(|| ApiError::not_found(format!("AccountGroup not found: {id}")))
    }

    fn assignable_role(&self, role_id: &str) -> Result<&Role, ApiError> {
        let Some(role) = self.role(role_id) else {
            return Err(ApiError::rule(format!("Role not found: {role_id}")));
        };
        if !role.assignable {
            return Err(ApiError::rule(format!("Role {role_id} ({}) cannot be assigned through the API", role.name)));
        }
        Ok(role)
    }

    // ---- global grants ----------------------------------------------------------------------

    /// `POST /AccountUserRole`. An unknown `userId` creates the user and counts an invitation.
    /// A grant the user already holds answers 400 with a message containing "already exists".
    pub fn create_user_role(&mut self, body: &Value) -> Result<Value, ApiError> {
        let Some(obj) = body.as_object() else {
            return Err(ApiError::malformed("the AccountUserRole body must be a JSON object"));
        };
        let account_id = required(obj, "accountId")?;
        if account_id != self.account_id {
            return Err(ApiError::rule(format!(
                "accountId {account_id} in the body does not match the account {} of the URL",
                self.account_id
            )));
        }
        let user_id = required(obj, "userId")?;
        if !email_like(user_id) {
            return Err(ApiError::rule(format!("userId must be an email address, got {user_id:?}")));
        }
        let role_id = required(obj, "roleId")?;
        let first_name = str_field(obj, "firstName")?.unwrap_or_default();
        let last_name = str_field(obj, "lastName")?.unwrap_or_default();
        let notify = notify_user(obj)?;
        self.assignable_role(role_id)?;
        let key = user_id.to_lowercase();
        if self.user_roles.iter().any(|g| g.user_key == key && g.role_id == role_id) {
            return Err(ApiError::rule(format!(
                "AccountUserRole already exists: user {user_id} already holds role {role_id} in account {}",
                self.account_id
            )));
        }
        if !self.users.contains_key(&key) {
            self.users.insert(
                key.clone(),
                User {
                    user_id: user_id.to_string(),
                    first_name: first_name.to_string(),
                    last_name: last_name.to_string(),
                    logged_in: false,
                    invited: true,
                },
            );
            self.invitations += 1;
            tracing::debug!(user = user_id, "boomi-sim: new user invited");
        }
        let canonical = self.user_id_of(&key).to_string();
        let grant = UserRole {
            id: user_role_id(role_id, &canonical, &self.account_id),
            user_key: key,
            role_id: role_id.to_string(),
        };
        let mut out = self.user_role_json(&grant);
        if let Some(notify) = notify {
            out["notifyUser"] = json!(notify);
        }
        self.user_roles.push(grant);
        Ok(out)
    }

    /// `DELETE /AccountUserRole/{id}`. Deleting a user's last global grant removes the user from
    /// the account, with their group grants. Returns whether the user was removed.
    pub fn delete_user_role(&mut self, id: &str) -> Result<bool, ApiError> {
        let Some(at) = self.user_roles.iter().position(|g| g.id == id) else {
            return Err(ApiError::not_found(format!("AccountUserRole not found: {id}")));
        };
        let grant = self.user_roles.remove(at);
        if self.user_roles.iter().any(|g| g.user_key == grant.user_key) {
            return Ok(false);
        }
        self.users.remove(&grant.user_key);
        self.group_roles.retain(|g| g.user_key != grant.user_key);
        self.users_removed += 1;
        tracing::debug!(user = grant.user_key, "boomi-sim: last role deleted, user removed from the account");
        Ok(true)
    }

    // ---- group grants -----------------------------------------------------------------------

    /// `POST /AccountGroupUserRole`: needs a primary account, an existing group, a user of the
    /// account who has logged in, and an assignable role.
    pub fn create_group_role(&mut self, body: &Value) -> Result<Value, ApiError> {
        let Some(obj) = body.as_object() else {
            return Err(ApiError::malformed("the AccountGroupUserRole body must be a JSON object"));
        };
        let group_id = required(obj, "accountGroupId")?;
        let user_id = required(obj, "userId")?;
        let role_id = required(obj, "roleId")?;
        str_field(obj, "firstName")?;
        str_field(obj, "lastName")?;
        let notify = notify_user(obj)?;
        if !self.primary {
            return Err(ApiError::rule(format!(
                "Account {} is not a primary account and has no account groups",
                self.account_id
            )));
        }
        if !self.groups.iter().any(|g| g.id == group_id) {
            return Err(ApiError::rule(format!("AccountGroup not found: {group_id}")));
        }
        let key = user_id.to_lowercase();
        let Some(user) = self.user(&key) else {
            return Err(ApiError::rule(format!(
                "User {user_id} is not a user of account {}; give them a global role first",
                self.account_id
            )));
        };
        if !user.logged_in {
            return Err(ApiError::rule(format!(
                "User {user_id} has not logged in yet; a user must log in before being added to an account group"
            )));
        }
        let canonical = user.user_id.clone();
        self.assignable_role(role_id)?;
        if self.group_roles.iter().any(|g| g.user_key == key && g.role_id == role_id && g.group_id == group_id) {
            return Err(ApiError::rule(format!(
                "AccountGroupUserRole already exists: user {user_id} already holds role {role_id} in account group {group_id}"
            )));
        }
        let grant = GroupRole {
            id: group_role_id(role_id, &canonical, group_id),
            group_id: group_id.to_string(),
            user_key: key,
            role_id: role_id.to_string(),
        };
        let mut out = self.group_role_json(&grant);
        if let Some(notify) = notify {
            out["notifyUser"] = json!(notify);
        }
        self.group_roles.push(grant);
        Ok(out)
    }

    /// `DELETE /AccountGroupUserRole/{id}`.
    pub fn delete_group_role(&mut self, id: &str) -> Result<(), ApiError> {
        let Some(at) = self.group_roles.iter().position(|g| g.id == id) else {
            return Err(ApiError::not_found(format!("AccountGroupUserRole not found: {id}")));
        };
        self.group_roles.remove(at);
        Ok(())
    }

    // ---- simulator-only ---------------------------------------------------------------------

    /// Marks a user as having logged in (as if they accepted their invitation).
    pub fn mark_logged_in(&mut self, user_id: &str) -> bool {
        match self.users.get_mut(&user_id.to_lowercase()) {
            Some(user) => {
                user.logged_in = true;
                true
            }
            None => false,
        }
    }

    /// Everything, for tests: users with their global and group roles, roles, groups, counters.
    pub fn state_json(&self) -> Value {
        let role_name = |id: &str| self.role(id).map(|r| r.name.clone()).unwrap_or_default();
        let group_name = |id: &str| self.groups.iter().find(|g| g.id == id).map(|g| g.name.clone()).unwrap_or_default();
        let users: Vec<Value> = self
            .users
            .iter()
            .map(|(key, user)| {
                let global: Vec<Value> = self
                    .user_roles
                    .iter()
                    .filter(|g| &g.user_key == key)
                    .map(|g| json!({ "id": g.id, "roleId": g.role_id, "roleName": role_name(&g.role_id) }))
                    .collect();
                let group: Vec<Value> = self
                    .group_roles
                    .iter()
                    .filter(|g| &g.user_key == key)
                    .map(|g| {
                        json!({
                            "id": g.id,
                            "accountGroupId": g.group_id,
                            "accountGroupName": group_name(&g.group_id),
                            "roleId": g.role_id,
                            "roleName": role_name(&g.role_id),
                        })
                    })
                    .collect();
                json!({
                    "userId": user.user_id,
                    "firstName": user.first_name,
                    "lastName": user.last_name,
                    "loggedIn": user.logged_in,
                    "invited": user.invited,
                    "globalRoles": global,
                    "groupRoles": group,
                })
            })
            .collect();
        json!({
            "accountId": self.account_id,
            "primary": self.primary,
            "users": users,
            "roles": self.roles.iter().map(|r| json!({
                "id": r.id, "name": r.name, "assignable": r.assignable,
                "default": r.account_id == "1",
            })).collect::<Vec<_>>(),
            "accountGroups": self.all_json(Object::AccountGroup),
            "invitations": self.invitations,
            "users_removed": self.users_removed,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{KEPT_QUERIES, Object};
    use crate::config::SimConfig;
    use crate::seed;

    #[test]
    fn old_query_tokens_are_forgotten_beyond_the_cap() {
        let mut db = seed::build(&SimConfig { seed_users: 120, ..SimConfig::default() });
        let all = json!({ "QueryFilter": {} });
        let first = db.query(Object::AccountUserRole, &all).unwrap_or_default();
        let token = first["queryToken"].as_str().unwrap_or_default().to_string();
        assert!(db.query_more(Object::AccountUserRole, &token).is_ok());
        for _ in 0..KEPT_QUERIES {
            assert!(db.query(Object::AccountUserRole, &all).is_ok());
        }
        assert!(db.query_more(Object::AccountUserRole, &token).is_err());
        assert!(db.cursors.len() <= KEPT_QUERIES * 2);
    }
}
