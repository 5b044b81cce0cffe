//! From the client: every packet after CONNECT, decoded from the read buffer and applied.
//!
//! PUBLISH (topic alias resolution, limits, authorization, QoS 1/2 receiver flow, Receive
//! Maximum), the acknowledgements of our own QoS 1/2 deliveries, SUBSCRIBE (with retained
//! messages and retain handling), UNSUBSCRIBE, PINGREQ and DISCONNECT. Responses are encoded into
//! the connection's output buffer; the loop writes them in one batch after the whole read.
//!
//! A protocol violation returns `Err(Close::Violation(reason))`: the connection ends with that
//! MQTT 5 reason code. Must not touch the socket. Start reading at [`Conn::process`].

use super::connect::Conn;
use super::connection::Close;
use super::session::{InflightState, Message, Outgoing};
use super::store::QueuedState;
use super::trie::SubscriptionIds;
use crate::protocol::decode;
use crate::protocol::packet::{
    Disconnect, Packet, PubAck, Publish, QoS, SubAck, Subscribe, UnsubAck, Unsubscribe, reason,
};
use crate::protocol::topic::{validate_topic_filter, validate_topic_name};
use bytes::BytesMut;
use std::sync::Arc;
use tokio::time::{Duration, Instant};

impl Conn {
    /// Decodes and applies every complete packet in `inbuf`.
    pub fn process(&mut self, inbuf: &mut BytesMut, max_packet: usize) -> Result<(), Close> {
        self.unacked_batch = 0;
        loop {
            match decode(inbuf, Some(self.version), max_packet) {
                Ok(Some(packet)) => {
                    // Bytes are counted per read in `connection`; here only the packet.
                    self.shared.stats.packet_received(0);
                    self.handle(packet)?;
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    tracing::debug!(client_id = %self.client.client_id, error = %e, "malformed input");
                    return Err(Close::Violation(e.reason_code()));
                }
            }
        }
    }

    fn handle(&mut self, packet: Packet) -> Result<(), Close> {
        match packet {
            Packet::Publish(p) => self.on_publish(p),
            Packet::PubAck(a) => {
                self.ack_inflight(a.pkid, InflightState::AwaitAck);
                Ok(())
            }
            Packet::PubRec(a) => {
                self.on_pubrec(a);
                Ok(())
            }
            Packet::PubRel(a) => {
                let found = self.session.state.lock().qos2_in.remove(&a.pkid);
                let mut comp = PubAck::new(a.pkid);
                if !found {
                    comp.reason = reason::PACKET_IDENTIFIER_NOT_FOUND;
                }
                self.out.push(&Packet::PubComp(comp), &self.shared.stats);
                Ok(())
            }
            Packet::PubComp(a) => {
                self.ack_inflight(a.pkid, InflightState::AwaitComp);
                Ok(())
            }
            Packet::Subscribe(s) => self.on_subscribe(s),
            Packet::Unsubscribe(u) => {
                self.on_unsubscribe(u);
                Ok(())
            }
            Packet::PingReq => {
                self.out.push(&Packet::PingResp, &self.shared.stats);
                Ok(())
            }
            Packet::Disconnect(d) => Err(self.on_disconnect(d)),
            // Enhanced authentication (§4.12) is not offered: no method was accepted in CONNECT.
            Packet::Auth(_) => Err(Close::Violation(reason::PROTOCOL_ERROR)),
            // A second CONNECT (§3.1) or a server-to-client packet from a client.
            _ => Err(Close::Violation(reason::PROTOCOL_ERROR)),
        }
    }

