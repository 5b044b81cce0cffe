//! The codec's error type and its mapping onto MQTT 5 reason codes.
//!
//! Every way the decoder can refuse bytes is one variant here; the broker turns it into a CONNACK
//! (before the session exists) or a DISCONNECT (after) with [`ProtocolError::reason_code`], then
//! closes the connection. Owned by the codec; the broker only reads it.

use super::packet::reason;
use super::topic::TopicError;
use thiserror::Error;

/// Why bytes could not be decoded, or a packet could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The bytes break the grammar of the packet (MQTT 5 §1.2 "Malformed Packet").
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The bytes parse but break a rule of the protocol (MQTT 5 §1.2 "Protocol Error").
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// The whole packet (fixed header included) is larger than the limit; detected from the
    /// fixed header alone, before the body is buffered.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge { size: usize, max: usize },
    /// CONNECT with a protocol name/level pair this hub does not speak (§3.1.2.1, §3.1.2.2).
    #[error("unsupported protocol {name:?} level {level}")]
    UnsupportedProtocolVersion { name: String, level: u8 },
    /// The first packet on a connection was not CONNECT (§3.1: "MUST be CONNECT").
    #[error("first packet must be CONNECT, got packet type {0}")]
    FirstPacketNotConnect(u8),
    /// A client identifier the protocol version does not allow (3.1.1 §3.1.3.1: empty with
    /// clean session 0; 3.1: empty).
    #[error("client identifier not valid: {0}")]
    ClientIdNotValid(&'static str),
    /// A PUBLISH or will topic name holding a wildcard, or empty without a topic alias.
    #[error("invalid topic name: {0}")]
    InvalidTopicName(#[from] TopicError),
    /// `encode` was handed a packet the wire format cannot carry (string over 65,535 bytes,
    /// body over 268,435,455 bytes, AUTH for a 3.x client, packet id 0 on QoS > 0).
    #[error("cannot encode packet: {0}")]
    Encode(&'static str),
}

impl ProtocolError {
    /// The MQTT 5 reason code to put in the CONNACK or DISCONNECT that closes the connection.
    pub fn reason_code(&self) -> u8 {
        match self {
            ProtocolError::Malformed(_) => reason::MALFORMED_PACKET,
            ProtocolError::Protocol(_) | ProtocolError::FirstPacketNotConnect(_) => {
                reason::PROTOCOL_ERROR
            }
            ProtocolError::PacketTooLarge { .. } => reason::PACKET_TOO_LARGE,
            ProtocolError::UnsupportedProtocolVersion { .. } => {
                reason::UNSUPPORTED_PROTOCOL_VERSION
            }
            ProtocolError::ClientIdNotValid(_) => reason::CLIENT_IDENTIFIER_NOT_VALID,
            ProtocolError::InvalidTopicName(_) => reason::TOPIC_NAME_INVALID,
            ProtocolError::Encode(_) => reason::IMPLEMENTATION_SPECIFIC_ERROR,
        }
    }
}
