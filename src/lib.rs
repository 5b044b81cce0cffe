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
//! | [`storage`] | the one redb file: configuration state, and the broker's store (group commit) | MQTT semantics, LOT parsing |
//! | [`transport`] | listeners and the byte streams (TCP today) fed to the broker's connection code | MQTT semantics |
//! | [`config`] | the TOML config: parsing, defaults, validation | everything else |
//! | [`cli`] | command-line parsing and the offline sub-commands | broker internals |
//! | [`app`] | wiring: config -> broker + listeners + shutdown | protocol details |
//!
//! Start reading at [`app`] for how the pieces are put together, and at
//! `broker::connection` for the life of one client.
#![forbid(unsafe_code)]

pub mod app;
pub mod broker;
pub mod cli;
pub mod config;
pub mod lot;
pub mod protocol;
pub mod storage;
pub mod transport;
