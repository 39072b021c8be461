//! The JSON Schemas of the operations' inputs (`schemas/boomi_platform/<object>.<action>.json`),
//! embedded in the binary, and how an input becomes the JSON they validate.
//!
//! A schema's `x-stepwise-input` says where the input comes from: `document` (the document's
//! JSON, with no step parameters), `parameters` (the step's parameters, as strings: Boomi's
//! query arguments are strings), or `parameters_or_document` (the `id` parameter if the step
//! has parameters, else the document's `id`).

use engine::FieldError;
use indexmap::IndexMap;
use serde_json::{Map, Value};

/// Every operation's input schema (`schemas/boomi_platform/<object>.<action>.json`, embedded in the
/// binary), compiled on first use; `get` is `Err` when one is missing or does not compile (a bug).
pub static SCHEMAS: connector_http::SchemaSet = connector_http::SchemaSet::new(connector_http::embed_schemas!(
    "../../../schemas/boomi_platform/";
    "account_user_role.create",
    "account_user_role.delete",
    "account_user_role.list",
    "role.get",
    "role.list",
    "account_group.get",
    "account_group.list",
    "account_group_user_role.create",
    "account_group_user_role.delete",
    "account_group_user_role.list",
));

pub use connector_http::InputSchema;
/// Where an operation's input comes from.
pub use connector_http::InputSource as Source;

fn one(field: impl Into<String>, reason: &str) -> Vec<FieldError> {
    vec![FieldError { field: field.into(), reason: reason.to_owned() }]
}

/// The step parameters as the JSON object the schema validates (Boomi's query arguments are
/// strings).
pub(crate) fn parameters_json(parameters: &IndexMap<String, String>) -> Map<String, Value> {
    parameters.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
}

