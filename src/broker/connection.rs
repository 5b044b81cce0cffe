//! The life of one client connection: wait for CONNECT (bounded in time and size), accept or
//! refuse it (`connect`), then run the read/write loop until the end, then say goodbye (MQTT 5
//! DISCONNECT with a reason), publish the will if due and detach from the session.
//!
//! One task per connection owns both halves of the stream. The loop `select!`s on: socket
//! readable, socket writable (only while output is pending), the session's `Notify` (something
//! was queued), the keep-alive deadline, takeover and shutdown. Reading drains every complete
//! packet of a read; writing sends everything pending (acks and queued messages, encoded into one
//! buffer) with as few syscalls as the socket allows: this batching is the main speed lever
//! (broker.md, "Where the speed comes from").
//!
//! Buffers grow on demand and are released when empty, so an idle connection holds almost no
//! heap (broker.md: at most 4 KB per idle connection).
//!
//! Must not touch the subscription tree directly (see `registry`). Start reading at [`serve`].

use super::connect::{self, Accepted};
use super::hooks::DisconnectReason;
use super::{Broker, ConnectionInfo, Shared};
use crate::protocol::packet::{ConnAck, Connect, Disconnect, Packet, ProtocolVersion, reason};
use crate::protocol::{ProtocolError, decode};
use bytes::{Buf, BytesMut};
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::time::{Duration, Instant, timeout, timeout_at};

/// Smallest read buffer; idle connections stay at this.
const MIN_READ: usize = 256;
/// Largest single read.
const MAX_READ: usize = 64 * 1024;
/// Stop draining the session queue into the output buffer above this many pending bytes (the
/// rest waits in the bounded session queue: a slow subscriber never grows without bound).
pub(super) const OUT_HIGH_WATER: usize = 64 * 1024;
/// Stop reading from a client that does not read its acknowledgements above this.
const OUT_READ_PAUSE: usize = 1024 * 1024;
/// How long a connection over `max_connections` may take to send the CONNECT we refuse.
const OVER_LIMIT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the goodbye (DISCONNECT, CONNACK refusal) may take to write.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why the read/write loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Close {
    /// The client sent DISCONNECT with this reason code.
    ClientDisconnect(u8),
    /// EOF or an I/O error.
    Lost,
    KeepAlive,
    TakenOver,
    Shutdown,
    /// The client broke the protocol; MQTT 5 clients get DISCONNECT with this reason.
    Violation(u8),
}

impl Close {
    fn reason(self) -> DisconnectReason {
        match self {
            Close::ClientDisconnect(reason::DISCONNECT_WITH_WILL) => {
                DisconnectReason::NormalWithWill
            }
            Close::ClientDisconnect(_) => DisconnectReason::Normal,
            Close::Lost => DisconnectReason::ConnectionLost,
            Close::KeepAlive => DisconnectReason::KeepAliveTimeout,
            Close::TakenOver => DisconnectReason::TakenOver,
            Close::Shutdown => DisconnectReason::ServerShutdown,
            Close::Violation(code) => DisconnectReason::ProtocolViolation(code),
        }
    }

    /// The reason of the DISCONNECT we send (MQTT 5 only), if any.
    fn server_disconnect(self) -> Option<u8> {
        match self {
            Close::KeepAlive => Some(reason::KEEP_ALIVE_TIMEOUT),
            Close::TakenOver => Some(reason::SESSION_TAKEN_OVER),
            Close::Shutdown => Some(reason::SERVER_SHUTTING_DOWN),
            Close::Violation(code) => Some(code),
            Close::ClientDisconnect(_) | Close::Lost => None,
        }
    }
}

/// The two halves of the stream and the read buffer.
pub(super) struct Io<S> {
    rd: ReadHalf<S>,
    wr: WriteHalf<S>,
    inbuf: BytesMut,
    read_hint: usize,
}

impl<S: AsyncRead + AsyncWrite> Io<S> {
    /// Makes room for the next read: `read_hint` grows while reads fill the buffer and shrinks
    /// while they do not.
    fn prepare_read(&mut self) {
        if self.inbuf.capacity() - self.inbuf.len() < MIN_READ / 2 {
            self.inbuf.reserve(self.read_hint);
        }
    }

    fn after_read(&mut self, n: usize, spare: usize) {
        if n >= spare {
            self.read_hint = (self.read_hint * 2).min(MAX_READ);
        } else if n < self.read_hint / 4 {
            self.read_hint = (self.read_hint / 2).max(MIN_READ);
        }
    }

