//! TLS for `ftpes://` and `ftps://`: the crypto provider (ring, chosen explicitly), the trust
//! anchors (the system's store plus `--ca-file`, or no verification with `--insecure`), the
//! `--tls-version` pin, and a fresh rustls configuration for every control connection.
//!
//! Each control connection gets its own session cache, which its data connections resume:
//! vsftpd (`require_ssl_reuse`) and proftpd's mod_tls refuse a data connection that does not
//! resume the control connection's session, and a cache shared by several connections can hand
//! one connection's session to another connection's data channel.
//!
//! TLS 1.3 resumes with single-use tickets. vsftpd sends a new one with every resumed data
//! connection; proftpd 1.3.8 sends none, so a connection has as many data connections as the
//! tickets it got at login (two). [`Tickets::used_up`] tells the connection layer when it must
//! log in again, and the first time that happens [`TlsConfig::tickets_ran_out`] switches the rest
//! of the run to TLS 1.2 (unless `--tls-version 1.3`), whose sessions can be resumed any number
//! of times.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
    WebPkiServerVerifier,
};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, NamedGroup,
    RootCertStore, SignatureScheme, SupportedProtocolVersion,
};
use suppaftp::tokio::AsyncTlsConnector;
use suppaftp::tokio_rustls::client::TlsStream;
use suppaftp::tokio_rustls::TlsConnector;
use tokio::net::TcpStream;

use super::channel::{ControlTls, FirstOutbox, Outbox};

/// TLS 1.3 tickets one connection keeps (servers send one or two at a time).
const TICKETS_PER_CONNECTION: usize = 8;

/// What `--insecure` prints on every run.
pub(crate) const INSECURE_WARNING: &str = "TLS certificate verification is disabled (--insecure)";

/// A TLS protocol version to pin with `--tls-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsVersion {
    V1_2,
    V1_3,
}

/// The user's TLS choices, as given on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsOptions {
    /// Extra trust anchors (PEM), added to the system's.
    pub(crate) ca_file: Option<PathBuf>,
    /// Skip certificate verification.
    pub(crate) insecure: bool,
    /// Only this version (None: TLS 1.2 or 1.3).
    pub(crate) version: Option<TlsVersion>,
}

/// The TLS options could not be turned into a configuration.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsSetupError {
    #[error("cannot read --ca-file {}: {detail}; give a PEM file with the server's certificate or its CA's", path.display())]
    CaFile { path: PathBuf, detail: String },
    #[error("--ca-file {} holds no certificate; give a PEM file with \"-----BEGIN CERTIFICATE-----\" blocks", path.display())]
    CaFileEmpty { path: PathBuf },
    #[error("no trusted certificates found in the system's store (install ca-certificates); name the server's CA with --ca-file, or skip verification with --insecure")]
    NoTrustAnchors,
    #[error("cannot set up TLS: {0}")]
    Rustls(String),
}

/// Everything needed to secure a connection, loaded once per run; cheap to clone (clones share
/// what the run learns about the server).
#[derive(Clone)]
pub(crate) struct TlsConfig {
    options: TlsOptions,
    /// Holds the provider, versions and verifier; cloned with a fresh session cache for each
    /// connection.
    template: Arc<ClientConfig>,
    /// The same with TLS 1.2 only, for servers that renew no TLS 1.3 tickets; None when the
    /// version is pinned.
    tls12_fallback: Option<Arc<ClientConfig>>,
    /// Set once a connection ran out of TLS 1.3 tickets.
    use_fallback: Arc<AtomicBool>,
}

