//! jq programs, compiled and run with jaq (a maintained jq implementation in Rust).

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Ctx, Native, RcIter};
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

/// Compiles a jq program with jq's standard library, less the [`FORBIDDEN`] definitions.
pub fn compile(code: &str) -> Result<JqFilter, String> {
    let program = File { code, path: () };
    let defs = jaq_std::defs().chain(jaq_json::defs()).filter(|d| allowed(d.name));
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader.load(&arena, program).map_err(|errs| {
        let described: Vec<String> = errs.iter().flat_map(|(_, e)| describe_load_error(code, e)).collect();
        format!("jq program does not parse: {}", described.join("; "))
    })?;
    let funs = jaq_std::funs().chain(jaq_json::funs()).filter(|(name, _, _)| allowed(name));
    jaq_core::Compiler::default().with_funs(funs).compile(modules).map_err(|errs| {
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
        let f = compile("error(\"boom\")").unwrap();
        assert!(run(&f, serde_json::json!(1)).is_err());
    }
}