    /// Releases the read buffer's memory when nothing is pending in it and it is larger than
    /// the current read size: busy connections keep their big buffer, idle ones shrink to
    /// `MIN_READ` as their reads get small.
    fn release_if_empty(&mut self) {
        if self.inbuf.is_empty() && self.inbuf.capacity() > self.read_hint {
            self.inbuf = BytesMut::new();
        }
    }

    /// Writes `buf` completely (goodbyes), bounded in time.
    async fn write_final(&mut self, buf: &[u8]) {
        let _ = timeout(GOODBYE_TIMEOUT, async {
            self.wr.write_all(buf).await?;
            self.wr.flush().await?;
            self.wr.shutdown().await
        })
        .await;
    }
}

/// Decrements the connection count when the connection ends, however it ends.
struct ConnectionSlot<'a>(&'a Shared);

impl Drop for ConnectionSlot<'_> {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs one connection to its end; see the module docs.
pub(super) async fn serve<S>(broker: Broker, stream: S, info: ConnectionInfo)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = broker.shared;
    let _tracked = shared.tracker.token();
    let open = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let _slot = ConnectionSlot(&shared);
    if shared.shutdown.is_cancelled() {
        return;
    }
    // Over the limit, the client still gets a CONNACK saying so (0x97 Quota exceeded; 3.x:
    // server unavailable), but only a short time to send its CONNECT.
    let over_limit = open > shared.settings.max_connections;
    let (rd, wr) = tokio::io::split(stream);
    let mut io = Io {
        rd,
        wr,
        inbuf: BytesMut::new(),
        read_hint: MIN_READ,
    };
    let deadline = if over_limit {
        shared
            .settings
            .connect_timeout
            .min(OVER_LIMIT_CONNECT_TIMEOUT)
    } else {
        shared.settings.connect_timeout
    };
    let connect = tokio::select! {
        _ = shared.shutdown.cancelled() => return,
        r = timeout_at(info.accepted_at + deadline, read_connect(&shared, &mut io)) => match r {
            Ok(Ok(connect)) => connect,
            Ok(Err(refusal)) => {
                if let Some(bytes) = refusal {
                    io.write_final(&bytes).await;
                }
                return;
            }
            Err(_) => {
                tracing::debug!(peer = %info.peer, "no CONNECT within the deadline");
                return;
            }
        },
    };
    // The codec split the CONNECT off the read buffer, so the buffer is now the tail of a shared
    // allocation whose capacity is under `read_hint`, which `release_if_empty` keeps. An idle
    // client may send nothing more for a whole keep-alive: give it back now (broker.md: 4 KB
    // per idle connection); the next read allocates `read_hint` again.
    if io.inbuf.is_empty() {
        io.inbuf = BytesMut::new();
    }
    let version = connect.protocol;
    if over_limit {
        tracing::debug!(peer = %info.peer, "connection refused: max_connections reached");
        let mut buf = BytesMut::new();
        let connack = ConnAck {
            session_present: false,
            reason: reason::QUOTA_EXCEEDED,
            properties: Default::default(),
        };
        let _ = crate::protocol::encode(&Packet::ConnAck(connack), version, &mut buf);
        io.write_final(&buf).await;
        return;
    }
    // Boxed: CONNECT handling holds large values (properties, will) that would otherwise size
    // every connection's future for its whole life (broker.md: 4 KB per idle connection).
    let mut conn = {
        // Copied for the refusal log line (operators most need to see failed logins; broker.md,
        // Operations). Scoped to this block so an accepted connection does not carry them for
        // its whole life (broker.md: 4 KB per idle connection).
        let (client_id, username) = (connect.client_id.clone(), connect.username.clone());
        match Box::pin(connect::accept(&shared, *connect, &info)).await {
            Accepted::Yes(conn) => conn,
            Accepted::No(connack) => {
                tracing::info!(
                    client_id = %client_id,
                    user = username.as_deref().unwrap_or(""),
                    peer = %info.peer,
                    reason = format_args!("{:#04x}", connack.reason),
                    "client refused"
                );
                let mut buf = BytesMut::new();
                let _ = crate::protocol::encode(&Packet::ConnAck(*connack), version, &mut buf);
                io.write_final(&buf).await;
                return;
            }
        }
    };
    let close = run(&mut conn, &mut io).await;
    Box::pin(finish(conn, io, close)).await;
}

