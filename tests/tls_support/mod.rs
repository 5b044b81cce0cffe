//! Shared by `tests/tls.rs` and `tests/websocket.rs`: a test certificate authority (rcgen) that
//! writes PEM files, TLS and WebSocket client connectors, and a minimal MQTT client that speaks
//! through any byte stream with lothub's own codec (rumqttc's TLS and WebSocket features are not
//! enabled, and a plain stream lets one client code cover tls, ws and wss).
//! Every wait is bounded by [`WAIT`].
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lothub::protocol::packet::{
    ConnAck, Connect, Packet, Properties, ProtocolVersion, Publish, QoS, Subscribe,
    SubscribeFilter, SubscriptionOptions,
};
use lothub::protocol::{decode, encode};
use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// The longest a test waits for one expected event.
pub const WAIT: Duration = Duration::from_secs(5);

/// A certificate authority that signs leaves.
pub struct Pki {
    pub cert_pem: String,
    cert: Certificate,
    key: KeyPair,
}

/// A signed certificate and its key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
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

    /// A certificate for localhost / 127.0.0.1 with subject CN `cn`.
    pub fn leaf(&self, cn: &str) -> Leaf {
        self.leaf_valid(cn, true)
    }

    /// Like [`Pki::leaf`], but valid only during the year 2000.
    pub fn expired_leaf(&self, cn: &str) -> Leaf {
        self.leaf_valid(cn, false)
    }

    fn leaf_valid(&self, cn: &str, current: bool) -> Leaf {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        if !current {
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

/// Server PEM files in a temporary directory.
pub struct ServerFiles {
    pub dir: tempfile::TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

impl ServerFiles {
    pub fn new(server: &Leaf) -> ServerFiles {
        let dir = tempfile::tempdir().unwrap();
        let files = ServerFiles {
            cert: dir.path().join("server.pem"),
            key: dir.path().join("server.key"),
            client_ca: dir.path().join("client-ca.pem"),
            dir,
        };
        files.install(server);
        files
    }

    /// Replaces the server certificate and key (key first, then the certificate, the way a
    /// careless rotation would do it).
    pub fn install(&self, server: &Leaf) {
        std::fs::write(&self.key, &server.key_pem).unwrap();
        std::fs::write(&self.cert, &server.cert_pem).unwrap();
    }

    pub fn write_client_ca(&self, pem: &str) {
        std::fs::write(&self.client_ca, pem).unwrap();
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn crypto() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client configuration trusting `ca_pem`, presenting `identity` if given.
pub fn client_config(ca_pem: &str, identity: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    client_config_for(ca_pem, identity, rustls::DEFAULT_VERSIONS)
}

/// Like [`client_config`], offering only the given TLS versions.
pub fn client_config_for(
    ca_pem: &str,
    identity: Option<&Leaf>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(crypto())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match identity {
        Some(leaf) => {
            let chain = vec![CertificateDer::from(leaf.der.clone())];
            let key: PrivateKeyDer<'static> =
                rustls_pemfile::private_key(&mut leaf.key_pem.as_bytes())
                    .unwrap()
                    .unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    })
}

pub type ClientTls = tokio_rustls::client::TlsStream<TcpStream>;

/// TCP connect plus TLS handshake to `addr` as `localhost`.
pub async fn tls_connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<ClientTls> {
    let tcp = timeout(WAIT, TcpStream::connect(addr)).await??;
    let name = ServerName::try_from("localhost").unwrap();
    timeout(
        WAIT,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await?
}

/// The server's leaf certificate as a TLS client saw it.
pub fn server_leaf(tls: &ClientTls) -> Vec<u8> {
    tls.get_ref()
        .1
        .peer_certificates()
        .expect("server sent a certificate")[0]
        .to_vec()
}

/// A minimal MQTT client over any byte stream.
pub struct Mqtt<S> {
    pub io: S,
    buf: BytesMut,
    version: ProtocolVersion,
}

/// How a read ended when no packet came.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The hub closed the stream (EOF, reset or a TLS alert).
    Closed,
    /// Nothing arrived within [`WAIT`].
    Timeout,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Mqtt<S> {
    pub fn new(io: S) -> Mqtt<S> {
        Mqtt {
            io,
            buf: BytesMut::new(),
            version: ProtocolVersion::V3_1_1,
        }
    }

    pub async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        encode(&packet, self.version, &mut out).unwrap();
        timeout(WAIT, async {
            self.io.write_all(&out).await.unwrap();
            self.io.flush().await.unwrap();
        })
        .await
        .expect("write stalled");
    }

    pub async fn recv(&mut self) -> Result<Packet, Ended> {
        loop {
            if let Some(packet) =
                decode(&mut self.buf, Some(self.version), 1 << 20).expect("hub sent garbage")
            {
                return Ok(packet);
            }
            match timeout(WAIT, self.io.read_buf(&mut self.buf)).await {
                Err(_) => return Err(Ended::Timeout),
                Ok(Ok(0) | Err(_)) => return Err(Ended::Closed),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Sends CONNECT (MQTT 3.1.1, clean session) and returns the CONNACK, or how the stream ended.
    pub async fn connect(
        &mut self,
        client_id: &str,
        username: Option<&str>,
    ) -> Result<ConnAck, Ended> {
        self.send(Packet::Connect(Box::new(Connect {
            protocol: self.version,
            clean_start: true,
            keep_alive: 30,
            client_id: client_id.to_string(),
            will: None,
            username: username.map(str::to_string),
            password: None,
            properties: Properties::default(),
        })))
        .await;
        match self.recv().await? {
            Packet::ConnAck(ack) => Ok(ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    pub async fn subscribe(&mut self, filter: &str) {
        let options = SubscriptionOptions {
            qos: QoS::AtMostOnce,
            ..SubscriptionOptions::default()
        };
        self.send(Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: vec![SubscribeFilter {
                filter: filter.to_string(),
                options,
            }],
            properties: Properties::default(),
        }))
        .await;
        match self.recv().await {
            Ok(Packet::SubAck(ack)) => assert_eq!(ack.reasons, vec![0], "subscription refused"),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    pub async fn publish(&mut self, topic: &str, payload: &'static [u8]) {
        self.send(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.into(),
            pkid: 0,
            payload: Bytes::from_static(payload),
            properties: Properties::default(),
        }))
        .await;
    }

    /// The next PUBLISH's topic and payload.
    pub async fn next_publish(&mut self) -> (String, Bytes) {
        loop {
            match self.recv().await {
                Ok(Packet::Publish(p)) => return (p.topic.to_string(), p.payload),
                Ok(Packet::PingResp) => {}
                other => panic!("expected PUBLISH, got {other:?}"),
            }
        }
    }

    /// A PINGREQ answered by a PINGRESP: the connection is alive end to end.
    pub async fn ping(&mut self) -> bool {
        self.send(Packet::PingReq).await;
        matches!(self.recv().await, Ok(Packet::PingResp))
    }
}
