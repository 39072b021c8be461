//! A step's own keys (`method`, `path`, `body`, `records`, `paginate`, `schema`,
//! `idempotent`), read from the options the compiler hands over, and what `validate` can tell
//! of them before any run.

use compiler::{CallProblem, HttpBody, PaginateSpec};
use serde_json::{Map, Value};

/// The request method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// The methods, as written, in the order messages list them.
pub const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

impl Method {
    pub fn parse(text: &str) -> Option<Method> {
        Some(match text {
            "get" => Method::Get,
            "post" => Method::Post,
            "put" => Method::Put,
            "patch" => Method::Patch,
            "delete" => Method::Delete,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        METHODS[self as usize]
    }

    pub fn http(self) -> connector_http::reqwest::Method {
        use connector_http::reqwest::Method as M;
        match self {
            Method::Get => M::GET,
            Method::Post => M::POST,
            Method::Put => M::PUT,
            Method::Patch => M::PATCH,
            Method::Delete => M::DELETE,
        }
    }

    /// Whether sending it twice has the effect of sending it once (HTTP's definition): GET,
    /// PUT and DELETE are; POST and PATCH only when the step says so.
    pub fn idempotent(self) -> bool {
        matches!(self, Method::Get | Method::Put | Method::Delete)
    }

    /// Whether the document is the body by default.
    fn sends_body(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch)
    }
}

/// One piece of a path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Param(String),
}

/// A step's options, checked.
#[derive(Clone, Debug)]
pub struct StepOptions {
    pub method: Method,
    pub path: Vec<Piece>,
    pub body: HttpBody,
    pub records: Option<String>,
    pub paginate: Option<PaginateSpec>,
    pub schema: Option<String>,
    pub idempotent: bool,
}

impl StepOptions {
    /// The options of a step, or every problem, each at its field.
    pub fn read(options: &Map<String, Value>) -> Result<StepOptions, Vec<CallProblem>> {
        let mut problems = Vec::new();
        let mut problem =
            |field: &str, message: String| problems.push(CallProblem { field: field.to_owned(), message });
        let text = |key: &str| options.get(key).and_then(Value::as_str);
        let method = match text("method") {
            Some(m) => Method::parse(m).unwrap_or_else(|| {
                problem("method", format!("unknown method '{m}'; known: {}", METHODS.join(", ")));
                Method::Get
            }),
            None => {
                problem("method", "missing 'method'".to_owned());
                Method::Get
            }
        };
        let path = parse_path(text("path").unwrap_or("")).unwrap_or_else(|e| {
            problem("path", e);
            Vec::new()
        });
        let body = match options.get("body").map(|b| serde_json::from_value::<HttpBody>(b.clone())) {
            None if method.sends_body() => HttpBody::Json,
            None => HttpBody::None,
            Some(Ok(b)) => {
                if !method.sends_body() && b != HttpBody::None {
                    problem("body", format!("a {} request has no body", method.as_str()));
                }
                b
            }
            Some(Err(_)) => {
                problem("body", "'body' is one of json, text, none".to_owned());
                HttpBody::None
            }
        };
        let records = text("records").map(str::to_owned);
        if let Some(r) = &records
            && let Err(e) = check_pointer(r)
        {
            problem("records", e);
        }
        let paginate = match options.get("paginate").map(|p| serde_json::from_value::<PaginateSpec>(p.clone())) {
            None => None,
            Some(Ok(p)) => {
                if let PaginateSpec::NextUrl { pointer, .. } | PaginateSpec::Cursor { pointer, .. } = &p
                    && let Err(e) = check_pointer(pointer)
                {
                    problem("paginate/pointer", e);
                }
                if matches!(p, PaginateSpec::Page { .. } | PaginateSpec::Offset { .. }) && records.is_none() {
                    problem(
                        "paginate",
                        "page and offset paging count the records of each page: give 'records'".to_owned(),
                    );
                }
                Some(p)
            }
            Some(Err(e)) => {
                problem("paginate", format!("'paginate' is not valid: {e}"));
                None
            }
        };
        let schema = text("schema").map(str::to_owned);
        let idempotent = options.get("idempotent").and_then(Value::as_bool).unwrap_or(false);
        if problems.is_empty() {
            Ok(StepOptions { method, path, body, records, paginate, schema, idempotent })
        } else {
            Err(problems)
        }
    }

