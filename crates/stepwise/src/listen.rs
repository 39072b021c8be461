//! `stepwise serve --listen ADDR`: binds the address and serves the console (crate `console`)
//! next to the serve loop, which it steers through a [`scheduler::Control`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use store::Store;

/// The console being served; [`ConsoleServer::stop`] ends it.
pub struct ConsoleServer {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

/// Refuses plain HTTP on an address other than loopback unless `insecure` (`--insecure-http`):
/// tokens would cross the network in clear.
pub fn check_address(addr: SocketAddr, insecure: bool) -> anyhow::Result<()> {
    if addr.ip().is_loopback() || insecure {
        return Ok(());
    }
    anyhow::bail!(
        "--listen {addr}: refusing to serve the console over plain HTTP on a non-loopback address \
         (tokens would cross the network in clear); listen on 127.0.0.1 behind a TLS reverse proxy \
         (docs/console.md), or pass --insecure-http"
    )
}

/// Binds `addr`, makes the first admin token if the store holds none (printing it once on
/// stderr), and serves the console until [`ConsoleServer::stop`].
pub async fn start(
    addr: SocketAddr,
    store: Arc<dyn Store>,
    control: scheduler::Control,
) -> anyhow::Result<ConsoleServer> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr().unwrap_or(addr);
    if let Some(token) = console::first_token(store.as_ref()).await? {
        eprintln!(
            "The run store holds no API token, so an admin token named 'admin' was made. It is shown only now:\n\
             \n    http://{bound}/login?token={token}\n\n\
             Scripts send it as 'Authorization: Bearer TOKEN'. Make more with `stepwise token create`."
        );
    }
    let router = console::router(store, control);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(error) = console::serve(listener, router, shutdown).await {
            tracing::error!(message = "The console's HTTP server failed.", %error);
        }
    });
    tracing::info!(message = "Console listening.", addr = %bound);
    Ok(ConsoleServer { stop, handle })
}

impl ConsoleServer {
    /// Stops serving (requests in flight get a few seconds).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if tokio::time::timeout(Duration::from_secs(5), self.handle).await.is_err() {
            tracing::warn!(message = "The console did not stop in time.");
        }
    }
}
