//! The session registry: client id -> [`Session`], the subscription tree, and the fan-out of one
//! PUBLISH to the sessions that want it.
//!
//! Tree and session map sit behind one `parking_lot::RwLock` so that routing a PUBLISH takes a
//! single read lock: match the topic, look every recipient up, push into its queue (each push
//! under that session's own mutex), release. Writers (attach, detach, subscribe, unsubscribe)
//! are per-connection events, not per-message ones. Lock order is always registry, then session;
//! never the other way round.
//!
//! Must not touch sockets. Start reading at [`Shared::accept_publish`] and [`Registry::attach`].

use super::Shared;
use super::session::{Message, Outgoing, QueueLimits, Session, SessionSub};
use super::store::{LoadedSession, SessionRecord, StoreError, StoredSubscription};
use super::trie::{Delivery, SubscriptionIds, SubscriptionTree, TrieError};
use crate::broker::hooks::{ClientInfo, PublishObservation};
use crate::broker::session::Enqueued;
use crate::protocol::packet::{Publish, SubscriptionOptions};
use ahash::AHashMap;
use parking_lot::RwLock;
use std::sync::Arc;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<Delivery>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[derive(Default)]
struct Inner {
    tree: SubscriptionTree,
    sessions: AHashMap<Arc<str>, Arc<Session>>,
}

/// Client id -> session, plus the subscription tree. See the module docs for the locking.
#[derive(Default)]
pub struct Registry {
    inner: RwLock<Inner>,
}

/// The result of [`Registry::attach`].
pub struct Attached {
    pub session: Arc<Session>,
    pub generation: u64,
    /// MQTT §3.2.2.1.1: an existing session was resumed.
    pub session_present: bool,
    /// The session was offline before (for the `clients/disconnected` gauge).
    pub was_offline: bool,
}

impl Registry {
    pub fn session_count(&self) -> usize {
        self.inner.read().sessions.len()
    }

    pub fn subscription_count(&self) -> usize {
        self.inner.read().tree.len()
    }

    /// Attaches a new connection to the session of `client_id` (MQTT 5 §3.1.2.4, §3.1.4): with
    /// `clean_start` any existing session is discarded; otherwise it is resumed. A connection
    /// still attached to it is kicked (takeover; it sends DISCONNECT 0x8E itself).
    pub fn attach(
        &self,
        shared: &Shared,
        client_id: Arc<str>,
        clean_start: bool,
        expiry_secs: u32,
        kick: CancellationToken,
    ) -> Attached {
        let mut inner = self.inner.write();
        let existing = inner.sessions.get(&client_id).cloned();
        if let Some(session) = existing {
            let mut st = session.state.lock();
            if let Some(old) = st.kick.take() {
                old.cancel();
            }
            let was_offline = !st.connected;
            if let Some(timer) = st.expiry_timer.take() {
                timer.abort();
            }
            st.generation += 1;
            if !clean_start {
                st.connected = true;
                st.kick = Some(kick);
                st.expiry_secs = expiry_secs;
                session.set_online(true);
                let generation = st.generation;
                drop(st);
                drop(inner);
                persist_session(shared, &session);
                return Attached {
                    session,
                    generation,
                    session_present: true,
                    was_offline,
                };
            }
            // Clean start: the old session ends here; its subscriptions leave the tree.
            st.connected = false;
            session.set_online(false);
            let filters: Vec<String> = st.subscriptions.keys().cloned().collect();
            st.subscriptions.clear();
            st.clear_messages();
            drop(st);
            for filter in filters {
                inner.tree.unsubscribe(&filter, &client_id);
            }
            inner.sessions.remove(&client_id);
            if shared.store.is_enabled() {
                shared.store.remove_session(&client_id);
            }
            let attached = insert_new(&mut inner, client_id, expiry_secs, kick);
            drop(inner);
            persist_session(shared, &attached.session);
            return Attached {
                was_offline,
                ..attached
            };
        }
        let attached = insert_new(&mut inner, client_id, expiry_secs, kick);
        drop(inner);
        persist_session(shared, &attached.session);
        attached
    }

