//! # broker: MQTT semantics (placeholder until the broker-core issue lands)
//!
//! Owns sessions, subscriptions, retained messages, inflight state, hooks and the store trait.
//! Knows packets (`protocol`) but never LOT.

pub mod ratelimit;
pub mod retained;
pub mod sys;
pub mod trie;

use std::net::SocketAddr;
use std::sync::Arc;

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
}
