//! Diagnostics: every problem found in a process file, with where it is.

use std::fmt;

use spec::Location;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem. Messages are lower case, quote identifiers with single quotes, and have no final
/// period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The step the problem is about, if any.
    pub step: Option<String>,
    /// JSON pointer of the offending part of the file.
    pub pointer: String,
    pub location: Option<Location>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(step: Option<&str>, pointer: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            step: step.map(str::to_owned),
            pointer: pointer.into(),
            location: None,
            message: message.into(),
        }
    }

    pub fn warning(step: Option<&str>, pointer: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(step, pointer, message) }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders as `FILE:LINE:COL: error: step 'ID': message`.
    pub fn render(&self, file: &str) -> String {
        let mut s = String::from(file);
        if let Some(loc) = self.location {
            s.push_str(&format!(":{}:{}", loc.line, loc.col));
        }
        s.push_str(&format!(": {self}"));
        s
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: ")?;
        if let Some(step) = &self.step {
            write!(f, "step '{step}': ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// The step id a JSON pointer is inside of, if any.
pub(crate) fn step_of(pointer: &str) -> Option<String> {
    let mut parts = pointer.split('/').skip(1);
    match parts.next() {
        Some("steps") => parts.next().map(|s| s.replace("~1", "/").replace("~0", "~")),
        Some("start") => Some("start".to_owned()),
        _ => None,
    }
}