/// Reads until a whole CONNECT is there. `Err(Some(bytes))`: a refusal CONNACK to send first.
async fn read_connect<S: AsyncRead + AsyncWrite>(
    shared: &Shared,
    io: &mut Io<S>,
) -> Result<Box<Connect>, Option<BytesMut>> {
    let max = shared
        .settings
        .max_connect_packet_size
        .min(shared.settings.max_packet_size);
    loop {
        let level = sniff_level(&io.inbuf);
        match decode(&mut io.inbuf, None, max) {
            Ok(Some(Packet::Connect(c))) => {
                shared.stats.packet_received(0);
                return Ok(c);
            }
            Ok(Some(_)) => return Err(None),
            Ok(None) => {}
            Err(e) => return Err(connect_refusal(&e, level)),
        }
        io.prepare_read();
        let spare = io.inbuf.capacity() - io.inbuf.len();
        match io.rd.read_buf(&mut io.inbuf).await {
            Ok(0) | Err(_) => return Err(None),
            Ok(n) => {
                io.after_read(n, spare);
                shared.stats.bytes_received(n as u64);
            }
        }
    }
}

/// The protocol level byte of a (possibly incomplete or malformed) CONNECT, if it can be found.
fn sniff_level(buf: &[u8]) -> Option<u8> {
    let mut i = 1;
    // Remaining length: at most 4 bytes (§1.5.5).
    loop {
        let b = *buf.get(i)?;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        if i > 4 {
            return None;
        }
    }
    let name_len = usize::from(u16::from_be_bytes([*buf.get(i)?, *buf.get(i + 1)?]));
    buf.get(i + 2 + name_len).copied()
}

/// The CONNACK refusing a CONNECT the codec rejected, when the spec gives one (MQTT 5 §3.2.2.2;
/// 3.1.1 §3.2.2.3: only "unacceptable protocol version" and "identifier rejected").
fn connect_refusal(e: &ProtocolError, level: Option<u8>) -> Option<BytesMut> {
    let (version, code) = match (e, level) {
        (ProtocolError::UnsupportedProtocolVersion { .. }, Some(5)) => {
            (ProtocolVersion::V5, e.reason_code())
        }
        (ProtocolError::UnsupportedProtocolVersion { .. }, _) => {
            (ProtocolVersion::V3_1_1, e.reason_code())
        }
        (ProtocolError::ClientIdNotValid(_), Some(3)) => (ProtocolVersion::V3_1, e.reason_code()),
        (ProtocolError::ClientIdNotValid(_), Some(4)) => (ProtocolVersion::V3_1_1, e.reason_code()),
        (_, Some(5)) => (ProtocolVersion::V5, e.reason_code()),
        _ => return None,
    };
    let mut buf = BytesMut::new();
    let connack = ConnAck {
        session_present: false,
        reason: code,
        properties: Default::default(),
    };
    crate::protocol::encode(&Packet::ConnAck(connack), version, &mut buf).ok()?;
    Some(buf)
}

/// The read/write loop of a connected client.
async fn run<S>(conn: &mut connect::Conn, io: &mut Io<S>) -> Close
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let shared = conn.shared.clone();
    let session = conn.session.clone();
    let kick = conn.kick.clone();
    let keep_alive = conn.keep_alive;
    let mut last_read = Instant::now();
    let far_future = last_read + Duration::from_secs(86_400 * 365);
    let sleep = tokio::time::sleep_until(keep_alive.map_or(far_future, |k| last_read + k));
    tokio::pin!(sleep);
    let max_packet = shared.settings.max_packet_size;
    io.release_if_empty();
    let mut unflushed = false;
    conn.drain();
    loop {
        io.prepare_read();
        let spare = io.inbuf.capacity() - io.inbuf.len();
        let out_len = conn.out.buf.len();
        tokio::select! {
            biased;
            _ = kick.cancelled() => {
                return if shared.shutdown.is_cancelled() {
                    Close::Shutdown
                } else {
                    Close::TakenOver
                };
            }
            r = write_when_durable(&shared, conn.durable_needed, &mut io.wr, &conn.out.buf), if out_len > 0 || unflushed => {
                match r {
                    Err(_) | Ok(Some(0)) => return Close::Lost,
                    Ok(None) => unflushed = false,
                    Ok(Some(n)) => {
                        conn.durable_needed = 0;
                        conn.out.buf.advance(n);
                        unflushed = true;
                        shared.stats.bytes_sent(n as u64);
                        if conn.out.buf.is_empty() {
                            conn.out.release_if_empty();
                        }
                        if out_len >= OUT_HIGH_WATER && conn.out.buf.len() < OUT_HIGH_WATER {
                            conn.drain();
                        }
                    }
                }
            }
            // No reading while acks wait for durability: the point stays fixed (no starvation)
            // and the next read takes everything the client pipelined meanwhile.
            r = io.rd.read_buf(&mut io.inbuf), if out_len < OUT_READ_PAUSE && conn.durable_needed == 0 => match r {
                Ok(0) | Err(_) => return Close::Lost,
                Ok(n) => {
                    last_read = Instant::now();
                    io.after_read(n, spare);
                    shared.stats.bytes_received(n as u64);
                    if let Err(close) = conn.process(&mut io.inbuf, max_packet) {
                        return close;
                    }
                    if conn.out.buf.is_empty() {
                        conn.durable_needed = 0;
                    }
                    io.release_if_empty();
                    conn.drain();
                }
            },
            _ = session.notify.notified() => conn.drain(),
            () = &mut sleep, if keep_alive.is_some() => {
                // Reset lazily: the timer fires at most once per keep-alive period instead of
                // being re-armed on every read.
                let deadline = last_read + keep_alive.unwrap_or_default();
                if Instant::now() >= deadline {
                    return Close::KeepAlive;
                }
                sleep.as_mut().reset(deadline);
            }
        }
    }
}

