//! The MQTT client side of a bridge, on the project's own codec (`protocol`): open TCP or TLS to
//! the remote broker, CONNECT / CONNACK, then read and write packets. No session logic here
//! (that is `bridge.rs`): this file only moves packets.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::config::RemoteConfig;
use crate::protocol::packet::{Connect, Packet, Properties, ProtocolVersion};
use crate::protocol::{ProtocolError, decode, encode};
use crate::transport::tls::crypto_provider;

/// Largest packet accepted from the remote broker.
const MAX_PACKET: usize = 16 * 1024 * 1024;
/// Time allowed for TCP + TLS + CONNACK.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The session a bridge asks an MQTT 5 remote to keep while it is away (7 days), so that QoS 1/2
/// state survives an outage there too.
const SESSION_EXPIRY: u32 = 7 * 24 * 3600;
/// Where the system's trusted roots are read from when no SERVER_CA_CERT_PATH is given.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Any byte stream (TCP or TLS over TCP).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Why a connection attempt or a connection failed (shown as `lastError`).
pub type ConnError = String;

/// One open connection to the remote broker, after a successful CONNACK.
pub struct Conn {
    reader: ReadHalf<Box<dyn Io>>,
    writer: WriteHalf<Box<dyn Io>>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    pub version: ProtocolVersion,
    /// The remote's Receive Maximum (MQTT 5 §3.2.2.3.3), 65535 when not given.
    pub receive_maximum: u16,
}

/// Builds the rustls client configuration of a route (CA file or the system roots, optional
/// client certificate, or no verification at all with ALLOW_UNTRUSTED_CERTS).
pub fn tls_config(cfg: &RemoteConfig) -> Result<Arc<ClientConfig>, ConnError> {
    let provider = crypto_provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    let builder = if cfg.allow_untrusted {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
    } else {
        let path = cfg.ca_path.as_deref().unwrap_or(SYSTEM_ROOTS);
        let mut roots = RootCertStore::empty();
        for cert in read_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("CA certificate in {path}: {e}"))?;
        }
        builder.with_root_certificates(roots)
    };
    let config = match (&cfg.cert_path, &cfg.key_path) {
        (Some(cert), Some(key)) => {
            let pem = std::fs::read(key).map_err(|e| format!("cannot read {key}: {e}"))?;
            let key_der = rustls_pemfile::private_key(&mut &pem[..])
                .map_err(|e| format!("{key}: {e}"))?
                .ok_or_else(|| format!("{key}: no private key found"))?;
            builder
                .with_client_auth_cert(read_certs(cert)?, key_der)
                .map_err(|e| format!("client certificate {cert}: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn read_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, ConnError> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{path}: {e}"))
}

/// Opens the connection and completes CONNECT / CONNACK within [`CONNECT_TIMEOUT`].
pub async fn connect(
    cfg: &RemoteConfig,
    tls: Option<Arc<ClientConfig>>,
) -> Result<Conn, ConnError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connect_inner(cfg, tls)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no CONNACK from {}:{} within {}s",
            cfg.address,
            cfg.port,
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

async fn connect_inner(
    cfg: &RemoteConfig,
    tls: Option<Arc<ClientConfig>>,
) -> Result<Conn, ConnError> {
    let addr = format!("{}:{}", cfg.address, cfg.port);
    let tcp = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = match tls {
        None => Box::new(tcp),
        Some(config) => {
            let name = ServerName::try_from(cfg.address.clone())
                .map_err(|e| format!("bad TLS server name {}: {e}", cfg.address))?;
            let tls = TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
            Box::new(tls)
        }
    };
    let (reader, writer) = tokio::io::split(stream);
    let mut conn = Conn {
        reader,
        writer,
        rbuf: BytesMut::with_capacity(64 * 1024),
        wbuf: BytesMut::with_capacity(64 * 1024),
        version: cfg.version,
        receive_maximum: u16::MAX,
    };
    let mut properties = Properties::default();
    if cfg.version.is_v5() {
        properties.session_expiry_interval = Some(SESSION_EXPIRY);
    }
    // clean_start = false: the remote keeps our subscriptions and QoS 1/2 state across an
    // outage (MQTT 5 §3.1.2.4, 3.1.1 §3.1.2.4), which is what makes PUBREL completion and DUP
    // resends after a reconnect meaningful.
    conn.send(&Packet::Connect(Box::new(Connect {
        protocol: cfg.version,
        clean_start: false,
        keep_alive: cfg.keep_alive,
        client_id: cfg.client_id.clone(),
        will: None,
        username: cfg.username.clone(),
        password: cfg.password.clone().map(Bytes::from),
        properties,
    })))?;
    conn.flush().await?;
    match conn.read_packet().await? {
        Packet::ConnAck(ack) if ack.reason == 0 => {
            if let Some(max) = ack.properties.receive_maximum {
                conn.receive_maximum = max.max(1);
            }
            Ok(conn)
        }
        Packet::ConnAck(ack) => Err(format!(
            "{addr} refused CONNECT: reason 0x{:02X}",
            ack.reason
        )),
        other => Err(format!("{addr} answered CONNECT with {other:?}")),
    }
}

impl Conn {
    /// Encodes `packet` into the write buffer (sent by [`Conn::flush`]).
    pub fn send(&mut self, packet: &Packet) -> Result<(), ConnError> {
        encode(packet, self.version, &mut self.wbuf).map_err(|e: ProtocolError| e.to_string())
    }

    /// Bytes waiting in the write buffer.
    pub fn pending(&self) -> usize {
        self.wbuf.len()
    }

    /// Writes everything buffered.
    pub async fn flush(&mut self) -> Result<(), ConnError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let bytes = self.wbuf.split();
        self.writer
            .write_all(&bytes)
            .await
            .map_err(|e| format!("write to the remote failed: {e}"))?;
        self.writer
            .flush()
            .await
            .map_err(|e| format!("write to the remote failed: {e}"))
    }

    /// The next packet from the remote. Cancel-safe: bytes read so far stay in the buffer.
    pub async fn read_packet(&mut self) -> Result<Packet, ConnError> {
        loop {
            if let Some(p) = decode(&mut self.rbuf, Some(self.version), MAX_PACKET)
                .map_err(|e| format!("bad packet from the remote: {e}"))?
            {
                return Ok(p);
            }
            let n = self
                .reader
                .read_buf(&mut self.rbuf)
                .await
                .map_err(|e| format!("read from the remote failed: {e}"))?;
            if n == 0 {
                return Err("the remote closed the connection".into());
            }
        }
    }
}

/// ALLOW_UNTRUSTED_CERTS: accepts any server certificate (signatures are still checked, so the
/// handshake itself is sound; only the identity is not).
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
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
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
