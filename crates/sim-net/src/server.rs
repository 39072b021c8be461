//! Binding, serving and stopping a simulator's axum app on a [`KillableListener`], and the
//! per-connection info its handlers get.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::SimError;
use crate::listener::KillableListener;

/// Per-connection info (`ConnectInfo<Conn>`): the peer and the switch a "dropped connection"
/// fault flips.
#[derive(Clone)]
pub struct Conn {
    pub remote: SocketAddr,
    kill: Arc<AtomicBool>,
}

impl Conn {
    /// Makes every further read and write of this connection fail, so it closes without an
    /// answer.
    pub fn drop_connection(&self) {
        self.kill.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        Conn { remote: *stream.remote_addr(), kill: stream.io().kill_switch() }
    }
}

/// A bound listening socket, not yet serving.
pub struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

/// Binds `addr` (port 0 picks any free port).
pub async fn bind(addr: SocketAddr) -> Result<Bound, SimError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })?;
    let addr = listener.local_addr().map_err(SimError::Serve)?;
    Ok(Bound { listener, addr })
}

impl Bound {
    /// The bound address (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Spawns the server on the current tokio runtime, with [`Conn`] as connect info; `name`
    /// is the simulator's name in logs.
    pub fn serve(self, name: &'static str, app: Router) -> Running {
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server =
                axum::serve(KillableListener(self.listener), app.into_make_service_with_connect_info::<Conn>())
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    });
            if let Err(e) = server.await {
                tracing::error!(error = %e, "{name} server stopped");
            }
        });
        Running { addr: self.addr, shutdown: Some(tx), task: Some(task) }
    }
}

/// A running server. Dropping it stops the server too; [`Running::shutdown`] also waits.
pub struct Running {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests and waits (up to 5 s) for the server to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let Some(mut task) = self.task.take() else {
            return;
        };
        if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
            task.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