    /// Detaches the connection of `generation` from `session`. Returns true when the session is
    /// kept offline (persistent), false when it ended or another connection owns it now.
    pub fn detach(&self, shared: &Arc<Shared>, session: &Arc<Session>, generation: u64) -> bool {
        let expiry = {
            let mut st = session.state.lock();
            if st.generation != generation {
                return false;
            }
            st.connected = false;
            st.kick = None;
            session.set_online(false);
            st.expiry_secs
        };
        if expiry == 0 {
            self.remove_if_current(shared, session);
            return false;
        }
        persist_session(shared, session);
        spawn_expiry(shared, session.clone(), generation, expiry);
        true
    }

    /// Ends `session` if it is still the registered one for its client id.
    fn remove_if_current(&self, shared: &Shared, session: &Arc<Session>) {
        let mut inner = self.inner.write();
        let current = inner
            .sessions
            .get(&session.client_id)
            .is_some_and(|s| Arc::ptr_eq(s, session));
        if !current {
            return;
        }
        inner.sessions.remove(&session.client_id);
        let mut st = session.state.lock();
        let persistent = st.is_persistent();
        for filter in st.subscriptions.keys() {
            inner.tree.unsubscribe(filter, &session.client_id);
        }
        st.subscriptions.clear();
        st.clear_messages();
        drop(st);
        drop(inner);
        if persistent && shared.store.is_enabled() {
            shared.store.remove_session(&session.client_id);
        }
    }

    /// Adds (or replaces) a subscription. Returns whether it is new (retain handling 1).
    pub fn subscribe(
        &self,
        shared: &Shared,
        session: &Arc<Session>,
        filter: &str,
        options: SubscriptionOptions,
        sub_id: Option<u32>,
    ) -> Result<bool, TrieError> {
        let mut inner = self.inner.write();
        let is_new = inner
            .tree
            .subscribe(filter, session.client_id.clone(), options, sub_id)?;
        session
            .state
            .lock()
            .subscriptions
            .insert(filter.to_string(), SessionSub { options, sub_id });
        drop(inner);
        persist_session(shared, session);
        Ok(is_new)
    }

    /// Removes a subscription; true if it existed.
    pub fn unsubscribe(&self, shared: &Shared, session: &Arc<Session>, filter: &str) -> bool {
        let mut inner = self.inner.write();
        let existed = inner.tree.unsubscribe(filter, &session.client_id);
        session.state.lock().subscriptions.remove(filter);
        drop(inner);
        persist_session(shared, session);
        existed
    }

    /// Queues `msg` for every matching session (one merged copy per client, one per shared
    /// group). Returns how many sessions it was offered to.
    fn route(&self, shared: &Shared, msg: &Arc<Message>) -> usize {
        let limits = QueueLimits {
            max_messages: shared.settings.max_queued_messages,
            max_bytes: shared.settings.max_queued_bytes,
        };
        // A per-thread scratch vector: no allocation per PUBLISH once it has grown. A nested
        // call (none today) would simply find it empty and allocate.
        let mut deliveries = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        let inner = self.inner.read();
        let available = |client: &str| inner.sessions.get(client).is_some_and(|s| s.is_online());
        inner.tree.matches_filtered(
            &msg.topic,
            msg.publisher.as_deref(),
            &available,
            &mut deliveries,
        );
        let mut dropped = 0;
        for d in &deliveries {
            let Some(session) = inner.sessions.get(&d.client) else {
                continue;
            };
            let out = Outgoing {
                msg: msg.clone(),
                qos: msg.qos.min(d.qos),
                // §3.3.1.3: forwarded with RETAIN 0 unless retain-as-published.
                retain: msg.retain && d.retain_as_published,
                sub_ids: d.subscription_ids.clone(),
                seq: 0,
            };
            if session.enqueue(out, limits, shared.store.as_ref()) != Enqueued::Queued {
                dropped += 1;
            }
        }
        drop(inner);
        if dropped > 0 {
            shared.stats.publish_dropped(dropped);
        }
        let recipients = deliveries.len();
        deliveries.clear();
        SCRATCH.with(|s| *s.borrow_mut() = deliveries);
        recipients
    }
}

