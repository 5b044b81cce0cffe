//! # transport::tls: rustls server configuration and the TLS handshake
//!
//! Owns: turning PEM files ([`TlsSettings`]) into a `rustls::ServerConfig` (TLS 1.2 and 1.3, the
//! `ring` provider, optional client certificates against a CA), and the server-side handshake
//! that yields a stream plus the client's identity ([`handshake`]).
//! Must not touch: MQTT semantics, the accept loop (see `transport::secure`), reloading (see
//! `transport::reload`, which calls [`build_server_config`] again when files change).
//! Start reading at [`build_server_config`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::transport::identity::{self, IdentityError};

/// What one TLS (or WSS) listener needs; the app maps the config's listener entry onto this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates that sign client certificates. Setting it turns on mutual TLS.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: refuse clients that present no certificate. Without it, a client may
    /// connect without a certificate, but one it presents must still verify.
    pub require_client_cert: bool,
    /// Use the client certificate's CN as the MQTT user name (needs `client_ca`).
    pub use_identity_as_username: bool,
}

/// Why a TLS configuration could not be built. Each variant names the file at fault, because
/// the operator's next step is to look at that file.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: invalid PEM: {source}")]
    Pem { path: PathBuf, source: io::Error },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no PEM private key found")]
    NoPrivateKey { path: PathBuf },
    #[error("{path}: unusable CA certificate: {source}")]
    BadCa {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("certificate and key rejected: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("`require_client_cert` and `use_identity_as_username` need `client_ca`")]
    ClientAuthWithoutCa,
}

/// The raw bytes of a listener's PEM files, read together so that a reload compares and builds
/// from exactly the same snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemFiles {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    pub client_ca: Option<Vec<u8>>,
}

