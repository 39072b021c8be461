//! jq programs, compiled and run with jaq (a maintained jq implementation in Rust).

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Ctx, Native, RcIter};
use jaq_json::Val;

/// A compiled jq program.
pub type JqFilter = jaq_core::Filter<Native<Val>>;

/// Compiles a jq program with jq's standard library.
pub fn compile(code: &str) -> Result<JqFilter, String> {
    let program = File { code, path: () };
    let loader = Loader::new(jaq_std::defs().chain(jaq_json::defs()));
    let arena = Arena::default();
    let modules = loader.load(&arena, program).map_err(|errs| {
        let described: Vec<String> = errs.iter().flat_map(|(_, e)| describe_load_error(code, e)).collect();
        format!("jq program does not parse: {}", described.join("; "))
    })?;
    jaq_core::Compiler::default().with_funs(jaq_std::funs().chain(jaq_json::funs())).compile(modules).map_err(|errs| {
        let names: Vec<String> =
            errs.iter().flat_map(|(_, es)| es.iter().map(|(name, _)| (*name).to_owned())).collect();
        format!("jq program does not compile: undefined {}", names.join(", "))
    })
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
        let f = compile("error(\"boom\")").unwrap();
        assert!(run(&f, serde_json::json!(1)).is_err());
    }
}
