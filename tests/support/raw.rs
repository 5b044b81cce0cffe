//! A raw MQTT client for end-to-end tests: packets built with lothub's own codec and written to a
//! plain `TcpStream`, so a test can send what no client library would (malformed bytes, topic
//! aliases, odd property combinations) and see exactly what the hub answers.
//!
//! Owned by the broker-features tests (`mqtt5_features`, `limits_and_malformed`, `sys_topics`);
//! the hub itself is started through the lead's `tests/common`. Every wait is bounded.
#![allow(dead_code)] // each test binary uses a different subset

use bytes::{Bytes, BytesMut};
use lothub::protocol::packet::{
    Connect, Packet, Properties, ProtocolVersion, PubAck, Publish, QoS, Subscribe, SubscribeFilter,
    SubscriptionOptions,
};
use lothub::protocol::{decode, encode};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How long a test waits for one expected packet.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure nothing arrives.
pub const QUIET: Duration = Duration::from_millis(400);

/// What reading from the socket produced. Short-lived test values, so the size difference
/// between variants does not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Read {
    Packet(Packet),
    /// The hub closed the connection (EOF or reset).
    Closed,
    /// Nothing within the wait.
    Timeout,
    /// Bytes the codec refused.
    Garbage(String),
}

pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
    pub version: ProtocolVersion,
    /// Packets read while waiting for something else (e.g. a PUBLISH before a PUBACK), handed
    /// out first by [`Raw::packet`].
    pending: VecDeque<Packet>,
}

/// A CONNECT with sane defaults: clean start, keep-alive 60 s, no properties.
pub fn connect_packet(version: ProtocolVersion, client_id: &str) -> Connect {
    Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.to_string(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

/// A PUBLISH value.
pub fn publish(topic: &str, payload: &[u8], qos: QoS, pkid: u16) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: Arc::from(topic),
        pkid,
        payload: Bytes::copy_from_slice(payload),
        properties: Properties::default(),
    }
}

/// Subscription options with only a QoS.
pub fn opts(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..SubscriptionOptions::default()
    }
}

impl Raw {
    /// Opens a TCP connection without sending anything.
    pub async fn open(addr: SocketAddr, version: ProtocolVersion) -> Raw {
        let stream = timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect failed");
        Raw::from_stream(stream, version)
    }

    /// Wraps an already connected stream (e.g. one with a tuned receive buffer).
    pub fn from_stream(stream: TcpStream, version: ProtocolVersion) -> Raw {
        stream.set_nodelay(true).ok();
        Raw {
            stream,
            buf: BytesMut::new(),
            version,
            pending: VecDeque::new(),
        }
    }

