//! [`Store`]: the persistence interface of the broker (retained messages, persistent sessions,
//! their queued and inflight messages), with two in-process implementations.
//!
//! The broker never knows how state is stored. It reports every change to a [`Store`] as a
//! *write-through event* (called inline on the async workers, so an implementation must only
//! buffer the event and return: the redb store groups them into one transaction every few ms)
//! and, once at start, reads everything back through the *loaders* before any listener accepts a
//! connection. The redb implementation (storage module, a later issue) fills this trait without
//! reshaping the broker.
//!
//! What is reported:
//! - retained messages: set ([`Store::put_retained`]) and cleared ([`Store::remove_retained`]);
//! - persistent sessions only (session expiry > 0): the session record (client id, expiry,
//!   subscriptions) whenever it changes, its removal when it ends or expires, and the life of
//!   each QoS 1/2 message queued for it: queued, sent with a packet id (inflight), released
//!   (QoS 2 PUBREC received, PUBREL sent), removed (acknowledged, expired or dropped).
//!   QoS 0 messages and clean sessions are never reported.
//!
//! Write events are called while the broker holds a session's lock: an implementation must not
//! call back into the broker from them.
//!
//! Write events cannot fail from the broker's point of view: an implementation logs its own
//! errors (the broker could not do anything better with them). [`Store::flush`] makes every
//! event reported so far durable; graceful shutdown calls it last.
//!
//! Acknowledgements wait for durability: after routing a QoS 1/2 PUBLISH the broker reads
//! [`Store::durable_point`]; if routing reported events, the connection awaits
//! [`Store::wait_durable`] once before writing its output batch (all acks of one read share one
//! group commit) and does not read more until then.
//!
//! Start reading at [`Store`]; [`MemoryStore`] is the reference implementation (and the one tests
//! use to check that a restarted hub gets its state back); [`NoopStore`] is the default.

use crate::protocol::packet::{Properties, QoS, SubscriptionOptions};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use thiserror::Error;

/// A failure to load or flush persisted state.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("store I/O failed: {0}")]
    Io(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// A message as persisted (retained, or queued for a session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub topic: String,
    pub payload: Bytes,
    /// The QoS the publisher used.
    pub qos: QoS,
    pub retain: bool,
    /// The MQTT 5 properties forwarded with the message (payload format, content type, response
    /// topic, correlation data, user properties). Topic alias, subscription identifiers and the
    /// message expiry interval are never stored here.
    pub properties: Properties,
    /// When the message expires, as seconds since the Unix epoch (MQTT 5 Message Expiry).
    pub expires_at_unix: Option<u64>,
}

/// One subscription of a persistent session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// The filter as subscribed, `$share/group/` prefix included.
    pub filter: String,
    pub options: SubscriptionOptions,
    pub subscription_id: Option<u32>,
}

/// The durable part of a persistent session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub client_id: String,
    /// Session Expiry Interval in seconds; `u32::MAX` never expires.
    pub expiry_secs: u32,
    pub subscriptions: Vec<StoredSubscription>,
}

/// Where a queued message of a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuedState {
    /// Waiting to be sent.
    Queued,
    /// Sent with this packet id; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Sent { pkid: u16 },
    /// QoS 2: PUBREC received and PUBREL sent; waiting for PUBCOMP.
    Released { pkid: u16 },
}

/// One QoS 1/2 message queued for (or in flight towards) a persistent session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecord {
    /// Order within the session (increasing); the key for later events about this message.
    pub seq: u64,
    pub message: StoredMessage,
    /// The QoS it is delivered with (min of publish and subscription QoS).
    pub qos: QoS,
    /// RETAIN flag as it will be sent.
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
    pub state: QueuedState,
}

/// A persistent session as loaded at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSession {
    pub record: SessionRecord,
    /// In `seq` order.
    pub queued: Vec<QueuedRecord>,
}

