//! A throw-away CA: a CA, a server certificate for 127.0.0.1 and localhost signed by it, an
//! unrelated CA, and a self-signed server certificate, as PEM files in a temporary folder.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use suppaftp::tokio_rustls::TlsAcceptor;
use tempfile::TempDir;

/// A CA, a server certificate for 127.0.0.1 and localhost signed by it, an unrelated CA, and a
/// self-signed server certificate made as a CA (as `openssl req -x509` does), as PEM files in a
/// temporary folder.
pub(super) struct Pki {
    dir: TempDir,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl Pki {
    pub(super) fn new() -> Pki {
        let dir = tempfile::tempdir().expect("create a folder for certificates");
        let ca = Self::ca("ftpsync test CA", vec![]);
        let other = Self::ca("some other CA", vec![]);
        let self_signed = Self::ca("self-signed server", vec!["127.0.0.1".into()]);
        let key = KeyPair::generate().expect("generate a server key");
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("server certificate parameters");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &ca)
            .expect("sign the server certificate");
        for (name, pem) in [
            ("ca.pem", ca.pem()),
            ("other-ca.pem", other.pem()),
            ("server.pem", cert.pem()),
            ("server.key", key.serialize_pem()),
            ("self-signed.pem", self_signed.pem()),
            ("self-signed.key", self_signed.key().serialize_pem()),
        ] {
            std::fs::write(dir.path().join(name), pem).expect("write a PEM file");
        }
        Pki {
            dir,
            cert: cert.der().clone(),
            key: key.serialize_der(),
        }
    }

    fn ca(name: &str, alt_names: Vec<String>) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(alt_names).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("generate a CA key");
        CertifiedIssuer::self_signed(params, key).expect("self-sign the CA")
    }

    /// `ca.pem`, `other-ca.pem`, `server.pem`, `server.key`, `self-signed.pem` or `.key`.
    pub(super) fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    pub(super) fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("TLS 1.2")
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)
            .expect("server TLS configuration");
        TlsAcceptor::from(Arc::new(config))
    }
}
