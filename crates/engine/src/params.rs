//! Evaluating parameters against a document, and the JSON helpers the hot path needs.
//!
//! `{json: /pointer}` scans the document's bytes for the one value it names instead of building
//! a whole JSON tree; `{jq: ...}` and the map step parse into jaq's value type directly and write
//! their results without a detour through `serde_json::Value`.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::rc::Rc;

use compiler::jq::{Guard, JqFilter};
use compiler::{Escape, ExecutionValue, Param, ParamSource};
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
    /// What stops jq's loops: the run's cancellation and time limit.
    pub guard: &'a Guard,
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

/// Evaluates one parameter, appending its value (escaped as the parameter says) to `out`. `Err`
/// is the document error message; `out` is then unspecified.
pub(crate) fn eval_into(
    param: &Param,
    view: &DocView<'_>,
    env: &mut ParamEnv<'_>,
    out: &mut String,
) -> Result<(), String> {
    let mark = out.len();
    lookup_into(param, view, env, out)?;
    escape_from(param.escape, out, mark);
    Ok(())
}

/// Escapes what `out` holds from byte `mark` on, as `escape` says.
fn escape_from(escape: Option<Escape>, out: &mut String, mark: usize) {
    match escape {
        None => {}
        Some(Escape::Json) => {
            let value = &out[mark..];
            if value.bytes().any(|b| b < b' ' || b == b'"' || b == b'\\') {
                let mut quoted = serde_json::to_string(value).unwrap_or_default();
                quoted.pop();
                out.truncate(mark);
                out.push_str(&quoted[1..]);
            }
        }
    }
}

