//! The test file format (mirrors `schemas/process-test.schema.json`; unknown keys are refused).

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

/// A test file: the process it tests and its cases.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The process file, relative to the test file.
    pub process: String,
    pub cases: Vec<Case>,
}

/// One run of the process with given inputs, mocks and expectations.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// Process property values (as `--set`).
    #[serde(default)]
    pub properties: IndexMap<String, String>,
    /// The documents the start step emits instead of reading its connector: a string is the
    /// document's text, anything else its JSON.
    #[serde(default)]
    pub start: Option<Vec<Value>>,
    /// Per connection name, what it answers. Every connection that is not `disk` needs one.
    #[serde(default)]
    pub mocks: IndexMap<String, Mock>,
    /// Files put into the process's directory before the run (a path relative to it, and the
    /// content), for disk connections that read.
    #[serde(default)]
    pub files: IndexMap<String, String>,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Each request gets the first answer whose `when` matches it (answers can be reused).
    #[default]
    Match,
    /// The n-th request gets the n-th answer, which must match it.
    Sequence,
    /// Each answer answers one request: the first answer not used yet whose `when` matches
    /// (what `--record` writes: repeated requests get their answers in order).
    Once,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mock {
    #[serde(default)]
    pub order: Order,
    #[serde(default)]
    pub answers: Vec<Answer>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    #[serde(default)]
    pub when: RequestMatch,
    pub reply: Reply,
}

/// What a request must be like; every key given must match.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestMatch {
    /// HTTP method, for example `POST`.
    pub method: Option<String>,
    /// The end of the URL path, for example `Role/query`.
    pub path: Option<String>,
    /// The GraphQL field the request asks for (KnowBe4), for example `users`.
    pub operation: Option<String>,
    /// A JSON value the request body must contain (objects: these keys, recursively).
    pub body: Option<Value>,
}

/// An answer: a JSON body (status 200 unless given), an HTTP error (status and message), or a
/// transport fault (no answer at all).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    pub status: Option<u16>,
    /// `Some(Value::Null)` for `body: null` (a JSON `null` answer), `None` when not given.
    #[serde(default, deserialize_with = "present")]
    pub body: Option<Value>,
    pub message: Option<String>,
    pub fault: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `COMPLETE`, `COMPLETE_WARN`, `ERROR`, ...
    pub status: Option<String>,
    /// Per step, document counts.
    #[serde(default)]
    pub steps: IndexMap<String, StepCounts>,
    /// Per step, the documents that entered it.
    #[serde(default)]
    pub entered: IndexMap<String, Entered>,
    /// Per mocked connection, the requests it received.
    #[serde(default)]
    pub requests: IndexMap<String, Requests>,
    /// Files the disk connector wrote: a glob relative to the process's directory (one file
    /// must match) and its exact content.
    #[serde(default)]
    pub files: IndexMap<String, String>,
    /// The messages notify steps logged.
    pub notifications: Option<Notifications>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    pub count: Option<usize>,
    /// Exactly these notifications, in order.
    pub exactly: Option<Vec<NotificationMatch>>,
    /// Each must match some notification logged.
    #[serde(default)]
    pub includes: Vec<NotificationMatch>,
}

/// What a notification must be like; every key given must match.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationMatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// The whole message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A part of the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepCounts {
    #[serde(rename = "in")]
    pub documents_in: Option<u64>,
    #[serde(rename = "out")]
    pub documents_out: Option<u64>,
    #[serde(rename = "errors")]
    pub documents_error: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entered {
    pub count: Option<usize>,
    /// Exactly these documents (JSON), in order.
    pub documents: Option<Vec<Value>>,
    /// As many documents, each containing the one given at its position.
    pub subset: Option<Vec<Value>>,
    /// A jq program that must yield `true` for every document.
    pub all: Option<String>,
    /// As many documents, each carrying (at least) the document properties given at its position.
    pub properties: Option<Vec<IndexMap<String, String>>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requests {
    pub count: Option<usize>,
    /// Each must match some request received.
    #[serde(default)]
    pub includes: Vec<RequestMatch>,
}

/// A key that is present is `Some`, even when its value is `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}
