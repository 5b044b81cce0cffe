//! # transport: listeners and the byte streams they hand to the broker
//!
//! Owns sockets, TLS and WebSocket framing; must not touch MQTT semantics. Every listener kind
//! ends in [`Broker::serve_connection`](crate::broker::Broker::serve_connection) with an
//! `AsyncRead + AsyncWrite` stream and a [`ConnectionInfo`](crate::broker::ConnectionInfo).
//! Start reading at [`tcp`] (plain TCP), then [`accept`] (kinds with a handshake).

pub mod accept;
pub mod identity;
pub mod reload;
pub mod tcp;
pub mod tls;
pub mod ws;
