//! # lot::parser::route_keys: what each route block accepts, and value conversion
//!
//! Owns the key tables of MQTT_BRIDGE and POSTGRESQL blocks (which keys exist, what each value
//! must be) and the conversion of written values to that type (spec §8: `'1883'`, `"1883"`
//! and `1883` are the same port). Used by `route.rs` only.

use crate::lot::ast::RouteValue;

/// Route types of Coreflux that lothub parses but does not run.
pub(super) const OTHER_TYPES: [&str; 16] = [
    "MODBUS_TCP",
    "MODBUS_RTU",
    "OPCUA",
    "S7",
    "SIEMENS_S7",
    "ALLEN_BRADLEY",
    "MONGODB",
    "MYSQL",
    "MSSQL",
    "SQLSERVER",
    "INFLUXDB",
    "TIMESCALEDB",
    "CRATEDB",
    "OPENSEARCH",
    "REST_API",
    "EMAIL",
];

/// What a key's value must be.
#[derive(Clone, Copy)]
pub(super) enum Want {
    Text,
    Bool,
    Int { min: i64, max: i64 },
    SelfBroker,
}

pub(super) const BRIDGE_KEYS: [(&str, Want); 16] = [
    ("BROKER", Want::SelfBroker),
    ("BROKER_ADDRESS", Want::Text),
    (
        "BROKER_PORT",
        Want::Int {
            min: 1,
            max: 65_535,
        },
    ),
    ("CLIENT_ID", Want::Text),
    ("USERNAME", Want::Text),
    ("PASSWORD", Want::Text),
    ("USE_TLS", Want::Bool),
    ("ALLOW_UNTRUSTED_CERTS", Want::Bool),
    ("SERVER_CA_CERT_PATH", Want::Text),
    ("CLIENT_CERT_PATH", Want::Text),
    ("CLIENT_KEY_PATH", Want::Text),
    (
        "RECONNECTION_RETRIES",
        Want::Int {
            min: 0,
            max: i64::MAX,
        },
    ),
    (
        "KEEP_ALIVE",
        Want::Int {
            min: 0,
            max: 65_535,
        },
    ),
    ("QOS", Want::Int { min: 0, max: 2 }),
    ("PROTOCOL_VERSION", Want::Int { min: 4, max: 5 }),
    (
        "BUFFER_MESSAGES",
        Want::Int {
            min: 0,
            max: i64::MAX,
        },
    ),
];

pub(super) const SQL_KEYS: [(&str, Want); 6] = [
    ("SERVER", Want::Text),
    (
        "PORT",
        Want::Int {
            min: 1,
            max: 65_535,
        },
    ),
    ("DATABASE", Want::Text),
    ("USERNAME", Want::Text),
    ("PASSWORD", Want::Text),
    ("USE_SSL", Want::Bool),
];

pub(super) const MAPPING_KEYS: [(&str, Want); 3] = [
    ("SOURCE_TOPIC", Want::Text),
    ("DESTINATION_TOPIC", Want::Text),
    ("DIRECTION", Want::Text),
];

pub(super) const EVENT_KEYS: [(&str, Want); 3] = [
    ("SOURCE_TOPIC", Want::Text),
    ("QUERY", Want::Text),
    ("DESTINATION_TOPIC", Want::Text),
];

/// Converts a written value to what its key needs (spec §8: `'1883'`, `"1883"` and `1883` are
/// the same port). ENV and SECRET values are converted when the route starts.
pub(super) fn convert(value: RouteValue, want: Want) -> Result<RouteValue, String> {
    if matches!(value, RouteValue::Env(_) | RouteValue::Secret(_)) {
        return Ok(value);
    }
    match want {
        Want::Text => Ok(match value {
            RouteValue::Int(i) => RouteValue::Text(i.to_string()),
            RouteValue::Float(f) => RouteValue::Text(f.to_string()),
            RouteValue::Bool(b) => RouteValue::Text(b.to_string()),
            other => other,
        }),
        Want::Bool => match value {
            RouteValue::Bool(b) => Ok(RouteValue::Bool(b)),
            RouteValue::Int(0) => Ok(RouteValue::Bool(false)),
            RouteValue::Int(1) => Ok(RouteValue::Bool(true)),
            RouteValue::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(RouteValue::Bool(true)),
                "false" | "0" | "no" => Ok(RouteValue::Bool(false)),
                _ => Err(format!("expected TRUE or FALSE, not \"{t}\"")),
            },
            other => Err(format!("expected TRUE or FALSE, not {}", show(&other))),
        },
        Want::Int { min, max } => {
            let n = match &value {
                RouteValue::Int(i) => Some(*i),
                RouteValue::Text(t) => t.trim().parse::<i64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if (min..=max).contains(&n) => Ok(RouteValue::Int(n)),
                Some(n) => Err(if max == i64::MAX {
                    format!("{n} is out of range (at least {min})")
                } else {
                    format!("{n} is out of range ({min} to {max})")
                }),
                None => Err(format!("expected a whole number, not {}", show(&value))),
            }
        }
        Want::SelfBroker => match &value {
            RouteValue::Text(t) if t.eq_ignore_ascii_case("self") => Ok(RouteValue::SelfBroker),
            _ => Err(format!(
                "only BROKER SELF is accepted (use BROKER_ADDRESS for a remote broker), not {}",
                show(&value)
            )),
        },
    }
}

pub(super) fn show(v: &RouteValue) -> String {
    match v {
        RouteValue::Text(t) => format!("\"{t}\""),
        RouteValue::Int(i) => i.to_string(),
        RouteValue::Float(f) => f.to_string(),
        RouteValue::Bool(b) => b.to_string(),
        RouteValue::Env(n) => format!("GET ENV \"{n}\""),
        RouteValue::Secret(n) => format!("GET SECRET \"{n}\""),
        RouteValue::SelfBroker => "SELF".into(),
    }
}
