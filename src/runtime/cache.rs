//! The delivery decision cache (lot-language.md §2.5): per (client, topic), whether a message on
//! that topic may be delivered to that client, valid for one rules-and-users epoch.
//!
//! Sharded (one small mutex per shard) so deliveries on different workers rarely meet. An entry
//! remembers who the client was (client id, user name, address) and the exact topic, so neither
//! a hash collision nor a client id taken over by another user returns someone else's decision.
//! Bounded: a full shard is emptied (decisions are cheap to recompute; the bound only stops a
//! client that walks millions of topics from growing memory). A lookup does not allocate; an
//! insert copies the topic once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::broker::ClientInfo;

const SHARDS: usize = 16;
/// Entries per shard before the shard starts over.
const SHARD_CAPACITY: usize = 4096;

struct Entry {
    epoch: u64,
    client_id: Arc<str>,
    username: Option<Arc<str>>,
    peer: SocketAddr,
    topic: Box<str>,
    allow: bool,
}

impl Entry {
    fn is_for(&self, client: &ClientInfo, topic: &str) -> bool {
        *self.topic == *topic
            && self.peer == client.peer
            && self.client_id == client.client_id
            && self.username == client.username
    }
}

pub(crate) struct DecisionCache {
    hasher: ahash::RandomState,
    shards: Vec<Mutex<HashMap<u64, Entry, ahash::RandomState>>>,
}

impl DecisionCache {
    pub(crate) fn new() -> DecisionCache {
        DecisionCache {
            hasher: ahash::RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
        }
    }

    fn slot(
        &self,
        client: &ClientInfo,
        topic: &str,
    ) -> (u64, &Mutex<HashMap<u64, Entry, ahash::RandomState>>) {
        let key = self.hasher.hash_one((&*client.client_id, topic));
        (key, &self.shards[(key as usize) % SHARDS])
    }

    /// The cached decision, if one of this `epoch` exists for this client and topic.
    pub(crate) fn get(&self, client: &ClientInfo, topic: &str, epoch: u64) -> Option<bool> {
        let (key, shard) = self.slot(client, topic);
        let shard = shard.lock();
        let e = shard.get(&key)?;
        (e.epoch == epoch && e.is_for(client, topic)).then_some(e.allow)
    }

    pub(crate) fn put(&self, client: &ClientInfo, topic: &str, epoch: u64, allow: bool) {
        let (key, shard) = self.slot(client, topic);
        let mut shard = shard.lock();
        if shard.len() >= SHARD_CAPACITY && !shard.contains_key(&key) {
            shard.clear();
        }
        shard.insert(
            key,
            Entry {
                epoch,
                client_id: client.client_id.clone(),
                username: client.username.clone(),
                peer: client.peer,
                topic: topic.into(),
                allow,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::packet::ProtocolVersion;

    fn client(id: &str, user: Option<&str>) -> ClientInfo {
        ClientInfo {
            client_id: Arc::from(id),
            username: user.map(Arc::from),
            peer: "127.0.0.1:5000".parse().unwrap(),
            listener: Arc::from("test"),
            protocol: ProtocolVersion::V3_1_1,
        }
    }

    #[test]
    fn hit_only_for_same_client_topic_and_epoch() {
        let c = DecisionCache::new();
        let a = client("a", Some("u"));
        c.put(&a, "t/1", 3, false);
        assert_eq!(c.get(&a, "t/1", 3), Some(false));
        assert_eq!(c.get(&a, "t/1", 4), None, "new epoch");
        assert_eq!(c.get(&a, "t/2", 3), None);
        assert_eq!(c.get(&client("a", Some("v")), "t/1", 3), None, "other user");
        assert_eq!(c.get(&client("b", Some("u")), "t/1", 3), None);
    }

    #[test]
    fn bounded() {
        let c = DecisionCache::new();
        let a = client("a", None);
        for i in 0..(SHARDS * SHARD_CAPACITY * 2) {
            c.put(&a, &format!("t/{i}"), 1, true);
        }
        let total: usize = c.shards.iter().map(|s| s.lock().len()).sum();
        assert!(total <= SHARDS * SHARD_CAPACITY);
    }
}
