//! Logs never carry the token or the Authorization header. A test binary of its own: tracing's
//! callsite cache makes log capture unreliable when other tests log on other threads.

use std::io::Write;
use std::sync::{Arc, Mutex};

use boomi_sim::{STANDARD_USER_ROLE_ID, SimConfig, start};
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn tokens_are_not_logged() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    // The test runtime is single-threaded, so the server's tasks log through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    let token = "very-secret-token-123";
    let config = SimConfig { token: token.to_string(), rate_per_second: None, seed_users: 2, ..SimConfig::default() };
    let account = config.account_id.clone();
    let user = format!("BOOMI_TOKEN.{}", config.email);
    let handle = start(config).await.expect("simulator starts");
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}/api/rest/v1/{account}/{path}", handle.base_url());
    let body = json!({ "accountId": account, "userId": "logged@example.com", "roleId": STANDARD_USER_ROLE_ID });
    let ok = http
        .post(url("AccountUserRole"))
        .basic_auth(&user, Some(token))
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .expect("answered");
    assert_eq!(ok.status(), reqwest::StatusCode::OK);
    let bad = http
        .get(url("Role/x"))
        .basic_auth(&user, Some("wrong-secret-456"))
        .header("Accept", "application/json")
        .send()
        .await
        .expect("answered");
    assert_eq!(bad.status(), reqwest::StatusCode::UNAUTHORIZED);
    handle.shutdown().await;
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|e| e.into_inner())).to_string();
    assert!(logs.contains("boomi-sim request"), "{logs}");
    assert!(logs.contains("[redacted]"), "the config is logged, redacted: {logs}");
    for secret in [token, "wrong-secret-456", "Basic ", "authorization"] {
        assert!(!logs.contains(secret), "{secret} in logs:\n{logs}");
    }
}
