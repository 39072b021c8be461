//! Recorded documents: what entered each step of a run, kept when the process says
//! `record: errors` (runs that did not complete) or `record: all`, until they expire.

use std::collections::BTreeMap;

use serde::Serialize;

/// One document that entered a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedDocument {
    /// The step it entered.
    pub step: String,
    /// Its number among the documents that entered the step, from 1.
    pub seq: u64,
    /// Its properties.
    pub properties: BTreeMap<String, String>,
    /// Its bytes.
    #[serde(skip)]
    pub data: Vec<u8>,
}

/// How many documents of a step are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepDocuments {
    /// The step.
    pub step: String,
    /// How many of its documents are kept.
    pub count: u64,
}

pub(crate) fn properties_json(properties: &BTreeMap<String, String>) -> String {
    serde_json::to_string(properties).unwrap_or_else(|_| "{}".to_owned())
}

/// The stored properties; unreadable ones count as none.
pub(crate) fn parse_properties(text: &str) -> BTreeMap<String, String> {
    serde_json::from_str(text).unwrap_or_default()
}
