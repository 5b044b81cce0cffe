//! Towards the client: the output buffer, and the drain of the session queue into it.
//!
//! [`Outbound`] holds everything that shapes a packet for this client: its protocol version, its
//! Receive Maximum (how many QoS 1/2 messages may be in flight), its Maximum Packet Size (larger
//! packets are dropped and counted, MQTT 5 §3.1.2.11.4) and the topic aliases we assigned
//! (§3.3.2.3.4, only when the client's Topic Alias Maximum allows them). Every packet is
//! encoded straight into one buffer that the connection writes in as few syscalls as possible.
//!
//! Must not touch the socket. Start reading at [`Conn::drain`].

use super::connect::Conn;
use super::connection::OUT_HIGH_WATER;
use super::session::{Inflight, InflightState, Outgoing};
use super::store::QueuedState;
use super::sys::Stats;
use crate::protocol::packet::{Packet, ProtocolVersion, PubAck, Publish, QoS};
use crate::protocol::{encode, encoded_len};
use ahash::AHashMap;
use bytes::BytesMut;
use std::sync::Arc;
use tokio::time::Instant;

/// The output side of one connection.
pub(super) struct Outbound {
    pub buf: BytesMut,
    version: ProtocolVersion,
    /// min(client Receive Maximum, `max_inflight`).
    quota: usize,
    /// The client's Maximum Packet Size (`usize::MAX` when it set none).
    max_packet: usize,
    /// The client's Topic Alias Maximum (0: no outbound aliases).
    alias_max: u16,
    aliases: AHashMap<Arc<str>, u16>,
    empty_topic: Arc<str>,
    /// Resend the inflight messages with DUP on the first drain (resumed session, §4.4).
    pub resend: bool,
}

impl Outbound {
    pub fn new(version: ProtocolVersion, quota: usize, max_packet: usize, alias_max: u16) -> Self {
        Outbound {
            buf: BytesMut::new(),
            version,
            quota,
            max_packet,
            alias_max,
            aliases: AHashMap::new(),
            empty_topic: Arc::from(""),
            resend: false,
        }
    }

    /// Encodes a control packet (ack, SUBACK, ...) into the buffer.
    pub fn push(&mut self, packet: &Packet, stats: &Stats) {
        let before = self.buf.len();
        if let Err(e) = encode(packet, self.version, &mut self.buf) {
            // Only packets we built can get here; a failure is a bug, not a client's doing.
            tracing::error!(error = %e, "failed to encode an outgoing packet");
            self.buf.truncate(before);
            return;
        }
        // Bytes are counted when written (`connection`); here only the packet.
        stats.packet_sent(0);
    }

    /// Releases the buffer's memory once everything was written (idle connections hold none).
    pub fn release_if_empty(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 1024 {
            self.buf = BytesMut::new();
        }
    }

    /// Encodes one PUBLISH for this client. Returns false when it was dropped because it is
    /// larger than the client's Maximum Packet Size.
    fn publish(
        &mut self,
        out: &Outgoing,
        pkid: u16,
        dup: bool,
        now: Instant,
        stats: &Stats,
    ) -> bool {
        let msg = &out.msg;
        let v5 = self.version.is_v5();
        let mut publish = Publish {
            dup,
            qos: out.qos,
            retain: out.retain,
            topic: msg.topic.clone(),
            pkid,
            payload: msg.payload.clone(),
            properties: if v5 {
                msg.properties.clone()
            } else {
                Default::default()
            },
        };
        if v5 {
            publish.properties.message_expiry_interval = msg.remaining_expiry(now);
            publish.properties.subscription_identifiers = out.sub_ids.as_slice().to_vec();
        }
        if self.max_packet != usize::MAX {
            let packet = Packet::Publish(publish);
            // Measured with the full topic: an alias only makes it smaller.
            if encoded_len(&packet, self.version) > self.max_packet {
                return false;
            }
            let Packet::Publish(p) = packet else {
                unreachable!("built as a PUBLISH above")
            };
            publish = p;
        }
        if v5 && self.alias_max > 0 {
            if let Some(&alias) = self.aliases.get(&msg.topic) {
                publish.topic = self.empty_topic.clone();
                publish.properties.topic_alias = Some(alias);
            } else if self.aliases.len() < usize::from(self.alias_max) {
                let alias = self.aliases.len() as u16 + 1;
                self.aliases.insert(msg.topic.clone(), alias);
                publish.properties.topic_alias = Some(alias);
            }
        }
        self.push(&Packet::Publish(publish), stats);
        true
    }
}

