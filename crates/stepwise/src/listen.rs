//! `stepwise serve --listen ADDR`: binds the address and serves the console (crate `console`)
//! next to the serve loop, which it steers through a [`scheduler::Control`], over plain HTTP
//! or, with `--tls-cert` and `--tls-key`, over HTTPS (rustls through axum-server).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use store::Store;

/// How long requests in flight may take to finish once the console stops.
const GRACE: Duration = Duration::from_secs(5);

/// The console being served; [`ConsoleServer::stop`] ends it.
pub struct ConsoleServer {
    stop: Stopper,
    handle: tokio::task::JoinHandle<()>,
}

enum Stopper {
    Plain(tokio::sync::oneshot::Sender<()>),
    Tls(axum_server::Handle<SocketAddr>),
}

/// The PEM files of `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, RSA or EC).
    pub key: PathBuf,
}

/// The address `--listen HOST:PORT` names: an IP address as is, a host name through the
/// system's resolver (its first address; `localhost` is loopback).
pub fn resolve(listen: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs as _;
    let not = |why: String| anyhow::anyhow!("--listen '{listen}': {why}; give HOST:PORT, such as 127.0.0.1:9464");
    if listen.contains("://") {
        return Err(not("an address, not a URL (no scheme: HTTPS is --tls-cert and --tls-key)".to_owned()));
    }
    if listen.starts_with(':') {
        return Err(not("no host (0.0.0.0 listens on every address, 127.0.0.1 on this machine only)".to_owned()));
    }
    let mut addrs = listen.to_socket_addrs().map_err(|e| not(e.to_string()))?;
    addrs.next().ok_or_else(|| not("the name has no address".to_owned()))
}

/// Refuses plain HTTP on an address other than loopback unless `insecure` (`--insecure-http`):
/// tokens would cross the network in clear. With `tls` any address is served.
pub fn check_address(addr: SocketAddr, insecure: bool, tls: bool) -> anyhow::Result<()> {
    if addr.ip().is_loopback() || insecure || tls {
        return Ok(());
    }
    anyhow::bail!(
        "--listen {addr}: refusing to serve the console over plain HTTP on a non-loopback address \
         (tokens would cross the network in clear); serve HTTPS with --tls-cert and --tls-key, \
         listen on 127.0.0.1 behind a TLS reverse proxy (docs/console.md), or pass --insecure-http"
    )
}

/// Reads the certificate chain and the key of `files` into a rustls server configuration
/// (HTTP/2 and HTTP/1.1). Errors name the file; they never quote the key file's contents.
pub fn load_tls(files: &TlsFiles) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("cannot set up TLS")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            anyhow::anyhow!(
                "--tls-cert '{}' and --tls-key '{}': cannot serve TLS with them: {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let name = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("--tls-cert '{name}': cannot read the file"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--tls-cert '{name}': not a PEM certificate chain: {e}"))?;
    if certs.is_empty() {
        anyhow::bail!("--tls-cert '{name}': no certificate in the file (expected PEM '-----BEGIN CERTIFICATE-----')");
    }
    Ok(certs)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let name = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("--tls-key '{name}': cannot read the file"))?;
    // The parser's message may quote a line of the file: never shown, it is a secret.
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        anyhow::anyhow!(
            "--tls-key '{name}': no private key in the file (expected PEM 'PRIVATE KEY', 'RSA PRIVATE KEY' \
             or 'EC PRIVATE KEY')"
        )
    })
}

