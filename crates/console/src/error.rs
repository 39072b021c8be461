//! Errors of the API: a status and `{"error": "..."}`, also for the refusals axum makes itself.

use axum::Json;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// Whether the caller is unknown (401), as opposed to the store failing.
    pub(crate) fn is_unauthorized(&self) -> bool {
        self.status == StatusCode::UNAUTHORIZED
    }

    pub(crate) fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub(crate) fn forbidden(message: &str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
}

impl From<store::StoreError> for ApiError {
    fn from(error: store::StoreError) -> ApiError {
        tracing::error!(message = "Run store error in the console.", %error);
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the run store is unavailable; try again")
    }
}

impl From<scheduler::Stopped> for ApiError {
    fn from(error: scheduler::Stopped) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({"error": self.message}));
        if self.status == StatusCode::UNAUTHORIZED {
            return (self.status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response();
        }
        (self.status, body).into_response()
    }
}

/// Whether `response` is one of the console's own answers (JSON or a page).
fn is_ours(response: &Response) -> bool {
    let kind = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    kind.starts_with("application/json") || kind.starts_with("text/html")
}

/// The refusals axum makes itself (a method the path does not take, a body too large or of
/// the wrong type, a body or query an extractor rejects) answered as the console's own:
/// `{"error": ...}`, or a page for a browser.
pub(crate) async fn uniform(request: Request, next: Next) -> Response {
    let browser = crate::auth::from_browser(&request);
    let what = format!("{} {}", request.method(), request.uri().path());
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_ours(&response) {
        return response;
    }
    let allow = (status == StatusCode::METHOD_NOT_ALLOWED)
        .then(|| crate::allowed(&path).iter().map(Method::as_str).collect::<Vec<_>>().join(", "))
        .and_then(|allow| header::HeaderValue::from_str(&allow).ok());
    let body = axum::body::to_bytes(response.into_body(), 16 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    let message = match allow.as_ref().and_then(|a| a.to_str().ok()) {
        Some(allow) => format!("{what}: this path takes {allow}"),
        None if text.is_empty() => format!("{what}: {}", status.canonical_reason().unwrap_or("refused")),
        None => format!("{what}: {text}"),
    };
    let error = ApiError::new(status, message);
    let mut answer = if browser { crate::pages::refusal_page(None, error) } else { error.into_response() };
    if let Some(allow) = allow {
        answer.headers_mut().insert(header::ALLOW, allow);
    }
    answer
}
