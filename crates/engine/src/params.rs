//! Evaluating parameters against a document.

use std::cell::OnceCell;
use std::collections::HashMap;

use compiler::jq::{self, JqFilter};
use compiler::{ExecutionValue, Param, ParamSource};

use crate::document::Document;

/// What parameters can see besides the document.
pub(crate) struct ParamEnv<'a> {
    pub run_id: &'a str,
    pub process_name: &'a str,
    pub process_properties: &'a HashMap<String, String>,
    pub batch_len: usize,
    pub jq_cache: &'a mut HashMap<String, JqFilter>,
}

/// A document with its JSON parsed at most once.
pub(crate) struct DocView<'d> {
    pub doc: &'d Document,
    json: OnceCell<Result<serde_json::Value, String>>,
}

impl<'d> DocView<'d> {
    pub fn new(doc: &'d Document) -> DocView<'d> {
        DocView { doc, json: OnceCell::new() }
    }

    pub fn json(&self) -> Result<&serde_json::Value, String> {
        self.json.get_or_init(|| self.doc.json()).as_ref().map_err(Clone::clone)
    }
}

/// Text of a JSON value as a parameter: strings raw, null as nothing, others as JSON.
fn value_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Evaluates one parameter. `Err` is the document error message.
pub(crate) fn eval(param: &Param, view: &DocView<'_>, env: &mut ParamEnv<'_>) -> Result<String, String> {
    let found: Option<String> = match &param.source {
        ParamSource::Static(s) => Some(s.clone()),
        ParamSource::CurrentData => Some(view.doc.text().into_owned()),
        ParamSource::Json(pointer) => match view.json() {
            Ok(v) => v.pointer(pointer).and_then(value_text),
            Err(e) if param.default.is_none() => return Err(format!("{}: {e}", param.label)),
            Err(_) => None,
        },
        ParamSource::Jq(code) => {
            let filter = match env.jq_cache.get(code) {
                Some(f) => f,
                None => {
                    let f = jq::compile(code).map_err(|e| format!("{}: {e}", param.label))?;
                    env.jq_cache.entry(code.clone()).or_insert(f)
                }
            };
            match view.json() {
                Ok(v) => jq::run(filter, v.clone())
                    .map_err(|e| format!("{}: {e}", param.label))?
                    .first()
                    .and_then(value_text),
                Err(e) if param.default.is_none() => return Err(format!("{}: {e}", param.label)),
                Err(_) => None,
            }
        }
        ParamSource::DocumentProperty(name) => view.doc.properties.get(name).cloned(),
        ParamSource::ProcessProperty(name) => env.process_properties.get(name).cloned(),
        ParamSource::Date { format, offset_secs } => {
            let t = chrono::Utc::now() + chrono::Duration::seconds(*offset_secs);
            Some(t.format(format).to_string())
        }
        ParamSource::Execution(ExecutionValue::RunId) => Some(env.run_id.to_owned()),
        ParamSource::Execution(ExecutionValue::ProcessName) => Some(env.process_name.to_owned()),
        ParamSource::Execution(ExecutionValue::DocumentCount) => Some(env.batch_len.to_string()),
    };
    match found {
        Some(v) => Ok(v),
        None => match &param.default {
            Some(d) => Ok(d.clone()),
            None => Err(format!("{} found nothing and has no default", param.label)),
        },
    }
}

/// Evaluates a list of parameters.
pub(crate) fn eval_all(params: &[Param], view: &DocView<'_>, env: &mut ParamEnv<'_>) -> Result<Vec<String>, String> {
    params.iter().map(|p| eval(p, view, env)).collect()
}
