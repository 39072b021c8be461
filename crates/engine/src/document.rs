//! Documents: data bytes plus string properties.
//!
//! Properties are shared between documents until one of them writes (copy on write), so a
//! million documents read from one file carry one property map, not a million.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// The property map behind `Properties`.
pub type PropertyMap = BTreeMap<String, String>;

static EMPTY: PropertyMap = BTreeMap::new();

/// Document properties: name to text value. Reads go through `Deref` to a `BTreeMap`; writes
/// (`insert`, `extend`, ...) go through `DerefMut`, which copies the map first when another
/// document shares it. Cloning is cheap.
#[derive(Clone, Default)]
pub struct Properties(Option<Arc<PropertyMap>>);

impl Properties {
    pub fn new() -> Properties {
        Properties(None)
    }

    /// True when both are the same shared map (or both empty), so they are equal without
    /// comparing.
    pub fn same_as(&self, other: &Properties) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Deref for Properties {
    type Target = PropertyMap;

    fn deref(&self) -> &PropertyMap {
        self.0.as_deref().unwrap_or(&EMPTY)
    }
}

impl DerefMut for Properties {
    fn deref_mut(&mut self) -> &mut PropertyMap {
        Arc::make_mut(self.0.get_or_insert_with(Default::default))
    }
}

impl PartialEq for Properties {
    fn eq(&self, other: &Properties) -> bool {
        self.same_as(other) || **self == **other
    }
}

impl Eq for Properties {}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl From<PropertyMap> for Properties {
    fn from(map: PropertyMap) -> Properties {
        if map.is_empty() { Properties(None) } else { Properties(Some(Arc::new(map))) }
    }
}

impl FromIterator<(String, String)> for Properties {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Properties {
        PropertyMap::from_iter(iter).into()
    }
}

impl Extend<(String, String)> for Properties {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, iter: I) {
        let mut iter = iter.into_iter().peekable();
        if iter.peek().is_some() {
            (**self).extend(iter);
        }
    }
}

impl<'a> IntoIterator for &'a Properties {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl serde::Serialize for Properties {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

/// Which try/catch entries a document descends from (internal). Shared like `Properties`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lineage(Option<Arc<Vec<u64>>>);

impl Lineage {
    pub(crate) fn push(&mut self, mark: u64) {
        Arc::make_mut(self.0.get_or_insert_with(Default::default)).push(mark);
    }

    pub(crate) fn marks(&self) -> &[u64] {
        self.0.as_deref().map(Vec::as_slice).unwrap_or(&[])
    }
}

/// One document flowing between steps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    pub data: Vec<u8>,
    pub properties: Properties,
    /// Try/Catch marks: which try/catch entry this document descends from. Internal.
    pub(crate) lineage: Lineage,
}

impl Document {
    pub fn new(data: impl Into<Vec<u8>>) -> Document {
        Document { data: data.into(), properties: Properties::new(), lineage: Lineage::default() }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_shared_until_written() {
        let a = Document::new("x").with_property("k", "v");
        let mut b = a.derive(b"y".to_vec());
        assert!(a.properties.same_as(&b.properties));
        b.properties.insert("k".to_owned(), "w".to_owned());
        assert_eq!(a.properties.get("k").map(String::as_str), Some("v"));
        assert_eq!(b.properties.get("k").map(String::as_str), Some("w"));
        assert!(!a.properties.same_as(&b.properties));
        assert_eq!(Properties::new(), PropertyMap::new().into());
        assert_eq!(serde_json::to_string(&a.properties).unwrap(), r#"{"k":"v"}"#);
    }
}
