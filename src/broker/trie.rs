//! The subscription tree: which sessions want a PUBLISH on a given topic.
//!
//! Owns the mapping filter -> subscribers, organised as a tree with one node per topic level,
//! where `+` and `#` are ordinary child keys. Matching a topic walks only the branches that can
//! match (the exact level, `+`, `#`), so its cost grows with the number of *matching*
//! subscriptions and the topic depth, never with the number of subscriptions elsewhere in the
//! tree (broker.md, Pitfalls). It must not touch sessions, queues or sockets: it only answers
//! "who, with which options".
//!
//! Start reading at [`SubscriptionTree::matches_filtered`].
//!
//! # Overlapping subscriptions (MQTT 5 §3.3.4)
//! When several non-shared subscriptions of one client match a topic, [`SubscriptionTree::matches`]
//! returns a single [`Delivery`] for that client:
//! - `qos` is the highest granted QoS among them ("delivered once at the highest QoS");
//! - `subscription_ids` holds every identifier of the matching subscriptions (§3.3.4: a single
//!   copy MUST carry all of them);
//! - `no_local` is applied per subscription *before* merging: a no-local subscription of the
//!   publishing client is dropped (§3.8.3.1), while another overlapping subscription of the same
//!   client without no-local still delivers the message (and only its identifiers are sent);
//! - `retain_as_published` is the OR of the merged subscriptions: if any matching subscription asks
//!   to keep the RETAIN flag, the single copy keeps it.
//!
//! # Shared subscriptions (MQTT 5 §4.8.2)
//! `$share/<group>/<filter>` is stored at the node of `<filter>` under the group name. Each matching
//! (group, filter) pair yields exactly one extra [`Delivery`] (with `shared == true`), chosen
//! round-robin among the group's members by an atomic cursor so that matching needs only `&self`.
//! Shared deliveries are never merged with the client's non-shared ones: a client that is in a
//! group and also holds a normal subscription can receive two copies, as in Mosquitto.
//!
//! # Bounds
//! Filters deeper than [`MAX_LEVELS`] are refused by [`SubscriptionTree::subscribe`], so the tree
//! is never deeper than that and the recursive walks below are depth-bounded.

use crate::protocol::packet::{QoS, SubscriptionOptions};
use crate::protocol::topic::parse_shared;
use ahash::AHashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use thiserror::Error;

/// Identifies a subscriber: the client identifier, cheap to clone (one atomic increment).
pub type ClientKey = Arc<str>;

/// The deepest filter the tree accepts (broker.md: "Topic levels bounded (200)").
pub const MAX_LEVELS: usize = 200;

/// Why a filter could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TrieError {
    #[error("filter has more than {MAX_LEVELS} levels")]
    TooDeep,
    #[error("malformed shared subscription filter (expected $share/<group>/<filter>)")]
    BadShared,
}

/// Subscription identifiers of one delivery. Most deliveries carry none or one, so those cases
/// live inline and cost no allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SubscriptionIds {
    #[default]
    None,
    One(u32),
    Many(Vec<u32>),
}

impl SubscriptionIds {
    fn push(&mut self, id: u32) {
        *self = match std::mem::take(self) {
            SubscriptionIds::None => SubscriptionIds::One(id),
            SubscriptionIds::One(first) if first == id => SubscriptionIds::One(first),
            SubscriptionIds::One(first) => SubscriptionIds::Many(vec![first, id]),
            SubscriptionIds::Many(mut ids) => {
                if !ids.contains(&id) {
                    ids.push(id);
                }
                SubscriptionIds::Many(ids)
            }
        };
    }

    /// The identifiers as a slice, without duplicates, in no particular order.
    pub fn as_slice(&self) -> &[u32] {
        match self {
            SubscriptionIds::None => &[],
            SubscriptionIds::One(id) => std::slice::from_ref(id),
            SubscriptionIds::Many(ids) => ids,
        }
    }
}

