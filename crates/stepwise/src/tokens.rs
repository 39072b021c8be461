//! `stepwise token create|list|revoke`: the console's API tokens in the run store (process
//! format section 9). A token is printed once; the store keeps only its hash.

use std::io::Write;

use anyhow::Context;
use chrono::Utc;
use store::{AuditEntry, Role, Store};

use crate::scheduling::StoreArgs;

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(clap::Subcommand, Debug)]
enum TokenCommand {
    /// Create a token and print it once (only its hash is stored).
    Create {
        /// A unique name (letters, digits, '.', '_', '-').
        name: String,
        /// What it may do: viewer (reads), operator (also actions), admin (also tokens, audit).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Also let it see document contents.
        #[arg(long)]
        view_data: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the tokens: names, roles, created, last used (never the tokens).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token: it is refused from now on.
    Revoke {
        /// The token's name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

async fn open(args: &StoreArgs) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    let url = args.url()?;
    crate::scheduling::open_store(&url).await
}

async fn audit(store: &dyn Store, action: &str, target: &str, detail: Option<String>) -> anyhow::Result<()> {
    let entry = AuditEntry {
        at: Utc::now(),
        actor: "cli".to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
    };
    Ok(store.record_audit(&entry).await?)
}

pub fn token(args: TokenArgs) -> anyhow::Result<u8> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(async {
        match args.command {
            TokenCommand::Create { name, role, view_data, store } => {
                create(&open(&store).await?, &name, role, view_data).await
            }
            TokenCommand::List { json, store } => list(open(&store).await?.as_ref(), json).await,
            TokenCommand::Revoke { name, store } => revoke(open(&store).await?.as_ref(), &name).await,
        }
    })
}

async fn create(store: &std::sync::Arc<dyn Store>, name: &str, role: Role, view_data: bool) -> anyhow::Result<u8> {
    console::token::check_name(name).map_err(anyhow::Error::msg)?;
    let (token, record) = console::token::issue(name, role, view_data);
    match store.create_token(&record).await {
        Err(store::StoreError::DuplicateToken(_)) => {
            eprintln!("error: a token named '{name}' already exists; revoke it first or choose another name");
            return Ok(1);
        }
        result => result?,
    }
    let detail = format!("role {role}{}", if view_data { ", view data" } else { "" });
    audit(store.as_ref(), "token_create", name, Some(detail)).await?;
    writeln!(std::io::stdout(), "{token}")?;
    std::io::stdout().flush()?;
    eprintln!("token '{name}' ({role}) created; it is shown only now: keep it in a secret store");
    Ok(0)
}

async fn list(store: &dyn Store, json: bool) -> anyhow::Result<u8> {
    let tokens = store.tokens().await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&tokens)?)?;
        return Ok(0);
    }
    writeln!(out, "{:<24} {:<9} {:<9} {:<20} LAST USED", "NAME", "ROLE", "DATA", "CREATED")?;
    let when = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    for t in tokens {
        let last = t.last_used_at.map_or_else(|| "never".to_owned(), when);
        let data = if t.view_data { "yes" } else { "no" };
        writeln!(out, "{:<24} {:<9} {:<9} {:<20} {last}", t.name, t.role.as_str(), data, when(t.created_at))?;
    }
    Ok(0)
}

async fn revoke(store: &dyn Store, name: &str) -> anyhow::Result<u8> {
    if store.revoke_token(name, false).await? == store::Revoked::NoSuchToken {
        eprintln!("error: no token named '{name}'");
        return Ok(1);
    }
    audit(store, "token_revoke", name, None).await?;
    eprintln!("token '{name}' revoked");
    Ok(0)
}
