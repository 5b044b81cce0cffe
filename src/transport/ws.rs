//! # transport::ws: MQTT over WebSocket (and, over a TLS stream, secure WebSocket)
//!
//! Owns the WebSocket upgrade ([`handshake`]: path check, `mqtt` subprotocol) and
//! [`WsByteStream`], which turns a `WebSocketStream` back into a plain byte stream so the broker's
//! connection code is the same for every listener kind.
//! Must not touch: MQTT packets (frames carry bytes; packets may span frames and a frame may hold
//! several packets, MQTT 3.1.1 section 6.0), TLS (WSS is `tls::handshake` then this).
//! Start at [`handshake`], then [`WsByteStream`]'s `AsyncRead`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

/// The path used when the config gives none.
pub const DEFAULT_PATH: &str = "/mqtt";

/// Subprotocols we speak, in order of preference: `mqtt` is the registered name (MQTT 3.1.1
/// section 6.0, MQTT 5 section 6); `mqttv3.1` is what MQTT 3.1-era clients ask for.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// What one WebSocket listener needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsSettings {
    /// Request path to accept (others get 404).
    pub path: String,
    /// Largest WebSocket message (and frame) accepted. It bounds what one frame can make us
    /// allocate before the broker's own packet-size check sees a byte.
    pub max_message_bytes: usize,
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings {
            path: DEFAULT_PATH.to_string(),
            max_message_bytes: 2 * 1024 * 1024,
        }
    }
}

/// Why a WebSocket upgrade did not produce a connection.
#[derive(Debug, Error)]
pub enum WsHandshakeError {
    #[error("WebSocket handshake failed: {0}")]
    Handshake(#[from] tungstenite::Error),
}

/// Answers the HTTP upgrade: 404 for another path, 400 when the client offers subprotocols and
/// none is MQTT's, otherwise 101 echoing the chosen subprotocol. A client that offers no
/// subprotocol at all is accepted (some embedded clients omit the header).
#[allow(clippy::result_large_err)] // the upgrade callback's type, see `check_upgrade`
pub async fn handshake<S>(
    stream: S,
    settings: &WsSettings,
) -> Result<WsByteStream<S>, WsHandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let path = settings.path.clone();
    let check =
        move |request: &Request, response: Response| check_upgrade(&path, request, response);
    // A small read buffer: tungstenite allocates it up front for every connection.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .max_message_size(Some(settings.max_message_bytes))
        .max_frame_size(Some(settings.max_message_bytes));
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config)).await?;
    Ok(WsByteStream::new(ws))
}

// The error type is tungstenite's `Callback` contract (an HTTP response), not ours to box.
#[allow(clippy::result_large_err)]
fn check_upgrade(
    path: &str,
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    if request.uri().path() != path {
        return Err(reject(StatusCode::NOT_FOUND, "not found"));
    }
    let offered = request.headers().get_all(header::SEC_WEBSOCKET_PROTOCOL);
    let offered: Vec<&str> = offered
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    if offered.is_empty() {
        return Ok(response);
    }
    let Some(chosen) = SUBPROTOCOLS
        .iter()
        .find(|ours| offered.iter().any(|o| o.eq_ignore_ascii_case(ours)))
    else {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "unsupported subprotocol; use mqtt",
        ));
    };
    response.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(chosen),
    );
    Ok(response)
}

fn reject(status: StatusCode, body: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(body.to_string()));
    *response.status_mut() = status;
    response
}

