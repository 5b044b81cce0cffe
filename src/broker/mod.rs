//! # broker: MQTT semantics
//!
//! Owns sessions, subscriptions, retained messages, inflight state, hooks and the store trait.
//! Knows packets (`protocol`) but never LOT, never a listener or a socket type: transports hand
//! it any `AsyncRead + AsyncWrite` stream through [`Broker::serve_connection`].
//!
//! # Layout
//! | file | owns |
//! |---|---|
//! | `mod.rs` | [`Broker`], the cheap-clone handle, and its public API |
//! | [`settings`] | [`BrokerSettings`]: every limit, with defaults |
//! | [`hooks`] | [`Hooks`]: authentication, authorization, observers; [`AllowAll`] |
//! | [`store`] | [`Store`]: the persistence interface; [`NoopStore`], [`MemoryStore`] |
//! | [`session`] | one client id's state: subscriptions, queue, inflight |
//! | `registry` | client id -> session, attach / takeover / expiry, and the fan-out of a PUBLISH |
//! | `connection` | the life of one connection: CONNECT deadline, the read/write loop, the goodbye |
//! | `connect` | CONNECT -> CONNACK: client id, keep-alive, expiry, authentication, takeover |
//! | `inbound`, `outbound` | packets from the client; queued messages to the client |
//! | `will` | will messages, with MQTT 5 Will Delay Interval |
//! | `trie`, `retained`, `sys`, `ratelimit` | subscription tree, retained store, counters, rate limits |
//!
//! Start reading at [`Broker::serve_connection`], then `connection`.
//!
//! # Locks on the publish path
//! A PUBLISH takes one read lock (`registry`: the subscription tree and the session map together),
//! then each matching session's own mutex for the time of one queue push. There is no global
//! write lock on the publish path: writers are SUBSCRIBE, UNSUBSCRIBE, CONNECT and session end.
//! The payload is one `Bytes` and the message one `Arc<Message>` shared by every subscriber.

pub mod hooks;
pub mod ratelimit;
pub mod retained;
pub mod session;
pub mod settings;
pub mod store;
pub mod sys;
pub mod trie;

mod connect;
mod connection;
mod inbound;
mod outbound;
mod registry;
mod will;

pub use hooks::{AllowAll, AuthDecision, AuthRequest, ClientInfo, DisconnectReason, Hooks};
pub use settings::BrokerSettings;
pub use store::{MemoryStore, NoopStore, Store, StoreError};

use crate::protocol::packet::{Publish, QoS};
use crate::protocol::topic::{TopicError, TopicLimits, validate_topic_name};
use registry::Registry;
use retained::RetainedStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use sys::Stats;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a transport knows about a freshly accepted connection, handed to the broker together with
/// the byte stream. Every listener kind (tcp, tls, ws, wss) fills this in the same way, so the
/// connection code is written once.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The remote address of the socket.
    pub peer: SocketAddr,
    /// The listener's name for logs and metrics, e.g. `tcp:0.0.0.0:1883`.
    pub listener: Arc<str>,
    /// With mutual TLS and `use_identity_as_username`: the client certificate's CN, used as the
    /// user name (the CONNECT user name is then ignored).
    pub tls_identity: Option<String>,
    /// When the socket was accepted. The CONNECT deadline counts from here, so a TLS or
    /// WebSocket handshake spends from the same budget instead of restarting it (broker.md,
    /// Pitfalls: slow-loris).
    pub accepted_at: tokio::time::Instant,
}

/// Errors of the broker's own API (not of a client's connection: those end the connection).
#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("invalid topic: {0}")]
    InvalidTopic(#[from] TopicError),
    #[error("the hub is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The broker: a cheap-clone handle (one `Arc`) shared by every listener and connection task.
#[derive(Clone)]
pub struct Broker {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("connections", &self.connection_count())
            .finish_non_exhaustive()
    }
}

/// Everything the connections share.
pub(crate) struct Shared {
    pub settings: BrokerSettings,
    pub topic_limits: TopicLimits,
    pub hooks: Arc<dyn Hooks>,
    /// Read once from the hooks: skips `authorize_delivery` on the hot path when false.
    pub check_delivery: bool,
    pub store: Arc<dyn Store>,
    pub stats: Arc<Stats>,
    pub registry: Registry,
    /// A parking_lot RwLock: written by retained PUBLISHes, read by SUBSCRIBE; never held across
    /// an await.
    pub retained: parking_lot::RwLock<RetainedStore>,
    /// Cancelled once by [`Broker::shutdown`]: listeners stop, connections say goodbye.
    pub shutdown: CancellationToken,
    /// Counts connections and background tasks so shutdown can wait for them.
    pub tracker: TaskTracker,
    pub connections: AtomicUsize,
}

impl Broker {
    /// A broker with the given limits, hooks and store. Call [`Broker::load_from_store`] before
    /// accepting connections to get persisted state back.
    pub fn new(settings: BrokerSettings, hooks: Arc<dyn Hooks>, store: Arc<dyn Store>) -> Broker {
        let topic_limits = TopicLimits {
            max_len: settings.max_topic_length,
            max_levels: settings.max_topic_levels.min(trie::MAX_LEVELS),
        };
        let check_delivery = hooks.checks_delivery();
        let retained = RetainedStore::new(settings.max_retained);
        Broker {
            shared: Arc::new(Shared {
                settings,
                topic_limits,
                hooks,
                check_delivery,
                store,
                stats: Arc::new(Stats::new()),
                registry: Registry::default(),
                retained: parking_lot::RwLock::new(retained),
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
                connections: AtomicUsize::new(0),
            }),
        }
    }