fn insert_new(
    inner: &mut Inner,
    client_id: Arc<str>,
    expiry_secs: u32,
    kick: CancellationToken,
) -> Attached {
    let session = Session::new(client_id.clone(), expiry_secs);
    let generation = {
        let mut st = session.state.lock();
        st.generation = 1;
        st.connected = true;
        st.kick = Some(kick);
        session.set_online(true);
        st.generation
    };
    inner.sessions.insert(client_id, session.clone());
    Attached {
        session,
        generation,
        session_present: false,
        was_offline: false,
    }
}

/// Reports the session record to the store when the session is persistent.
fn persist_session(shared: &Shared, session: &Session) {
    if !shared.store.is_enabled() {
        return;
    }
    let st = session.state.lock();
    if !st.is_persistent() {
        return;
    }
    let record = SessionRecord {
        client_id: session.client_id.to_string(),
        expiry_secs: st.expiry_secs,
        subscriptions: st
            .subscriptions
            .iter()
            .map(|(filter, s)| StoredSubscription {
                filter: filter.clone(),
                options: s.options,
                subscription_id: s.sub_id,
            })
            .collect(),
    };
    drop(st);
    shared.store.put_session(&record);
}

impl Shared {
    /// The common path of every accepted PUBLISH (from a client after its checks, a will, or the
    /// hub's API): observe, update the retained store, route. Returns the number of recipients.
    pub(crate) fn accept_publish(&self, publish: Publish, client: Option<&ClientInfo>) -> usize {
        let now = Instant::now();
        self.hooks.on_publish(&PublishObservation {
            client,
            topic: &publish.topic,
            payload: &publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: &publish.properties,
        });
        if publish.retain {
            self.set_retained(&publish, now);
        }
        let mut properties = publish.properties;
        let expires_at = properties
            .message_expiry_interval
            .take()
            .map(|secs| now + Duration::from_secs(u64::from(secs)));
        properties.topic_alias = None;
        properties.subscription_identifiers.clear();
        let msg = Arc::new(Message {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties,
            expires_at,
            publisher: client.map(|c| c.client_id.clone()),
        });
        self.registry.route(self, &msg)
    }

    /// §3.3.1.3: store (or, with an empty payload, clear) the retained message of a topic.
    fn set_retained(&self, publish: &Publish, now: Instant) {
        use super::retained::SetOutcome;
        // Copy the payload: it is a slice of a connection's read buffer, which a retained
        // message would otherwise keep alive for as long as it is retained.
        let mut stored = publish.clone();
        stored.payload = bytes::Bytes::copy_from_slice(&publish.payload);
        stored.dup = false;
        stored.pkid = 0;
        stored.properties.topic_alias = None;
        stored.properties.subscription_identifiers.clear();
        let outcome = self.retained.write().set(stored.clone(), now);
        if !self.store.is_enabled() {
            return;
        }
        match outcome {
            SetOutcome::Stored | SetOutcome::Replaced => {
                let msg = Message {
                    topic: stored.topic.clone(),
                    payload: stored.payload.clone(),
                    qos: stored.qos,
                    retain: true,
                    expires_at: stored
                        .properties
                        .message_expiry_interval
                        .map(|s| now + Duration::from_secs(u64::from(s))),
                    properties: stored.properties,
                    publisher: None,
                };
                self.store.put_retained(&msg.to_stored(now));
            }
            SetOutcome::Cleared => self.store.remove_retained(&publish.topic),
            _ => {}
        }
    }
}

/// Converts an absolute Unix expiry time into a tokio instant (`None` if already expired is
/// handled by the caller through `is_expired`).
fn unix_to_instant(unix: u64, now: Instant) -> Instant {
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    now + Duration::from_secs(unix.saturating_sub(now_unix))
}