impl TlsConfig {
    /// Loads the trust anchors and builds the configuration that [`TlsConfig::connector`] copies.
    pub(crate) fn load(options: &TlsOptions) -> Result<TlsConfig, TlsSetupError> {
        // One provider, named here: with both ring and aws-lc-rs in a build, rustls cannot pick
        // one by itself.
        let provider = Arc::new(crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = if options.insecure {
            Arc::new(NoVerification(Arc::clone(&provider)))
        } else {
            let (roots, pinned) = trust_anchors(options.ca_file.as_deref())?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
            Arc::new(WebPkiOrPinned { webpki, pinned })
        };
        let build = |versions: &[&'static SupportedProtocolVersion]| {
            // `dangerous()` only to hand over the verifier built above.
            let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_protocol_versions(versions)
                .map_err(|e| TlsSetupError::Rustls(e.to_string()))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::clone(&verifier))
                .with_no_client_auth();
            Ok::<_, TlsSetupError>(Arc::new(config))
        };
        let tls12 = &rustls::version::TLS12;
        let (template, tls12_fallback) = match options.version {
            None => (build(rustls::DEFAULT_VERSIONS)?, Some(build(&[tls12])?)),
            Some(TlsVersion::V1_2) => (build(&[tls12])?, None),
            Some(TlsVersion::V1_3) => (build(&[&rustls::version::TLS13])?, None),
        };
        Ok(TlsConfig {
            options: options.clone(),
            template,
            tls12_fallback,
            use_fallback: Arc::default(),
        })
    }

    /// The options this configuration was loaded from.
    pub(crate) fn options(&self) -> &TlsOptions {
        &self.options
    }

    /// A connector for one control connection and its data connections, with a session cache
    /// of its own.
    pub(crate) fn connector(&self) -> Connector {
        let sessions = Arc::new(Sessions::default());
        let mut config = ClientConfig::clone(self.template());
        config.resumption = Resumption::store(Arc::clone(&sessions) as Arc<dyn ClientSessionStore>);
        Connector {
            inner: TlsConnector::from(Arc::new(config)),
            sessions,
            first: FirstOutbox::default(),
        }
    }

    fn template(&self) -> &Arc<ClientConfig> {
        match &self.tls12_fallback {
            Some(tls12) if self.use_fallback.load(Ordering::Relaxed) => tls12,
            _ => &self.template,
        }
    }

    /// A connection used up its TLS 1.3 tickets: connections made from now on use TLS 1.2,
    /// unless the version is pinned. Returns whether that is a change.
    pub(crate) fn tickets_ran_out(&self) -> bool {
        self.tls12_fallback.is_some() && !self.use_fallback.swap(true, Ordering::Relaxed)
    }
}

impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        self.options == other.options
    }
}

impl Eq for TlsConfig {}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.options.fmt(f)
    }
}

/// The system's trust anchors plus those in `ca_file`, and the certificates of `ca_file`.
fn trust_anchors(
    ca_file: Option<&Path>,
) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), TlsSetupError> {
    let mut roots = RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    for error in &system.errors {
        tracing::debug!("system trust store: {error}");
    }
    roots.add_parsable_certificates(system.certs);
    let mut pinned = Vec::new();
    if let Some(path) = ca_file {
        let unreadable = |detail: String| TlsSetupError::CaFile {
            path: path.to_path_buf(),
            detail,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| unreadable(pem_error(e)))?;
        if certs.is_empty() {
            return Err(TlsSetupError::CaFileEmpty {
                path: path.to_path_buf(),
            });
        }
        for cert in &certs {
            roots
                .add(cert.clone())
                .map_err(|e| unreadable(format!("not a usable certificate ({e})")))?;
        }
        pinned = certs;
    }
    if roots.is_empty() {
        return Err(TlsSetupError::NoTrustAnchors);
    }
    Ok((roots, pinned))
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        other => format!("not a PEM file ({other:?})"),
    }
}

/// Connects one control connection's TLS sessions: the control channel's and, resuming it,
/// its data channels'. Failures come back as `SecureError` with a message for the user. Clones
/// share the session cache.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: TlsConnector,
    sessions: Arc<Sessions>,
    /// The control connection's outbox (see [`crate::ftp::channel`]).
    first: FirstOutbox,
}

