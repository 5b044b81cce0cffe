//! [`BrokerSettings`]: every limit and knob of the broker core, as one plain struct with defaults.
//!
//! The config module (`config`) maps the TOML file onto this struct; the broker never reads the
//! config itself. Every field has a sane default (see [`BrokerSettings::default`]) taken from
//! `shared/spec/broker.md` ("Limits and protection") or, where the spec is silent, from Mosquitto.

use std::time::Duration;

/// Limits and behaviour switches of the broker core. Cheap to clone; read-only once the broker
/// is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSettings {
    /// Largest packet accepted from a client, in bytes (whole packet). Announced to MQTT 5 clients
    /// as Maximum Packet Size in CONNACK. Default 1 MiB.
    pub max_packet_size: usize,
    /// A socket that sends no complete CONNECT within this time is closed. Default 10 s.
    pub connect_timeout: Duration,
    /// Largest CONNECT accepted before authentication (the pre-auth cap, see broker.md
    /// "Pitfalls"). Default 64 KiB.
    pub max_connect_packet_size: usize,
    /// Concurrent connections across every listener; further sockets are closed at once.
    /// Default 100 000.
    pub max_connections: usize,
    /// Receive Maximum announced to MQTT 5 clients (how many QoS 1/2 PUBLISHes a client may have
    /// unacknowledged towards us); also the bound on QoS 2 ids waiting for PUBREL for every
    /// version. A client exceeding it is disconnected with 0x93. Default 1024.
    pub receive_maximum: u16,
    /// Outgoing QoS 1/2 messages in flight per client (further limited by the client's own
    /// Receive Maximum). Default 100.
    pub max_inflight: u16,
    /// Messages waiting per session (online or offline) before the oldest QoS 0 message (or, when
    /// there is none, the new message) is dropped. Default 10 000.
    pub max_queued_messages: usize,
    /// Payload bytes waiting per session, same drop policy. Default 64 MiB.
    pub max_queued_bytes: usize,
    /// Retained messages kept across all topics; a new retained topic beyond this is not stored
    /// (the message is still delivered). Default 1 000 000.
    pub max_retained: usize,
    /// Longest topic name or filter in bytes. Default 65 535 (the MQTT maximum).
    pub max_topic_length: usize,
    /// Most levels in a topic name or filter. Default 200 (broker.md "Pitfalls").
    pub max_topic_levels: usize,
    /// Upper bound for a client's keep-alive in seconds. MQTT 5 clients asking for more (or for 0)
    /// get this value back as Server Keep Alive; MQTT 3.x clients asking for more are refused with
    /// return code 2, as Mosquitto does (3.x has no way to tell them). 65 535 = no cap (default).
    pub max_keepalive: u16,
    /// Session expiry given to MQTT 3.x persistent sessions (clean session = 0), which have no
    /// Session Expiry Interval of their own. Default 7 days.
    pub default_session_expiry: Duration,
    /// Upper bound on the Session Expiry Interval an MQTT 5 client may ask for. Default: none
    /// (u32::MAX seconds means "never expires" as the spec says).
    pub max_session_expiry: Duration,
    /// Topic Alias Maximum announced to MQTT 5 clients (aliases they may use towards us).
    /// Default 64; 0 disables inbound aliases.
    pub topic_alias_maximum: u16,
    /// Whether to assign topic aliases on PUBLISHes we send to MQTT 5 clients that allow them
    /// (at most min(client's Topic Alias Maximum, `topic_alias_maximum`) per connection).
    /// Default true.
    pub outbound_topic_aliases: bool,
    /// PUBLISH packets per second one client may send; 0 = unlimited (default). Above the rate the
    /// client is disconnected (MQTT 5 reason 0x96).
    pub max_publish_rate: u32,
    /// Prefix of the Response Information returned to MQTT 5 clients that request it; the client
    /// id is appended. Default `response/`.
    pub response_information_prefix: String,
    /// Most user properties accepted on one packet (broker.md "Pitfalls": huge property lists).
    /// Default 64.
    pub max_user_properties: usize,
    /// How long graceful shutdown waits for connections to say goodbye. Default 5 s.
    pub shutdown_grace: Duration,
    /// The `$SYS/...` topic names clients may publish to (exact names, no wildcards), still
    /// subject to [`crate::broker::Hooks::authorize_publish`]. Every other client PUBLISH into
    /// `$SYS/` is refused (0x87). Default empty: the broker alone has no use for them; the app
    /// lists the command topics (`$SYS/Coreflux/Command`, `$SYS/Coreflux/Config/New`) when a
    /// runtime consumes them.
    pub client_sys_publish_topics: Vec<String>,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            max_packet_size: 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            max_connect_packet_size: 64 * 1024,
            max_connections: 100_000,
            receive_maximum: 1024,
            max_inflight: 100,
            max_queued_messages: 10_000,
            max_queued_bytes: 64 * 1024 * 1024,
            max_retained: 1_000_000,
            max_topic_length: 65_535,
            max_topic_levels: 200,
            max_keepalive: u16::MAX,
            default_session_expiry: Duration::from_secs(7 * 24 * 3600),
            max_session_expiry: Duration::from_secs(u32::MAX as u64),
            topic_alias_maximum: 64,
            outbound_topic_aliases: true,
            max_publish_rate: 0,
            response_information_prefix: "response/".to_string(),
            max_user_properties: 64,
            shutdown_grace: Duration::from_secs(5),
            client_sys_publish_topics: Vec::new(),
        }
    }
}
