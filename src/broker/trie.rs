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
            contributing_nodes: 0,
        };
        // §4.7.2: a topic starting with `$` is not matched by a first-level wildcard.
        let dollar = topic.starts_with('$');
        walk.descend(&self.root, topic, dollar);
        if walk.contributing_nodes > 1 {
            merge_per_client(out, start);
        }
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
    /// Matching nodes that held non-shared subscribers. With at most one, no client can appear
    /// twice (a node keys its subscribers by client), so the merge step is skipped: the common
    /// case of a topic matched by one filter costs no sort.
    contributing_nodes: usize,
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
        if !node.subscribers.is_empty() {
            self.contributing_nodes += 1;
        }
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
#[path = "trie_tests.rs"]
mod tests;