impl Connector {
    /// A view of this connector's TLS 1.3 tickets, kept after the connector is handed over.
    pub(crate) fn tickets(&self) -> Tickets {
        Tickets(Arc::clone(&self.sessions))
    }

    /// The outbox of the first stream this connector secured: the control connection's.
    pub(crate) fn control_outbox(&self) -> Option<Outbox> {
        self.first.get()
    }

    /// Secures `stream` to the server named `domain` (a data connection: resuming the control
    /// connection's session).
    pub(crate) async fn handshake(
        &self,
        domain: &str,
        stream: TcpStream,
    ) -> suppaftp::FtpResult<TlsStream<TcpStream>> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| suppaftp::FtpError::SecureError(format!("{domain}: {e}")))?;
        self.inner
            .connect(name, stream)
            .await
            .map_err(|e| suppaftp::FtpError::SecureError(describe(&e)))
    }
}

/// See [`Connector::tickets`].
#[derive(Debug, Clone)]
pub(crate) struct Tickets(Arc<Sessions>);

impl Tickets {
    /// The connection runs TLS 1.3 and has no ticket left: its next data connection cannot
    /// resume the control connection's session.
    pub(crate) fn used_up(&self) -> bool {
        let state = self.0.lock();
        state.tls13_seen && state.tls13.is_empty()
    }

    /// Whether the next `n` data connections can all resume the session (TLS 1.2 sessions
    /// never run out; TLS 1.3 tickets are one per connection).
    pub(crate) fn enough_for(&self, n: usize) -> bool {
        let state = self.0.lock();
        !state.tls13_seen || state.tls13.len() >= n
    }
}

/// One connection's TLS sessions. A connection talks to a single server, so unlike rustls'
/// own cache this one ignores server names.
#[derive(Debug, Default)]
struct Sessions(Mutex<SessionState>);

#[derive(Debug, Default)]
struct SessionState {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    /// Oldest first.
    tls13: Vec<Tls13ClientSessionValue>,
    tls13_seen: bool,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, SessionState> {
        // The state stays consistent even if a holder panicked: every update is one assignment.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ClientSessionStore for Sessions {
    fn set_kx_hint(&self, _: ServerName<'static>, group: NamedGroup) {
        self.lock().kx_hint = Some(group);
    }

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        self.lock().kx_hint
    }

    fn set_tls12_session(&self, _: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.lock().tls12 = Some(value);
    }

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.lock().tls12.clone()
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {
        self.lock().tls12 = None;
    }

    fn insert_tls13_ticket(&self, _: ServerName<'static>, value: Tls13ClientSessionValue) {
        let mut state = self.lock();
        if state.tls13.len() == TICKETS_PER_CONNECTION {
            state.tls13.remove(0);
        }
        state.tls13.push(value);
        state.tls13_seen = true;
    }

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.lock().tls13.pop()
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connector")
    }
}

type ConnectFuture<'a> = Pin<Box<dyn Future<Output = suppaftp::FtpResult<ControlTls>> + Send + 'a>>;

// The trait is declared with #[async_trait]; this is the signature it expands to.
impl AsyncTlsConnector for Connector {
    type Stream = ControlTls;

    fn connect<'s, 'd, 'f>(&'s self, domain: &'d str, stream: TcpStream) -> ConnectFuture<'f>
    where
        's: 'f,
        'd: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            let tls = self.handshake(domain, stream).await?;
            Ok(ControlTls::new(tls, self.first.register()))
        })
    }
}