/// A WebSocket seen as a byte stream: reads yield the payloads of binary messages back to back,
/// each write is sent as one binary message.
pub struct WsByteStream<S> {
    ws: WebSocketStream<S>,
    /// What is left of the last binary message after a short read.
    pending: Bytes,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsByteStream<S> {
    pub fn new(ws: WebSocketStream<S>) -> Self {
        WsByteStream {
            ws,
            pending: Bytes::new(),
        }
    }

    /// The inner stream (e.g. to look at the TLS session under WSS).
    pub fn get_ref(&self) -> &S {
        self.ws.get_ref()
    }
}

fn to_io(err: tungstenite::Error) -> io::Error {
    match err {
        tungstenite::Error::Io(err) => err,
        other => io::Error::other(other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsByteStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.pending.is_empty() {
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => this.pending = data,
                // tungstenite answers pings itself; nothing reaches the MQTT layer.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                // [MQTT-6.0.0-1]: packets travel in binary frames; any other data frame closes
                // the network connection.
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text WebSocket frame on an MQTT connection",
                    )));
                }
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                )) => {
                    return Poll::Ready(Ok(()));
                }
                Some(Err(err)) => return Poll::Ready(Err(to_io(err))),
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending[..n]);
        this.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsByteStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let ws = &mut self.ws;
        ready!(Pin::new(&mut *ws).poll_ready(cx)).map_err(to_io)?;
        // The broker batches outgoing packets into one write, so one write = one message keeps
        // frames large and few.
        Pin::new(&mut *ws)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(to_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(to_io)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.ws).poll_close(cx)) {
            Ok(())
            | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Poll::Ready(Ok(()))
            }
            Err(err) => Poll::Ready(Err(to_io(err))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    const LIMIT: Duration = Duration::from_secs(10);

    fn request(path: &str, protocols: Option<&str>) -> tungstenite::handshake::client::Request {
        let mut request = format!("ws://localhost{path}")
            .into_client_request()
            .unwrap();
        if let Some(protocols) = protocols {
            request.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_str(protocols).unwrap(),
            );
        }
        request
    }

    /// Starts the server side of the upgrade on a pipe and connects a tungstenite client.
    async fn connect(
        path: &str,
        protocols: Option<&str>,
    ) -> (
        Result<
            (
                WebSocketStream<DuplexStream>,
                tungstenite::handshake::client::Response,
            ),
            tungstenite::Error,
        >,
        tokio::task::JoinHandle<Result<WsByteStream<DuplexStream>, WsHandshakeError>>,
    ) {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server =
            tokio::spawn(async move { handshake(server_io, &WsSettings::default()).await });
        let client = tokio::time::timeout(
            LIMIT,
            tokio_tungstenite::client_async(request(path, protocols), client_io),
        )
        .await
        .expect("client handshake hung");
        (client, server)
    }

    #[tokio::test]
    async fn subprotocol_is_chosen_and_echoed() {
        for (offered, expected) in [
            ("mqtt", "mqtt"),
            ("mqttv3.1", "mqttv3.1"),
            ("wamp, mqtt", "mqtt"),
        ] {
            let (client, server) = connect("/mqtt", Some(offered)).await;
            let (_, response) = client.unwrap();
            assert_eq!(
                response.headers()[header::SEC_WEBSOCKET_PROTOCOL],
                expected,
                "offered {offered}"
            );
            server.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn wrong_path_gets_404_and_foreign_subprotocol_400() {
        let (client, server) = connect("/other", Some("mqtt")).await;
        match client {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), StatusCode::NOT_FOUND)
            }
            other => panic!("expected a 404, got {other:?}"),
        }
        assert!(server.await.unwrap().is_err());
        let (client, server) = connect("/mqtt", Some("wamp")).await;
        match client {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), StatusCode::BAD_REQUEST)
            }
            other => panic!("expected a 400, got {other:?}"),
        }
        assert!(server.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn bytes_cross_frame_boundaries_both_ways() {
        let (client, server) = connect("/mqtt", Some("mqtt")).await;
        let (mut client, _) = client.unwrap();
        let mut server = server.await.unwrap().unwrap();
        // One packet split over two frames, then two packets in one frame (a PINGREQ pair).
        client
            .send(Message::Binary(Bytes::from_static(&[0x30, 0x05, 0x00])))
            .await
            .unwrap();
        client
            .send(Message::Binary(Bytes::from_static(&[
                0x01, b't', b'h', b'i',
            ])))
            .await
            .unwrap();
        client
            .send(Message::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        client
            .send(Message::Binary(Bytes::from_static(&[
                0xC0, 0x00, 0xC0, 0x00,
            ])))
            .await
            .unwrap();
        let mut got = [0u8; 11];
        tokio::time::timeout(LIMIT, server.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            [
                0x30, 0x05, 0x00, 0x01, b't', b'h', b'i', 0xC0, 0x00, 0xC0, 0x00
            ]
        );

        server.write_all(&[0xD0, 0x00, 0xD0, 0x00]).await.unwrap();
        server.flush().await.unwrap();
        let mut received = Vec::new();
        let mut pongs = Vec::new();
        while received.len() < 4 || pongs.is_empty() {
            match tokio::time::timeout(LIMIT, client.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap()
            {
                Message::Binary(data) => received.extend_from_slice(&data),
                Message::Pong(data) => pongs.push(data),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(received, [0xD0, 0x00, 0xD0, 0x00]);
        // The ping was answered by tungstenite on the server side, unseen by the MQTT layer.
        assert_eq!(pongs, [Bytes::from_static(b"p")]);

        // A short read buffer drains a message over several reads.
        client
            .send(Message::Binary(Bytes::from_static(b"abcdef")))
            .await
            .unwrap();
        let mut two = [0u8; 2];
        let mut all = Vec::new();
        for _ in 0..3 {
            let n = tokio::time::timeout(LIMIT, server.read(&mut two))
                .await
                .unwrap()
                .unwrap();
            all.extend_from_slice(&two[..n]);
        }
        assert_eq!(all, b"abcdef");

        client.close(None).await.unwrap();
        let n = tokio::time::timeout(LIMIT, server.read(&mut two))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0, "a close frame reads as end of stream");
    }

    #[tokio::test]
    async fn text_frame_is_an_error() {
        let (client, server) = connect("/mqtt", None).await;
        let (mut client, _) = client.unwrap();
        let mut server = server.await.unwrap().unwrap();
        client.send(Message::text("hello")).await.unwrap();
        let mut buf = [0u8; 8];
        let err = tokio::time::timeout(LIMIT, server.read(&mut buf))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
