//! Retained messages (MQTT 5 §3.3.1.3): the last retained PUBLISH of each topic.
//!
//! Owns an in-memory tree keyed by topic level, so that a new subscription's filter is matched by
//! walking the tree (only the branches the filter can reach) rather than by scanning every
//! retained message (broker.md, Pitfalls: "a wildcard subscribe over many retained messages must
//! not stall the hub"). It must not touch sessions, sockets or storage: the broker persists what
//! it stores here through its store trait and reloads it with [`RetainedStore::set`].
//!
//! Start reading at [`RetainedStore::set`] and [`RetainedStore::matching`].
//!
//! Times are `tokio::time::Instant` (the runtime clock the broker uses) and are passed in by the
//! caller, so tests drive expiry by passing later instants.

use crate::broker::trie::MAX_LEVELS;
use crate::protocol::packet::Publish;
use ahash::AHashMap;
use std::sync::Arc;
use tokio::time::{Duration, Instant};

/// One retained message and when it was stored, which the broker needs to forward the remaining
/// Message Expiry Interval (MQTT 5 §3.3.2.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedMessage {
    pub publish: Publish,
    pub stored_at: Instant,
}

impl RetainedMessage {
    /// True when the message carried a Message Expiry Interval that has elapsed.
    pub fn is_expired(&self, now: Instant) -> bool {
        match self.publish.properties.message_expiry_interval {
            Some(secs) => now.saturating_duration_since(self.stored_at) >= secs_to_duration(secs),
            None => false,
        }
    }

    /// The expiry interval to forward: the received value minus the whole seconds the message has
    /// waited (§3.3.2.3.3). `None` when the message has no expiry; at least 1 while not expired.
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        let secs = self.publish.properties.message_expiry_interval?;
        let waited = now.saturating_duration_since(self.stored_at).as_secs();
        let waited = u32::try_from(waited).unwrap_or(u32::MAX);
        Some(secs.saturating_sub(waited).max(1))
    }
}

fn secs_to_duration(secs: u32) -> Duration {
    Duration::from_secs(u64::from(secs))
}

/// What [`RetainedStore::set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    /// A new topic now holds a retained message.
    Stored,
    /// The topic's previous retained message was replaced.
    Replaced,
    /// An empty payload removed the topic's retained message (§3.3.1.3).
    Cleared,
    /// An empty payload on a topic that had nothing retained.
    NothingToClear,
    /// A new topic beyond the `max_retained` bound (or deeper than the level bound): not stored.
    Refused,
}

#[derive(Debug, Default)]
struct Node {
    children: AHashMap<Box<str>, Node>,
    message: Option<Arc<RetainedMessage>>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.message.is_none()
    }
}

/// The retained messages of the hub. Not synchronised: the broker wraps it in a lock.
#[derive(Debug)]
pub struct RetainedStore {
    root: Node,
    count: usize,
    max: usize,
    refused: u64,
}

impl RetainedStore {
    /// A store that holds at most `max_retained` topics.
    pub fn new(max_retained: usize) -> RetainedStore {
        RetainedStore {
            root: Node::default(),
            count: 0,
            max: max_retained,
            refused: 0,
        }
    }

    /// Number of retained topics, for `$SYS/broker/messages/retained/count`.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many new topics were refused because the store was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Changes the bound; existing messages above a lowered bound are kept (only new topics are
    /// refused).
    pub fn set_max(&mut self, max_retained: usize) {
        self.max = max_retained;
    }

    /// Stores `publish` as the retained message of its topic, or clears the topic when the payload
    /// is empty (§3.3.1.3). The topic must be a resolved, valid topic name (no alias, no
    /// wildcard). Replacing an existing topic is always allowed; a new topic beyond the bound is
    /// refused and counted.
    pub fn set(&mut self, publish: Publish, now: Instant) -> SetOutcome {
        let topic = publish.topic.clone();
        if topic.split('/').nth(MAX_LEVELS).is_some() {
            self.refused += 1;
            return SetOutcome::Refused;
        }
        if publish.payload.is_empty() {
            let mut levels = topic.split('/');
            if clear(&mut self.root, &mut levels) {
                self.count -= 1;
                return SetOutcome::Cleared;
            }
            return SetOutcome::NothingToClear;
        }
        if self.count >= self.max && self.get(&topic).is_none() {
            self.refused += 1;
            return SetOutcome::Refused;
        }
        let mut node = &mut self.root;
        for level in topic.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let message = Arc::new(RetainedMessage {
            publish,
            stored_at: now,
        });
        match node.message.replace(message) {
            Some(_) => SetOutcome::Replaced,
            None => {
                self.count += 1;
                SetOutcome::Stored
            }
        }
    }