/// Reads retained messages and persistent sessions back from the store (before listening).
pub(crate) fn load_from_store(shared: &Arc<Shared>) -> Result<(), StoreError> {
    let now = Instant::now();
    for m in shared.store.load_retained()? {
        let mut properties = m.properties;
        properties.message_expiry_interval = m.expires_at_unix.map(|unix| {
            let left = unix_to_instant(unix, now).saturating_duration_since(now);
            u32::try_from(left.as_secs()).unwrap_or(u32::MAX)
        });
        if properties.message_expiry_interval == Some(0) {
            continue;
        }
        let publish = Publish {
            dup: false,
            qos: m.qos,
            retain: true,
            topic: Arc::from(m.topic.as_str()),
            pkid: 0,
            payload: m.payload,
            properties,
        };
        shared.retained.write().set(publish, now);
    }
    let sessions = shared.store.load_sessions()?;
    let offline = sessions.len() as u64;
    for loaded in sessions {
        restore_session(shared, loaded, now);
    }
    shared.stats.set_offline_sessions(offline);
    Ok(())
}

fn restore_session(shared: &Arc<Shared>, loaded: LoadedSession, now: Instant) {
    let LoadedSession { record, queued } = loaded;
    let client_id: Arc<str> = Arc::from(record.client_id.as_str());
    let session = Session::new(client_id.clone(), record.expiry_secs);
    {
        let mut inner = shared.registry.inner.write();
        for sub in &record.subscriptions {
            if inner
                .tree
                .subscribe(
                    &sub.filter,
                    client_id.clone(),
                    sub.options,
                    sub.subscription_id,
                )
                .is_ok()
            {
                session.state.lock().subscriptions.insert(
                    sub.filter.clone(),
                    SessionSub {
                        options: sub.options,
                        sub_id: sub.subscription_id,
                    },
                );
            }
        }
        inner.sessions.insert(client_id.clone(), session.clone());
    }
    for q in queued {
        let expires_at = q.message.expires_at_unix.map(|u| unix_to_instant(u, now));
        let msg = Arc::new(Message {
            topic: Arc::from(q.message.topic.as_str()),
            payload: q.message.payload,
            qos: q.message.qos,
            retain: q.message.retain,
            properties: q.message.properties,
            expires_at,
            publisher: None,
        });
        let sub_ids = match q.subscription_ids.as_slice() {
            [] => SubscriptionIds::None,
            [one] => SubscriptionIds::One(*one),
            many => SubscriptionIds::Many(many.to_vec()),
        };
        let out = Outgoing {
            msg,
            qos: q.qos,
            retain: q.retain,
            sub_ids,
            seq: q.seq,
        };
        session.restore(out, q.state);
    }
    // A restored session is offline: give it its expiry timer as if it had just disconnected.
    let generation = session.state.lock().generation;
    spawn_expiry(shared, session, generation, record.expiry_secs);
}

/// Ends `session` after `expiry_secs` unless a connection attached to it meanwhile (MQTT 5
/// §3.1.2.11.2). `u32::MAX` never expires; shutdown cancels the timer.
fn spawn_expiry(shared: &Arc<Shared>, session: Arc<Session>, generation: u64, expiry_secs: u32) {
    if expiry_secs == u32::MAX {
        return;
    }
    let shared2 = shared.clone();
    let shutdown = shared.shutdown.clone();
    let timer_session = session.clone();
    let handle = shared.tracker.spawn(async move {
        let session = timer_session;
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(u64::from(expiry_secs))) => {
                let expired = {
                    let st = session.state.lock();
                    st.generation == generation && !st.connected
                };
                if expired {
                    shared2.registry.remove_if_current(&shared2, &session);
                    shared2.stats.offline_session_gone();
                }
            }
        }
    });
    // A reconnect aborts the timer (see `attach`), so reconnect churn leaves no sleeping tasks.
    session.state.lock().expiry_timer = Some(handle.abort_handle());
}
