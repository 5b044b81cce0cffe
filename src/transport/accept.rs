//! # transport::accept: accept loops for listener kinds that need a handshake (tls, ws, wss)
//!
//! Owns the loop `accept -> handshake (bounded in time and in number) -> hand the stream to the
//! broker`. The kinds differ only in their [`Handshake`]: [`TlsHandshake`], [`WsHandshake`],
//! [`WssHandshake`]. Must not touch: MQTT (the broker reads CONNECT), certificates (see `tls`,
//! `reload`). Start at [`serve`] (the hub's entry), then `run`.
//!
//! Slow-loris defence (broker.md "Pitfalls", CVE-2020-13849):
//! - every handshake runs under [`HandshakeLimits::timeout`], measured from accept, so a client
//!   that opens a socket and stalls the TLS or HTTP upgrade is dropped;
//! - at most [`HandshakeLimits::max_concurrent`] handshakes run at once. The loop takes a permit
//!   *before* accepting, so excess clients wait in the kernel's backlog, costing no task, buffer
//!   or file descriptor, and are accepted as soon as a handshake finishes or times out.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, ConnectionInfo};
use crate::transport::reload::ReloadableTls;
use crate::transport::tcp::Admission;
use crate::transport::tls::{self, TlsHandshakeError};
use crate::transport::ws::{self, WsByteStream, WsHandshakeError, WsSettings};

/// Bounds on the handshake phase of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// Time from accept to a finished TLS/WebSocket handshake. Use the broker's CONNECT timeout
    /// so that a stalled handshake costs no more than a stalled CONNECT.
    pub timeout: Duration,
    /// Handshakes in progress at once on this listener.
    pub max_concurrent: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        HandshakeLimits {
            timeout: Duration::from_secs(10),
            max_concurrent: 256,
        }
    }
}

/// The transport-specific part of accepting a connection.
pub trait Handshake: Send + Sync + 'static {
    /// The byte stream the broker will read MQTT from.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    type Error: Display + Send;
    /// Listener kind for the listener's name, e.g. `tls`.
    fn kind(&self) -> &'static str;
    /// Turns an accepted socket into a stream plus, with client certificates, the identity to
    /// use as user name.
    fn handshake(
        &self,
        tcp: TcpStream,
    ) -> impl Future<Output = Result<(Self::Stream, Option<String>), Self::Error>> + Send;
}

/// TLS, with the configuration in force at accept time (see `reload`).
#[derive(Clone)]
pub struct TlsHandshake {
    pub tls: ReloadableTls,
}

impl Handshake for TlsHandshake {
    type Stream = tokio_rustls::server::TlsStream<TcpStream>;
    type Error = TlsHandshakeError;

    fn kind(&self) -> &'static str {
        "tls"
    }

    async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> Result<(Self::Stream, Option<String>), Self::Error> {
        let use_identity = self.tls.settings().use_identity_as_username;
        tls::handshake(self.tls.acceptor(), tcp, use_identity).await
    }
}

/// Plain WebSocket.
#[derive(Clone)]
pub struct WsHandshake {
    pub ws: Arc<WsSettings>,
}

impl Handshake for WsHandshake {
    type Stream = WsByteStream<TcpStream>;
    type Error = WsHandshakeError;

    fn kind(&self) -> &'static str {
        "ws"
    }

    async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> Result<(Self::Stream, Option<String>), Self::Error> {
        Ok((ws::handshake(tcp, &self.ws).await?, None))
    }
}

/// WebSocket over TLS: the TLS handshake, then the upgrade inside it.
#[derive(Clone)]
pub struct WssHandshake {
    pub tls: ReloadableTls,
    pub ws: Arc<WsSettings>,
}

/// Why a WSS handshake failed: in the TLS layer or in the upgrade.
#[derive(Debug, thiserror::Error)]
pub enum WssHandshakeError {
    #[error(transparent)]
    Tls(#[from] TlsHandshakeError),
    #[error(transparent)]
    Ws(#[from] WsHandshakeError),
}

impl Handshake for WssHandshake {
    type Stream = WsByteStream<tokio_rustls::server::TlsStream<TcpStream>>;
    type Error = WssHandshakeError;

    fn kind(&self) -> &'static str {
        "wss"
    }

    async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> Result<(Self::Stream, Option<String>), Self::Error> {
        let use_identity = self.tls.settings().use_identity_as_username;
        let (tls, identity) = tls::handshake(self.tls.acceptor(), tcp, use_identity).await?;
        Ok((ws::handshake(tls, &self.ws).await?, identity))
    }
}

/// The listener's name in logs and `ConnectionInfo`, e.g. `tls:0.0.0.0:8883`.
pub fn listener_name(kind: &str, listener: &TcpListener) -> Arc<str> {
    match listener.local_addr() {
        Ok(addr) => format!("{kind}:{addr}").into(),
        Err(_) => kind.into(),
    }
}

/// The hub's accept loop for a listener with a handshake: admission (IP allow/deny lists,
/// per-IP rate) is checked right after accept, before any TLS or HTTP work is spent on the
/// socket; finished streams go to [`Broker::serve_connection`]; the loop ends when the broker
/// shuts down.
pub async fn serve<H: Handshake>(
    listener: TcpListener,
    handshake: H,
    limits: HandshakeLimits,
    broker: Broker,
    admission: Arc<Admission>,
) {
    let shutdown = broker.shutdown_token();
    let admit = move |peer: SocketAddr| admission.admits(peer.ip());
    let deliver = move |stream: H::Stream, info: ConnectionInfo| {
        let broker = broker.clone();
        async move { broker.serve_connection(stream, info).await }
    };
    run(listener, handshake, limits, shutdown, admit, deliver).await;
}

/// Accepts until `shutdown`, runs `handshake` on each socket within `limits`, and hands every
/// finished stream to `deliver` on its own task. No admission check: see [`serve`] for the hub.
pub async fn serve_with<H, D, F>(
    listener: TcpListener,
    handshake: H,
    limits: HandshakeLimits,
    shutdown: CancellationToken,
    deliver: D,
) where
    H: Handshake,
    D: Fn(H::Stream, ConnectionInfo) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    run(listener, handshake, limits, shutdown, |_| true, deliver).await;
}

