//! A minimal MQTT client over a raw tokio TCP or TLS stream (`stream.rs`), built on `lothub::protocol`'s codec so the
//! load generator spends its CPU on the traffic, not on a client library's machinery.
//!
//! Only what the scenarios need: CONNECT/CONNACK, SUBSCRIBE/SUBACK, and a buffered packet
//! reader; publishing loops encode straight into their own write buffers (see `scenario.rs`).

use crate::stream::{Dialer, Stream, send_all};
use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use lothub::protocol::packet::{
    Connect, Packet, Properties, ProtocolVersion, QoS, Subscribe, SubscribeFilter,
    SubscriptionOptions,
};
use lothub::protocol::{decode, encode};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest packet the bench accepts from a broker.
const MAX_PACKET: usize = 1 << 20;
/// How long a handshake step (CONNACK, SUBACK) may take before the scenario fails.
const HANDSHAKE: Duration = Duration::from_secs(10);

pub struct Conn {
    pub stream: Stream,
    pub rbuf: BytesMut,
    pub version: ProtocolVersion,
}

impl Conn {
    /// Opens a TCP (or, with `--tls`, TLS) connection, sends CONNECT (clean start, keep-alive
    /// 120 s) and waits for a successful CONNACK.
    pub async fn connect(
        dialer: &Dialer,
        client_id: &str,
        version: ProtocolVersion,
    ) -> Result<Conn> {
        let stream = tokio::time::timeout(HANDSHAKE, dialer.connect())
            .await
            .context("connect timed out")??;
        let mut conn = Conn {
            stream,
            rbuf: BytesMut::with_capacity(4096),
            version,
        };
        let connect = Connect {
            protocol: version,
            clean_start: true,
            keep_alive: 120,
            client_id: client_id.to_string(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        };
        conn.send(&Packet::Connect(Box::new(connect))).await?;
        match conn.recv_timeout().await? {
            Packet::ConnAck(ack) if ack.reason == 0 => Ok(conn),
            Packet::ConnAck(ack) => bail!("CONNACK refused: reason 0x{:02X}", ack.reason),
            other => bail!("expected CONNACK, got {other:?}"),
        }
    }

    pub async fn send(&mut self, packet: &Packet) -> Result<()> {
        let mut buf = BytesMut::new();
        encode(packet, self.version, &mut buf)?;
        send_all(&mut self.stream, &buf).await?;
        Ok(())
    }

    /// Decodes one packet already buffered, if any.
    pub fn try_decode(&mut self) -> Result<Option<Packet>> {
        Ok(decode(&mut self.rbuf, Some(self.version), MAX_PACKET)?)
    }

    /// Reads more bytes into the buffer; errors on end of stream.
    pub async fn fill(&mut self) -> Result<()> {
        if self.rbuf.capacity() - self.rbuf.len() < 16 * 1024 {
            self.rbuf.reserve(64 * 1024);
        }
        if self.stream.read_buf(&mut self.rbuf).await? == 0 {
            bail!("broker closed the connection");
        }
        Ok(())
    }

    pub async fn recv(&mut self) -> Result<Packet> {
        loop {
            if let Some(p) = self.try_decode()? {
                return Ok(p);
            }
            self.fill().await?;
        }
    }

    async fn recv_timeout(&mut self) -> Result<Packet> {
        tokio::time::timeout(HANDSHAKE, self.recv())
            .await
            .context("broker did not answer in time")?
    }

    /// Subscribes to one filter and waits for a SUBACK granting it.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<()> {
        let sub = Subscribe {
            pkid: 1,
            filters: vec![SubscribeFilter {
                filter: filter.to_string(),
                options: SubscriptionOptions {
                    qos,
                    ..Default::default()
                },
            }],
            properties: Properties::default(),
        };
        self.send(&Packet::Subscribe(sub)).await?;
        loop {
            match self.recv_timeout().await? {
                Packet::SubAck(ack) if ack.reasons.first().is_some_and(|&r| r < 0x80) => {
                    return Ok(());
                }
                Packet::SubAck(ack) => bail!("subscription refused: {:02X?}", ack.reasons),
                // A retained message from an earlier run may arrive first: ignore it.
                Packet::Publish(_) => {}
                other => bail!("expected SUBACK, got {other:?}"),
            }
        }
    }

    /// Sends DISCONNECT and closes; errors are ignored (the broker may already be gone).
    pub async fn disconnect(mut self) {
        let d = Packet::Disconnect(Default::default());
        let _ = tokio::time::timeout(Duration::from_secs(1), self.send(&d)).await;
        let _ = self.stream.shutdown().await;
    }
}
