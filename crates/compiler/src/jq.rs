//! jq programs, compiled and run with jaq (a maintained jq implementation in Rust).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use jaq_core::compile::Lut;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Ctx, Cv, Exn, FilterT, Native, RcIter, ValXs};
use jaq_json::Val;

/// A compiled jq program.
pub type JqFilter = jaq_core::Filter<Native<Val>>;

/// Filters and variables of jq (and jaq) with effects outside the document: ending the binary,
/// reading the environment or further inputs, writing to the log or standard error. They are not
/// defined at all, so neither `validate` nor the engine can run them.
pub const FORBIDDEN: &[&str] = &[
    "halt",
    "halt_error",
    "env",
    "$ENV",
    "input",
    "inputs",
    "debug",
    "stderr",
    "input_filename",
    "input_line_number",
    "$__prog_args",
    "get_search_list",
    "get_prog_origin",
    "get_jq_origin",
];

fn allowed(name: &str) -> bool {
    !FORBIDDEN.contains(&name)
}

/// What can stop a jq evaluation from outside: a flag (the run was cancelled) and a deadline
/// (the run's time limit). jq's loops (`range`, `repeat`, `recurse`, `while`, `until`) look at
/// the guard of their thread at every step, so even `last(range(1e12))` stops soon after either.
#[derive(Clone, Debug)]
pub struct Guard {
    pub stop: Arc<AtomicBool>,
    pub deadline: Option<Instant>,
}

