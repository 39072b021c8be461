//! Documents: data bytes plus string properties.

use std::collections::BTreeMap;

/// Document properties: name to text value.
pub type Properties = BTreeMap<String, String>;

/// One document flowing between steps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    pub data: Vec<u8>,
    pub properties: Properties,
    /// Try/Catch marks: which try/catch entry this document descends from. Internal.
    pub(crate) lineage: Vec<u64>,
}

impl Document {
    pub fn new(data: impl Into<Vec<u8>>) -> Document {
        Document { data: data.into(), properties: Properties::new(), lineage: Vec::new() }
    }

    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Document {
        self.properties.insert(name.into(), value.into());
        self
    }

    /// A new document derived from this one: new data, same properties and lineage.
    pub fn derive(&self, data: Vec<u8>) -> Document {
        Document { data, properties: self.properties.clone(), lineage: self.lineage.clone() }
    }

    /// The data as text (invalid UTF-8 replaced).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }

    /// The data parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.data).map_err(|e| format!("document data is not JSON: {e}"))
    }
}
