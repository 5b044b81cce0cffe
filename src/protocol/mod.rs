//! # protocol: bytes <-> MQTT packets (pure, no I/O)
//!
//! Owns the packet types ([`packet`]), the codec for MQTT 3.1, 3.1.1 and 5.0 ([`decode()`],
//! [`encode()`], [`encoded_len`]) and the topic rules ([`topic`]). Must not touch sockets,
//! broker state or configuration: every function here is a pure transformation, testable with
//! byte vectors.
//!
//! Start reading at [`packet`] for the values, then `decode.rs` (bytes -> packet), `encode.rs`
//! (packet -> bytes); `wire.rs` and `properties.rs` hold the field-level pieces both share.
mod decode;
mod encode;
mod error;
pub mod packet;
mod properties;
pub mod topic;
mod wire;

pub use decode::decode;
pub use encode::{encode, encoded_len};
pub use error::ProtocolError;
pub use properties::MAX_USER_PROPERTIES;
pub use topic::{
    TopicError, TopicLimits, matches, parse_shared, validate_topic_filter, validate_topic_name,
};

#[cfg(test)]
mod test_malformed;
#[cfg(test)]
mod test_proptest;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod test_vectors_v3;
#[cfg(test)]
mod test_vectors_v5;
