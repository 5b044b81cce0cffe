//! Will messages (MQTT 5 §3.1.2.5, §3.1.3.2; 3.1.1 §3.1.2.5): published when a connection ends
//! without a normal DISCONNECT, after the Will Delay Interval, which is capped by the session
//! expiry (the will goes out at the latest when the session ends). A reconnect to the same
//! session within the delay cancels it. On hub shutdown the will goes out at once: the session
//! ends with the process.
//!
//! Must not touch sockets. Start reading at [`schedule`].

use super::Shared;
use super::connect::Conn;
use super::hooks::ClientInfo;
use crate::protocol::packet::{Publish, Will};
use std::sync::Arc;
use tokio::time::Duration;

/// Publishes `conn`'s will now or after its delay.
pub(super) fn schedule(shared: &Arc<Shared>, will: Box<Will>, conn: &Conn, immediately: bool) {
    let will = *will;
    let expiry = conn.session.state.lock().expiry_secs;
    let delay = will.properties.will_delay_interval.unwrap_or(0).min(expiry);
    if delay == 0 || immediately || shared.shutdown.is_cancelled() {
        publish(shared, will, &conn.client);
        return;
    }
    let shared2 = shared.clone();
    let session = conn.session.clone();
    let generation = conn.generation;
    let client = conn.client.clone();
    let shutdown = shared.shutdown.clone();
    shared.tracker.spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(u64::from(delay))) => {}
        }
        // A connection that attached meanwhile bumped the generation: no will (§3.1.3.2.2).
        if session.state.lock().generation == generation {
            publish(&shared2, will, &client);
        }
    });
}

/// Publishes a will as `client` would have, if the hooks allow that client the topic.
fn publish(shared: &Shared, will: Will, client: &ClientInfo) {
    if will.topic.starts_with("$SYS/") || !shared.hooks.authorize_publish(client, &will.topic) {
        return;
    }
    let mut properties = will.properties;
    properties.will_delay_interval = None;
    let publish = Publish {
        dup: false,
        qos: will.qos,
        retain: will.retain,
        topic: will.topic,
        pkid: 0,
        payload: will.payload,
        properties,
    };
    shared.accept_publish(publish, Some(client));
}
