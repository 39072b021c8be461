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
/// built, and aliases are refused by serde_yaml's expansion limit.
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
    let source_map = build_source_map(text)?;
    let yaml: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| LoadError::Syntax {
        message: strip_location(&e.to_string()),
        location: e.location().map(|l| Location { line: l.line(), col: l.column() }),
    })?;
    let value = to_json(yaml, "")?;
    if !value.is_object() {
        return Err(LoadError::NotAMapping { found: kind_of(&value) });
    }
    Ok(Loaded { value, source_map })
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

fn to_json(value: serde_yaml::Value, pointer: &str) -> Result<serde_json::Value, LoadError> {
    use serde_yaml::Value as Y;
    Ok(match value {
        Y::Null => serde_json::Value::Null,
        Y::Bool(b) => serde_json::Value::Bool(b),
        Y::Number(n) => {
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
        Y::String(s) => serde_json::Value::String(s),
        Y::Sequence(items) => serde_json::Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| to_json(v, &format!("{pointer}/{i}")))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
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
                let v = to_json(v, &child)?;
                out.insert(key, v);
            }
            serde_json::Value::Object(out)
        }
        Y::Tagged(tagged) => {
            return Err(LoadError::Unsupported {
                message: format!("at '{pointer}': YAML tags such as '{}' are not supported", tagged.tag),
                location: None,
            });
        }
    })
}

/// Escapes one JSON pointer segment.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

enum Frame {
    Mapping { pointer: String, key: Option<String> },
    Sequence { pointer: String, index: usize },
}

struct Collector {
    stack: Vec<Frame>,
    positions: HashMap<String, Location>,
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
            Some(Frame::Mapping { pointer, key }) => key.take().map(|k| format!("{pointer}/{}", escape(&k))),
        }
    }

    /// True when the next scalar is a mapping key.
    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Mapping { key: None, .. }))
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
                    if let Some(Frame::Mapping { pointer, key }) = self.stack.last_mut() {
                        let p = format!("{pointer}/{}", escape(&value));
                        self.positions.entry(p).or_insert(loc);
                        *key = Some(value);
                    }
                } else {
                    self.value_pointer(loc);
                }
            }
            Event::Alias(_) => {
                if self.expecting_key() {
                    if let Some(Frame::Mapping { key, .. }) = self.stack.last_mut() {
                        *key = Some("*alias".to_owned());
                    }
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
                    if let Some(Frame::Mapping { key, .. }) = self.stack.last_mut() {
                        *key = Some("*complex".to_owned());
                    }
                    "/*complex".to_owned()
                } else {
                    self.value_pointer(loc).unwrap_or_default()
                };
                self.positions.entry(pointer.clone()).or_insert(loc);
                if matches!(ev, Event::MappingStart(..)) {
                    self.stack.push(Frame::Mapping { pointer, key: None });
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

fn build_source_map(text: &str) -> Result<SourceMap, LoadError> {
    let mut collector = Collector { stack: Vec::new(), positions: HashMap::new(), too_deep: None };
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
    Ok(SourceMap { positions: collector.positions })
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
