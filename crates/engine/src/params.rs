//! Evaluating parameters against a document, and the JSON helpers the hot path needs.
//!
//! `{json: /pointer}` scans the document's bytes for the one value it names instead of building
//! a whole JSON tree; `{jq: ...}` and the map step parse into jaq's value type directly and write
//! their results without a detour through `serde_json::Value`.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::rc::Rc;

use compiler::jq::JqFilter;
use compiler::{ExecutionValue, Param, ParamSource};
use jaq_core::{Ctx, RcIter};
use jaq_json::Val;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::document::Document;

/// What parameters can see besides the document.
pub(crate) struct ParamEnv<'a> {
    pub run_id: &'a str,
    pub process_name: &'a str,
    pub process_properties: &'a HashMap<String, String>,
    pub batch_len: usize,
    pub jq_cache: &'a mut HashMap<String, JqFilter>,
}

/// A document as parameters see it: its JSON parsed at most once (for jq), and the properties
/// that a Set Properties step has set so far but not yet applied.
pub(crate) struct DocView<'d> {
    pub doc: &'d Document,
    val: OnceCell<Result<Val, String>>,
    /// Document properties set earlier in the same step; later entries win.
    pub document_sets: Vec<(String, String)>,
    /// Process properties set earlier in the same step; later entries win.
    pub process_sets: Vec<(String, String)>,
}

impl<'d> DocView<'d> {
    pub fn new(doc: &'d Document) -> DocView<'d> {
        DocView { doc, val: OnceCell::new(), document_sets: Vec::new(), process_sets: Vec::new() }
    }

    fn val(&self) -> Result<&Val, String> {
        self.val.get_or_init(|| parse_val(&self.doc.data)).as_ref().map_err(Clone::clone)
    }
}

fn not_json(e: serde_json::Error) -> String {
    format!("document data is not JSON: {e}")
}

/// Evaluates one parameter, appending its value to `out`. `Err` is the document error message;
/// `out` is then unspecified.
pub(crate) fn eval_into(
    param: &Param,
    view: &DocView<'_>,
    env: &mut ParamEnv<'_>,
    out: &mut String,
) -> Result<(), String> {
    let found = match &param.source {
        ParamSource::Static(s) => {
            out.push_str(s);
            true
        }
        ParamSource::CurrentData => {
            out.push_str(&view.doc.text());
            true
        }
        ParamSource::Json(pointer) => match pointer_into(&view.doc.data, pointer, out) {
            Ok(found) => found,
            Err(e) if param.default.is_none() => return Err(format!("{}: {e}", param.label)),
            Err(_) => false,
        },
        ParamSource::Jq(code) => {
            let filter = match env.jq_cache.get(code) {
                Some(f) => f,
                None => {
                    let f = compiler::jq::compile(code).map_err(|e| format!("{}: {e}", param.label))?;
                    env.jq_cache.entry(code.clone()).or_insert(f)
                }
            };
            match view.val() {
                Ok(v) => {
                    let first = run_jq(filter, v.clone(), |_| false).map_err(|e| format!("{}: {e}", param.label))?;
                    match first.first() {
                        Some(v) => val_text_into(v, out),
                        None => false,
                    }
                }
                Err(e) if param.default.is_none() => return Err(format!("{}: {e}", param.label)),
                Err(_) => false,
            }
        }
        ParamSource::DocumentProperty(name) => {
            match view.document_sets.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v) {
                Some(v) => {
                    out.push_str(v);
                    true
                }
                None => match view.doc.properties.get(name) {
                    Some(v) => {
                        out.push_str(v);
                        true
                    }
                    None => false,
                },
            }
        }
        ParamSource::ProcessProperty(name) => {
            let set = view.process_sets.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v);
            match set.or_else(|| env.process_properties.get(name)) {
                Some(v) => {
                    out.push_str(v);
                    true
                }
                None => false,
            }
        }
        ParamSource::Date { format, offset_secs } => {
            let t = chrono::TimeDelta::try_seconds(*offset_secs)
                .and_then(|d| chrono::Utc::now().checked_add_signed(d))
                .ok_or_else(|| format!("{}: the date offset is out of range", param.label))?;
            write!(out, "{}", t.format(format))
                .map_err(|_| format!("{}: date format '{format}' cannot be rendered", param.label))?;
            true
        }
        ParamSource::Execution(ExecutionValue::RunId) => {
            out.push_str(env.run_id);
            true
        }
        ParamSource::Execution(ExecutionValue::ProcessName) => {
            out.push_str(env.process_name);
            true
        }
        ParamSource::Execution(ExecutionValue::DocumentCount) => {
            let _ = write!(out, "{}", env.batch_len);
            true
        }
    };
    if found {
        return Ok(());
    }
    match &param.default {
        Some(d) => {
            out.push_str(d);
            Ok(())
        }
        None => Err(format!("{} found nothing and has no default", param.label)),
    }
}

