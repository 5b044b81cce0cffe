//! [`Hooks`]: the points where authentication, authorization and observers plug into the broker.
//!
//! The broker calls these and never the other way round: the LOT runtime, the user database and
//! the ACLs implement [`Hooks`] in their own modules. [`AllowAll`] is the default and costs
//! nothing on the hot path: every method is an empty default, and per-delivery checks are skipped
//! entirely unless [`Hooks::checks_delivery`] says otherwise (the broker reads that flag once).
//!
//! Threading: `authenticate` is called on tokio's blocking pool (`spawn_blocking`) because a real
//! implementation hashes passwords; every other method is called inline on the async workers and
//! must return quickly (no I/O, no blocking locks held for long).
//!
//! Re-entrancy: `on_publish`, `on_connect`, `on_disconnect`, `authorize_publish` and
//! `authorize_subscribe` run with no broker lock held, so they may call
//! [`Broker::publish`](super::Broker::publish). `authorize_delivery` runs while the recipient's
//! session is locked: it must not publish (that could deadlock on the same session).

use crate::protocol::packet::{Properties, ProtocolVersion, QoS};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;

/// Who a connected client is. Cheap to clone (`Arc` fields).
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub client_id: Arc<str>,
    /// The CONNECT user name, or the TLS identity when the listener uses it as the user name.
    pub username: Option<Arc<str>>,
    pub peer: SocketAddr,
    /// Listener name, e.g. `tcp:0.0.0.0:1883`.
    pub listener: Arc<str>,
    pub protocol: ProtocolVersion,
}

/// What `authenticate` gets: the client (its id is the one the broker will use, possibly
/// assigned) and the credentials from CONNECT.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub client: ClientInfo,
    pub username: Option<String>,
    pub password: Option<Bytes>,
}

/// Outcome of authentication, mapped onto CONNACK: `BadCredentials` -> 0x86 (3.x: 4),
/// `NotAuthorized` -> 0x87 (3.x: 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthDecision {
    Allow,
    BadCredentials,
    NotAuthorized,
}

/// Why a client's connection ended, for `on_disconnect` and the connect/disconnect log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client sent DISCONNECT with reason 0x00 (no will).
    Normal,
    /// The client sent DISCONNECT 0x04 (disconnect with will message).
    NormalWithWill,
    /// The socket closed or failed without DISCONNECT.
    ConnectionLost,
    /// 1.5 x keep-alive passed with no packet (0x8D).
    KeepAliveTimeout,
    /// Another connection took the client id (0x8E).
    TakenOver,
    /// The hub is shutting down (0x8B).
    ServerShutdown,
    /// The client broke the protocol; the MQTT 5 reason code sent (or that would have been sent).
    ProtocolViolation(u8),
}

/// One accepted PUBLISH, shown to [`Hooks::on_publish`] after authorization and before routing.
/// Borrowed: observers copy what they keep (the payload is a cheap `Bytes` clone).
#[derive(Debug)]
pub struct PublishObservation<'a> {
    /// `None` for messages published by the hub itself (wills are attributed to their client).
    pub client: Option<&'a ClientInfo>,
    pub topic: &'a str,
    pub payload: &'a Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub properties: &'a Properties,
}

/// The broker's extension points. Every method has an allow-all / do-nothing default, so an
/// implementation overrides only what it needs.
pub trait Hooks: Send + Sync + 'static {
    /// Checks CONNECT credentials. Runs on the blocking pool.
    fn authenticate(&self, _request: &AuthRequest) -> AuthDecision {
        AuthDecision::Allow
    }

    /// May `client` publish to `topic`? Denied: MQTT 5 PUBACK/PUBREC 0x87, MQTT 3.x the message
    /// is dropped silently (still acknowledged, as 3.1.1 has no negative ack).
    fn authorize_publish(&self, _client: &ClientInfo, _topic: &str) -> bool {
        true
    }

    /// May `client` subscribe to `filter`? Denied: SUBACK 0x87 (MQTT 5) / 0x80 (3.x).
    fn authorize_subscribe(&self, _client: &ClientInfo, _filter: &str) -> bool {
        true
    }

    /// Whether [`Hooks::authorize_delivery`] must be called for every message sent to a client.
    /// Read once when the broker is built; `false` (the default) skips the call on the hot path.
    fn checks_delivery(&self) -> bool {
        false
    }

    /// May `topic` be delivered to `client` right now? Lets rule changes apply to live
    /// subscriptions and retained messages. Only called when `checks_delivery()` is true.
    fn authorize_delivery(&self, _client: &ClientInfo, _topic: &str) -> bool {
        true
    }

    /// Observes every accepted PUBLISH (after authorization), including wills and messages
    /// published through the broker API.
    fn on_publish(&self, _observation: &PublishObservation<'_>) {}

    /// A client completed CONNECT (after CONNACK success is queued).
    fn on_connect(&self, _client: &ClientInfo) {}

    /// A connected client's connection ended.
    fn on_disconnect(&self, _client: &ClientInfo, _reason: DisconnectReason) {}
}

/// The default hooks: everyone may connect, publish, subscribe and receive.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Hooks for AllowAll {}