/// One recipient of a PUBLISH, as produced by [`SubscriptionTree::matches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub client: ClientKey,
    /// The highest granted QoS among the merged subscriptions; the caller sends
    /// `min(message qos, qos)` (MQTT 5 §3.8.4).
    pub qos: QoS,
    /// Keep the RETAIN flag of the incoming PUBLISH (OR over the merged subscriptions).
    pub retain_as_published: bool,
    pub subscription_ids: SubscriptionIds,
    /// True for the one member chosen from a shared group.
    pub shared: bool,
}

/// What the tree stores per subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    options: SubscriptionOptions,
    sub_id: Option<u32>,
}

/// The members of one shared group at one filter.
#[derive(Debug, Default)]
struct SharedGroup {
    members: Vec<(ClientKey, Entry)>,
    /// Round-robin position; advanced by `matches` through `&self`.
    cursor: AtomicUsize,
}

#[derive(Debug, Default)]
struct Node {
    /// Child per level, `+` and `#` included as plain keys.
    children: AHashMap<Box<str>, Node>,
    /// Non-shared subscriptions whose filter ends at this node.
    subscribers: AHashMap<ClientKey, Entry>,
    /// Shared groups whose filter ends at this node, by group name.
    shared: AHashMap<Box<str>, SharedGroup>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subscribers.is_empty() && self.shared.is_empty()
    }
}

/// The subscription tree. Not synchronised: the broker wraps it in a lock (matching needs only
/// `&self`, so a read lock is enough on the publish path).
#[derive(Debug, Default)]
pub struct SubscriptionTree {
    root: Node,
    len: usize,
}

/// Splits a `$share/group/filter` filter; `Ok(None)` for a plain filter.
fn split_filter(filter: &str) -> Result<(Option<&str>, &str), TrieError> {
    if filter.starts_with("$share/") {
        let (group, inner) = parse_shared(filter).ok_or(TrieError::BadShared)?;
        return Ok((Some(group), inner));
    }
    Ok((None, filter))
}

fn check_depth(filter: &str) -> Result<(), TrieError> {
    if filter.split('/').nth(MAX_LEVELS).is_some() {
        return Err(TrieError::TooDeep);
    }
    Ok(())
}

impl SubscriptionTree {
    pub fn new() -> SubscriptionTree {
        SubscriptionTree::default()
    }

    /// Number of stored subscriptions (shared memberships included), for
    /// `$SYS/broker/subscriptions/count`.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds or replaces `client`'s subscription to `filter` (which may be `$share/g/f`).
    /// Returns `Ok(true)` if it is new, `Ok(false)` if it replaced the client's existing
    /// subscription to the same filter (MQTT 5 §3.8.4: the options are replaced, which also
    /// decides retain handling 1). The filter is assumed valid (see `protocol::topic`); only the
    /// depth bound and the shared-subscription shape are checked here.
    pub fn subscribe(
        &mut self,
        filter: &str,
        client: ClientKey,
        options: SubscriptionOptions,
        sub_id: Option<u32>,
    ) -> Result<bool, TrieError> {
        let (group, inner) = split_filter(filter)?;
        check_depth(inner)?;
        let entry = Entry { options, sub_id };
        let mut node = &mut self.root;
        for level in inner.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let is_new = match group {
            None => node.subscribers.insert(client, entry).is_none(),
            Some(group) => {
                let members = &mut node.shared.entry(group.into()).or_default().members;
                match members.iter_mut().find(|(c, _)| *c == client) {
                    Some(slot) => {
                        slot.1 = entry;
                        false
                    }
                    None => {
                        members.push((client, entry));
                        true
                    }
                }
            }
        };
        if is_new {
            self.len += 1;
        }
        Ok(is_new)
    }

