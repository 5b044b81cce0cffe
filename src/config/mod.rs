//! # config: the TOML configuration (parsing, defaults, validation)
//!
//! Owns the [`Config`] value and everything needed to get one from text: the embedded default
//! (`config/lothub.toml`, which documents every key), serde parsing with unknown keys refused,
//! and value checks whose errors name the key ([`ConfigError`]). Must not touch the broker, the
//! sockets or the data store: turning a `Config` into running parts is `cli::run`'s job.
//!
//! Start reading at [`Config::from_toml_str`]: syntax check ([`locate`]), serde into the structs
//! below, then [`validate`]. Durations are whole seconds with `_secs` in the key name.

mod error;
mod locate;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::ipnet::IpNet;
pub use error::ConfigError;

/// The embedded default configuration, printed by `lothub config print`.
const DEFAULT_TEXT: &str = include_str!("../../config/lothub.toml");

/// Default WebSocket path (`path` key of ws/wss listeners).
pub const DEFAULT_WS_PATH: &str = "/mqtt";

/// The whole configuration. Every field has the default documented in `config/lothub.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory of the data store; created at start.
    pub data_dir: PathBuf,
    /// Log filter used when `RUST_LOG` is unset.
    pub log_level: String,
    /// Sockets to listen on; at least one.
    pub listeners: Vec<ListenerConfig>,
    /// Limits and protection.
    pub limits: Limits,
    /// Authentication switches.
    pub auth: AuthConfig,
    /// `$SYS` statistics.
    pub sys: SysConfig,
    /// LOT files loaded at start.
    pub lot: LotConfig,
    /// IP allow/deny lists.
    pub network: NetworkConfig,
    /// Prometheus endpoint.
    pub metrics: MetricsConfig,
}

/// Transport of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ListenerKind {
    /// Plain MQTT over TCP.
    Tcp,
    /// MQTT over TLS.
    Tls,
    /// MQTT over WebSocket.
    Ws,
    /// MQTT over WebSocket over TLS.
    Wss,
}

impl ListenerKind {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerKind::Tcp => "tcp",
            ListenerKind::Tls => "tls",
            ListenerKind::Ws => "ws",
            ListenerKind::Wss => "wss",
        }
    }

    /// Whether the listener terminates TLS (tls, wss).
    pub fn is_tls(self) -> bool {
        matches!(self, ListenerKind::Tls | ListenerKind::Wss)
    }

    /// Whether the listener speaks WebSocket (ws, wss).
    pub fn is_websocket(self) -> bool {
        matches!(self, ListenerKind::Ws | ListenerKind::Wss)
    }
}

impl std::fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for ListenerKind {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "tcp" => Ok(ListenerKind::Tcp),
            "tls" => Ok(ListenerKind::Tls),
            "ws" => Ok(ListenerKind::Ws),
            "wss" => Ok(ListenerKind::Wss),
            _ => Err(format!(
                "unknown listener kind \"{s}\", expected tcp, tls, ws or wss"
            )),
        }
    }
}

/// One `[[listeners]]` table. Kind-specific keys are checked by validation (a tcp listener with
/// a `cert` is refused rather than silently ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// tcp, tls, ws or wss.
    pub kind: ListenerKind,
    /// Address to bind.
    #[serde(deserialize_with = "de_socket_addr")]
    pub bind: SocketAddr,
    /// tls/wss: PEM certificate chain.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// tls/wss: PEM private key.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// tls/wss: PEM CA bundle; turns on client certificate verification.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// tls/wss: refuse clients without a certificate.
    #[serde(default)]
    pub require_client_cert: bool,
    /// tls/wss: the certificate's CN is the user name.
    #[serde(default)]
    pub use_identity_as_username: bool,
    /// ws/wss: HTTP path; `None` means [`DEFAULT_WS_PATH`].
    #[serde(default)]
    pub path: Option<String>,
}

impl ListenerConfig {
    /// A plain TCP listener on `bind` (what `--listen` creates).
    pub fn tcp(bind: SocketAddr) -> Self {
        ListenerConfig {
            kind: ListenerKind::Tcp,
            bind,
            cert: None,
            key: None,
            client_ca: None,
            require_client_cert: false,
            use_identity_as_username: false,
            path: None,
        }
    }

    /// The WebSocket path of a ws/wss listener.
    pub fn ws_path(&self) -> &str {
        self.path.as_deref().unwrap_or(DEFAULT_WS_PATH)
    }
}

