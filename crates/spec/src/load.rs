//! YAML text to a JSON value plus a map from JSON pointers to line and column.
//!
//! The JSON value is what the JSON Schema checks and what the typed spec is read from; the source
//! map lets every diagnostic name the line and column of the key it is about.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// The largest process file that is read at all (a process is configuration, not data).
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// The deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 64;

/// A 1-based line and column in the process file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub line: usize,
    pub col: usize,
}

/// Where each JSON pointer of the document starts in the YAML text.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    positions: HashMap<String, Location>,
}

impl SourceMap {
    /// The location of `pointer`, or of its nearest ancestor that has one.
    pub fn locate(&self, pointer: &str) -> Option<Location> {
        let mut p = pointer;
        loop {
            if let Some(loc) = self.positions.get(p) {
                return Some(*loc);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }
}

/// A parsed process file: the JSON value and where its parts are.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub value: serde_json::Value,
    pub source_map: SourceMap,
    /// Keys given more than once in one mapping. `value` keeps the first definition.
    pub duplicates: Vec<DuplicateKey>,
}

/// A key given again in the same mapping (YAML forbids it). The first definition is kept, so
/// that the rest of the file can still be checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateKey {
    /// JSON pointer of the key (of its first, kept definition).
    pub pointer: String,
    /// The key as written.
    pub key: String,
    /// Where the repeated key is.
    pub location: Option<Location>,
    /// Where the key is first given.
    pub first: Option<Location>,
    /// The repeated definition (not part of the loaded value).
    pub value: serde_json::Value,
}

/// Why a file could not be read as YAML at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoadError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is {size} bytes; process files are limited to {MAX_FILE_BYTES} bytes")]
    TooLarge { size: usize },
    #[error("the file is not UTF-8 text (is it a binary file?)")]
    NotText,
    #[error("not valid YAML: {message}")]
    Syntax { message: String, location: Option<Location> },
    #[error("the YAML is nested deeper than {MAX_DEPTH} levels")]
    TooDeep { location: Option<Location> },
    #[error("the file must hold one YAML mapping (name, start, steps, ...), found {found}")]
    NotAMapping { found: &'static str },
    #[error("{message}")]
    Unsupported { message: String, location: Option<Location> },
}

impl LoadError {
    /// Where in the file the problem is, when known.
    pub fn location(&self) -> Option<Location> {
        match self {
            LoadError::Syntax { location, .. }
            | LoadError::TooDeep { location }
            | LoadError::Unsupported { location, .. } => *location,
            _ => None,
        }
    }
}

/// Reads process file bytes into a JSON value and its source map.
///
/// Never panics and never hangs on hostile input: size and depth are bounded before the value is
/// built, and aliases are refused by serde_yaml's expansion limit. A key repeated in a mapping
/// is not an error here: the first definition is kept and the repeat is listed in `duplicates`.
pub fn load(bytes: &[u8]) -> Result<Loaded, LoadError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge { size: bytes.len() });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| LoadError::NotText)?;
    if text.contains('\0') {
        return Err(LoadError::NotText);
    }
    if text.trim().is_empty() || text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Err(LoadError::Empty);
    }
    // First pass: events with markers. This checks depth without recursion and records positions.
    let (source_map, key_locations) = build_source_map(text)?;
    let yaml: Node = serde_yaml::from_str(text).map_err(|e| LoadError::Syntax {
        message: strip_location(&e.to_string()),
        location: e.location().map(|l| Location { line: l.line(), col: l.column() }),
    })?;
    let mut repeats = Vec::new();
    let value = to_json(yaml, "", &mut repeats)?;
    if !value.is_object() {
        return Err(LoadError::NotAMapping { found: kind_of(&value) });
    }
    let duplicates = repeats
        .into_iter()
        .map(|(pointer, key, occurrence, value)| {
            let seen = key_locations.get(&pointer);
            DuplicateKey {
                location: seen.and_then(|l| l.get(occurrence)).copied(),
                first: seen.and_then(|l| l.first()).copied(),
                pointer,
                key,
                value,
            }
        })
        .collect();
    Ok(Loaded { value, source_map, duplicates })
}

