//! The JSON Schemas of the operations' inputs (`schemas/knowbe4/<object>.<action>.json`),
//! embedded in the binary, and how an input becomes the JSON they validate.
//!
//! A schema's `x-stepwise-input` says where the input comes from: `document` (the document's
//! JSON is the GraphQL arguments) or `parameters` (the step's parameters, whose text values are
//! converted to the types the schema declares: integers, booleans, and comma-separated lists).

use engine::FieldError;
use indexmap::IndexMap;
use serde_json::{Map, Value};

/// Every operation's input schema (`schemas/knowbe4/<object>.<action>.json`, embedded in the
/// binary), compiled on first use; `get` is `Err` when one is missing or does not compile (a bug).
pub static SCHEMAS: connector_http::SchemaSet = connector_http::SchemaSet::new(connector_http::embed_schemas!(
    "../../../schemas/knowbe4/";
    "user.create",
    "user.update",
    "user.get",
    "user.list",
    "user.archive",
    "user.unarchive",
    "group.create",
    "group.get",
    "group.list",
    "group.archive",
    "group.unarchive",
    "group.delete",
    "group_membership.add",
    "group_membership.remove",
    "training_campaign.create",
    "training_campaign.update",
    "training_campaign.get",
    "training_campaign.list",
    "training_campaign.delete",
    "close_training_campaign.update",
    "training_campaign_user.add",
    "training_campaign_user.remove",
    "phishing_campaign.create",
    "phishing_campaign.update",
    "phishing_campaign.get",
    "phishing_campaign.list",
    "phishing_campaign_activation.update",
    "phishing_campaign_run.update",
    "phishing_campaign_run.get",
    "phishing_campaign_run.list",
    "phishing_campaign_run.delete",
    "enrollment.get",
    "enrollment.list",
    "store_purchase.list",
    "template_topic.list",
    "phishing_campaign_recipient.list",
    "account.list",
));

pub use connector_http::InputSchema;
/// Where an operation's input comes from.
pub use connector_http::InputSource as Source;

fn declared_type<'a>(schema: &'a Value, name: &str) -> (Option<&'a str>, Option<&'a str>) {
    let prop = schema.pointer(&format!("/properties/{name}"));
    let ty = prop.and_then(|p| p.get("type")).and_then(Value::as_str);
    let item = prop.and_then(|p| p.pointer("/items/type")).and_then(Value::as_str);
    (ty, item)
}

fn scalar(text: &str, ty: Option<&str>) -> Value {
    let t = text.trim();
    match ty {
        Some("integer") => t.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::String(text.to_owned())),
        Some("number") => t
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(text.to_owned())),
        Some("boolean") => match t {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text.to_owned()),
        },
        _ => Value::String(text.to_owned()),
    }
}

/// The step parameters as the JSON object the schema validates: each text value converted to
/// the property's declared type (a list from comma-separated values, or from a JSON array).
pub fn parameters_json(schema: &Value, parameters: &IndexMap<String, String>) -> Value {
    let mut out = Map::new();
    for (name, text) in parameters {
        let value = match declared_type(schema, name) {
            (Some("array"), item) => {
                let trimmed = text.trim();
                if trimmed.starts_with('[') {
                    serde_json::from_str::<Value>(trimmed).unwrap_or_else(|_| Value::String(text.clone()))
                } else if trimmed.is_empty() {
                    Value::Array(Vec::new())
                } else {
                    Value::Array(trimmed.split(',').map(|part| scalar(part, item)).collect())
                }
            }
            (ty, _) => scalar(text, ty),
        };
        out.insert(name.clone(), value);
    }
    Value::Object(out)
}