    /// The names of the path's parameters, in order.
    pub fn path_params(&self) -> impl Iterator<Item = &str> {
        self.path.iter().filter_map(|p| match p {
            Piece::Param(n) => Some(n.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// Whether a fault the server may have executed may be followed by the same request.
    pub fn safety(&self) -> connector_http::Safety {
        if self.method.idempotent() || self.idempotent {
            connector_http::Safety::Idempotent
        } else {
            connector_http::Safety::NotIdempotent
        }
    }
}

/// Splits a path template into text and `{name}` parameters. The path is relative to the
/// connection's base URL: it starts with `/` (or is empty) and has no query, fragment or host.
pub fn parse_path(template: &str) -> Result<Vec<Piece>, String> {
    if !template.is_empty() && !template.starts_with('/') {
        return Err(format!("path '{template}' must start with '/' (it follows the connection's base_url)"));
    }
    if template.contains(['?', '#']) {
        return Err(format!("path '{template}' must not hold a query or a fragment; use 'query'"));
    }
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!("path '{template}' has a '}}' without its '{{'"));
        }
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("path '{template}' has a '{{' without its '}}'"));
        };
        let name = &rest[open + 1..open + close];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("path '{template}': '{{{name}}}' is not a parameter name (letters, digits, _)"));
        }
        if open > 0 {
            out.push(Piece::Text(rest[..open].to_owned()));
        }
        out.push(Piece::Param(name.to_owned()));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_owned()));
    }
    Ok(out)
}

/// A JSON pointer (RFC 6901): empty, or `/` then tokens where `~` is followed by 0 or 1.
pub fn check_pointer(pointer: &str) -> Result<(), String> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(format!("'{pointer}' is not a JSON pointer: it must start with '/'"));
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!("'{pointer}' is not a JSON pointer: '~' must be followed by 0 or 1"));
        }
    }
    Ok(())
}

/// What `validate` can tell of a step: its options, and its parameters against its path.
pub fn check(call: &compiler::StaticCall<'_>) -> Vec<CallProblem> {
    let mut problems = StepOptions::read(call.options).err().unwrap_or_default();
    // The parameters against the path, even when another key has a problem.
    let path = call.options.get("path").and_then(Value::as_str).unwrap_or("");
    let Ok(pieces) = parse_path(path) else { return problems };
    let path_params = || {
        pieces.iter().filter_map(|p| match p {
            Piece::Param(n) => Some(n.as_str()),
            Piece::Text(_) => None,
        })
    };
    let names: Vec<&str> = call.parameters.iter().map(|(n, _)| *n).collect();
    for name in path_params() {
        if !names.contains(&name) {
            problems.push(CallProblem {
                field: "path".to_owned(),
                message: format!("path parameter '{{{name}}}' has no value: add it to 'parameters'"),
            });
        }
    }
    let used: Vec<&str> = path_params().collect();
    for (name, value) in &call.parameters {
        if !used.contains(name) {
            problems.push(CallProblem {
                field: format!("parameters/{name}"),
                message: format!("parameter '{name}' is not used in 'path'; query parameters go in 'query'"),
            });
        } else if value.is_some_and(str::is_empty) {
            problems.push(CallProblem {
                field: format!("parameters/{name}"),
                message: format!("path parameter '{name}' is empty"),
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_text_and_parameters() {
        assert_eq!(
            parse_path("/v1.0/groups/{group}/members").unwrap(),
            vec![Piece::Text("/v1.0/groups/".into()), Piece::Param("group".into()), Piece::Text("/members".into())]
        );
        assert_eq!(parse_path("").unwrap(), vec![]);
        assert_eq!(parse_path("/{a}{b}").unwrap().len(), 3);
        for bad in ["v1/x", "/x?a=1", "/{", "/}", "/{}", "/{a-b}", "/{a"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pointers() {
        for ok in ["", "/value", "/@odata.nextLink", "/a~1b/0", "/a~0"] {
            assert!(check_pointer(ok).is_ok(), "{ok}");
        }
        for bad in ["value", "/a~2", "/a~"] {
            assert!(check_pointer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn safety_follows_the_method_and_the_step() {
        let read = |m: &str, idem: bool| {
            let mut o = Map::new();
            o.insert("method".into(), m.into());
            if idem {
                o.insert("idempotent".into(), true.into());
            }
            StepOptions::read(&o).unwrap().safety()
        };
        use connector_http::Safety::*;
        assert_eq!(
            [read("get", false), read("put", false), read("delete", false), read("post", false), read("patch", false)],
            [Idempotent, Idempotent, Idempotent, NotIdempotent, NotIdempotent]
        );
        assert_eq!([read("post", true), read("patch", true)], [Idempotent, Idempotent]);
    }
}
