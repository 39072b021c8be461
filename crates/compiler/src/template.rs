//! Message templates in Boomi's dialect of `java.text.MessageFormat`, with 1-based placeholders.
//!
//! Rules (as `MessageFormat.applyPattern`): a single quote starts and ends literal text and is
//! itself removed; `''` is one literal quote, inside or outside quoted text; text after an
//! unclosed quote is literal; braces inside quotes are literal; an unmatched `}` outside quotes is
//! literal. `{n}` is parameter `n`, counted from 1. `{}`, `{x}`, `{ 1 }` and `{1 }` (spaces are
//! part of the argument number, which `MessageFormat` then cannot parse), `{1,number}` and an
//! unclosed `{` are errors. Substituted values are never re-parsed.

use std::fmt;

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
    max_param: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// 0-based index into the parameter list.
    Param(usize),
}

/// Why a template does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template has an empty placeholder '{{}}' at character {at}")]
    Empty { at: usize },
    #[error(
        "template placeholder '{{{text}}}' at character {at}: can't parse argument number '{text}' (write {{1}}, digits only, for the first parameter)"
    )]
    NotANumber { text: String, at: usize },
    #[error("template placeholder '{{{text}}}' at character {at}: format types are not supported, only {{n}}")]
    FormatType { text: String, at: usize },
    #[error("template has an unclosed '{{' at character {at}")]
    Unclosed { at: usize },
    #[error("template placeholder '{{0}}' at character {at}: parameters are counted from 1")]
    Zero { at: usize },
}

impl Template {
    /// Parses a template.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut max_param = 0;
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        let mut in_quote = false;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                if chars.get(i + 1) == Some(&'\'') {
                    literal.push('\'');
                    i += 2;
                } else {
                    in_quote = !in_quote;
                    i += 1;
                }
                continue;
            }
            if in_quote || c != '{' {
                literal.push(c);
                i += 1;
                continue;
            }
            // A placeholder.
            let start = i;
            let Some(len) = chars[i + 1..].iter().position(|&c| c == '}') else {
                return Err(TemplateError::Unclosed { at: start + 1 });
            };
            let inner: String = chars[i + 1..i + 1 + len].iter().collect();
            if inner.contains('{') {
                return Err(TemplateError::Unclosed { at: start + 1 });
            }
            if inner.trim().is_empty() {
                return Err(TemplateError::Empty { at: start + 1 });
            }
            if inner.contains(',') {
                return Err(TemplateError::FormatType { text: inner, at: start + 1 });
            }
            // As `MessageFormat`, spaces belong to the argument number: `{ 1 }` is not `{1}`.
            let n: usize = match inner.parse() {
                Ok(n) if inner.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(TemplateError::NotANumber { text: inner, at: start + 1 }),
            };
            if n == 0 {
                return Err(TemplateError::Zero { at: start + 1 });
            }
            if !literal.is_empty() {
                segments.push(Segment::Literal(std::mem::take(&mut literal)));
            }
            segments.push(Segment::Param(n - 1));
            max_param = max_param.max(n);
            i += len + 2;
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(Template { segments, max_param })
    }

    /// The highest parameter number used (1-based), 0 when none.
    pub fn max_param(&self) -> usize {
        self.max_param
    }

    /// Renders with `values[0]` as `{1}`.
    ///
    /// # Panics
    /// Never for a template whose `max_param()` is at most `values.len()`, which the compiler
    /// guarantees before a plan exists; a missing value renders as nothing.
    pub fn render(&self, values: &[String]) -> String {
        let mut out = String::new();
        self.render_into(values, &mut out);
        out
    }

    /// Renders into `out`, appending.
    pub fn render_into(&self, values: &[String], out: &mut String) {
        for seg in &self.segments {
            match seg {
                Segment::Literal(s) => out.push_str(s),
                Segment::Param(i) => out.push_str(values.get(*i).map(String::as_str).unwrap_or("")),
            }
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for seg in &self.segments {
            match seg {
                Segment::Literal(s) => write!(f, "{s}")?,
                Segment::Param(i) => write!(f, "{{{}}}", i + 1)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, values: &[&str]) -> String {
        let values: Vec<String> = values.iter().map(|s| (*s).to_owned()).collect();
        Template::parse(t).unwrap().render(&values)
    }

    #[test]
    fn follows_message_format_quoting() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("Hello {1}", &["Ann"], "Hello Ann"),
            ("{1}{2}{1}", &["a", "b"], "aba"),
            // A lone quote starts literal text and is removed.
            ("it's {1}", &["x"], "its {1}"),
            // A doubled quote is one quote, outside and inside quoted text.
            ("it''s {1}", &["x"], "it's x"),
            ("'it''s' {1}", &["x"], "it's x"),
            // Text after an unclosed quote is literal.
            ("a 'b {1}", &["x"], "a b {1}"),
            // Braces inside quotes are literal.
            ("'{1}' {1}", &["x"], "{1} x"),
            ("'{'{1}'}'", &["x"], "{x}"),
            // JSON wrapping as Boomi users write it.
            (r#"'{"email": "'{1}'"}'"#, &["a@b.c"], r#"{"email": "a@b.c"}"#),
            (r#"'{"userIds": ['{1}'], "groupIds": ['{2}']}'"#, &["7", "9"], r#"{"userIds": [7], "groupIds": [9]}"#),
            // Values containing quotes and braces are never re-parsed.
            ("v={1}", &["it's {2}"], "v=it's {2}"),
            ("'{'{1}'}'", &["'{}'"], "{'{}'}"),
            // An unmatched closing brace outside quotes is literal.
            ("a } b {1}", &["x"], "a } b x"),
            // Non-ASCII.
            ("Grüße, {1} — ✓", &["Zoë"], "Grüße, Zoë — ✓"),
            ("''", &[], "'"),
            ("''''", &[], "''"),
            ("", &[], ""),
        ];
        for (template, values, expected) in cases {
            assert_eq!(&render(template, values), expected, "template {template:?}");
        }
    }

    #[test]
    fn rejects_bad_placeholders() {
        assert_eq!(Template::parse("a {} b"), Err(TemplateError::Empty { at: 3 }));
        assert!(matches!(Template::parse("{x}"), Err(TemplateError::NotANumber { .. })));
        assert!(matches!(Template::parse("{-1}"), Err(TemplateError::NotANumber { .. })));
        // java.text.MessageFormat: "can't parse argument number".
        for spaced in ["{ 1 }", "{1 }", "{ 1}"] {
            let error = Template::parse(spaced).unwrap_err();
            assert!(matches!(error, TemplateError::NotANumber { .. }), "{spaced}");
            assert!(error.to_string().contains("can't parse argument number"), "{error}");
        }
        assert!(matches!(Template::parse("{1,number}"), Err(TemplateError::FormatType { .. })));
        assert!(matches!(Template::parse("abc {1"), Err(TemplateError::Unclosed { .. })));
        assert!(matches!(Template::parse("{1{2}"), Err(TemplateError::Unclosed { .. })));
        assert!(matches!(Template::parse("{0}"), Err(TemplateError::Zero { .. })));
        assert_eq!(Template::parse("'{0}'").unwrap().max_param(), 0);
        assert_eq!(Template::parse("{3} {1}").unwrap().max_param(), 3);
    }
}
