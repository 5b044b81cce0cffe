//! [`Session`]: the state MQTT keeps per client id across connections (MQTT 5 §4.1): its
//! subscriptions, the queue of messages waiting to be sent, the QoS 1/2 messages in flight
//! towards the client, and the QoS 2 packet ids received but not yet released.
//!
//! One queue serves online and offline delivery: publishers push into it (under the session's
//! own mutex, never a global lock) and wake the connection through [`Session::notify`]; the
//! connection task drains it when the client can take more (see `connection::outbound`). An
//! offline persistent session simply has nobody draining its queue.
//!
//! Must not touch sockets or the subscription tree. Start reading at [`Session::enqueue`].

use crate::broker::store::{QueuedRecord, QueuedState, Store, StoredMessage};
use crate::broker::trie::SubscriptionIds;
use crate::protocol::packet::{Properties, QoS, SubscriptionOptions};
use ahash::{AHashMap, AHashSet};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One message as routed: built once per incoming PUBLISH and shared (`Arc`) by every session it
/// is queued for, so fan-out copies neither the payload nor the properties.
#[derive(Debug)]
pub struct Message {
    pub topic: Arc<str>,
    pub payload: Bytes,
    /// The publisher's QoS.
    pub qos: QoS,
    /// The publisher's RETAIN flag.
    pub retain: bool,
    /// Forwarded MQTT 5 properties; topic alias, subscription ids and message expiry are cleared
    /// (the expiry lives in `expires_at` and is recomputed per delivery, §3.3.2.3.3).
    pub properties: Properties,
    pub expires_at: Option<Instant>,
    /// Client id of the publisher, `None` for the hub's own messages (no-local needs it).
    pub publisher: Option<Arc<str>>,
}

impl Message {
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }

    /// The Message Expiry Interval to forward: what is left, in whole seconds, at least 1.
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        let at = self.expires_at?;
        let left = at.saturating_duration_since(now).as_secs();
        Some(u32::try_from(left).unwrap_or(u32::MAX).max(1))
    }

    /// A copy whose payload owns its memory (not a slice of a larger read buffer).
    pub fn detached(&self) -> Message {
        Message {
            topic: self.topic.clone(),
            payload: Bytes::copy_from_slice(&self.payload),
            qos: self.qos,
            retain: self.retain,
            properties: self.properties.clone(),
            expires_at: self.expires_at,
            publisher: self.publisher.clone(),
        }
    }

    /// The message as the store keeps it.
    pub fn to_stored(&self, now: Instant) -> StoredMessage {
        let expires_at_unix = self.expires_at.map(|at| {
            let left = at.saturating_duration_since(now);
            (std::time::SystemTime::now() + left)
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        StoredMessage {
            topic: self.topic.to_string(),
            payload: self.payload.clone(),
            qos: self.qos,
            retain: self.retain,
            properties: self.properties.clone(),
            expires_at_unix,
        }
    }
}

/// One message queued for one session, with what its subscriptions made of it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub msg: Arc<Message>,
    /// min(publish QoS, granted QoS).
    pub qos: QoS,
    /// RETAIN flag to send (retain-as-published, or 1 for retained messages sent on subscribe).
    pub retain: bool,
    pub sub_ids: SubscriptionIds,
    /// Session-local order, the store's key for this message (0 when not persisted).
    pub seq: u64,
}

/// Where an outgoing QoS 1/2 message is in its acknowledgement flow (MQTT 5 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflightState {
    /// QoS 1 sent, waiting for PUBACK.
    AwaitAck,
    /// QoS 2 sent, waiting for PUBREC.
    AwaitRec,
    /// QoS 2 PUBREL sent, waiting for PUBCOMP.
    AwaitComp,
}

#[derive(Debug, Clone)]
pub struct Inflight {
    pub pkid: u16,
    pub out: Outgoing,
    pub state: InflightState,
}

/// A subscription as the session remembers it (the tree holds the routing copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSub {
    pub options: SubscriptionOptions,
    pub sub_id: Option<u32>,
}

/// The bounds a session's queue enforces.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub max_messages: usize,
    pub max_bytes: usize,
}

/// The mutable part of a session, behind [`Session::state`].
#[derive(Debug, Default)]
pub struct SessionState {
    /// Bumped by every connection that attaches; a connection only acts on the session while
    /// the generation is still its own (a taken-over connection becomes inert at once).
    pub generation: u64,
    pub connected: bool,
    /// Cancels the attached connection (takeover).
    pub kick: Option<CancellationToken>,
    /// Session Expiry Interval in seconds; `u32::MAX` never expires.
    pub expiry_secs: u32,
    /// Filter (as subscribed, `$share/` included) -> options.
    pub subscriptions: AHashMap<String, SessionSub>,
    pub queue: VecDeque<Outgoing>,
    pub queued_bytes: usize,
    /// In send order, so a reconnect resends them in order (MQTT 5 §4.4).
    pub inflight: VecDeque<Inflight>,
    next_pkid: u16,
    /// QoS 2 packet ids received (PUBREC sent) and not yet released by PUBREL (§4.3.3).
    pub qos2_in: AHashSet<u16>,
    next_seq: u64,
    /// The pending expiry of an offline session; aborted when a connection attaches.
    pub expiry_timer: Option<tokio::task::AbortHandle>,
}

