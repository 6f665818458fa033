//! HTTP connections: a keep-alive pool of HTTP/1.1 connections, or one multiplexed HTTP/2
//! connection; plain TCP or TLS (rustls, with an extra CA file or, for staging, no
//! verification). Built on hyper's connection API so that nothing sits between the schedule
//! and the socket but a mutex and a handshake.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::metrics::Failure;

/// What the client connects to and how.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub version: drill_spec::model::HttpVersion,
    /// PEM file of extra CA certificates.
    pub ca_file: Option<String>,
    pub insecure: bool,
}

/// Errors setting up the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read CA file {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("CA file {path} holds no usable certificate")]
    CaEmpty { path: String },
    #[error("invalid TLS server name \"{0}\"")]
    ServerName(String),
    #[error("invalid URL \"{0}\": {1}")]
    Url(String, String),
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Stream = Box<dyn Io>;

/// A response, fully read.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub request_id: Option<String>,
    pub body: Bytes,
}

/// A client for one origin.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.inner.cfg.host)
            .field("port", &self.inner.cfg.port)
            .finish()
    }
}

struct Inner {
    cfg: ClientConfig,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    idle: Mutex<Vec<http1::SendRequest<Full<Bytes>>>>,
    h2: tokio::sync::Mutex<Option<http2::SendRequest<Full<Bytes>>>>,
    /// At most this many HTTP/1.1 connections at once (busy and idle): a request waits for
    /// one to be free rather than opening more. `None`: unbounded.
    busy: Option<tokio::sync::Semaphore>,
}