/// [`write_or_flush`], after the store has made durable every event up to `point` (`0`: none):
/// the batch holds PUBACK/PUBREC of messages that must survive a crash once acknowledged.
async fn write_when_durable<W: AsyncWrite + Unpin>(
    shared: &Shared,
    point: u64,
    wr: &mut W,
    buf: &[u8],
) -> std::io::Result<Option<usize>> {
    if point > 0 {
        shared.store.wait_durable(point).await;
    }
    write_or_flush(wr, buf).await
}

/// Writes some of `buf` (`Some(n)`), or, when it is empty, flushes what earlier writes left in
/// the stream's own buffers (`None`): TLS and WebSocket streams need it, TCP ignores it. One
/// future for both so the loop borrows the write half once.
async fn write_or_flush<W: AsyncWrite + Unpin>(
    wr: &mut W,
    buf: &[u8],
) -> std::io::Result<Option<usize>> {
    if buf.is_empty() {
        wr.flush().await.map(|()| None)
    } else {
        wr.write(buf).await.map(Some)
    }
}

/// The goodbye: DISCONNECT to MQTT 5 clients when we end the connection, will, session detach,
/// hooks and the log line.
async fn finish<S>(mut conn: Box<connect::Conn>, mut io: Io<S>, close: Close)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let shared = conn.shared.clone();
    if conn.version.is_v5()
        && let Some(code) = close.server_disconnect()
    {
        let packet = Packet::Disconnect(Disconnect {
            reason: code,
            properties: Default::default(),
        });
        conn.out.push(&packet, &shared.stats);
    }
    let pending = std::mem::take(&mut conn.out.buf);
    if close != Close::TakenOver || !pending.is_empty() {
        io.write_final(&pending).await;
    }
    let reason = close.reason();
    let send_will = !matches!(close, Close::ClientDisconnect(reason::NORMAL_DISCONNECTION));
    let kept = shared
        .registry
        .detach(&shared, &conn.session, conn.generation);
    shared.stats.client_disconnected(kept);
    if let Some(will) = conn.will.take()
        && send_will
    {
        super::will::schedule(&shared, will, &conn, close == Close::Shutdown);
    }
    shared.hooks.on_disconnect(&conn.client, reason);
    tracing::info!(
        client_id = %conn.client.client_id,
        user = conn.client.username.as_deref().unwrap_or(""),
        peer = %conn.client.peer,
        reason = ?reason,
        "client disconnected"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_level_finds_the_protocol_level_or_nothing() {
        // CONNECT, remaining length 16, "MQTT", level 5.
        let v5 = [0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02];
        assert_eq!(sniff_level(&v5), Some(5));
        // MQIsdp (3.1), level 3.
        let v3 = [
            0x10, 0x10, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03,
        ];
        assert_eq!(sniff_level(&v3), Some(3));
        assert_eq!(sniff_level(&v5[..6]), None, "incomplete");
        assert_eq!(
            sniff_level(&[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            None,
            "bad varint"
        );
    }
}
