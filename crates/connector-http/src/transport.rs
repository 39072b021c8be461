//! What a [`Caller`](crate::Caller) sends each attempt through: the network (reqwest) by
//! default, or another [`Transport`] (process tests answer from their cases, so that the
//! connector's own code above HTTP runs as in production: validation, retries, error
//! documents, paging).

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;

use crate::retry::{Class, classify_error};

/// One attempt of a request, as the transport gets it. Its `Debug` leaves the token out.
#[derive(Clone)]
pub struct Outgoing<'a> {
    pub method: reqwest::Method,
    pub url: &'a reqwest::Url,
    pub bearer: Option<&'a str>,
    /// A JSON body, or none.
    pub json: Option<&'a Value>,
    /// A body that is not JSON: its text and content type (replaces `json`).
    pub text: Option<(&'a str, &'static str)>,
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for Outgoing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("bearer", &self.bearer.map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// An answer: status, headers and body bytes.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

/// No usable answer: how to treat it (retry or not, maybe executed) and a readable message.
#[derive(Clone, Debug)]
pub struct Fault {
    pub class: Class,
    pub status: Option<u16>,
    pub message: String,
}

/// Sends one attempt of a request.
#[async_trait::async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug {
    async fn send(&self, req: &Outgoing<'_>) -> Result<Answer, Fault>;
}

/// The network, through a reqwest client.
#[derive(Clone, Debug)]
pub struct ReqwestTransport(pub reqwest::Client);

#[async_trait::async_trait]
impl Transport for ReqwestTransport {
    async fn send(&self, req: &Outgoing<'_>) -> Result<Answer, Fault> {
        let mut rb = self.0.request(req.method.clone(), req.url.clone()).header(ACCEPT, "application/json");
        if let Some(token) = req.bearer {
            let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {token}")) else {
                return Err(Fault {
                    class: Class::Permanent,
                    status: None,
                    message: "the token contains characters that are not allowed in an HTTP header".to_owned(),
                });
            };
            value.set_sensitive(true);
            rb = rb.header(AUTHORIZATION, value);
        }
        if let Some((text, content_type)) = req.text {
            rb = rb.header(reqwest::header::CONTENT_TYPE, content_type).body(text.to_owned());
        } else if let Some(body) = req.json {
            rb = rb.json(body);
        }
        if let Some(t) = req.timeout {
            rb = rb.timeout(t);
        }
        let fault = |e: reqwest::Error| Fault { class: classify_error(&e), status: None, message: describe(&e) };
        let resp = rb.send().await.map_err(fault)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| Fault {
            class: Class::Transient { maybe_executed: true },
            status: Some(status),
            message: describe(&e),
        })?;
        Ok(Answer { status, headers, body })
    }
}

fn describe(err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "the request timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else if err.is_body() || err.is_decode() {
        "the answer could not be read"
    } else {
        "the request failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let text = s.to_string();
        if !causes.contains(&text) {
            causes.push(text);
        }
        source = s.source();
    }
    if causes.is_empty() { what.to_owned() } else { format!("{what}: {}", causes.join(": ")) }
}