    /// Removes `client`'s subscription to `filter`; true if it existed. Nodes left empty are
    /// removed so that a churn of distinct filters does not grow the tree.
    pub fn unsubscribe(&mut self, filter: &str, client: &str) -> bool {
        let Ok((group, inner)) = split_filter(filter) else {
            return false;
        };
        if check_depth(inner).is_err() {
            return false;
        }
        let mut levels = inner.split('/');
        let removed = remove(&mut self.root, &mut levels, group, client);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Every recipient of a PUBLISH on `topic`, appended to `out` (which the caller clears and
    /// reuses). Equivalent to [`matches_filtered`](Self::matches_filtered) with no publisher and
    /// every shared member available.
    pub fn matches(&self, topic: &str, out: &mut Vec<Delivery>) {
        self.matches_filtered(topic, None, &|_| true, out);
    }

    /// Every recipient of a PUBLISH on `topic` sent by `publisher` (used for no-local), appended
    /// to `out`: one merged entry per client (see the module docs), then one entry per matching
    /// shared group. `available` lets the caller steer shared delivery towards connected
    /// members: the round-robin skips members for which it returns false, and falls back to the
    /// cursor's member when none is available (its session queues the message).
    pub fn matches_filtered(
        &self,
        topic: &str,
        publisher: Option<&str>,
        available: &dyn Fn(&str) -> bool,
        out: &mut Vec<Delivery>,
    ) {
        let start = out.len();
        let mut walk = Walk {
            publisher,
            available,
            out,
        };
        // §4.7.2: a topic starting with `$` is not matched by a first-level wildcard.
        let dollar = topic.starts_with('$');
        walk.descend(&self.root, topic, dollar);
        merge_per_client(out, start);
    }
}

/// Removes one subscription along `levels`, pruning empty nodes on the way back up. Depth is
/// bounded by [`MAX_LEVELS`] (checked by the caller).
fn remove<'a>(
    node: &mut Node,
    levels: &mut impl Iterator<Item = &'a str>,
    group: Option<&str>,
    client: &str,
) -> bool {
    match levels.next() {
        Some(level) => {
            let Some(child) = node.children.get_mut(level) else {
                return false;
            };
            let removed = remove(child, levels, group, client);
            if removed && child.is_empty() {
                node.children.remove(level);
            }
            removed
        }
        None => match group {
            None => node.subscribers.remove(client).is_some(),
            Some(group) => {
                let Some(shared) = node.shared.get_mut(group) else {
                    return false;
                };
                let before = shared.members.len();
                shared.members.retain(|(c, _)| &**c != client);
                let removed = shared.members.len() != before;
                if shared.members.is_empty() {
                    node.shared.remove(group);
                }
                removed
            }
        },
    }
}

/// The state of one `matches` call.
struct Walk<'a, 'o> {
    publisher: Option<&'a str>,
    available: &'a dyn Fn(&str) -> bool,
    out: &'o mut Vec<Delivery>,
}

impl Walk<'_, '_> {
    /// Visits `node` with `rest` the unconsumed part of the topic. Recursion depth is bounded by
    /// the tree depth (at most [`MAX_LEVELS`] + 1), whatever the topic length. No allocation
    /// beyond pushes into `out`.
    fn descend(&mut self, node: &Node, rest: &str, first_level_dollar: bool) {
        let (level, tail) = match rest.split_once('/') {
            Some((level, tail)) => (level, Some(tail)),
            None => (rest, None),
        };
        if !first_level_dollar {
            // `#` matches this level and everything after it.
            if let Some(hash) = node.children.get("#") {
                self.collect(hash);
            }
            if let Some(plus) = node.children.get("+") {
                self.step(plus, tail);
            }
        }
        if let Some(exact) = node.children.get(level) {
            self.step(exact, tail);
        }
    }

    /// Arrived at `node` having consumed one level; `tail` is what remains of the topic.
    fn step(&mut self, node: &Node, tail: Option<&str>) {
        match tail {
            Some(tail) => self.descend(node, tail, false),
            None => {
                self.collect(node);
                // `sport/#` also matches `sport` (§4.7.1.2).
                if let Some(hash) = node.children.get("#") {
                    self.collect(hash);
                }
            }
        }
    }