/// Evaluates one parameter into a new string.
pub(crate) fn eval(param: &Param, view: &DocView<'_>, env: &mut ParamEnv<'_>) -> Result<String, String> {
    let mut out = String::new();
    eval_into(param, view, env, &mut out)?;
    Ok(out)
}

/// Evaluates a list of parameters into `values` (one string each), reusing its strings.
pub(crate) fn eval_all_into(
    params: &[Param],
    view: &DocView<'_>,
    env: &mut ParamEnv<'_>,
    values: &mut Vec<String>,
) -> Result<(), String> {
    values.resize_with(params.len(), String::new);
    for (p, v) in params.iter().zip(values.iter_mut()) {
        v.clear();
        eval_into(p, view, env, v)?;
    }
    Ok(())
}

/// Evaluates a list of parameters and concatenates their values.
pub(crate) fn eval_concat(params: &[Param], view: &DocView<'_>, env: &mut ParamEnv<'_>) -> Result<String, String> {
    let mut out = String::new();
    for p in params {
        eval_into(p, view, env, &mut out)?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// JSON pointer lookups on raw bytes.

/// Finds the value at `pointer` (RFC 6901; `""` is the whole document) in JSON `data` and appends
/// its text to `out`: strings raw, numbers, booleans, objects and arrays as compact JSON, null as
/// nothing. `Ok(false)` when there is no such value or it is null; `Err` when `data` is not JSON.
pub(crate) fn pointer_into(data: &[u8], pointer: &str, out: &mut String) -> Result<bool, String> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Ok(false);
    }
    let tokens: Vec<&str> = if pointer.is_empty() { Vec::new() } else { pointer[1..].split('/').collect() };
    let mut de = serde_json::Deserializer::from_slice(data);
    let found = PointerSeed { tokens: &tokens, out }.deserialize(&mut de).map_err(not_json)?;
    de.end().map_err(not_json)?;
    Ok(found)
}

/// Whether an object key equals a raw pointer token (`~1` is `/`, `~0` is `~`).
fn token_is(token: &str, key: &str) -> bool {
    if !token.contains('~') {
        return token == key;
    }
    let mut key = key.chars();
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        let want = match c {
            '~' => match chars.next() {
                Some('0') => '~',
                Some('1') => '/',
                _ => return false,
            },
            c => c,
        };
        if key.next() != Some(want) {
            return false;
        }
    }
    key.next().is_none()
}

/// An array index token as `serde_json::Value::pointer` reads it.
fn token_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

struct PointerSeed<'t, 'o> {
    tokens: &'t [&'t str],
    out: &'o mut String,
}

impl<'de> DeserializeSeed<'de> for PointerSeed<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

struct KeyIs<'t>(&'t str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(token_is(self.0, key))
    }
}