/// Says why a handshake failed and what the user can do about it.
fn describe(error: &io::Error) -> String {
    let Some(tls) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return match error.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
                "the server closed the connection during the TLS handshake".into()
            }
            _ => error.to_string(),
        };
    };
    match tls {
        rustls::Error::InvalidCertificate(reason) => format!(
            "the server's certificate cannot be trusted: {}; if the server uses a self-signed \
             certificate or a private CA, trust it with --ca-file PEM, or skip verification \
             with --insecure",
            certificate_problem(reason)
        ),
        rustls::Error::AlertReceived(
            AlertDescription::ProtocolVersion | AlertDescription::HandshakeFailure,
        )
        | rustls::Error::PeerIncompatible(_) => format!(
            "{tls}; the server may support only another TLS version: try --tls-version 1.2 \
             or --tls-version 1.3"
        ),
        rustls::Error::InvalidMessage(_) => format!(
            "the server did not answer in TLS ({tls}); if it expects AUTH TLS on this port, \
             use ftpes:// instead of ftps://"
        ),
        other => other.to_string(),
    }
}

fn certificate_problem(reason: &CertificateError) -> String {
    match reason {
        CertificateError::UnknownIssuer => {
            "it is not signed by an authority in the system's trust store or --ca-file".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("it is not valid for this host name ({reason})")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("it has expired ({reason})")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("it is not valid yet ({reason})")
        }
        // webpki's reason, which rustls passes on only as text.
        other if format!("{other:?}").contains("CaUsedAsEndEntity") => format!(
            "it is a CA certificate, as self-signed ones often are, and is not in --ca-file \
             ({other:?})"
        ),
        other => format!("{other:?}"),
    }
}

/// Verification against the trust anchors, where a server certificate that `--ca-file` holds
/// itself is trusted as it is (pinned): most self-signed certificates are made as CAs
/// (`openssl req -x509`), which webpki refuses as a server's own certificate, and often name
/// another host than the one in the URL. The server still proves it holds the certificate's key.
#[derive(Debug)]
struct WebPkiOrPinned {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for WebPkiOrPinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verified {
            Err(_) if self.pinned.iter().any(|pin| pin == end_entity) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `--insecure`: accepts any certificate, but still checks that the server holds its key, so
/// the session is encrypted to whoever answered.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let options = |path: &Path| TlsOptions {
            ca_file: Some(path.to_path_buf()),
            ..TlsOptions::default()
        };
        let err = TlsConfig::load(&options(&empty)).expect_err("refused");
        assert!(err.to_string().contains("holds no certificate"), "{err}");
        let missing = dir.path().join("missing.pem");
        let err = TlsConfig::load(&options(&missing)).expect_err("refused");
        assert!(
            err.to_string().starts_with("cannot read --ca-file"),
            "{err}"
        );
    }

    #[test]
    fn insecure_needs_no_trust_anchors_and_each_connector_is_fresh() {
        let insecure = TlsOptions {
            insecure: true,
            version: Some(TlsVersion::V1_2),
            ..TlsOptions::default()
        };
        let config = TlsConfig::load(&insecure).expect("loads");
        let (a, b) = (config.connector(), config.connector());
        assert!(!Arc::ptr_eq(a.inner.config(), b.inner.config()));
        assert!(!Arc::ptr_eq(&a.sessions, &b.sessions));
        assert!(!a.tickets().used_up(), "no TLS 1.3 session yet");
    }

    #[test]
    fn running_out_of_tickets_switches_to_tls_1_2_once_unless_pinned() {
        let load = |version| {
            let options = TlsOptions {
                insecure: true,
                version,
                ..TlsOptions::default()
            };
            TlsConfig::load(&options).expect("loads")
        };
        let config = load(None);
        assert!(Arc::ptr_eq(config.template(), &config.template));
        let clone = config.clone();
        assert!(clone.tickets_ran_out());
        assert!(!config.tickets_ran_out(), "clones share what was learnt");
        let tls12 = config.tls12_fallback.as_ref().unwrap();
        assert!(Arc::ptr_eq(config.template(), tls12));
        let pinned = load(Some(TlsVersion::V1_3));
        assert!(!pinned.tickets_ran_out());
        assert!(Arc::ptr_eq(pinned.template(), &pinned.template));
    }
}