    fn on_publish(&mut self, mut p: Publish) -> Result<(), Close> {
        let shared = self.shared.clone();
        if let Some(bucket) = &mut self.publish_rate
            && !bucket.try_take(Instant::now())
        {
            return Err(Close::Violation(reason::MESSAGE_RATE_TOO_HIGH));
        }
        self.resolve_alias(&mut p)?;
        if validate_topic_name(&p.topic, &shared.topic_limits).is_err() {
            return Err(Close::Violation(reason::TOPIC_NAME_INVALID));
        }
        if p.qos != QoS::AtMostOnce {
            // Receive Maximum (§3.3.4): QoS 2 ids awaiting PUBREL plus, for MQTT 5 clients (the
            // only ones told our maximum), this batch's QoS 1 acks they cannot have seen yet.
            // For 3.x the QoS 2 bound alone keeps the per-session state bounded.
            let (waiting, is_dup_qos2) = {
                let st = self.session.state.lock();
                let dup = p.qos == QoS::ExactlyOnce && st.qos2_in.contains(&p.pkid);
                (st.qos2_in.len(), dup)
            };
            let unacked = if self.version.is_v5() {
                self.unacked_batch
            } else {
                0
            };
            if !is_dup_qos2
                && (p.qos == QoS::ExactlyOnce || self.version.is_v5())
                && waiting + unacked >= usize::from(shared.settings.receive_maximum)
            {
                return Err(Close::Violation(reason::RECEIVE_MAXIMUM_EXCEEDED));
            }
            if is_dup_qos2 {
                // §4.3.3: a resent QoS 2 PUBLISH is acknowledged again, not delivered again.
                self.out
                    .push(&Packet::PubRec(PubAck::new(p.pkid)), &shared.stats);
                return Ok(());
            }
        }
        shared.stats.publish_received();
        let pkid = p.pkid;
        let qos = p.qos;
        // Refusals are acknowledged with a reason on MQTT 5; 3.1.1 has no negative ack, so the
        // message is acknowledged and dropped there.
        let code = if p.properties.user_properties.len() > shared.settings.max_user_properties {
            // Bounded because every queued copy keeps them (broker.md "Pitfalls").
            reason::IMPLEMENTATION_SPECIFIC_ERROR
        } else if (p.topic.starts_with("$SYS/")
            && !shared
                .settings
                .client_sys_publish_topics
                .iter()
                .any(|t| t.as_str() == &*p.topic))
            || !shared.hooks.authorize_publish(&self.client, &p.topic)
        {
            reason::NOT_AUTHORIZED
        } else {
            // A command carries passwords and secrets: a client's publish into `$SYS/` is never
            // kept as the topic's retained message, where every later subscriber could read it.
            if p.retain && p.topic.starts_with("$SYS/") {
                p.retain = false;
            }
            // The ack below may only be written once what routing reported to the store is
            // durable (docs/storage.md, "Durability"); the point is read before and after so a
            // publish that reported nothing does not wait.
            let before = if qos == QoS::AtMostOnce {
                0
            } else {
                shared.store.durable_point()
            };
            let delivered = shared.accept_publish(p, Some(&self.client));
            if qos != QoS::AtMostOnce {
                let after = shared.store.durable_point();
                if after > before {
                    self.durable_needed = self.durable_needed.max(after);
                }
            }
            if delivered == 0 {
                reason::NO_MATCHING_SUBSCRIBERS
            } else {
                reason::SUCCESS
            }
        };
        let mut ack = PubAck::new(pkid);
        if self.version.is_v5() {
            ack.reason = code;
        }
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                self.unacked_batch += 1;
                self.out.push(&Packet::PubAck(ack), &shared.stats);
            }
            QoS::ExactlyOnce => {
                // A failed PUBREC ends the exchange (§4.3.3): only remember successful ones.
                if ack.reason < 0x80 {
                    self.session.state.lock().qos2_in.insert(pkid);
                }
                self.out.push(&Packet::PubRec(ack), &shared.stats);
            }
        }
        Ok(())
    }

    /// MQTT 5 §3.3.2.3.4: an alias with a topic sets it, an alias alone uses it.
    fn resolve_alias(&mut self, p: &mut Publish) -> Result<(), Close> {
        let Some(alias) = p.properties.topic_alias.take() else {
            if p.topic.is_empty() {
                return Err(Close::Violation(reason::PROTOCOL_ERROR));
            }
            return Ok(());
        };
        if alias == 0 || alias > self.shared.settings.topic_alias_maximum {
            return Err(Close::Violation(reason::TOPIC_ALIAS_INVALID));
        }
        let index = usize::from(alias - 1);
        if p.topic.is_empty() {
            match self.in_aliases.get(index).cloned().flatten() {
                Some(topic) => p.topic = topic,
                None => return Err(Close::Violation(reason::PROTOCOL_ERROR)),
            }
        } else {
            if self.in_aliases.len() <= index {
                self.in_aliases.resize(index + 1, None);
            }
            self.in_aliases[index] = Some(p.topic.clone());
        }
        Ok(())
    }

    /// PUBACK / PUBCOMP: the delivery is complete.
    fn ack_inflight(&mut self, pkid: u16, state: InflightState) {
        let mut st = self.session.state.lock();
        if st.generation != self.generation {
            return;
        }
        if let Some(done) = st.take_inflight(pkid, state)
            && done.out.seq > 0
            && self.shared.store.is_enabled()
        {
            self.shared
                .store
                .queue_remove(&self.session.client_id, done.out.seq);
        }
    }

    /// PUBREC for one of our QoS 2 deliveries: answer PUBREL (§4.3.3).
    fn on_pubrec(&mut self, a: PubAck) {
        let shared = self.shared.clone();
        let mut rel = PubAck::new(a.pkid);
        {
            let mut st = self.session.state.lock();
            if st.generation != self.generation {
                return;
            }
            let persist = shared.store.is_enabled();
            let client_id = &self.session.client_id;
            if a.reason >= 0x80 {
                // The receiver refused the message: the exchange ends without PUBREL.
                if let Some(done) = st.take_inflight(a.pkid, InflightState::AwaitRec)
                    && persist
                    && done.out.seq > 0
                {
                    shared.store.queue_remove(client_id, done.out.seq);
                }
                return;
            }
            match st
                .inflight
                .iter_mut()
                .find(|i| i.pkid == a.pkid && i.state != InflightState::AwaitAck)
            {
                Some(i) => {
                    i.state = InflightState::AwaitComp;
                    if persist && i.out.seq > 0 {
                        shared.store.queue_update(
                            client_id,
                            i.out.seq,
                            QueuedState::Released { pkid: a.pkid },
                        );
                    }
                }
                None => rel.reason = reason::PACKET_IDENTIFIER_NOT_FOUND,
            }
        }
        self.out.push(&Packet::PubRel(rel), &shared.stats);
    }

    fn on_subscribe(&mut self, s: Subscribe) -> Result<(), Close> {
        let shared = self.shared.clone();
        let v5 = self.version.is_v5();
        let sub_id = s.properties.subscription_identifiers.first().copied();
        let mut reasons = Vec::with_capacity(s.filters.len());
        let mut retained_for = Vec::new();
        for f in &s.filters {
            let is_shared = f.filter.starts_with("$share/");
            if is_shared && f.options.no_local {
                // §3.8.3.1: No Local on a shared subscription is a protocol error.
                return Err(Close::Violation(reason::PROTOCOL_ERROR));
            }
            let code = if validate_topic_filter(&f.filter, &shared.topic_limits).is_err() {
                if v5 {
                    reason::TOPIC_FILTER_INVALID
                } else {
                    0x80
                }
            } else if !shared.hooks.authorize_subscribe(&self.client, &f.filter) {
                if v5 { reason::NOT_AUTHORIZED } else { 0x80 }
            } else {
                match shared.registry.subscribe(
                    &shared,
                    &self.session,
                    &f.filter,
                    f.options,
                    sub_id,
                ) {
                    Ok(is_new) => {
                        // §3.8.4: retained messages on subscribe, never for shared ones (§4.8.2).
                        let send = match f.options.retain_handling {
                            0 => true,
                            1 => is_new,
                            _ => false,
                        };
                        if send && !is_shared {
                            retained_for.push((f.filter.clone(), f.options.qos));
                        }
                        f.options.qos as u8
                    }
                    Err(_) => {
                        if v5 {
                            reason::TOPIC_FILTER_INVALID
                        } else {
                            0x80
                        }
                    }
                }
            };
            reasons.push(code);
        }
        let suback = SubAck {
            pkid: s.pkid,
            reasons,
            properties: Default::default(),
        };
        self.out.push(&Packet::SubAck(suback), &shared.stats);
        for (filter, qos) in retained_for {
            self.queue_retained(&filter, qos, sub_id);
        }
        Ok(())
    }

    /// Queues the retained messages matching `filter` for this session, RETAIN flag set
    /// (§3.3.1.3), after the SUBACK already in the buffer.
    fn queue_retained(&mut self, filter: &str, granted: QoS, sub_id: Option<u32>) {
        let shared = &self.shared;
        let now = Instant::now();
        let limit = shared.settings.max_queued_messages;
        let found = shared.retained.read().matching(filter, limit, now);
        let limits = super::session::QueueLimits {
            max_messages: limit,
            max_bytes: shared.settings.max_queued_bytes,
        };
        let mut dropped = 0;
        for r in found {
            let p = &r.publish;
            let mut properties = p.properties.clone();
            let expires_at = r
                .remaining_expiry(now)
                .map(|secs| now + Duration::from_secs(u64::from(secs)));
            properties.message_expiry_interval = None;
            let msg = Arc::new(Message {
                topic: p.topic.clone(),
                payload: p.payload.clone(),
                qos: p.qos,
                retain: true,
                properties,
                expires_at,
                publisher: None,
            });
            let out = Outgoing {
                msg,
                qos: p.qos.min(granted),
                retain: true,
                sub_ids: sub_id.map_or(SubscriptionIds::None, SubscriptionIds::One),
                seq: 0,
            };
            if self.session.enqueue(out, limits, shared.store.as_ref())
                != super::session::Enqueued::Queued
            {
                dropped += 1;
            }
        }
        if dropped > 0 {
            shared.stats.publish_dropped(dropped);
        }
    }

    fn on_unsubscribe(&mut self, u: Unsubscribe) {
        let shared = self.shared.clone();
        let reasons = u
            .filters
            .iter()
            .map(|f| {
                if shared.registry.unsubscribe(&shared, &self.session, f) {
                    reason::SUCCESS
                } else {
                    reason::NO_SUBSCRIPTION_EXISTED
                }
            })
            .collect();
        let unsuback = UnsubAck {
            pkid: u.pkid,
            reasons,
            properties: Default::default(),
        };
        self.out.push(&Packet::UnsubAck(unsuback), &shared.stats);
    }

    /// DISCONNECT from the client (§3.14): may update the session expiry, decides the will.
    fn on_disconnect(&mut self, d: Disconnect) -> Close {
        if let Some(expiry) = d.properties.session_expiry_interval {
            // §3.14.2.2.2: a session that had expiry 0 cannot be made persistent at the end.
            if self.connect_expiry == 0 && expiry != 0 {
                return Close::Violation(reason::PROTOCOL_ERROR);
            }
            let mut st = self.session.state.lock();
            if st.generation == self.generation {
                st.expiry_secs = expiry;
            }
        }
        Close::ClientDisconnect(d.reason)
    }
}
