//! Helpers: start a simulator and send hand-written, authenticated JSON requests to it.

use boomi_sim::{SimConfig, SimHandle, start};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A started simulator and a client with the right credentials.
pub struct Sim {
    pub handle: SimHandle,
    pub http: reqwest::Client,
    pub account: String,
    pub user: String,
    pub token: String,
}

/// A simulator without rate limit or faults, with `seed_users` users.
pub async fn sim(seed_users: usize) -> Sim {
    sim_with(SimConfig { seed_users, rate_per_second: None, ..SimConfig::default() }).await
}

pub async fn sim_with(config: SimConfig) -> Sim {
    let account = config.account_id.clone();
    let user = format!("BOOMI_TOKEN.{}", config.email);
    let token = config.token.clone();
    let handle = start(config).await.expect("simulator starts");
    Sim { handle, http: reqwest::Client::new(), account, user, token }
}

/// A parsed answer: status and JSON body (Null when the body is empty or not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

impl Sim {
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/rest/v1/{}/{path}", self.handle.base_url(), self.account)
    }

    pub fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.basic_auth(&self.user, Some(&self.token)).header("Accept", "application/json")
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.expect("request is answered");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body, text }
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        let req = self.authed(self.http.post(self.url(path))).header("Content-Type", "application/json").json(&body);
        self.send(req).await
    }

    pub async fn post_text(&self, path: &str, text: &str) -> Answer {
        let req =
            self.authed(self.http.post(self.url(path))).header("Content-Type", "text/plain").body(text.to_string());
        self.send(req).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.authed(self.http.get(self.url(path)))).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(self.authed(self.http.delete(self.url(path)))).await
    }

    /// A query with a filter expression (`None` = everything), first page only.
    pub async fn query(&self, object: &str, expression: Option<Value>) -> Answer {
        let filter = match expression {
            Some(e) => json!({ "QueryFilter": { "expression": e } }),
            None => json!({ "QueryFilter": {} }),
        };
        self.post(&format!("{object}/query"), filter).await
    }

    /// Every result of a query, following queryMore; also returns the number of pages.
    pub async fn query_all(&self, object: &str, expression: Option<Value>) -> (Vec<Value>, usize) {
        let mut answer = self.query(object, expression).await;
        let mut all = Vec::new();
        let mut pages = 0;
        loop {
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
            assert_eq!(answer.body["@type"], "QueryResult");
            let result = answer.body["result"].as_array().cloned().unwrap_or_default();
            assert!(result.len() <= 100);
            assert_eq!(answer.body["numberOfResults"], json!(result.len()));
            all.extend(result);
            pages += 1;
            let Some(token) = answer.body["queryToken"].as_str().map(str::to_string) else { break };
            answer = self.post_text(&format!("{object}/queryMore"), &token).await;
        }
        (all, pages)
    }

    /// A simple expression.
    pub fn expr(property: &str, operator: &str, args: &[&str]) -> Value {
        json!({ "property": property, "operator": operator, "argument": args })
    }

    pub async fn grant(&self, user_id: &str, role_id: &str) -> Answer {
        self.post(
            "AccountUserRole",
            json!({ "accountId": self.account, "userId": user_id, "roleId": role_id, "firstName": "New", "lastName": "Person" }),
        )
        .await
    }

    pub fn stat(&self, key: &str) -> u64 {
        self.handle.stats()[key].as_u64().unwrap_or_else(|| panic!("stat {key}"))
    }

    pub fn op_count(&self, op: &str) -> u64 {
        self.handle.stats()["by_operation"][op].as_u64().unwrap_or(0)
    }
}