/// `[limits]`: see `config/lothub.toml` for each key's meaning and default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most client connections at once.
    pub max_connections: u32,
    /// Largest packet in bytes, fixed header included.
    pub max_packet_size: u32,
    /// Receive Maximum announced to MQTT 5 clients (inbound QoS 1/2 window).
    pub receive_maximum: u16,
    /// Outbound QoS 1/2 window per client.
    pub max_inflight: u16,
    /// Messages queued per offline persistent session.
    pub max_queued_messages: u32,
    /// Payload bytes queued per offline persistent session.
    pub max_queued_bytes: u64,
    /// Retained messages kept.
    pub max_retained: u32,
    /// Seconds to complete CONNECT after accept.
    pub connect_timeout_secs: u64,
    /// Cap on the client keep-alive, seconds.
    pub max_keepalive_secs: u16,
    /// Longest topic name or filter, bytes.
    pub max_topic_length: u16,
    /// Most levels in a topic name or filter.
    pub max_topic_levels: u16,
    /// PUBLISH packets per second per client; 0 = off.
    pub publish_rate: u32,
    /// New connections per second per IP; 0 = off.
    pub connection_rate: u32,
    /// Most MQTT 5 user properties per packet.
    pub max_user_properties: u16,
    /// Session expiry for 3.1/3.1.1 persistent sessions, seconds.
    pub default_session_expiry_secs: u32,
    /// Cap on MQTT 5 Session Expiry Interval, seconds.
    pub max_session_expiry_secs: u32,
    /// Topic Alias Maximum announced to MQTT 5 clients; 0 = no inbound aliases.
    pub topic_alias_maximum: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 100_000,
            max_packet_size: 1024 * 1024,
            receive_maximum: 1024,
            max_inflight: 100,
            max_queued_messages: 10_000,
            max_queued_bytes: 64 * 1024 * 1024,
            max_retained: 1_000_000,
            connect_timeout_secs: 10,
            max_keepalive_secs: 65_535,
            max_topic_length: 65_535,
            max_topic_levels: 200,
            publish_rate: 0,
            connection_rate: 0,
            max_user_properties: 64,
            default_session_expiry_secs: 7 * 24 * 3600,
            max_session_expiry_secs: u32::MAX,
            topic_alias_maximum: 64,
        }
    }
}

impl Limits {
    /// `connect_timeout_secs` as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Whether clients without a user name may connect.
    pub allow_anonymous: bool,
    /// Password for `root` when the store is created; overridden by the CLI and environment.
    pub root_password: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_anonymous: true,
            root_password: None,
        }
    }
}

/// `[sys]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SysConfig {
    /// Seconds between `$SYS/broker/...` updates.
    pub interval_secs: u64,
}

impl Default for SysConfig {
    fn default() -> Self {
        SysConfig { interval_secs: 10 }
    }
}

impl SysConfig {
    /// `interval_secs` as a duration.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs)
    }
}

/// `[lot]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LotConfig {
    /// LOT files loaded at start, in order.
    pub files: Vec<PathBuf>,
}

/// `[network]`: deny wins over allow; an empty allow list allows everyone.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// If not empty, only these may connect.
    pub allow: Vec<IpNet>,
    /// These may never connect.
    pub deny: Vec<IpNet>,
}

impl NetworkConfig {
    /// Whether a peer at `ip` may connect.
    pub fn permits(&self, ip: std::net::IpAddr) -> bool {
        if self.deny.iter().any(|n| n.contains(ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(ip))
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the Prometheus endpoint; `None` = no endpoint.
    #[serde(deserialize_with = "de_opt_socket_addr")]
    pub bind: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            log_level: "info".to_string(),
            listeners: vec![ListenerConfig::tcp(SocketAddr::from(([0, 0, 0, 0], 1883)))],
            limits: Limits::default(),
            auth: AuthConfig::default(),
            sys: SysConfig::default(),
            lot: LotConfig::default(),
            network: NetworkConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Config {
    /// The embedded default config text (`config/lothub.toml`), byte for byte.
    pub fn default_text() -> &'static str {
        DEFAULT_TEXT
    }

    /// Parses and validates a config. Keys left out keep their defaults.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        locate::check_syntax(text)?;
        let config: Config = toml::from_str(text).map_err(|e| locate::map_error(text, &e))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml_str(&text)
    }

    /// Checks every value (ranges, listener keys per kind, log filter...). The first problem
    /// found is returned, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::validate(self)
    }

    /// Checks that the files the config names (listener certificates and keys, LOT files) can be
    /// read. Separate from [`Config::validate`] so that parsing stays free of file-system state.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        validate::check_files(self)
    }
}

/// `bind = "IP:PORT"` with an error that says what is expected.
fn de_socket_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    parse_socket_addr(&text).map_err(serde::de::Error::custom)
}

fn de_opt_socket_addr<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    de_socket_addr(d).map(Some)
}

fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!(
            "invalid address \"{text}\": expected IP:PORT such as 0.0.0.0:1883 or [::]:1883 \
             (host names are not resolved)"
        )
    })
}

#[cfg(test)]
mod tests;
