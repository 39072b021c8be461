//! Boomi's `QueryFilter`: parsing a query body into an expression tree and evaluating it
//! against the JSON form of an object.
//!
//! Simple expressions are `{"property": P, "operator": OP, "argument": [..]}`; groupings are
//! `{"operator": "and" | "or", "nestedExpression": [..]}`, nested to any depth. All comparisons
//! are on strings, case-sensitive (booleans compare as `"true"` / `"false"`); LIKE takes `%` as
//! "any run of characters"; BETWEEN is inclusive. A missing property (or JSON null) only
//! satisfies IS_NULL, NOT_EQUALS and NOT_CONTAINS.

use serde_json::Value;

/// A query operator of the reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Equals,
    Like,
    NotEquals,
    IsNull,
    IsNotNull,
    Between,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    Contains,
    NotContains,
    StartsWith,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "EQUALS" => Op::Equals,
            "LIKE" => Op::Like,
            "NOT_EQUALS" => Op::NotEquals,
            "IS_NULL" => Op::IsNull,
            "IS_NOT_NULL" => Op::IsNotNull,
            "BETWEEN" => Op::Between,
            "GREATER_THAN" => Op::GreaterThan,
            "GREATER_THAN_OR_EQUAL" => Op::GreaterThanOrEqual,
            "LESS_THAN" => Op::LessThan,
            "LESS_THAN_OR_EQUAL" => Op::LessThanOrEqual,
            "CONTAINS" => Op::Contains,
            "NOT_CONTAINS" => Op::NotContains,
            "STARTS_WITH" => Op::StartsWith,
            _ => return None,
        })
    }

    fn arity(self) -> usize {
        match self {
            Op::IsNull | Op::IsNotNull => 0,
            Op::Between => 2,
            _ => 1,
        }
    }
}

/// A parsed filter expression.
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Simple { property: String, op: Op, args: Vec<String> },
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// Parses a query body. `Ok(None)` means "no expression: everything".
pub(crate) fn parse_query(body: &Value, object: &str, allowed: &[&str]) -> Result<Option<Expr>, String> {
    let Some(obj) = body.as_object() else {
        return Err("the query body must be a JSON object with a QueryFilter".to_string());
    };
    let Some(filter) = obj.get("QueryFilter") else {
        return Err("QueryFilter is required (send {\"QueryFilter\": {}} to list everything)".to_string());
    };
    let Some(filter) = filter.as_object() else {
        return Err("QueryFilter must be an object".to_string());
    };
    match filter.get("expression") {
        None | Some(Value::Null) => Ok(None),
        Some(expr) => parse_expr(expr, object, allowed).map(Some),
    }
}

fn parse_expr(value: &Value, object: &str, allowed: &[&str]) -> Result<Expr, String> {
    let Some(obj) = value.as_object() else {
        return Err("an expression must be an object".to_string());
    };
    let operator = obj.get("operator").and_then(Value::as_str).ok_or("an expression needs a string operator")?;
    if let Some(nested) = obj.get("nestedExpression") {
        let Some(items) = nested.as_array() else {
            return Err("nestedExpression must be an array".to_string());
        };
        if items.is_empty() {
            return Err("nestedExpression must not be empty".to_string());
        }
        let parts = items.iter().map(|e| parse_expr(e, object, allowed)).collect::<Result<Vec<_>, _>>()?;
        return match operator.to_ascii_lowercase().as_str() {
            "and" => Ok(Expr::And(parts)),
            "or" => Ok(Expr::Or(parts)),
            other => Err(format!("a grouping expression's operator must be \"and\" or \"or\", got {other:?}")),
        };
    }
    let op = Op::parse(operator).ok_or_else(|| format!("unknown query operator {operator:?}"))?;
    let property = obj.get("property").and_then(Value::as_str).ok_or("a simple expression needs a string property")?;
    if !allowed.contains(&property) {
        return Err(format!(
            "{property:?} is not a query filter property of {object}; filterable: {}",
            allowed.join(", ")
        ));
    }
    let args = match obj.get("argument") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|a| a.as_str().map(str::to_string).ok_or("query arguments must be strings"))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err("argument must be an array of strings".to_string()),
    };
    if args.len() != op.arity() {
        return Err(format!("{operator} takes {} argument(s), got {}", op.arity(), args.len()));
    }
    Ok(Expr::Simple { property: property.to_string(), op, args })
}

/// The filterable value of a property: strings as they are, booleans and numbers as text.
fn property_value(object: &Value, property: &str) -> Option<String> {
    match object.get(property)? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Expr {
    /// Whether `object` (the JSON form of a record) satisfies the expression.
    pub fn matches(&self, object: &Value) -> bool {
        match self {
            Expr::And(parts) => parts.iter().all(|p| p.matches(object)),
            Expr::Or(parts) => parts.iter().any(|p| p.matches(object)),
            Expr::Simple { property, op, args } => {
                let value = property_value(object, property);
                let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
                let Some(v) = value.as_deref() else {
                    return matches!(op, Op::IsNull | Op::NotEquals | Op::NotContains);
                };
                match op {
                    Op::Equals => v == arg(0),
                    Op::Like => like(v, arg(0)),
                    Op::NotEquals => v != arg(0),
                    Op::IsNull => false,
                    Op::IsNotNull => true,
                    Op::Between => arg(0) <= v && v <= arg(1),
                    Op::GreaterThan => v > arg(0),
                    Op::GreaterThanOrEqual => v >= arg(0),
                    Op::LessThan => v < arg(0),
                    Op::LessThanOrEqual => v <= arg(0),
                    Op::Contains => v.contains(arg(0)),
                    Op::NotContains => !v.contains(arg(0)),
                    Op::StartsWith => v.starts_with(arg(0)),
                }
            }
        }
    }
}

/// SQL-style LIKE with `%` as the only wildcard.
fn like(value: &str, pattern: &str) -> bool {
    let parts: Vec<&str> = pattern.split('%').collect();
    if parts.len() == 1 {
        return value == pattern;
    }
    let (first, rest) = (parts[0], &parts[1..]);
    let Some(mut remaining) = value.strip_prefix(first) else {
        return false;
    };
    let (last, middle) = match rest.split_last() {
        Some((last, middle)) => (*last, middle),
        None => ("", &[][..]),
    };
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_patterns() {
        assert!(like("ada@example.com", "%@example.com"));
        assert!(like("ada@example.com", "ada%"));
        assert!(like("ada@example.com", "%exam%"));
        assert!(like("ada@example.com", "a%a%m"));
        assert!(like("abc", "abc"));
        assert!(like("abc", "%"));
        assert!(!like("abc", "b%"));
        assert!(!like("abc", "%b"));
        assert!(!like("ab", "ab%b"));
    }
}
