//! A deployed MQTT_BRIDGE route turned into what its task needs: the remote broker's settings
//! (GET ENV / GET SECRET resolved now, at deploy time) and the mappings split into the two
//! directions of travel, each as a [`TopicMap`].

use crate::lot::ast::{Direction, Route, RouteConfig, RouteType, RouteValue};
use crate::protocol::packet::{ProtocolVersion, QoS};
use crate::storage::{Storage, StorageError};

use super::RouteError;
use super::topic_map::TopicMap;

/// BUFFER_MESSAGES when not given (spec §6).
pub const DEFAULT_BUFFER_MESSAGES: usize = 100_000;
/// KEEP_ALIVE when not given, in seconds.
pub const DEFAULT_KEEP_ALIVE: u16 = 60;

/// The remote side of a bridge.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteConfig {
    pub address: String,
    pub port: u16,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub use_tls: bool,
    pub allow_untrusted: bool,
    pub ca_path: Option<String>,
    pub cert_path: Option<String>,
    pub key_path: Option<String>,
    /// Consecutive failed connection attempts before giving up; 0 = forever.
    pub retries: u64,
    pub keep_alive: u16,
    /// The QoS messages are forwarded with in both directions (default 1).
    pub qos: QoS,
    pub version: ProtocolVersion,
    pub buffer_messages: usize,
}

/// Everything a bridge task needs, built once per deployment of the route.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeConfig {
    pub name: String,
    pub remote: RemoteConfig,
    /// This hub -> remote: local filter, remote topic pattern.
    pub outbound: Vec<TopicMap>,
    /// Remote -> this hub: remote filter (subscribed on the remote), local topic pattern.
    pub inbound: Vec<TopicMap>,
}

impl BridgeConfig {
    /// Builds the configuration of `route`, resolving GET ENV / GET SECRET from `storage`.
    pub fn from_route(route: &Route, storage: &Storage) -> Result<BridgeConfig, RouteError> {
        let name = route.name.value.clone();
        if route.route_type.value != RouteType::MqttBridge {
            return Err(RouteError::Unsupported(route.route_type.value.as_str()));
        }
        let block = |b: &str| route.configs.iter().find(|c| c.block.value == b);
        let (source, dest) = (block("SOURCE_CONFIG"), block("DESTINATION_CONFIG"));
        let is_self = |c: Option<&RouteConfig>| c.is_some_and(|c| c.get("BROKER").is_some());
        // `local_is_source`: the SOURCE side is this hub, so `out` travels hub -> remote.
        let (remote_block, other_block, local_is_source) = match (is_self(source), is_self(dest)) {
            (true, false) => (dest, source, true),
            (false, true) => (source, dest, false),
            _ => return Err(RouteError::NeedsSelf(name)),
        };
        let remote_block = remote_block.ok_or_else(|| RouteError::NeedsSelf(name.clone()))?;
        let cx = Resolver {
            route: &name,
            storage,
            main: remote_block,
            other: other_block,
        };
        let remote = RemoteConfig {
            address: cx.text("BROKER_ADDRESS")?.unwrap_or_default(),
            port: cx
                .int("BROKER_PORT")?
                .map_or(Ok(1883), u16::try_from)
                .map_err(|_| cx.bad("BROKER_PORT", "a port from 1 to 65535"))?,
            client_id: cx
                .text("CLIENT_ID")?
                .unwrap_or_else(|| format!("lothub-route-{name}")),
            username: cx.text("USERNAME")?,
            password: cx.text("PASSWORD")?,
            use_tls: cx.bool("USE_TLS")?.unwrap_or(false),
            allow_untrusted: cx.bool("ALLOW_UNTRUSTED_CERTS")?.unwrap_or(false),
            ca_path: cx.text("SERVER_CA_CERT_PATH")?,
            cert_path: cx.text("CLIENT_CERT_PATH")?,
            key_path: cx.text("CLIENT_KEY_PATH")?,
            retries: cx
                .int("RECONNECTION_RETRIES")?
                .map_or(0, |v| v.max(0) as u64),
            keep_alive: match cx.int("KEEP_ALIVE")? {
                None => DEFAULT_KEEP_ALIVE,
                Some(v) => u16::try_from(v).map_err(|_| cx.bad("KEEP_ALIVE", "0 to 65535"))?,
            },
            qos: match cx.int("QOS")? {
                None => QoS::AtLeastOnce,
                Some(v) => u8::try_from(v)
                    .ok()
                    .and_then(QoS::from_u8)
                    .ok_or_else(|| cx.bad("QOS", "0, 1 or 2"))?,
            },
            version: match cx.int("PROTOCOL_VERSION")? {
                None | Some(4) => ProtocolVersion::V3_1_1,
                Some(5) => ProtocolVersion::V5,
                Some(_) => return Err(cx.bad("PROTOCOL_VERSION", "4 or 5")),
            },
            buffer_messages: cx
                .int("BUFFER_MESSAGES")?
                .map_or(DEFAULT_BUFFER_MESSAGES, |v| v.max(0) as usize),
        };
        if remote.address.is_empty() {
            return Err(cx.bad("BROKER_ADDRESS", "a host name or address"));
        }
        let mut outbound = Vec::new();
        let mut inbound = Vec::new();
        for m in &route.mappings {
            let (src, dst) = (&m.source_topic.value, &m.destination_topic.value);
            // Source -> destination and its reverse, then placed by which side is this hub.
            let forward = TopicMap::new(src, dst);
            let reverse = TopicMap::new(dst, src);
            let (fwd_list, rev_list) = if local_is_source {
                (&mut outbound, &mut inbound)
            } else {
                (&mut inbound, &mut outbound)
            };
            match m.direction {
                Direction::Out => fwd_list.push(forward),
                Direction::In => rev_list.push(reverse),
                Direction::Both => {
                    fwd_list.push(forward);
                    rev_list.push(reverse);
                }
            }
        }
        Ok(BridgeConfig {
            name,
            remote,
            outbound,
            inbound,
        })
    }
}