/// The broker's persistence interface. See the module documentation for the contract.
pub trait Store: Send + Sync + 'static {
    /// Every retained message, read once at start.
    fn load_retained(&self) -> Result<Vec<StoredMessage>, StoreError>;
    /// Every persistent session with its queued messages, read once at start.
    fn load_sessions(&self) -> Result<Vec<LoadedSession>, StoreError>;

    /// Whether the broker should report write events at all. `false` lets the broker skip
    /// building records on the hot path (the [`NoopStore`] case).
    fn is_enabled(&self) -> bool {
        true
    }

    /// A retained message was set (replaces the previous one on the same topic).
    fn put_retained(&self, message: &StoredMessage);
    /// The retained message of `topic` was cleared (empty payload) or expired.
    fn remove_retained(&self, topic: &str);

    /// A persistent session was created or its expiry or subscriptions changed.
    fn put_session(&self, record: &SessionRecord);
    /// A session ended (clean start, expiry, or a DISCONNECT setting its expiry to 0): forget it
    /// and everything queued for it.
    fn remove_session(&self, client_id: &str);

    /// A QoS 1/2 message was queued for a persistent session (`record.state` is `Queued`).
    fn queue_push(&self, client_id: &str, record: &QueuedRecord);
    /// The queued message `seq` changed state (sent with a packet id, or released).
    fn queue_update(&self, client_id: &str, seq: u64, state: QueuedState);
    /// The queued message `seq` is done: acknowledged, expired or dropped.
    fn queue_remove(&self, client_id: &str, seq: u64);

    /// Makes every event reported so far durable.
    fn flush(&self) -> Result<(), StoreError>;

    /// A point covering every event reported so far; pass it to [`Store::wait_durable`]. `0`
    /// (the default, for stores without a durability delay) means nothing to wait for.
    fn durable_point(&self) -> u64 {
        0
    }

    /// Resolves once every event up to `point` is durable (or lost to a failed commit, which the
    /// store logs). The broker awaits it before sending the PUBACK/PUBREC of a QoS 1/2 PUBLISH
    /// whose routing reported events, so an acknowledged message survives a crash. Must not
    /// block a thread. The default is ready at once.
    fn wait_durable(&self, point: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let _ = point;
        Box::pin(std::future::ready(()))
    }
}

/// A store that keeps nothing: the default when no data directory is configured.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopStore;

impl Store for NoopStore {
    fn load_retained(&self) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(Vec::new())
    }
    fn load_sessions(&self) -> Result<Vec<LoadedSession>, StoreError> {
        Ok(Vec::new())
    }
    fn is_enabled(&self) -> bool {
        false
    }
    fn put_retained(&self, _message: &StoredMessage) {}
    fn remove_retained(&self, _topic: &str) {}
    fn put_session(&self, _record: &SessionRecord) {}
    fn remove_session(&self, _client_id: &str) {}
    fn queue_push(&self, _client_id: &str, _record: &QueuedRecord) {}
    fn queue_update(&self, _client_id: &str, _seq: u64, _state: QueuedState) {}
    fn queue_remove(&self, _client_id: &str, _seq: u64) {}
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Keeps every event in memory: the reference implementation of the contract, and what tests
/// share between two hubs to check that state survives a restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    retained: BTreeMap<String, StoredMessage>,
    sessions: HashMap<String, SessionRecord>,
    queues: HashMap<String, BTreeMap<u64, QueuedRecord>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl Store for MemoryStore {
    fn load_retained(&self) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(self.inner.lock().retained.values().cloned().collect())
    }

    fn load_sessions(&self) -> Result<Vec<LoadedSession>, StoreError> {
        let inner = self.inner.lock();
        Ok(inner
            .sessions
            .values()
            .map(|record| LoadedSession {
                record: record.clone(),
                queued: inner
                    .queues
                    .get(&record.client_id)
                    .map(|q| q.values().cloned().collect())
                    .unwrap_or_default(),
            })
            .collect())
    }

    fn put_retained(&self, message: &StoredMessage) {
        self.inner
            .lock()
            .retained
            .insert(message.topic.clone(), message.clone());
    }

    fn remove_retained(&self, topic: &str) {
        self.inner.lock().retained.remove(topic);
    }

    fn put_session(&self, record: &SessionRecord) {
        self.inner
            .lock()
            .sessions
            .insert(record.client_id.clone(), record.clone());
    }

    fn remove_session(&self, client_id: &str) {
        let mut inner = self.inner.lock();
        inner.sessions.remove(client_id);
        inner.queues.remove(client_id);
    }

    fn queue_push(&self, client_id: &str, record: &QueuedRecord) {
        self.inner
            .lock()
            .queues
            .entry(client_id.to_string())
            .or_default()
            .insert(record.seq, record.clone());
    }

    fn queue_update(&self, client_id: &str, seq: u64, state: QueuedState) {
        if let Some(r) = self
            .inner
            .lock()
            .queues
            .get_mut(client_id)
            .and_then(|q| q.get_mut(&seq))
        {
            r.state = state;
        }
    }

    fn queue_remove(&self, client_id: &str, seq: u64) {
        if let Some(q) = self.inner.lock().queues.get_mut(client_id) {
            q.remove(&seq);
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