/// Skips certificate verification (staging with self-signed certificates only).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config(cfg: &ClientConfig) -> Result<rustls::ClientConfig, ClientError> {
    use drill_spec::model::HttpVersion;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::ServerName(e.to_string()))?;
    let mut config = if cfg.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &cfg.ca_file {
            use rustls::pki_types::pem::PemObject;
            let pem = std::fs::read(path).map_err(|source| ClientError::CaFile {
                path: path.clone(),
                source,
            })?;
            let mut added = 0;
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem).flatten() {
                if roots.add(cert).is_ok() {
                    added += 1;
                }
            }
            if added == 0 {
                return Err(ClientError::CaEmpty { path: path.clone() });
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = match cfg.version {
        HttpVersion::Http1 => vec![b"http/1.1".to_vec()],
        HttpVersion::Http2 => vec![b"h2".to_vec()],
        HttpVersion::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Ok(config)
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Self, ClientError> {
        let tls = if cfg.https {
            let name = rustls::pki_types::ServerName::try_from(cfg.host.clone())
                .map_err(|_| ClientError::ServerName(cfg.host.clone()))?;
            Some((
                tokio_rustls::TlsConnector::from(Arc::new(tls_config(&cfg)?)),
                name,
            ))
        } else {
            None
        };
        Ok(Self {
            inner: Arc::new(Inner {
                cfg,
                tls,
                idle: Mutex::new(Vec::new()),
                h2: tokio::sync::Mutex::new(None),
                busy: None,
            }),
        })
    }

    /// A client for the same origin with its own connections (the TLS configuration is
    /// shared): what one load worker owns, so that no connection is handed between threads.
    /// It opens HTTP/1.1 connections as requests need them, up to `max_connections`; beyond,
    /// a request waits for a connection to be free (the wait is within its timeout, and in its
    /// latency, which is measured from the intended start) instead of opening more: a
    /// hiccup of the target cannot turn into a storm of new connections.
    pub fn fork(&self, max_connections: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                cfg: self.inner.cfg.clone(),
                tls: self.inner.tls.clone(),
                idle: Mutex::new(Vec::new()),
                h2: tokio::sync::Mutex::new(None),
                busy: Some(tokio::sync::Semaphore::new(max_connections.max(1))),
            }),
        }
    }

    /// `host:port` for the Host header.
    pub fn authority(&self) -> String {
        let c = &self.inner.cfg;
        let default = if c.https { 443 } else { 80 };
        if c.port == default {
            c.host.clone()
        } else {
            format!("{}:{}", c.host, c.port)
        }
    }

    /// Opens a connection; returns the stream and whether the server chose HTTP/2.
    async fn dial(&self) -> Result<(Stream, bool), Failure> {
        let c = &self.inner.cfg;
        let tcp = TcpStream::connect((c.host.as_str(), c.port))
            .await
            .map_err(|_| Failure::Connect)?;
        let _ = tcp.set_nodelay(true);
        match &self.inner.tls {
            None => Ok((
                Box::new(tcp),
                c.version == drill_spec::model::HttpVersion::Http2,
            )),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|_| Failure::Connect)?;
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                Ok((Box::new(tls), h2))
            }
        }
    }

    /// A dedicated HTTP/1.1 connection, for closed-loop workers.
    pub async fn connect_h1(&self) -> Result<http1::SendRequest<Full<Bytes>>, Failure> {
        let (stream, _) = self.dial().await?;
        let (send, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Connect)?;
        tokio::spawn(conn);
        Ok(send)
    }

    /// Sends a request and reads the whole response, within `timeout`.
    pub async fn send(
        &self,
        req: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Response, Failure> {
        match tokio::time::timeout(timeout, self.exchange(req)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Timeout),
        }
    }

    async fn exchange(&self, req: http::Request<Full<Bytes>>) -> Result<Response, Failure> {
        if let Some(mut h2) = self.h2_sender().await? {
            let resp = h2.send_request(req).await.map_err(|_| Failure::Reset)?;
            return read(resp).await;
        }
        // A connection of the bounded pool is this request's while the permit lives: a new
        // one is opened only with a permit and no idle one, so at most that many exist.
        let _permit = match &self.inner.busy {
            Some(b) => Some(b.acquire().await.map_err(|_| Failure::Connect)?),
            None => None,
        };
        let (mut sender, mut reused) = match self.pooled() {
            Some(s) => (s, true),
            None => (self.new_h1().await?, false),
        };
        if sender.ready().await.is_err() {
            sender = self.new_h1().await?;
            reused = false;
        }
        // A kept-alive connection the server has just closed fails before any response; that
        // is the client's race, not the server's error, so retry once on a fresh connection.
        let retry = reused.then(|| clone_request(&req));
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) if e.is_canceled() || e.is_incomplete_message() || e.is_closed() => {
                let Some(again) = retry else {
                    return Err(Failure::Reset);
                };
                sender = self.new_h1().await?;
                sender
                    .send_request(again)
                    .await
                    .map_err(|_| Failure::Reset)?
            }
            Err(_) => return Err(Failure::Reset),
        };
        let out = read(resp).await;
        if out.is_ok() && !sender.is_closed() {
            self.inner
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(sender);
        }
        out
    }

    /// An idle pooled connection that is still open.
    fn pooled(&self) -> Option<http1::SendRequest<Full<Bytes>>> {
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(s) = idle.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    async fn new_h1(&self) -> Result<http1::SendRequest<Full<Bytes>>, Failure> {
        self.connect_h1().await
    }

    /// The shared HTTP/2 connection, when HTTP/2 is in use (forced, or chosen by ALPN).
    async fn h2_sender(&self) -> Result<Option<http2::SendRequest<Full<Bytes>>>, Failure> {
        use drill_spec::model::HttpVersion;
        let c = &self.inner.cfg;
        let may_h2 = c.version == HttpVersion::Http2 || (c.https && c.version == HttpVersion::Auto);
        if !may_h2 {
            return Ok(None);
        }
        let mut guard = self.inner.h2.lock().await;
        if let Some(s) = guard.as_ref()
            && !s.is_closed()
        {
            return Ok(Some(s.clone()));
        }
        let (stream, h2) = self.dial().await?;
        if !h2 {
            // The server chose HTTP/1.1: keep this connection in the HTTP/1 pool instead.
            let (send, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| Failure::Connect)?;
            tokio::spawn(conn);
            self.inner
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(send);
            return Ok(None);
        }
        let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Connect)?;
        tokio::spawn(conn);
        *guard = Some(send.clone());
        Ok(Some(send))
    }
}

fn clone_request(req: &http::Request<Full<Bytes>>) -> http::Request<Full<Bytes>> {
    let mut r = http::Request::new(req.body().clone());
    *r.method_mut() = req.method().clone();
    *r.uri_mut() = req.uri().clone();
    *r.version_mut() = req.version();
    *r.headers_mut() = req.headers().clone();
    r
}

async fn read(resp: http::Response<hyper::body::Incoming>) -> Result<Response, Failure> {
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|_| Failure::Reset)?
        .to_bytes();
    Ok(Response {
        status,
        request_id,
        body,
    })
}

/// Sends on a dedicated HTTP/1.1 connection and reads the whole response.
pub async fn send_on(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<Response, Failure> {
    let fut = async {
        sender.ready().await.map_err(|_| Failure::Reset)?;
        let resp = sender.send_request(req).await.map_err(|_| Failure::Reset)?;
        read(resp).await
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Timeout),
    }
}
