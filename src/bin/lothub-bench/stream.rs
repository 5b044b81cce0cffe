//! The bench's byte stream: plain TCP or TLS over TCP, behind one type so the scenarios and
//! tasks do not care which (`--tls --cafile PATH`).
//!
//! Owns: dialing (TCP connect, `TCP_NODELAY`, the TLS handshake with SNI `localhost` against the
//! `--cafile` roots, using lothub's `ring` provider from `transport::tls::crypto_provider`) and
//! splitting a stream into read and write halves.
//! Must not touch: MQTT (see `client.rs`).
//! Start reading at [`Dialer::connect`].
//!
//! Plain TCP keeps tokio's lock-free `into_split`, so TCP figures are comparable with runs made
//! before TLS support existed; TLS halves go through `tokio::io::split` (a lock per poll), a
//! cost that belongs to the TLS column of a comparison.

use anyhow::{Context, Result, bail};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use tokio::io::{
    AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf as IoReadHalf, WriteHalf as IoWriteHalf,
};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The server name every TLS connection presents and verifies: the certificates in
/// `docs/tls.md` list `DNS:localhost`, and rustls does not verify IP-address SNI.
const SNI: &str = "localhost";

/// How the bench reaches the broker; cheap to clone into every connecting task.
#[derive(Clone)]
pub struct Dialer {
    addr: String,
    tls: Option<TlsConnector>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Dialer {
    /// Plain TCP to `addr`.
    pub fn tcp(addr: String) -> Dialer {
        Dialer { addr, tls: None }
    }

    /// TLS to `addr`, trusting only the CA certificates in the PEM file `cafile`.
    pub fn tls(addr: String, cafile: &Path) -> Result<Dialer> {
        let pem = std::fs::read(cafile).with_context(|| format!("reading {}", cafile.display()))?;
        let mut roots = RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.with_context(|| format!("{}: invalid PEM", cafile.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("{}: unusable CA certificate", cafile.display()))?;
        }
        if roots.is_empty() {
            bail!("{}: no PEM certificate found", cafile.display());
        }
        let config = ClientConfig::builder_with_provider(lothub::transport::tls::crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Dialer {
            addr,
            tls: Some(TlsConnector::from(Arc::new(config))),
        })
    }

    /// Opens a TCP connection and, with `--tls`, completes the handshake.
    pub async fn connect(&self) -> Result<Stream> {
        let tcp = TcpStream::connect(&self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Stream::Tcp(tcp)),
            Some(connector) => {
                let name = ServerName::try_from(SNI)?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .with_context(|| format!("TLS handshake with {}", self.addr))?;
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
    }
}

/// A connected stream, TCP or TLS.
pub enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The read half of a [`Stream`].
pub enum ReadHalf {
    Tcp(OwnedReadHalf),
    Tls(IoReadHalf<Box<TlsStream<TcpStream>>>),
}

/// The write half of a [`Stream`].
pub enum WriteHalf {
    Tcp(OwnedWriteHalf),
    Tls(IoWriteHalf<Box<TlsStream<TcpStream>>>),
}

impl Stream {
    /// Splits into halves that separate tasks can own.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(s);
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }
}

/// Writes all of `buf` and flushes. TLS needs the flush: tokio-rustls may accept plaintext
/// whose ciphertext it could not write yet, and only a later write or a flush sends it, so a
/// bare `write_all` of the last acknowledgements could leave them sitting in the client. On TCP
/// the flush is a no-op.
pub async fn send_all<W: AsyncWrite + Unpin>(w: &mut W, buf: &[u8]) -> io::Result<()> {
    w.write_all(buf).await?;
    w.flush().await
}

/// Forwards `poll_read` to whichever variant `$self` holds.
macro_rules! read_impl {
    ($ty:ident) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut TaskContext<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_read(cx, buf),
                    $ty::Tls(s) => Pin::new(s).poll_read(cx, buf),
                }
            }
        }
    };
}

/// Forwards the `AsyncWrite` methods to whichever variant `$self` holds.
macro_rules! write_impl {
    ($ty:ident) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut TaskContext<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_write(cx, buf),
                    $ty::Tls(s) => Pin::new(s).poll_write(cx, buf),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_flush(cx),
                    $ty::Tls(s) => Pin::new(s).poll_flush(cx),
                }
            }

            fn poll_shutdown(
                self: Pin<&mut Self>,
                cx: &mut TaskContext<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_shutdown(cx),
                    $ty::Tls(s) => Pin::new(s).poll_shutdown(cx),
                }
            }
        }
    };
}

read_impl!(Stream);
write_impl!(Stream);
read_impl!(ReadHalf);
write_impl!(WriteHalf);