/// The input of an operation as a JSON object, checked against its schema.
pub fn input_json(
    input: &InputSchema,
    document: &engine::Document,
    parameters: &IndexMap<String, String>,
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let value = match input.source {
        Source::Parameters => Value::Object(parameters_json(parameters)),
        Source::ParametersOrDocument if !parameters.is_empty() => Value::Object(parameters_json(parameters)),
        Source::ParametersOrDocument => {
            // The document's `id` only: a record from an earlier step carries other fields too.
            let id = if document.data.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                connector_http::document_json(document)?.get("id").cloned()
            };
            Value::Object(id.map(|id| ("id".to_owned(), id)).into_iter().collect())
        }
        Source::Document => connector_http::document_input(document, parameters)?,
    };
    let mut errors = input.schema.validate(&value);
    if errors.is_empty() {
        return match value {
            Value::Object(map) => Ok(map),
            _ => Err(one("", "type")),
        };
    }
    for e in &mut errors {
        // A role id that is not a standard UUID: Boomi cannot assign such roles.
        if e.field == "roleId" && e.reason == "pattern" {
            e.reason = "not_assignable".to_owned();
        }
    }
    Err(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const STANDARD_USER: &str = "fcb6e2d0-0ca8-11e2-a477-1231381987a5";

    fn check(object: &str, action: &str, doc: Value) -> Vec<(String, String)> {
        let s = SCHEMAS.get(object, action).unwrap();
        let d = engine::Document::new(serde_json::to_vec(&doc).unwrap());
        match input_json(s, &d, &IndexMap::new()) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|f| (f.field, f.reason)).collect(),
        }
    }

    fn params(object: &str, action: &str, p: &[(&str, &str)]) -> Result<Map<String, Value>, Vec<FieldError>> {
        let s = SCHEMAS.get(object, action).unwrap();
        let map: IndexMap<String, String> = p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        input_json(s, &engine::Document::default(), &map)
    }

    fn p(f: &str, r: &str) -> (String, String) {
        (f.to_owned(), r.to_owned())
    }

    #[test]
    fn every_schema_compiles_with_a_source() {
        SCHEMAS.compile_all().unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn grants_need_a_user_and_an_assignable_role() {
        let ok = json!({"userId": "ann@example.com", "roleId": STANDARD_USER, "firstName": "Ann", "notifyUser": false});
        assert!(check("account_user_role", "create", ok).is_empty());
        assert_eq!(
            check("account_user_role", "create", json!({"userId": "ann@example.com"})),
            vec![p("roleId", "required")]
        );
        assert_eq!(
            check("account_user_role", "create", json!({"userId": "ann", "roleId": STANDARD_USER})),
            vec![p("userId", "format")]
        );
        let legacy = json!({"userId": "ann@example.com", "roleId": "7c1e6a0b-39d2-4f8e-b5a1-0d4f2c9e8b7a61"});
        assert_eq!(check("account_user_role", "create", legacy.clone()), vec![p("roleId", "not_assignable")]);
        let mut group = legacy;
        group["accountGroupId"] = json!("g1");
        assert_eq!(check("account_group_user_role", "create", group), vec![p("roleId", "not_assignable")]);
        assert_eq!(
            check(
                "account_user_role",
                "create",
                json!({"userId": "a@example.com", "roleId": STANDARD_USER, "accountId": "x"})
            ),
            vec![p("accountId", "additionalProperties")]
        );
        assert_eq!(
            check("account_group_user_role", "create", json!({"userId": "a@example.com", "roleId": STANDARD_USER})),
            vec![p("accountGroupId", "required")]
        );
    }

    #[test]
    fn deletes_take_an_id_or_the_grant_fields_and_accept_list_output() {
        assert!(check("account_user_role", "delete", json!({"id": "abc"})).is_empty());
        assert!(check("account_user_role", "delete", json!({"userId": "a@example.com", "roleId": "r"})).is_empty());
        let listed = json!({"@type": "AccountUserRole", "id": "abc", "accountId": "acme", "userId": "a@example.com",
                            "roleId": "r", "firstName": "A", "lastName": "B"});
        assert!(check("account_user_role", "delete", listed).is_empty());
        assert_eq!(check("account_user_role", "delete", json!({"userId": "a@example.com"})), vec![p("", "anyOf")]);
        assert_eq!(
            check("account_group_user_role", "delete", json!({"userId": "a@example.com", "roleId": "r"})),
            vec![p("", "anyOf")]
        );
        assert!(
            check(
                "account_group_user_role",
                "delete",
                json!({"accountGroupId": "g", "userId": "a@example.com", "roleId": "r"})
            )
            .is_empty()
        );
    }

    #[test]
    fn lists_take_filters_named_after_filterable_properties() {
        assert_eq!(
            params("account_user_role", "list", &[("userId", "a@example.com")]).unwrap(),
            json!({"userId": "a@example.com"}).as_object().unwrap().clone()
        );
        let e = params("account_user_role", "list", &[("email", "a@example.com")]).unwrap_err();
        assert_eq!(e[0].field, "email");
        assert!(
            params("account_group", "list", &[("defaultGroup", "true"), ("autoSubscribeAlertLevel", "warning")])
                .is_ok()
        );
        assert_eq!(params("account_group", "list", &[("defaultGroup", "yes")]).unwrap_err()[0].reason, "enum");
        assert_eq!(params("role", "list", &[("name", "")]).unwrap_err()[0].reason, "minLength");
    }

    #[test]
    fn gets_take_the_id_from_parameters_or_the_document() {
        assert_eq!(params("role", "get", &[("id", "r1")]).unwrap()["id"], "r1");
        let s = SCHEMAS.get("role", "get").unwrap();
        let doc = engine::Document::new(r#"{"@type": "AccountUserRole", "id": "g1", "roleId": "r"}"#);
        assert_eq!(input_json(s, &doc, &IndexMap::new()).unwrap()["id"], "g1");
        let e = input_json(s, &engine::Document::default(), &IndexMap::new()).unwrap_err();
        assert_eq!(e, one("id", "required"));
        let e = input_json(s, &engine::Document::new("nope"), &IndexMap::new()).unwrap_err();
        assert_eq!(e, one("", "json"));
    }

    #[test]
    fn documents_take_no_parameters() {
        let s = SCHEMAS.get("account_user_role", "create").unwrap();
        let map: IndexMap<String, String> = [("userId".to_owned(), "a@example.com".to_owned())].into_iter().collect();
        let e = input_json(s, &engine::Document::new("{}"), &map).unwrap_err();
        assert_eq!(e[0].field, "parameters/userId");
    }
}