impl SessionState {
    /// A packet id not used by any inflight message (§2.2.1). The caller keeps the inflight count
    /// below 65535, so one always exists.
    pub fn next_pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.wrapping_add(1);
            if self.next_pkid == 0 {
                continue;
            }
            let id = self.next_pkid;
            if !self.inflight.iter().any(|i| i.pkid == id) {
                return id;
            }
        }
    }

    /// Removes the inflight message `pkid` if it is in `state`.
    pub fn take_inflight(&mut self, pkid: u16, state: InflightState) -> Option<Inflight> {
        let pos = self
            .inflight
            .iter()
            .position(|i| i.pkid == pkid && i.state == state)?;
        self.inflight.remove(pos)
    }

    /// Drops every queued message and inflight state (clean start on an existing session).
    pub fn clear_messages(&mut self) {
        self.queue.clear();
        self.queued_bytes = 0;
        self.inflight.clear();
        self.qos2_in.clear();
    }

    pub fn is_persistent(&self) -> bool {
        self.expiry_secs > 0
    }
}

/// What became of a message offered to [`Session::enqueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// Queued, but the queue was full and an older QoS 0 message was dropped for it.
    QueuedDroppedOld,
    /// Not queued: the queue was full (no QoS 0 to drop), or QoS 0 for an offline session.
    Dropped,
}

/// The state MQTT keeps per client id. Shared as `Arc<Session>` by the session registry, the
/// attached connection and, briefly, the publishers queueing into it.
#[derive(Debug)]
pub struct Session {
    pub client_id: Arc<str>,
    /// Wakes the attached connection when something was queued.
    pub notify: Notify,
    /// Mirrors `state.connected` for lock-free reads (shared-subscription member choice).
    online: AtomicBool,
    /// A parking_lot mutex, not a tokio one: it is never held across an await, and every hold is
    /// a few queue operations.
    pub state: Mutex<SessionState>,
}

impl Session {
    pub fn new(client_id: Arc<str>, expiry_secs: u32) -> Arc<Session> {
        Arc::new(Session {
            client_id,
            notify: Notify::new(),
            online: AtomicBool::new(false),
            state: Mutex::new(SessionState {
                expiry_secs,
                ..SessionState::default()
            }),
        })
    }

    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Relaxed)
    }

    /// Sets the online flag; the caller holds the state lock and updates `connected` with it.
    pub fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::Relaxed);
    }

    /// Queues `out` for this session and wakes its connection. QoS 0 messages are not queued for
    /// offline sessions (only QoS 1/2 wait for a persistent session, broker.md "Sessions"). When
    /// the queue is full, the oldest QoS 0 message makes room; with none, the new message is
    /// dropped (broker.md: "oldest QoS 0 dropped first"). The caller counts drops.
    pub fn enqueue(&self, mut out: Outgoing, limits: QueueLimits, store: &dyn Store) -> Enqueued {
        let size = out.msg.payload.len();
        let mut result = Enqueued::Queued;
        let online;
        {
            let mut st = self.state.lock();
            online = st.connected;
            if !online && out.qos == QoS::AtMostOnce {
                return Enqueued::Dropped;
            }
            if !online {
                // The payload is a slice of the publisher's read buffer; an offline queue may
                // keep it for days, so it gets its own copy rather than pinning that buffer.
                out.msg = Arc::new(out.msg.detached());
            }
            if st.queue.len() >= limits.max_messages || st.queued_bytes + size > limits.max_bytes {
                let Some(pos) = st.queue.iter().position(|o| o.qos == QoS::AtMostOnce) else {
                    return Enqueued::Dropped;
                };
                if let Some(old) = st.queue.remove(pos) {
                    st.queued_bytes -= old.msg.payload.len();
                }
                result = Enqueued::QueuedDroppedOld;
            }
            if out.qos != QoS::AtMostOnce && st.is_persistent() && store.is_enabled() {
                st.next_seq += 1;
                out.seq = st.next_seq;
                store.queue_push(&self.client_id, &queued_record(&out, QueuedState::Queued));
            }
            st.queued_bytes += size;
            st.queue.push_back(out);
        }
        if online {
            self.notify.notify_one();
        }
        result
    }

    /// Restores a queued or inflight message loaded from the store (at start, before any
    /// connection exists).
    pub fn restore(&self, out: Outgoing, state: QueuedState) {
        let mut st = self.state.lock();
        st.next_seq = st.next_seq.max(out.seq);
        match state {
            QueuedState::Queued => {
                st.queued_bytes += out.msg.payload.len();
                st.queue.push_back(out);
            }
            QueuedState::Sent { pkid } | QueuedState::Released { pkid } => {
                let state = match (state, out.qos) {
                    (QueuedState::Released { .. }, _) => InflightState::AwaitComp,
                    (_, QoS::ExactlyOnce) => InflightState::AwaitRec,
                    _ => InflightState::AwaitAck,
                };
                st.next_pkid = st.next_pkid.max(pkid);
                st.inflight.push_back(Inflight { pkid, out, state });
            }
        }
    }
}

