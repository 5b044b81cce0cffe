//! # protocol: bytes <-> MQTT packets (pure, no I/O)
pub mod packet;
