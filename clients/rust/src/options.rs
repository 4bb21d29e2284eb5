//! Connection options, built once with [`ClientBuilder`](crate::ClientBuilder).

use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::error::Error;

/// TLS to the sidecar: the CA that signs its certificate (the system's store when `ca_pem` is `None`), and for
/// mTLS (`server.tls.client_auth`) the client's own certificate and key. All PEM.
#[derive(Clone, Default)]
pub struct TlsOptions {
    pub ca_pem: Option<Vec<u8>>,
    pub cert_pem: Option<Vec<u8>>,
    pub key_pem: Option<Vec<u8>>,
    /// The name the server's certificate must carry; the host by default.
    pub server_name: Option<String>,
}

impl std::fmt::Debug for TlsOptions {
    // The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field("cert_pem", &self.cert_pem.as_ref().map(|_| "<pem>"))
            .field("key_pem", &self.key_pem.as_ref().map(|_| "<redacted>"))
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsOptions {
    /// Trusts the CA in the PEM file at `path`.
    pub fn with_ca_file(mut self, path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        self.ca_pem = Some(read(path.as_ref())?);
        Ok(self)
    }

    /// Presents the certificate and key in these PEM files (mTLS).
    pub fn with_client_cert_files(
        mut self,
        cert: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> Result<Self, Error> {
        self.cert_pem = Some(read(cert.as_ref())?);
        self.key_pem = Some(read(key.as_ref())?);
        Ok(self)
    }

    pub(crate) fn build(&self, host: &str) -> Result<(Arc<ClientConfig>, ServerName<'static>), Error> {
        let mut roots = RootCertStore::empty();
        match &self.ca_pem {
            Some(pem) => {
                for cert in certs(pem)? {
                    roots.add(cert).map_err(|e| config(format!("bad CA certificate: {e}")))?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    // A broken system certificate is skipped, as every TLS stack does.
                    let _ = roots.add(cert);
                }
            }
        }
        let builder = ClientConfig::builder().with_root_certificates(roots);
        let cfg = match (&self.cert_pem, &self.key_pem) {
            (Some(cert), Some(key)) => {
                let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key.as_slice())
                    .map_err(|e| config(format!("cannot read the client key: {e}")))?
                    .ok_or_else(|| config("no private key in the client key PEM".into()))?;
                builder
                    .with_client_auth_cert(certs(cert)?, key)
                    .map_err(|e| config(format!("bad client certificate: {e}")))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(config("a client certificate needs both cert_pem and key_pem".into())),
        };
        let name = self.server_name.clone().unwrap_or_else(|| host.to_owned());
        let name = ServerName::try_from(name).map_err(|e| config(format!("bad TLS server name: {e}")))?;
        Ok((Arc::new(cfg), name))
    }
}

fn certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config(format!("cannot read a PEM certificate: {e}")))
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| config(format!("cannot read {}: {e}", path.display())))
}

/// A TLS setting that cannot work: the connection cannot be made (CONNECTION_CLOSED, not retriable in
/// practice, but the table has no code of its own for a client's configuration).
fn config(message: String) -> Error {
    Error::ConnectionClosed(format!("TLS configuration: {message}"))
}

/// Every setting of a [`QuotaClient`](crate::QuotaClient); defaults as in the Node client.
#[derive(Clone)]
pub struct ClientOptions {
    /// Default `127.0.0.1`.
    pub host: String,
    /// Default 9190.
    pub port: u16,
    /// A call without its own timeout fails with TIMEOUT after this. Default 5 s.
    pub request_timeout: Duration,
    /// TCP connect, TLS handshake and Hello must succeed within this, or the attempt fails and its socket is
    /// closed. Default 1 s.
    pub connect_timeout: Duration,
    /// Attempts before `connect()` gives up; reconnects after a drop retry until the client is closed.
    /// Default 5.
    pub connect_attempts: u32,
    /// First delay between attempts, doubled each time up to `max_backoff`. Default 50 ms.
    pub initial_backoff: Duration,
    /// Default 2 s.
    pub max_backoff: Duration,
    /// Calls in flight at most; past it calls fail at once with OVERLOADED. Default 10,000.
    pub max_pending: usize,
    /// A reply frame longer than this closes the connection (its calls fail with CONNECTION_CLOSED) before
    /// any of it is buffered. Default 64 MiB.
    pub max_frame_bytes: usize,
    /// Sent in Hello; shown in the server's audit log.
    pub client_name: Option<String>,
    /// Sent in Hello; never logged (and left out of `Debug`).
    pub token: Option<String>,
    /// Connect with TLS.
    pub tls: Option<TlsOptions>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 9190,
            request_timeout: Duration::from_millis(5000),
            connect_timeout: Duration::from_millis(1000),
            connect_attempts: 5,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(2000),
            max_pending: 10_000,
            max_frame_bytes: 64 * 1024 * 1024,
            client_name: None,
            token: None,
            tls: None,
        }
    }
}

impl std::fmt::Debug for ClientOptions {
    // The token stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("connect_attempts", &self.connect_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("max_pending", &self.max_pending)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("client_name", &self.client_name)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .finish()
    }
}

/// Builds a [`QuotaClient`]: `QuotaClient::builder().port(9190).token(t).connect().await?`.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    options: ClientOptions,
}

impl ClientBuilder {
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.options.host = host.into();
        self
    }
    pub fn port(mut self, port: u16) -> Self {
        self.options.port = port;
        self
    }
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.options.request_timeout = d;
        self
    }
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.options.connect_timeout = d;
        self
    }
    pub fn connect_attempts(mut self, n: u32) -> Self {
        self.options.connect_attempts = n.max(1);
        self
    }
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.options.initial_backoff = initial;
        self.options.max_backoff = max.max(initial);
        self
    }
    pub fn max_pending(mut self, n: usize) -> Self {
        self.options.max_pending = n;
        self
    }
    pub fn max_frame_bytes(mut self, n: usize) -> Self {
        self.options.max_frame_bytes = n;
        self
    }
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.options.client_name = Some(name.into());
        self
    }
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.options.token = Some(token.into());
        self
    }
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.options.tls = Some(tls);
        self
    }
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Connects (retrying with backoff up to `connect_attempts`) and says Hello. On failure nothing is left
    /// running: no socket, no task. A non-retriable answer to Hello (a wrong token) fails at once.
    pub async fn connect(self) -> Result<crate::QuotaClient, Error> {
        crate::QuotaClient::connect_with(self.options).await
    }
}

impl From<ClientOptions> for ClientBuilder {
    fn from(options: ClientOptions) -> Self {
        Self { options }
    }
}