    /// The retained message of exactly `topic`, expired or not.
    pub fn get(&self, topic: &str) -> Option<&Arc<RetainedMessage>> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.message.as_ref()
    }

    /// The unexpired retained messages whose topic matches `filter` (a plain filter: the caller
    /// strips `$share/<group>/`, and sends no retained messages to a shared subscription, MQTT 5
    /// §4.8.2), at most `limit` of them. Walks the tree iteratively: only the branches the filter
    /// can reach, plus the whole subtree under a `#`.
    pub fn matching(&self, filter: &str, limit: usize, now: Instant) -> Vec<Arc<RetainedMessage>> {
        let mut found = Vec::new();
        let levels: Vec<&str> = filter.split('/').collect();
        // (node, index of the next filter level to match)
        let mut stack: Vec<(&Node, usize)> = vec![(&self.root, 0)];
        while let Some((node, depth)) = stack.pop() {
            if found.len() >= limit {
                break;
            }
            let at_root = depth == 0;
            match levels.get(depth).copied() {
                None => push_live(&mut found, node, now),
                Some("#") => {
                    // `sport/#` also matches `sport` itself (§4.7.1.2).
                    if !at_root {
                        push_live(&mut found, node, now);
                    }
                    collect_subtree(node, at_root, limit, now, &mut found);
                }
                Some("+") => {
                    for (name, child) in &node.children {
                        // §4.7.2: first-level wildcards never match `$` topics.
                        if !(at_root && name.starts_with('$')) {
                            stack.push((child, depth + 1));
                        }
                    }
                }
                Some(level) => {
                    if let Some(child) = node.children.get(level) {
                        stack.push((child, depth + 1));
                    }
                }
            }
        }
        found.truncate(limit);
        found
    }

    /// Removes every expired message; returns how many were removed. Walks the whole tree, so the
    /// broker calls it periodically, not per publish.
    pub fn purge_expired(&mut self, now: Instant) -> usize {
        let mut expired = Vec::new();
        self.for_each(|m| {
            if m.is_expired(now) {
                expired.push(m.publish.topic.clone());
            }
        });
        for topic in &expired {
            let mut levels = topic.split('/');
            if clear(&mut self.root, &mut levels) {
                self.count -= 1;
            }
        }
        expired.len()
    }

    /// Calls `f` on every stored message (e.g. to persist or inspect them all).
    pub fn for_each(&self, mut f: impl FnMut(&Arc<RetainedMessage>)) {
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            if let Some(m) = &node.message {
                f(m);
            }
            stack.extend(node.children.values());
        }
    }
}

fn push_live(found: &mut Vec<Arc<RetainedMessage>>, node: &Node, now: Instant) {
    if let Some(m) = node.message.as_ref().filter(|m| !m.is_expired(now)) {
        found.push(m.clone());
    }
}

/// Every live message strictly below `node`, iteratively, up to `limit` in `found`.
fn collect_subtree(
    node: &Node,
    skip_dollar: bool,
    limit: usize,
    now: Instant,
    found: &mut Vec<Arc<RetainedMessage>>,
) {
    let mut stack: Vec<&Node> = node
        .children
        .iter()
        .filter(|(name, _)| !(skip_dollar && name.starts_with('$')))
        .map(|(_, child)| child)
        .collect();
    while let Some(n) = stack.pop() {
        if found.len() >= limit {
            return;
        }
        push_live(found, n, now);
        stack.extend(n.children.values());
    }
}

