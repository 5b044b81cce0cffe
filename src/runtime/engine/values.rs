//! [`LastValues`]: the hub's last payload per topic, as `GET TOPIC` and model `TOPIC` sources
//! read it (spec §3, §5: "the last value the hub saw on that topic (published, retained or kept)").
//!
//! Only topics that some deployed definition can read are recorded (the engine asks
//! [`super::program::Program::readable`] before calling [`LastValues::record`]), so a hub whose
//! LOT reads three topics keeps three payloads, not one per topic ever published. A `GET TOPIC`
//! whose topic is built at run time makes every topic readable; then at most [`MAX_TOPICS`]
//! distinct topics are kept (later new topics are not recorded, and counted).
//!
//! KEEP TOPIC values are stored here and, durably, in storage (`keep_topic`); [`LastValues::load`]
//! brings them back at start. Must not touch: the broker, the trigger index.

use std::sync::atomic::{AtomicU64, Ordering};

use ahash::AHashMap;
use bytes::Bytes;
use parking_lot::RwLock;

use crate::storage::{Storage, StorageError};

/// The most distinct topics kept in memory.
pub(crate) const MAX_TOPICS: usize = 100_000;

#[derive(Debug, Default)]
pub(crate) struct LastValues {
    map: RwLock<AHashMap<Box<str>, Bytes>>,
    /// New topics not recorded because [`MAX_TOPICS`] was reached.
    refused: AtomicU64,
}

impl LastValues {
    /// Loads the KEEP TOPIC values persisted in `storage`.
    pub fn load(&self, storage: &Storage) -> Result<usize, StorageError> {
        let kept = storage.kept_topics()?;
        let n = kept.len();
        let mut map = self.map.write();
        for (topic, payload) in kept {
            map.insert(topic.into_boxed_str(), Bytes::from(payload));
        }
        Ok(n)
    }

    pub fn get(&self, topic: &str) -> Option<Bytes> {
        self.map.read().get(topic).cloned()
    }

    /// Records the payload just seen on `topic`. The payload is copied: a connection's payload
    /// is a slice of its read buffer, which keeping it would hold alive.
    pub fn record(&self, topic: &str, payload: &Bytes) {
        let copy = Bytes::copy_from_slice(payload);
        let mut map = self.map.write();
        if let Some(v) = map.get_mut(topic) {
            *v = copy;
        } else if map.len() < MAX_TOPICS {
            map.insert(topic.into(), copy);
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// KEEP TOPIC: stored in memory at once, then durably (the caller runs off the async
    /// workers, as storage commits with an fsync).
    pub fn keep(&self, storage: &Storage, topic: &str, payload: Bytes) -> Result<(), StorageError> {
        self.map.write().insert(topic.into(), payload.clone());
        storage.keep_topic(topic, &payload)
    }

    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// New topics refused because the store was full.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_survives_a_reload() {
        let storage = Storage::in_memory().unwrap();
        let v = LastValues::default();
        v.record("a", &Bytes::from_static(b"1"));
        v.record("a", &Bytes::from_static(b"2"));
        assert_eq!(v.get("a").as_deref(), Some(&b"2"[..]));
        v.keep(&storage, "k", Bytes::from_static(b"kept")).unwrap();
        let again = LastValues::default();
        assert_eq!(again.load(&storage).unwrap(), 1);
        assert_eq!(again.get("k").as_deref(), Some(&b"kept"[..]));
        assert_eq!(again.get("a"), None);
        assert_eq!(again.len(), 1);
        assert_eq!(again.refused(), 0);
    }
}