/// A YAML node as serde_yaml reads it, except that a mapping keeps every entry in order (a
/// `serde_yaml::Value` refuses duplicate keys outright, which would stop all other checks).
enum Node {
    Scalar(serde_yaml::Value),
    Sequence(Vec<Node>),
    Mapping(Vec<(serde_yaml::Value, Node)>),
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> serde::de::Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Scalar(serde_yaml::Value::Bool(b)))
    }

    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<Node, E> {
        Ok(Node::Scalar(serde_yaml::Value::Number(i.into())))
    }

    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Node, E> {
        Ok(Node::Scalar(serde_yaml::Value::Number(u.into())))
    }

    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Node, E> {
        Ok(Node::Scalar(serde_yaml::Value::Number(f.into())))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Node, E> {
        Ok(Node::Scalar(serde_yaml::Value::String(s.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Node, E> {
        Ok(Node::Scalar(serde_yaml::Value::String(s)))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar(serde_yaml::Value::Null))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar(serde_yaml::Value::Null))
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        serde::Deserialize::deserialize(deserializer)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Sequence(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Node::Mapping(entries))
    }

    /// A tagged value (`!custom x`): kept as serde_yaml's `Tagged`, refused by `to_json`.
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        let de = serde::de::value::EnumAccessDeserializer::new(data);
        serde::Deserialize::deserialize(de).map(Node::Scalar)
    }
}

fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "nothing",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// Converts to JSON. `repeats` gets `(pointer of the key, key, which occurrence, value)` for every
/// key given again in the same mapping; only the first definition is kept.
fn to_json(
    node: Node,
    pointer: &str,
    repeats: &mut Vec<(String, String, usize, serde_json::Value)>,
) -> Result<serde_json::Value, LoadError> {
    use serde_yaml::Value as Y;
    Ok(match node {
        Node::Scalar(Y::Null) => serde_json::Value::Null,
        Node::Scalar(Y::Bool(b)) => serde_json::Value::Bool(b),
        Node::Scalar(Y::Number(n)) => {
            if let Some(i) = n.as_i64() {
                serde_json::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                serde_json::Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f).map(serde_json::Value::Number).ok_or_else(|| {
                    LoadError::Unsupported {
                        message: format!("at '{pointer}': the number {n} is not finite"),
                        location: None,
                    }
                })?
            }
        }
        Node::Scalar(Y::String(s)) => serde_json::Value::String(s),
        Node::Scalar(Y::Sequence(_) | Y::Mapping(_)) => {
            // Only tagged contents come through as whole values, and tags are refused above them.
            return Err(LoadError::Unsupported {
                message: format!("at '{pointer}': unexpected YAML value"),
                location: None,
            });
        }
        Node::Scalar(Y::Tagged(tagged)) => {
            return Err(LoadError::Unsupported {
                message: format!("at '{pointer}': YAML tags such as '{}' are not supported", tagged.tag),
                location: None,
            });
        }
        Node::Sequence(items) => serde_json::Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| to_json(v, &format!("{pointer}/{i}"), repeats))
                .collect::<Result<_, _>>()?,
        ),
        Node::Mapping(entries) => {
            let mut out = serde_json::Map::new();
            let mut occurrences: HashMap<String, usize> = HashMap::new();
            for (k, v) in entries {
                let key = match k {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".to_owned(),
                    _ => {
                        return Err(LoadError::Unsupported {
                            message: format!("at '{pointer}': mapping keys must be plain text"),
                            location: None,
                        });
                    }
                };
                let child = format!("{pointer}/{}", escape(&key));
                let v = to_json(v, &child, repeats)?;
                let seen = occurrences.entry(key.clone()).or_insert(0);
                if *seen > 0 {
                    repeats.push((child, key, *seen, v));
                } else {
                    out.insert(key, v);
                }
                *seen += 1;
            }
            serde_json::Value::Object(out)
        }
    })
}

/// Escapes one JSON pointer segment.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

enum Frame {
    /// `fresh` until the first key: a block mapping's start event is marked at that key's ':', so
    /// the mapping's own position is moved back to the first key.
    Mapping {
        pointer: String,
        key: Option<String>,
        fresh: bool,
    },
    Sequence {
        pointer: String,
        index: usize,
    },
}

/// Every occurrence of each mapping key, in document order, by the key's JSON pointer.
type KeyLocations = HashMap<String, Vec<Location>>;

struct Collector {
    stack: Vec<Frame>,
    positions: HashMap<String, Location>,
    keys: KeyLocations,
    too_deep: Option<Location>,
}

impl Collector {
    /// Called for every node in value position: returns the node's pointer.
    fn value_pointer(&mut self, mark: Location) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Sequence { pointer, index }) => {
                let p = format!("{pointer}/{index}");
                *index += 1;
                self.positions.entry(p.clone()).or_insert(mark);
                Some(p)
            }
            Some(Frame::Mapping { pointer, key, .. }) => key.take().map(|k| format!("{pointer}/{}", escape(&k))),
        }
    }

    /// True when the next scalar is a mapping key.
    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Mapping { key: None, .. }))
    }

    /// Records a mapping key (a plain text one when `text` is given) found at `loc`.
    fn key(&mut self, name: String, text: bool, loc: Location) {
        if let Some(Frame::Mapping { pointer, key, fresh }) = self.stack.last_mut() {
            if std::mem::take(fresh)
                && let Some(start) = self.positions.get_mut(pointer.as_str())
                && loc < *start
            {
                *start = loc;
            }
            if text {
                let p = format!("{pointer}/{}", escape(&name));
                self.positions.entry(p.clone()).or_insert(loc);
                self.keys.entry(p).or_default().push(loc);
            }
            *key = Some(name);
        }
    }
}