    /// Runs one client connection to its end: CONNECT (within the deadline), then packets both
    /// ways until either side closes, the keep-alive expires, the client id is taken over or the
    /// hub shuts down. Transports call this in a task of their own per accepted stream.
    pub async fn serve_connection<S>(&self, stream: S, info: ConnectionInfo)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        connection::serve(self.clone(), stream, info).await;
    }

    /// Spawns [`Broker::serve_connection`] as a task that graceful shutdown waits for, and that
    /// releases its handle on the broker before shutdown sees it end (so that a stopped hub
    /// holds no reference to its hooks and store). Listeners should use this rather than
    /// `tokio::spawn`.
    pub fn spawn_connection<S>(&self, stream: S, info: ConnectionInfo)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let broker = self.clone();
        self.shared
            .tracker
            .spawn(async move { connection::serve(broker, stream, info).await });
    }

    /// Publishes a message from the hub itself (the `$SYS` task, the LOT runtime): authorization
    /// hooks are not asked, `on_publish` observes it. Returns the number of sessions it was
    /// queued for.
    pub fn publish(&self, publish: Publish) -> Result<usize, BrokerError> {
        if self.shared.shutdown.is_cancelled() {
            return Err(BrokerError::ShuttingDown);
        }
        validate_topic_name(&publish.topic, &self.shared.topic_limits)?;
        Ok(self.shared.accept_publish(publish, None))
    }

    /// Like [`Broker::publish`], but attributed to `origin`: `on_publish` observers see it as
    /// `PublishObservation::client` and it counts as that publisher for No Local. Authorization
    /// hooks are not asked (the caller is a hub component, e.g. an MQTT_BRIDGE route that
    /// publishes what its remote broker sent under a pseudo client identity, so that the route
    /// can recognise its own messages and never send them back out).
    pub fn publish_from(
        &self,
        publish: Publish,
        origin: &ClientInfo,
    ) -> Result<usize, BrokerError> {
        if self.shared.shutdown.is_cancelled() {
            return Err(BrokerError::ShuttingDown);
        }
        validate_topic_name(&publish.topic, &self.shared.topic_limits)?;
        Ok(self.shared.accept_publish(publish, Some(origin)))
    }

    /// Shorthand for [`Broker::publish`] without MQTT 5 properties.
    pub fn publish_simple(
        &self,
        topic: &str,
        payload: impl Into<bytes::Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<usize, BrokerError> {
        self.publish(Publish {
            dup: false,
            qos,
            retain,
            topic: Arc::from(topic),
            pkid: 0,
            payload: payload.into(),
            properties: Default::default(),
        })
    }

    /// The payload of the unexpired retained message on `topic`, if any. Lets the LOT runtime's
    /// `GET TOPIC` see retained values stored before its definitions were deployed (or loaded
    /// from the store at start).
    pub fn retained_payload(&self, topic: &str) -> Option<bytes::Bytes> {
        let now = tokio::time::Instant::now();
        let retained = self.shared.retained.read();
        retained
            .get(topic)
            .filter(|m| !m.is_expired(now))
            .map(|m| m.publish.payload.clone())
    }

    /// Loads retained messages and persistent sessions from the store. Call once, before any
    /// listener accepts a connection.
    pub fn load_from_store(&self) -> Result<(), BrokerError> {
        registry::load_from_store(&self.shared)?;
        Ok(())
    }

    /// The hub's counters, for the `$SYS` task and metrics.
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    pub fn settings(&self) -> &BrokerSettings {
        &self.shared.settings
    }

    /// Cancelled when shutdown starts; listeners select on it to stop accepting.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// Open client connections (any state, CONNECT pending included).
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Sessions known to the hub (connected and offline persistent ones).
    pub fn session_count(&self) -> usize {
        self.shared.registry.session_count()
    }

    /// Refreshes the gauges of [`Stats`] that are read from the broker's structures
    /// (subscriptions, retained count) and drops expired retained messages. The `$SYS` task calls
    /// it before rendering.
    pub fn refresh_stats(&self) {
        let now = tokio::time::Instant::now();
        let retained = {
            let mut r = self.shared.retained.write();
            r.purge_expired(now);
            r.len()
        };
        let stats = &self.shared.stats;
        stats.set_retained_count(retained as u64);
        stats.set_subscriptions_count(self.shared.registry.subscription_count() as u64);
    }

    /// Graceful shutdown: stops listeners and connections (MQTT 5 clients get DISCONNECT 0x8B,
    /// wills are published), waits up to `shutdown_grace` for them, then flushes the store.
    pub async fn shutdown(&self) -> Result<(), BrokerError> {
        self.shared.shutdown.cancel();
        self.shared.tracker.close();
        let grace = self.shared.settings.shutdown_grace;
        if tokio::time::timeout(grace, self.shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = self.shared.tracker.len(),
                "shutdown grace elapsed with tasks still running"
            );
        }
        self.shared.store.flush()?;
        Ok(())
    }
}
