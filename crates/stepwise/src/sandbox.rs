//! `--sandbox`: in-process simulators on free loopback ports, and every simulated connection
//! type pointed at them. Each simulator adds its targets (connection type -> base URL and the
//! token it accepts); connectors read them through `engine::ConnectEnv::sandbox_for`.

use std::collections::HashMap;

use anyhow::Context;
use engine::SandboxTarget;

/// One running simulator.
enum Simulator {
    KnowBe4(knowbe4_sim::SimHandle),
    Boomi(boomi_sim::SimHandle),
    Graph(graph_sim::SimHandle),
}

impl Simulator {
    async fn shutdown(self) {
        match self {
            Simulator::KnowBe4(h) => h.shutdown().await,
            Simulator::Boomi(h) => h.shutdown().await,
            Simulator::Graph(h) => h.shutdown().await,
        }
    }
}

/// The simulators started for one run.
pub struct Sandbox {
    simulators: Vec<Simulator>,
    targets: HashMap<String, SandboxTarget>,
}

impl Sandbox {
    pub async fn start() -> anyhow::Result<Sandbox> {
        let mut sandbox = Sandbox { simulators: Vec::new(), targets: HashMap::new() };
        sandbox.start_knowbe4().await?;
        sandbox.start_boomi().await?;
        sandbox.start_graph().await?;
        Ok(sandbox)
    }

    /// The KnowBe4 simulator with KnowBe4's real limits: `knowbe4` connections use its
    /// read/write token, and `account` (Partner API) calls its partner token.
    async fn start_knowbe4(&mut self) -> anyhow::Result<()> {
        // With the edge-case users, so that processes tried here meet a plus-addressed email
        // and names with quotes.
        let config = knowbe4_sim::SimConfig { seed_edge_cases: true, ..knowbe4_sim::SimConfig::default() };
        let token_of =
            |kind: knowbe4_sim::TokenKind| config.tokens.iter().find(|(_, k)| *k == kind).map(|(t, _)| t.clone());
        let token =
            token_of(knowbe4_sim::TokenKind::ReadWrite).context("the KnowBe4 simulator has no read/write token")?;
        let partner = token_of(knowbe4_sim::TokenKind::Partner);
        let handle = knowbe4_sim::start(config).await.context("cannot start the KnowBe4 simulator")?;
        let base_url = handle.base_url();
        tracing::info!(url = %base_url, "KnowBe4 sandbox started.");
        self.targets
            .insert("knowbe4".to_owned(), SandboxTarget { base_url: base_url.clone(), token, ..Default::default() });
        if let Some(token) = partner {
            self.targets
                .insert(knowbe4::PARTNER_SANDBOX.to_owned(), SandboxTarget { base_url, token, ..Default::default() });
        }
        self.simulators.push(Simulator::KnowBe4(handle));
        Ok(())
    }

    /// The Boomi Platform simulator with Boomi's limit (10 requests per second): `boomi_platform`
    /// connections use its account id, email and token instead of their own.
    async fn start_boomi(&mut self) -> anyhow::Result<()> {
        let config = boomi_sim::SimConfig { seed_edge_cases: true, ..boomi_sim::SimConfig::default() };
        let extra = [("account_id".to_owned(), config.account_id.clone()), ("email".to_owned(), config.email.clone())];
        let token = config.token.clone();
        let handle = boomi_sim::start(config).await.context("cannot start the Boomi Platform simulator")?;
        let base_url = handle.base_url();
        tracing::info!(url = %base_url, "Boomi Platform sandbox started.");
        self.targets
            .insert("boomi_platform".to_owned(), SandboxTarget { base_url, token, extra: extra.into_iter().collect() });
        self.simulators.push(Simulator::Boomi(handle));
        Ok(())
    }

    /// The Microsoft Graph simulator: `http` connections to `graph.microsoft.com` are sent to
    /// it, with its OAuth2 token URL, client id and secret instead of their own.
    async fn start_graph(&mut self) -> anyhow::Result<()> {
        let config = graph_sim::SimConfig::default();
        let (tenant, client_id, secret) =
            (config.tenant.clone(), config.client_id.clone(), config.client_secret.clone());
        let handle = graph_sim::start(config).await.context("cannot start the Microsoft Graph simulator")?;
        let base_url = handle.base_url();
        tracing::info!(url = %base_url, "Microsoft Graph sandbox started.");
        let extra = [
            ("auth".to_owned(), "oauth2_client_credentials".to_owned()),
            ("token_url".to_owned(), format!("{base_url}/{tenant}/oauth2/v2.0/token")),
            ("client_id".to_owned(), client_id),
        ];
        self.targets.insert(
            connector_rest::sandbox_key("graph.microsoft.com"),
            SandboxTarget { base_url, token: secret, extra: extra.into_iter().collect() },
        );
        self.simulators.push(Simulator::Graph(handle));
        Ok(())
    }

    pub fn targets(&self) -> HashMap<String, SandboxTarget> {
        self.targets.clone()
    }

    pub async fn shutdown(self) {
        for s in self.simulators {
            s.shutdown().await;
        }
    }
}