impl Conn {
    /// Moves queued messages into the output buffer while the client's Receive Maximum and the
    /// buffer's high-water mark allow, assigning packet ids to QoS 1/2 messages and moving them
    /// in flight. Expired messages are dropped here (MQTT 5 §3.3.2.3.3), and so are messages the
    /// hooks no longer let this client receive.
    pub fn drain(&mut self) {
        let shared = &self.shared;
        let stats = &shared.stats;
        let persist = shared.store.is_enabled();
        let now = Instant::now();
        let mut st = self.session.state.lock();
        if st.generation != self.generation {
            return;
        }
        let persistent = persist && st.is_persistent();
        let mut sent = 0u64;
        let mut dropped = 0u64;
        if std::mem::take(&mut self.out.resend) {
            // §4.4: resend unacknowledged PUBLISH (DUP) and PUBREL with their original ids.
            let mut too_large = Vec::new();
            for i in &st.inflight {
                match i.state {
                    InflightState::AwaitComp => {
                        self.out.push(&Packet::PubRel(PubAck::new(i.pkid)), stats)
                    }
                    _ => {
                        if self.out.publish(&i.out, i.pkid, true, now, stats) {
                            sent += 1;
                        } else {
                            too_large.push(i.pkid);
                        }
                    }
                }
            }
            for pkid in too_large {
                if let Some(pos) = st.inflight.iter().position(|i| i.pkid == pkid)
                    && let Some(i) = st.inflight.remove(pos)
                    && persistent
                {
                    shared
                        .store
                        .queue_remove(&self.session.client_id, i.out.seq);
                }
                dropped += 1;
            }
        }
        while self.out.buf.len() < OUT_HIGH_WATER {
            let Some(front) = st.queue.front() else {
                break;
            };
            if front.qos != QoS::AtMostOnce && st.inflight.len() >= self.out.quota {
                break;
            }
            let Some(out) = st.queue.pop_front() else {
                break;
            };
            st.queued_bytes -= out.msg.payload.len();
            let forget = |seq: u64| {
                if persistent && seq > 0 {
                    shared.store.queue_remove(&self.session.client_id, seq);
                }
            };
            if out.msg.is_expired(now) {
                forget(out.seq);
                dropped += 1;
                continue;
            }
            if shared.check_delivery
                && !shared
                    .hooks
                    .authorize_delivery(&self.client, &out.msg.topic)
            {
                forget(out.seq);
                continue;
            }
            if out.qos == QoS::AtMostOnce {
                if self.out.publish(&out, 0, false, now, stats) {
                    sent += 1;
                } else {
                    dropped += 1;
                }
                continue;
            }
            let pkid = st.next_pkid();
            if !self.out.publish(&out, pkid, false, now, stats) {
                forget(out.seq);
                dropped += 1;
                continue;
            }
            sent += 1;
            if persistent && out.seq > 0 {
                shared.store.queue_update(
                    &self.session.client_id,
                    out.seq,
                    QueuedState::Sent { pkid },
                );
            }
            let state = if out.qos == QoS::ExactlyOnce {
                InflightState::AwaitRec
            } else {
                InflightState::AwaitAck
            };
            st.inflight.push_back(Inflight { pkid, out, state });
        }
        drop(st);
        if sent > 0 {
            stats.publish_sent(sent);
        }
        if dropped > 0 {
            stats.publish_dropped(dropped);
        }
    }
}