impl Guard {
    /// Whether the flag is set or the deadline has passed.
    pub fn tripped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

thread_local! {
    static GUARD: RefCell<Option<Guard>> = const { RefCell::new(None) };
    static TICKS: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` (which evaluates jq programs) under `guard` on this thread.
pub fn guarded<R>(guard: Option<Guard>, f: impl FnOnce() -> R) -> R {
    let before = GUARD.with(|g| g.replace(guard));
    let result = f();
    GUARD.with(|g| *g.borrow_mut() = before);
    result
}

/// The message of the error a tripped guard raises inside jq.
pub const INTERRUPTED: &str = "evaluation interrupted";

/// Whether the guard of this thread has tripped. The flag is read every time, the clock every
/// 256th time.
fn interrupted() -> bool {
    GUARD.with(|g| {
        let g = g.borrow();
        let Some(g) = g.as_ref() else { return false };
        if g.stop.load(Ordering::Relaxed) {
            return true;
        }
        let tick = TICKS.with(|t| {
            let n = t.get().wrapping_add(1);
            t.set(n);
            n
        });
        tick.is_multiple_of(256) && g.deadline.is_some_and(|d| Instant::now() >= d)
    })
}

fn check<'a>() -> Result<(), Exn<'a, Val>> {
    if interrupted() { Err(Exn::from(jaq_core::Error::str(INTERRUPTED))) } else { Ok(()) }
}

/// `__stepwise_check`: its input, unless the guard has tripped.
fn check_native<'a>(_: &'a Lut<Native<Val>>, cv: Cv<'a, Val>) -> ValXs<'a, Val> {
    Box::new(core::iter::once(check().map(|()| cv.1)))
}

static RANGE: OnceLock<Native<Val>> = OnceLock::new();

/// jaq's native `range/3`, looking at the guard before each value.
fn guarded_range<'a>(lut: &'a Lut<Native<Val>>, cv: Cv<'a, Val>) -> ValXs<'a, Val> {
    let Some(range) = RANGE.get() else { return Box::new(core::iter::empty()) };
    Box::new(range.run(lut, cv).map(|r| {
        check()?;
        r
    }))
}

/// jaq's loops, each step through `__stepwise_check`; they replace jaq's definitions of the
/// same names and arities, in place.
const GUARDED_DEFS: &str = "
def repeat(f): def rec: f, (__stepwise_check | rec); rec;
def recurse(f): def rec: ., (f | __stepwise_check | rec); rec;
def while(cond; update): def rec: if cond then ., (update | __stepwise_check | rec) else empty end; rec;
def until(cond; update): def rec: if cond then . else update | __stepwise_check | rec end; rec;
";

fn defs() -> impl Iterator<Item = jaq_core::load::parse::Def<&'static str>> {
    let mut guarded: Vec<_> = jaq_core::load::parse(GUARDED_DEFS, |p| p.defs()).expect("the guarded definitions parse");
    jaq_std::defs().chain(jaq_json::defs()).filter(|d| allowed(d.name)).map(move |d| {
        match guarded.iter().position(|g| g.name == d.name && g.args.len() == d.args.len()) {
            Some(i) => guarded.swap_remove(i),
            None => d,
        }
    })
}

fn funs() -> impl Iterator<Item = jaq_std::Filter<Native<Val>>> {
    let check: jaq_std::Filter<Native<Val>> = ("__stepwise_check", Box::new([]), Native::new(check_native));
    jaq_std::funs()
        .chain(jaq_json::funs())
        .filter(|(name, _, _)| allowed(name))
        .map(|(name, args, native)| {
            if name == "range" && args.len() == 3 {
                let _ = RANGE.set(native);
                (name, args, Native::new(guarded_range))
            } else {
                (name, args, native)
            }
        })
        .chain([check])
}

/// Compiles a jq program with jq's standard library, less the [`FORBIDDEN`] definitions.
pub fn compile(code: &str) -> Result<JqFilter, String> {
    let program = File { code, path: () };
    let loader = Loader::new(defs());
    let arena = Arena::default();
    let modules = loader.load(&arena, program).map_err(|errs| {
        let described: Vec<String> = errs.iter().flat_map(|(_, e)| describe_load_error(code, e)).collect();
        format!("jq program does not parse: {}", described.join("; "))
    })?;
    jaq_core::Compiler::default().with_funs(funs()).compile(modules).map_err(|errs| {
        let names: Vec<&str> = errs.iter().flat_map(|(_, es)| es.iter().map(|(name, _)| *name)).collect();
        describe_undefined(code, &names)
    })
}

/// Says which names are undefined; a forbidden one is named first, with where it is.
fn describe_undefined(code: &str, names: &[&str]) -> String {
    if let Some(name) = names.iter().find(|n| !allowed(n)) {
        // `name` is a slice of `code` (or of the module `check_all` builds around it).
        let offset = (name.as_ptr() as usize).wrapping_sub(code.as_ptr() as usize);
        let at = if offset < code.len() {
            format!(" (at character {})", code[..offset].chars().count() + 1)
        } else {
            String::new()
        };
        return format!(
            "jq program uses '{name}'{at}, which is not allowed: jq programs cannot end the run, read the \
             environment or other inputs, or write to the log or standard error"
        );
    }
    format!("jq program does not compile: undefined {}", names.join(", "))
}

fn describe_load_error(code: &str, e: &jaq_core::load::Error<&str>) -> Vec<String> {
    use jaq_core::load::Error;
    // `rest` is the unparsed remainder of `code`, so its offset gives the column.
    let at = |rest: &str| code.len().saturating_sub(rest.len()) + 1;
    match e {
        Error::Io(errs) => errs.iter().map(|(path, msg)| format!("cannot load '{path}': {msg}")).collect(),
        Error::Lex(errs) => errs
            .iter()
            .map(|(expect, rest)| format!("expected {} at character {}", expect.as_str(), at(rest)))
            .collect(),
        Error::Parse(errs) => errs
            .iter()
            .map(|(expect, rest)| {
                if rest.is_empty() {
                    format!("expected {} at the end", expect.as_str())
                } else {
                    format!("expected {} at character {}", expect.as_str(), at(rest))
                }
            })
            .collect(),
    }
}

/// Parses a program without compiling it (cheap): syntax errors only.
fn parse_only(code: &str) -> Result<(), String> {
    let loader = Loader::new(core::iter::empty());
    let arena = Arena::default();
    loader.load(&arena, File { code, path: () }).map(drop).map_err(|errs| {
        let described: Vec<String> = errs.iter().flat_map(|(_, e)| describe_load_error(code, e)).collect();
        format!("jq program does not parse: {}", described.join("; "))
    })
}

/// Checks many programs at once: each is parsed on its own, then all that parse are compiled
/// together as definitions of one module, so jq's standard library is compiled once rather than
/// once per program. Only when that fails is each compiled alone, to say which one is wrong.
pub fn check_all(programs: &[&str]) -> Vec<Result<(), String>> {
    let mut results: Vec<Result<(), String>> = programs.iter().map(|p| parse_only(p)).collect();
    let parsed: Vec<usize> = (0..programs.len()).filter(|&i| results[i].is_ok()).collect();
    if parsed.is_empty() {
        return results;
    }
    let mut module = String::new();
    for &i in &parsed {
        module.push_str(&format!("def __stepwise_{i}: {};\n", programs[i]));
    }
    module.push('.');
    if compile(&module).is_err() {
        // Each alone, so that a forbidden name's position is within its own program.
        for &i in &parsed {
            results[i] = compile(programs[i]).map(drop);
        }
    }
    results
}

/// Runs a compiled program on one JSON value; each output is one value.
pub fn run(filter: &JqFilter, input: serde_json::Value) -> Result<Vec<serde_json::Value>, String> {
    let inputs = RcIter::new(core::iter::empty());
    let out = filter.run((Ctx::new([], &inputs), Val::from(input)));
    let mut values = Vec::new();
    for v in out {
        match v {
            Ok(v) => values.push(serde_json::Value::from(v)),
            Err(e) => return Err(format!("jq error: {e}")),
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_and_runs() {
        let f = compile("{a: .x, b: (.y | map(. + 1))}").unwrap();
        let out = run(&f, serde_json::json!({"x": "v", "y": [1, 2]})).unwrap();
        assert_eq!(out, vec![serde_json::json!({"a": "v", "b": [2, 3]})]);
        let f = compile(".[]").unwrap();
        assert_eq!(run(&f, serde_json::json!([1, 2])).unwrap().len(), 2);
        assert!(compile("{a: ").is_err());
        assert!(compile("nosuchfn(1)").is_err());
        let checked = check_all(&["{a: .x}", "{a: ", "nosuchfn(2)", ". as $x | $x", "import \"x\" as y; ."]);
        assert!(checked[0].is_ok() && checked[3].is_ok(), "{checked:?}");
        assert!(checked[1].is_err() && checked[2].is_err(), "{checked:?}");
        for forbidden in [
            "halt",
            "halt_error",
            "halt_error(1)",
            "env.HOME",
            "$ENV.HOME",
            "input",
            "inputs",
            "debug",
            "debug(\"x\")",
            "stderr",
            "input_filename",
        ] {
            let e = compile(&format!("{{a: 1}} | {forbidden}")).err().unwrap_or_default();
            assert!(e.contains("is not allowed") && e.contains("(at character 10)"), "{forbidden}: {e}");
            assert!(check_all(&[forbidden])[0].as_ref().is_err_and(|e| e.contains("is not allowed")), "{forbidden}");
        }
        // The loops stop once the guard trips, and not before.
        let stop = Arc::new(AtomicBool::new(false));
        let guard = Guard { stop: stop.clone(), deadline: None };
        let f = compile("[limit(5; repeat(1))], [limit(3; .[0] | recurse(. + 1))], [.[0] | while(. < 3; . + 1)], (0 | until(. > 3; . + 1)), [range(3)]").unwrap();
        let out = guarded(Some(guard.clone()), || run(&f, serde_json::json!([0]))).unwrap();
        assert_eq!(
            out,
            [
                serde_json::json!([1, 1, 1, 1, 1]),
                serde_json::json!([0, 1, 2]),
                serde_json::json!([0, 1, 2]),
                serde_json::json!(4),
                serde_json::json!([0, 1, 2])
            ]
            .to_vec()
        );
        stop.store(true, Ordering::Relaxed);
        for endless in [
            "last(range(1e12))",
            "last(repeat(1))",
            "last(recurse(. + 1))",
            "last(0 | while(true; .))",
            "0 | until(false; .)",
        ] {
            let f = compile(endless).unwrap();
            let e = guarded(Some(guard.clone()), || run(&f, serde_json::json!(0))).unwrap_err();
            assert!(e.contains(INTERRUPTED), "{endless}: {e}");
        }
        let guard = Guard { stop: Arc::new(AtomicBool::new(false)), deadline: Some(Instant::now()) };
        let f = compile("last(range(1e12))").unwrap();
        assert!(guarded(Some(guard), || run(&f, serde_json::json!(0))).is_err());
        let f = compile("error(\"boom\")").unwrap();
        assert!(run(&f, serde_json::json!(1)).is_err());
    }
}