impl PemFiles {
    /// Reads the files named in `settings`.
    pub fn read(settings: &TlsSettings) -> Result<Self, TlsError> {
        Ok(PemFiles {
            cert: read_file(&settings.cert)?,
            key: read_file(&settings.key)?,
            client_ca: settings.client_ca.as_deref().map(read_file).transpose()?,
        })
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The crypto provider used for every listener. `ring` rather than rustls' default `aws-lc-rs`:
/// aws-lc needs cmake and a long C build, and ring covers TLS 1.2 and 1.3 with the usual suites.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the files and builds a server configuration.
pub fn build_server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    build_from_pem(settings, &PemFiles::read(settings)?)
}

/// Builds a server configuration from already-read PEM bytes (`settings` gives the file names
/// for error messages and the client-certificate policy).
pub fn build_from_pem(
    settings: &TlsSettings,
    pem: &PemFiles,
) -> Result<Arc<ServerConfig>, TlsError> {
    if settings.client_ca.is_none()
        && (settings.require_client_cert || settings.use_identity_as_username)
    {
        return Err(TlsError::ClientAuthWithoutCa);
    }
    let provider = crypto_provider();
    let chain = parse_certs(&settings.cert, &pem.cert)?;
    let key = parse_key(&settings.key, &pem.key)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match (&settings.client_ca, &pem.client_ca) {
        (Some(path), Some(ca_pem)) => {
            let mut roots = RootCertStore::empty();
            for ca in parse_certs(path, ca_pem)? {
                roots.add(ca).map_err(|source| TlsError::BadCa {
                    path: path.clone(),
                    source,
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if settings.require_client_cert {
                verifier.build()?
            } else {
                verifier.allow_unauthenticated().build()?
            };
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    // `with_single_cert` also checks that the key belongs to the leaf certificate, which is what
    // stops a half-rotated pair (new cert, old key) from being put into service.
    Ok(Arc::new(builder.with_single_cert(chain, key)?))
}

fn parse_certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn parse_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut &pem[..])
        .map_err(|source| TlsError::Pem {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::NoPrivateKey {
            path: path.to_path_buf(),
        })
}

/// Why a TLS handshake produced no usable connection.
#[derive(Debug, Error)]
pub enum TlsHandshakeError {
    #[error("TLS handshake failed: {0}")]
    Io(#[from] io::Error),
    /// `use_identity_as_username` is on but the client sent no certificate: refused, since the
    /// CONNECT user name must not stand in for a missing identity (fail closed).
    #[error("no client certificate to take the user name from")]
    NoClientCertificate,
    #[error("client certificate: {0}")]
    Identity(#[from] IdentityError),
}

/// Runs the server side of the TLS handshake and, when `use_identity_as_username`, takes the
/// user name from the verified client certificate's CN.
pub async fn handshake<S>(
    acceptor: TlsAcceptor,
    stream: S,
    use_identity_as_username: bool,
) -> Result<(TlsStream<S>, Option<String>), TlsHandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let tls = acceptor.accept(stream).await?;
    if !use_identity_as_username {
        return Ok((tls, None));
    }
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first());
    let leaf = leaf.ok_or(TlsHandshakeError::NoClientCertificate)?;
    let name = identity::common_name(leaf)?;
    Ok((tls, Some(name)))
}

#[cfg(test)]
#[path = "test_pki.rs"]
pub(crate) mod test_pki;

#[cfg(test)]
mod tests {
    use super::*;
    use test_pki::{Pki, client_config, handshake_in_memory, write};

    fn settings(dir: &Path) -> TlsSettings {
        TlsSettings {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_ca: None,
            require_client_cert: false,
            use_identity_as_username: false,
        }
    }

    #[test]
    fn builds_from_pem_files_and_reports_the_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new("Test CA");
        let server = pki.leaf("localhost");
        let s = settings(dir.path());
        write(&s.cert, &server.cert_pem);
        write(&s.key, &server.key_pem);
        build_server_config(&s).expect("valid pair builds");

        write(&s.cert, "not a certificate");
        assert!(
            matches!(build_server_config(&s), Err(TlsError::NoCertificate { path }) if path == s.cert)
        );
        write(&s.cert, &server.cert_pem);
        write(&s.key, "");
        assert!(
            matches!(build_server_config(&s), Err(TlsError::NoPrivateKey { path }) if path == s.key)
        );
        std::fs::remove_file(&s.key).unwrap();
        assert!(
            matches!(build_server_config(&s), Err(TlsError::Read { path, .. }) if path == s.key)
        );
    }

    #[test]
    fn key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new("Test CA");
        let (one, two) = (pki.leaf("one"), pki.leaf("two"));
        let s = settings(dir.path());
        write(&s.cert, &one.cert_pem);
        write(&s.key, &two.key_pem);
        assert!(matches!(build_server_config(&s), Err(TlsError::Rustls(_))));
    }

    #[test]
    fn client_auth_options_need_a_ca() {
        let dir = tempfile::tempdir().unwrap();
        let server = Pki::new("Test CA").leaf("localhost");
        let mut s = settings(dir.path());
        write(&s.cert, &server.cert_pem);
        write(&s.key, &server.key_pem);
        s.use_identity_as_username = true;
        assert!(matches!(
            build_server_config(&s),
            Err(TlsError::ClientAuthWithoutCa)
        ));
        s.client_ca = Some(dir.path().join("ca.pem"));
        write(s.client_ca.as_ref().unwrap(), "garbage");
        assert!(matches!(
            build_server_config(&s),
            Err(TlsError::NoCertificate { .. })
        ));
    }

    /// Writes a server pair plus `ca_pem` as the client CA and returns the settings.
    fn mtls_settings(dir: &Path, server_pki: &Pki, ca_pem: &str, require: bool) -> TlsSettings {
        let server = server_pki.leaf("localhost");
        let s = TlsSettings {
            client_ca: Some(dir.join("clients-ca.pem")),
            require_client_cert: require,
            use_identity_as_username: true,
            ..settings(dir)
        };
        write(&s.cert, &server.cert_pem);
        write(&s.key, &server.key_pem);
        write(s.client_ca.as_ref().unwrap(), ca_pem);
        s
    }

    #[tokio::test]
    async fn mutual_tls_accepts_only_good_client_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let (server_ca, client_ca, other_ca) = (
            Pki::new("Server CA"),
            Pki::new("Client CA"),
            Pki::new("Other CA"),
        );
        let config = build_server_config(&mtls_settings(
            dir.path(),
            &server_ca,
            &client_ca.cert_pem,
            true,
        ))
        .unwrap();
        let trust = &server_ca.cert_pem;

        let good = client_ca.leaf("device-1");
        assert!(
            handshake_in_memory(config.clone(), client_config(trust, Some(&good)))
                .await
                .is_ok()
        );
        let none = handshake_in_memory(config.clone(), client_config(trust, None)).await;
        assert!(
            none.unwrap_err().contains("certificate"),
            "no client certificate must be refused"
        );
        let foreign = other_ca.leaf("device-1");
        assert!(
            handshake_in_memory(config.clone(), client_config(trust, Some(&foreign)))
                .await
                .is_err()
        );
        let expired = client_ca.expired_leaf("device-1");
        let err = handshake_in_memory(config, client_config(trust, Some(&expired)))
            .await
            .unwrap_err();
        assert!(
            err.to_lowercase().contains("expired"),
            "unexpected error: {err}"
        );
    }

    #[tokio::test]
    async fn optional_client_certificate_lets_anonymous_clients_through() {
        let dir = tempfile::tempdir().unwrap();
        let (server_ca, client_ca) = (Pki::new("Server CA"), Pki::new("Client CA"));
        let config = build_server_config(&mtls_settings(
            dir.path(),
            &server_ca,
            &client_ca.cert_pem,
            false,
        ))
        .unwrap();
        assert!(
            handshake_in_memory(config.clone(), client_config(&server_ca.cert_pem, None))
                .await
                .is_ok()
        );
        // Optional does not mean unchecked: a certificate from another CA is still refused.
        let foreign = Pki::new("Other CA").leaf("x");
        assert!(
            handshake_in_memory(config, client_config(&server_ca.cert_pem, Some(&foreign)))
                .await
                .is_err()
        );
    }

    async fn identity_after_handshake(
        config: Arc<ServerConfig>,
        client: Arc<rustls::ClientConfig>,
    ) -> Result<Option<String>, String> {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            handshake(TlsAcceptor::from(config), server_io, true)
                .await
                .map(|(_, name)| name)
                .map_err(|e| e.to_string())
        });
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        // The client side may finish first or fail; only the server's verdict matters here.
        let _client = tokio_rustls::TlsConnector::from(client)
            .connect(name, client_io)
            .await;
        tokio::time::timeout(std::time::Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn identity_is_the_client_certificate_cn_and_missing_identity_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let (server_ca, client_ca) = (Pki::new("Server CA"), Pki::new("Client CA"));
        let config = build_server_config(&mtls_settings(
            dir.path(),
            &server_ca,
            &client_ca.cert_pem,
            false,
        ))
        .unwrap();
        let leaf = client_ca.leaf("press-7");
        let got = identity_after_handshake(
            config.clone(),
            client_config(&server_ca.cert_pem, Some(&leaf)),
        )
        .await;
        assert_eq!(got.unwrap().as_deref(), Some("press-7"));
        let anonymous =
            identity_after_handshake(config, client_config(&server_ca.cert_pem, None)).await;
        assert!(anonymous.unwrap_err().contains("no client certificate"));
    }
}
