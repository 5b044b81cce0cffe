//! Packets from the remote broker: acknowledgements of what the route sent (PUBACK, PUBREC,
//! PUBCOMP), and messages for this hub (PUBLISH, PUBREL) with MQTT 3.1.1 echo suppression.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Bridge;
use crate::protocol::packet::{Packet, Properties, PubAck, Publish, QoS};
use crate::runtime::routes::TopicMap;
use crate::runtime::routes::client::{Conn, ConnError};

impl Bridge {
    pub(super) fn on_packet(&mut self, conn: &mut Conn, packet: Packet) -> Result<(), ConnError> {
        match packet {
            Packet::PubAck(ack) => self.complete(ack.pkid, ack.reason >= 0x80),
            Packet::PubRec(ack) if ack.reason >= 0x80 => self.complete(ack.pkid, true),
            Packet::PubRec(ack) => {
                if let Some(e) = self
                    .in_flight
                    .get(&ack.pkid)
                    .and_then(|seq| self.queue.get_mut(seq))
                {
                    e.released = true;
                }
                conn.send(&Packet::PubRel(PubAck::new(ack.pkid)))?;
            }
            Packet::PubComp(ack) => self.complete(ack.pkid, ack.reason >= 0x80),
            Packet::Publish(p) => self.on_remote_publish(conn, p)?,
            Packet::PubRel(ack) => {
                self.incoming_qos2.remove(&ack.pkid);
                conn.send(&Packet::PubComp(PubAck::new(ack.pkid)))?;
            }
            Packet::SubAck(ack) => {
                if let Some(bad) = ack.reasons.iter().find(|r| **r >= 0x80) {
                    self.status
                        .set_error(format!("the remote refused a subscription: 0x{bad:02X}"));
                }
            }
            Packet::PingResp | Packet::UnsubAck(_) => {}
            Packet::Disconnect(d) => {
                return Err(format!("the remote sent DISCONNECT 0x{:02X}", d.reason));
            }
            other => return Err(format!("unexpected packet from the remote: {other:?}")),
        }
        Ok(())
    }

    /// A message from the remote: into the hub (under the route's pseudo client), then the ack.
    fn on_remote_publish(&mut self, conn: &mut Conn, p: Publish) -> Result<(), ConnError> {
        let duplicate_qos2 = p.qos == QoS::ExactlyOnce && self.incoming_qos2.contains_key(&p.pkid);
        if !duplicate_qos2
            && !self.is_echo(&p)
            && let Some(topic) = self.cfg.inbound.iter().find_map(|m| m.map(&p.topic))
        {
            let local = Publish {
                dup: false,
                qos: p.qos,
                retain: p.retain,
                topic: Arc::from(topic),
                pkid: 0,
                payload: p.payload.clone(),
                properties: Properties::default(),
            };
            match self.broker.publish_from(local, &self.origin) {
                Ok(_) => {
                    self.status.forwarded.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    self.status.failed.fetch_add(1, Ordering::Relaxed);
                    self.status
                        .set_error(format!("publishing into the hub: {e}"));
                }
            }
        }
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => conn.send(&Packet::PubAck(PubAck::new(p.pkid)))?,
            QoS::ExactlyOnce => {
                self.incoming_qos2.insert(p.pkid, ());
                conn.send(&Packet::PubRec(PubAck::new(p.pkid)))?;
            }
        }
        Ok(())
    }

    /// 3.1.1 echo of a message this route sent: consumed once.
    fn is_echo(&mut self, p: &Publish) -> bool {
        if self.echoes.is_empty() {
            return false;
        }
        let key = echo_key(&p.topic, &p.payload);
        match self.echoes.get_mut(&key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                self.echoes.remove(&key);
                true
            }
            None => false,
        }
    }
}

/// Whether the remote will send `topic` back to us because one of our subscriptions matches it.
pub(super) fn echo_expected(inbound: &[TopicMap], topic: &str) -> bool {
    inbound
        .iter()
        .any(|m| crate::protocol::matches(m.filter(), topic))
}

pub(super) fn echo_key(topic: &str, payload: &[u8]) -> u64 {
    let mut h = ahash::AHasher::default();
    topic.hash(&mut h);
    payload.hash(&mut h);
    h.finish()
}