/// The value of one parameter (the default when the lookup finds nothing), unescaped.
fn lookup_into(param: &Param, view: &DocView<'_>, env: &mut ParamEnv<'_>, out: &mut String) -> Result<(), String> {
    let mark = out.len();
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
            let mut first = None;
            let ran = view.val().and_then(|v| {
                run_jq(filter, v.clone(), env.guard, |v| {
                    first = Some(v);
                    false
                })
            });
            match ran {
                Ok(()) => first.is_some_and(|v| val_text_into(&v, out)),
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
    // A lookup may have written part of a value before it failed.
    out.truncate(mark);
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

/// Evaluates a list of parameters into `values` (one string each), reusing its strings. When
/// several are JSON pointers, they are looked up together in one pass over the document.
pub(crate) fn eval_all_into(
    params: &[Param],
    view: &DocView<'_>,
    env: &mut ParamEnv<'_>,
    values: &mut Vec<String>,
) -> Result<(), String> {
    values.resize_with(params.len(), String::new);
    let mut targets = [(None, 0usize); MAX_TARGETS];
    let mut n = 0;
    for (slot, p) in params.iter().enumerate() {
        if let ParamSource::Json(pointer) = &p.source {
            if n == MAX_TARGETS || !(pointer.is_empty() || pointer.starts_with('/')) {
                n = 0;
                break;
            }
            targets[n] = (pointer.strip_prefix('/'), slot);
            n += 1;
        }
    }
    if n < 2 || is_blank(&view.doc.data) {
        for (p, v) in params.iter().zip(values.iter_mut()) {
            v.clear();
            eval_into(p, view, env, v)?;
        }
        return Ok(());
    }
    // Every pointer at once; then each parameter in order, as `eval_into` would.
    let mut found = [false; MAX_TARGETS];
    for &(_, slot) in &targets[..n] {
        values[slot].clear();
    }
    let looked_up = multi_lookup(&view.doc.data, &targets[..n], values, &mut found);
    for (slot, p) in params.iter().enumerate() {
        let v = &mut values[slot];
        let Some(t) = targets[..n].iter().position(|&(_, s)| s == slot) else {
            v.clear();
            eval_into(p, view, env, v)?;
            continue;
        };
        match (&looked_up, &p.default) {
            (Ok(()), _) if found[t] => {}
            (Ok(()), Some(d)) | (Err(_), Some(d)) => {
                v.clear();
                v.push_str(d);
            }
            (Ok(()), None) => return Err(format!("{} found nothing and has no default", p.label)),
            (Err(e), None) => return Err(format!("{}: {e}", p.label)),
        }
        escape_from(p.escape, v, 0);
    }
    Ok(())
}

/// How many JSON pointers one pass looks up together.
const MAX_TARGETS: usize = 8;

/// Looks up several pointers (their rest after the leading `/`, with the slot of `values` each
/// fills) in one pass. `found[i]` says whether target `i` found a value that is not null.
fn multi_lookup(
    data: &[u8],
    targets: &[(Option<&str>, usize)],
    values: &mut [String],
    found: &mut [bool],
) -> Result<(), String> {
    let mut rests = [None; MAX_TARGETS];
    let mut slots = [0usize; MAX_TARGETS];
    for (i, &(rest, slot)) in targets.iter().enumerate() {
        rests[i] = rest;
        slots[i] = slot;
    }
    let active = (1u16 << targets.len()) - 1;
    let mut de = serde_json::Deserializer::from_slice(data);
    MultiSeed { active, rests, slots: &slots, values, found }.deserialize(&mut de).map_err(not_json)?;
    de.end().map_err(not_json)
}

/// One node of a multi-pointer lookup: the targets (bits of `active`) that lead here, and what
/// remains of each one's pointer (`None`: this value is the one).
struct MultiSeed<'a, 't> {
    active: u16,
    rests: [Option<&'t str>; MAX_TARGETS],
    slots: &'a [usize; MAX_TARGETS],
    values: &'a mut [String],
    found: &'a mut [bool],
}

/// The indices of the bits set in `mask`.
fn bits(mask: u16) -> impl Iterator<Item = usize> {
    (0..MAX_TARGETS).filter(move |i| mask & (1 << i) != 0)
}

impl<'t> MultiSeed<'_, 't> {
    /// The targets that continue below a key or index `matches` accepts, with what remains of
    /// their pointers.
    fn below(&self, matches: impl Fn(&str) -> bool) -> (u16, [Option<&'t str>; MAX_TARGETS]) {
        let mut mask = 0;
        let mut rests = [None; MAX_TARGETS];
        for i in bits(self.active) {
            if let Some(rest) = self.rests[i] {
                let (token, more) = split_token(rest);
                if matches(token) {
                    mask |= 1 << i;
                    rests[i] = more;
                }
            }
        }
        (mask, rests)
    }

    fn forget(&mut self, mask: u16) {
        for i in bits(mask) {
            self.values[self.slots[i]].clear();
            self.found[i] = false;
        }
    }
}

impl<'de, 't> DeserializeSeed<'de> for MultiSeed<'_, 't> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let ends_here = bits(self.active).filter(|&i| self.rests[i].is_none()).fold(0u16, |m, i| m | (1 << i));
        if ends_here == 0 {
            return deserializer.deserialize_any(self);
        }
        if ends_here == self.active {
            // Every target wants this value: write it once, copy it to the others.
            let mut targets = bits(self.active);
            let first = targets.next().unwrap_or(0);
            let mut text = std::mem::take(&mut self.values[self.slots[first]]);
            let found = PointerSeed { rest: None, out: &mut text }.deserialize(deserializer)?;
            for i in targets {
                self.values[self.slots[i]].clone_from(&text);
                self.found[i] = found;
            }
            self.values[self.slots[first]] = text;
            self.found[first] = found;
            return Ok(());
        }
        // Some end here and some go deeper (`/a` and `/a/b`): read the value whole.
        let value = <serde_json::Value as serde::Deserialize>::deserialize(deserializer)?;
        for i in bits(self.active) {
            let at = match self.rests[i] {
                None => Some(&value),
                Some(rest) => value.pointer(&format!("/{rest}")),
            };
            let out = &mut self.values[self.slots[i]];
            self.found[i] = match at {
                None | Some(serde_json::Value::Null) => false,
                Some(serde_json::Value::String(s)) => {
                    out.push_str(s);
                    true
                }
                Some(other) => {
                    let _ = write!(out, "{other}");
                    true
                }
            };
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for MultiSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    // Scalars have nothing below them: the targets that continue find nothing.
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let (mask, rests) = self.below(|token| token_index(token) == Some(i));
            if mask == 0 {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    break;
                }
            } else {
                let seed = MultiSeed {
                    active: mask,
                    rests,
                    slots: self.slots,
                    values: &mut *self.values,
                    found: &mut *self.found,
                };
                if seq.next_element_seed(seed)?.is_none() {
                    break;
                }
            }
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some((mask, rests)) = map.next_key_seed(KeyMask(&self))? {
            if mask == 0 {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            // The last of duplicate keys wins, as in `serde_json::Value`.
            self.forget(mask);
            let seed = MultiSeed {
                active: mask,
                rests,
                slots: self.slots,
                values: &mut *self.values,
                found: &mut *self.found,
            };
            map.next_value_seed(seed)?;
        }
        Ok(())
    }
}

/// Which targets an object key continues (a bit mask, and what remains of their pointers), read
/// without copying the key.
struct KeyMask<'s, 'a, 't>(&'s MultiSeed<'a, 't>);

impl<'de, 't> DeserializeSeed<'de> for KeyMask<'_, '_, 't> {
    type Value = (u16, [Option<&'t str>; MAX_TARGETS]);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 't> Visitor<'de> for KeyMask<'_, '_, 't> {
    type Value = (u16, [Option<&'t str>; MAX_TARGETS]);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.below(|token| token_is(token, key)))
    }
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
    if (!pointer.is_empty() && !pointer.starts_with('/')) || is_blank(data) {
        return Ok(false);
    }
    let rest = pointer.strip_prefix('/');
    let mut de = serde_json::Deserializer::from_slice(data);
    let found = PointerSeed { rest, out }.deserialize(&mut de).map_err(not_json)?;
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

/// Looks for the rest of a pointer (`a/b` for `/a/b`; `None` when this value is the one).
struct PointerSeed<'t, 'o> {
    rest: Option<&'t str>,
    out: &'o mut String,
}

/// The first token of the rest of a pointer, and what follows it.
fn split_token(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once('/') {
        Some((token, more)) => (token, Some(more)),
        None => (rest, None),
    }
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
        if self.rest.is_none() {
            self.out.push_str(if v { "true" } else { "false" });
        }
        Ok(self.rest.is_none())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        if self.rest.is_none() {
            let _ = write!(self.out, "{v}");
        }
        Ok(self.rest.is_none())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        if self.rest.is_none() {
            let _ = write!(self.out, "{v}");
        }
        Ok(self.rest.is_none())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        if self.rest.is_none() {
            match serde_json::Number::from_f64(v) {
                Some(n) => {
                    let _ = write!(self.out, "{n}");
                }
                None => return Ok(false),
            }
        }
        Ok(self.rest.is_none())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        if self.rest.is_none() {
            self.out.push_str(v);
        }
        Ok(self.rest.is_none())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        if self.rest.is_none() {
            let v = serde_json::Value::deserialize_seq_access(seq)?;
            let _ = write!(self.out, "{v}");
            return Ok(true);
        }
        let (token, more) = split_token(self.rest.unwrap_or_default());
        let want = token_index(token);
        let mut found = false;
        let mut i = 0usize;
        let out = self.out;
        loop {
            if Some(i) == want {
                match seq.next_element_seed(PointerSeed { rest: more, out: &mut *out })? {
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
        if self.rest.is_none() {
            let v = serde_json::Value::deserialize_map_access(map)?;
            let _ = write!(self.out, "{v}");
            return Ok(true);
        }
        let (token, more) = split_token(self.rest.unwrap_or_default());
        let out = self.out;
        let start = out.len();
        let mut found = false;
        while let Some(matches) = map.next_key_seed(KeyIs(token))? {
            if matches {
                // The last of duplicate keys wins, as in `serde_json::Value`.
                out.truncate(start);
                found = map.next_value_seed(PointerSeed { rest: more, out: &mut *out })?;
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

/// Whether a document has no data (or only white space), which JSON lookups read as `null`: the
/// document of a `no_data` start, for example.
pub(crate) fn is_blank(data: &[u8]) -> bool {
    data.iter().all(u8::is_ascii_whitespace)
}

/// Parses JSON bytes into a jaq value; no data at all is `null`.
pub(crate) fn parse_val(data: &[u8]) -> Result<Val, String> {
    if is_blank(data) {
        return Ok(Val::Null);
    }
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

/// Runs a jq program on one value under `guard`, handing each output to `each` as it comes
/// (nothing is collected); `each` returns `false` to stop computing further ones.
pub(crate) fn run_jq(
    filter: &JqFilter,
    input: Val,
    guard: &Guard,
    mut each: impl FnMut(Val) -> bool,
) -> Result<(), String> {
    compiler::jq::guarded(Some(guard.clone()), || {
        let inputs = RcIter::new(core::iter::empty());
        for v in filter.run((Ctx::new([], &inputs), input)) {
            match v {
                Ok(v) => {
                    if guard.tripped() {
                        return Err(format!("jq error: {}", compiler::jq::INTERRUPTED));
                    }
                    if !each(v) {
                        break;
                    }
                }
                Err(e) => return Err(format!("jq error: {e}")),
            }
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Field mapping without the jq interpreter.

/// A map program simple enough to run without jq's interpreter: a path (`.`, `.a.b`), or an
/// object whose values are paths, such as `{email: .Email, name: .user.name, id}`. The result is
/// the same as jaq's (a differential test checks this); whenever a document would make the
/// program fail (a path through something that is not an object), the caller falls back to jaq,
/// which produces the error.
///
/// A document is read in one pass that keeps only what the paths name: leaves are written
/// straight to text as jaq would print them, and nothing else is allocated.
#[derive(Debug)]
pub(crate) struct FastJq {
    shape: Shape,
    /// What the paths read, as a tree in depth-first order; node 0 is the document.
    nodes: Vec<Node>,
}

#[derive(Debug)]
enum Shape {
    /// The value at a path (its nodes, from the document down).
    Path(Vec<usize>),
    /// Each output key (already rendered as a JSON string) and the nodes of its value's path.
    Object(Vec<(String, Vec<usize>)>),
}

#[derive(Debug)]
struct Node {
    /// The object key that leads here from the parent.
    key: String,
    children: Vec<usize>,
    /// One past the last node below this one.
    end: usize,
    /// A path ends here, so the whole value is needed.
    whole: bool,
}

/// Where the paths of a `FastJq` stand in one document.
#[derive(Default)]
pub(crate) struct FastState {
    nodes: Vec<Seen>,
    texts: Vec<String>,
}

/// What was found at a node.
enum Seen {
    Absent,
    Object,
    /// Something other than an object, where more of the path follows.
    Other,
    /// A leaf's value, as text in `FastState::texts`.
    Text,
    /// A value that more paths go into.
    Val(Val),
}

/// A tree of paths, before it is laid out in depth-first order.
#[derive(Default)]
struct Tree {
    whole: bool,
    keys: Vec<(String, Tree)>,
}

impl Tree {
    fn add(&mut self, path: &[String]) {
        let Some((first, rest)) = path.split_first() else {
            self.whole = true;
            return;
        };
        let at = match self.keys.iter().position(|(k, _)| k == first) {
            Some(at) => at,
            None => {
                self.keys.push((first.clone(), Tree::default()));
                self.keys.len() - 1
            }
        };
        self.keys[at].1.add(rest);
    }

    fn lay_out(self, key: String, nodes: &mut Vec<Node>) -> usize {
        let id = nodes.len();
        nodes.push(Node { key, children: Vec::new(), end: 0, whole: self.whole });
        for (k, t) in self.keys {
            let child = t.lay_out(k, nodes);
            nodes[id].children.push(child);
        }
        nodes[id].end = nodes.len();
        id
    }
}

const JQ_KEYWORDS: &[&str] = &[
    "and", "or", "not", "if", "then", "elif", "else", "end", "as", "def", "reduce", "foreach", "try", "catch", "label",
    "import", "include", "__loc__", "true", "false", "null",
];

struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    fn skip_ws(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        match self.rest.strip_prefix(c) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    /// An identifier right here (no whitespace skipped), not a keyword.
    fn ident(&mut self) -> Option<String> {
        let end = self.rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(self.rest.len());
        let word = &self.rest[..end];
        if word.is_empty() || word.starts_with(|c: char| c.is_ascii_digit()) || JQ_KEYWORDS.contains(&word) {
            return None;
        }
        self.rest = &self.rest[end..];
        Some(word.to_owned())
    }

    /// A plain string literal (no escapes, no interpolation).
    fn string(&mut self) -> Option<String> {
        let body = self.rest.strip_prefix('"')?;
        let end = body.find('"')?;
        let text = &body[..end];
        if text.contains('\\') {
            return None;
        }
        self.rest = &body[end + 1..];
        Some(text.to_owned())
    }

    /// `.`, `.a` or `.a.b...`.
    fn path(&mut self) -> Option<Vec<String>> {
        self.skip_ws();
        self.rest = self.rest.strip_prefix('.')?;
        let mut path = Vec::new();
        if let Some(first) = self.ident() {
            path.push(first);
            while let Some(r) = self.rest.strip_prefix('.') {
                self.rest = r;
                path.push(self.ident()?);
            }
        }
        Some(path)
    }
}

impl FastJq {
    /// `None` when the program is not one of the simple forms.
    pub(crate) fn parse(code: &str) -> Option<FastJq> {
        if code.contains('#') {
            return None;
        }
        let mut t = Tokens { rest: code };
        let mut paths: Vec<(Option<String>, Vec<String>)> = Vec::new();
        if t.eat('{') {
            if !t.eat('}') {
                loop {
                    t.skip_ws();
                    let (key, shorthand) = match t.string() {
                        Some(k) => (k, false),
                        None => (t.ident()?, true),
                    };
                    let path = if t.eat(':') {
                        t.path()?
                    } else if shorthand {
                        vec![key.clone()]
                    } else {
                        return None;
                    };
                    let rendered = Val::Str(Rc::new(key)).to_string();
                    // A repeated key keeps its first place and takes the last value, as in jq.
                    match paths.iter_mut().find(|(k, _)| k.as_ref() == Some(&rendered)) {
                        Some(entry) => entry.1 = path,
                        None => paths.push((Some(rendered), path)),
                    }
                    if t.eat(',') {
                        continue;
                    }
                    if t.eat('}') {
                        break;
                    }
                    return None;
                }
            }
        } else {
            paths.push((None, t.path()?));
        }
        t.skip_ws();
        if !t.rest.is_empty() {
            return None;
        }
        let mut tree = Tree::default();
        for (_, path) in &paths {
            tree.add(path);
        }
        let mut nodes = Vec::new();
        tree.lay_out(String::new(), &mut nodes);
        let ids = |path: &[String]| {
            let mut ids = vec![0];
            for segment in path {
                let here = ids[ids.len() - 1];
                let next = nodes[here].children.iter().copied().find(|&c| nodes[c].key == *segment)?;
                ids.push(next);
            }
            Some(ids)
        };
        let shape = match paths.first() {
            Some((None, path)) => Shape::Path(ids(path)?),
            _ => Shape::Object(
                paths
                    .iter()
                    .map(|(k, path)| Some((k.clone().unwrap_or_default(), ids(path)?)))
                    .collect::<Option<_>>()?,
            ),
        };
        Some(FastJq { shape, nodes })
    }

    /// Runs the program on JSON `data`, writing the one output to `out`. `false` when this
    /// document needs the interpreter (it is not valid JSON, or a path meets a value that is not
    /// an object); `out` is then unspecified.
    pub(crate) fn run(&self, state: &mut FastState, data: &[u8], out: &mut String) -> bool {
        if std::str::from_utf8(data).is_err() {
            return false;
        }
        state.nodes.clear();
        state.nodes.resize_with(self.nodes.len(), || Seen::Absent);
        state.texts.resize_with(self.nodes.len(), String::new);
        if is_blank(data) {
            state.nodes[0] = if self.nodes[0].whole { Seen::Val(Val::Null) } else { Seen::Other };
        } else {
            let mut de = serde_json::Deserializer::from_slice(data);
            let parsed = Project { fast: self, state: &mut *state, node: 0 }.deserialize(&mut de);
            if parsed.is_err() || de.end().is_err() {
                return false;
            }
        }
        match &self.shape {
            Shape::Path(ids) => self.resolve(state, ids, out),
            Shape::Object(entries) => {
                out.push('{');
                for (n, (key, ids)) in entries.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    out.push_str(key);
                    out.push(':');
                    if !self.resolve(state, ids, out) {
                        return false;
                    }
                }
                out.push('}');
                true
            }
        }
    }

    /// Writes the value at the path through `ids`; `false` where jq would fail.
    fn resolve(&self, state: &FastState, ids: &[usize], out: &mut String) -> bool {
        let last = ids.len() - 1;
        for (depth, &id) in ids.iter().enumerate() {
            match &state.nodes[id] {
                Seen::Text if depth == last => {
                    out.push_str(&state.texts[id]);
                    return true;
                }
                Seen::Val(v) => {
                    let null = Val::Null;
                    let mut v = v;
                    for &below in &ids[depth + 1..] {
                        v = match v {
                            Val::Obj(map) => map.get(&self.nodes[below].key).unwrap_or(&null),
                            // jaq (unlike jq) fails on indexing null; the interpreter says so.
                            _ => return false,
                        };
                    }
                    let _ = write!(out, "{v}");
                    return true;
                }
                Seen::Absent if depth == last => {
                    out.push_str("null");
                    return true;
                }
                Seen::Object if depth < last => {}
                _ => return false,
            }
        }
        false
    }
}

/// Reads one node of a document for a `FastJq`.
struct Project<'f, 's> {
    fast: &'f FastJq,
    state: &'s mut FastState,
    node: usize,
}

impl<'de> DeserializeSeed<'de> for Project<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let node = &self.fast.nodes[self.node];
        if node.whole && node.children.is_empty() {
            let text = &mut self.state.texts[self.node];
            text.clear();
            deserializer.deserialize_any(LeafText(text))?;
            self.state.nodes[self.node] = Seen::Text;
            Ok(())
        } else if node.whole {
            self.state.nodes[self.node] = Seen::Val(ValSeed.deserialize(deserializer)?);
            Ok(())
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Project<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.state.nodes[self.node] = Seen::Other;
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Project { fast, state, node } = self;
        state.nodes[node] = Seen::Object;
        let children = &fast.nodes[node].children;
        while let Some(found) = map.next_key_seed(KeyAmong { fast, children })? {
            match found {
                Some(child) => {
                    // The last of duplicate keys wins: forget what an earlier one left.
                    for seen in &mut state.nodes[child..fast.nodes[child].end] {
                        *seen = Seen::Absent;
                    }
                    map.next_value_seed(Project { fast, state: &mut *state, node: child })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Which child node an object key leads to, if any.
struct KeyAmong<'f> {
    fast: &'f FastJq,
    children: &'f [usize],
}

impl<'de> DeserializeSeed<'de> for KeyAmong<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyAmong<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.children.iter().copied().find(|&c| self.fast.nodes[c].key == key))
    }
}

/// A string as jaq prints it.
struct JqStr<'a>(&'a str);

impl fmt::Display for JqStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        jaq_json::fmt_str(f, self.0)
    }
}

/// Writes a value as jaq prints it (the `Display` of the `Val` that `ValSeed` would build).
struct LeafText<'o>(&'o mut String);

impl<'de> Visitor<'de> for LeafText<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.push_str("null");
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.0.push_str(if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        let _ = write!(self.0, "{v}");
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        let _ = write!(self.0, "{v}");
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        let _ = write!(self.0, "{}", Val::Float(v));
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if v.bytes().any(|b| b < b' ' || b == b'"' || b == b'\\') {
            let _ = write!(self.0, "{}", JqStr(v));
        } else {
            // Nothing to escape: the same text, without the formatter.
            self.0.push('"');
            self.0.push_str(v);
            self.0.push('"');
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let v = ValSeed.visit_seq(seq)?;
        let _ = write!(self.0, "{v}");
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let v = ValSeed.visit_map(map)?;
        let _ = write!(self.0, "{v}");
        Ok(())
    }
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
        assert!(at(r#"{"a": "x"} trailing"#, "/a").is_err());
    }

    #[test]
    fn one_pass_lookups_match_one_lookup_each() {
        let docs = [
            r#"{"a": {"b/c": [10, {"d~e": "x"}], "n": null, "f": 1.5}, "s": "t", "dup": {"x": 1}, "dup": {"y": 2}}"#,
            r#"{"a": 1, "s": {"deep": [1, 2, {"z": null}]}}"#,
            r#"[{"a": 1}, {"a": 2}]"#,
            r#""just a string""#,
            r#"{"a": 1} trailing"#,
            "{",
        ];
        let pointers = [
            "/a",
            "/a/b~1c",
            "/a/b~1c/1/d~0e",
            "/a/b~1c/0",
            "/a/n",
            "/a/f",
            "/s",
            "/s/deep/1",
            "/s/deep/2/z",
            "/dup",
            "/dup/x",
            "/dup/y",
            "/missing",
            "/0/a",
            "/1/a",
            "",
            "/a/b~1c/9",
        ];
        for doc in docs {
            for (i, first) in pointers.iter().enumerate() {
                for second in &pointers[i..] {
                    let targets = [(first.strip_prefix('/'), 0), (second.strip_prefix('/'), 1)];
                    let mut values = vec![String::new(), String::new()];
                    let mut found = [false; 2];
                    let together = multi_lookup(doc.as_bytes(), &targets, &mut values, &mut found);
                    let alone = [at(doc, first), at(doc, second)];
                    match together {
                        Ok(()) => {
                            for k in 0..2 {
                                let got = found[k].then(|| values[k].clone());
                                assert_eq!(Ok(got), alone[k], "{doc} {first} {second}");
                            }
                        }
                        Err(e) => assert!(alone.iter().all(|a| a.as_ref() == Err(&e)), "{doc}: {e}"),
                    }
                }
            }
        }
    }

    #[test]
    fn jaq_values_round_trip() {
        let v = parse_val(br#"{"a": [1, 2.5, "x\n", null, true], "b": {"c": 18446744073709551615}}"#).unwrap();
        assert_eq!(v.to_string(), r#"{"a":[1,2.5,"x\n",null,true],"b":{"c":18446744073709551615}}"#);
        assert!(parse_val(b"[1,").is_err());
    }

    #[test]
    fn fast_field_mapping_matches_jaq() {
        let programs = [
            ".",
            " . ",
            ".a",
            ".a.b",
            "{}",
            "{a}",
            "{a: .a}",
            "{ x : .a.b , y: .b }",
            r#"{"k y": .a, a: .b}"#,
            "{a: .a, a: .b}",
            "{a: .}",
            "{a: .missing.deeper}",
            "{id, name: .n.first}",
            "{a: .a.b.c}",
        ];
        let inputs = [
            r#"{"a": 1, "b": "s"}"#,
            r#"{"a": {"b": [1, 2]}, "b": null}"#,
            "null",
            "[1]",
            r#""str""#,
            "5",
            r#"{"a": "x\u00e9\n\/", "b": {"c": 1}}"#,
            r#"{"a": 1.50, "b": 1e2}"#,
            r#"{"a": 1, "a": 2}"#,
            r#"{"id": 18446744073709551615, "n": {"first": "Zoë"}}"#,
            r#"{"a": {"b": "str"}}"#,
            "{\"a\": 1} x",
            "{",
            "",
            " \n",
        ];
        for program in programs {
            let fast = FastJq::parse(program).unwrap_or_else(|| panic!("{program} is a simple program"));
            let filter = compiler::jq::compile(program).unwrap();
            for input in inputs {
                let mut out = String::new();
                let handled = fast.run(&mut FastState::default(), input.as_bytes(), &mut out);
                let guard = Guard { stop: Default::default(), deadline: None };
                let mut values = Vec::new();
                let expected = parse_val(input.as_bytes()).and_then(|v| {
                    run_jq(&filter, v, &guard, |v| {
                        values.push(v);
                        true
                    })
                });
                let expected = expected.map(|()| values);
                match expected {
                    Ok(values) => {
                        assert_eq!(values.len(), 1);
                        if handled {
                            assert_eq!(out, values[0].to_string(), "{program} on {input}");
                        }
                    }
                    Err(_) => assert!(!handled, "{program} on {input} must fall back, got {out}"),
                }
            }
        }
        for program in [
            ".a[0]",
            ".a | .b",
            "{a: .a | ascii}",
            "{(.k): 1}",
            "{a: .a?}",
            "{$x}",
            "{if: .a}",
            "{a: .a} # c",
            "{\"\\n\": .a}",
            ".[]",
        ] {
            assert!(FastJq::parse(program).is_none(), "{program}");
        }
        // Most documents take the fast path.
        let mut out = String::new();
        let mut state = FastState::default();
        let fast = FastJq::parse("{a: .a, b: .x.y, c: .x, d}").unwrap();
        assert!(fast.run(&mut state, br#"{"a": [1], "x": {"y": "\u00e9\n"}}"#, &mut out));
        assert_eq!(out, r#"{"a":[1],"b":"é\n","c":{"y":"é\n"},"d":null}"#);
        out.clear();
        // The state is reused: nothing of the previous document leaks into the next.
        assert!(fast.run(&mut state, br#"{"x": {}, "x": {"z": 1}}"#, &mut out));
        assert_eq!(out, r#"{"a":null,"b":null,"c":{"z":1},"d":null}"#);
    }
}