/// The input of an operation as JSON, checked against its schema.
pub fn input_json(
    input: &InputSchema,
    document: &engine::Document,
    parameters: &IndexMap<String, String>,
) -> Result<Value, Vec<FieldError>> {
    let value = match input.source {
        Source::Parameters | Source::ParametersOrDocument => parameters_json(input.schema.raw(), parameters),
        Source::Document => connector_http::document_input(document, parameters)?,
    };
    let errors = input.schema.validate(&value);
    if errors.is_empty() { Ok(value) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reasons(object: &str, action: &str, doc: Value) -> Vec<(String, String)> {
        let s = SCHEMAS.get(object, action).unwrap();
        let d = engine::Document::new(serde_json::to_vec(&doc).unwrap());
        match input_json(s, &d, &IndexMap::new()) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|f| (f.field, f.reason)).collect(),
        }
    }

    fn params(object: &str, action: &str, p: &[(&str, &str)]) -> Result<Value, Vec<FieldError>> {
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
    fn user_create_mandatory_fields_and_formats() {
        assert!(reasons("user", "create", json!({"email": "a@example.com", "firstName": "Ann"})).is_empty());
        assert_eq!(reasons("user", "create", json!({"email": "a@example.com"})), vec![p("firstName", "required")]);
        assert_eq!(
            reasons("user", "create", json!({"email": "not-an-email", "firstName": "Ann"})),
            vec![p("email", "format")]
        );
        assert_eq!(
            reasons("user", "create", json!({"email": "a@example.com", "firstName": 7})),
            vec![p("firstName", "type")]
        );
        assert_eq!(
            reasons("user", "create", json!({"email": "a@example.com", "firstName": "A", "nickname": "x"})),
            vec![p("nickname", "additionalProperties")]
        );
    }

    #[test]
    fn group_names_are_limited() {
        let long = "x".repeat(129);
        assert_eq!(
            reasons("group", "create", json!({"attributes": {"name": long}})),
            vec![p("attributes/name", "maxLength")]
        );
        assert!(reasons("group", "create", json!({"attributes": {"name": "x".repeat(128)}})).is_empty());
        assert_eq!(
            reasons("group", "create", json!({"attributes": {"name": ""}})),
            vec![p("attributes/name", "minLength")]
        );
    }

    #[test]
    fn membership_needs_ids() {
        assert!(reasons("group_membership", "add", json!({"userIds": [1], "groupIds": [2]})).is_empty());
        assert_eq!(
            reasons("group_membership", "add", json!({"userIds": [], "groupIds": [2]})),
            vec![p("userIds", "minItems")]
        );
        assert_eq!(
            reasons("group_membership", "add", json!({"userIds": ["1"], "groupIds": [2]})),
            vec![p("userIds/0", "type")]
        );
        assert_eq!(reasons("group_membership", "remove", json!({"userIds": [1]})), vec![p("groupId", "required")]);
    }

    #[test]
    fn training_campaign_create_rules() {
        let ok = json!({"attributes": {"name": "Q1", "selectedContent": ["PurchasedCourse:1201"], "allUsers": true},
                        "endCampaignOption": "NO_END_DATE"});
        assert!(reasons("training_campaign", "create", ok).is_empty());
        let no_end = json!({"attributes": {"name": "Q1", "selectedContent": ["PurchasedCourse:1201"], "allUsers": true},
                            "endCampaignOption": "SPECIFY_DATE"});
        assert_eq!(reasons("training_campaign", "create", no_end), vec![p("attributes/endCampaignAtDate", "required")]);
        let nobody = json!({"attributes": {"name": "Q1", "selectedContent": ["PurchasedCourse:1201"]},
                            "endCampaignOption": "NO_END_DATE"});
        assert_eq!(reasons("training_campaign", "create", nobody), vec![p("attributes", "anyOf")]);
    }

    #[test]
    fn parameters_are_typed_by_the_schema() {
        assert_eq!(params("user", "get", &[("id", "10001")]).unwrap(), json!({"id": 10001}));
        assert_eq!(params("user", "get", &[("email", "a@example.com")]).unwrap(), json!({"email": "a@example.com"}));
        let e = params("user", "get", &[("id", "abc")]).unwrap_err();
        assert!(e.iter().any(|f| f.field == "id" && f.reason == "type"), "{e:?}");
        assert!(params("user", "get", &[]).is_err());
        assert_eq!(
            params("user", "list", &[("status", "ALL"), ("filterGroups", "1, 2"), ("managersOnly", "true")]).unwrap(),
            json!({"status": "ALL", "filterGroups": [1, 2], "managersOnly": true})
        );
        let e = params("user", "list", &[("status", "active")]).unwrap_err();
        assert_eq!(e, vec![FieldError { field: "status".into(), reason: "enum".into() }]);
        assert_eq!(params("group", "delete", &[("ids", "5")]).unwrap(), json!({"ids": [5]}));
        assert_eq!(
            params("training_campaign", "list", &[("statuses", "[\"CLOSED\"]")]).unwrap(),
            json!({"statuses": ["CLOSED"]})
        );
        let e = params("store_purchase", "list", &[("x", "1")]).unwrap_err();
        assert_eq!(e[0].reason, "additionalProperties");
    }

    #[test]
    fn documents_are_json_and_take_no_parameters() {
        let s = SCHEMAS.get("user", "create").unwrap();
        let e = input_json(s, &engine::Document::new("nope"), &IndexMap::new()).unwrap_err();
        assert_eq!(e[0].reason, "json");
        let map: IndexMap<String, String> = [("id".to_owned(), "1".to_owned())].into_iter().collect();
        let e = input_json(s, &engine::Document::new("{}"), &map).unwrap_err();
        assert_eq!(e[0].field, "parameters/id");
    }
}