    /// Appends the subscribers stored at a matching node.
    fn collect(&mut self, node: &Node) {
        for (client, entry) in &node.subscribers {
            if entry.options.no_local && self.publisher == Some(&**client) {
                continue;
            }
            self.out.push(Delivery {
                client: client.clone(),
                qos: entry.options.qos,
                retain_as_published: entry.options.retain_as_published,
                subscription_ids: entry
                    .sub_id
                    .map_or(SubscriptionIds::None, SubscriptionIds::One),
                shared: false,
            });
        }
        for group in node.shared.values() {
            if let Some((client, entry)) = self.pick(group) {
                self.out.push(Delivery {
                    client: client.clone(),
                    qos: entry.options.qos,
                    retain_as_published: entry.options.retain_as_published,
                    subscription_ids: entry
                        .sub_id
                        .map_or(SubscriptionIds::None, SubscriptionIds::One),
                    shared: true,
                });
            }
        }
    }

    /// Round-robin choice of one group member, preferring available ones.
    fn pick<'g>(&self, group: &'g SharedGroup) -> Option<&'g (ClientKey, Entry)> {
        let n = group.members.len();
        if n == 0 {
            return None;
        }
        let start = group.cursor.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            let candidate = &group.members[(start + i) % n];
            if (self.available)(&candidate.0) {
                if i > 0 {
                    // Continue after the member actually chosen, keeping the rotation fair.
                    group.cursor.fetch_add(i, Ordering::Relaxed);
                }
                return Some(candidate);
            }
        }
        group.members.get(start % n)
    }
}

