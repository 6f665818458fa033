//! The API's listener: every connection under a cap, each request's head within a timeout,
//! TLS when `--tls-cert` and `--tls-key` are given. (`axum::serve` has neither a header-read
//! timeout nor a connection cap: a client that sends half a request held its connection
//! for good, and enough of them would hold every file descriptor.)

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The most connections served at once; one more is closed at once (and logged).
pub const MAX_CONNECTIONS: usize = 512;
/// How long a client has to send a request's head (and to finish a TLS handshake).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head, in bytes (hyper answers 431 beyond it).
const MAX_HEAD: usize = 64 * 1024;

/// The TLS configuration of `--tls-cert` (a PEM chain) and `--tls-key` (a PEM key).
pub fn tls(cert: &std::path::Path, key: &std::path::Path) -> Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read --tls-cert {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("--tls-cert {}: not a PEM certificate chain", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("--tls-cert {}: no certificate in it", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("--tls-key {}: not a PEM private key", key.display()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("--tls-cert and --tls-key do not make a usable pair")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Serves `app` on `listener` until the process ends.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    log: drill_engine::Log,
) {
    let cap = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut warned = false;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, most likely: wait rather than spin.
                log(&format!("daemon: warning: api: cannot accept: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = cap.clone().try_acquire_owned() else {
            if !warned {
                log(&format!(
                    "daemon: warning: api: {MAX_CONNECTIONS} connections are open; closing new ones (this one from {peer})"
                ));
                warned = true;
            }
            drop(stream);
            continue;
        };
        warned = false;
        let app = app.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD);
            match acceptor {
                Some(a) => {
                    let Ok(Ok(s)) = tokio::time::timeout(HEADER_TIMEOUT, a.accept(stream)).await
                    else {
                        return;
                    };
                    let _ = http.serve_connection(TokioIo::new(s), svc).await;
                }
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                }
            }
        });
    }
}