/// Binds `addr`, makes the first admin token if the store holds none (printing a one-time
/// sign-in address for it on stderr), and serves the console until [`ConsoleServer::stop`]: over plain HTTP, or over
/// HTTPS with `tls` (from [`load_tls`]).
pub async fn start(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    store: Arc<dyn Store>,
    control: scheduler::Control,
) -> anyhow::Result<ConsoleServer> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => ": another program (another serve?) listens there; pick another port",
            std::io::ErrorKind::PermissionDenied => ": ports below 1024 need privileges; pick a port above 1023",
            std::io::ErrorKind::AddrNotAvailable => ": this machine has no such address",
            _ => "",
        };
        anyhow::anyhow!("cannot listen on {addr} ({e}){hint}")
    })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let first = console::first_sign_in(store.as_ref()).await?;
    if let Some(first) = &first {
        let minutes = console::CODE_LIFETIME.as_secs() / 60;
        eprintln!(
            "The run store holds no API token, so an admin token named 'admin' was made. Sign in to the console \
             at this address; it works once, within {minutes} minutes:\n\
             \n    {scheme}://{bound}/login?code={}\n\n\
             The token itself is never shown. For scripts, make tokens with `stepwise token create NAME --role \
             viewer|operator|admin` (or on the console's Tokens page); they send 'Authorization: Bearer TOKEN'.",
            first.code
        );
    }
    if first.is_none() {
        eprintln!(
            "The console is at {scheme}://{bound}/: sign in with a token of the run store (`stepwise token create \
             NAME --role admin` with the store serve uses makes one)."
        );
    }
    let options = console::Options { https: tls.is_some(), sign_in: first.map(|f| f.record) };
    let router = console::router_with(store, control, options);
    let (stop, handle) = match tls {
        None => serve_plain(listener, router),
        Some(config) => serve_tls(listener, config, router)?,
    };
    tracing::info!(message = "Console listening.", addr = %bound, scheme);
    Ok(ConsoleServer { stop, handle })
}

fn serve_plain(listener: tokio::net::TcpListener, router: axum::Router) -> (Stopper, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(error) = console::serve(listener, router, shutdown).await {
            tracing::error!(message = "The console's HTTP server failed.", %error);
        }
    });
    (Stopper::Plain(stop), handle)
}

fn serve_tls(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: axum::Router,
) -> anyhow::Result<(Stopper, tokio::task::JoinHandle<()>)> {
    let listener = listener.into_std().context("cannot serve TLS on the bound address")?;
    let config = axum_server::tls_rustls::RustlsConfig::from_config(config);
    let stop = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, config)
        .context("cannot serve TLS on the bound address")?
        .handle(stop.clone());
    let handle = tokio::spawn(async move {
        if let Err(error) = server.serve(router.into_make_service()).await {
            tracing::error!(message = "The console's HTTPS server failed.", %error);
        }
    });
    Ok((Stopper::Tls(stop), handle))
}

impl ConsoleServer {
    /// Stops serving (requests in flight get a few seconds).
    pub async fn stop(self) {
        match self.stop {
            Stopper::Plain(stop) => {
                let _ = stop.send(());
            }
            Stopper::Tls(handle) => handle.graceful_shutdown(Some(GRACE)),
        }
        if tokio::time::timeout(GRACE, self.handle).await.is_err() {
            tracing::warn!(message = "The console did not stop in time.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_off_loopback_needs_tls_or_insecure() {
        let loopback: SocketAddr = "127.0.0.1:9464".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:9464".parse().unwrap();
        assert!(check_address(loopback, false, false).is_ok());
        assert!(check_address(any, false, false).is_err());
        assert!(check_address(any, true, false).is_ok());
        assert!(check_address(any, false, true).is_ok());
    }

    #[test]
    fn listen_takes_addresses_and_host_names() {
        assert_eq!(resolve("127.0.0.1:9464").unwrap(), "127.0.0.1:9464".parse::<SocketAddr>().unwrap());
        assert_eq!(resolve("[::1]:80").unwrap(), "[::1]:80".parse::<SocketAddr>().unwrap());
        let local = resolve("localhost:9464").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 9464, "{local}");
        for bad in ["9464", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:99999", "", ":9464", "http://127.0.0.1:9464"] {
            let error = resolve(bad).unwrap_err().to_string();
            assert!(error.contains(&format!("--listen '{bad}'")) && error.contains("HOST:PORT"), "{error}");
        }
    }
}