/// Reads a key from the remote block first, then from the other block (keys such as QOS or
/// BUFFER_MESSAGES may be written on either side).
struct Resolver<'a> {
    route: &'a str,
    storage: &'a Storage,
    main: &'a RouteConfig,
    other: Option<&'a RouteConfig>,
}

impl Resolver<'_> {
    fn bad(&self, key: &str, want: &str) -> RouteError {
        RouteError::BadValue {
            route: self.route.to_string(),
            key: key.to_string(),
            want: want.to_string(),
        }
    }

    /// The value as text, with ENV and SECRET read now.
    fn raw(&self, key: &str) -> Result<Option<String>, RouteError> {
        let entry = self
            .main
            .get(key)
            .or_else(|| self.other.and_then(|o| o.get(key)));
        let Some(entry) = entry else {
            return Ok(None);
        };
        let text = match &entry.value {
            RouteValue::Text(t) => t.clone(),
            RouteValue::Int(i) => i.to_string(),
            RouteValue::Float(f) => f.to_string(),
            RouteValue::Bool(b) => b.to_string(),
            RouteValue::SelfBroker => return Ok(None),
            RouteValue::Env(n) => self
                .storage
                .get_env(n)?
                .or_else(|| std::env::var(n).ok())
                .ok_or_else(|| RouteError::MissingEnv(n.clone()))?,
            RouteValue::Secret(n) => self
                .storage
                .get_secret(n)?
                .ok_or_else(|| RouteError::MissingSecret(n.clone()))?,
        };
        Ok(Some(text))
    }

    fn text(&self, key: &str) -> Result<Option<String>, RouteError> {
        self.raw(key)
    }

    fn int(&self, key: &str) -> Result<Option<i64>, RouteError> {
        match self.raw(key)? {
            None => Ok(None),
            Some(t) => t
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| self.bad(key, "a whole number")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, RouteError> {
        match self.raw(key)?.map(|t| t.trim().to_ascii_lowercase()) {
            None => Ok(None),
            Some(t) if t == "true" || t == "1" => Ok(Some(true)),
            Some(t) if t == "false" || t == "0" => Ok(Some(false)),
            Some(_) => Err(self.bad(key, "true or false")),
        }
    }
}

impl From<StorageError> for RouteError {
    fn from(e: StorageError) -> Self {
        RouteError::Storage(e.to_string())
    }
}