/// Removes the message at the end of `levels` and prunes empty nodes; true if one was removed.
/// Recursion depth is bounded by the topic's level count, checked against [`MAX_LEVELS`] by the
/// callers.
fn clear<'a>(node: &mut Node, levels: &mut impl Iterator<Item = &'a str>) -> bool {
    match levels.next() {
        None => node.message.take().is_some(),
        Some(level) => {
            let Some(child) = node.children.get_mut(level) else {
                return false;
            };
            let removed = clear(child, levels);
            if removed && child.is_empty() {
                node.children.remove(level);
            }
            removed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::packet::{Properties, QoS};
    use bytes::Bytes;

    fn publish(topic: &str, payload: &str) -> Publish {
        Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: Arc::from(topic),
            pkid: 0,
            payload: Bytes::copy_from_slice(payload.as_bytes()),
            properties: Properties::default(),
        }
    }

    fn topics(store: &RetainedStore, filter: &str, now: Instant) -> Vec<String> {
        let mut t: Vec<String> = store
            .matching(filter, usize::MAX, now)
            .iter()
            .map(|m| m.publish.topic.to_string())
            .collect();
        t.sort();
        t
    }

    fn sample(now: Instant) -> RetainedStore {
        let mut s = RetainedStore::new(100);
        for t in [
            "sport",
            "sport/tennis",
            "sport/tennis/p1",
            "sport/golf",
            "news",
            "/lead",
            "$SYS/broker/uptime",
        ] {
            assert_eq!(s.set(publish(t, t), now), SetOutcome::Stored);
        }
        s
    }

    #[test]
    fn matching_table() {
        let now = Instant::now();
        let s = sample(now);
        let table: &[(&str, &[&str])] = &[
            ("sport", &["sport"]),
            (
                "sport/#",
                &["sport", "sport/golf", "sport/tennis", "sport/tennis/p1"],
            ),
            ("sport/+", &["sport/golf", "sport/tennis"]),
            ("sport/+/p1", &["sport/tennis/p1"]),
            ("+", &["news", "sport"]),
            ("+/lead", &["/lead"]),
            (
                "#",
                &[
                    "/lead",
                    "news",
                    "sport",
                    "sport/golf",
                    "sport/tennis",
                    "sport/tennis/p1",
                ],
            ),
            ("$SYS/#", &["$SYS/broker/uptime"]),
            ("+/broker/uptime", &[]),
            ("nothing/#", &[]),
        ];
        for (filter, expected) in table {
            assert_eq!(topics(&s, filter, now), *expected, "filter {filter}");
        }
        assert_eq!(s.len(), 7);
    }

    #[test]
    fn empty_payload_clears_and_prunes() {
        let now = Instant::now();
        let mut s = sample(now);
        assert_eq!(
            s.set(publish("sport/tennis/p1", ""), now),
            SetOutcome::Cleared
        );
        assert_eq!(
            s.set(publish("sport/tennis/p1", ""), now),
            SetOutcome::NothingToClear
        );
        assert_eq!(
            s.set(publish("sport/tennis", "x"), now),
            SetOutcome::Replaced
        );
        assert_eq!(
            s.get("sport/tennis").unwrap().publish.payload,
            Bytes::from("x")
        );
        assert_eq!(s.len(), 6);
        for t in ["sport", "sport/tennis", "sport/golf", "news", "/lead"] {
            assert_eq!(s.set(publish(t, ""), now), SetOutcome::Cleared, "{t}");
        }
        assert_eq!(
            s.set(publish("$SYS/broker/uptime", ""), now),
            SetOutcome::Cleared
        );
        assert!(s.is_empty());
        assert!(s.root.is_empty(), "{:?}", s.root);
    }

    #[test]
    fn bound_refuses_new_topics_only() {
        let now = Instant::now();
        let mut s = RetainedStore::new(2);
        assert_eq!(s.set(publish("a", "1"), now), SetOutcome::Stored);
        assert_eq!(s.set(publish("b", "1"), now), SetOutcome::Stored);
        assert_eq!(s.set(publish("c", "1"), now), SetOutcome::Refused);
        assert_eq!(s.set(publish("a", "2"), now), SetOutcome::Replaced);
        assert_eq!(s.refused(), 1);
        assert_eq!(s.set(publish("a", ""), now), SetOutcome::Cleared);
        assert_eq!(s.set(publish("c", "1"), now), SetOutcome::Stored);
        assert_eq!(s.len(), 2);
        let deep = vec!["x"; MAX_LEVELS + 1].join("/");
        assert_eq!(s.set(publish(&deep, ""), now), SetOutcome::Refused);
    }

    #[test]
    fn limit_bounds_the_result() {
        let now = Instant::now();
        let mut s = RetainedStore::new(10_000);
        for i in 0..1000 {
            s.set(publish(&format!("d/{i}"), "v"), now);
        }
        assert_eq!(s.matching("d/#", 10, now).len(), 10);
        assert_eq!(s.matching("d/+", 1000, now).len(), 1000);
        assert_eq!(s.matching("#", 0, now).len(), 0);
    }

    #[test]
    fn expiry_hides_and_purges() {
        let t0 = Instant::now();
        let mut s = RetainedStore::new(10);
        let mut p = publish("e", "v");
        p.properties.message_expiry_interval = Some(10);
        s.set(p, t0);
        s.set(publish("keep", "v"), t0);
        let m = s.get("e").unwrap().clone();
        assert_eq!(m.remaining_expiry(t0), Some(10));
        assert_eq!(
            m.remaining_expiry(t0 + Duration::from_millis(3500)),
            Some(7)
        );
        assert!(!m.is_expired(t0 + Duration::from_millis(9999)));
        assert!(m.is_expired(t0 + Duration::from_secs(10)));
        assert_eq!(s.get("keep").unwrap().remaining_expiry(t0), None);
        let later = t0 + Duration::from_secs(11);
        assert_eq!(topics(&s, "#", t0), vec!["e", "keep"]);
        assert_eq!(topics(&s, "#", later), vec!["keep"]);
        assert_eq!(s.purge_expired(later), 1);
        assert_eq!(s.len(), 1);
        assert!(s.get("e").is_none());
    }

    #[test]
    fn for_each_visits_all() {
        let now = Instant::now();
        let s = sample(now);
        let mut n = 0;
        s.for_each(|_| n += 1);
        assert_eq!(n, s.len());
    }
}