/// Merges the non-shared deliveries in `out[start..]` so that each client appears once.
/// `sort_unstable_by` does not allocate, so the publish path stays allocation-free as long as
/// `out` has capacity; the sort costs O(n log n) in the number of matching subscriptions.
fn merge_per_client(out: &mut Vec<Delivery>, start: usize) {
    let slice = &mut out[start..];
    if slice.len() < 2 {
        return;
    }
    // Shared deliveries last, then group by client id so duplicates become adjacent.
    slice.sort_unstable_by(|a, b| {
        a.shared
            .cmp(&b.shared)
            .then_with(|| a.client.cmp(&b.client))
    });
    let mut write = start;
    for read in start..out.len() {
        let mergeable = write > start
            && !out[read].shared
            && !out[write - 1].shared
            && out[write - 1].client == out[read].client;
        if mergeable {
            let incoming =
                std::mem::replace(&mut out[read].subscription_ids, SubscriptionIds::None);
            let (qos, rap) = (out[read].qos, out[read].retain_as_published);
            let kept = &mut out[write - 1];
            kept.qos = kept.qos.max(qos);
            kept.retain_as_published |= rap;
            for &id in incoming.as_slice() {
                kept.subscription_ids.push(id);
            }
        } else {
            out.swap(write, read);
            write += 1;
        }
    }
    out.truncate(write);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(qos: u8) -> SubscriptionOptions {
        SubscriptionOptions {
            qos: QoS::from_u8(qos).unwrap(),
            ..SubscriptionOptions::default()
        }
    }

    fn key(s: &str) -> ClientKey {
        Arc::from(s)
    }

    fn sub(tree: &mut SubscriptionTree, filter: &str, client: &str) {
        tree.subscribe(filter, key(client), opts(0), None).unwrap();
    }

    /// Sorted client ids receiving `topic`.
    fn who(tree: &SubscriptionTree, topic: &str) -> Vec<String> {
        let mut out = Vec::new();
        tree.matches(topic, &mut out);
        let mut ids: Vec<String> = out.iter().map(|d| d.client.to_string()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn matching_table() {
        // (filter, topic, expected match)
        let table = [
            ("a/b/c", "a/b/c", true),
            ("a/b/c", "a/b", false),
            ("a/b", "a/b/c", false),
            ("a/+/c", "a/x/c", true),
            ("a/+/c", "a/x/y/c", false),
            ("a/+", "a/", true),
            ("+", "a", true),
            ("+", "a/b", false),
            ("+/+", "/a", true),
            ("/+", "/a", true),
            ("#", "a/b/c", true),
            ("#", "/", true),
            ("a/#", "a", true),
            ("sport/#", "sport", true),
            ("sport/#", "sport/tennis/player1", true),
            ("sport/#", "sports", false),
            ("sport/+/#", "sport/x", true),
            ("sport/+/#", "sport", false),
            ("+/#", "a", true),
            ("A/b", "a/b", false),
            ("#", "$SYS/broker/uptime", false),
            ("+/broker/uptime", "$SYS/broker/uptime", false),
            ("+/#", "$SYS", false),
            ("$SYS/#", "$SYS/broker/uptime", true),
            ("$SYS/+/uptime", "$SYS/broker/uptime", true),
            ("$SYS/broker/uptime", "$SYS/broker/uptime", true),
            ("a/$x/#", "a/$x/y", true),
            ("+/$x", "a/$x", true),
        ];
        for (filter, topic, expected) in table {
            let mut tree = SubscriptionTree::new();
            sub(&mut tree, filter, "c");
            let got = !who(&tree, topic).is_empty();
            assert_eq!(got, expected, "filter {filter:?} topic {topic:?}");
            // The trie must agree with the reference matcher in protocol::topic.
            assert_eq!(
                got,
                crate::protocol::topic::matches(filter, topic),
                "{filter} {topic}"
            );
        }
    }

    #[test]
    fn many_subscribers_only_matching_ones_returned() {
        let mut tree = SubscriptionTree::new();
        for i in 0..1000 {
            sub(&mut tree, &format!("dev/{i}/temp"), &format!("c{i}"));
        }
        sub(&mut tree, "dev/+/temp", "all");
        assert_eq!(tree.len(), 1001);
        assert_eq!(who(&tree, "dev/42/temp"), vec!["all", "c42"]);
        assert_eq!(who(&tree, "dev/42/hum"), Vec::<String>::new());
    }

    #[test]
    fn resubscribe_replaces_and_reports_not_new() {
        let mut tree = SubscriptionTree::new();
        assert_eq!(tree.subscribe("a/b", key("c"), opts(0), None), Ok(true));
        assert_eq!(tree.subscribe("a/b", key("c"), opts(2), Some(9)), Ok(false));
        assert_eq!(tree.len(), 1);
        let mut out = Vec::new();
        tree.matches("a/b", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].qos, QoS::ExactlyOnce);
        assert_eq!(out[0].subscription_ids.as_slice(), &[9]);
    }

    #[test]
    fn overlapping_subscriptions_merge_into_one_delivery() {
        let mut tree = SubscriptionTree::new();
        let rap = SubscriptionOptions {
            retain_as_published: true,
            ..opts(0)
        };
        tree.subscribe("a/+", key("c"), rap, Some(1)).unwrap();
        tree.subscribe("a/#", key("c"), opts(2), Some(2)).unwrap();
        tree.subscribe("a/b", key("c"), opts(1), None).unwrap();
        tree.subscribe("a/b", key("d"), opts(1), Some(7)).unwrap();
        let mut out = Vec::new();
        tree.matches("a/b", &mut out);
        assert_eq!(out.len(), 2);
        let c = out.iter().find(|d| &*d.client == "c").unwrap();
        assert_eq!(c.qos, QoS::ExactlyOnce);
        assert!(c.retain_as_published);
        let mut ids = c.subscription_ids.as_slice().to_vec();
        ids.sort();
        assert_eq!(ids, vec![1, 2]);
        let d = out.iter().find(|d| &*d.client == "d").unwrap();
        assert_eq!(d.subscription_ids.as_slice(), &[7]);
        assert!(!d.retain_as_published);
    }

    #[test]
    fn no_local_is_per_subscription() {
        let mut tree = SubscriptionTree::new();
        let nl = SubscriptionOptions {
            no_local: true,
            ..opts(1)
        };
        tree.subscribe("t/#", key("me"), nl, Some(1)).unwrap();
        tree.subscribe("t/x", key("other"), nl, None).unwrap();
        let mut out = Vec::new();
        tree.matches_filtered("t/x", Some("me"), &|_| true, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(&*out[0].client, "other");
        // An overlapping subscription without no-local still delivers, with its id only.
        tree.subscribe("t/+", key("me"), opts(0), Some(2)).unwrap();
        out.clear();
        tree.matches_filtered("t/x", Some("me"), &|_| true, &mut out);
        let me = out.iter().find(|d| &*d.client == "me").unwrap();
        assert_eq!(me.subscription_ids.as_slice(), &[2]);
        assert_eq!(me.qos, QoS::AtMostOnce);
    }

    #[test]
    fn shared_group_round_robin_and_normal_subscription() {
        let mut tree = SubscriptionTree::new();
        for c in ["a", "b", "c"] {
            sub(&mut tree, "$share/g/jobs/+", c);
        }
        sub(&mut tree, "$share/h/jobs/#", "z");
        sub(&mut tree, "jobs/1", "a");
        let mut counts = AHashMap::new();
        let mut out = Vec::new();
        for _ in 0..30 {
            out.clear();
            tree.matches("jobs/1", &mut out);
            // One normal copy for a, one from group g, one from group h.
            assert_eq!(out.len(), 3);
            assert_eq!(out.iter().filter(|d| !d.shared).count(), 1);
            for d in out.iter().filter(|d| d.shared && &*d.client != "z") {
                *counts.entry(d.client.to_string()).or_insert(0) += 1;
            }
        }
        assert_eq!(counts.len(), 3);
        assert!(counts.values().all(|&n| n == 10), "{counts:?}");
    }

    #[test]
    fn shared_group_prefers_available_members() {
        let mut tree = SubscriptionTree::new();
        for c in ["a", "b", "c"] {
            sub(&mut tree, "$share/g/t", c);
        }
        let mut out = Vec::new();
        for _ in 0..6 {
            tree.matches_filtered("t", None, &|c| c != "b", &mut out);
        }
        assert_eq!(out.len(), 6);
        assert!(out.iter().all(|d| &*d.client != "b"));
        // Nobody available: still delivered to someone (its session queues it).
        out.clear();
        tree.matches_filtered("t", None, &|_| false, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn unsubscribe_prunes_empty_nodes() {
        let mut tree = SubscriptionTree::new();
        sub(&mut tree, "a/b/c/d", "x");
        sub(&mut tree, "a/+/#", "y");
        sub(&mut tree, "$share/g/a/b", "x");
        assert_eq!(tree.len(), 3);
        assert!(!tree.unsubscribe("a/b/c/d", "y"));
        assert!(!tree.unsubscribe("a/b/c", "x"));
        assert!(tree.unsubscribe("a/b/c/d", "x"));
        assert!(tree.unsubscribe("a/+/#", "y"));
        assert!(!tree.unsubscribe("$share/other/a/b", "x"));
        assert!(tree.unsubscribe("$share/g/a/b", "x"));
        assert_eq!(tree.len(), 0);
        assert!(tree.root.is_empty(), "{:?}", tree.root);
        assert!(who(&tree, "a/b/c/d").is_empty());
    }

    #[test]
    fn depth_bound_and_bad_shared_are_refused() {
        let mut tree = SubscriptionTree::new();
        let deep = vec!["x"; MAX_LEVELS + 1].join("/");
        assert_eq!(
            tree.subscribe(&deep, key("c"), opts(0), None),
            Err(TrieError::TooDeep)
        );
        let ok = vec!["x"; MAX_LEVELS].join("/");
        assert_eq!(tree.subscribe(&ok, key("c"), opts(0), None), Ok(true));
        assert_eq!(who(&tree, &ok), vec!["c"]);
        // A topic far deeper than the tree is simply not matched, without deep recursion.
        let very_deep = vec!["x"; 100_000].join("/");
        assert!(who(&tree, &very_deep).is_empty());
        assert_eq!(
            tree.subscribe("$share//t", key("c"), opts(0), None),
            Err(TrieError::BadShared)
        );
    }

    #[test]
    fn out_vector_is_appended_not_cleared() {
        let mut tree = SubscriptionTree::new();
        sub(&mut tree, "t", "a");
        sub(&mut tree, "t", "b");
        let mut out = Vec::with_capacity(8);
        tree.matches("t", &mut out);
        tree.matches("t", &mut out);
        // The second call merges only its own range, so earlier entries stay intact.
        assert_eq!(out.len(), 4);
    }
}
