//! The MQTT control packets as plain Rust values, shared by every protocol version.
//!
//! One type per packet covers 3.1, 3.1.1 and 5.0: fields that exist only in MQTT 5 (properties,
//! reason codes on acknowledgements) are simply left at their defaults for older clients, and the
//! codec ignores them when it writes a 3.x packet. Reason codes are always stored as MQTT 5 values;
//! the codec maps them to the 3.x return codes (see [`reason`]).
//!
//! Topic names are `Arc<str>` because one incoming PUBLISH is cloned once per subscriber on the
//! hot path; payloads are [`Bytes`] for the same reason (no copy per subscriber).

use bytes::Bytes;
use std::sync::Arc;

/// The protocol level byte of CONNECT (MQTT 3.1.1 §3.1.2.2, MQTT 5 §3.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1, protocol name `MQIsdp`, level 3.
    V3_1,
    /// MQTT 3.1.1, protocol name `MQTT`, level 4.
    V3_1_1,
    /// MQTT 5.0, protocol name `MQTT`, level 5.
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte as written in CONNECT.
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V3_1 => 3,
            ProtocolVersion::V3_1_1 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    /// True for MQTT 5, the only version with properties and reason codes on every ack.
    pub fn is_v5(self) -> bool {
        self == ProtocolVersion::V5
    }
}

/// Quality of service of a message or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    /// Parses the two QoS bits; 3 is malformed (MQTT 5 §3.3.1.2).
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// MQTT 5 properties (§2.2.2.2). One struct serves every packet: the codec accepts on each packet
/// only the properties the spec allows there and rejects the rest as a protocol error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// 0x01, PUBLISH and will: 0 = bytes, 1 = UTF-8.
    pub payload_format_indicator: Option<u8>,
    /// 0x02, PUBLISH and will, in seconds.
    pub message_expiry_interval: Option<u32>,
    /// 0x03, PUBLISH and will.
    pub content_type: Option<String>,
    /// 0x08, PUBLISH and will.
    pub response_topic: Option<String>,
    /// 0x09, PUBLISH and will.
    pub correlation_data: Option<Bytes>,
    /// 0x0B: one on SUBSCRIBE; on an outgoing PUBLISH one per matching subscription.
    pub subscription_identifiers: Vec<u32>,
    /// 0x11, CONNECT, CONNACK, DISCONNECT.
    pub session_expiry_interval: Option<u32>,
    /// 0x12, CONNACK.
    pub assigned_client_identifier: Option<String>,
    /// 0x13, CONNACK.
    pub server_keep_alive: Option<u16>,
    /// 0x15, CONNECT, CONNACK, AUTH.
    pub authentication_method: Option<String>,
    /// 0x16, CONNECT, CONNACK, AUTH.
    pub authentication_data: Option<Bytes>,
    /// 0x17, CONNECT.
    pub request_problem_information: Option<u8>,
    /// 0x18, will properties.
    pub will_delay_interval: Option<u32>,
    /// 0x19, CONNECT.
    pub request_response_information: Option<u8>,
    /// 0x1A, CONNACK.
    pub response_information: Option<String>,
    /// 0x1C, CONNACK, DISCONNECT.
    pub server_reference: Option<String>,
    /// 0x1F, every ack, DISCONNECT, AUTH.
    pub reason_string: Option<String>,
    /// 0x21, CONNECT, CONNACK.
    pub receive_maximum: Option<u16>,
    /// 0x22, CONNECT, CONNACK.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23, PUBLISH.
    pub topic_alias: Option<u16>,
    /// 0x24, CONNACK.
    pub maximum_qos: Option<u8>,
    /// 0x25, CONNACK.
    pub retain_available: Option<u8>,
    /// 0x26, everywhere; order is kept and passed through unchanged.
    pub user_properties: Vec<(String, String)>,
    /// 0x27, CONNECT, CONNACK.
    pub maximum_packet_size: Option<u32>,
    /// 0x28, CONNACK.
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29, CONNACK.
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A, CONNACK.
    pub shared_subscription_available: Option<u8>,
}

impl Properties {
    /// True when no property is set (the common case for 3.x clients and plain publishes).
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}

/// The will message carried in CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub topic: Arc<str>,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// MQTT 5 will properties (will delay, expiry, content type, user properties...).
    pub properties: Properties,
}

/// CONNECT (§3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub protocol: ProtocolVersion,
    /// Clean Session (3.x) / Clean Start (5).
    pub clean_start: bool,
    /// Seconds; 0 turns keep-alive off.
    pub keep_alive: u16,
    /// May be empty: the broker assigns one (MQTT 5 returns it in CONNACK).
    pub client_id: String,
    pub will: Option<Will>,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    pub properties: Properties,
}

/// CONNACK (§3.2). `reason` is an MQTT 5 reason code; see [`reason::to_v3_connack`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnAck {
    pub session_present: bool,
    pub reason: u8,
    pub properties: Properties,
}

/// PUBLISH (§3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// May be empty on an incoming MQTT 5 PUBLISH that uses a topic alias; the broker resolves it.
    pub topic: Arc<str>,
    /// 0 for QoS 0.
    pub pkid: u16,
    pub payload: Bytes,
    pub properties: Properties,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share this shape (§3.4-§3.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PubAck {
    pub pkid: u16,
    /// MQTT 5 reason code; 0 = success. Not written for 3.x.
    pub reason: u8,
    pub properties: Properties,
}

impl PubAck {
    /// A successful acknowledgement with no properties.
    pub fn new(pkid: u16) -> PubAck {
        PubAck {
            pkid,
            reason: 0,
            properties: Properties::default(),
        }
    }
}

/// Subscription options byte (MQTT 5 §3.8.3.1); 3.x uses only `qos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscriptionOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 0 = send retained on subscribe, 1 = only if the subscription is new, 2 = never.
    pub retain_handling: u8,
}