async fn run<H, A, D, F>(
    listener: TcpListener,
    handshake: H,
    limits: HandshakeLimits,
    shutdown: CancellationToken,
    admit: A,
    deliver: D,
) where
    H: Handshake,
    A: Fn(SocketAddr) -> bool,
    D: Fn(H::Stream, ConnectionInfo) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let name = listener_name(handshake.kind(), &listener);
    let handshake = Arc::new(handshake);
    let deliver = Arc::new(deliver);
    let permits = Arc::new(Semaphore::new(limits.max_concurrent.max(1)));
    tracing::info!(listener = %name, "listening");
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // the semaphore is never closed; stop rather than spin
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Typically EMFILE: back off instead of spinning on a full fd table.
                    tracing::warn!(listener = %name, error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if !admit(peer) {
            tracing::debug!(listener = %name, %peer, "connection refused by admission rules");
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let accepted_at = tokio::time::Instant::now();
        let (handshake, deliver, name, shutdown) = (
            handshake.clone(),
            deliver.clone(),
            name.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                outcome = tokio::time::timeout(limits.timeout, handshake.handshake(tcp)) => outcome,
            };
            drop(permit);
            match outcome {
                Ok(Ok((stream, tls_identity))) => {
                    let info = ConnectionInfo {
                        peer,
                        listener: name,
                        tls_identity,
                        accepted_at,
                    };
                    deliver(stream, info).await;
                }
                Ok(Err(err)) => log_refused(&name, peer, &err),
                Err(_) => log_refused(&name, peer, &"handshake timed out"),
            }
        });
    }
    tracing::info!(listener = %name, "stopped accepting");
}

fn log_refused(listener: &str, peer: SocketAddr, reason: &dyn Display) {
    tracing::info!(listener, %peer, reason = %reason, "connection refused during handshake");
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    /// A stand-in handshake: the client must send one byte.
    struct OneByte;

    impl Handshake for OneByte {
        type Stream = TcpStream;
        type Error = std::io::Error;

        fn kind(&self) -> &'static str {
            "test"
        }

        async fn handshake(
            &self,
            mut tcp: TcpStream,
        ) -> Result<(TcpStream, Option<String>), std::io::Error> {
            let byte = tcp.read_u8().await?;
            Ok((tcp, Some(format!("byte-{byte}"))))
        }
    }

    async fn start(
        limits: HandshakeLimits,
    ) -> (
        SocketAddr,
        mpsc::UnboundedReceiver<ConnectionInfo>,
        CancellationToken,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve_with(
            listener,
            OneByte,
            limits,
            shutdown.clone(),
            move |mut stream: TcpStream, info| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(info);
                    let _ = stream.write_all(b"hello").await;
                }
            },
        ));
        (addr, rx, shutdown)
    }

    const LIMIT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn finished_handshake_is_delivered_with_its_info() {
        let (addr, mut rx, shutdown) = start(HandshakeLimits::default()).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_u8(7).await.unwrap();
        let info = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info.tls_identity.as_deref(), Some("byte-7"));
        assert_eq!(info.peer, client.local_addr().unwrap());
        assert_eq!(&*info.listener, format!("test:{addr}"));
        let mut hello = [0u8; 5];
        tokio::time::timeout(LIMIT, client.read_exact(&mut hello))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&hello, b"hello");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn stalled_handshake_is_closed_at_the_deadline() {
        let limits = HandshakeLimits {
            timeout: Duration::from_millis(200),
            max_concurrent: 4,
        };
        let (addr, mut rx, shutdown) = start(limits).await;
        let started = std::time::Instant::now();
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(LIMIT, silent.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "server must close a stalled handshake");
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(rx.try_recv().is_err(), "nothing delivered");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn handshakes_beyond_the_cap_wait_for_a_free_slot() {
        let limits = HandshakeLimits {
            timeout: Duration::from_millis(400),
            max_concurrent: 1,
        };
        let (addr, mut rx, shutdown) = start(limits).await;
        let _stalling = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await; // let the loop take it and its permit
        let started = std::time::Instant::now();
        let mut second = TcpStream::connect(addr).await.unwrap(); // sits in the backlog
        second.write_u8(2).await.unwrap();
        let info = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info.tls_identity.as_deref(), Some("byte-2"));
        // The only slot was held by the stalled client until its deadline.
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "took {:?}",
            started.elapsed()
        );
        shutdown.cancel();
    }

    #[tokio::test]
    async fn shutdown_stops_accepting() {
        let (addr, _rx, shutdown) = start(HandshakeLimits::default()).await;
        shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The listener was dropped with the loop, so the port refuses or resets.
        let refused = match TcpStream::connect(addr).await {
            Err(_) => true,
            Ok(mut s) => {
                let _ = s.write_u8(1).await;
                let mut buf = [0u8; 1];
                matches!(
                    tokio::time::timeout(LIMIT, s.read(&mut buf)).await.unwrap(),
                    Ok(0) | Err(_)
                )
            }
        };
        assert!(refused);
    }
}