    /// Opens a connection, sends `connect` and returns the CONNACK (panics on anything else).
    pub async fn connect_with(
        addr: SocketAddr,
        connect: Connect,
    ) -> (Raw, lothub::protocol::packet::ConnAck) {
        let mut raw = Raw::open(addr, connect.protocol).await;
        raw.send(&Packet::Connect(Box::new(connect))).await;
        match raw.read().await {
            Read::Packet(Packet::ConnAck(ack)) => (raw, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects with defaults and asserts success.
    pub async fn connect(addr: SocketAddr, version: ProtocolVersion, client_id: &str) -> Raw {
        let (raw, ack) = Raw::connect_with(addr, connect_packet(version, client_id)).await;
        assert_eq!(ack.reason, 0, "CONNACK refused: {ack:?}");
        raw
    }

    pub async fn send(&mut self, packet: &Packet) {
        let mut out = BytesMut::new();
        encode(packet, self.version, &mut out).expect("test packet must encode");
        self.send_bytes(&out).await;
    }

    /// Writes bytes; a write error (the hub already closed) is ignored, the next read sees it.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = timeout(WAIT, self.stream.write_all(bytes)).await;
    }

    /// Reads one packet within `wait`.
    pub async fn read_within(&mut self, wait: Duration) -> Read {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match decode(&mut self.buf, Some(self.version), 1 << 28) {
                Ok(Some(p)) => return Read::Packet(p),
                Ok(None) => {}
                Err(e) => return Read::Garbage(e.to_string()),
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Read::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Read::Closed,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    pub async fn read(&mut self) -> Read {
        self.read_within(WAIT).await
    }

    /// The next packet that is not a PINGRESP; panics on close or timeout.
    pub async fn packet(&mut self) -> Packet {
        if let Some(p) = self.pending.pop_front() {
            return p;
        }
        self.fresh_packet().await
    }

    /// Like [`packet`](Self::packet) but ignoring the pending queue.
    async fn fresh_packet(&mut self) -> Packet {
        loop {
            match self.read().await {
                Read::Packet(Packet::PingResp) => continue,
                Read::Packet(p) => return p,
                other => panic!("expected a packet, got {other:?}"),
            }
        }
    }

    /// The next PUBLISH (acks, SUBACKs and PINGRESPs in between are skipped).
    pub async fn next_publish(&mut self) -> Publish {
        loop {
            match self.packet().await {
                Packet::Publish(p) => return p,
                _ => continue,
            }
        }
    }

    /// The next PUBLISH within `wait`, or None.
    pub async fn maybe_publish(&mut self, wait: Duration) -> Option<Publish> {
        while let Some(p) = self.pending.pop_front() {
            if let Packet::Publish(p) = p {
                return Some(p);
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_within(left).await {
                Read::Packet(Packet::Publish(p)) => return Some(p),
                Read::Packet(_) => continue,
                _ => return None,
            }
        }
    }

    /// Subscribes and returns the SUBACK reason codes.
    pub async fn subscribe_with(
        &mut self,
        pkid: u16,
        filters: &[(&str, SubscriptionOptions)],
        properties: Properties,
    ) -> Vec<u8> {
        let filters = filters
            .iter()
            .map(|(f, o)| SubscribeFilter {
                filter: f.to_string(),
                options: *o,
            })
            .collect();
        self.send(&Packet::Subscribe(Subscribe {
            pkid,
            filters,
            properties,
        }))
        .await;
        loop {
            match self.fresh_packet().await {
                Packet::SubAck(ack) if ack.pkid == pkid => return ack.reasons,
                Packet::SubAck(ack) => panic!("SUBACK for the wrong packet id: {ack:?}"),
                other => self.pending.push_back(other),
            }
        }
    }

    /// Subscribes to one filter at `qos` and asserts it was granted.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
        let reasons = self
            .subscribe_with(1, &[(filter, opts(qos))], Properties::default())
            .await;
        assert_eq!(reasons, vec![qos as u8], "SUBACK for {filter}");
    }

    /// Publishes and, for QoS 1, waits for the PUBACK (returning its reason code).
    pub async fn publish(&mut self, p: Publish) -> Option<u8> {
        let (qos, pkid) = (p.qos, p.pkid);
        self.send(&Packet::Publish(p)).await;
        match qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce => loop {
                match self.fresh_packet().await {
                    Packet::PubAck(ack) if ack.pkid == pkid => return Some(ack.reason),
                    other => self.pending.push_back(other),
                }
            },
            QoS::ExactlyOnce => loop {
                match self.fresh_packet().await {
                    Packet::PubRec(ack) if ack.pkid == pkid => {
                        if ack.reason >= 0x80 {
                            return Some(ack.reason);
                        }
                        self.send(&Packet::PubRel(PubAck::new(pkid))).await;
                    }
                    Packet::PubComp(ack) if ack.pkid == pkid => return Some(ack.reason),
                    other => self.pending.push_back(other),
                }
            },
        }
    }

    /// A PINGREQ/PINGRESP round trip: proves everything sent before it was processed.
    pub async fn sync(&mut self) {
        self.send(&Packet::PingReq).await;
        loop {
            match self.read().await {
                Read::Packet(Packet::PingResp) => return,
                Read::Packet(p) => self.pending.push_back(p),
                other => panic!("expected PINGRESP, got {other:?}"),
            }
        }
    }

    /// Reads until the hub closes the connection. Returns the reason code of a DISCONNECT the
    /// hub sent first (MQTT 5), if any; panics if the connection stays open.
    pub async fn expect_closed(&mut self) -> Option<u8> {
        let mut reason = None;
        loop {
            match self.read().await {
                Read::Closed => return reason,
                Read::Packet(Packet::Disconnect(d)) => reason = Some(d.reason),
                Read::Packet(Packet::ConnAck(c)) if c.reason >= 0x80 => reason = Some(c.reason),
                Read::Packet(_) => continue,
                Read::Garbage(e) => panic!("hub sent bytes the codec refuses: {e}"),
                Read::Timeout => panic!("the hub did not close the connection"),
            }
        }
    }
}

/// Asserts the hub still serves a fresh client: connect, subscribe, publish to itself, receive.
pub async fn assert_still_serving(addr: SocketAddr) {
    let mut c = Raw::connect(addr, ProtocolVersion::V5, "still-serving-probe").await;
    c.subscribe("probe/alive", QoS::AtLeastOnce).await;
    c.publish(publish("probe/alive", b"yes", QoS::AtLeastOnce, 7))
        .await;
    let p = c.next_publish().await;
    assert_eq!(&*p.topic, "probe/alive");
    assert_eq!(&p.payload[..], b"yes");
}
