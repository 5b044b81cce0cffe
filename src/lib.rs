//! # lothub
//!
//! A programmable IoT hub: a complete MQTT 3.1 / 3.1.1 / 5.0 broker paired with a runtime for
//! LOT (Language of Things).
//!
//! # Layout
//! Dependencies point one way: leaves first, wiring last.
//!
//! | module | owns | must not touch |
//! |---|---|---|
//! | [`protocol`] | bytes <-> MQTT packets, topic names and filters (pure, no I/O) | sockets, broker state |
//! | [`lot`] | LOT text -> checked definitions, and their evaluation (pure) | broker, sockets, files |
//! | [`broker`] | MQTT semantics: sessions, subscriptions, retained, inflight, hooks, store trait | LOT |
//! | [`auth`] | password hashing (argon2id), verification cache, root bootstrap | storage, rules, broker |
//! | [`runtime`] | LOT in the running hub: deployed state, users, rules as authorization (broker hooks), `$SYS/Coreflux` topics | command parsing, redb, packets |
//! | [`storage`] | the one redb file: configuration state, and the broker's store (group commit) | MQTT semantics, LOT parsing |
//! | [`transport`] | listeners (TCP, TLS, WebSocket) and the byte streams they feed to the broker's connection code | MQTT semantics |
//! | [`config`] | the TOML config: parsing, defaults, validation | everything else |
//! | [`ipnet`] | IP address ranges for allow/deny lists, shared by config and broker (pure) | everything else |
//! | [`command`] | `$SYS/Coreflux/Command`: command text -> verb -> runtime call -> JSON reply | storage, broker internals |
//! | [`metrics`] | the optional Prometheus endpoint: `/metrics` over a tiny HTTP/1.1 server | broker internals (reads public stats only) |
//! | [`cli`] | command-line parsing and the offline sub-commands | broker internals |
//! | [`app`] | wiring: config -> broker + listeners + shutdown | protocol details |
//!
//! Start reading at [`app`] for how the pieces are put together, and at
//! `broker::connection` for the life of one client.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod broker;
pub mod cli;
pub mod command;
pub mod config;
pub mod ipnet;
pub mod lot;
pub mod metrics;
pub mod protocol;
pub mod runtime;
pub mod storage;
pub mod transport;
