//! Test-only certificate authority built with rcgen (unit tests of `transport`; integration tests
//! keep their own copy in `tests/tls_support`, since dev-dependencies are not visible here from
//! there).

use std::path::Path;

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};

/// A CA that signs leaf certificates.
pub struct Pki {
    pub cert_pem: String,
    cert: Certificate,
    key: KeyPair,
}

/// A signed certificate with its key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Pki {
            cert_pem: cert.pem(),
            cert,
            key,
        }
    }

    /// A leaf for `localhost` / 127.0.0.1 with `cn` as its subject CN.
    pub fn leaf(&self, cn: &str) -> Leaf {
        self.leaf_with(cn, false)
    }

    /// Like [`Pki::leaf`], valid only in the year 2000.
    pub fn expired_leaf(&self, cn: &str) -> Leaf {
        self.leaf_with(cn, true)
    }

    fn leaf_with(&self, cn: &str, expired: bool) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2000, 12, 31);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A client configuration trusting `ca_pem`, presenting `identity` if given.
pub fn client_config(
    ca_pem: &str,
    identity: Option<&Leaf>,
) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let builder =
        rustls::ClientConfig::builder_with_provider(crate::transport::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let config = match identity {
        Some(leaf) => {
            let chain = vec![CertificateDer::from(leaf.der.clone())];
            let key: PrivateKeyDer<'static> =
                rustls_pemfile::private_key(&mut leaf.key_pem.as_bytes())
                    .unwrap()
                    .unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    std::sync::Arc::new(config)
}

/// Runs both sides of a handshake over an in-memory pipe. Returns the server's leaf certificate
/// as the client saw it, or the server side's error (a refused client certificate shows there).
pub async fn handshake_in_memory(
    server: std::sync::Arc<rustls::ServerConfig>,
    client: std::sync::Arc<rustls::ClientConfig>,
) -> Result<Vec<u8>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let server_side = tokio::spawn(async move {
        let mut tls = acceptor
            .accept(server_io)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"ok").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())
    });
    let connector = tokio_rustls::TlsConnector::from(client);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let client_side = async move {
        let mut tls = connector
            .connect(name, client_io)
            .await
            .map_err(|e| e.to_string())?;
        let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        let mut buf = [0u8; 2];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(leaf)
    };
    let limit = std::time::Duration::from_secs(10);
    let client_result = tokio::time::timeout(limit, client_side)
        .await
        .expect("handshake hung");
    let server_result = tokio::time::timeout(limit, server_side)
        .await
        .expect("server hung")
        .unwrap();
    server_result?;
    client_result
}