/// The store record of a queued message.
pub fn queued_record(out: &Outgoing, state: QueuedState) -> QueuedRecord {
    QueuedRecord {
        seq: out.seq,
        message: out.msg.to_stored(Instant::now()),
        qos: out.qos,
        retain: out.retain,
        subscription_ids: out.sub_ids.as_slice().to_vec(),
        state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::store::NoopStore;

    fn out(qos: QoS, payload: &'static [u8]) -> Outgoing {
        Outgoing {
            msg: Arc::new(Message {
                topic: Arc::from("t"),
                payload: Bytes::from_static(payload),
                qos,
                retain: false,
                properties: Properties::default(),
                expires_at: None,
                publisher: None,
            }),
            qos,
            retain: false,
            sub_ids: SubscriptionIds::None,
            seq: 0,
        }
    }

    fn online_session() -> Arc<Session> {
        let s = Session::new(Arc::from("c"), 0);
        s.state.lock().connected = true;
        s
    }

    const LIMITS: QueueLimits = QueueLimits {
        max_messages: 3,
        max_bytes: 1000,
    };

    #[test]
    fn full_queue_drops_oldest_qos0_first_then_the_new_message() {
        let s = online_session();
        assert_eq!(
            s.enqueue(out(QoS::AtLeastOnce, b"a"), LIMITS, &NoopStore),
            Enqueued::Queued
        );
        assert_eq!(
            s.enqueue(out(QoS::AtMostOnce, b"b"), LIMITS, &NoopStore),
            Enqueued::Queued
        );
        assert_eq!(
            s.enqueue(out(QoS::AtLeastOnce, b"c"), LIMITS, &NoopStore),
            Enqueued::Queued
        );
        assert_eq!(
            s.enqueue(out(QoS::AtLeastOnce, b"d"), LIMITS, &NoopStore),
            Enqueued::QueuedDroppedOld
        );
        let payloads: Vec<_> = s
            .state
            .lock()
            .queue
            .iter()
            .map(|o| o.msg.payload.clone())
            .collect();
        assert_eq!(payloads, vec![&b"a"[..], &b"c"[..], &b"d"[..]]);
        assert_eq!(
            s.enqueue(out(QoS::AtLeastOnce, b"e"), LIMITS, &NoopStore),
            Enqueued::Dropped
        );
        assert_eq!(s.state.lock().queued_bytes, 3);
    }

    #[test]
    fn byte_bound_applies_too() {
        let s = online_session();
        let limits = QueueLimits {
            max_messages: 100,
            max_bytes: 4,
        };
        assert_eq!(
            s.enqueue(out(QoS::AtLeastOnce, b"abc"), limits, &NoopStore),
            Enqueued::Queued
        );
        assert_eq!(
            s.enqueue(out(QoS::AtLeastOnce, b"de"), limits, &NoopStore),
            Enqueued::Dropped
        );
    }

    #[test]
    fn offline_sessions_take_no_qos0_and_own_their_payloads() {
        let s = Session::new(Arc::from("c"), 60);
        assert_eq!(
            s.enqueue(out(QoS::AtMostOnce, b"x"), LIMITS, &NoopStore),
            Enqueued::Dropped
        );
        let original = out(QoS::AtLeastOnce, b"y");
        assert_eq!(
            s.enqueue(original.clone(), LIMITS, &NoopStore),
            Enqueued::Queued
        );
        let st = s.state.lock();
        assert!(
            !Arc::ptr_eq(&st.queue[0].msg, &original.msg),
            "detached copy queued"
        );
        assert_eq!(&st.queue[0].msg.payload[..], b"y");
    }

    #[test]
    fn packet_ids_skip_zero_and_ids_in_flight() {
        let s = online_session();
        let mut st = s.state.lock();
        st.next_pkid = u16::MAX - 1;
        let first = st.next_pkid();
        assert_eq!(first, u16::MAX);
        st.inflight.push_back(Inflight {
            pkid: 1,
            out: out(QoS::AtLeastOnce, b"z"),
            state: InflightState::AwaitAck,
        });
        assert_eq!(
            st.next_pkid(),
            2,
            "wraps past 0 and skips the inflight id 1"
        );
        assert!(
            st.take_inflight(1, InflightState::AwaitRec).is_none(),
            "state must match"
        );
        assert!(st.take_inflight(1, InflightState::AwaitAck).is_some());
    }
}