impl MarkedEventReceiver for Collector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.too_deep.is_some() {
            return;
        }
        let loc = Location { line: mark.line(), col: mark.col() + 1 };
        match ev {
            Event::Scalar(value, ..) => {
                if self.expecting_key() {
                    self.key(value, true, loc);
                } else {
                    self.value_pointer(loc);
                }
            }
            Event::Alias(_) => {
                if self.expecting_key() {
                    self.key("*alias".to_owned(), false, loc);
                } else {
                    self.value_pointer(loc);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.too_deep = Some(loc);
                    return;
                }
                let pointer = if self.expecting_key() {
                    // A complex key; give it a name nobody can refer to.
                    self.key("*complex".to_owned(), false, loc);
                    "/*complex".to_owned()
                } else {
                    self.value_pointer(loc).unwrap_or_default()
                };
                self.positions.entry(pointer.clone()).or_insert(loc);
                if matches!(ev, Event::MappingStart(..)) {
                    self.stack.push(Frame::Mapping { pointer, key: None, fresh: true });
                } else {
                    self.stack.push(Frame::Sequence { pointer, index: 0 });
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

fn build_source_map(text: &str) -> Result<(SourceMap, KeyLocations), LoadError> {
    let mut collector =
        Collector { stack: Vec::new(), positions: HashMap::new(), keys: HashMap::new(), too_deep: None };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut collector, false) {
        let m = e.marker();
        return Err(LoadError::Syntax {
            message: e.info().to_owned(),
            location: Some(Location { line: m.line(), col: m.col() + 1 }),
        });
    }
    if let Some(location) = collector.too_deep {
        return Err(LoadError::TooDeep { location: Some(location) });
    }
    Ok((SourceMap { positions: collector.positions }, collector.keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keys_to_lines() {
        let text = "name: x\nsteps:\n  a:\n    type: stop\n  b:\n    next: c\nlist:\n  - 1\n  - x: 2\n";
        let loaded = load(text.as_bytes()).unwrap();
        let map = &loaded.source_map;
        assert_eq!(map.locate("/name"), Some(Location { line: 1, col: 1 }));
        assert_eq!(map.locate("/steps/a/type"), Some(Location { line: 4, col: 5 }));
        assert_eq!(map.locate("/steps/b/next"), Some(Location { line: 6, col: 5 }));
        assert_eq!(map.locate("/steps/b/next/zzz"), Some(Location { line: 6, col: 5 }));
        assert_eq!(map.locate("/list/1/x"), Some(Location { line: 9, col: 5 }));
    }

    #[test]
    fn block_mappings_start_at_their_first_key() {
        let text = "name: x\nschedules:\n  - cron: a\n    timezone: b\n  - {cron: c}\n";
        let map = load(text.as_bytes()).unwrap().source_map;
        assert_eq!(map.locate(""), Some(Location { line: 1, col: 1 }));
        assert_eq!(map.locate("/schedules/0"), Some(Location { line: 3, col: 5 }));
        assert_eq!(map.locate("/schedules/1"), Some(Location { line: 5, col: 5 }));
    }

    #[test]
    fn keeps_the_first_of_duplicate_keys() {
        let text = "steps:\n  a:\n    type: stop\n  b: {type: stop}\n  a:\n    type: map\n    x: 1\n  b: 2\n  a: 3\n";
        let loaded = load(text.as_bytes()).unwrap();
        assert_eq!(loaded.value["steps"]["a"], serde_json::json!({"type": "stop"}));
        assert_eq!(loaded.value["steps"]["b"], serde_json::json!({"type": "stop"}));
        assert_eq!(loaded.source_map.locate("/steps/a/type"), Some(Location { line: 3, col: 5 }));
        let at = |line, col| Some(Location { line, col });
        let found: Vec<_> =
            loaded.duplicates.iter().map(|d| (d.pointer.as_str(), d.key.as_str(), d.location, d.first)).collect();
        assert_eq!(
            found,
            [
                ("/steps/a", "a", at(5, 3), at(2, 3)),
                ("/steps/b", "b", at(8, 3), at(4, 3)),
                ("/steps/a", "a", at(9, 3), at(2, 3)),
            ]
        );
    }

    #[test]
    fn rejects_hostile_input() {
        assert_eq!(load(b"").unwrap_err(), LoadError::Empty);
        assert_eq!(load(b"# only a comment\n").unwrap_err(), LoadError::Empty);
        assert_eq!(load(&[0xff, 0xfe, 0x00, 0x12]).unwrap_err(), LoadError::NotText);
        assert!(matches!(load(b"a: [1, 2").unwrap_err(), LoadError::Syntax { .. }));
        assert!(matches!(load(b"- 1\n- 2\n").unwrap_err(), LoadError::NotAMapping { .. }));
        let deep = format!("a: {}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(load(deep.as_bytes()).unwrap_err(), LoadError::TooDeep { .. } | LoadError::Syntax { .. }));
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
        assert!(load(bomb.as_bytes()).is_err());
        let big = vec![b'a'; MAX_FILE_BYTES + 1];
        assert!(matches!(load(&big).unwrap_err(), LoadError::TooLarge { .. }));
    }
}