/// One topic filter of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeFilter {
    pub filter: String,
    pub options: SubscriptionOptions,
}

/// SUBSCRIBE (§3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub pkid: u16,
    pub filters: Vec<SubscribeFilter>,
    pub properties: Properties,
}

/// SUBACK (§3.9). Return codes 0, 1, 2 and 0x80 mean the same in 3.1.1 and 5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    pub pkid: u16,
    pub reasons: Vec<u8>,
    pub properties: Properties,
}

/// UNSUBSCRIBE (§3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub pkid: u16,
    pub filters: Vec<String>,
    pub properties: Properties,
}

/// UNSUBACK (§3.11); 3.x carries no reason codes, so `reasons` is ignored there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    pub pkid: u16,
    pub reasons: Vec<u8>,
    pub properties: Properties,
}

/// DISCONNECT (§3.14); 3.x carries nothing, so `reason` and `properties` are ignored there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    pub reason: u8,
    pub properties: Properties,
}

/// AUTH (MQTT 5 only, §3.15).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    pub reason: u8,
    pub properties: Properties,
}

/// Every MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(PubAck),
    PubRec(PubAck),
    PubRel(PubAck),
    PubComp(PubAck),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Auth),
}

/// MQTT 5 reason codes (§2.4) and their mapping onto the 3.x CONNACK return codes.
pub mod reason {
    pub const SUCCESS: u8 = 0x00;
    pub const NORMAL_DISCONNECTION: u8 = 0x00;
    pub const GRANTED_QOS_1: u8 = 0x01;
    pub const GRANTED_QOS_2: u8 = 0x02;
    pub const DISCONNECT_WITH_WILL: u8 = 0x04;
    pub const NO_MATCHING_SUBSCRIBERS: u8 = 0x10;
    pub const NO_SUBSCRIPTION_EXISTED: u8 = 0x11;
    pub const CONTINUE_AUTHENTICATION: u8 = 0x18;
    pub const REAUTHENTICATE: u8 = 0x19;
    pub const UNSPECIFIED_ERROR: u8 = 0x80;
    pub const MALFORMED_PACKET: u8 = 0x81;
    pub const PROTOCOL_ERROR: u8 = 0x82;
    pub const IMPLEMENTATION_SPECIFIC_ERROR: u8 = 0x83;
    pub const UNSUPPORTED_PROTOCOL_VERSION: u8 = 0x84;
    pub const CLIENT_IDENTIFIER_NOT_VALID: u8 = 0x85;
    pub const BAD_USER_NAME_OR_PASSWORD: u8 = 0x86;
    pub const NOT_AUTHORIZED: u8 = 0x87;
    pub const SERVER_UNAVAILABLE: u8 = 0x88;
    pub const SERVER_BUSY: u8 = 0x89;
    pub const BANNED: u8 = 0x8A;
    pub const SERVER_SHUTTING_DOWN: u8 = 0x8B;
    pub const BAD_AUTHENTICATION_METHOD: u8 = 0x8C;
    pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
    pub const SESSION_TAKEN_OVER: u8 = 0x8E;
    pub const TOPIC_FILTER_INVALID: u8 = 0x8F;
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    pub const PACKET_IDENTIFIER_IN_USE: u8 = 0x91;
    pub const PACKET_IDENTIFIER_NOT_FOUND: u8 = 0x92;
    pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
    pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
    pub const PACKET_TOO_LARGE: u8 = 0x95;
    pub const MESSAGE_RATE_TOO_HIGH: u8 = 0x96;
    pub const QUOTA_EXCEEDED: u8 = 0x97;
    pub const ADMINISTRATIVE_ACTION: u8 = 0x98;
    pub const PAYLOAD_FORMAT_INVALID: u8 = 0x99;
    pub const RETAIN_NOT_SUPPORTED: u8 = 0x9A;
    pub const QOS_NOT_SUPPORTED: u8 = 0x9B;
    pub const USE_ANOTHER_SERVER: u8 = 0x9C;
    pub const SERVER_MOVED: u8 = 0x9D;
    pub const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0x9E;
    pub const CONNECTION_RATE_EXCEEDED: u8 = 0x9F;
    pub const MAXIMUM_CONNECT_TIME: u8 = 0xA0;
    pub const SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: u8 = 0xA1;
    pub const WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0xA2;

    /// MQTT 5 CONNACK reason -> MQTT 3.1.1 CONNACK return code (§3.2.2.3 of 3.1.1).
    pub fn to_v3_connack(reason: u8) -> u8 {
        match reason {
            SUCCESS => 0,
            UNSUPPORTED_PROTOCOL_VERSION => 1,
            CLIENT_IDENTIFIER_NOT_VALID => 2,
            BAD_USER_NAME_OR_PASSWORD | BAD_AUTHENTICATION_METHOD => 4,
            NOT_AUTHORIZED | BANNED => 5,
            _ => 3, // server unavailable: the closest 3.x meaning for every other refusal
        }
    }

    /// MQTT 3.1.1 CONNACK return code -> MQTT 5 reason (inverse of [`to_v3_connack`]).
    pub fn from_v3_connack(code: u8) -> u8 {
        match code {
            0 => SUCCESS,
            1 => UNSUPPORTED_PROTOCOL_VERSION,
            2 => CLIENT_IDENTIFIER_NOT_VALID,
            4 => BAD_USER_NAME_OR_PASSWORD,
            5 => NOT_AUTHORIZED,
            _ => SERVER_UNAVAILABLE,
        }
    }
}
