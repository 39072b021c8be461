//! API errors and their bodies. Boomi answers errors in three shapes and the simulator uses all
//! three, so a client must accept each:
//! - `{"@type": "Error", "message": ...}` for refusals of a well-formed request (400 rule
//!   violations such as "already exists", 404 unknown id, 405, 406, 415);
//! - `{"message": ...}` for 401, 403 and 503 (the spec's declared 403/410/503 bodies);
//! - `{"error": {"message": ...}}` for unreadable request bodies (400) and injected 500s.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

/// Which of Boomi's error body shapes to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `{"@type": "Error", "message": ...}`
    Typed,
    /// `{"message": ...}`
    Message,
    /// `{"error": {"message": ...}}`
    Nested,
}

/// A refused request: status, message and body shape.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub shape: Shape,
}

impl ApiError {
    pub fn new(status: StatusCode, shape: Shape, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), shape }
    }

    /// 400 with the `@type: Error` body: a well-formed request that breaks a rule.
    pub fn rule(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Shape::Typed, message)
    }

    /// 400 with the `error.message` body: the request itself cannot be read.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Shape::Nested, message)
    }

    /// 404 with the `@type: Error` body.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, Shape::Typed, message)
    }

    pub fn body(&self) -> Value {
        match self.shape {
            Shape::Typed => json!({ "@type": "Error", "message": self.message }),
            Shape::Message => json!({ "message": self.message }),
            Shape::Nested => json!({ "error": { "message": self.message } }),
        }
    }

    pub fn into_response(self) -> Response {
        json_response(self.status, &self.body())
    }
}

/// A JSON response with a status.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// 200 with an empty body (Boomi's answer to a delete).
pub(crate) fn empty_ok() -> Response {
    Response::new(Body::empty())
}
