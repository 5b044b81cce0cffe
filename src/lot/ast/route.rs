//! # lot::ast::route: routes (spec §6)
//!
//! Owns [`Route`] and its config, mapping and event blocks. Re-exported by `lot::ast`.

use super::{Span, Spanned};

#[derive(Debug, Clone)]
pub struct Route {
    pub name: Spanned<String>,
    pub route_type: Spanned<RouteType>,
    /// `ADD <BLOCK>_CONFIG` blocks in written order.
    pub configs: Vec<RouteConfig>,
    pub mappings: Vec<Mapping>,
    pub events: Vec<RouteEvent>,
    pub span: Span,
}

/// The route types lothub runs (others are refused at compile time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteType {
    MqttBridge,
    Postgresql,
}

impl RouteType {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteType::MqttBridge => "MQTT_BRIDGE",
            RouteType::Postgresql => "POSTGRESQL",
        }
    }
}

/// `ADD SOURCE_CONFIG` + `WITH KEY value` lines. `block` is upper-cased (`SOURCE_CONFIG`).
#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub block: Spanned<String>,
    pub entries: Vec<RouteEntry>,
    pub span: Span,
}

impl RouteConfig {
    /// The entry for `key` (upper-case), if given.
    pub fn get(&self, key: &str) -> Option<&RouteEntry> {
        self.entries.iter().find(|e| e.key.value == key)
    }
}

/// `WITH KEY value`. `key` is upper-cased; the value is already converted to what the key needs
/// (`'1883'` becomes `Int(1883)` for `BROKER_PORT`).
#[derive(Debug, Clone)]
pub struct RouteEntry {
    pub key: Spanned<String>,
    pub value: RouteValue,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteValue {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// `GET ENV "N"`: read (and converted) when the route starts.
    Env(String),
    /// `GET SECRET "N"`.
    Secret(String),
    /// `WITH BROKER SELF`: this hub.
    SelfBroker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Out,
    In,
    Both,
}

/// `ADD MAPPING name` block.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub name: Spanned<String>,
    pub source_topic: Spanned<String>,
    pub destination_topic: Spanned<String>,
    /// Default `Out` when not given.
    pub direction: Direction,
    pub span: Span,
}

/// `ADD EVENT name` block.
#[derive(Debug, Clone)]
pub struct RouteEvent {
    pub name: Spanned<String>,
    pub source_topic: Spanned<String>,
    pub query: Spanned<String>,
    pub destination_topic: Option<Spanned<String>>,
    pub span: Span,
}
