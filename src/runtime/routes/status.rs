//! The live state of one route and its retained `$SYS/Coreflux/Routes/<Name>/status` JSON
//! (spec §6): connection state, counters, last error, connected-since.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde_json::json;

use crate::broker::Broker;
use crate::protocol::packet::QoS;

/// The connection states the status JSON names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Connected,
    Reconnecting,
    Disconnected,
}

impl Connection {
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::Connecting => "Connecting",
            Connection::Connected => "Connected",
            Connection::Reconnecting => "Reconnecting",
            Connection::Disconnected => "Disconnected",
        }
    }
}

/// Counters and state of one route, shared by its task, the publish path and the manager.
#[derive(Debug)]
pub struct RouteStatus {
    pub name: String,
    pub route_type: &'static str,
    /// Messages delivered (acknowledged by the remote, or published into this hub).
    pub forwarded: AtomicU64,
    /// Messages waiting in the store-and-forward buffer right now.
    pub buffered: AtomicU64,
    /// Messages thrown away: buffer overflow (oldest first), QoS 0 while offline, a full channel.
    pub dropped: AtomicU64,
    /// Messages the remote refused (an MQTT 5 PUBACK / PUBREC reason code >= 0x80).
    pub failed: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    connection: Connection,
    last_error: Option<String>,
    connected_since: Option<String>,
}

impl RouteStatus {
    pub fn new(name: &str, route_type: &'static str) -> RouteStatus {
        RouteStatus {
            name: name.to_string(),
            route_type,
            forwarded: AtomicU64::new(0),
            buffered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            state: Mutex::new(State {
                connection: Connection::Connecting,
                last_error: None,
                connected_since: None,
            }),
        }
    }

    pub fn connection(&self) -> Connection {
        self.state.lock().connection
    }

    /// Changes the connection state (a successful connection stamps `connectedSince`).
    pub fn set_connection(&self, connection: Connection) {
        let mut st = self.state.lock();
        st.connection = connection;
        st.connected_since = (connection == Connection::Connected)
            .then(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }

    pub fn set_error(&self, error: impl Into<String>) {
        self.state.lock().last_error = Some(error.into());
    }

    /// The topic the status is published on.
    pub fn topic(&self) -> String {
        format!("$SYS/Coreflux/Routes/{}/status", self.name)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let st = self.state.lock();
        json!({
            "name": self.name,
            "type": self.route_type,
            "connection": st.connection.as_str(),
            "messages": {
                "forwarded": self.forwarded.load(Ordering::Relaxed),
                "buffered": self.buffered.load(Ordering::Relaxed),
                "dropped": self.dropped.load(Ordering::Relaxed),
                "failed": self.failed.load(Ordering::Relaxed),
            },
            "lastError": st.last_error,
            "connectedSince": st.connected_since,
        })
    }

    /// Publishes the retained status JSON (best effort: a hub shutting down refuses it).
    pub fn publish(&self, broker: Option<&Broker>) {
        if let Some(broker) = broker {
            let body = self.to_json().to_string();
            let _ = broker.publish_simple(&self.topic(), body, QoS::AtMostOnce, true);
        }
    }
}
