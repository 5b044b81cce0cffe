//! # protocol: bytes <-> MQTT packets (pure, no I/O)
//!
//! Owns the packet types ([`packet`]) and the topic rules ([`topic`]). Must not touch sockets,
//! broker state or configuration: every function here is a pure transformation, testable with
//! byte vectors. Start reading at [`packet`] for the values, then [`topic`] for names and filters.
pub mod packet;
pub mod topic;

pub use topic::{
    TopicError, TopicLimits, matches, parse_shared, validate_topic_filter, validate_topic_name,
};