impl<'de> Visitor<'de> for PointerSeed<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        if self.tokens.is_empty() {
            self.out.push_str(if v { "true" } else { "false" });
        }
        Ok(self.tokens.is_empty())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        if self.tokens.is_empty() {
            let _ = write!(self.out, "{v}");
        }
        Ok(self.tokens.is_empty())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        if self.tokens.is_empty() {
            let _ = write!(self.out, "{v}");
        }
        Ok(self.tokens.is_empty())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        if self.tokens.is_empty() {
            match serde_json::Number::from_f64(v) {
                Some(n) => {
                    let _ = write!(self.out, "{n}");
                }
                None => return Ok(false),
            }
        }
        Ok(self.tokens.is_empty())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        if self.tokens.is_empty() {
            self.out.push_str(v);
        }
        Ok(self.tokens.is_empty())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        if self.tokens.is_empty() {
            let v = serde_json::Value::deserialize_seq_access(seq)?;
            let _ = write!(self.out, "{v}");
            return Ok(true);
        }
        let want = token_index(self.tokens[0]);
        let mut found = false;
        let mut i = 0usize;
        let out = self.out;
        loop {
            if Some(i) == want {
                match seq.next_element_seed(PointerSeed { tokens: &self.tokens[1..], out: &mut *out })? {
                    Some(f) => found = f,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        if self.tokens.is_empty() {
            let v = serde_json::Value::deserialize_map_access(map)?;
            let _ = write!(self.out, "{v}");
            return Ok(true);
        }
        let token = self.tokens[0];
        let out = self.out;
        let start = out.len();
        let mut found = false;
        while let Some(matches) = map.next_key_seed(KeyIs(token))? {
            if matches {
                // The last of duplicate keys wins, as in `serde_json::Value`.
                out.truncate(start);
                found = map.next_value_seed(PointerSeed { tokens: &self.tokens[1..], out: &mut *out })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// `serde_json::Value` from an in-progress sequence or map.
trait FromAccess: Sized {
    fn deserialize_seq_access<'de, A: SeqAccess<'de>>(seq: A) -> Result<Self, A::Error>;
    fn deserialize_map_access<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

impl FromAccess for serde_json::Value {
    fn deserialize_seq_access<'de, A: SeqAccess<'de>>(seq: A) -> Result<Self, A::Error> {
        serde::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))
    }

    fn deserialize_map_access<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        serde::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

// ---------------------------------------------------------------------------------------------
// jaq values.

/// Parses JSON bytes into a jaq value.
pub(crate) fn parse_val(data: &[u8]) -> Result<Val, String> {
    let mut de = serde_json::Deserializer::from_slice(data);
    let v = ValSeed.deserialize(&mut de).map_err(not_json)?;
    de.end().map_err(not_json)?;
    Ok(v)
}

struct ValSeed;

impl<'de> DeserializeSeed<'de> for ValSeed {
    type Value = Val;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Val, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValSeed {
    type Value = Val;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Val, E> {
        Ok(Val::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Val, E> {
        Ok(isize::try_from(v).map(Val::Int).unwrap_or_else(|_| Val::Num(Rc::new(v.to_string()))))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Val, E> {
        Ok(isize::try_from(v).map(Val::Int).unwrap_or_else(|_| Val::Num(Rc::new(v.to_string()))))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Val, E> {
        Ok(Val::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Val, E> {
        Ok(Val::Str(Rc::new(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Val, E> {
        Ok(Val::Str(Rc::new(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(ValSeed)? {
            items.push(v);
        }
        Ok(Val::Arr(Rc::new(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val, A::Error> {
        // jaq's object map type is not nameable from here; start from an empty object.
        let Val::Obj(mut obj) = Val::obj(Default::default()) else {
            return Err(de::Error::custom("cannot build an object"));
        };
        let entries = Rc::make_mut(&mut obj);
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(ValSeed)?;
            entries.insert(Rc::new(key), value);
        }
        Ok(Val::Obj(obj))
    }
}

/// Appends a jq value as parameter text: strings raw, null as nothing (`false`), others as JSON.
fn val_text_into(v: &Val, out: &mut String) -> bool {
    match v {
        Val::Null => false,
        Val::Str(s) => {
            out.push_str(s);
            true
        }
        other => {
            let _ = write!(out, "{other}");
            true
        }
    }
}

/// Runs a jq program on one value and returns its outputs in order. After each output, `more`
/// gets the number of outputs so far and returns `false` to stop computing further ones.
pub(crate) fn run_jq(filter: &JqFilter, input: Val, mut more: impl FnMut(usize) -> bool) -> Result<Vec<Val>, String> {
    let inputs = RcIter::new(core::iter::empty());
    let mut values = Vec::new();
    for v in filter.run((Ctx::new([], &inputs), input)) {
        match v {
            Ok(v) => values.push(v),
            Err(e) => return Err(format!("jq error: {e}")),
        }
        if !more(values.len()) {
            break;
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(data: &str, pointer: &str) -> Result<Option<String>, String> {
        let mut out = String::new();
        pointer_into(data.as_bytes(), pointer, &mut out).map(|found| found.then_some(out))
    }

    #[test]
    fn pointer_lookups_match_serde_json() {
        let doc = r#"{"a": {"b/c": [10, {"d~e": "x"}], "n": null, "f": 1.5, "t": true, "o": {"k": [1, 2]}},
                     "a b": "sp", "dup": 1, "dup": 2, "esc": "q\"\u00e9"}"#;
        let value: serde_json::Value = serde_json::from_str(doc).unwrap();
        for pointer in [
            "",
            "/a",
            "/a/b~1c",
            "/a/b~1c/0",
            "/a/b~1c/1/d~0e",
            "/a/b~1c/2",
            "/a/b~1c/01",
            "/a/n",
            "/a/f",
            "/a/t",
            "/a/o",
            "/a b",
            "/dup",
            "/esc",
            "/missing",
            "/a/f/x",
            "/a/b~1c/-",
        ] {
            let expected = value.pointer(pointer).and_then(|v| match v {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            });
            assert_eq!(at(doc, pointer).unwrap(), expected, "pointer {pointer:?}");
        }
        assert!(at("{\"a\": ", "/a").is_err());
        assert!(at("{\"a\": 1} x", "/a").is_err());
        assert_eq!(at("[1, 2]", "/1"), Ok(Some("2".to_owned())));
    }

    #[test]
    fn jaq_values_round_trip() {
        let v = parse_val(br#"{"a": [1, 2.5, "x\n", null, true], "b": {"c": 18446744073709551615}}"#).unwrap();
        assert_eq!(v.to_string(), r#"{"a":[1,2.5,"x\n",null,true],"b":{"c":18446744073709551615}}"#);
        assert!(parse_val(b"[1,").is_err());
    }
}
